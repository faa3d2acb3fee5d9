"""Collector ingest: flow records/s stored from several concurrent sensor streams.

    .venv/bin/python bench/collector_ingest.py [--sensors 4] [--batches 20] [--rows 25000]
                                               [--repeat 3] [--json]

A real :class:`~netwarden.collector.server.CollectorServer` (this process) on 127.0.0.1,
with an embedded chdb store in a temporary directory, serves ``--sensors`` sensor
processes. Each one is a real :class:`~netwarden.sensor.agent.SensorAgent` (its gRPC
stream, outbox, acknowledgements) whose outbox is filled beforehand with ``--batches``
synthetic FlowBatches of ``--rows`` flow records each (one 10 s interval per batch, like a
busy host's flushes; :func:`netwarden.collector.store.bench.synthetic_batch`), encoded
before the clock starts. On "go" all sensors connect at once; the figure is the records
stored per second from "go" until the last sensor has every batch acknowledged (the
collector acknowledges a batch only once it is stored), checked against ``count()`` of the
flows table. Each repeat uses a fresh database; the median is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ME = str(Path(__file__).resolve())
INTERVAL_S = 10


class _Idle:
    """A packet source with no packets (the outbox already holds what is sent)."""

    class _Stats:
        received = 0
        dropped = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def read(self, timeout_s: float) -> None:
        time.sleep(timeout_s)

    def stats(self) -> _Stats:
        return self._Stats()


def sensor(collector: str, host: str, batches: int, rows: int, seed: int) -> dict[str, Any]:
    """One sensor process: encode, say READY, wait for "go", send everything, report."""
    from netwarden.collector.store.bench import synthetic_batch
    from netwarden.sensor.agent import SensorAgent
    from netwarden.sensor.config import SensorConfig
    from netwarden.sensor.outbox import Outbox
    from netwarden.sensor.wire import encode_batch

    cfg = SensorConfig.model_validate({
        "sensor": {"host": host, "interval_s": INTERVAL_S},
        "dissection": {"enabled": False},
        "transport": {"collector": collector, "backoff_initial_s": 0.1, "backoff_max_s": 0.5,
                      "stop_timeout_s": 1.0},
    })
    outbox = Outbox(1 << 40)
    start_s = 1_700_000_000 + seed * 100_000
    for i in range(batches):
        b = synthetic_batch(rows, host=host, start_s=start_s + i * INTERVAL_S, intervals=1,
                            interval_s=INTERVAL_S, seed=seed * 1000 + i)
        outbox.put(encode_batch(b, 0), int(b.stats["packets"].sum()))
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("sensor: expected 'go'")
    agent = SensorAgent(cfg, _Idle(), outbox=outbox)
    agent.start()
    ok = outbox.wait_empty(600.0)
    done = time.time()
    agent.stop(timeout_s=1.0)
    return {"host": host, "acked": outbox.stats.acked, "all_acked": ok, "done": done}


def measure(sensors: int, batches: int, rows: int, store_dir: Path) -> dict[str, Any]:
    """One run: a fresh database on ``store_dir``; records/s end to end."""
    from netwarden.collector.config import CollectorConfig
    from netwarden.collector.server import CollectorServer

    db = f"nw_bench_{uuid.uuid4().hex[:8]}"
    cfg = CollectorConfig.model_validate({
        "collector": {"listen": "127.0.0.1:0"},
        "store": {"target": str(store_dir), "database": db},
    })
    server = CollectorServer(cfg)
    server.start()
    procs: list[subprocess.Popen[str]] = []
    try:
        for i in range(sensors):
            procs.append(subprocess.Popen(
                [sys.executable, ME, "_sensor", server.address, f"bench-{i + 1}", str(batches),
                 str(rows), str(i + 1)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "READY":
                raise SystemExit("collector_ingest: a sensor did not start")
        t0 = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=900)
            if p.returncode != 0:
                raise SystemExit(f"collector_ingest: a sensor failed ({p.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        t1 = max(r["done"] for r in results)
        assert server.store is not None
        stored = int(server.store.query("SELECT count() FROM flows")[0][0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.stop()
    expected = sensors * batches * rows
    if stored != expected or not all(r["all_acked"] for r in results):
        raise SystemExit(f"collector_ingest: stored {stored} of {expected} records")
    seconds = t1 - t0
    return {"sensors": sensors, "records": stored, "seconds": seconds,
            "records_per_s": stored / seconds}


def main() -> None:
    from netwarden.logging import configure_logging

    configure_logging("warning")
    if sys.argv[1:2] == ["_sensor"]:
        v = sys.argv[2:]
        print(json.dumps(sensor(v[0], v[1], int(v[2]), int(v[3]), int(v[4]))), flush=True)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sensors", type=int, default=4)
    p.add_argument("--batches", type=int, default=20, help="batches per sensor")
    p.add_argument("--rows", type=int, default=25_000, help="flow records per batch")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true",
                   help="end with the runs and the median as one JSON line")
    a = p.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="nw-bench-collector.") as tmp:
        for _ in range(a.repeat):
            r = measure(a.sensors, a.batches, a.rows, Path(tmp) / "chdb")
            runs.append(r)
            print(f"{r['sensors']} sensors: {r['records']:,} records in {r['seconds']:.2f} s"
                  f" = {r['records_per_s'] / 1e3:.0f} k records/s", flush=True)
    median = statistics.median(r["records_per_s"] for r in runs)
    if a.json:
        print(json.dumps({"runs": runs, "median_records_per_s": median}))
    else:
        print(f"median {median / 1e3:.0f} k records/s")


if __name__ == "__main__":
    main()
