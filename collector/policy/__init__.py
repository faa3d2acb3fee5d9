"""Fleet-wide data-plan policy evaluation at the collector.

* :mod:`.match`: which flow records a policy counts (vectorised over record columns) and
  which hosts it selects.
* :mod:`.usage`: the ``policy_usage`` rollup (bytes per policy, host and minute, computed
  at ingest), reading it back, and the slow path over raw ``flows`` (backfill, simulate).
* :mod:`.evaluate`: the pure evaluation: per policy and scope the period, usage, tier,
  and the desired enforcement state per host (canonical, versioned).
* :mod:`.engine`: the scheduled evaluation, the audit (``policy_decisions``) and alerts
  (``policy_alerts``, log line, webhook via :mod:`.webhook`).
* :mod:`.simulate`: replaying stored history through a policy, minute by minute.
* :mod:`.status`: the rows of ``netwarden policy status``.
"""
