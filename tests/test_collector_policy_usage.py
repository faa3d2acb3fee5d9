"""The policy_usage rollup on a real chdb store: written at ingest, read by evaluation.

Reads go through the hourly and daily rollups: proved equal to summing the minute rows on
random data and random period edges, on chdb and on the 18.16 server.

Batches go through the collector's real writer (:class:`Ingest`, ledger included) with the
policy rollup as its after-store hook; the engine then evaluates from the store, writes its
audit and alert rows, and does not alert twice (not even after a restart).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from netwarden.collector.config import PolicySection
from netwarden.collector.ingest import Ingest
from netwarden.collector.policy.engine import PolicyEngine
from netwarden.collector.policy.evaluate import POOLED
from netwarden.collector.policy.usage import (
    UsageRollup,
    backfill,
    bucket_s,
    definition_id,
    known_hosts,
    read_usage,
    read_usages,
    split_range,
    usage_columns,
)
from netwarden.collector.store.schema import POLICY_USAGE
from netwarden.policy.model import Match, Period, Policy, PolicySet, Selector, Tier
from netwarden.policy.period import period_bounds
from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.records import FLOW_COLUMNS, FlowBatch, empty

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
S = 1_000_000_000


def mapped(text: str) -> bytes:
    ip = ipaddress.ip_address(text)
    return (ipaddress.IPv6Address("::ffff:" + text) if ip.version == 4 else ip).packed


def batch(host: str, rows: list[dict[str, Any]]) -> FlowBatch:
    out = FlowBatch.empty(host, 10)
    out.flows = empty(FLOW_COLUMNS, len(rows))
    for i, row in enumerate(rows):
        for key, value in row.items():
            out.flows[key][i] = mapped(value) if key in ("src_ip", "dst_ip") else value
    return out


def rec(at_s: int, direction: int, nbytes: int, *, dport: int = 443, proto: int = 6,
        layer: int = 0, app: str = "") -> dict[str, Any]:
    src, dst = ("10.0.0.2", "142.250.1.1") if direction == 2 else ("142.250.1.1", "10.0.0.2")
    return {"start_ns": at_s * S, "first_seen": at_s * S, "last_seen": at_s * S,
            "ip_version": 4, "src_ip": src, "dst_ip": dst, "src_port": 40000,
            "dst_port": dport, "ip_proto": proto, "direction": direction, "layer": layer,
            "packets": 2, "bytes": nbytes, "app": app}


class Session:
    """The stream side the writer talks to: records the acks it is sent."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.acks: list[int] = []
        self.closed = threading.Event()

    def deliver(self, msg: pb.CollectorMessage) -> None:
        self.acks.append(msg.ack.seq)

    def fail(self, reason: str) -> None:
        raise AssertionError(reason)

    def close(self) -> None:
        self.closed.set()


POLICIES = PolicySet(policies=(
    Policy(name="out-only", who=Selector(fleet=True), quota=10_000,
           what=(Match(direction="out"),), tiers=(Tier(50.0, "alert"),
                                                  Tier(100.0, "block"))),
    Policy(name="pool", who=Selector(hosts=("web-*",)), quota=100_000, scope="pooled",
           tiers=(Tier(10.0, "throttle", rate=1000),)),
))


def ingest(store: Any, rollup: UsageRollup, batches: dict[str, list[FlowBatch]]) -> None:
    writer = Ingest(store, on_stored=rollup)
    writer.start()
    try:
        for host, items in batches.items():
            session = Session(host)
            writer.hello(session, timeout_s=30)
            for seq, b in enumerate(items, start=1):
                writer.submit(session, b, seq)
            writer.finish(session)
            assert session.closed.wait(30)
            assert session.acks[-1] == len(items)
    finally:
        writer.stop()


def test_a_short_fixed_period_counts_in_buckets_that_meet_its_window_boundaries() -> None:
    def fixed(seconds: int) -> Policy:
        return Policy(name=f"f{seconds}", who=Selector(fleet=True), quota=1000,
                      period=Period(kind="fixed", time_zone=None, reset_day=None,
                                    length=timedelta(seconds=seconds)))

    assert [bucket_s(fixed(n)) for n in (30, 45, 90, 120, 11)] == [30, 15, 30, 60, 1]
    assert bucket_s(POLICIES.policies[0]) == 60  # calendar periods: minutes
    flows = batch("h", [rec(T + 5, 2, 100), rec(T + 29, 1, 10), rec(T + 30, 2, 1000),
                        rec(T + 59, 2, 1)]).flows
    got = usage_columns([fixed(30), POLICIES.policies[0]], "h", flows)
    rows = sorted(zip(got["policy"].tolist(), got["ts"].tolist(), got["bytes"].tolist(),
                      strict=True))
    assert rows == [("f30", T, 110), ("f30", T + 30, 1001), ("out-only", T, 1101)]


def test_usage_rollup_at_ingest_and_evaluation_reads_it(store_factory: Any) -> None:
    store = store_factory("chdb")
    rollup = UsageRollup(store, POLICIES.policies)
    web1 = [batch("web-1", [rec(T - 600, 2, 3000), rec(T - 590, 1, 700),
                            rec(T - 600, 2, 999, layer=1)]),
            batch("web-1", [rec(T - 120, 2, 2500), rec(T - 115, 2, 500)])]
    web2 = [batch("web-2", [rec(T - 60, 2, 6000), rec(T - 3600 * 24 * 30, 2, 1 << 20)])]
    ingest(store, rollup, {"web-1": web1, "web-2": web2})
    # resent batches (a reconnect) are duplicates: counted once
    ingest(store, rollup, {"web-1": web1})
    rows = store.query("SELECT policy, host, toUInt32(ts), sum(bytes), sum(packets) FROM "
                       "policy_usage GROUP BY policy, host, ts ORDER BY policy, host, ts")
    minute = T - 600
    assert [r for r in rows if r[0] == "out-only"] == [
        ("out-only", "web-1", minute, 3000, 2), ("out-only", "web-1", T - 120, 3000, 4),
        ("out-only", "web-2", T - 3600 * 24 * 30, 1 << 20, 2),
        ("out-only", "web-2", T - 60, 6000, 2)]
    assert ("pool", "web-1", minute, 3700, 4) in rows
    out_only = POLICIES.policy("out-only")
    assert read_usage(store, out_only, T - 3600, T) == {"web-1": 6000, "web-2": 6000}

    # the backfill from raw flows computes the same rows
    again = {p.name: p for p in POLICIES.policies}
    renamed = Policy(name="copy", who=again["out-only"].who, quota=1,
                     what=again["out-only"].what)
    inserted = backfill(store, [renamed], T - 3600 * 24 * 40, T)
    assert inserted == 4
    assert read_usage(store, renamed, T - 3600, T) == {"web-1": 6000, "web-2": 6000}
    assert definition_id(renamed) == definition_id(out_only)

    engine = PolicyEngine(PolicySection(backfill=False), store, clock=lambda: NOW,
                          policies=POLICIES)
    engine.start(schedule=False)
    state = engine.run_once()
    by = {(s.policy, s.scope): s for s in state.scopes}
    # monthly period from March 1st: the 30-day-old record is outside it
    assert by["out-only", "web-1"].usage == 6000 and by["out-only", "web-1"].tier == 1
    assert by["out-only", "web-2"].usage == 6000
    assert by["pool", POOLED].usage == 3700 + 3000 + 6000 and by["pool", POOLED].tier == 1
    assert [r.action for r in engine.desired_for("web-2").rules] == ["throttle"]
    decisions = store.query("SELECT policy, scope, tier, action, usage FROM policy_decisions "
                            "ORDER BY policy, scope")
    assert decisions == [("out-only", "web-1", 1, "alert", 6000),
                         ("out-only", "web-2", 1, "alert", 6000),
                         ("pool", POOLED, 1, "throttle", 12700)]
    alerts = store.query("SELECT policy, scope, hosts, tier FROM policy_alerts ORDER BY scope")
    assert sorted(alerts) == [("out-only", "web-1", "web-1", 1), ("out-only", "web-2", "web-2", 1),
                              ("pool", POOLED, "web-1,web-2", 1)]
    # nothing changed: no new decision nor alert
    engine.run_once()
    assert len(store.query("SELECT * FROM policy_decisions")) == 3
    # more traffic crosses web-2's 100 % tier: one decision and one alert more
    ingest(store, rollup, {"web-2": [*web2, batch("web-2", [rec(T - 30, 2, 4000)])]})
    state = engine.run_once()
    assert engine.desired_for("web-2").rules[0].action == "block"
    assert store.query("SELECT scope, tier, action FROM policy_alerts WHERE tier = 2") == \
        [("web-2", 2, "block")]
    assert len(store.query("SELECT * FROM policy_decisions")) == 4
    engine.stop()
    # a restarted engine remembers what it alerted in this period
    restarted = PolicyEngine(PolicySection(backfill=False), store, clock=lambda: NOW,
                             policies=POLICIES)
    restarted.start(schedule=False)
    restarted.run_once()
    assert len(store.query("SELECT * FROM policy_alerts")) == 4


def test_engine_backfills_a_new_policy_from_flows(store_factory: Any) -> None:
    store = store_factory("chdb")
    ingest(store, UsageRollup(store, ()), {"h": [batch("h", [rec(T - 300, 2, 5000)])]})
    engine = PolicyEngine(PolicySection(), store, clock=lambda: NOW, policies=POLICIES)
    engine.start(schedule=False)
    (scope,) = [s for s in engine.run_once().scopes if s.policy == "out-only"]
    assert scope.usage == 5000 and scope.tier == 1
    # a second start finds the rows and does not add them again
    PolicyEngine(PolicySection(), store, clock=lambda: NOW, policies=POLICIES).start(
        schedule=False)
    assert read_usage(store, POLICIES.policy("out-only"), T - 3600, T + 1) == {"h": 5000}


@pytest.mark.slow
def test_evaluation_time_on_a_million_minute_rows(store_factory: Any) -> None:
    """Timing (reported, not asserted): 1 M policy_usage rows, 100 hosts x 10k minutes."""
    store = store_factory("chdb")
    hosts, minutes = 100, 10_000
    start = T - minutes * 60
    n = hosts * minutes
    for p in POLICIES.policies:
        cols = {"policy": np.full(n, p.name, dtype=object),
                "definition": np.full(n, definition_id(p), dtype=object),
                "host": np.repeat(np.array([f"web-{i}" for i in range(hosts)], dtype=object),
                                  minutes),
                "ts": np.tile(np.arange(start, T, 60, dtype=np.uint32), hosts),
                "bytes": np.full(n, 1, dtype=np.uint64),
                "packets": np.full(n, 1, dtype=np.uint64)}
        store.insert(POLICY_USAGE, cols)
    engine = PolicyEngine(PolicySection(backfill=False), store, clock=lambda: NOW,
                          policies=POLICIES)
    engine.start(schedule=False)
    engine.run_once()
    times = []
    for _ in range(5):
        began = time.perf_counter()
        state = engine.compute()
        times.append(time.perf_counter() - began)
    period_start = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    per_host = (T - max(start, period_start)) // 60
    by = {(s.policy, s.scope): s for s in state.scopes}
    assert by["out-only", "web-7"].usage == per_host
    print(f"\nevaluation of 2 policies over {2 * n} policy_usage rows, {hosts} hosts: "
          f"median {sorted(times)[2] * 1000:.1f} ms, min {min(times) * 1000:.1f} ms")


DAY, HOUR = 86_400, 3_600
ENGINES = ["chdb", pytest.param("server", marks=pytest.mark.server)]


def test_a_range_splits_into_utc_days_edge_hours_and_edge_minutes() -> None:
    d0 = 1_772_323_200  # 2026-03-01T00:00Z
    # a month from midnight Asia/Kolkata (18:30 UTC the day before) to 12:34:56 UTC
    lo, hi = d0 - 5 * HOUR - 1800, d0 + 30 * DAY + 12 * HOUR + 34 * 60 + 56
    assert split_range(lo, hi) == {
        "policy_usage_1d": [(d0, d0 + 30 * DAY)],
        "policy_usage_1h": [(d0 - 5 * HOUR, d0), (d0 + 30 * DAY, d0 + 30 * DAY + 12 * HOUR)],
        "policy_usage": [(lo, d0 - 5 * HOUR), (d0 + 30 * DAY + 12 * HOUR, hi)]}
    # shorter than a day: hours and minutes only; shorter than an hour: minutes only
    assert split_range(d0 + 90, d0 + 2 * HOUR + 30) == {
        "policy_usage_1d": [], "policy_usage_1h": [(d0 + HOUR, d0 + 2 * HOUR)],
        "policy_usage": [(d0 + 90, d0 + HOUR), (d0 + 2 * HOUR, d0 + 2 * HOUR + 30)]}
    assert split_range(d0 + 45, d0 + 90) == {"policy_usage_1d": [], "policy_usage_1h": [],
                                             "policy_usage": [(d0 + 45, d0 + 90)]}
    assert split_range(d0, d0 + DAY) == {"policy_usage_1d": [(d0, d0 + DAY)],
                                         "policy_usage_1h": [], "policy_usage": []}
    assert split_range(d0, d0) == {"policy_usage_1d": [], "policy_usage_1h": [],
                                   "policy_usage": []}


def _period(kind: str, **kw: Any) -> Period:
    base: dict[str, Any] = {"kind": kind, "time_zone": None, "reset_day": None}
    if kind in ("daily", "weekly", "monthly"):
        base["time_zone"] = "UTC"
    if kind == "monthly":
        base["reset_day"] = 1
    if kind == "weekly":
        base["reset_weekday"] = 0
    return Period(**{**base, **kw})


RANDOM_POLICIES = PolicySet(policies=tuple(
    Policy(name=name, who=Selector(fleet=True), quota=1 << 40, period=period,
           what=(Match(direction="out"),) if name == "m-utc" else ())
    for name, period in (
        ("m-kolkata", _period("monthly", time_zone="Asia/Kolkata")),  # 18:30 UTC resets
        ("d-kathmandu", _period("daily", time_zone="Asia/Kathmandu")),  # 18:15 UTC
        ("w-utc", _period("weekly")),
        ("m-utc", _period("monthly", reset_day=3)),
        ("fixed-45s", _period("fixed", length=timedelta(seconds=45))),  # 15 s buckets
        ("fixed-2h30m", _period("fixed", length=timedelta(minutes=150))),
        ("rolling-3d", _period("rolling", window=timedelta(days=3, seconds=17))),
    )))


def _random_usage(rng: np.random.Generator, first: int, last: int,
                  hosts: list[str]) -> dict[str, np.ndarray]:
    """Random policy_usage rows of every RANDOM_POLICIES policy in [first, last), in the
    policy's buckets; several rows may share a key (they add up, as on merge)."""
    parts = []
    for policy in RANDOM_POLICIES.policies:
        size = bucket_s(policy)
        n = int(rng.integers(2000, 4000))
        ts = rng.integers(first // size, last // size, n) * size
        parts.append({"policy": np.full(n, policy.name, dtype=object),
                      "definition": np.full(n, definition_id(policy), dtype=object),
                      "host": np.array(hosts, dtype=object)[rng.integers(0, len(hosts), n)],
                      "ts": ts.astype(np.uint32),
                      "bytes": rng.integers(1, 1 << 30, n, dtype=np.uint64),
                      "packets": rng.integers(1, 1000, n, dtype=np.uint64)})
    return {c.name: np.concatenate([p[c.name] for p in parts]) for c in POLICY_USAGE.columns}


def _truth(rows: dict[str, np.ndarray], policy: Policy, lo: int, hi: int) -> dict[str, int]:
    sel = (rows["policy"] == policy.name) & (rows["ts"] >= lo) & (rows["ts"] < hi)
    out: dict[str, int] = {}
    for host, b in zip(rows["host"][sel].tolist(), rows["bytes"][sel].tolist(), strict=True):
        out[host] = out.get(host, 0) + int(b)
    return out


@pytest.mark.parametrize("kind", ENGINES)
def test_reading_through_the_rollups_equals_summing_the_minutes(store_factory: Any,
                                                                 kind: str) -> None:
    store = store_factory(kind)
    rng = np.random.default_rng(20260315)
    first = int(datetime(2026, 1, 20, 17, 0, tzinfo=UTC).timestamp())
    last = int(datetime(2026, 3, 20, 6, 0, tzinfo=UTC).timestamp())
    hosts = [f"h{i}" for i in range(7)]
    rows: dict[str, list[np.ndarray]] = {c.name: [] for c in POLICY_USAGE.columns}
    for _ in range(4):  # several inserts: several parts in every table, merged or not
        part = _random_usage(rng, first, last, hosts)
        store.insert(POLICY_USAGE, part)
        for name, col in part.items():
            rows[name].append(col)
    every = {name: np.concatenate(cols) for name, cols in rows.items()}
    # the rollups hold every byte, in UTC hours and UTC days
    for table, size in (("policy_usage_1h", HOUR), ("policy_usage_1d", DAY)):
        got = store.query(f"SELECT policy, sum(bytes), countIf(toUInt32(ts) % {size} != 0)"
                          f" FROM {table} GROUP BY policy ORDER BY policy")
        assert got == [(p, sum(_truth(every, RANDOM_POLICIES.policy(p), 0, 1 << 32).values()),
                        0) for p in sorted(x.name for x in RANDOM_POLICIES.policies)]

    queries: list[str] = []
    query = store.query

    def counting(sql: str) -> Any:
        queries.append(sql)
        return query(sql)

    checked = 0
    nows = [datetime(2026, 3, 1, 0, 0, tzinfo=UTC) - timedelta(hours=5, minutes=30),  # Kolkata
            datetime(2026, 3, 1, 0, 0, tzinfo=UTC) - timedelta(hours=5, minutes=29, seconds=1),
            datetime(2026, 2, 28, 18, 29, 59, tzinfo=UTC)]
    nows += [datetime.fromtimestamp(int(t), UTC)
             for t in rng.integers(first + DAY, last + DAY, 12)]
    for now in nows:
        end_s = int(now.timestamp()) + 1
        periods = [(p, int(period_bounds(p.period, now)[0].timestamp()), end_s)
                   for p in RANDOM_POLICIES.policies]
        queries.clear()
        store.query = counting
        try:
            got = read_usages(store, periods)
        finally:
            store.query = query
        assert len(queries) == 1  # every policy in one query
        assert got == read_usages(store, periods, rollups=False)
        for policy, start_s, _ in periods:
            lo = start_s - start_s % bucket_s(policy)
            assert got[policy.name] == _truth(every, policy, lo, end_s), (policy.name, now)
            checked += bool(got[policy.name])
    # random ranges (any second) of one policy, through read_usage
    minute_policy = RANDOM_POLICIES.policy("m-utc")
    for lo, hi in rng.integers(first - DAY, last + DAY, (25, 2)):
        lo, hi = int(min(lo, hi)), int(max(lo, hi))
        assert read_usage(store, minute_policy, lo, hi) == \
            _truth(every, minute_policy, lo - lo % 60, hi)
    assert checked > 40  # most periods did count something
    # the daily rollup knows every host
    assert known_hosts(store) == hosts


@pytest.mark.parametrize("kind", ENGINES)
def test_rollups_created_on_a_store_with_usage_are_filled_from_it(store_factory: Any,
                                                                  kind: str) -> None:
    store = store_factory(kind)
    rng = np.random.default_rng(5)
    first = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
    store.insert(POLICY_USAGE, _random_usage(rng, first, first + 9 * DAY, ["a", "b"]))
    # a store from before the rollups: no hourly or daily tables, no views
    for name in ("policy_usage_1h_mv", "policy_usage_1d_mv", "policy_usage_1h",
                 "policy_usage_1d"):
        store.execute(f"DROP TABLE {name}")
    now = datetime.fromtimestamp(first + 8 * DAY + 12345, UTC)
    end_s = int(now.timestamp()) + 1
    periods = [(p, int(period_bounds(p.period, now)[0].timestamp()), end_s)
               for p in RANDOM_POLICIES.policies]
    before = read_usages(store, periods, rollups=False)
    assert sorted(store.migrate()) == [
        "create_table_policy_usage_1d", "create_table_policy_usage_1h",
        "create_view_policy_usage_1d_mv", "create_view_policy_usage_1h_mv"]
    assert read_usages(store, periods) == before
    # and the views feed them from now on
    store.insert(POLICY_USAGE, _random_usage(rng, first, first + 9 * DAY, ["a", "c"]))
    assert read_usages(store, periods) == read_usages(store, periods, rollups=False) != before
