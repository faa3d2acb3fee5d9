"""The enforcer's state file: atomic JSON round trip and one-line errors."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.state import StateError, load_state, save_state


def test_round_trip_is_exact_and_leaves_no_temporary(tmp_path: Path) -> None:
    msg = pb.Enforcement(version=4, ruleset_id="ab", issued_ns=5, rules=[pb.Rule(
        id="r", action=pb.ACTION_THROTTLE, rate_bytes_per_s=2048, expires_ns=2**62,
        match=pb.Match(direction=pb.DIRECTION_IN, ports=[pb.PortRange(low=1, high=2)]))])
    path = tmp_path / "sub" / "state.json"
    coll = ((ipaddress.ip_address("2001:db8::1"), 50051),)
    save_state(path, msg, coll, 99)
    got = load_state(path)
    assert got is not None
    assert (got.enforcement, got.collectors, got.saved_ns) == (msg, coll, 99)
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    assert json.loads(path.read_text())["format"] == 1


def test_missing_and_damaged_files(tmp_path: Path) -> None:
    assert load_state(tmp_path / "none.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(StateError, match=r"bad\.json: line 2: not JSON"):
        load_state(bad)
    bad.write_text('{"format": 1, "enforcement": {"version": "x"}}')
    with pytest.raises(StateError, match=r"bad\.json: .*version") as info:
        load_state(bad)
    assert "\n" not in str(info.value)
    bad.write_text('{"format": 9}')
    with pytest.raises(StateError, match="not a netwarden enforcement state"):
        load_state(bad)
