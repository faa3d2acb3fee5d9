"""Top-N bars: one horizontal bar per ranked row, most bytes on top.

A ranked report gets its chart from one :class:`TopBar` entry in
:data:`netwarden.collector.reports.charts.CHARTS`: a title and how to name a row
(:func:`first_of` the fields that hold the name, or :func:`fields` joined). ``stack``
names a row field holding ``{part: bytes}`` (transport's ``protocols``) to split each bar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from ..result import ReportResult
from .style import COLORS, byte_labels, empty, layout

Label = Callable[[dict[str, Any]], str]


def first_of(*names: str) -> Label:
    """The first of ``names`` the row has with a non-empty value."""

    def label(row: dict[str, Any]) -> str:
        for name in names:
            value = row.get(name)
            if value not in (None, ""):
                return str(value)
        return "(none)"

    return label


def fields(*names: str, sep: str = " ") -> Label:
    """The row's ``names`` values joined with ``sep``."""
    return lambda row: sep.join(str(row.get(n, "")) for n in names)


@dataclasses.dataclass(frozen=True)
class TopBar:
    title: str
    label: Label
    value: str = "bytes"
    stack: str | None = None

    def __call__(self, result: ReportResult) -> go.Figure:
        rows = result.rows
        if not rows:
            return empty(self.title)
        labels = [self.label(r) for r in rows][::-1]  # plotly draws the first at the bottom
        values = [int(r.get(self.value) or 0) for r in rows][::-1]
        fig = go.Figure()
        parts = self._parts(rows)
        if parts:
            for i, part in enumerate(parts):
                ys = [int((r.get(self.stack or "") or {}).get(part, 0)) for r in rows][::-1]
                fig.add_trace(go.Bar(y=labels, x=ys, name=part, orientation="h",
                                     marker_color=COLORS[i % len(COLORS)],
                                     text=byte_labels(ys), textposition="none",
                                     hovertemplate="%{y}<br>%{text}<extra>" + part +
                                                   "</extra>"))
            fig.update_layout(barmode="stack")
        else:
            fig.add_trace(go.Bar(y=labels, x=values, name=self.value, orientation="h",
                                 text=byte_labels(values), textposition="auto",
                                 hovertemplate="%{y}<br>%{text}<extra></extra>"))
        fig.update_xaxes(title_text=self.value)
        fig.update_yaxes(type="category", automargin=True)
        return layout(fig, self.title, height=max(320, 120 + 28 * len(rows)),
                      showlegend=bool(parts))

    def _parts(self, rows: list[dict[str, Any]]) -> list[str]:
        """Stack parts, most bytes overall first."""
        if self.stack is None:
            return []
        totals: dict[str, int] = {}
        for row in rows:
            for part, nbytes in (row.get(self.stack) or {}).items():
                totals[str(part)] = totals.get(str(part), 0) + int(nbytes)
        return sorted(totals, key=lambda p: (-totals[p], p))
