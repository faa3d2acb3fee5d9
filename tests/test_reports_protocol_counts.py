"""Flat protocol counts (``report protocols --flat``) (chdb; 18.16 when ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import interval_start, load_store

from netwarden.cli.main import main
from netwarden.collector.reports import Filters
from netwarden.collector.reports.names import ip_proto_name, network_name
from netwarden.collector.reports.protocol_counts import ProtocolCountsParams, protocol_counts


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def counts(*rows: tuple[str, str, int, int, int]) -> list[dict[str, Any]]:
    return [{"network": n, "transport": t, "frames": f, "bytes": b, "sources": s}
            for n, t, f, b, s in rows]


def test_counts_per_protocol_of_the_outermost_header(store: Any) -> None:
    result = protocol_counts(store, ProtocolCountsParams())
    assert result.rows == counts(
        ("ipv4", "tcp", 19, 6280, 2),
        ("ipv4", "udp", 5, 500, 4),  # 10.0.0.1, 10.0.0.3, 1.1.1.1, 127.0.0.1
        ("ipv6", "udp", 2, 2114, 1),  # the fragment and the reassembled frame
        ("ipv4", "gre", 2, 400, 1),  # the inner IPv6/UDP is not counted again
        ("ipv4", "ipip", 1, 100, 1),
        ("arp", "", 1, 42, 0),
    )
    assert sum(r["frames"] for r in result.rows) == 30
    assert result.columns == ["network", "transport", "frames", "bytes", "sources"]


def test_filters(store: Any) -> None:
    f = Filters(hosts=("alpha",), since_ns=interval_start(2))
    assert protocol_counts(store, ProtocolCountsParams(filters=f)).rows == counts(
        ("ipv4", "tcp", 3, 300, 2))


def test_names() -> None:
    assert [ip_proto_name(n) for n in (1, 6, 17, 58, 250)] == [
        "icmp", "tcp", "udp", "icmpv6", "proto-250"]
    assert [network_name(v, e) for v, e in ((4, 0), (6, 0), (0, 0x0806), (0, 0x88B5))] == [
        "ipv4", "ipv6", "arp", "0x88b5"]


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb")


def test_cli_flat_flag_and_tree_default(chdb_store: Any, chdb_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "protocols", "--store", str(chdb_path), "--database",
            chdb_store.database, "--format", "csv"]
    assert main([*base, "--flat"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[:3] == ["network,transport,frames,bytes,sources",
                                    "ipv4,tcp,19,6280,2", "ipv4,udp,5,500,4"]
    assert main(base) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "depth,path,protocol,frames,bytes"
