"""Lock-out protection: traffic netwarden never blocks nor throttles, whatever it is told.

The sensor must never cut itself off from its collector nor lock the operator out, so
:func:`guard_rules` gives the lines placed *first* in netwarden's ``NETWARDEN-IN`` and
``NETWARDEN-OUT`` chains, before any rule of the collector:

* the collector link: TCP to/from each resolved address of each collector endpoint and
  its port (an endpoint that does not resolve protects its port towards any address);
* management access (config ``management_ports``, default TCP 22): TCP to those ports of
  this host, and the replies from them;
* management networks (``management_cidrs``): all traffic with them;
* loopback (``exempt_loopback``, default on).

The guard lines jump to ``RETURN``, not ``ACCEPT``: they leave netwarden's chain and the
packet continues through the host's own rules, so netwarden only ever removes traffic and
never lets through what the host's firewall would stop. Forwarded traffic
(``NETWARDEN-FWD``) is not this host's own link and has no guards.

:func:`only_protected` refuses a rule that could only hit protected traffic (it would
have no effect and reveals a mistake in the policy).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from netwarden.endpoint import split_endpoint

from .config import EnforceConfig
from .rules import Network, PortRange, Rule

__all__ = ["Address", "Guard", "Protected", "guard_rules", "only_protected", "protected",
           "resolve_endpoint"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]
_LOOPBACK: Final[tuple[Network, ...]] = (ipaddress.ip_network("127.0.0.0/8"),
                                        ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Protected:
    """Everything netwarden leaves alone on this host."""

    collectors: tuple[tuple[Address, int], ...] = ()  # resolved collector address, port
    collector_ports: tuple[int, ...] = ()              # endpoints that did not resolve
    management_ports: tuple[int, ...] = (22,)
    management_cidrs: tuple[Network, ...] = ()
    loopback: bool = True


@dataclass(frozen=True)
class Guard:
    """One guard line: iptables match arguments and what it protects (its comment)."""

    args: tuple[str, ...]
    what: str


def resolve_endpoint(endpoint: str, resolver: Resolver = socket.getaddrinfo
                     ) -> tuple[list[Address], int]:
    """The addresses (possibly none: name unknown) and port of a ``HOST:PORT`` endpoint."""
    host, port = split_endpoint(endpoint)
    try:
        return [ipaddress.ip_address(host)], port
    except ValueError:
        pass
    try:
        infos = resolver(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return [], port
    out: list[Address] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if addr not in out:
            out.append(addr)
    return out, port


def protected(config: EnforceConfig, collectors: Sequence[str],
              known: Sequence[tuple[Address, int]] = (),
              resolver: Resolver = socket.getaddrinfo) -> Protected:
    """What ``config`` and the collector endpoints protect. ``known`` are addresses seen
    before (kept: a collector that moved may still hold the live connection)."""
    resolved: list[tuple[Address, int]] = list(known)
    unresolved: list[int] = []
    for ep in collectors:
        addrs, port = resolve_endpoint(ep, resolver)
        if not addrs and port not in unresolved:
            unresolved.append(port)
        for a in addrs:
            if (a, port) not in resolved:
                resolved.append((a, port))
    return Protected(
        collectors=tuple(resolved), collector_ports=tuple(unresolved),
        management_ports=tuple(dict.fromkeys(config.management_ports)),
        management_cidrs=tuple(ipaddress.ip_network(c) for c in config.management_cidrs),
        loopback=config.exempt_loopback)


def guard_rules(p: Protected, family: int, direction: Literal["in", "out"]) -> list[Guard]:
    """The guard lines of one chain: ``direction`` in (NETWARDEN-IN) or out."""
    inbound = direction == "in"
    there = "-s" if inbound else "-d"
    own, peer = ("--dport", "--sport") if inbound else ("--sport", "--dport")
    out: list[Guard] = []
    if p.loopback:
        out.append(Guard(("-i" if inbound else "-o", "lo"), "loopback"))
    for net in p.management_cidrs:
        if net.version == family:
            out.append(Guard((there, str(net)), f"management {net}"))
    for port in p.management_ports:
        out.append(Guard(("-p", "tcp", "-m", "tcp", own, str(port)),
                         f"management tcp {port}"))
    for addr, port in p.collectors:
        if addr.version == family:
            prefix = 32 if family == 4 else 128
            out.append(Guard((there, f"{addr}/{prefix}", "-p", "tcp", "-m", "tcp", peer,
                              str(port)), f"collector {addr} {port}"))
    for port in p.collector_ports:
        out.append(Guard(("-p", "tcp", "-m", "tcp", peer, str(port)),
                         f"collector (unresolved) {port}"))
    return out


def _within(nets: Sequence[Network], cover: Sequence[Network]) -> bool:
    return bool(nets) and all(
        any(n.version == c.version and n.subnet_of(c) for c in cover)  # type: ignore[arg-type]
        for n in nets)


def _ports_within(ranges: Sequence[PortRange], allowed: set[int]) -> bool:
    """Every port of ``ranges`` (at least one) is in ``allowed``; a range wider than
    ``allowed`` is not expanded."""
    return bool(ranges) and all(
        r.high - r.low < len(allowed) and all(x in allowed for x in range(r.low, r.high + 1))
        for r in ranges)


def only_protected(rule: Rule, p: Protected) -> str | None:
    """Why ``rule`` can only match protected traffic (a refusal reason), or None."""
    m = rule.match
    if p.loopback and _within(m.local, _LOOPBACK):
        return "matches only loopback traffic, which is never touched"
    if _within(m.remote, p.management_cidrs):
        return "matches only management networks, which are never touched"
    if m.protocol == "tcp" and _ports_within(m.ports, set(p.management_ports)):
        ports = ",".join(map(str, sorted({x for r in m.ports
                                          for x in range(r.low, r.high + 1)})))
        return f"matches only management access (tcp {ports}), which is never touched"
    hosts = [ipaddress.ip_network(a) for a, _ in p.collectors]
    cports = {port for _, port in p.collectors} | set(p.collector_ports)
    if m.protocol == "tcp" and _within(m.remote, hosts) and _ports_within(m.ports, cports):
        return "matches only the collector link, which is never touched"
    return None
