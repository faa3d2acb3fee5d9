"""Frames and bytes per calendar step (UTC): second, minute, hour, day or N seconds.

Every frame has one ``layer = 0`` record, so those records count each frame once. A record
falls in the step holding its interval start; steps are aligned to the epoch
(``intDiv(start_ns, step) * step``: whole minutes, hours and UTC days), which runs the same
on ClickHouse 18.16 and modern servers. A step shorter than a stored interval would split
what the store keeps whole, so it is a :class:`~netwarden.errors.UsageError`. Only
non-empty steps are rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from netwarden.errors import UsageError

from .filters import Filters, iso_from_ns
from .result import QueryStore, ReportResult
from .selection import NS_PER_S, stored_intervals

COLUMNS: Final = ["time", "frames", "bytes"]
STEPS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_step(text: str) -> int:
    """Seconds of a step given as ``second|minute|hour|day`` or a positive integer."""
    value = text.strip().lower()
    if value in STEPS:
        return STEPS[value]
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"step must be one of {', '.join(STEPS)} or a positive number of "
                     f"seconds, got {text!r}")


@dataclasses.dataclass(frozen=True)
class TimelineParams:
    """``step_s``: step length in seconds."""

    filters: Filters = dataclasses.field(default_factory=Filters)
    step_s: int = 60

    def __post_init__(self) -> None:
        if self.step_s < 1:
            raise ValueError(f"step must be at least 1 second, got {self.step_s}")


def timeline_sql(where: str, step_s: int) -> str:
    """Frames and bytes of ``layer = 0`` records per epoch-aligned step (start in s)."""
    width_ns = int(step_s) * NS_PER_S
    return (
        f"SELECT intDiv(start_ns, {width_ns}) * {int(step_s)} AS step_start, "
        "sum(packets) AS frame_count, sum(bytes) AS byte_count "
        f"FROM flows WHERE ({where}) AND layer = 0 "
        "GROUP BY step_start HAVING frame_count > 0 ORDER BY step_start"
    )


def timeline(store: QueryStore, params: TimelineParams) -> ReportResult:
    """Rows ``{time, epoch_s, frames, bytes}`` per non-empty step.

    Raises :class:`UsageError` (exit 2) when the step is shorter than a stored interval.
    """
    stored = stored_intervals(store, params.filters)
    if stored and params.step_s < max(stored):
        raise UsageError(f"--step {params.step_s} s is shorter than the stored interval "
                         f"({', '.join(f'{s} s' for s in stored)})")
    rows: list[dict[str, Any]] = [
        {"time": iso_from_ns(int(start) * NS_PER_S), "epoch_s": int(start),
         "frames": int(frames), "bytes": int(nbytes)}
        for start, frames, nbytes in store.query(timeline_sql(params.filters.where(),
                                                              params.step_s))
    ]
    return ReportResult(report="timeline", filters=params.filters.describe(), rows=rows,
                        columns=list(COLUMNS), meta={"step": params.step_s})
