"""Conversations as a scatter: bytes A→B (x) against bytes B→A (y), one marker per
conversation, its area proportional to the total bytes. Log axes (a direction with no
bytes sits at 1 B; the hover text has the exact counts)."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from ..output import human_bytes
from ..result import ReportResult
from .style import empty, layout

MAX_MARKER_PX = 48


def _end(row: dict[str, Any], side: str) -> str:
    port = row.get(f"port_{side}")
    return f"{row[side]}:{port}" if port is not None else str(row[side])


def conversations_figure(result: ReportResult) -> go.Figure:
    kind = str(result.meta.get("kind") or "ip")
    title = f"{kind.upper() if kind != 'ipv6' else 'IPv6'} conversations: bytes each way"
    rows = result.rows
    if not rows:
        return empty(title)
    ab = [int(r["bytes_a_to_b"]) for r in rows]
    ba = [int(r["bytes_b_to_a"]) for r in rows]
    total = [int(r["bytes"]) for r in rows]
    biggest = max(total) or 1
    text = [f"{_end(r, 'a')} → {_end(r, 'b')}: {human_bytes(x)}<br>"
            f"{_end(r, 'b')} → {_end(r, 'a')}: {human_bytes(y)}<br>"
            f"total {human_bytes(t)}, {int(r['frames'])} frames"
            for r, x, y, t in zip(rows, ab, ba, total, strict=True)]
    fig = go.Figure(go.Scatter(
        x=[max(1, v) for v in ab], y=[max(1, v) for v in ba], mode="markers", text=text,
        hovertemplate="%{text}<extra></extra>",
        marker={"size": [max(6.0, MAX_MARKER_PX * math.sqrt(t / biggest)) for t in total],
                "color": total, "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": {"text": "bytes"}}, "opacity": 0.75,
                "line": {"width": 1, "color": "#333"}}))
    fig.update_xaxes(type="log", title_text="bytes A → B")
    fig.update_yaxes(type="log", title_text="bytes B → A")
    return layout(fig, title, height=540)
