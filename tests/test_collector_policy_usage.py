"""The policy_usage rollup on a real chdb store: written at ingest, read by evaluation.

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
    read_usage,
    usage_columns,
)
from netwarden.collector.store.schema import POLICY_USAGE
from netwarden.policy.model import Match, Period, Policy, PolicySet, Selector, Tier
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
