"""The collector's policy engine: scheduled evaluation, audit, alerts.

:class:`PolicyEngine` (component style: the constructor does nothing) on :meth:`start`
loads the policy files (``[policy] files``; a bad file stops the collector with every
problem listed), backfills the usage of policies new to the store (``[policy]
backfill``, :func:`.usage.backfill`, over each one's current period), and starts an
APScheduler ``BackgroundScheduler`` job every ``evaluate_every_s``, first run at once.

Each run (:meth:`PolicyEngine.run_once`):

1. reads every policy's usage over its current period from ``policy_usage`` and its
   hourly and daily rollups, in one query (:func:`.usage.read_usages`), and the hosts
   the store knows;
2. refreshes, for policies that name apps, the remote addresses seen with those app
   labels (incrementally: only records newer than the last refresh, at most once a
   minute; entries older than the earliest current period start are forgotten);
3. :func:`.evaluate.evaluate` → :class:`~.evaluate.DesiredState`, kept for
   :meth:`desired_for` (the gRPC stream glue);
4. writes a ``policy_decisions`` row for every scope whose tier, action or rule version
   changed since the last run (every scope on the first run after start);
5. for every scope whose tier rose above the highest tier already alerted in this
   period: a ``policy_alerts`` row, a structured log line (``policy tier crossed``) and,
   when ``webhook_url`` is set, a webhook POST (:mod:`.webhook`, never blocking). The
   alerted tiers of the current periods are read back from ``policy_alerts`` at start,
   so a restarted collector does not alert twice. In a rolling window usage can fall:
   a tier left and reached again alerts again.
6. after a scheduled run, :attr:`PolicyEngine.on_state` (when set) gets the new state:
   the collector pushes changed rulesets to its sensors (:mod:`.push`).

The ``version`` of a decision row is the digest of that scope's rule (of no rule when the
tier only alerts or none is reached): it changes exactly when what the hosts must
enforce for the scope changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from netwarden.collector.config import PolicySection
from netwarden.collector.export import address_text
from netwarden.collector.store.schema import POLICY_ALERTS, POLICY_DECISIONS, Table
from netwarden.collector.store.sql import quote
from netwarden.logging import get_logger
from netwarden.policy import load_policies
from netwarden.policy.model import PolicySet
from netwarden.policy.period import period_bounds

from .evaluate import DesiredState, HostState, Rule, ScopeStatus, evaluate, rules_version
from .usage import UsageRollup, backfill, has_usage, known_hosts, read_usages

if TYPE_CHECKING:
    from netwarden.collector.store import Store

__all__ = ["PolicyEngine"]

log = get_logger("netwarden.collector.policy")

APP_REFRESH_S = 60.0


class PolicyEngine:
    """Evaluates the collector's policies on a schedule. Not reusable after :meth:`stop`."""

    def __init__(self, config: PolicySection, store: Store, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 policies: PolicySet | None = None) -> None:
        self.config = config
        self.store = store
        self.policies = policies or PolicySet()
        self.rollup = UsageRollup(store, ())
        self.state: DesiredState | None = None
        self.runs = 0
        self.last_run_s = 0.0  # wall seconds the last run took
        self._given = policies is not None
        self._clock = clock
        self._lock = threading.Lock()
        self._scheduler: Any = None
        self._webhook: Any = None
        self._decided: dict[tuple[str, str], tuple[int, str, str]] = {}
        self._alerted: dict[tuple[str, str], tuple[int, int]] = {}  # -> (period_end, tier)
        self._apps: dict[str, dict[str, int]] = {}  # app -> address -> last seen (epoch s)
        self._apps_since = 0
        self._apps_lock = threading.Lock()
        self._apps_refreshed = -APP_REFRESH_S
        #: called with the new state after every scheduled run (the collector's push)
        self.on_state: Callable[[DesiredState], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *, schedule: bool = True) -> None:
        """Load the policies, backfill new ones, start the webhook and the schedule.

        Raises :class:`~netwarden.policy.PolicyError` for bad policy files.
        """
        if not self._given:
            self.policies = load_policies(self.config.files) if self.config.files \
                else PolicySet()
        self.rollup.replace(self.policies.policies)
        if self.config.backfill:
            self._backfill_new()
        self._restore_alerted()
        if self.config.webhook_url:
            from .webhook import Webhook

            self._webhook = Webhook(self.config.webhook_url,
                                    attempts=self.config.webhook_attempts,
                                    backoff_s=self.config.webhook_backoff_s)
            self._webhook.start()
        if schedule and self.policies.policies:
            from apscheduler.schedulers.background import BackgroundScheduler

            scheduler = BackgroundScheduler(timezone="UTC")
            scheduler.add_job(self._scheduled, "interval",
                              seconds=self.config.evaluate_every_s, id="policy-evaluate",
                              max_instances=1, coalesce=True,
                              next_run_time=datetime.now(UTC))
            scheduler.start()
            self._scheduler = scheduler
        log.info("policy engine started", policies=len(self.policies.policies),
                 every_s=self.config.evaluate_every_s)

    def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        webhook, self._webhook = self._webhook, None
        if webhook is not None:
            webhook.stop()

    @property
    def webhook(self) -> Any:
        return self._webhook

    # -- what the collector asks ----------------------------------------------------------

    def desired_for(self, host: str) -> HostState:
        """The last evaluated desired state of ``host`` (no rules before the first run)."""
        with self._lock:
            state = self.state
        return state.for_host(host) if state is not None else HostState.of(host, ())

    def _scheduled(self) -> None:
        try:
            state = self.run_once()
        except Exception as exc:  # a store hiccup must not end the schedule
            log.error("policy evaluation failed", error=str(exc).splitlines()[0])
            return
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception as exc:
                log.error("policy state listener failed", error=str(exc).splitlines()[0])

    # -- one evaluation -------------------------------------------------------------------

    def compute(self, now: datetime | None = None) -> DesiredState:
        """Read usage and evaluate (no audit, no alerts)."""
        now = now or self._clock()
        end_s = int(now.timestamp()) + 1
        usage = read_usages(self.store, [
            (policy, int(period_bounds(policy.period, now)[0].timestamp()), end_s)
            for policy in self.policies.policies])
        hosts = known_hosts(self.store)
        apps = self._app_addresses(now)
        return evaluate(self.policies, usage, hosts, now, labels=self.config.labels,
                        app_addresses=apps)

    def run_once(self, now: datetime | None = None) -> DesiredState:
        """One evaluation: compute, keep the state, audit changes, alert crossings."""
        began = time.perf_counter()
        now = now or self._clock()
        state = self.compute(now)
        with self._lock:
            self.state = state
        rules = _scope_rules(state)
        decisions: list[tuple[ScopeStatus, str]] = []
        alerts: list[ScopeStatus] = []
        for scope in state.scopes:
            key = (scope.policy, scope.scope)
            version = rules_version(rules.get(key, []))
            mark = (scope.tier, scope.action, version)
            if self._decided.get(key) != mark:
                decisions.append((scope, version))
                self._decided[key] = mark
            period_end = scope.period_end or 0
            seen_end, seen_tier = self._alerted.get(key, (period_end, 0))
            if seen_end != period_end:
                seen_tier = 0
            if scope.tier > seen_tier:
                alerts.append(scope)
            self._alerted[key] = (period_end, scope.tier if scope.tier > seen_tier or
                                  scope.period_end is None else seen_tier)
        ts = state.at
        if decisions:
            self.store.insert(POLICY_DECISIONS, _rows(
                POLICY_DECISIONS, ts, [s for s, _ in decisions],
                {"version": [v for _, v in decisions]}))
        if alerts:
            messages = [_message(s) for s in alerts]
            self.store.insert(POLICY_ALERTS, _rows(POLICY_ALERTS, ts, alerts,
                                                   {"message": messages}))
            for scope, message in zip(alerts, messages, strict=True):
                log.warning("policy tier crossed", policy=scope.policy, scope=scope.scope,
                            hosts=list(scope.hosts), usage=scope.usage, quota=scope.quota,
                            percent=scope.percent, tier=scope.tier,
                            threshold=scope.threshold, action=scope.action,
                            period_end=scope.period_end, message=message)
                if self._webhook is not None:
                    self._webhook.send({"event": "policy_tier_crossed", "ts": ts,
                                        "message": message, **scope.to_json()})
        self.runs += 1
        self.last_run_s = time.perf_counter() - began
        return state

    # -- helpers --------------------------------------------------------------------------

    def _backfill_new(self) -> None:
        now = self._clock()
        for policy in self.policies.policies:
            if has_usage(self.store, policy):
                continue
            start, _ = period_bounds(policy.period, now)
            began = time.perf_counter()
            rows = backfill(self.store, [policy], int(start.timestamp()),
                            int(now.timestamp()) + 1)
            log.info("policy usage backfilled from stored flows", policy=policy.name,
                     since=start.isoformat(), rows=rows,
                     seconds=round(time.perf_counter() - began, 3))

    def _restore_alerted(self) -> None:
        names = [p.name for p in self.policies.policies]
        if not names:
            return
        rows = self.store.query(
            "SELECT policy, scope, toUInt32(period_end) AS pe, max(tier) AS t"
            f" FROM policy_alerts WHERE policy IN ({', '.join(quote(n) for n in names)})"
            " GROUP BY policy, scope, pe")
        for policy, scope, period_end, tier in rows:
            key = (str(policy), str(scope))
            prev = self._alerted.get(key)
            if prev is None or int(period_end) >= prev[0]:
                self._alerted[key] = (int(period_end), int(tier))

    def _app_addresses(self, now: datetime) -> dict[str, list[str]]:
        wanted = sorted({a for p in self.policies.policies for m in p.what for a in m.apps})
        if not wanted:
            return {}
        starts = [int(period_bounds(p.period, now)[0].timestamp())
                  for p in self.policies.policies if any(m.apps for m in p.what)]
        floor = min(starts)
        with self._apps_lock:
            return self._refresh_apps(wanted, floor, now)

    def _refresh_apps(self, wanted: list[str], floor: int, now: datetime
                      ) -> dict[str, list[str]]:
        mono = time.monotonic()
        if mono - self._apps_refreshed >= APP_REFRESH_S or self._apps_since == 0:
            since = max(floor, self._apps_since - 120)  # late intervals: a 2-minute overlap
            rows = self.store.query(
                "SELECT app, if(direction = 1, src_ip, dst_ip) AS remote,"
                " toUInt32(max(ts)) AS last FROM flows WHERE layer = 0"
                f" AND app IN ({', '.join(quote(a) for a in wanted)})"
                f" AND ts >= toDateTime({since}) GROUP BY app, remote")
            for app, remote, last in rows:
                text = address_text(bytes(remote))
                if text:  # "" for the all-zero address
                    seen = self._apps.setdefault(str(app), {})
                    seen[text] = max(seen.get(text, 0), int(last))
            self._apps_since = int(now.timestamp())
            self._apps_refreshed = mono
        out: dict[str, list[str]] = {}
        for app, seen in self._apps.items():
            for text in [t for t, last in seen.items() if last < floor]:
                del seen[text]
            out[app] = sorted(seen)
        return out


def _scope_rules(state: DesiredState) -> dict[tuple[str, str], list[Rule]]:
    out: dict[tuple[str, str], list[Rule]] = {}
    for host_state in state.hosts.values():
        for rule in host_state.rules:
            key = (rule.policy, rule.scope)
            if rule not in out.setdefault(key, []):
                out[key].append(rule)
    return out


def _message(s: ScopeStatus) -> str:
    who = s.scope if s.scope == s.hosts[0] and len(s.hosts) == 1 else \
        f"{s.scope} ({len(s.hosts)} hosts)"
    return (f"policy {s.policy}: {who} used {s.usage} of {s.quota} bytes "
            f"({s.percent:.1f}%), tier {s.tier} reached: {s.tier_text}")


def _rows(table: Table, ts: int, scopes: Sequence[ScopeStatus],
          extra: dict[str, list[str]]) -> dict[str, np.ndarray]:
    n = len(scopes)
    cols: dict[str, np.ndarray] = {
        "ts": np.full(n, ts, dtype=np.uint32),
        "policy": np.array([s.policy for s in scopes], dtype=object),
        "scope": np.array([s.scope for s in scopes], dtype=object),
        "hosts": np.array([",".join(s.hosts) for s in scopes], dtype=object),
        "usage": np.array([s.usage for s in scopes], dtype=np.uint64),
        "quota": np.array([s.quota for s in scopes], dtype=np.uint64),
        "percent": np.array([s.percent for s in scopes], dtype=np.float64),
        "threshold": np.array([s.threshold for s in scopes], dtype=np.float64),
        "tier": np.array([s.tier for s in scopes], dtype=np.uint8),
        "action": np.array([s.action for s in scopes], dtype=object),
        "period_end": np.array([s.period_end or 0 for s in scopes], dtype=np.uint32),
    }
    for name, values in extra.items():
        cols[name] = np.array(values, dtype=object)
    return {c.name: cols[c.name] for c in table.columns}
