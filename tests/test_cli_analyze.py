"""``netwarden analyze`` as a user runs it: a real subprocess, a real store, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import truth

NETWARDEN = Path(sys.executable).with_name("netwarden")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETWARDEN), "--log-level", "warning", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def need(name: str) -> Path:
    p = truth.PCAPS / name
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


def test_analyze_then_report_json_equals_tshark(tmp_path: Path) -> None:
    cap = need("zeek-vxlan-encapsulated-http.pcap")
    store = tmp_path / "store"
    r = run("analyze", str(cap), "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert "12 packets" in r.stdout
    t = truth.load_truth(cap)
    for kind in truth.CONV_KINDS:
        r = run("report", "conversations", "--kind", kind, "--store", str(store),
                "--format", "json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert truth.compare_conversations(kind, t, doc["rows"]) == []
    r = run("report", "protocols", "--store", str(store), "--format", "json")
    assert truth.compare_tree(t["phs"], json.loads(r.stdout)["rows"]) == []


def test_cut_file_is_read_up_to_the_cut_with_a_warning(tmp_path: Path) -> None:
    cap = need("suricata-verify-http-mime-truncated_input.pcap")
    r = run("analyze", str(cap), "--store", str(tmp_path / "s"), "--no-hierarchy")
    assert r.returncode == 0, r.stderr
    assert "2696 packets" in r.stdout
    warn = [x for x in r.stderr.splitlines() if "warning" in x]
    assert warn and "cut short" in warn[0] and cap.name in warn[0]


def test_not_a_capture_gets_one_line_and_exit_1(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not a pcap\n")
    r = run("analyze", str(bogus), "--store", str(tmp_path / "s"))
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines == [f"netwarden: error: {bogus}: not a pcap or pcapng capture "
                     f"(magic 0x6c6c6568)"]


def test_one_bad_file_among_good_ones_still_stores_the_good(tmp_path: Path) -> None:
    cap = need("zeek-5-pings.pcap")
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"\x00" * 64)
    store = tmp_path / "s"
    r = run("analyze", str(bogus), str(cap), "--store", str(store), "--no-hierarchy")
    assert r.returncode == 1
    assert "10 packets" in r.stdout
    r = run("report", "talkers", "--store", str(store), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "key,bytes,frames"


def test_bad_config_names_the_key_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "nw.toml"
    cfg.write_text("[pipeline]\nintervall = 10\n[store]\nbatch_rows = 0\n")
    r = run("analyze", str(need("zeek-5-pings.pcap")), "--config", str(cfg))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert any("pipeline.intervall" in x and "unknown key" in x for x in lines), lines
    assert any("store.batch_rows" in x for x in lines), lines
    assert all(x.startswith("netwarden: error: ") for x in lines)


def test_dump_prints_the_effective_config() -> None:
    r = run("analyze", "x.pcap", "--interval", "30", "--dump")
    assert r.returncode == 0, r.stderr
    assert "interval_s = 30" in r.stdout
    assert "batch_rows = 100000" in r.stdout
