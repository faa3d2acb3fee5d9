"""Bytes per app and per server name from stored records and names (chdb; 18.16 when
``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import batch, interval_start, load_store, table, tcp, udp

from netwarden.collector.query import run_report
from netwarden.collector.reports import Filters
from netwarden.collector.reports.apps import AppsParams, apps
from netwarden.collector.reports.output import render
from netwarden.errors import UsageError
from netwarden.sensor.records import NAME_COLUMNS, Direction, FlowBatch

IN, OUT = int(Direction.IN), int(Direction.OUT)


def lab(rec: dict[str, Any], direction: int, app: str = "", name: str = "", source: str = ""
        ) -> dict[str, Any]:
    return {**rec, "direction": direction, "app": app, "app_name": name, "app_source": source}


def with_names(b: FlowBatch, names: list[tuple[int, str, str, int]]) -> FlowBatch:
    """(interval, source, name, frames) rows of the ``names`` table."""
    b.names = table(NAME_COLUMNS, [
        {"start_ns": interval_start(interval), "source": source, "name": name, "frames": frames}
        for interval, source, name, frames in names])
    return b


def batches() -> list[FlowBatch]:
    alpha = [
        lab(tcp(0, "10.0.0.1", 40000, "10.0.0.2", 443, stream=2, first_frame=2, packets=3,
                nbytes=300, first_s=0.5), OUT, "video", "v.example", "tls"),
        lab(tcp(0, "10.0.0.2", 443, "10.0.0.1", 40000, stream=2, first_frame=3, packets=2,
                nbytes=1200, first_s=0.6), IN, "video", "v.example", "tls"),
        lab(tcp(0, "10.0.0.1", 40001, "10.0.0.2", 8443, stream=4, first_frame=4, packets=5,
                nbytes=500, first_s=1), OUT, "video", "v.example", "dns"),
        lab(udp(0, "10.0.0.1", 5353, "10.0.0.3", 53, stream=6, first_frame=6, packets=1,
                nbytes=80, first_s=2), OUT, "dns", "", "port"),
        # an inner (tunnelled) header: labelled, but only layer 0 counts
        lab(udp(0, "10.0.0.1", 1000, "10.0.0.2", 2000, layer=1, stream=7, first_frame=7,
                packets=1, nbytes=400, first_s=3), OUT, "video", "v.example", "tls"),
        lab(tcp(0, "10.0.0.1", 40002, "10.0.0.9", 7000, stream=8, first_frame=8, packets=1,
                nbytes=100, first_s=4), OUT),  # unlabelled
        lab(udp(1, "10.0.0.1", 40003, "10.0.0.4", 443, stream=10, first_frame=10, packets=1,
                nbytes=60, first_s=10.5), OUT, "video", "w.example", "quic"),
    ]
    beta = [lab(udp(10, "10.0.0.5", 6000, "10.0.0.6", 53, stream=1, first_frame=1, packets=5,
                    nbytes=500, first_s=100), OUT, "dns", "", "port")]
    return [with_names(batch("alpha", alpha, []), [
                (0, "tls", "v.example", 1), (0, "dns", "v.example", 2),
                (1, "dns", "v.example", 1), (0, "dns", "only.example", 3),
                (1, "quic", "w.example", 2)]),
            with_names(batch("beta", beta, []), [(10, "dns", "z.example", 1)])]


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param, batches(), "apps")


def app_row(app: str, nbytes: int, packets: int, flows: int, sources: list[str],
            names: list[str]) -> dict[str, Any]:
    return {"app": app, "bytes": nbytes, "packets": packets, "flows": flows,
            "sources": sources, "names": names}


def name_row(name: str, source: str, app: str, frames: int, nbytes: int, packets: int
             ) -> dict[str, Any]:
    return {"name": name, "source": source, "app": app, "frames": frames, "bytes": nbytes,
            "packets": packets}


VIDEO = app_row("video", 2060, 11, 3, ["dns", "quic", "tls"], ["v.example", "w.example"])
DNS = app_row("dns", 580, 6, 2, ["port"], [])


def test_rows_per_app(store: Any) -> None:
    result = apps(store, AppsParams(top=None))
    assert result.report == "apps"
    assert result.rows == [VIDEO, DNS]
    assert result.meta == {"by": "app", "total_bytes": 2740, "labelled_bytes": 2640}
    assert apps(store, AppsParams(top=1)).rows == [VIDEO]


def test_rows_per_server_name(store: Any) -> None:
    result = apps(store, AppsParams(top=None, by="name"))
    assert result.rows == [
        name_row("v.example", "tls", "video", 1, 1500, 5),
        name_row("v.example", "dns", "video", 3, 500, 5),
        name_row("w.example", "quic", "video", 2, 60, 1),
        name_row("only.example", "dns", "", 3, 0, 0),  # asked, never labelled a record
        name_row("z.example", "dns", "", 1, 0, 0),
    ]
    assert result.meta == {"by": "name"}
    assert [r["name"] for r in apps(store, AppsParams(top=2, by="name")).rows] == [
        "v.example", "v.example"]


def test_host_and_time_filters(store: Any) -> None:
    beta = Filters(hosts=("beta",))
    assert apps(store, AppsParams(filters=beta)).rows == [
        app_row("dns", 500, 5, 1, ["port"], [])]
    assert apps(store, AppsParams(filters=beta, by="name")).rows == [
        name_row("z.example", "dns", "", 1, 0, 0)]
    second = Filters(since_ns=interval_start(1), until_ns=interval_start(2))
    assert apps(store, AppsParams(filters=second)).rows == [
        app_row("video", 60, 1, 1, ["quic"], ["w.example"])]
    assert apps(store, AppsParams(filters=second, by="name")).rows == [
        name_row("w.example", "quic", "video", 2, 60, 1),
        name_row("v.example", "dns", "", 1, 0, 0)]
    nobody = apps(store, AppsParams(filters=Filters(hosts=("nobody",))))
    assert (nobody.rows, nobody.meta["total_bytes"]) == ([], 0)


def test_through_the_query_layer(store: Any) -> None:
    got = run_report(store, "apps", {"top": 5, "by": "name",
                                     "filters": {"hosts": ["alpha"]}})
    assert [(r["name"], r["source"]) for r in got.rows] == [
        ("v.example", "tls"), ("v.example", "dns"), ("w.example", "quic"),
        ("only.example", "dns")]
    assert run_report(store, "apps", {}).rows == [VIDEO, DNS]
    with pytest.raises(UsageError, match="report parameters: by must be one of app, name"):
        run_report(store, "apps", {"by": "country"})
    with pytest.raises(UsageError, match="kind: unknown key for report apps"):
        run_report(store, "apps", {"kind": "tcp"})


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="top must be at least 1"):
        AppsParams(top=0)


def test_rendering(store: Any) -> None:
    table = render(apps(store, AppsParams(top=None)), "table")
    assert "Bytes per app" in table
    assert "Label sources" in table and "Top names" in table
    assert "dns, quic, tls" in table and "v.example, w.example" in table
    assert "2 rows; 2.64 kB of 2.74 kB labelled" in table
    by_name = render(apps(store, AppsParams(top=None, by="name")), "table")
    assert "Bytes per name" in by_name and "Server name" in by_name
    csv_lines = render(apps(store, AppsParams(top=None, by="name")), "csv").splitlines()
    assert csv_lines[0] == "name,source,app,frames,bytes,packets"
    assert csv_lines[1] == "v.example,tls,video,1,1500,5"
