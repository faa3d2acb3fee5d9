"""Bytes per local process from stored records (chdb; 18.16 when ``server``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import batch, interval_start, load_store, table, tcp, udp

from netwarden.cli.main import main
from netwarden.collector.query import run_report
from netwarden.collector.reports import Filters, TopParams
from netwarden.collector.reports.output import render
from netwarden.collector.reports.processes import processes
from netwarden.errors import UsageError
from netwarden.sensor.records import STAT_COLUMNS, Direction, FlowBatch

IN, OUT, LOCAL = int(Direction.IN), int(Direction.OUT), int(Direction.LOCAL)


def labelled(rec: dict[str, Any], direction: int, process: str = "", pid: int = 0
             ) -> dict[str, Any]:
    return {**rec, "direction": direction, "process": process, "pid": pid}


def with_stats(b: FlowBatch, stats: list[tuple[int, int, int]]) -> FlowBatch:
    """(interval, local bytes, process bytes) capture-statistics rows."""
    b.stats = table(STAT_COLUMNS, [
        {"start_ns": interval_start(interval), "packets": 1, "local_bytes": local,
         "process_bytes": owned}
        for interval, local, owned in stats])
    return b


def batches() -> list[FlowBatch]:
    alpha = [
        labelled(tcp(0, "10.0.0.1", 40000, "10.0.0.2", 80, stream=2, first_frame=2, packets=3,
                     nbytes=300, first_s=0.5), OUT, "curl", 500),
        labelled(tcp(0, "10.0.0.2", 80, "10.0.0.1", 40000, stream=2, first_frame=3, packets=2,
                     nbytes=1200, first_s=0.6), IN, "curl", 500),
        labelled(udp(0, "10.0.0.1", 5353, "10.0.0.3", 53, stream=4, first_frame=4, packets=1,
                     nbytes=80, first_s=3), OUT, "resolved", 77),
        labelled(udp(0, "10.0.0.3", 53, "10.0.0.1", 5353, stream=4, first_frame=5, packets=1,
                     nbytes=120, first_s=3.1), IN, "resolved", 77),
        labelled(tcp(0, "10.0.0.9", 50000, "10.0.0.1", 22, stream=6, first_frame=6, packets=1,
                     nbytes=100, first_s=4), IN),  # nobody found: not a row
        # an inner (tunnelled) header labelled too: only layer 0 counts
        labelled(udp(0, "10.0.0.1", 1000, "10.0.0.2", 2000, layer=1, stream=7, first_frame=7,
                     packets=1, nbytes=400, first_s=5), OUT, "curl", 500),
        labelled(tcp(1, "10.0.0.1", 40001, "10.0.0.2", 80, stream=10, first_frame=10,
                     packets=1, nbytes=60, first_s=10.5), OUT, "curl", 501),
        labelled(udp(1, "127.0.0.1", 7000, "127.0.0.1", 7001, stream=12, first_frame=12,
                     packets=2, nbytes=150, first_s=12), LOCAL, "sink", 9),
    ]
    beta = [labelled(udp(10, "10.0.0.5", 6000, "10.0.0.6", 53, stream=1, first_frame=1,
                         packets=5, nbytes=500, first_s=100), OUT, "curl", 900)]
    return [with_stats(batch("alpha", alpha, []), [(0, 1800, 1700), (1, 210, 210)]),
            with_stats(batch("beta", beta, []), [(10, 500, 500)])]


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param, batches(), "processes")


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb", batches(), "processes")


def row(process: str, pids: list[int], bytes_in: int, bytes_out: int, bytes_local: int,
        frames: int, flows: int) -> dict[str, Any]:
    return {"process": process, "pids": pids, "bytes": bytes_in + bytes_out + bytes_local,
            "bytes_in": bytes_in, "bytes_out": bytes_out, "bytes_local": bytes_local,
            "frames": frames, "flows": flows}


CURL = row("curl", [500, 501, 900], 1200, 300 + 60 + 500, 0, 11, 3)
RESOLVED = row("resolved", [77], 120, 80, 0, 2, 1)
SINK = row("sink", [9], 0, 0, 150, 2, 1)


def test_rows_per_process_and_the_attributed_share(store: Any) -> None:
    result = processes(store, TopParams(top=None))
    assert result.report == "processes"
    assert result.rows == [CURL, RESOLVED, SINK]
    assert result.meta == {"local_bytes": 2510, "process_bytes": 2410,
                           "attributed": 2410 / 2510}
    top = processes(store, TopParams(top=1))
    assert top.rows == [CURL]
    assert top.meta["local_bytes"] == 2510  # the share is of the whole selection


def test_host_and_time_filters(store: Any) -> None:
    beta = processes(store, TopParams(filters=Filters(hosts=("beta",))))
    assert beta.rows == [row("curl", [900], 0, 500, 0, 5, 1)]
    assert beta.meta == {"local_bytes": 500, "process_bytes": 500, "attributed": 1.0}
    one = processes(store, TopParams(filters=Filters(since_ns=interval_start(1),
                                                     until_ns=interval_start(2))))
    assert one.rows == [SINK, row("curl", [501], 0, 60, 0, 1, 1)]
    assert one.meta["local_bytes"] == 210
    none = processes(store, TopParams(filters=Filters(hosts=("nobody",))))
    assert (none.rows, none.meta) == ([], {"local_bytes": 0, "process_bytes": 0,
                                           "attributed": None})


def test_by_name_through_the_query_layer(store: Any) -> None:
    got = run_report(store, "processes", {"top": 2, "filters": {"hosts": ["alpha"]}})
    assert [r["process"] for r in got.rows] == ["curl", "resolved"]
    assert got.rows[0]["pids"] == [500, 501]
    with pytest.raises(UsageError, match="kind: unknown key for report processes"):
        run_report(store, "processes", {"kind": "tcp"})


def test_rendering(store: Any) -> None:
    result = processes(store, TopParams(top=None))
    table = render(result, "table")
    assert "Bytes per process" in table
    assert "Bytes in" in table and "PIDs" in table
    assert "2.41 kB of 2.51 kB local bytes attributed to a process (96.0 %)" in table
    csv_lines = render(result, "csv").splitlines()
    assert csv_lines[0] == "process,pids,bytes,bytes_in,bytes_out,bytes_local,frames,flows"
    assert csv_lines[3] == "sink,[9],150,0,0,150,2,1"


def test_cli_json_and_table(chdb_store: Any, chdb_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "processes", "--store", str(chdb_path), "--database",
            chdb_store.database, "--host", "alpha"]
    code = main([*base, "--format", "json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    obj = json.loads(out)
    assert obj["report"] == "processes"
    assert [r["process"] for r in obj["rows"]] == ["curl", "resolved", "sink"]
    assert (obj["local_bytes"], obj["process_bytes"]) == (2010, 1910)
    assert obj["filters"] == {"since": None, "until": None, "hosts": ["alpha"], "top": 10}
    code = main([*base, "--top", "1"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert "curl" in out and "resolved" not in out
    assert "1 row; host alpha; 1.91 kB of 2.01 kB local bytes attributed to a process " \
        "(95.0 %)" in out
