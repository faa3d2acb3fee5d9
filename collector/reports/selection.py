"""Facts about the selected intervals that several reports need (origin, interval lengths)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .filters import Filters, iso_from_ns
from .result import QueryStore

NS_PER_S = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class Selection:
    """The flow records a filter selects, summarised.

    ``origin_ns`` is the earliest interval start (for an offline capture: the time of its
    first frame, since interval 0 is aligned to it); relative times count from it.
    ``records`` is 0 when nothing matches (then ``origin_ns`` is 0).
    """

    records: int
    origin_ns: int

    @property
    def empty(self) -> bool:
        return self.records == 0

    def describe(self) -> dict[str, Any]:
        """``origin`` (ISO) and ``origin_ns`` for the JSON object; ``None`` when empty."""
        if self.empty:
            return {"origin": None, "origin_ns": None}
        return {"origin": iso_from_ns(self.origin_ns), "origin_ns": self.origin_ns}


def select(store: QueryStore, filters: Filters) -> Selection:
    """Count the selected flow records and find their origin."""
    where = filters.where()
    rows = store.query(
        "SELECT count() AS record_count, min(start_ns) AS origin_ns "
        f"FROM flows WHERE {where}"
    )
    if not rows or not int(rows[0][0]):
        return Selection(0, 0)
    return Selection(int(rows[0][0]), int(rows[0][1]))


def stored_intervals(store: QueryStore, filters: Filters) -> list[int]:
    """The distinct interval lengths (seconds) of the selected records, ascending."""
    rows = store.query(
        "SELECT DISTINCT interval_s AS stored_interval FROM flows "
        f"WHERE {filters.where()} ORDER BY stored_interval"
    )
    return [int(r[0]) for r in rows]


def common_interval(intervals: list[int]) -> int:
    """The smallest length every stored interval divides (their least common multiple)."""
    return math.lcm(*intervals) if intervals else 0


def rel_seconds(ns: int) -> float:
    """Nanoseconds as seconds rounded to 9 decimals (how the truth files print times)."""
    return round(ns / 1e9, 9)


def text_address(column: str, version: str = "ip_version") -> str:
    """SQL turning a 16-byte address column into text: a dotted quad when the record is
    IPv4 (``version`` = 4; the address is IPv4-mapped), else IPv6 text."""
    return (f"if({version} = 4, replaceRegexpOne(IPv6NumToString({column}), '^::ffff:', ''), "
            f"IPv6NumToString({column}))")
