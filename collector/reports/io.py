"""Frames and bytes per time bucket, as tshark's ``-z io,stat,N`` counts them.

Every frame has exactly one ``layer = 0`` record (IP or not), so those records count each
frame once. A bucket is ``N`` seconds long and starts ``start`` seconds after the origin
(the earliest selected interval start); records fall in a bucket by their interval start,
so ``N`` must be a multiple of the stored interval length. Only non-empty buckets are rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netwarden.errors import UsageError

from .filters import Filters
from .result import QueryStore, ReportResult
from .selection import (
    NS_PER_S,
    common_interval,
    select,
    stored_intervals,
)

COLUMNS = ["start", "frames", "bytes"]


@dataclasses.dataclass(frozen=True)
class IoParams:
    """``interval_s``: bucket length in seconds (``None``: the stored interval length)."""

    filters: Filters = dataclasses.field(default_factory=Filters)
    interval_s: int | None = None

    def __post_init__(self) -> None:
        if self.interval_s is not None and self.interval_s < 1:
            raise ValueError(f"interval must be at least 1 second, got {self.interval_s}")


def io_sql(where: str, origin_ns: int, interval_s: int) -> str:
    """Frames and bytes of ``layer = 0`` records per bucket, non-empty buckets only."""
    width_ns = int(interval_s) * NS_PER_S
    return (
        f"SELECT intDiv(start_ns - {int(origin_ns)}, {width_ns}) AS bucket, "
        "sum(packets) AS frame_count, sum(bytes) AS byte_count "
        f"FROM flows WHERE ({where}) AND layer = 0 "
        "GROUP BY bucket HAVING frame_count > 0 ORDER BY bucket"
    )


def io(store: QueryStore, params: IoParams) -> ReportResult:
    """The io table of the selected records.

    Raises :class:`UsageError` (exit 2) when ``params.interval_s`` is not a multiple of
    every stored interval length.
    """
    sel = select(store, params.filters)
    interval = params.interval_s
    rows: list[dict[str, Any]] = []
    if not sel.empty:
        stored = stored_intervals(store, params.filters)
        base = common_interval(stored)
        if interval is None:
            interval = base
        elif interval % base:
            raise UsageError(
                f"--interval {interval} is not a multiple of the stored interval "
                f"({', '.join(f'{s} s' for s in stored)}): try {base} or a multiple of it"
            )
        sql = io_sql(params.filters.where(), sel.origin_ns, interval)
        for bucket, frames, nbytes in store.query(sql):
            rows.append({"start": int(bucket) * interval, "frames": int(frames),
                         "bytes": int(nbytes)})
    return ReportResult(
        report="io",
        filters=params.filters.describe(),
        rows=rows,
        columns=list(COLUMNS),
        meta={**sel.describe(), "interval": interval},
    )
