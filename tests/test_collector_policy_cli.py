"""``policy status`` and ``policy simulate`` on a real chdb store, and the pure replay.

The CLI runs in this process (chdb opens one data directory per process: the store the
test wrote), through click's runner, as a user would call it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_collector_policy_usage import batch, ingest, rec

from netwarden.cli.main import cli, main
from netwarden.collector.policy.evaluate import POOLED
from netwarden.collector.policy.simulate import replay
from netwarden.collector.policy.usage import UsageRollup
from netwarden.collector.store.schema import ENFORCEMENT_APPLIED
from netwarden.policy import load_policies
from netwarden.policy.model import Period, Policy, PolicySet, Selector, Tier

DAY = 86_400
POLICY_YAML = """
policies:
  quota-out:
    who: {hosts: [web-*]}
    what: {direction: out}
    quota: 10 kB
    period: daily
    tiers:
      - {at: 50 %, action: alert}
      - {at: 100 %, action: block}
  shared:
    who: fleet
    quota: 100 kB
    scope: pooled
    period: {kind: rolling, window: 1h}
"""


def write_policy(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(POLICY_YAML, encoding="utf-8")
    return path


def test_status_and_simulate_on_a_store(store_factory: Any, chdb_path: Path,
                                        tmp_path: Path) -> None:
    store = store_factory("chdb")
    now = int(datetime.now(UTC).timestamp())
    today = now - now % DAY
    minute = max(today, now - 3600) // 60 * 60  # today, within the last hour
    yesterday = today - DAY + 3600
    policy_file = write_policy(tmp_path)
    # the policies were not loaded when this traffic was stored: no policy_usage rows
    ingest(store, UsageRollup(store, ()), {
        "web-1": [batch("web-1", [rec(yesterday, 2, 4000), rec(yesterday + 60, 2, 7000),
                                  rec(minute, 2, 6000), rec(minute, 1, 50_000)])],
        "db-1": [batch("db-1", [rec(minute, 2, 9000)])]})
    base = ["--store", str(chdb_path), "--database", store.database]
    runner = CliRunner()

    r = runner.invoke(cli, ["policy", "status", "--policies", str(policy_file), *base,
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["usage_from"] == {"quota-out": "flows", "shared": "flows"}
    rows = {(row["policy"], row["scope"]): row for row in data["rows"]}
    assert set(rows) == {("quota-out", "web-1"), ("shared", POOLED)}
    web = rows["quota-out", "web-1"]
    assert (web["usage"], web["quota"], web["percent"]) == (6000, 10_000, 60.0)
    assert web["tier"] == "50% alert" and web["hosts"] == ["web-1"]
    assert web["period_end"] == datetime.fromtimestamp(today + DAY, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    shared = rows["shared", POOLED]
    assert shared["hosts"] == ["db-1", "web-1"] and shared["usage"] == 65_000
    assert shared["period_end"] == "rolling" and shared["tier"] == "-"

    table = runner.invoke(cli, ["policy", "status", "--policies", str(policy_file), *base])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["POLICY", "SCOPE", "USAGE"]
    assert any(line.startswith("quota-out") and "60.0%" in line and "web-1" in line
               for line in lines)

    since = datetime.fromtimestamp(today - 2 * DAY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = runner.invoke(cli, ["policy", "simulate", str(policy_file), "--since", since,
                            "--policy", "quota-out", *base, "--format", "json"])
    assert r.exit_code == 0, r.output
    crossings = [(c["at"], c["scope"], c["tier"], c["action"], c["usage"])
                 for c in json.loads(r.stdout)["crossings"]]
    assert crossings == [
        (yesterday + 60, "web-1", 1, "alert", 11_000),  # both tiers in the same minute
        (yesterday + 60, "web-1", 2, "block", 11_000),
        (minute, "web-1", 1, "alert", 6000),  # a new day starts at zero
    ]
    r = runner.invoke(cli, ["policy", "simulate", str(policy_file), "--since", "30d", *base])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == "3 tier crossings for 2 policies; nothing was enforced"
    # simulate wrote nothing
    assert store.query("SELECT count() FROM policy_usage")[0][0] == 0
    assert store.query("SELECT count() FROM policy_decisions")[0][0] == 0


def test_status_without_policy_files_is_one_clear_line(
        chdb_path: Path, store_factory: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = store_factory("chdb")
    code = main(["policy", "status", "--store", str(chdb_path), "--database", store.database])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no policy files: give --policies FILE" in err[0]


def test_replay_rolling_window_reports_a_tier_reached_again() -> None:
    policy = Policy(name="r", who=Selector(fleet=True), quota=100,
                    period=Period(kind="rolling", time_zone=None, reset_day=None,
                                  window=timedelta(minutes=10)),
                    tiers=(Tier(100.0, "block"),))
    t0 = 1_700_000_040 // 60 * 60
    usage = {"h": {t0: 60, t0 + 60: 40,        # 100 at t0+60
                   t0 + 300: 50,                # still 150 in the window
                   t0 + 1200: 100}}             # the window emptied: reached again
    crossings = replay(policy, PolicySet(policies=(policy,)), usage, since_s=t0,
                       until_s=t0 + 3600)
    assert [(c.at, c.usage) for c in crossings] == [(t0 + 60, 100), (t0 + 1200, 100)]
    # minutes before since count toward the window but are not reported
    late = replay(policy, PolicySet(policies=(policy,)), usage, since_s=t0 + 120,
                  until_s=t0 + 3600)
    assert [c.at for c in late] == [t0 + 1200]


def test_policy_file_loads() -> None:  # the YAML above is a valid policy file
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        assert [p.name for p in load_policies([write_policy(Path(d))]).policies] == \
            ["quota-out", "shared"]


def applied_rows(rows: list[tuple[int, str, int, str, str, int, str, str, str]]
                 ) -> dict[str, np.ndarray]:
    """enforcement_applied columns: (ts, host, version, ruleset, mode, rules, refused,
    drift, error) per row."""
    names = [c.name for c in ENFORCEMENT_APPLIED.columns]
    return {c.name: np.array([r[names.index(c.name)] for r in rows],
                             dtype=object if c.dtype is object else c.dtype)
            for c in ENFORCEMENT_APPLIED.columns}


def test_status_on_a_store_shows_what_each_sensor_last_applied(
        store_factory: Any, chdb_path: Path, tmp_path: Path) -> None:
    store = store_factory("chdb")
    now = int(datetime.now(UTC).timestamp())
    plan = load_policies([write_policy(tmp_path)])
    ingest(store, UsageRollup(store, plan.policies),
           {"web-1": [batch("web-1", [rec(now - 120, 2, 6000)])]})
    store.insert(ENFORCEMENT_APPLIED, applied_rows([
        (now - 300, "web-1", 1, "a" * 64, "enforce", 2, "", "", ""),
        (now - 60, "web-1", 2, "b" * 64, "enforce", 3, "rule x: bad port", "", ""),
        (now - 200, "db-1", 1, "c" * 64, "dry-run", 0, "", "chain gone\nrule y", "boom"),
        (now - 900, "db-1", 4, "d" * 64, "enforce", 1, "", "", ""),  # older: not shown
    ]))
    base = ["--store", str(chdb_path), "--database", store.database,
            "--policies", str(tmp_path / "plan.yaml")]
    runner = CliRunner()
    r = runner.invoke(cli, ["policy", "status", *base, "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["usage_from"] == {"quota-out": "policy_usage", "shared": "policy_usage"}
    assert "enforcement" not in data  # no desired state without a collector
    iso = {t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
           for t in (now - 60, now - 200)}
    assert data["applied"] == [
        {"host": "db-1", "applied_version": 1, "applied_ruleset": "c" * 64,
         "mode": "dry-run", "rules_in_force": 0, "refused": [],
         "drift": ["chain gone", "rule y"], "error": "boom", "reported_at": iso[now - 200]},
        {"host": "web-1", "applied_version": 2, "applied_ruleset": "b" * 64,
         "mode": "enforce", "rules_in_force": 3, "refused": ["rule x: bad port"],
         "drift": [], "error": "", "reported_at": iso[now - 60]}]
    table = runner.invoke(cli, ["policy", "status", *base])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("HOST")))
    assert lines[head].split() == ["HOST", "APPLIED", "RULESET", "MODE", "RULES", "STATE",
                                   "REPORTED"]
    assert lines[head + 1].split()[:5] == ["db-1", "v1", "c" * 12, "dry-run", "0"]
    assert "error: boom, 2 drifts" in lines[head + 1]
    assert lines[head + 2].split()[:5] == ["web-1", "v2", "b" * 12, "enforce", "3"]
    assert "ok, 1 rule refused" in lines[head + 2] and iso[now - 60] in lines[head + 2]
    # a store with no enforcement rows shows no host table
    store.execute("TRUNCATE TABLE enforcement_applied")
    r = runner.invoke(cli, ["policy", "status", *base])
    assert r.exit_code == 0 and "APPLIED" not in r.output
    assert r.output.splitlines()[-1].startswith("2 scopes at ")
