"""The live demo (scripts/demo_live.py, ``make demo``): a whole run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.netns import _ip, require_netns

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "demo_live.py"
NETWARDEN = Path(sys.executable).with_name("netwarden")


def _namespaces() -> set[str]:
    out = _ip("netns", "list", check=False).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.split()}


@pytest.fixture
def demo_run() -> Iterator[tuple[subprocess.CompletedProcess[str], Path]]:
    """One whole demo run with a 2 MB bulk upload; its output and kept store."""
    require_netns()
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--bulk-mb", "2"], capture_output=True,
                          text=True, timeout=180)
    m = re.search(r"--store (\S+)", proc.stdout)
    store = Path(m.group(1)) if m else Path("/nonexistent")
    try:
        assert not {n for n in _namespaces() - before if n.startswith("nwd-")}
        yield proc, store
    finally:
        if m:
            shutil.rmtree(store.parent, ignore_errors=True)


def _report(store: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([str(NETWARDEN), "report", *args, "--store", str(store), "--format",
                          "json"], capture_output=True, text=True, check=True, timeout=120)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _names(nodes: list[dict[str, Any]]) -> set[str]:
    found = set()
    for n in nodes:
        found.add(n["protocol"])
        found |= _names(n.get("children", []))
    return found


@pytest.mark.slow
def test_demo_runs_and_both_sensors_count_the_same_traffic(
        demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, store = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    for heading in ("Top talkers", "Top ports", "TCP conversations", "UDP conversations",
                    "Protocol hierarchy", "Traffic over time"):
        assert f"== {heading} ==" in proc.stdout
    assert os.path.isdir(store)

    tcp = _report(store, "conversations", "--kind", "tcp")["rows"]
    bulk = [r for r in tcp if r["port_b"] == 5001]
    by_host: dict[str, list[tuple[Any, ...]]] = {}
    for r in bulk:
        by_host.setdefault(r["host"], []).append(
            (r["a"], r["b"], r["port_a"], r["frames_a_to_b"], r["bytes_a_to_b"],
             r["frames_b_to_a"], r["bytes_b_to_a"]))
    assert set(by_host) == {"server", "client"}
    assert sorted(by_host["server"]) == sorted(by_host["client"])  # the same packets
    uploads = sorted(by_host["client"])
    assert len(uploads) == 2  # one over IPv4, one over IPv6
    assert {":" in u[0] for u in uploads} == {True, False}
    for u in uploads:  # 2 MB of payload plus the headers of a few hundred frames
        assert 2_000_000 < u[4] < 2_200_000

    udp = _report(store, "conversations", "--kind", "udp", "--host", "client")["rows"]
    assert len([r for r in udp if r["port_b"] == 53]) == 4  # 2 lookups x 2 IP versions
    http = [r for r in tcp if r["port_b"] == 80 and r["host"] == "client"]
    assert len(http) == 6  # 3 pages x 2 IP versions
    protocols = _names(_report(store, "protocols", "--host", "client")["rows"])
    assert {"ip", "ipv6", "tcp", "udp", "dns", "http"} <= protocols
