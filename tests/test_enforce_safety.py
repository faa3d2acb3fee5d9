"""Lock-out protection: guard lines for the collector link and management access, and
refusal of rules that could only hit protected traffic. (Live proof that a block-everything
rule leaves SSH and the collector link alone: tests/test_enforce_live.py.)"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.config import EnforceConfig
from netwarden.sensor.enforce.rules import rule_from_proto
from netwarden.sensor.enforce.safety import (
    Protected,
    guard_rules,
    only_protected,
    protected,
    resolve_endpoint,
)

NOW = 10**18
A = ipaddress.ip_address


def fake_resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int, *_: object) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(0, 0, 0, "", (a, port)) for a in table[host]]
    return resolve


def test_endpoints_resolve_to_addresses_or_fall_back_to_the_port() -> None:
    res = fake_resolver({"coll.example": ["192.0.2.10", "2001:db8::10", "192.0.2.10"]})
    assert resolve_endpoint("coll.example:50051", res) == (
        [A("192.0.2.10"), A("2001:db8::10")], 50051)
    assert resolve_endpoint("[2001:db8::1]:7", res) == ([A("2001:db8::1")], 7)
    cfg = EnforceConfig(management_ports=[22, 2222], management_cidrs=["198.51.100.0/24"])
    p = protected(cfg, ["coll.example:50051", "gone.example:6000"],
                  known=[(A("203.0.113.5"), 50051)], resolver=res)
    assert p.collectors == ((A("203.0.113.5"), 50051), (A("192.0.2.10"), 50051),
                            (A("2001:db8::10"), 50051))
    assert p.collector_ports == (6000,)
    assert p.management_ports == (22, 2222)


def test_guard_lines_cover_both_directions_of_each_protected_link() -> None:
    p = Protected(collectors=((A("192.0.2.10"), 50051), (A("2001:db8::10"), 50051)),
                  collector_ports=(6000,), management_ports=(22,),
                  management_cidrs=(ipaddress.ip_network("198.51.100.0/24"),))
    inbound = [" ".join(g.args) for g in guard_rules(p, 4, "in")]
    outbound = [" ".join(g.args) for g in guard_rules(p, 4, "out")]
    assert inbound == ["-i lo", "-s 198.51.100.0/24", "-p tcp -m tcp --dport 22",
                       "-s 192.0.2.10/32 -p tcp -m tcp --sport 50051",
                       "-p tcp -m tcp --sport 6000"]
    assert outbound == ["-o lo", "-d 198.51.100.0/24", "-p tcp -m tcp --sport 22",
                        "-d 192.0.2.10/32 -p tcp -m tcp --dport 50051",
                        "-p tcp -m tcp --dport 6000"]
    v6 = [" ".join(g.args) for g in guard_rules(p, 6, "out")]
    assert "-d 2001:db8::10/128 -p tcp -m tcp --dport 50051" in v6
    assert not any("198.51.100" in x for x in v6)
    assert [" ".join(g.args) for g in guard_rules(Protected(loopback=False), 4, "in")] == [
        "-p tcp -m tcp --dport 22"]


def rule(**match: Any) -> Any:
    return rule_from_proto(pb.Rule(id="r", action=pb.ACTION_BLOCK_DROP, expires_ns=NOW + 10**12,
                                   match=pb.Match(direction=pb.DIRECTION_BOTH, **match)), NOW)


def test_rules_that_only_hit_protected_traffic_are_refused() -> None:
    p = Protected(collectors=((A("192.0.2.10"), 50051),), management_ports=(22,),
                  management_cidrs=(ipaddress.ip_network("198.51.100.0/24"),))
    tcp = pb.PROTOCOL_TCP
    assert "management access (tcp 22)" in str(only_protected(
        rule(protocol=tcp, ports=[pb.PortRange(low=22, high=22)]), p))
    assert "management networks" in str(only_protected(
        rule(remote_cidrs=["198.51.100.128/25"]), p))
    assert "collector link" in str(only_protected(
        rule(protocol=tcp, remote_cidrs=["192.0.2.10/32"],
             ports=[pb.PortRange(low=50051, high=50051)]), p))
    assert "loopback" in str(only_protected(rule(local_cidrs=["127.0.0.0/8"]), p))
    # rules that also hit other traffic are kept (the guards protect the rest)
    assert only_protected(rule(), p) is None
    assert only_protected(rule(protocol=tcp, ports=[pb.PortRange(low=20, high=22)]), p) is None
    assert only_protected(rule(remote_cidrs=["192.0.2.10/32"]), p) is None
    assert only_protected(rule(protocol=pb.PROTOCOL_UDP,
                               ports=[pb.PortRange(low=22, high=22)]), p) is None
    # port ranges: refused when every port is protected, kept when one is not
    two = Protected(management_ports=(23, 22))
    assert "management access (tcp 22,23)" in str(only_protected(
        rule(protocol=tcp, ports=[pb.PortRange(low=22, high=23)]), two))
    assert only_protected(rule(protocol=tcp, ports=[pb.PortRange(low=1, high=65535)]),
                          two) is None
    assert only_protected(rule(protocol=tcp, remote_cidrs=["192.0.2.10/32"],
                               ports=[pb.PortRange(low=50051, high=50052)]), p) is None
