"""A real collector with [policy] files: ingest hook, scheduled evaluation, status RPC."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_collector_policy_usage import Session, batch, rec

from netwarden.cli.main import cli
from netwarden.collector.config import CollectorConfig
from netwarden.collector.server import CollectorServer
from netwarden.collector.store import open_store
from netwarden.errors import ConfigError

POLICY = """
policies:
  cap:
    who: {hosts: [web-*]}
    what: {direction: out}
    quota: 10 kB
    period: daily
    tiers:
      - {at: 100 %, action: block, mode: reject}
"""


def config(chdb_path: Path, database: str, files: list[str]) -> CollectorConfig:
    return CollectorConfig.model_validate({
        "collector": {"listen": "127.0.0.1:0", "stop_timeout_s": 5.0},
        "store": {"target": str(chdb_path), "database": database},
        "policy": {"files": files, "evaluate_every_s": 1.0},
    })


def test_collector_evaluates_on_schedule_and_answers_status(chdb_path: Path,
                                                            tmp_path: Path) -> None:
    (tmp_path / "cap.yaml").write_text(POLICY, encoding="utf-8")
    database = f"nw_pol_{uuid.uuid4().hex[:10]}"
    server = CollectorServer(config(chdb_path, database, [str(tmp_path)]))
    server.start()
    try:
        assert server.policy is not None and server.ingest is not None
        assert server.ingest.on_stored is server.policy.rollup
        now = int(datetime.now(UTC).timestamp())
        session = Session("web-1")
        server.ingest.hello(session, timeout_s=30)
        server.ingest.submit(session, batch("web-1", [rec(now - now % 60, 2, 12_000)]), 1)
        server.ingest.finish(session)
        assert session.closed.wait(30)
        deadline = time.monotonic() + 15
        while not server.policy.desired_for("web-1").rules:
            assert time.monotonic() < deadline, "the schedule never blocked web-1"
            time.sleep(0.1)
        (rule,) = server.policy.desired_for("web-1").rules
        assert (rule.policy, rule.action, rule.mode) == ("cap", "block", "reject")
        assert server.policy.runs >= 1
        r = CliRunner().invoke(cli, ["policy", "status", "--collector", server.address,
                                     "--format", "json"])
        assert r.exit_code == 0, r.output
        (row,) = json.loads(r.stdout)["rows"]
        assert (row["policy"], row["scope"], row["usage"], row["tier"]) == \
            ("cap", "web-1", 12_000, "100% block (reject)")
    finally:
        server.stop()
    store = open_store(str(chdb_path), database=database)
    store.start()
    try:
        assert store.query("SELECT policy, scope, tier, action FROM policy_alerts") == \
            [("cap", "web-1", 1, "block")]
        store.drop_database()
    finally:
        store.stop()


def test_bad_policy_file_stops_the_collector_with_its_line(chdb_path: Path,
                                                           tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  p:\n    who: fleet\n    quota: lots\n", encoding="utf-8")
    server = CollectorServer(config(chdb_path, f"nw_pol_{uuid.uuid4().hex[:10]}", [str(bad)]))
    with pytest.raises(ConfigError, match=r"bad.yaml:4: .*quota"):
        server.start()
    assert server.store is not None and not server.store.started
    store = open_store(str(chdb_path), database=server.config.store.database)
    store.start()
    store.drop_database()
    store.stop()


def test_policy_config_is_strict() -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        CollectorConfig.model_validate({"policy": {"webhook_url": "ftp://x"}})
    with pytest.raises(ValueError, match="evaluate_every"):
        CollectorConfig.model_validate({"policy": {"evaluate_every": 5}})
