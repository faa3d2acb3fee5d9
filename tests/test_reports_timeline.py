"""Frames and bytes per calendar step from stored records (chdb; 18.16 when ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import INTERVAL_S, T0, S, load_store

from netwarden.cli.main import main
from netwarden.collector.reports import Filters
from netwarden.collector.reports.filters import iso_from_ns
from netwarden.collector.reports.timeline import TimelineParams, parse_step, timeline
from netwarden.errors import UsageError


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


# interval index -> (frames, bytes) of the layer-0 records, both hosts (beta is interval 10)
PER_INTERVAL = {0: (12, 3176), 1: (5, 460), 2: (3, 300), 10: (10, 5500)}


def expected(step_s: int) -> list[dict[str, Any]]:
    """Hand totals per interval, summed into epoch-aligned steps of ``step_s``."""
    steps: dict[int, tuple[int, int]] = {}
    for i, (frames, nbytes) in PER_INTERVAL.items():
        start_s = (T0 + i * INTERVAL_S * S) // S // step_s * step_s
        f, b = steps.get(start_s, (0, 0))
        steps[start_s] = (f + frames, b + nbytes)
    return [{"time": iso_from_ns(s * S), "epoch_s": s, "frames": f, "bytes": b}
            for s, (f, b) in sorted(steps.items())]


def test_step_of_the_stored_interval(store: Any) -> None:
    result = timeline(store, TimelineParams(step_s=10))
    base = T0 // S // 10 * 10  # T0 is 0.123 s past a 10 s boundary
    assert result.rows == [
        {"time": iso_from_ns(base * S), "epoch_s": base, "frames": 12, "bytes": 3176},
        {"time": iso_from_ns((base + 10) * S), "epoch_s": base + 10, "frames": 5, "bytes": 460},
        {"time": iso_from_ns((base + 20) * S), "epoch_s": base + 20, "frames": 3, "bytes": 300},
        {"time": iso_from_ns((base + 100) * S), "epoch_s": base + 100, "frames": 10,
         "bytes": 5500},
    ]
    assert result.rows[0]["time"].endswith("0Z")  # whole seconds, UTC
    assert result.meta == {"step": 10}
    assert result.columns == ["time", "frames", "bytes"]


@pytest.mark.parametrize("step", [60, 3600, 86400, 30])
def test_calendar_steps(store: Any, step: int) -> None:
    rows = timeline(store, TimelineParams(step_s=step)).rows
    assert rows == expected(step)
    assert sum(r["frames"] for r in rows) == 30
    assert all(r["epoch_s"] % step == 0 for r in rows)


def test_filters(store: Any) -> None:
    beta = timeline(store, TimelineParams(filters=Filters(hosts=("beta",)), step_s=86400))
    assert [(r["frames"], r["bytes"]) for r in beta.rows] == [(10, 5500)]


def test_step_shorter_than_the_stored_interval_is_a_usage_error(store: Any) -> None:
    with pytest.raises(UsageError, match=r"^--step 5 s is shorter than the stored interval "
                                         r"\(10 s\)$"):
        timeline(store, TimelineParams(step_s=5))


def test_parse_step() -> None:
    assert [parse_step(t) for t in ("second", "minute", "Hour", "day", "90")] == [
        1, 60, 3600, 86400, 90]
    for bad in ("week", "0", "-5", "1.5", ""):
        with pytest.raises(ValueError, match="step must be one of"):
            parse_step(bad)


@pytest.fixture(scope="module")
def chdb_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb")


def test_cli_step_names_and_exit_2(chdb_store: Any, chdb_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "timeline", "--store", str(chdb_path), "--database", chdb_store.database]
    assert main([*base, "--step", "minute", "--format", "csv"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "time,frames,bytes"
    assert lines[1:] == [f"{r['time']},{r['frames']},{r['bytes']}" for r in expected(60)]
    assert main([*base, "--step", "second"]) == 2
    _, err = capsys.readouterr()
    assert "--step 1 s is shorter than the stored interval" in err
    assert main([*base, "--step", "fortnight"]) == 2
