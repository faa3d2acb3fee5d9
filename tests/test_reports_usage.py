"""Usage per IP pair, host and total from stored records (chdb; 18.16 when ``server``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import interval_start, load_store

from netwarden.cli.main import main
from netwarden.collector.reports import Filters, TopParams
from netwarden.collector.reports.usage import usage, usage_log


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def pair(a: str, b: str, ab: tuple[int, int], ba: tuple[int, int]) -> dict[str, Any]:
    """Row of pair ``a``/``b`` from (bytes, frames) a->b and b->a."""
    return {"a": a, "b": b, "bytes": ab[0] + ba[0], "frames": ab[1] + ba[1],
            "bytes_a_to_b": ab[0], "frames_a_to_b": ab[1],
            "bytes_b_to_a": ba[0], "frames_b_to_a": ba[1]}


PAIRS = [
    pair("10.0.0.1", "10.0.0.2", (5380, 10), (900, 9)),
    pair("2001:db8::10", "2001:db8::20", (2114, 2), (0, 0)),
    pair("192.168.1.1", "192.168.1.2", (400, 2), (0, 0)),  # GRE: outer addresses only
    pair("10.0.0.1", "10.0.0.3", (80, 1), (120, 1)),
    pair("127.0.0.1", "127.0.0.1", (150, 2), (0, 0)),  # more frames than 1.1.1.1
    pair("1.1.1.1", "2.2.2.2", (150, 1), (0, 0)),
    pair("172.16.0.1", "172.16.0.2", (100, 1), (0, 0)),
]


def test_pairs_hosts_and_total(store: Any) -> None:
    result = usage(store, TopParams(top=None))
    assert result.report == "usage"
    assert result.rows == PAIRS
    # hosts and total count every frame, the ARP one (42 bytes) too
    assert result.meta == {"hosts": {"alpha": {"bytes": 3936, "frames": 20},
                                     "beta": {"bytes": 5500, "frames": 10}},
                           "total": {"bytes": 9436, "frames": 30}}
    assert usage(store, TopParams(top=2)).rows == PAIRS[:2]


def test_host_and_time_filters(store: Any) -> None:
    beta = usage(store, TopParams(filters=Filters(hosts=("beta",))))
    assert beta.rows == [pair("10.0.0.1", "10.0.0.2", (5000, 5), (500, 5))]
    assert beta.meta["total"] == {"bytes": 5500, "frames": 10}
    one = usage(store, TopParams(filters=Filters(since_ns=interval_start(2),
                                                 until_ns=interval_start(3))))
    assert one.rows == [pair("10.0.0.1", "10.0.0.2", (200, 2), (100, 1))]
    assert one.meta["hosts"] == {"alpha": {"bytes": 300, "frames": 3}}


def test_usage_log(store: Any) -> None:
    log = usage_log(usage(store, TopParams(top=3)))
    assert log == {"pairs": {"10.0.0.1 <-> 10.0.0.2": 6280,
                             "2001:db8::10 <-> 2001:db8::20": 2114,
                             "192.168.1.1 <-> 192.168.1.2": 400},
                   "hosts": {"alpha": 3936, "beta": 5500}, "total": 9436}


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb")


def test_cli_write_logs_every_pair_and_shows_top(
        chdb_store: Any, chdb_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = chdb_store
    log = tmp_path / "usage.json"
    code = main(["report", "usage", "--store", str(chdb_path), "--database", store.database,
                 "--top", "1", "--format", "json", "--write", str(log)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    obj = json.loads(out)
    assert obj["rows"] == PAIRS[:1]
    assert obj["filters"]["top"] == 1
    assert obj["total"] == {"bytes": 9436, "frames": 30}
    written = json.loads(log.read_text(encoding="utf-8"))
    assert list(written["pairs"]) == [f"{p['a']} <-> {p['b']}" for p in PAIRS]
    assert written["total"] == 9436
