"""Policy evaluation: milliseconds to read every policy's usage, at 1 M and 5 M minute rows.

    .venv/bin/python bench/policy_eval.py [--rows 1000000 5000000] [--hosts 100]
                                          [--repeat 20] [--server | --store URL] [--json]

For each ``--rows`` figure, a fresh store gets that
many ``policy_usage`` minute rows per policy (``--hosts`` hosts x rows/hosts minutes
ending at NOW), inserted 100 000 rows at a time the way the collector writes them (the
views fill the hourly and daily rollups; nothing is merged by hand). Two policies count
them: ``rolling``, a rolling window exactly as long as the history (every row is in its
period), and ``monthly-kolkata``, a monthly period reset at midnight Asia/Kolkata (18:30
UTC: its first half hour is read from the minute table).

Printed per figure (median and min of ``--repeat`` runs, milliseconds):

* ``rollups``: :func:`~netwarden.collector.policy.usage.read_usages` (days, edge hours
  and edge minutes, one query for both policies), what the engine reads;
* ``minutes``: the same sums from the minute table alone (``rollups=False``, the way
  evaluation read before the rollups);
* ``compute``: :meth:`PolicyEngine.compute`, a whole evaluation (usage, known hosts,
  the desired state).

The store is an embedded chdb in a temporary directory; with ``--server`` a
clickhouse-server 18.16 this script starts (tests/fixtures/clickhouse_server.py, in a
temporary directory, stopped at the end); with ``--store clickhouse://HOST:PORT`` that
server (a database ``bench_*`` is made and dropped).

The two reads are checked to give the same bytes per policy and host.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOW = datetime(2026, 3, 31, 12, 0, 30, tzinfo=UTC)
CHUNK = 100_000


def policies(minutes: int) -> Any:
    from netwarden.policy.model import Period, Policy, PolicySet, Selector, Tier

    rolling = Period(kind="rolling", time_zone=None, reset_day=None,
                     window=timedelta(minutes=minutes))
    monthly = Period(kind="monthly", time_zone="Asia/Kolkata", reset_day=1)
    return PolicySet(policies=tuple(
        Policy(name=name, who=Selector(fleet=True), quota=1 << 40, period=period,
               tiers=(Tier(50.0, "alert"),))
        for name, period in (("rolling", rolling), ("monthly-kolkata", monthly))))


def fill(store: Any, plan: Any, hosts: int, minutes: int) -> None:
    from netwarden.collector.policy.usage import definition_id
    from netwarden.collector.store.schema import POLICY_USAGE

    last = int(NOW.timestamp()) // 60 * 60
    ts = np.tile(np.arange(last - (minutes - 1) * 60, last + 1, 60, dtype=np.uint32), hosts)
    host = np.repeat(np.array([f"host-{i:03d}" for i in range(hosts)], dtype=object), minutes)
    rng = np.random.default_rng(7)
    nbytes = rng.integers(1, 1 << 20, len(ts), dtype=np.uint64)
    for policy in plan.policies:
        for lo in range(0, len(ts), CHUNK):
            n = len(ts[lo:lo + CHUNK])
            store.insert(POLICY_USAGE, {
                "policy": np.full(n, policy.name, dtype=object),
                "definition": np.full(n, definition_id(policy), dtype=object),
                "host": host[lo:lo + CHUNK], "ts": ts[lo:lo + CHUNK],
                "bytes": nbytes[lo:lo + CHUNK], "packets": np.ones(n, dtype=np.uint64)})


def timed(func: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    func()  # warm
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), min(times), result


def run(rows: int, hosts: int, repeat: int, url: str | None) -> dict[str, Any]:
    from netwarden.collector.config import PolicySection
    from netwarden.collector.policy.engine import PolicyEngine
    from netwarden.collector.policy.usage import read_usages
    from netwarden.collector.store import open_store
    from netwarden.policy.period import period_bounds

    minutes = rows // hosts
    plan = policies(minutes)
    with tempfile.TemporaryDirectory(prefix="nw-policy-eval-") as tmp:
        store = open_store(url or str(Path(tmp) / "chdb"),
                           database=f"bench_{uuid.uuid4().hex[:8]}")
        store.start()
        try:
            began = time.perf_counter()
            fill(store, plan, hosts, minutes)
            fill_s = time.perf_counter() - began
            end_s = int(NOW.timestamp()) + 1
            periods = [(p, int(period_bounds(p.period, NOW)[0].timestamp()), end_s)
                       for p in plan.policies]
            in_period = {p.name: int(store.query(
                f"SELECT count() FROM policy_usage WHERE policy = '{p.name}'"
                f" AND ts >= toDateTime({start - start % 60})")[0][0])
                for p, start, _ in periods}
            counts = {t: int(store.query(f"SELECT count() FROM {t}")[0][0])
                      for t in ("policy_usage", "policy_usage_1h", "policy_usage_1d")}
            fast = timed(lambda: read_usages(store, periods), repeat)
            slow = timed(lambda: read_usages(store, periods, rollups=False), repeat)
            if fast[2] != slow[2]:
                raise SystemExit("rollup and minute-table sums differ")
            engine = PolicyEngine(PolicySection(backfill=False), store, clock=lambda: NOW,
                                  policies=plan)
            engine.start(schedule=False)
            compute = timed(engine.compute, repeat)
            engine.stop()
        finally:
            store.drop_database()
            store.stop()
    return {"rows_per_policy": rows, "hosts": hosts, "rows_in_period": in_period,
            "table_rows": counts, "fill_s": round(fill_s, 1),
            "rollups_ms": {"median": round(fast[0], 2), "min": round(fast[1], 2)},
            "minutes_ms": {"median": round(slow[0], 2), "min": round(slow[1], 2)},
            "compute_ms": {"median": round(compute[0], 2), "min": round(compute[1], 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--server", action="store_true",
                        help="start a clickhouse-server 18.16 and measure on it")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="a running server: clickhouse://HOST:PORT")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server: Any = None
    url = args.store
    if args.server:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from fixtures.clickhouse_server import ClickHouseServer

        server = ClickHouseServer(Path(tempfile.mkdtemp(prefix="nw-bench-ch-")))
        server.start()
        url = server.url
    try:
        results = [run(n, args.hosts, args.repeat, url) for n in args.rows]
    finally:
        if server is not None:
            server.stop()
    for r in results:
        r["store"] = "clickhouse-server" if url else "chdb"
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"{r['store']}: {r['rows_per_policy']:,} minute rows per policy, {r['hosts']} hosts "
              f"(in period: {', '.join(f'{k} {v:,}' for k, v in r['rows_in_period'].items())};"
              f" tables: {', '.join(f'{k} {v:,}' for k, v in r['table_rows'].items())};"
              f" filled in {r['fill_s']} s)")
        for key, label in (("rollups_ms", "read through rollups"),
                           ("minutes_ms", "read minute table  "),
                           ("compute_ms", "engine.compute     ")):
            print(f"    {label}: median {r[key]['median']:8.2f} ms,"
                  f" min {r[key]['min']:8.2f} ms")


if __name__ == "__main__":
    main()
