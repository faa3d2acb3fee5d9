"""Protocol mix and top ports of the top talkers (chdb; 18.16 when ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import load_store

from netwarden.cli.main import main
from netwarden.collector.reports import Filters, TopParams
from netwarden.collector.reports.transport import transport


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def row(key: str, nbytes: int, frames: int, protocols: dict[str, int],
        src: tuple[int, int] | None, dst: tuple[int, int] | None) -> dict[str, Any]:
    return {"key": key, "bytes": nbytes, "frames": frames, "protocols": protocols,
            "mix": " ".join(f"{k}:{v}" for k, v in protocols.items()),
            "src_port": src and src[0], "src_port_bytes": src and src[1],
            "dst_port": dst and dst[0], "dst_port_bytes": dst and dst[1]}


def test_top_talkers_with_mix_and_ports(store: Any) -> None:
    result = transport(store, TopParams(top=3))
    assert result.report == "transport"
    assert result.rows == [
        # 40000 -> 80: 120 + 60 + 200 + 5000 bytes; 80 -> 40000 only 900
        row("10.0.0.1", 6480, 21, {"tcp": 6280, "udp": 200}, (40000, 5380), (80, 5380)),
        row("10.0.0.2", 6280, 19, {"tcp": 6280}, (40000, 5380), (80, 5380)),
        # the fragment (no L4 tap) counts in the mix but not for the ports
        row("2001:db8::10", 2114, 2, {"udp": 2114}, (5000, 600), (6000, 600)),
    ]


def test_tunnels_and_loopback(store: Any) -> None:
    rows = {r["key"]: r for r in transport(store, TopParams(top=None)).rows}
    assert len(rows) == 12
    # GRE / IP-in-IP: outer protocol, no outermost TCP/UDP header at layer 0
    assert rows["192.168.1.1"] == row("192.168.1.1", 400, 2, {"gre": 400}, None, None)
    assert rows["172.16.0.2"] == row("172.16.0.2", 100, 1, {"ipip": 100}, None, None)
    assert rows["127.0.0.1"] == row("127.0.0.1", 150, 2, {"udp": 150}, (7000, 150),
                                    (7001, 150))
    # ports of the records the address is in, either side: 5353 -> 53 (80 B), 53 -> 5353 (120 B)
    assert rows["10.0.0.3"] == row("10.0.0.3", 200, 2, {"udp": 200}, (53, 120), (5353, 120))


def test_host_filter(store: Any) -> None:
    beta = transport(store, TopParams(filters=Filters(hosts=("beta",)), top=1))
    assert beta.rows == [row("10.0.0.1", 5500, 10, {"tcp": 5500}, (40000, 5000),
                             (80, 5000))]


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb")


def test_cli_csv(chdb_store: Any, chdb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "transport", "--store", str(chdb_path), "--database",
                 chdb_store.database, "--top", "1", "--format", "csv"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "key,bytes,frames,mix,src_port,src_port_bytes,dst_port,dst_port_bytes",
        "10.0.0.1,6480,21,tcp:6280 udp:200,40000,5380,80,5380"]
