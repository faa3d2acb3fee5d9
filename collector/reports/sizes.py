"""Packet-size distribution: exact statistics, tshark's ``plen`` histogram, percentiles and
box-plot figures (the truth files' ``frame_len``).

The store keeps an exact frame-length histogram per interval and direction
(``pkt_sizes``), so every figure here is exact for any time range: count, min, max, mean
and population variance from integer sums; percentiles by the nearest-rank method (the
smallest length with at least p % of the frames at or below it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .filters import Filters
from .result import QueryStore, ReportResult
from .stats import summary

# tshark's -z plen,tree buckets
BUCKETS = [(0, 19), (20, 39), (40, 79), (80, 159), (160, 319), (320, 639), (640, 1279),
           (1280, 2559), (2560, 5119), (5120, None)]
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
COLUMNS = ["bucket", "count"]


@dataclasses.dataclass(frozen=True)
class SizesParams:
    filters: Filters = dataclasses.field(default_factory=Filters)


def bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi}" if hi is not None else f"{lo} and greater"


def _rank(lengths: list[int], counts: list[int], total: int, percent: int) -> int:
    """Nearest rank: the smallest length whose cumulative count reaches percent % of
    ``total`` (integer arithmetic, so exact)."""
    need = max(1, -(-percent * total // 100))
    run = 0
    for length, c in zip(lengths, counts, strict=True):
        run += c
        if run >= need:
            return length
    return lengths[-1]


def sizes(store: QueryStore, params: SizesParams) -> ReportResult:
    where = params.filters.where()
    hist = store.query(
        "SELECT frame_len, sum(packets) AS frame_count FROM pkt_sizes "
        f"WHERE {where} GROUP BY frame_len ORDER BY frame_len")
    lengths = [int(r[0]) for r in hist]
    counts = [int(r[1]) for r in hist]
    n = sum(counts)
    total = sum(length * c for length, c in zip(lengths, counts, strict=True))
    squares = sum(length * length * c for length, c in zip(lengths, counts, strict=True))
    stats = summary(n, lengths[0] if n else None, lengths[-1] if n else None, total, squares)
    rows = []
    for lo, hi in BUCKETS:
        c = sum(k for length, k in zip(lengths, counts, strict=True)
                if length >= lo and (hi is None or length <= hi))
        rows.append({"bucket": bucket_name(lo, hi), "count": c})
    meta: dict[str, Any] = {"frame_len": {**stats, "histogram": rows}}
    if n:
        pct = {f"p{p}": _rank(lengths, counts, n, p) for p in PERCENTILES}
        q1, med, q3 = pct["p25"], pct["p50"], pct["p75"]
        iqr = q3 - q1
        inside = [length for length in lengths if q1 - 1.5 * iqr <= length <= q3 + 1.5 * iqr]
        meta["percentiles"] = pct
        meta["box"] = {"min": lengths[0], "whisker_low": min(inside), "q1": q1, "median": med,
                       "q3": q3, "whisker_high": max(inside), "max": lengths[-1],
                       "outliers": sum(c for length, c in zip(lengths, counts, strict=True)
                                       if length not in inside)}
        meta["lengths"] = [{"frame_len": length, "count": c}
                           for length, c in zip(lengths, counts, strict=True)]
    return ReportResult(report="sizes", filters=params.filters.describe(), rows=rows,
                        columns=COLUMNS, meta=meta)
