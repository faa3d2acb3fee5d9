"""HostState → wire rules (collector/policy/rules.py): pure conversion, checked by the
sensor's own validation (parse_enforcement) wherever a rule must be acceptable."""

from __future__ import annotations

from typing import Any

import pytest

from netwarden.collector.policy.evaluate import HostState, Rule, RuleMatch
from netwarden.collector.policy.push import EnforcementPush
from netwarden.collector.policy.rules import enforcement, enforcement_rules, rolling_expiry
from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.rules import parse_enforcement, ruleset_id

NOW = 1_773_576_000  # epoch s
END = NOW + 3600
NS = 10**9


def rule(*matches: RuleMatch, action: str = "block", policy: str = "video",
         expires: int | None = END, **kw: Any) -> Rule:
    return Rule(policy=policy, scope="(pooled)", action=action,
                rate=kw.pop("rate", 50_000 if action == "throttle" else None),
                mode=kw.pop("mode", "drop" if action == "block" else None),
                matches=tuple(matches), exempt_networks=kw.pop("exempt_networks", ()),
                exempt_ports=kw.pop("exempt_ports", ()), expires=expires, **kw)


def wire(*rules: Rule, now: float = NOW, every_s: float = 10.0) -> list[pb.Rule]:
    return enforcement_rules(HostState.of("h1", rules), now, every_s)


def matches(rules: list[pb.Rule]) -> list[tuple[int, list[str], list[str], int]]:
    return [(r.match.direction, list(r.match.remote_cidrs), list(r.match.local_cidrs),
             r.match.protocol) for r in rules]


def test_conversion_is_deterministic_and_accepted_by_the_sensor() -> None:
    a = rule(RuleMatch(direction="out", protocols=("tcp", "udp"), ports=((443, 443),),
                       remote=("142.250.0.0/15",)), exempt_networks=("10.0.0.0/8",),
                       exempt_ports=((22, 22),))
    b = rule(RuleMatch(remote=("2001:db8::/32",)), action="throttle", policy="other")
    first = wire(a, b)
    again = enforcement_rules(HostState.of("h1", [b, a]), NOW, 10.0)  # other order
    assert first == again
    assert ruleset_id(first) == ruleset_id(again)
    msg = enforcement(first, 3, NOW * NS)
    parsed = parse_enforcement(msg, NOW * NS)
    assert parsed.refused == () and len(parsed.rules) == 3 and parsed.version == 3
    ids = [r.id for r in first]
    assert len(set(ids)) == 3 and all(i.startswith(("video.", "other.")) for i in ids)
    blocks = [r for r in first if r.policy == "video"]
    assert [r.match.protocol for r in blocks] == [pb.PROTOCOL_TCP, pb.PROTOCOL_UDP]
    assert all(r.action == pb.ACTION_BLOCK_DROP and r.rate_bytes_per_s == 0 for r in blocks)
    assert all(list(r.exempt_cidrs) == ["10.0.0.0/8"] and
               [(p.low, p.high) for p in r.exempt_ports] == [(22, 22)] for r in blocks)
    throttle = next(r for r in first if r.policy == "other")
    assert (throttle.action, throttle.rate_bytes_per_s, throttle.match.direction) == \
        (pb.ACTION_THROTTLE, 50_000, pb.DIRECTION_BOTH)
    with pytest.raises(ValueError):
        enforcement(first, 0, NOW * NS)


def test_directions_map_dst_src_and_remote_to_the_sensors_ends() -> None:
    out = wire(rule(RuleMatch(direction="out", dst=("10.1.0.0/16",), src=("192.0.2.0/24",),
                              remote=("10.0.0.0/8",))))
    assert matches(out) == [(pb.DIRECTION_OUT, ["10.1.0.0/16"], ["192.0.2.0/24"],
                             pb.PROTOCOL_ANY)]
    inbound = wire(rule(RuleMatch(direction="in", src=("10.1.0.0/16",))))
    assert matches(inbound) == [(pb.DIRECTION_IN, ["10.1.0.0/16"], [], pb.PROTOCOL_ANY)]
    # both with dst: sent traffic has it as the remote end, received as the local end
    both = wire(rule(RuleMatch(direction="both", dst=("10.9.0.0/16",))))
    assert matches(both) == [(pb.DIRECTION_OUT, ["10.9.0.0/16"], [], pb.PROTOCOL_ANY),
                             (pb.DIRECTION_IN, [], ["10.9.0.0/16"], pb.PROTOCOL_ANY)]
    plain = wire(rule(RuleMatch(remote=("203.0.113.0/24",))))
    assert matches(plain) == [(pb.DIRECTION_BOTH, ["203.0.113.0/24"], [], pb.PROTOCOL_ANY)]
    # pieces that cannot match are left out, not sent as "anything"
    assert wire(rule(RuleMatch(direction="out", dst=("10.1.0.0/16",),
                               remote=("172.16.0.0/12",)))) == []
    assert wire(rule(RuleMatch(direction="out", dst=("10.1.0.0/16",),
                               src=("2001:db8::/32",)))) == []
    assert wire(rule()) == []  # every app unresolved: no match, nothing to enforce


def test_ports_protocols_and_slots() -> None:
    icmp = wire(rule(RuleMatch(protocols=("icmp", "udp"), ports=((53, 53),))))
    assert [r.match.protocol for r in icmp] == [pb.PROTOCOL_UDP]  # ports: no ICMP piece
    many = tuple((p, p) for p in range(1000, 1020))  # 20 single ports > 15 slots
    split = wire(rule(RuleMatch(protocols=("tcp",), ports=many)))
    assert [len(r.match.ports) for r in split] == [15, 5]
    assert parse_enforcement(enforcement(split, 1, NOW * NS), NOW * NS).refused == ()


def test_expiry_is_the_period_end_or_a_rolling_margin() -> None:
    fixed = wire(rule(RuleMatch(remote=("198.51.100.0/24",)), expires=END))
    assert fixed[0].expires_ns == END * NS
    rolling = wire(rule(RuleMatch(remote=("198.51.100.0/24",)), expires=None), every_s=10)
    ahead = rolling[0].expires_ns // NS - NOW
    assert 50 <= ahead <= 100  # between ROLLING_MARGIN / 2 and ROLLING_MARGIN periods
    # the expiry moves on a grid: unchanged for a few runs, then later
    seen = [rolling_expiry(NOW + i * 10, 10) for i in range(12)]
    assert seen == sorted(seen) and 2 <= len(set(seen)) <= 4
    assert all(e - (NOW + i * 10) >= 50 for i, e in enumerate(seen))
    assert rolling_expiry(NOW, 1) - NOW >= 30  # never less than 30 s ahead
    # a rule at its period end is not sent at all
    assert wire(rule(RuleMatch(remote=("198.51.100.0/24",)), expires=NOW)) == []


class FakeEngine:
    """Pure-logic stand-in: a desired state per host and the config the push reads."""

    class config:
        evaluate_every_s = 10.0

    def __init__(self) -> None:
        self.rules: dict[str, tuple[Rule, ...]] = {}
        self.state: object | None = object()

    def desired_for(self, host: str) -> HostState:
        return HostState.of(host, self.rules.get(host, ()))


class FakeStore:
    def __init__(self, versions: list[tuple[str, int]] = ()) -> None:  # type: ignore[assignment]
        self.versions = list(versions)
        self.rows: list[dict[str, Any]] = []

    def query(self, sql: str) -> list[tuple[str, int]]:
        return self.versions

    def insert(self, table: Any, cols: dict[str, Any]) -> None:
        self.rows.append({k: v.tolist()[0] for k, v in cols.items()})


def test_versions_rise_per_host_only_when_the_ruleset_changes() -> None:
    engine = FakeEngine()
    clock = [float(NOW)]
    push = EnforcementPush(engine, FakeStore([("h1", 7)]),  # type: ignore[arg-type]
                           clock=lambda: clock[0], resend_s=5.0)
    push.seed()  # a restarted collector continues after the highest version reported
    sent: list[pb.Enforcement] = []
    engine.rules["h1"] = (rule(RuleMatch(remote=("198.51.100.0/24",))),)
    push.connected("h1", lambda m: sent.append(m.enforcement))
    assert [m.version for m in sent] == [8]
    push.after_run()
    assert len(sent) == 1  # unchanged ruleset: nothing sent, same version
    assert push.desired("h1").version == 8
    engine.rules["h1"] = ()
    push.after_run()
    assert [m.version for m in sent] == [8, 9] and not sent[-1].rules
    assert push.desired("h2").version == 1  # versions are per host
    # an applied state that differs is answered with a resend, rate-limited
    stale = pb.AppliedState(version=8, ruleset_id=sent[0].ruleset_id, mode="on")
    push.applied("h1", stale)
    assert len(sent) == 2
    clock[0] += 6
    push.applied("h1", stale)
    assert len(sent) == 3 and sent[-1].version == 9
    push.applied("h1", pb.AppliedState(version=9, ruleset_id=sent[-1].ruleset_id, mode="on"))
    status = {s["host"]: s for s in push.status()}
    assert status["h1"]["in_sync"] and status["h1"]["applied_version"] == 9
    assert push.store.rows[-1]["version"] == 9  # type: ignore[attr-defined]
    # a sensor with enforcement off is told once, never resent
    engine.rules["h3"] = engine.rules.get("h1") or (rule(RuleMatch()),)
    off: list[pb.Enforcement] = []
    push.connected("h3", lambda m: off.append(m.enforcement))
    clock[0] += 60
    push.applied("h3", pb.AppliedState(mode="off", error="enforcement is off"))
    assert len(off) == 1
