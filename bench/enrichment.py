"""Benchmarks of the enrichment stages (the analyses issue): prints the figures.

    .venv/bin/python bench/enrichment.py [--capture FILE] [--sockets 2000] [--repeat 3]

1. Process attribution: cost of one socket-table scan of this namespace (the four
   ``/proc/net`` files, then the owners of new sockets through ``/proc/[pid]/fd``) with
   1 and ``--sockets`` extra UDP sockets open, beside ``psutil.net_connections``; and
   ``enrich()`` per flow record.
2. App labels: ``FileAnalyzer`` on ``--capture`` (default: the TLS capture of
   ../shared/pcaps) with and without the labeller (flow heads copied, tshark on them in
   a worker thread, records labelled), wall-clock and the share of records labelled.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

from netwarden.sensor.apprules import load_rules
from netwarden.sensor.apps import AppLabeller
from netwarden.sensor.enrich import Enrichers
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings
from netwarden.sensor.processes import ProcessEnricher, SocketTable
from netwarden.sensor.records import FLOW_COLUMNS, STAT_COLUMNS, FlowBatch, empty
from netwarden.sensor.sockets import find_owners, read_sockets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CAPTURE = REPO.parent / "shared" / "pcaps" / "pcapplusplus-tls2.pcap"


def best_ms(fn: Callable[[], object], k: int = 15) -> float:
    b = float("inf")
    for _ in range(k):
        t = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t)
    return b * 1000


def scans(extra: int) -> None:
    socks = []
    for _ in range(extra):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    try:
        listed = read_sockets()
        inodes = {x.inode for x in listed}
        newest = os.fstat(socks[-1].fileno()).st_ino
        table = SocketTable()
        table.refresh()
        print(f"  {extra:>5} extra sockets ({len(listed)} listed): read /proc/net "
              f"{best_ms(read_sockets):.2f} ms; owners of all (first scan) "
              f"{best_ms(lambda: find_owners(inodes)):.2f} ms; owner of one new socket "
              f"{best_ms(lambda: find_owners({newest})):.2f} ms; a scan with nothing new "
              f"{best_ms(table.refresh):.2f} ms; psutil.net_connections "
              f"{best_ms(lambda: psutil.net_connections('inet')):.2f} ms")
    finally:
        for s in socks:
            s.close()


def enrich_cost(n: int = 100_000) -> None:
    """``ProcessEnricher.enrich`` on ``n`` records whose local ports are this process's."""
    socks = []
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    try:
        ports = np.array([s.getsockname()[1] for s in socks], dtype=np.uint16)
        table = SocketTable()
        table.refresh()
        e = ProcessEnricher(table, start=False)
        rng = np.random.default_rng(0)
        f = empty(FLOW_COLUMNS, n)
        f["direction"][:] = 2
        f["ip_proto"][:] = 17
        f["src_ip"][:] = b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1])
        f["dst_ip"][:] = b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1])
        f["src_port"][:] = ports[rng.integers(0, len(ports), n)]
        f["dst_port"][:] = 9
        f["bytes"][:] = 100
        batch = FlowBatch.empty("bench", 10)
        batch.flows = f
        batch.stats = empty(STAT_COLUMNS, 1)
        t = time.perf_counter()
        e.enrich(batch)
        dt = time.perf_counter() - t
        got = int((batch.flows["pid"] == os.getpid()).sum())
        print(f"  enrich(): {n:,} records in {dt * 1000:.0f} ms "
              f"({dt / n * 1e6:.2f} µs/record), {got:,} attributed to this process")
    finally:
        for s in socks:
            s.close()


def apps(capture: Path, repeat: int) -> None:
    settings = PipelineSettings(hierarchy=False)
    rules = load_rules()
    labelled: list[float] = []

    def run(with_apps: bool) -> None:
        enrichers = Enrichers([AppLabeller(rules)] if with_apps else [])
        got: list[FlowBatch] = []
        try:
            FileAnalyzer("bench", settings, enrichers).run(capture, got.append)
        finally:
            enrichers.close()
        if with_apps:
            by = np.concatenate([b.flows["bytes"] for b in got]).astype(float)
            app = np.concatenate([b.flows["app"] for b in got])
            labelled.append(float(by[app != ""].sum() / max(by.sum(), 1)))

    plain = [timed(lambda: run(False)) for _ in range(repeat)]
    with_apps = [timed(lambda: run(True)) for _ in range(repeat)]
    print(f"  {capture.name}: accounting {statistics.median(plain):.2f} s, with app labels "
          f"{statistics.median(with_apps):.2f} s (median of {repeat}); "
          f"{100 * labelled[-1]:.1f} % of the bytes labelled")


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    print("Process attribution (this namespace's sockets; best of 15):")
    for extra in (1, a.sockets):
        scans(extra)
    enrich_cost()
    print("App labels (offline, no hierarchy pass, no store):")
    apps(a.capture, a.repeat)


if __name__ == "__main__":
    main()
