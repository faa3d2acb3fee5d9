"""Benchmarks: prints the figures the issues ask for, beside their targets.

    .venv/bin/python bench/run.py [--packets 1000000] [--rows 1000000] [--repeat 3]
        [--no-server] [--skip-offline] [--skip-live] [--skip-collector]
        [--rates 100000,...] [--live-seconds 3] [--sensors 4]

Offline (the foundation issue; ``--skip-offline``):

1. accounting packets/s (the vectorised parser + aggregation, no tshark, no store) beside
   ``tshark -q -z conv,ip`` on the same generated file, and their ratio;
2. full ``netwarden analyze`` packets/s (accounting, tshark hierarchy, chdb store) beside
   ``tshark -q -z io,phs`` on the same file;
3. store ingest, flow records/s, into chdb and into a clickhouse-server 18.16 started on
   a free loopback port (the test fixture's launcher).

Live (issue 3), each part a subprocess whose progress is shown as it runs:

4. live capture on a veth pair between two network namespaces (``bench/live_probe.py``,
   needs root; ``--skip-live``): the highest rate with zero loss on a ladder of rates,
   CPU seconds per million packets on the accounting path and resident memory at 100 k
   packets/s, and the same for the whole ``netwarden sensor run`` (with its tshark
   dissection) streaming to a collector;
5. collector ingest (``bench/collector_ingest.py``; ``--skip-collector``): flow records/s
   stored from ``--sensors`` concurrent sensor streams (real agents, real gRPC, chdb).

Every figure is wall-clock on this machine, median of ``--repeat`` runs (tshark runs once:
it is the slow side). Targets: accounting ≥ 500 k packets/s; analyze no slower than
io,phs; ingest ≥ 200 k records/s; live: zero loss at ≥ 300 k packets/s, ≤ 2 CPU s per
million packets on the accounting path, ≤ 300 MB resident.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

from gen_capture import generate  # noqa: E402
from live_probe import DEFAULT_RATES  # noqa: E402


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
        return float(bench_ingest(store, rows))
    finally:
        store.drop_database()
        store.stop()


def part(argv: list[str]) -> dict[str, Any]:
    """Run a benchmark script (this interpreter) that ends with a JSON line; show the rest
    of its output as it comes; the JSON."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    for line in proc.stdout:
        if line.startswith("{"):
            result = json.loads(line)
        else:
            print(f"    {line.rstrip()}", flush=True)
    if proc.wait() != 0 or result is None:
        raise SystemExit(f"bench: {' '.join(argv)} failed (exit {proc.returncode})")
    return result


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def offline(a: argparse.Namespace) -> None:
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


def live(a: argparse.Namespace) -> None:
    print(f"live capture on a veth pair (bench/live_probe.py; {a.repeat} ladders, "
          f"{a.live_seconds:g} s per rate; then the whole sensor at 100 k/s):", flush=True)
    r = part([str(REPO / "bench" / "live_probe.py"), "--rates", a.rates, "--seconds",
              str(a.live_seconds), "--repeat", str(a.repeat), "--json"])
    s, w = r["summary"], r["sensor"]
    best = s["best"]
    stops = {"loss": "a loss", "sender": "the sender's speed (no loss)",
             "end": "the end of the ladder"}
    print(f"live: zero loss up to         {best / 1e3:8.0f} k packets/s   target ≥ 300 k   "
          f"{verdict(best >= 300_000)}   (ladders: "
          f"{', '.join(f'{b / 1e3:.0f} k' for b in s['bests'])}; stopped by "
          f"{' / '.join(stops[x] for x in dict.fromkeys(s['limits']))})")
    if s["accounting_cpu_s_per_M"] is None:
        print("live: no lossless run at 100 k packets/s: no CPU or memory figure")
        return
    acc = s["accounting_cpu_s_per_M"]
    print(f"live: CPU at 100 k/s          {acc:8.2f} s per M packets, accounting path   "
          f"target ≤ 2 s   {verdict(acc <= 2.0)}   (capture process "
          f"{s['cpu_s_per_M']:.2f} s; whole sensor with tshark dissection "
          f"{w['cpu_s_per_M']:.2f} s)")
    rss = w["peak_rss_sensor_mb"]
    print(f"live: resident at 100 k/s     {rss:8.0f} MB, sensor process   target ≤ 300 MB   "
          f"{verdict(rss <= 300)}   (+ its tshark child {w['peak_rss_tshark_mb']:.0f} MB = "
          f"{w['peak_rss_total_mb']:.0f} MB {verdict(w['peak_rss_total_mb'] <= 300)}; "
          f"capture + accounting alone {s['peak_rss_mb']:.0f} MB)")
    lost = int(w["lost"])
    print(f"live: whole sensor            {int(w['sent']):,} packets sent, "
          f"{int(w['stored_packets']):,} stored ({lost:,} lost, kernel drops "
          f"{int(w['kernel_dropped']):,}, {int(w['not_dissected']):,} not dissected: "
          f"sampled for the hierarchy)")


def collector(a: argparse.Namespace) -> None:
    print(f"collector ingest (bench/collector_ingest.py; {a.sensors} sensor streams, chdb):",
          flush=True)
    r = part([str(REPO / "bench" / "collector_ingest.py"), "--sensors", str(a.sensors),
              "--repeat", str(a.repeat), "--json"])
    runs = r["runs"]
    print(f"collector ingest    {r['median_records_per_s'] / 1e3:8.0f} k records/s  "
          f"({a.sensors} concurrent sensor streams, {runs[0]['records']:,} records, "
          f"median of {len(runs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-server", action="store_true")
    ap.add_argument("--skip-offline", action="store_true", help="skip parts 1-3")
    ap.add_argument("--skip-live", action="store_true", help="skip the live capture part")
    ap.add_argument("--skip-collector", action="store_true",
                    help="skip the collector ingest part")
    ap.add_argument("--rates", default=DEFAULT_RATES, help="live: the ladder, packets/s")
    ap.add_argument("--live-seconds", type=float, default=3.0, help="live: seconds per rate")
    ap.add_argument("--sensors", type=int, default=4, help="collector: sensor streams")
    a = ap.parse_args()
    if not a.skip_offline:
        offline(a)
    if not a.skip_live:
        if os.geteuid() != 0:
            print("live capture: skipped (it needs root for network namespaces)")
        else:
            live(a)
    if not a.skip_collector:
        collector(a)


if __name__ == "__main__":
    main()
