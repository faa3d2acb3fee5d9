"""The sensor's model of enforcement rules: conversion from the wire, validation, identity.

The collector sends an :class:`~netwarden.proto.netwarden_pb2.Enforcement` (see
``proto/netwarden.proto``); :func:`parse_enforcement` turns it into a :class:`Desired`
state holding the valid :class:`Rule` objects and one :class:`Refusal` (one line) for
each rule the sensor will not apply. Validation is strict:

* rule ids are unique and ``[A-Za-z0-9._:-]{1,64}`` (they travel in iptables comments);
* CIDRs are networks without host bits (``10.0.0.1/8`` is refused, not truncated);
  IPv4 and IPv6 networks may be mixed, each family is applied with its own tool, and a
  rule whose remote and local networks share no family is refused (it matches nothing);
* ports are ranges within 1..65535, only for TCP, UDP or any protocol (then both TCP and
  UDP), at most :data:`MAX_PORT_SLOTS` slots (a single port one, a range two);
* a throttle has a rate within :data:`MIN_RATE`..:data:`MAX_RATE` bytes/s and a burst of
  0 (default: one second's worth) or at least the rate; a block has neither;
* every rule expires in the future, at most :data:`MAX_EXPIRY_NS` ahead: a sensor that
  loses its collector never enforces forever.

:func:`ruleset_id` is the deterministic digest of a list of wire rules that the collector
puts in ``Enforcement.ruleset_id``; the sensor checks it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from google.protobuf.json_format import MessageToDict

from netwarden.proto import netwarden_pb2 as pb

__all__ = [
    "MAX_EXPIRY_NS",
    "MAX_PORT_SLOTS",
    "MAX_RATE",
    "MIN_RATE",
    "ActionName",
    "Desired",
    "DirectionName",
    "Family",
    "Network",
    "PortRange",
    "ProtocolName",
    "Refusal",
    "Rule",
    "RuleError",
    "RuleMatch",
    "parse_enforcement",
    "port_slots",
    "rule_from_proto",
    "rule_to_proto",
    "ruleset_id",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Family = Literal[4, 6]
DirectionName = Literal["in", "out", "both"]
ProtocolName = Literal["any", "tcp", "udp", "icmp"]
ActionName = Literal["drop", "reject", "throttle"]

MAX_PORT_SLOTS: Final = 15          # iptables multiport: 15 ports, a range counts twice
MIN_RATE: Final = 1024              # bytes/s; hashlimit is imprecise below
MAX_RATE: Final = 4000 * 1024 * 1024  # bytes/s; hashlimit's byte mode tops out at 4095mb/s
MAX_EXPIRY_NS: Final = 400 * 86400 * 10**9
MAX_CIDRS: Final = 256
_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_DIRECTIONS: Final[dict[int, DirectionName]] = {
    pb.DIRECTION_IN: "in", pb.DIRECTION_OUT: "out", pb.DIRECTION_BOTH: "both"}
_PROTOCOLS: Final[dict[int, ProtocolName]] = {
    pb.PROTOCOL_ANY: "any", pb.PROTOCOL_TCP: "tcp", pb.PROTOCOL_UDP: "udp",
    pb.PROTOCOL_ICMP: "icmp"}
_ACTIONS: Final[dict[int, ActionName]] = {
    pb.ACTION_BLOCK_DROP: "drop", pb.ACTION_BLOCK_REJECT: "reject",
    pb.ACTION_THROTTLE: "throttle"}


class RuleError(ValueError):
    """A rule that cannot be applied; the message is the one-line reason."""


@dataclass(frozen=True, order=True)
class PortRange:
    """Ports ``low`` to ``high`` inclusive."""

    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}:{self.high}"


@dataclass(frozen=True)
class RuleMatch:
    """The traffic a rule covers (see ``Match`` in the proto); empty tuples mean any."""

    direction: DirectionName = "both"
    remote: tuple[Network, ...] = ()
    local: tuple[Network, ...] = ()
    ports: tuple[PortRange, ...] = ()
    protocol: ProtocolName = "any"

    def families(self) -> tuple[Family, ...]:
        """The address families this match can apply to: a family is out when remote or
        local networks are given but none of that family."""
        out: list[Family] = []
        for fam in (4, 6):
            if any(not _of(nets, fam) for nets in (self.remote, self.local) if nets):
                continue
            out.append(4 if fam == 4 else 6)
        return tuple(out)

    def networks(self, fam: int) -> tuple[tuple[Network, ...], tuple[Network, ...]]:
        """(remote, local) networks of family ``fam``."""
        return _of(self.remote, fam), _of(self.local, fam)


@dataclass(frozen=True)
class Rule:
    """One valid block or throttle (see ``Rule`` in the proto)."""

    id: str
    action: ActionName
    match: RuleMatch
    expires_ns: int
    policy: str = ""
    rate: int = 0
    burst: int = 0
    exempt_cidrs: tuple[Network, ...] = ()
    exempt_ports: tuple[PortRange, ...] = ()

    def describe(self) -> str:
        """One line for logs: ``id (policy): action match``."""
        m = self.match
        parts: list[str] = [m.direction, m.protocol]
        if m.remote:
            parts.append("remote " + ",".join(map(str, m.remote)))
        if m.local:
            parts.append("local " + ",".join(map(str, m.local)))
        if m.ports:
            parts.append("ports " + ",".join(map(str, m.ports)))
        what = self.action if self.action != "throttle" else f"throttle {self.rate} B/s"
        return f"{self.id} ({self.policy or '-'}): {what} {' '.join(parts)}"


@dataclass(frozen=True)
class Refusal:
    """A rule the sensor will not apply, and why (one line)."""

    rule_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule_id or '?'}: {self.reason}"


@dataclass(frozen=True)
class Desired:
    """A validated Enforcement: the rules to apply and those refused."""

    version: int
    ruleset_id: str
    issued_ns: int
    rules: tuple[Rule, ...] = ()
    refused: tuple[Refusal, ...] = field(default=())


def _of(nets: Iterable[Network], fam: int) -> tuple[Network, ...]:
    return tuple(n for n in nets if n.version == fam)


def port_slots(ports: Sequence[PortRange]) -> int:
    """Slots a list of ranges takes in one iptables multiport match."""
    return sum(1 if p.low == p.high else 2 for p in ports)


def _networks(texts: Iterable[str], what: str) -> tuple[Network, ...]:
    nets: list[Network] = []
    for text in texts:
        try:
            nets.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            raise RuleError(f"{what}: {text!r}: {exc}") from None
    if len(nets) > MAX_CIDRS:
        raise RuleError(f"{what}: {len(nets)} networks, at most {MAX_CIDRS}")
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    # collapsed: no overlaps, so a packet matches at most one of them
    return (*v4, *v6)


def _ports(ranges: Iterable[pb.PortRange], what: str) -> tuple[PortRange, ...]:
    out: list[PortRange] = []
    for r in ranges:
        if not 1 <= r.low <= 65535 or not 1 <= r.high <= 65535:
            raise RuleError(f"{what}: {r.low}-{r.high}: ports are 1..65535")
        if r.high < r.low:
            raise RuleError(f"{what}: {r.low}-{r.high}: high is below low")
        out.append(PortRange(r.low, r.high))
    merged: list[PortRange] = []
    for p in sorted(out):
        if merged and p.low <= merged[-1].high + 1:
            last = merged.pop()
            merged.append(PortRange(last.low, max(last.high, p.high)))
        else:
            merged.append(p)
    if port_slots(merged) > MAX_PORT_SLOTS:
        raise RuleError(f"{what}: {port_slots(merged)} port slots, at most {MAX_PORT_SLOTS} "
                        "(a single port takes one, a range two)")
    return tuple(merged)


def rule_from_proto(msg: pb.Rule, now_ns: int) -> Rule:
    """The valid :class:`Rule` of ``msg``; :class:`RuleError` (one-line reason) if not."""
    if not _ID_RE.match(msg.id):
        raise RuleError(f"id {msg.id!r}: use 1-64 of A-Z a-z 0-9 . _ : -")
    if len(msg.policy) > 200 or "\n" in msg.policy:
        raise RuleError("policy: at most 200 characters on one line")
    if msg.action not in _ACTIONS:
        raise RuleError("action is not set" if msg.action == pb.ACTION_UNSPECIFIED
                        else f"unknown action {msg.action}")
    action = _ACTIONS[msg.action]
    m = msg.match
    if m.direction not in _DIRECTIONS:
        raise RuleError("match.direction is not set" if m.direction == 0
                        else f"unknown match.direction {m.direction}")
    if m.protocol not in _PROTOCOLS:
        raise RuleError(f"unknown match.protocol {m.protocol}")
    protocol = _PROTOCOLS[m.protocol]
    ports = _ports(m.ports, "match.ports")
    if ports and protocol == "icmp":
        raise RuleError("match.ports: ports need protocol tcp, udp or any, not icmp")
    match = RuleMatch(direction=_DIRECTIONS[m.direction],
                      remote=_networks(m.remote_cidrs, "match.remote_cidrs"),
                      local=_networks(m.local_cidrs, "match.local_cidrs"),
                      ports=ports, protocol=protocol)
    if not match.families():
        raise RuleError("match.remote_cidrs and match.local_cidrs share no address family: "
                        "the rule matches nothing")
    if action == "throttle":
        if not MIN_RATE <= msg.rate_bytes_per_s <= MAX_RATE:
            raise RuleError(f"rate_bytes_per_s {msg.rate_bytes_per_s}: a throttle needs "
                            f"{MIN_RATE}..{MAX_RATE}")
        if msg.burst_bytes and not msg.rate_bytes_per_s <= msg.burst_bytes <= 2**32 - 1:
            raise RuleError(f"burst_bytes {msg.burst_bytes}: 0 (default) or from "
                            f"rate_bytes_per_s to {2**32 - 1}")
    elif msg.rate_bytes_per_s or msg.burst_bytes:
        raise RuleError("rate_bytes_per_s/burst_bytes are for THROTTLE only")
    if msg.expires_ns <= now_ns:
        raise RuleError("expires_ns is not set" if msg.expires_ns == 0
                        else "expires_ns is not in the future")
    if msg.expires_ns - now_ns > MAX_EXPIRY_NS:
        raise RuleError("expires_ns is more than 400 days ahead")
    return Rule(id=msg.id, action=action, match=match, expires_ns=msg.expires_ns,
                policy=msg.policy, rate=msg.rate_bytes_per_s, burst=msg.burst_bytes,
                exempt_cidrs=_networks(msg.exempt_cidrs, "exempt_cidrs"),
                exempt_ports=_ports(msg.exempt_ports, "exempt_ports"))


def rule_to_proto(rule: Rule) -> pb.Rule:
    """The wire form of ``rule`` (its networks and ports as normalised by validation)."""
    action = {v: k for k, v in _ACTIONS.items()}[rule.action]
    m = rule.match
    match = pb.Match(
        direction={v: k for k, v in _DIRECTIONS.items()}[m.direction],
        remote_cidrs=[str(n) for n in m.remote], local_cidrs=[str(n) for n in m.local],
        ports=[pb.PortRange(low=p.low, high=p.high) for p in m.ports],
        protocol={v: k for k, v in _PROTOCOLS.items()}[m.protocol])
    return pb.Rule(id=rule.id, policy=rule.policy, match=match,
                   action=action, rate_bytes_per_s=rule.rate,
                   burst_bytes=rule.burst, expires_ns=rule.expires_ns,
                   exempt_cidrs=[str(n) for n in rule.exempt_cidrs],
                   exempt_ports=[pb.PortRange(low=p.low, high=p.high)
                                 for p in rule.exempt_ports])


def ruleset_id(rules: Iterable[pb.Rule]) -> str:
    """Deterministic digest (32 hex digits) of wire rules, independent of their order."""
    canon = sorted(json.dumps(MessageToDict(r, preserving_proto_field_name=True),
                              sort_keys=True, separators=(",", ":")) for r in rules)
    return hashlib.sha256("\n".join(canon).encode()).hexdigest()[:32]


def parse_enforcement(msg: pb.Enforcement, now_ns: int) -> Desired:
    """``msg`` validated: each rule accepted or refused with its reason.

    Raises :class:`RuleError` when the message as a whole is unusable (version 0, a
    ``ruleset_id`` that does not match its rules); the previous state then stays.
    """
    if msg.version == 0:
        raise RuleError("enforcement version is 0 (versions start at 1)")
    computed = ruleset_id(msg.rules)
    if msg.ruleset_id and msg.ruleset_id != computed:
        raise RuleError(f"enforcement ruleset_id {msg.ruleset_id!r} does not match its rules "
                        f"({computed!r})")
    rules: list[Rule] = []
    refused: list[Refusal] = []
    seen: set[str] = set()
    for r in msg.rules:
        if r.id in seen:
            refused.append(Refusal(r.id, "id is used by an earlier rule"))
            continue
        seen.add(r.id)
        try:
            rules.append(rule_from_proto(r, now_ns))
        except RuleError as exc:
            refused.append(Refusal(r.id, str(exc)))
    return Desired(version=msg.version, ruleset_id=computed, issued_ns=msg.issued_ns,
                   rules=tuple(rules), refused=tuple(refused))
