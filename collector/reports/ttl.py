"""TTL / hop-limit statistics: overall (the truth files' ``ttl_ipv4``/``hlim_ipv6``) and per
source address.

Each frame contributes the TTL of its outermost IPv4 header and the hop limit of its
outermost IPv6 header (records with the ``TAP_FIRST_V4``/``TAP_FIRST_V6`` bits): what
tshark's first ``ip.ttl``/``ipv6.hlim`` of the frame is. Records carry min, max, sum and
sum of squares, so the statistics are exact for any time range.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netwarden.sensor.records import TAP_FIRST_V4, TAP_FIRST_V6

from .filters import Filters
from .result import QueryStore, ReportResult
from .selection import text_address
from .stats import summary

COLUMNS = ["key", "version", "count", "min", "max", "mean", "variance"]


@dataclasses.dataclass(frozen=True)
class TtlParams:
    """``top``: per-address rows kept, most frames first (``None``: all)."""

    filters: Filters = dataclasses.field(default_factory=Filters)
    top: int | None = 10

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")


def _first(version: int) -> str:
    bit = TAP_FIRST_V4 if version == 4 else TAP_FIRST_V6
    return f"ip_version = {version} AND bitAnd(tap, {bit}) != 0"


def ttl(store: QueryStore, params: TtlParams) -> ReportResult:
    where = params.filters.where()
    meta: dict[str, Any] = {}
    for version, name in ((4, "ttl_ipv4"), (6, "hlim_ipv6")):
        rows = store.query(
            "SELECT sum(packets) AS frame_count, min(ttl_min) AS ttl_lo, max(ttl_max) AS ttl_hi, "
            "sum(ttl_sum) AS ttl_total, sum(ttl_sq) AS ttl_squares "
            f"FROM flows WHERE ({where}) AND {_first(version)}")
        c, lo, hi, s, q = rows[0] if rows else (0, None, None, 0, 0)
        n = int(c or 0)
        meta[name] = summary(n, int(lo) if n else None, int(hi) if n else None,
                             int(s or 0), int(q or 0))
    limit = f" LIMIT {int(params.top)}" if params.top is not None else ""
    per = store.query(
        f"SELECT {text_address('src_ip')} AS addr, ip_version, sum(packets) AS frame_count, "
        "min(ttl_min) AS ttl_lo, max(ttl_max) AS ttl_hi, sum(ttl_sum) AS ttl_total, "
        "sum(ttl_sq) AS ttl_squares FROM flows "
        f"WHERE ({where}) AND (({_first(4)}) OR ({_first(6)})) "
        f"GROUP BY addr, ip_version ORDER BY frame_count DESC, addr ASC{limit}")
    rows_out = []
    for addr, version, c, lo, hi, s, q in per:
        rows_out.append({"key": str(addr), "version": int(version),
                         **summary(int(c), int(lo), int(hi), int(s), int(q))})
    filters = params.filters.describe()
    filters["top"] = params.top
    return ReportResult(report="ttl", filters=filters, rows=rows_out, columns=COLUMNS,
                        meta=meta)
