"""``netwarden policy status``: one row per policy and scope, as a report result.

Columns: ``policy``, ``scope`` (host name, or ``(pooled)``), ``hosts`` (the hosts the
scope covers: affected when a tier acts), ``usage`` and ``quota`` (bytes), ``percent``,
``tier`` (the tier reached, ``-`` when none), ``action``, ``period_end`` (ISO 8601 UTC,
``rolling`` for a rolling window). The same rows come from a store (the CLI evaluates
the policy files itself) or from a collector (``Query`` with report
:data:`POLICY_STATUS`: the collector evaluates its own policies).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from netwarden.collector.reports.result import ReportResult
from netwarden.policy.model import PolicySet
from netwarden.policy.period import period_bounds

from .evaluate import DesiredState, evaluate
from .match import HostLabels
from .usage import flow_usage, has_usage, known_hosts, read_usage

if TYPE_CHECKING:
    from netwarden.collector.store import Store

__all__ = ["COLUMNS", "POLICY_STATUS", "status_result", "store_state"]

POLICY_STATUS: Final = "policy_status"
COLUMNS: Final = ["policy", "scope", "hosts", "usage", "quota", "percent", "tier", "action",
                  "period_end"]


def _iso(ts: int | None) -> str:
    if ts is None:
        return "rolling"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    usage: dict[str, dict[str, int]] = {}
    sources: dict[str, str] = {}
    for policy in policies.policies:
        start, _ = period_bounds(policy.period, now)
        start_s, end_s = int(start.timestamp()), int(now.timestamp()) + 1
        if rollup and has_usage(store, policy):
            usage[policy.name] = read_usage(store, policy, start_s, end_s)
            sources[policy.name] = "policy_usage"
        else:
            per_minute = flow_usage(store, policy, start_s, end_s)
            usage[policy.name] = {h: sum(m.values()) for h, m in per_minute.items()}
            sources[policy.name] = "flows"
    hosts = known_hosts(store) if rollup and "sensor_batches" in tables else []
    return evaluate(policies, usage, hosts, now, labels=labels), sources
