"""``netwarden policy simulate``: replay stored history through a policy, enforcing nothing.

:func:`replay` is pure: given bytes per host and minute (what the policy counts), it
walks the minutes in order and reports every :class:`Crossing`: the minute in which a
scope's usage over its period (calendar period, or the rolling window ending with that
minute) first reaches a tier's threshold. A calendar period starts again at zero at its
reset; in a rolling window usage also falls as old minutes leave it, and a tier reached
again after usage fell below it is reported again. When one minute passes several
tiers, each is reported.

:func:`simulate` reads the minutes from raw ``flows`` (:func:`.usage.flow_usage`, the
slow path: the policy need not have been loaded when the traffic was stored), starting
at the beginning of the period that contains ``since`` (or ``since`` minus the window)
so the usage at ``since`` is right; crossings before ``since`` are not reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from netwarden.collector.reports.filters import iso_from_ns
from netwarden.policy.model import Policy, PolicySet
from netwarden.policy.period import period_bounds

from .evaluate import POOLED, current_tier
from .match import HostLabels, selected_hosts
from .usage import MINUTE, NS_PER_S, flow_usage

if TYPE_CHECKING:
    from netwarden.collector.store import Store

__all__ = ["Crossing", "replay", "simulate"]


@dataclasses.dataclass(frozen=True, order=True)
class Crossing:
    """A tier a scope would have reached, and when."""

    at: int  # epoch second of the minute in which the threshold was reached
    policy: str
    scope: str
    hosts: tuple[str, ...]
    usage: int  # over the period, through the end of that minute
    quota: int
    percent: float
    tier: int
    threshold: float
    action: str
    period_end: int | None  # None for a rolling window

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hosts": list(self.hosts),
                "at_iso": iso_from_ns(self.at * NS_PER_S)}


def _scopes(policy: Policy, policies: PolicySet, hosts: Iterable[str],
            labels: HostLabels | None) -> list[tuple[str, tuple[str, ...]]]:
    selected = selected_hosts(policy, policies, hosts, labels)
    if policy.scope == "pooled":
        return [(POOLED, tuple(selected))] if selected else []
    return [(h, (h,)) for h in selected]


def replay(policy: Policy, policies: PolicySet, usage: Mapping[str, Mapping[int, int]],
           *, since_s: int, until_s: int, hosts: Iterable[str] = (),
           labels: HostLabels | None = None) -> list[Crossing]:
    """Crossings of ``policy`` in minutes ``[since_s, until_s)``; ``usage``: host →
    minute (epoch s) → bytes, which may start before ``since_s`` (earlier minutes count
    toward the period but report nothing)."""
    out: list[Crossing] = []
    known = set(hosts) | set(usage)
    rolling = policy.period.kind == "rolling"
    window = int(policy.period.window.total_seconds()) if rolling and policy.period.window \
        else 0
    for scope, members in _scopes(policy, policies, known, labels):
        per_minute: dict[int, int] = {}
        for h in members:
            for minute, b in usage.get(h, {}).items():
                per_minute[minute] = per_minute.get(minute, 0) + int(b)
        minutes = np.array(sorted(m for m in per_minute if m < until_s), dtype=np.int64)
        if not len(minutes):
            continue
        nbytes = [per_minute[int(m)] for m in minutes]
        prefix = [0]
        for b in nbytes:
            prefix.append(prefix[-1] + b)
        period: tuple[int, int] | None = None
        period_first = 0  # index of the first minute in the current calendar period
        for i, minute in enumerate(minutes.tolist()):
            if rolling:
                end = None
                lo = int(np.searchsorted(minutes, minute - window, side="right"))
                lo_prev = int(np.searchsorted(minutes, minute - MINUTE - window, side="right"))
                total = prefix[i + 1] - prefix[lo]
                before = prefix[i] - prefix[lo_prev]
            else:
                if period is None or not (period[0] <= minute < period[1]):
                    start, stop = period_bounds(policy.period,
                                                datetime.fromtimestamp(minute, UTC))
                    period = (int(start.timestamp()), int(stop.timestamp()))
                    period_first = i
                end = period[1]
                total = prefix[i + 1] - prefix[period_first]
                before = prefix[i] - prefix[period_first]
            was, _ = current_tier(policy, before)
            now, _ = current_tier(policy, total)
            if now <= was or minute < since_s:
                continue
            for index in range(was + 1, now + 1):
                tier = policy.tiers[index - 1]
                out.append(Crossing(
                    at=minute, policy=policy.name, scope=scope, hosts=members, usage=total,
                    quota=policy.quota, percent=round(total * 100 / policy.quota, 4),
                    tier=index, threshold=tier.at, action=tier.action, period_end=end))
    return sorted(out)


def simulate(store: Store, policy: Policy, policies: PolicySet, since_s: int, until_s: int,
             labels: HostLabels | None = None) -> list[Crossing]:
    """Replay the stored flows of ``[since_s, until_s)`` through ``policy``."""
    since_at = datetime.fromtimestamp(since_s, UTC)
    read_from = int(period_bounds(policy.period, since_at)[0].timestamp())
    usage = flow_usage(store, policy, min(read_from, since_s), until_s)
    return replay(policy, policies, usage, since_s=since_s - since_s % MINUTE,
                  until_s=until_s, labels=labels)
