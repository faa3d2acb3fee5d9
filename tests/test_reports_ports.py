"""Top ports from stored records (chdb; and 18.16 when marked ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import interval_start, load_store

from netwarden.collector.reports import Filters, TopParams, ports


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def ranked(*triples: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"key": k, "bytes": b, "frames": f} for k, b, f in triples]


ALL = ranked(
    ("tcp/40000", 6280, 19),
    ("tcp/80", 6280, 19),
    ("udp/5000", 600, 1),  # reassembling frame only; the fragment credits no port
    ("udp/6000", 600, 1),
    ("udp/1000", 400, 2),  # the GRE frame's outermost UDP header is at layer 1
    ("udp/2000", 400, 2),
    ("udp/53", 200, 2),
    ("udp/5353", 200, 2),
    ("udp/7000", 150, 2),
    ("udp/7001", 150, 2),
    ("udp/3544", 150, 1),  # Teredo: 3544 -> 3544 credited once; inner tcp/443 not at all
)


def test_outermost_l4_ports_ranked_by_bytes_frames_key(store: Any) -> None:
    assert ports(store, TopParams(top=None)).rows == ALL


def test_default_top_is_ten(store: Any) -> None:
    result = ports(store, TopParams())
    assert result.rows == ALL[:10]
    assert result.filters["top"] == 10


def test_host_and_time_filters(store: Any) -> None:
    beta = ports(store, TopParams(filters=Filters(hosts=("beta",))))
    assert beta.rows == ranked(("tcp/40000", 5500, 10), ("tcp/80", 5500, 10))
    f = Filters(since_ns=interval_start(1), until_ns=interval_start(2), hosts=("alpha",))
    assert ports(store, TopParams(filters=f)).rows == ranked(
        ("udp/7000", 150, 2), ("udp/7001", 150, 2), ("udp/3544", 150, 1),
        ("tcp/40000", 60, 1), ("tcp/80", 60, 1),
    )
