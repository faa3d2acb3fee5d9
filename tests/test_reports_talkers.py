"""Top talkers from stored records (chdb; and 18.16 when marked ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import interval_start, load_store

from netwarden.collector.reports import Filters, TopParams, talkers


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def ranked(*triples: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"key": k, "bytes": b, "frames": f} for k, b, f in triples]


ALL = ranked(
    ("10.0.0.1", 6480, 21),
    ("10.0.0.2", 6280, 19),
    ("2001:db8::10", 2114, 2),  # the fragment counts: it has an outermost IPv6 header
    ("2001:db8::20", 2114, 2),
    ("192.168.1.1", 400, 2),  # GRE outer addresses; the inner 2001:db8::1/2 never appear
    ("192.168.1.2", 400, 2),
    ("10.0.0.3", 200, 2),
    ("127.0.0.1", 150, 2),  # src == dst: credited once; more frames than 1.1.1.1
    ("1.1.1.1", 150, 1),
    ("2.2.2.2", 150, 1),
    ("172.16.0.1", 100, 1),  # IP-in-IP outer addresses; the inner ones never appear
    ("172.16.0.2", 100, 1),
)


def test_outermost_addresses_ranked_by_bytes_frames_key(store: Any) -> None:
    result = talkers(store, TopParams())
    assert result.rows == ALL[:10]
    assert result.report == "talkers"
    assert result.columns == ["key", "bytes", "frames"]


def test_top_limits_and_none_keeps_all(store: Any) -> None:
    assert talkers(store, TopParams(top=3)).rows == ALL[:3]
    assert talkers(store, TopParams(top=None)).rows == ALL


def test_several_hosts_sum_and_one_host_filters(store: Any) -> None:
    beta = talkers(store, TopParams(filters=Filters(hosts=("beta",))))
    assert beta.rows == ranked(("10.0.0.1", 5500, 10), ("10.0.0.2", 5500, 10))
    alpha = talkers(store, TopParams(filters=Filters(hosts=("alpha",)), top=4))
    assert alpha.rows == ranked(("2001:db8::10", 2114, 2), ("2001:db8::20", 2114, 2),
                                ("10.0.0.1", 980, 11), ("10.0.0.2", 780, 9))


def test_time_filter(store: Any) -> None:
    f = Filters(since_ns=interval_start(1), until_ns=interval_start(2))
    assert talkers(store, TopParams(filters=f)).rows == ranked(
        ("127.0.0.1", 150, 2), ("1.1.1.1", 150, 1), ("2.2.2.2", 150, 1),
        ("172.16.0.1", 100, 1), ("172.16.0.2", 100, 1), ("10.0.0.1", 60, 1), ("10.0.0.2", 60, 1),
    )


def test_host_globs_select_like_the_names_they_match(store: Any) -> None:
    """``match()`` with the glob's RE2 form runs on chdb and on ClickHouse 18.16."""
    def rows(*hosts: str) -> list[dict[str, Any]]:
        return talkers(store, TopParams(filters=Filters(hosts=hosts), top=50)).rows

    assert rows("al*") == rows("alpha") != rows()
    assert rows("b?t[a-z]", "nothing") == rows("beta")
    assert rows("alpha", "b*") == rows()
    assert rows("[!a]*") == rows("beta")
