"""Evaluation: from policies, usage and hosts to the desired enforcement state.

:func:`evaluate` is a pure function of its arguments. For every policy and *scope*
(``per_host``: each selected host on its own; ``pooled``: the selected hosts as one
allowance, scope name :data:`POOLED`) it gives the period (:mod:`netwarden.policy.period`),
the usage, the quota, the percentage, and the current tier: the highest tier whose
threshold the usage has reached (tier numbers are 1-based; 0 is none).

A throttle or block tier becomes a :class:`Rule` on every host of the scope (alerts make no
rule). A rule carries what the sensor needs for its packet filter: the action (rate in
bytes/s, or drop/reject), the policy's matches (direction, protocols, ports, networks),
its exemptions, and when it expires (the period end; ``None`` for a rolling window, whose
rules hold until the next evaluation says otherwise). A pooled throttle gives every host
the whole rate: a sensor can only shape its own host's traffic.

Apps cannot be filtered by a packet filter: a match's ``apps`` are replaced by the remote
addresses seen with those app labels (``app_addresses``, collected by the engine from the
stored records of the period), kept within the match's ``remote`` networks when it has
some. A match whose apps resolve to no address is left out of the rule and its apps are
listed in :attr:`Rule.unresolved_apps`.

:class:`HostState` is canonical: rules sorted, every list sorted and without duplicates,
and :attr:`HostState.version` is a digest of the rules' canonical JSON, so the same input
gives the same state and version on any collector, in any input order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from netwarden.policy.model import Match, Network, Policy, PolicySet, Tier
from netwarden.policy.period import period_bounds

from .match import HostLabels, selected_hosts

__all__ = ["POOLED", "DesiredState", "HostState", "Rule", "RuleMatch", "ScopeStatus",
           "current_tier", "evaluate", "rules_version"]

POOLED: Final = "(pooled)"  # host names cannot contain parentheses


@dataclasses.dataclass(frozen=True)
class ScopeStatus:
    """One policy scope at the evaluation instant."""

    policy: str
    scope: str  # the host name (per_host) or POOLED
    hosts: tuple[str, ...]
    usage: int
    quota: int
    percent: float
    tier: int  # 1-based index into the policy's tiers; 0: no threshold reached
    threshold: float  # the tier's ``at`` (percent); 0.0 when tier is 0
    action: str  # "none", "alert", "throttle" or "block"
    rate: int | None
    mode: str | None
    period_start: int  # epoch seconds
    period_end: int | None  # epoch seconds; None for a rolling window

    @property
    def tier_text(self) -> str:
        if not self.tier:
            return "-"
        text = f"{self.threshold:g}% {self.action}"
        if self.rate is not None:
            text += f" {self.rate} B/s"
        if self.mode is not None:
            text += f" ({self.mode})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hosts": list(self.hosts),
                "tier_text": self.tier_text}


@dataclasses.dataclass(frozen=True, order=True)
class RuleMatch:
    """Traffic a rule applies to; an empty field means any."""

    direction: str = "both"
    protocols: tuple[str, ...] = ("any",)
    ports: tuple[tuple[int, int], ...] = ()
    dst: tuple[str, ...] = ()
    src: tuple[str, ...] = ()
    remote: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, order=True)
class Rule:
    """What one host must enforce for one policy scope."""

    policy: str
    scope: str
    action: str  # "throttle" or "block"
    rate: int | None  # bytes per second (throttle)
    mode: str | None  # "drop" or "reject" (block)
    matches: tuple[RuleMatch, ...]
    exempt_networks: tuple[str, ...]
    exempt_ports: tuple[tuple[int, int], ...]
    expires: int | None  # epoch seconds (period end); None: until the next state
    unresolved_apps: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def rules_version(rules: Sequence[Rule]) -> str:
    """The digest of the canonical JSON of ``rules`` (16 hex digits)."""
    text = json.dumps([r.to_json() for r in rules], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class HostState:
    """The desired enforcement state of one host."""

    host: str
    rules: tuple[Rule, ...]
    version: str

    @classmethod
    def of(cls, host: str, rules: Iterable[Rule]) -> HostState:
        ordered = tuple(sorted(set(rules)))
        return cls(host, ordered, rules_version(ordered))

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "version": self.version,
                "rules": [r.to_json() for r in self.rules]}


@dataclasses.dataclass(frozen=True)
class DesiredState:
    """Every scope's status and every host's desired state at instant :attr:`at`."""

    at: int
    scopes: tuple[ScopeStatus, ...]
    hosts: Mapping[str, HostState]

    def for_host(self, host: str) -> HostState:
        """The state of ``host`` (no rules when no policy acts on it)."""
        return self.hosts.get(host) or HostState.of(host, ())


def current_tier(policy: Policy, usage: int) -> tuple[int, Tier | None]:
    """The highest tier reached by ``usage`` (1-based index, the tier) or ``(0, None)``."""
    best: tuple[int, Tier | None] = (0, None)
    for i, tier in enumerate(policy.tiers, start=1):
        if usage * 100 >= tier.at * policy.quota:
            best = (i, tier)
    return best


def _net_strings(nets: Iterable[Network]) -> tuple[str, ...]:
    return tuple(sorted({str(n) for n in nets}))


def _rule_matches(match: Match, app_addresses: Mapping[str, Sequence[str]]
                  ) -> tuple[RuleMatch | None, tuple[str, ...]]:
    ports = tuple(sorted({(p.low, p.high) for p in match.ports}))
    remote = _net_strings(match.remote)
    unresolved: tuple[str, ...] = ()
    if match.apps:
        seen: set[str] = set()
        for app in match.apps:
            for text in app_addresses.get(app, ()):
                addr = ipaddress.ip_address(text)
                if match.remote and not any(addr in n for n in match.remote
                                            if n.version == addr.version):
                    continue
                seen.add(str(ipaddress.ip_network(addr)))
        if not seen:
            return None, tuple(sorted(set(match.apps)))
        remote = tuple(sorted(seen))
    return RuleMatch(direction=match.direction, protocols=tuple(sorted(set(match.protocols))),
                     ports=ports, dst=_net_strings(match.dst), src=_net_strings(match.src),
                     remote=remote), unresolved


def _rule(policy: Policy, scope: str, tier: Tier, expires: int | None,
          app_addresses: Mapping[str, Sequence[str]]) -> Rule:
    matches: set[RuleMatch] = set()
    unresolved: set[str] = set()
    for match in policy.what:
        rule_match, missing = _rule_matches(match, app_addresses)
        if rule_match is None:
            unresolved.update(missing)
        else:
            matches.add(rule_match)
    return Rule(policy=policy.name, scope=scope, action=tier.action,
                rate=tier.rate if tier.action == "throttle" else None,
                mode=(tier.mode or "drop") if tier.action == "block" else None,
                matches=tuple(sorted(matches)),
                exempt_networks=_net_strings(policy.exempt.networks),
                exempt_ports=tuple(sorted({(p.low, p.high) for p in policy.exempt.ports})),
                expires=expires, unresolved_apps=tuple(sorted(unresolved)))


def evaluate(policies: PolicySet, usage: Mapping[str, Mapping[str, int]],
             hosts: Iterable[str], now: datetime, *, labels: HostLabels | None = None,
             app_addresses: Mapping[str, Sequence[str]] | None = None) -> DesiredState:
    """The desired state at ``now`` (aware).

    ``usage``: policy name → host → bytes counted in the policy's period containing
    ``now``; ``hosts``: every host known; ``labels``: host → labels (for label
    selectors); ``app_addresses``: app label → remote addresses seen with it.
    """
    known = sorted(set(hosts) | {h for per_host in usage.values() for h in per_host})
    apps = app_addresses or {}
    scopes: list[ScopeStatus] = []
    rules: dict[str, list[Rule]] = {h: [] for h in known}
    for policy in sorted(policies.policies, key=lambda p: p.name):
        start, end = period_bounds(policy.period, now)
        start_s = int(start.timestamp())
        end_s = None if policy.period.kind == "rolling" else int(end.timestamp())
        selected = selected_hosts(policy, policies, known, labels)
        used = usage.get(policy.name, {})
        if policy.scope == "pooled":
            groups = [(POOLED, tuple(selected))] if selected else []
        else:
            groups = [(h, (h,)) for h in selected]
        for scope, members in groups:
            total = sum(int(used.get(h, 0)) for h in members)
            index, tier = current_tier(policy, total)
            scopes.append(ScopeStatus(
                policy=policy.name, scope=scope, hosts=members, usage=total,
                quota=policy.quota, percent=round(total * 100 / policy.quota, 4),
                tier=index, threshold=tier.at if tier else 0.0,
                action=tier.action if tier else "none",
                rate=tier.rate if tier else None,
                mode=(tier.mode or "drop") if tier and tier.action == "block" else None,
                period_start=start_s, period_end=end_s))
            if tier is not None and tier.action in ("throttle", "block"):
                rule = _rule(policy, scope, tier, end_s, apps)
                for h in members:
                    rules[h].append(rule)
    states = {h: HostState.of(h, rs) for h, rs in rules.items()}
    return DesiredState(at=int(now.timestamp()), scopes=tuple(scopes), hosts=states)
