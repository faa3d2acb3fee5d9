"""The typed, immutable data-plan policy model, as loaded from policy files.

A :class:`PolicySet` holds named :class:`HostGroup` objects and named :class:`Policy`
objects. A policy says *who* (:class:`Selector`), *what traffic* (one or more
:class:`Match`, any of which may match), how much (:attr:`Policy.quota`, bytes), shared
how (:attr:`Policy.scope`), over what period (:class:`Period`), what happens at which
share of the quota (:class:`Tier`) and what is never counted nor touched
(:class:`Exemptions`). Every value here is already valid: :mod:`netwarden.policy.load`
builds these objects only from checked input, with every default filled in.

:class:`Source` (file and line) is carried for messages only and takes no part in
equality, so a policy dumped and loaded again compares equal to the original.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

__all__ = [
    "ACTIONS",
    "BLOCK_MODES",
    "DIRECTIONS",
    "PERIOD_KINDS",
    "PROTOCOLS",
    "SCOPES",
    "WEEKDAYS",
    "Action",
    "BlockMode",
    "Direction",
    "Exemptions",
    "HostGroup",
    "Match",
    "Network",
    "Period",
    "PeriodKind",
    "Policy",
    "PolicySet",
    "PortRange",
    "Protocol",
    "Scope",
    "Selector",
    "Source",
    "Tier",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Direction = Literal["in", "out", "both"]
Protocol = Literal["tcp", "udp", "icmp", "any"]
Scope = Literal["per_host", "pooled"]
PeriodKind = Literal["daily", "weekly", "monthly", "rolling", "fixed"]
Action = Literal["alert", "throttle", "block"]
BlockMode = Literal["drop", "reject"]

DIRECTIONS: Final[tuple[Direction, ...]] = ("in", "out", "both")
PROTOCOLS: Final[tuple[Protocol, ...]] = ("tcp", "udp", "icmp", "any")
SCOPES: Final[tuple[Scope, ...]] = ("per_host", "pooled")
PERIOD_KINDS: Final[tuple[PeriodKind, ...]] = ("daily", "weekly", "monthly", "rolling",
                                               "fixed")
ACTIONS: Final[tuple[Action, ...]] = ("alert", "throttle", "block")
BLOCK_MODES: Final[tuple[BlockMode, ...]] = ("drop", "reject")
WEEKDAYS: Final[tuple[str, ...]] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, order=True)
class Source:
    """Where something was written: file name as given, 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class PortRange:
    """Ports ``low`` to ``high`` inclusive (a single port has ``low == high``)."""

    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class HostGroup:
    """A named set of hosts: by name or glob (``web-*``), or by labels.

    A host belongs to the group when its name matches one of :attr:`hosts`, or when it
    carries every ``key: value`` pair of :attr:`labels` (when labels are given).
    """

    name: str
    hosts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    description: str = ""
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Selector:
    """Which hosts a policy applies to.

    Either the whole fleet, or the union of: hosts whose name matches one of
    :attr:`hosts` (names or shell globs), hosts carrying every pair of :attr:`labels`,
    and the members of each group in :attr:`groups`.
    """

    fleet: bool = False
    hosts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """One description of traffic; every condition given must hold, an empty one is all.

    * :attr:`direction`: ``in`` (received), ``out`` (sent) or ``both``.
    * :attr:`dst` / :attr:`src`: the packet's destination / source is in one of these
      networks; :attr:`remote`: the address at the other end (destination of sent,
      source of received traffic) is in one of them.
    * :attr:`ports`: the flow's source or destination port is in one of these ranges
      (TCP and UDP only).
    * :attr:`protocols`: ``tcp``, ``udp``, ``icmp`` (ICMP and ICMPv6) or ``any``.
    * :attr:`apps`: the flow's app label (from DNS, SNI, QUIC or the port) is one of these.
    """

    direction: Direction = "both"
    dst: tuple[Network, ...] = ()
    src: tuple[Network, ...] = ()
    remote: tuple[Network, ...] = ()
    ports: tuple[PortRange, ...] = ()
    protocols: tuple[Protocol, ...] = ("any",)
    apps: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        """True when this match accepts all traffic."""
        return self == Match()


@dataclass(frozen=True)
class Period:
    """When the quota resets, in the local time of :attr:`time_zone`.

    * ``daily``: at local midnight.
    * ``weekly``: at local midnight starting :attr:`reset_weekday` (0 = Monday).
    * ``monthly``: at local midnight starting day :attr:`reset_day` (1-28) of each month,
      or its last day when :attr:`reset_day` is ``"last"``.
    * ``rolling``: no reset; the quota covers the last :attr:`window` up to now.
    * ``fixed``: back-to-back windows of :attr:`length` (whole seconds, at least 10 s),
      aligned to the Unix epoch (a window starts when epoch seconds are a multiple of the
      length), in absolute time: no time zone. Short periods for tests and trials.

    Fields that do not apply to the kind are ``None``.
    """

    kind: PeriodKind = "monthly"
    time_zone: str | None = "UTC"
    reset_day: int | Literal["last"] | None = 1
    reset_weekday: int | None = None
    window: timedelta | None = None
    length: timedelta | None = None


@dataclass(frozen=True)
class Tier:
    """An action taken once usage reaches :attr:`at` percent of the quota.

    ``alert`` only reports; ``throttle`` limits the matched traffic to :attr:`rate` bytes
    per second; ``block`` stops it (``drop`` silently, or ``reject`` with a TCP reset or
    ICMP unreachable) - :attr:`mode`.
    """

    at: float
    action: Action
    rate: int | None = None
    mode: BlockMode | None = None


@dataclass(frozen=True)
class Exemptions:
    """Traffic never counted nor acted on: to or from these networks, or on these ports."""

    networks: tuple[Network, ...] = ()
    ports: tuple[PortRange, ...] = ()


DEFAULT_TIERS: Final[tuple[Tier, ...]] = (Tier(at=100.0, action="alert"),)


@dataclass(frozen=True)
class Policy:
    """A named data-plan policy with every default filled in."""

    name: str
    who: Selector
    quota: int
    what: tuple[Match, ...] = (Match(),)
    scope: Scope = "per_host"
    period: Period = Period()
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    exempt: Exemptions = Exemptions()
    description: str = ""
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PolicySet:
    """Every group and policy loaded from a set of files, in file then written order."""

    groups: tuple[HostGroup, ...] = ()
    policies: tuple[Policy, ...] = ()
    files: tuple[str, ...] = field(default=(), compare=False)

    def group(self, name: str) -> HostGroup:
        """The group called ``name`` (KeyError when there is none)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def policy(self, name: str) -> Policy:
        """The policy called ``name`` (KeyError when there is none)."""
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)
