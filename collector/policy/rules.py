"""From a host's desired state to the wire: :class:`~.evaluate.HostState` → ``pb.Rule`` list.

:func:`enforcement_rules` is a pure function of the state, the instant and the evaluation
period; :func:`enforcement` wraps the rules in a ``pb.Enforcement`` with a version and
their :func:`~netwarden.sensor.enforce.rules.ruleset_id`. The same input gives the same
rules, in the same order, on any collector.

Conversion of one policy rule (:class:`~.evaluate.Rule`):

* **One wire rule per (rule, match, direction, protocol, port chunk).** A wire ``Match``
  has one protocol: ``protocols: [tcp, udp]`` becomes two rules (``any`` stays one). A
  match with ports gives no ICMP rule (ports are TCP/UDP only: such traffic never
  matches). More than :data:`~netwarden.sensor.enforce.rules.MAX_PORT_SLOTS` port slots
  are split over several rules.
* **Networks.** The policy speaks of packet ``dst``/``src`` and the ``remote`` end; the
  sensor of ``remote``/``local`` per direction. Sent traffic (``out``): remote = the
  intersection of ``remote`` and ``dst``, local = ``src``; received (``in``): remote =
  ``remote`` ∩ ``src``, local = ``dst``. A ``both`` match with ``dst`` or ``src`` is two
  rules (out and in); without, one ``both`` rule. A piece whose networks cannot match
  (an empty intersection, remote and local of different address families) is left out.
* **Action.** block → ``ACTION_BLOCK_DROP``/``ACTION_BLOCK_REJECT``; throttle →
  ``ACTION_THROTTLE`` at the tier's rate (bytes/s). Each wire rule has its own token
  bucket, so a throttle whose matches split into several wire rules allows the rate to
  each of them.
* **Exemptions** go to ``exempt_cidrs``/``exempt_ports`` of every piece.
* **Expiry** (``expires_ns``): the period end. A rolling window has none, so its rules
  get :func:`rolling_expiry`: between :data:`ROLLING_MARGIN` / 2 and
  :data:`ROLLING_MARGIN` evaluation periods ahead (at least 30 s / 60 s), on a grid, so
  it changes only every few runs; each change is a new ruleset, pushed to the sensor. A
  sensor cut off from its collector lifts such rules within the margin.
* **Ids**: ``<policy>.<digest>.<n>``: the policy name (cut to 40 characters), 8 hex
  digits of the policy and scope, and the piece's number.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable, Sequence
from typing import Final

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.rules import MAX_PORT_SLOTS, ruleset_id

from .evaluate import HostState, Rule, RuleMatch

__all__ = ["ROLLING_MARGIN", "enforcement", "enforcement_rules", "rolling_expiry"]

ROLLING_MARGIN: Final = 10  # evaluation periods a rolling-window rule stays in force, at most
MIN_ROLLING_STEP_S: Final = 30
NS: Final = 1_000_000_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Pair = tuple[int, int]

_DIRECTIONS: Final = {"in": pb.DIRECTION_IN, "out": pb.DIRECTION_OUT,
                      "both": pb.DIRECTION_BOTH}
_PROTOCOLS: Final = {"any": pb.PROTOCOL_ANY, "tcp": pb.PROTOCOL_TCP,
                     "udp": pb.PROTOCOL_UDP, "icmp": pb.PROTOCOL_ICMP}


def rolling_expiry(now_s: float, every_s: float) -> int:
    """The expiry (epoch s) of a rolling-window rule evaluated at ``now_s``: on a grid of
    ``max(ROLLING_MARGIN / 2 × every_s, 30 s)`` steps, one to two steps ahead."""
    step = max(math.ceil(ROLLING_MARGIN / 2 * every_s), MIN_ROLLING_STEP_S)
    return (int(now_s) // step + 2) * step


def _nets(texts: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(t) for t in texts]


def _intersect(a: Sequence[Network], b: Sequence[Network]) -> list[Network] | None:
    """Networks in both lists (empty list: any); None when nothing can be in both."""
    if not a or not b:
        return list(a or b)
    out: set[Network] = set()
    for x in a:
        for y in b:
            if x.version == y.version and x.overlaps(y):
                out.add(x if x.prefixlen >= y.prefixlen else y)
    return sorted(out, key=lambda n: (n.version, n.network_address, n.prefixlen)) or None


def _sides(m: RuleMatch) -> list[tuple[str, list[Network], list[Network]]]:
    """(direction, remote, local) pieces of a policy match, see the module doc."""
    remote, dst, src = _nets(m.remote), _nets(m.dst), _nets(m.src)
    if m.direction == "both" and not dst and not src:
        return [("both", remote, [])]
    out: list[tuple[str, list[Network], list[Network]]] = []
    for direction in (("out", "in") if m.direction == "both" else (m.direction,)):
        far, near = (dst, src) if direction == "out" else (src, dst)
        got = _intersect(remote, far)
        if got is None:
            continue
        if got and near and not {n.version for n in got} & {n.version for n in near}:
            continue  # different address families: matches nothing
        out.append((direction, got, near))
    return out


def _port_chunks(ports: Sequence[Pair]) -> list[list[Pair]]:
    if not ports:
        return [[]]
    chunks: list[list[Pair]] = [[]]
    slots = 0
    for low, high in sorted(ports):
        need = 1 if low == high else 2
        if slots + need > MAX_PORT_SLOTS:
            chunks.append([])
            slots = 0
        chunks[-1].append((low, high))
        slots += need
    return chunks


def _ranges(ports: Iterable[Pair]) -> list[pb.PortRange]:
    return [pb.PortRange(low=low, high=high) for low, high in ports]


def _rule_id(rule: Rule, n: int) -> str:
    digest = hashlib.sha256(f"{rule.policy}\0{rule.scope}".encode()).hexdigest()[:8]
    return f"{rule.policy[:40]}.{digest}.{n}"


def _wire_rules(rule: Rule, expires_s: int) -> list[pb.Rule]:
    if rule.action == "throttle":
        action, rate = pb.ACTION_THROTTLE, int(rule.rate or 0)
    else:
        action = pb.ACTION_BLOCK_REJECT if rule.mode == "reject" else pb.ACTION_BLOCK_DROP
        rate = 0
    out: list[pb.Rule] = []
    for m in rule.matches:
        protocols = ["any"] if "any" in m.protocols else sorted(set(m.protocols))
        for direction, remote, local in _sides(m):
            for protocol in protocols:
                if m.ports and protocol == "icmp":
                    continue  # ports are TCP/UDP only: no ICMP traffic matches
                for chunk in _port_chunks(m.ports):
                    out.append(pb.Rule(
                        id=_rule_id(rule, len(out) + 1), policy=rule.policy,
                        match=pb.Match(direction=_DIRECTIONS[direction],
                                       remote_cidrs=[str(n) for n in remote],
                                       local_cidrs=[str(n) for n in local],
                                       ports=_ranges(chunk),
                                       protocol=_PROTOCOLS[protocol]),
                        action=action, rate_bytes_per_s=rate,
                        expires_ns=expires_s * NS,
                        exempt_cidrs=list(rule.exempt_networks),
                        exempt_ports=_ranges(rule.exempt_ports)))
    return out


def enforcement_rules(state: HostState, now_s: float, every_s: float) -> list[pb.Rule]:
    """The wire rules of ``state`` at ``now_s`` (``every_s``: the evaluation period, for
    rolling-window expiries). Rules already expired at ``now_s`` are left out."""
    out: list[pb.Rule] = []
    rolling = rolling_expiry(now_s, every_s)
    for rule in state.rules:
        expires = rule.expires if rule.expires is not None else rolling
        if expires <= now_s:
            continue
        out += _wire_rules(rule, expires)
    return out


def enforcement(rules: Sequence[pb.Rule], version: int, issued_ns: int) -> pb.Enforcement:
    """``rules`` as an Enforcement of ``version`` (> 0) with their ruleset id."""
    if version <= 0:
        raise ValueError("enforcement versions start at 1")
    return pb.Enforcement(version=version, ruleset_id=ruleset_id(rules), rules=list(rules),
                          issued_ns=issued_ns)
