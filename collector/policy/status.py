"""``netwarden policy status``: one row per policy and scope, as a report result.

Columns: ``policy``, ``scope`` (host name, or ``(pooled)``), ``hosts`` (the hosts the
scope covers: affected when a tier acts), ``usage`` and ``quota`` (bytes), ``percent``,
``tier`` (the tier reached, ``-`` when none), ``action``, ``period_end`` (ISO 8601 UTC,
``rolling`` for a rolling window). The same rows come from a store (the CLI evaluates
the policy files itself) or from a collector (``Query`` with report
:data:`POLICY_STATUS`: the collector evaluates its own policies).

Enforcement per host: a collector adds its live desired and applied state
(``meta["enforcement"]``, :meth:`.push.EnforcementPush.status`); on a store,
:func:`applied_state` reads what each sensor last reported from ``enforcement_applied``
(``meta["applied"]``: no desired state, the collector's is not stored).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from netwarden.collector.reports.filters import iso_from_ns
from netwarden.collector.reports.result import ReportResult
from netwarden.collector.store.schema import POLICY_USAGE_1D, POLICY_USAGE_1H
from netwarden.policy.model import Policy, PolicySet
from netwarden.policy.period import period_bounds

from .evaluate import DesiredState, evaluate
from .match import HostLabels
from .usage import NS_PER_S, flow_usage, has_usage, known_hosts, read_usages

if TYPE_CHECKING:
    from netwarden.collector.store import Store

__all__ = ["COLUMNS", "POLICY_STATUS", "applied_state", "status_result", "store_state"]

POLICY_STATUS: Final = "policy_status"
COLUMNS: Final = ["policy", "scope", "hosts", "usage", "quota", "percent", "tier", "action",
                  "period_end"]


def _iso(ts: int | None) -> str:
    return "rolling" if ts is None else iso_from_ns(ts * NS_PER_S)


def status_result(state: DesiredState, sources: dict[str, str] | None = None
                  ) -> ReportResult:
    """The status rows of ``state``, in policy then scope order."""
    rows = [{"policy": s.policy, "scope": s.scope, "hosts": list(s.hosts), "usage": s.usage,
             "quota": s.quota, "percent": s.percent, "tier": s.tier_text, "action": s.action,
             "period_end": _iso(s.period_end)}
            for s in sorted(state.scopes, key=lambda s: (s.policy, s.scope))]
    return ReportResult(report=POLICY_STATUS, filters={}, rows=rows, columns=list(COLUMNS),
                        meta={"at": _iso(state.at), "usage_from": dict(sources or {})})


def store_state(store: Store, policies: PolicySet, now: datetime,
                labels: HostLabels | None = None) -> tuple[DesiredState, dict[str, str]]:
    """Evaluate ``policies`` on a store at ``now``: usage from ``policy_usage`` for the
    policies it has rows for, from raw ``flows`` for the others (slow path). Returns the
    state and, per policy, where its usage came from (``policy_usage`` or ``flows``)."""
    tables = {str(r[0]) for r in store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")}
    rollup = "policy_usage" in tables
    coarse = {POLICY_USAGE_1H.name, POLICY_USAGE_1D.name} <= tables
    usage: dict[str, dict[str, int]] = {}
    sources: dict[str, str] = {}
    counted: list[tuple[Policy, int, int]] = []
    for policy in policies.policies:
        start, _ = period_bounds(policy.period, now)
        start_s, end_s = int(start.timestamp()), int(now.timestamp()) + 1
        if rollup and has_usage(store, policy):
            counted.append((policy, start_s, end_s))
            sources[policy.name] = "policy_usage"
        else:
            per_minute = flow_usage(store, policy, start_s, end_s)
            usage[policy.name] = {h: sum(m.values()) for h, m in per_minute.items()}
            sources[policy.name] = "flows"
    if counted:
        usage.update(read_usages(store, counted, rollups=coarse))
    hosts = known_hosts(store, POLICY_USAGE_1D.name if coarse else "policy_usage") \
        if rollup and "sensor_batches" in tables else []
    return evaluate(policies, usage, hosts, now, labels=labels), sources


def applied_state(store: Store) -> list[dict[str, Any]]:
    """Per host (sorted), the enforcement state it last reported: the latest
    ``enforcement_applied`` row (by ``ts``, then ``version``). ``reported_at`` is ISO
    8601 UTC; ``refused`` and ``drift`` are lists of lines. ``[]`` when the store has no
    such table (a store written before enforcement, opened without migrating)."""
    if not store.query("SELECT name FROM system.tables WHERE database = currentDatabase()"
                       " AND name = 'enforcement_applied'"):
        return []
    rows = store.query(
        "SELECT host, version, ruleset_id, mode, rules, refused, drift, error,"
        " toUInt32(ts) AS at FROM enforcement_applied"
        " ORDER BY host, at DESC, version DESC LIMIT 1 BY host")
    return [{"host": str(host), "applied_version": int(version),
             "applied_ruleset": str(ruleset), "mode": str(mode),
             "rules_in_force": int(rules),
             "refused": [x for x in str(refused).split("\n") if x],
             "drift": [x for x in str(drift).split("\n") if x],
             "error": str(error), "reported_at": _iso(int(at))}
            for host, version, ruleset, mode, rules, refused, drift, error, at in rows]
