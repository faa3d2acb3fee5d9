"""Bytes per country and AS of the remote addresses (chdb; 18.16 when ``server``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import batch, flow, interval_start, load_store, tcp, udp

from netwarden.cli.main import main
from netwarden.collector.query import run_report
from netwarden.collector.reports import Filters
from netwarden.collector.reports.geo import GeoParams, geo
from netwarden.errors import UsageError
from netwarden.sensor.records import Direction, FlowBatch

IN, OUT, OTHER, LOCAL = Direction.IN, Direction.OUT, Direction.OTHER, Direction.LOCAL


def _dir(record: dict[str, Any], direction: Direction) -> dict[str, Any]:
    record["direction"] = int(direction)
    return record


def gw_flows() -> list[dict[str, Any]]:
    """Host gw: 10.0.0.5 behind it; every direction rule once."""
    n = iter(range(1, 100))
    return [
        # in/out: the source of an incoming record, the destination of an outgoing one
        _dir(tcp(0, "10.0.0.5", 40000, "8.8.8.8", 443, first_frame=next(n), packets=10,
                 nbytes=1000, first_s=0), OUT),
        _dir(udp(0, "8.8.4.4", 53, "10.0.0.5", 5353, first_frame=next(n), packets=5,
                 nbytes=500, first_s=1), IN),
        _dir(tcp(0, "1.1.1.1", 443, "10.0.0.5", 40001, first_frame=next(n), packets=3,
                 nbytes=300, first_s=2), IN),
        # direction wins over "public": an incoming record between two public addresses
        _dir(udp(0, "9.9.9.9", 53, "8.8.8.8", 53, first_frame=next(n), packets=1,
                 nbytes=90, first_s=3), IN),
        # other: the public side, both ways
        _dir(tcp(0, "192.168.1.10", 50000, "1.0.0.1", 443, first_frame=next(n), packets=2,
                 nbytes=200, first_s=4), OTHER),
        _dir(tcp(0, "1.0.0.1", 443, "192.168.1.10", 50000, first_frame=next(n), packets=1,
                 nbytes=100, first_s=4.5), OTHER),
        # local, IPv6: destination private, so the source
        _dir(tcp(0, "2001:4860:4860::8888", 443, "fd00::1", 50001, first_frame=next(n),
                 packets=4, nbytes=400, first_s=5), LOCAL),
        # private both: other -> the source (destination not public); in -> the source
        _dir(udp(0, "10.0.0.1", 1000, "10.0.0.2", 2000, first_frame=next(n), packets=1,
                 nbytes=50, first_s=6), OTHER),
        _dir(udp(0, "10.0.0.9", 1000, "10.0.0.5", 2000, first_frame=next(n), packets=1,
                 nbytes=70, first_s=7), IN),
        # not counted: a tunnelled inner header (layer 1), a non-IP frame
        _dir(udp(0, "5.5.5.5", 1000, "10.0.0.5", 2000, layer=1, first_frame=next(n),
                 packets=99, nbytes=9999, first_s=8), IN),
        flow(0, "", "", ethertype=0x0806, first_frame=next(n), packets=1, nbytes=42,
             first_s=9),
        # interval 1: Sweden, with no AS network in the data
        _dir(udp(1, "10.0.0.5", 1000, "2.2.2.2", 2000, first_frame=next(n), packets=1,
                 nbytes=60, first_s=10), OUT),
    ]


def beta_flows() -> list[dict[str, Any]]:
    return [_dir(tcp(0, "fd00::2", 50000, "2606:4700:4700::1111", 443, first_frame=1,
                     packets=7, nbytes=700, first_s=0), OUT)]


INSERTED_BYTES = 1000 + 500 + 300 + 90 + 200 + 100 + 400 + 50 + 70 + 60 + 700


def batches() -> list[FlowBatch]:
    return [batch("gw", gw_flows(), []), batch("beta", beta_flows(), [])]


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param, batches(), "geo")


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb", batches(), "geo")


def country(code: str, name: str, nbytes: int, frames: int, addresses: int) -> dict[str, Any]:
    return {"country": code, "country_name": name, "bytes": nbytes, "frames": frames,
            "addresses": addresses}


def asn(as_name: str, code: str, name: str, nbytes: int, frames: int,
        addresses: int) -> dict[str, Any]:
    return {"asn": None, "as_name": as_name, "country": code, "country_name": name,
            "bytes": nbytes, "frames": frames, "addresses": addresses}


US, AU, SE = ("US", "United States"), ("AU", "Australia"), ("SE", "Sweden")


def test_bytes_per_country(store: Any) -> None:
    result = geo(store, GeoParams(top=None))
    assert result.report == "geo"
    assert result.rows == [
        # 8.8.8.8, 8.8.4.4, 2001:4860:4860::8888, 9.9.9.9, 2606:4700:4700::1111
        country(*US, 1000 + 500 + 400 + 90 + 700, 10 + 5 + 4 + 1 + 7, 5),
        country(*AU, 300 + 300, 3 + 3, 2),  # 1.1.1.1; 1.0.0.1 both ways
        country("--", "private", 50 + 70, 2, 2),  # 10.0.0.1, 10.0.0.9
        country(*SE, 60, 1, 1),
    ]
    assert sum(r["bytes"] for r in result.rows) == INSERTED_BYTES
    assert result.meta["by"] == "country"
    assert result.meta["total"] == {"bytes": INSERTED_BYTES, "frames": 36, "addresses": 10}
    assert result.meta["geo_data"].startswith("MAXMIND:GeoLite2-CountryASN")
    assert result.columns == ["country", "country_name", "bytes", "frames", "addresses"]
    assert geo(store, GeoParams(top=2)).rows == result.rows[:2]


def test_bytes_per_asn(store: Any) -> None:
    result = geo(store, GeoParams(top=None, by="asn"))
    assert result.rows == [
        asn("GOOGLE", *US, 1000 + 500 + 400, 19, 3),
        # 700 bytes in the US (IPv6), 600 in Australia: the AS's country is the US
        asn("CLOUDFLARENET", *US, 300 + 300 + 700, 13, 3),
        asn("private", "--", "private", 120, 2, 2),
        asn("QUAD9-AS-1", *US, 90, 1, 1),
        asn("unknown", *SE, 60, 1, 1),
    ]
    assert sum(r["bytes"] for r in result.rows) == INSERTED_BYTES
    assert result.columns == ["as_name", "country", "bytes", "frames", "addresses"]


def test_host_and_time_filters(store: Any) -> None:
    gw = geo(store, GeoParams(filters=Filters(hosts=("gw",))))
    assert gw.rows[0] == country(*US, 1990, 20, 4)
    assert sum(r["bytes"] for r in gw.rows) == INSERTED_BYTES - 700
    beta = geo(store, GeoParams(filters=Filters(hosts=("beta",)), by="asn"))
    assert beta.rows == [asn("CLOUDFLARENET", *US, 700, 7, 1)]
    later = geo(store, GeoParams(filters=Filters(since_ns=interval_start(1))))
    assert later.rows == [country(*SE, 60, 1, 1)]
    none = geo(store, GeoParams(filters=Filters(hosts=("nobody",))))
    assert none.rows == [] and none.meta["total"] == {"bytes": 0, "frames": 0,
                                                      "addresses": 0}


def test_query_parameters(store: Any) -> None:
    by_asn = run_report(store, "geo", {"by": "asn", "top": 1})
    assert [r["as_name"] for r in by_asn.rows] == ["GOOGLE"]
    assert run_report(store, "geo", {}).rows == geo(store, GeoParams()).rows
    with pytest.raises(UsageError, match="by: expected one of country, asn, got 'city'"):
        run_report(store, "geo", {"by": "city"})
    with pytest.raises(UsageError, match="top must be at least 1"):
        run_report(store, "geo", {"top": 0})


def test_cli_table_json_and_csv(chdb_store: Any, chdb_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    store = chdb_store
    base = ["--store", str(chdb_path), "--database", store.database]
    assert main(["report", "geo", *base]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert "Remote addresses by country" in lines[0]
    assert [c.strip() for c in lines[2].strip("┃").split("┃")] == [
        "Country", "Country name", "Bytes", "Frames", "Addresses"]
    assert [c.strip() for c in lines[4].strip("│").split("│")] == [
        "US", "United States", "2.69 kB", "27", "5"]
    assert lines[-1] == "4 rows"

    assert main(["report", "geo", *base, "--by", "asn", "--top", "2", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["by"] == "asn"
    assert obj["filters"]["top"] == 2
    assert obj["rows"] == geo(store, GeoParams(top=2, by="asn")).rows
    assert [(r["as_name"], r["asn"], r["country"], r["bytes"]) for r in obj["rows"]] == [
        ("GOOGLE", None, "US", 1900), ("CLOUDFLARENET", None, "US", 1300)]

    assert main(["report", "geo", *base, "--host", "beta", "--format", "csv"]) == 0
    assert capsys.readouterr().out == (
        "country,country_name,bytes,frames,addresses\nUS,United States,700,7,1\n")
