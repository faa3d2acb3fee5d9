"""``netwarden analyze`` with app labels, then ``netwarden report apps``, as a user runs
them: real subprocesses, tshark, an embedded store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures import app_traffic as at
from fixtures.cli import run
from fixtures.packets import TSHARK

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")


def report(store: Path, *args: str) -> dict[str, Any]:
    r = run("report", "apps", "--store", str(store), "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("apps")
    cap = at.write_capture(tmp / "app.pcap")
    rules = tmp / "rules.toml"
    rules.write_text('[[app]]\nname = "nwvideo"\nmatch = ["*.nwtest.example"]\n'
                     '[ports]\n22 = "ssh"\n53 = "dns"\n"tcp/443" = "https"\n')
    store = tmp / "store"
    r = run("analyze", str(cap), "--store", str(store), "--apps-rules", str(rules),
            "--no-hierarchy")
    assert r.returncode == 0, r.stderr
    return store


def test_report_apps_json(analysed: Path) -> None:
    doc = report(analysed, "--top", "3")
    assert doc["report"] == "apps" and doc["by"] == "app"
    assert doc["filters"] == {"since": None, "until": None, "hosts": [], "top": 3}
    rows = {r["app"]: r for r in doc["rows"]}
    assert list(rows) == ["nwvideo", "https", "ssh"]  # most bytes first (dns has fewer)
    assert rows["nwvideo"]["sources"] == ["dns", "tls"]
    assert rows["nwvideo"]["names"] == [at.NAME]
    assert rows["nwvideo"]["flows"] == 2
    assert rows["https"]["sources"] == ["port"] and rows["https"]["names"] == []
    # the frames of the two labelled TCP streams (Ethernet: 14 bytes more than IP)
    assert rows["nwvideo"]["packets"] == 7 + 5
    assert doc["total_bytes"] > doc["labelled_bytes"] > 0  # the UDP datagram has no label


def test_report_apps_by_name_json(analysed: Path) -> None:
    doc = report(analysed, "--by", "name")
    assert doc["by"] == "name"
    assert [(r["name"], r["source"], r["app"], r["frames"], r["packets"])
            for r in doc["rows"]] == [(at.NAME, "tls", "nwvideo", 1, 7),
                                      (at.NAME, "dns", "nwvideo", 2, 5)]


def test_report_apps_table(analysed: Path) -> None:
    r = run("report", "apps", "--store", str(analysed))
    assert r.returncode == 0, r.stderr
    assert "Bytes per app" in r.stdout
    line = next(x for x in r.stdout.splitlines() if "nwvideo" in x)
    assert "dns, tls" in line and at.NAME in line
    assert "labelled" in r.stdout.splitlines()[-1]
    r = run("report", "apps", "--by", "name", "--store", str(analysed), "--top", "1")
    assert r.returncode == 0, r.stderr
    assert "Server name" in r.stdout and r.stdout.count(at.NAME) == 1


def test_no_apps_leaves_records_unlabelled(tmp_path: Path) -> None:
    cap = at.write_capture(tmp_path / "app.pcap")
    r = run("analyze", str(cap), "--store", str(tmp_path / "s"), "--no-apps",
            "--no-hierarchy")
    assert r.returncode == 0, r.stderr
    doc = report(tmp_path / "s")
    assert doc["rows"] == [] and doc["labelled_bytes"] == 0 and doc["total_bytes"] > 0
    assert report(tmp_path / "s", "--by", "name")["rows"] == []


def test_bad_rules_file_is_exit_2_before_any_work(tmp_path: Path) -> None:
    cap = at.write_capture(tmp_path / "app.pcap")
    rules = tmp_path / "bad.toml"
    rules.write_text('[[app]]\nname = "x"\nmatches = ["*.x"]\n')
    r = run("analyze", str(cap), "--store", str(tmp_path / "s"), "--apps-rules", str(rules))
    assert r.returncode == 2
    assert f"netwarden: error: {rules}: app[0].matches: unknown key" in r.stderr.splitlines()
    assert not (tmp_path / "s").exists()
