"""What every report returns, and what it needs from a store."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol


class QueryStore(Protocol):
    """The part of :class:`netwarden.collector.store.Store` the reports use."""

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...


@dataclasses.dataclass
class ReportResult:
    """One report's answer.

    ``rows`` are plain JSON-ready dicts (for ``protocols``: the tree, nested through
    ``children``). ``columns`` lists the row fields in display order. ``meta`` holds
    report-level values that go into the JSON object beside ``rows`` (``origin``,
    ``interval``, ``kind``...).
    """

    report: str
    filters: dict[str, Any]
    rows: list[dict[str, Any]]
    columns: list[str]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """``{"report": name, "filters": {...}, **meta, "rows": [...]}``."""
        out: dict[str, Any] = {"report": self.report, "filters": self.filters}
        out.update(self.meta)
        out["rows"] = self.rows
        return out
