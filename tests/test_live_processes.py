"""Process attribution live (acceptance): real capture, real sockets, real collector.

Two namespaces ``h1`` and ``h2`` joined by a veth pair. ``h1`` runs ``netwarden sensor
run`` on its end of the link and ``netwarden collector serve`` (embedded chdb store) on
its loopback. Two processes in ``h1`` name themselves through /proc/self/comm and send
known traffic to ``h2``:

* ``nw-alpha``: UDP datagrams of a known size from a socket that exists for about half a
  second and is closed right after the last one (gone long before its records are
  labelled);
* ``nw-beta``: a TCP transfer of a known size, paced over about half a second.

The sensor's periodic socket scan is set to 30 s, so only the scans asked for by the
first packets of an unknown local port can find them. ``report processes`` must credit
exactly the UDP frame bytes to nw-alpha (computed from the datagram sizes) and exactly
the bytes of beta's TCP conversation (``report conversations --kind tcp``) to nw-beta,
with the right pids, nothing to anybody else, and report what share of the host's own
bytes got a process. Completion is decided by a marker datagram sent from h2 after all
the traffic (see tests/test_fleet.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.netns import (
    Topology,
    netns_fixture,  # noqa: F401  (the netns fixture)
)
from fixtures.procs import Proc, start_netwarden, tail, wait_until, write_sensor_config

NETWARDEN = Path(sys.executable).with_name("netwarden")
PORT = 50561  # the collector's port on h1's loopback (a namespace of its own)
COLLECTOR = f"127.0.0.1:{PORT}"
ETH, IP4, UDP_HEADER = 14, 20, 8
ALPHA = {"count": 30, "size": 700, "rate": 60.0, "port": 9301}  # ~0.5 s of datagrams
BETA = {"bytes": 240_000, "chunks": 12, "pause": 0.04, "port": 9302}  # ~0.5 s of sending
MARKER = (46001, 9399, 24)  # h2 -> h1: source port, destination port, payload

# Each sender names itself, prints {"pid", "sport"} once its socket exists, sends, closes.
SENDER = r"""
import json, os, socket, sys, time
name, kind, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open("/proc/self/comm", "w") as f:
    f.write(name)
if kind == "udp":
    count, size, rate = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    print(json.dumps({"pid": os.getpid(), "sport": s.getsockname()[1]}), flush=True)
    payload = bytes(size)
    start = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        s.sendto(payload, (addr, port))
    s.close()
else:
    total, chunks, pause = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    s = socket.create_connection((addr, port), timeout=20)
    print(json.dumps({"pid": os.getpid(), "sport": s.getsockname()[1]}), flush=True)
    each = total // chunks
    for i in range(chunks):
        s.sendall(bytes(each if i < chunks - 1 else total - each * (chunks - 1)))
        time.sleep(pause)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
"""


class Host:
    """h1 with its collector and sensor."""

    def __init__(self, topo: Topology, tmp: Path) -> None:
        self.topo = topo
        self.tmp = tmp
        self.link = topo.link("h1", "h2")
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str]) -> Proc:
        p = start_netwarden(self.topo, "h1", name, argv, self.tmp)
        self.procs.append(p)
        return p

    def logs(self) -> str:
        return "\n".join(tail(p.log) for p in self.procs)

    def report(self, *args: str, check: bool = True) -> dict[str, Any] | None:
        """``report ARGS --format json`` asked of the collector; None when it fails and
        not ``check`` (an empty store is refused)."""
        proc = self.topo.run("h1", [str(NETWARDEN), "report", *args, "--collector", COLLECTOR,
                                    "--format", "json"], check=False, timeout=60)
        if proc.returncode != 0 and not check:
            return None
        assert proc.returncode == 0, f"report {' '.join(args)}: {proc.stderr}\n{self.logs()}"
        out: dict[str, Any] = json.loads(proc.stdout)
        return out


def send(topo: Topology, name: str, kind: str, addr: str, port: int, *args: object
         ) -> tuple[subprocess.Popen[str], dict[str, int]]:
    proc = topo.popen("h1", [sys.executable, "-c", SENDER, name, kind, addr, str(port),
                             *map(str, args)])
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first, f"{name} did not start: {proc.communicate(timeout=10)[1]}"
    return proc, json.loads(first)


def finish(proc: subprocess.Popen[str], what: str) -> None:
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, f"{what}: {err}"


@pytest.fixture
def hosts(netns: Callable[..., Topology]) -> Topology:
    return netns(["h1", "h2"])


def test_report_processes_credits_each_process_its_bytes(hosts: Topology,
                                                         tmp_path: Path) -> None:
    h1 = Host(hosts, tmp_path)
    collector = h1.start("collector", ["collector", "serve", "--listen", COLLECTOR, "--store",
                                       str(tmp_path / "store"), "--database", "nw_procs"])
    # the periodic scan is 30 s: only the scans asked for by packets find the senders
    config = write_sensor_config(tmp_path / "sensor.toml", "h1", h1.link.ifname("h1"),
                                 COLLECTOR, stop_timeout_s=5.0,
                                 extra="[dissection]\nenabled = false\n"
                                       "[processes]\nscan_interval_s = 30\n")
    collector.wait_event("collector listening", timeout_s=60)
    sensor = h1.start("sensor", ["sensor", "run", "--config", str(config)])
    collector.wait_event("sensor connected", host="h1", timeout_s=30)

    peer = h1.link.addr("h2", 4)
    recv = hosts.traffic_popen("h2", "udp-recv", peer, str(ALPHA["port"]), "--count",
                               str(ALPHA["count"]), "--timeout", "20")
    server = hosts.traffic_popen("h2", "tcp-server", peer, str(BETA["port"]), "--timeout", "20")
    for p in (recv, server):
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"
    alpha, a = send(hosts, "nw-alpha", "udp", peer, int(ALPHA["port"]), ALPHA["count"],
                    ALPHA["size"], ALPHA["rate"])
    beta, b = send(hosts, "nw-beta", "tcp", peer, int(BETA["port"]), BETA["bytes"],
                   BETA["chunks"], BETA["pause"])
    finish(alpha, "nw-alpha")
    finish(beta, "nw-beta")
    out, _ = recv.communicate(timeout=30)
    assert json.loads(out.splitlines()[-1])["received"] == ALPHA["count"]
    out, _ = server.communicate(timeout=30)
    assert json.loads(out.splitlines()[-1])["received"] == BETA["bytes"]

    sport, dport, size = MARKER
    hosts.traffic("h2", "udp-send", h1.link.addr("h1", 4), str(dport), "--count", "1",
                  "--size", str(size), "--src-port", str(sport))

    def marker_stored() -> bool:
        found = h1.report("conversations", "--kind", "udp", check=False)
        rows = found["rows"] if found is not None else []
        return any((r["port_a"], r["port_b"]) == (sport, dport) for r in rows)

    wait_until(marker_stored, 30, "the marker datagram in the reports", h1.logs)

    got = h1.report("processes", "--top", "50")
    assert got is not None
    rows = {r["process"]: r for r in got["rows"]}
    assert sorted(rows) == ["nw-alpha", "nw-beta"], f"{got}\n{h1.logs()}"

    alpha_bytes = int(ALPHA["count"]) * (ETH + IP4 + UDP_HEADER + int(ALPHA["size"]))
    assert rows["nw-alpha"] == {
        "process": "nw-alpha", "pids": [a["pid"]], "bytes": alpha_bytes, "bytes_in": 0,
        "bytes_out": alpha_bytes, "bytes_local": 0, "frames": ALPHA["count"], "flows": 1}

    convs = h1.report("conversations", "--kind", "tcp")
    assert convs is not None
    tcp = [r for r in convs["rows"] if r["port_a"] == b["sport"] and r["port_b"] == BETA["port"]]
    assert len(tcp) == 1, f"beta's TCP conversation: {tcp}"
    conv = tcp[0]
    assert conv["bytes_a_to_b"] > int(BETA["bytes"])  # the payload and its headers
    assert rows["nw-beta"] == {
        "process": "nw-beta", "pids": [b["pid"]],
        "bytes": conv["bytes_a_to_b"] + conv["bytes_b_to_a"],
        "bytes_in": conv["bytes_b_to_a"], "bytes_out": conv["bytes_a_to_b"], "bytes_local": 0,
        "frames": conv["frames_a_to_b"] + conv["frames_b_to_a"], "flows": 1}

    # the share: every attributed byte is in a row; the rest (the marker, neighbour
    # discovery...) got no process
    owned = sum(r["bytes"] for r in got["rows"])
    assert got["process_bytes"] == owned
    assert owned < got["local_bytes"] < owned + 2000, got
    assert got["attributed"] == pytest.approx(owned / got["local_bytes"])

    assert sensor.terminate() == 0, tail(sensor.log)
    assert sensor.count("process attribution stopped") == 1, tail(sensor.log)
    assert collector.terminate() == 0, tail(collector.log)
