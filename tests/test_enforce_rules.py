"""Enforcement rules: wire conversion, strict validation with one-line reasons, ruleset id."""

from __future__ import annotations

import ipaddress

import pytest

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.rules import (
    MAX_PORT_SLOTS,
    PortRange,
    RuleError,
    parse_enforcement,
    rule_from_proto,
    rule_to_proto,
    ruleset_id,
)

NOW = 1_800_000_000 * 10**9
LATER = NOW + 3600 * 10**9


def wire(**kw: object) -> pb.Rule:
    match = kw.pop("match", pb.Match(direction=pb.DIRECTION_OUT))
    base: dict[str, object] = {"id": "r1", "policy": "plan", "action": pb.ACTION_BLOCK_DROP,
                               "expires_ns": LATER, "match": match}
    base.update(kw)
    return pb.Rule(**base)  # type: ignore[arg-type]


def reason(msg: pb.Rule) -> str:
    with pytest.raises(RuleError) as info:
        rule_from_proto(msg, NOW)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_valid_rule_is_normalised_and_round_trips() -> None:
    msg = wire(match=pb.Match(
        direction=pb.DIRECTION_BOTH, protocol=pb.PROTOCOL_UDP,
        remote_cidrs=["10.0.0.0/16", "10.0.1.0/24", "fd00::/8", "192.0.2.7/32"],
        local_cidrs=["10.9.0.0/24"],
        ports=[pb.PortRange(low=1000, high=2000), pb.PortRange(low=1500, high=2500),
               pb.PortRange(low=53, high=53)]),
        exempt_cidrs=["10.1.0.0/16"], exempt_ports=[pb.PortRange(low=123, high=123)])
    rule = rule_from_proto(msg, NOW)
    m = rule.match
    assert m.direction == "both" and m.protocol == "udp"
    # overlapping networks collapse (a packet matches at most one), families kept apart
    assert [str(n) for n in m.remote] == ["10.0.0.0/16", "192.0.2.7/32", "fd00::/8"]
    assert m.ports == (PortRange(53, 53), PortRange(1000, 2500))
    assert m.families() == (4,)  # local is IPv4 only
    back = rule_from_proto(rule_to_proto(rule), NOW)
    assert back == rule


@pytest.mark.parametrize(("msg", "expected"), [
    (wire(id=""), "id ''"),
    (wire(id="a b"), "id 'a b'"),
    (wire(action=pb.ACTION_UNSPECIFIED), "action is not set"),
    (wire(match=pb.Match()), "match.direction is not set"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, remote_cidrs=["10.0.0.1/8"])),
     "match.remote_cidrs: '10.0.0.1/8': 10.0.0.1/8 has host bits set"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, local_cidrs=["nonsense"])),
     "match.local_cidrs: 'nonsense'"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, remote_cidrs=["10.0.0.0/8"],
                         local_cidrs=["fd00::/8"])), "share no address family"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, ports=[pb.PortRange(low=0, high=5)])),
     "match.ports: 0-5: ports are 1..65535"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, ports=[pb.PortRange(low=9, high=5)])),
     "high is below low"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, protocol=pb.PROTOCOL_ICMP,
                         ports=[pb.PortRange(low=80, high=80)])),
     "ports need protocol tcp, udp or any"),
    (wire(match=pb.Match(direction=pb.DIRECTION_IN, ports=[
        pb.PortRange(low=p, high=p) for p in range(1000, 1002 + 2 * MAX_PORT_SLOTS, 2)])),
     "port slots, at most 15"),
    (wire(action=pb.ACTION_THROTTLE), "rate_bytes_per_s 0: a throttle needs"),
    (wire(action=pb.ACTION_THROTTLE, rate_bytes_per_s=10_000, burst_bytes=500),
     "burst_bytes 500"),
    (wire(rate_bytes_per_s=10_000), "for THROTTLE only"),
    (wire(expires_ns=0), "expires_ns is not set"),
    (wire(expires_ns=NOW - 1), "expires_ns is not in the future"),
    (wire(expires_ns=NOW + 401 * 86400 * 10**9), "more than 400 days ahead"),
    (wire(exempt_cidrs=["10.0.0.0/33"]), "exempt_cidrs: '10.0.0.0/33'"),
])
def test_invalid_rules_are_refused_with_one_line(msg: pb.Rule, expected: str) -> None:
    assert expected in reason(msg)


def test_throttle_needs_rate_and_accepts_default_burst() -> None:
    rule = rule_from_proto(wire(action=pb.ACTION_THROTTLE, rate_bytes_per_s=200_000), NOW)
    assert (rule.action, rule.rate, rule.burst) == ("throttle", 200_000, 0)


def test_enforcement_keeps_valid_rules_and_refuses_the_rest() -> None:
    rules = [wire(id="ok"), wire(id="bad", expires_ns=NOW), wire(id="ok")]
    msg = pb.Enforcement(version=3, ruleset_id=ruleset_id(rules), rules=rules)
    d = parse_enforcement(msg, NOW)
    assert [r.id for r in d.rules] == ["ok"]
    assert [str(r) for r in d.refused] == ["bad: expires_ns is not in the future",
                                           "ok: id is used by an earlier rule"]
    assert (d.version, d.ruleset_id) == (3, msg.ruleset_id)


def test_enforcement_with_wrong_id_or_version_is_refused_whole() -> None:
    rules = [wire()]
    with pytest.raises(RuleError, match="does not match its rules"):
        parse_enforcement(pb.Enforcement(version=1, ruleset_id="0" * 32, rules=rules), NOW)
    with pytest.raises(RuleError, match="version is 0"):
        parse_enforcement(pb.Enforcement(version=0, rules=rules), NOW)
    # an empty id is filled in
    d = parse_enforcement(pb.Enforcement(version=1, rules=rules), NOW)
    assert d.ruleset_id == ruleset_id(rules)


def test_ruleset_id_is_deterministic_and_order_independent() -> None:
    a, b = wire(id="a"), wire(id="b", action=pb.ACTION_BLOCK_REJECT)
    assert ruleset_id([a, b]) == ruleset_id([b, a])
    assert len(ruleset_id([a])) == 32
    assert ruleset_id([a]) != ruleset_id([a, b])
    assert ruleset_id([wire(id="a", expires_ns=LATER + 1)]) != ruleset_id([a])
    # fixed value: a change to the canonical form would break collector/sensor agreement
    assert ruleset_id([]) == "e3b0c44298fc1c149afbf4c8996fb924"


def test_describe_is_one_line() -> None:
    rule = rule_from_proto(wire(action=pb.ACTION_THROTTLE, rate_bytes_per_s=5000, match=pb.Match(
        direction=pb.DIRECTION_OUT, remote_cidrs=["203.0.113.0/24"])), NOW)
    assert rule.describe() == "r1 (plan): throttle 5000 B/s out any remote 203.0.113.0/24"
    assert ipaddress.ip_network("203.0.113.0/24") in rule.match.remote
