"""Shared shape of the top lists (talkers, ports): ``{key, bytes, frames}`` rows."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from .filters import Filters
from .result import QueryStore, ReportResult

DEFAULT_TOP: Final = 10
COLUMNS: Final = ["key", "bytes", "frames"]


@dataclasses.dataclass(frozen=True)
class TopParams:
    """``top``: rows kept (``None``: all)."""

    filters: Filters = dataclasses.field(default_factory=Filters)
    top: int | None = DEFAULT_TOP

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")

    def describe(self) -> dict[str, Any]:
        """The filters as JSON-ready values, with ``top`` (a result's ``filters``)."""
        return {**self.filters.describe(), "top": self.top}


def limit_sql(top: int | None) -> str:
    """`` LIMIT top`` to end a query with (nothing for ``None``: all rows)."""
    return f" LIMIT {int(top)}" if top is not None else ""


def ranking_sql(key_sql: str, source_sql: str, top: int | None) -> str:
    """Group ``source_sql`` rows by ``key_sql`` text; most bytes, then frames, then key."""
    return (
        f"SELECT {key_sql} AS rank_key, sum(bytes) AS byte_count, sum(packets) AS frame_count "
        f"FROM ({source_sql}) GROUP BY rank_key "
        f"ORDER BY byte_count DESC, frame_count DESC, rank_key ASC{limit_sql(top)}"
    )


def ranking(store: QueryStore, name: str, sql: str, params: TopParams) -> ReportResult:
    """Run a :func:`ranking_sql` query and wrap its rows."""
    rows: list[dict[str, Any]] = [
        {"key": str(key), "bytes": int(nbytes), "frames": int(frames)}
        for key, nbytes, frames in store.query(sql)
    ]
    return ReportResult(report=name, filters=params.describe(), rows=rows,
                        columns=list(COLUMNS))
