"""Benchmarks for the foundation: prints the figures the issue asks for.

    .venv/bin/python bench/run.py [--packets 1000000] [--rows 1000000] [--no-server]

1. accounting packets/s (the vectorised parser + aggregation, no tshark, no store) beside
   ``tshark -q -z conv,ip`` on the same generated file, and their ratio;
2. full ``netwarden analyze`` packets/s (accounting, tshark hierarchy, chdb store) beside
   ``tshark -q -z io,phs`` on the same file;
3. store ingest, flow records/s, into chdb and into a clickhouse-server 18.16 started on
   a free loopback port (the test fixture's launcher).

Every figure is wall-clock on this machine, median of ``--repeat`` runs (tshark runs once:
it is the slow side). Targets: accounting ≥ 500 k packets/s; analyze no slower than
io,phs; ingest ≥ 200 k records/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

from gen_capture import generate  # noqa: E402


def timed(fn: object, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def tshark_seconds(path: Path, stat: str) -> float:
    env = dict(os.environ, LC_ALL="C")
    with tempfile.TemporaryDirectory() as cfg:
        env["WIRESHARK_CONFIG_DIR"] = cfg
        t = time.perf_counter()
        subprocess.run(["tshark", "-n", "-q", "-r", str(path), "-z", stat], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - t


def accounting(path: Path) -> None:
    from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings

    FileAnalyzer("bench", PipelineSettings(hierarchy=False)).run(path, lambda batch: None)


def analyze_cli(path: Path) -> float:
    with tempfile.TemporaryDirectory() as store:
        t = time.perf_counter()
        subprocess.run([str(REPO / ".venv/bin/netwarden"), "analyze", str(path), "--store",
                        store], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t


def ingest(target: str, rows: int) -> float:
    from netwarden.collector.store import open_store
    from netwarden.collector.store.bench import bench_ingest

    store = open_store(target, database=f"nw_bench_{uuid.uuid4().hex[:8]}")
    store.start()
    try:
        return bench_ingest(store, rows)
    finally:
        store.drop_database()
        store.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-server", action="store_true")
    a = ap.parse_args()
    n = a.packets
    with tempfile.TemporaryDirectory() as tmp:
        cap = Path(tmp) / "bench.pcap"
        generate(cap, n, 5000)
        print(f"capture: {n} packets, {cap.stat().st_size / 1e6:.0f} MB (bench/gen_capture.py)")

        acc = timed(lambda: accounting(cap), a.repeat)
        conv = tshark_seconds(cap, "conv,ip")
        print(f"accounting          {n / acc / 1e3:8.0f} k packets/s   ({acc:.2f} s)")
        print(f"tshark -z conv,ip   {n / conv / 1e3:8.0f} k packets/s   ({conv:.2f} s)"
              f"   ratio {conv / acc:.1f}x")

        full = statistics.median(analyze_cli(cap) for _ in range(max(1, a.repeat - 2)))
        phs = tshark_seconds(cap, "io,phs")
        print(f"netwarden analyze   {n / full / 1e3:8.0f} k packets/s   ({full:.2f} s)")
        print(f"tshark -z io,phs    {n / phs / 1e3:8.0f} k packets/s   ({phs:.2f} s)"
              f"   analyze/io,phs time {full / phs:.2f}")

        rate = ingest(str(Path(tmp) / "chdb"), a.rows)
        print(f"ingest chdb         {rate / 1e3:8.0f} k records/s  ({a.rows} records)")
        if not a.no_server:
            from fixtures.clickhouse_server import ClickHouseServer

            server = ClickHouseServer(Path(tmp) / "server")
            server.start()
            try:
                rate = ingest(server.url, a.rows)
                print(f"ingest server 18.16 {rate / 1e3:8.0f} k records/s  ({a.rows} records)")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
