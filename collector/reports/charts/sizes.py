"""Packet sizes: tshark's plen histogram, the exact PDF and CDF, and a box plot.

The PDF/CDF come from ``meta["lengths"]`` (every frame length with its count); the box
from ``meta["box"]`` (quartiles and 1.5 IQR whiskers: the report's figures, not
recomputed), with the minimum and maximum as points beyond the whiskers.
"""

from __future__ import annotations

from itertools import accumulate

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..result import ReportResult
from .style import COLORS, empty, layout

TITLE = "Frame lengths"


def sizes_figure(result: ReportResult) -> go.Figure:
    """Three panels: histogram, PDF + CDF, box plot."""
    lengths = result.meta.get("lengths") or []
    box = result.meta.get("box")
    if not lengths or not box:
        return empty(TITLE)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.38, 0.42, 0.2],
                        specs=[[{}, {"secondary_y": True}, {}]],
                        subplot_titles=("Histogram (tshark plen buckets)",
                                        "PDF and CDF per frame length", "Box plot"))
    fig.add_trace(go.Bar(x=[r["bucket"] for r in result.rows],
                         y=[int(r["count"]) for r in result.rows], name="frames",
                         hovertemplate="%{x} B: %{y} frames<extra></extra>"), row=1, col=1)
    xs = [int(r["frame_len"]) for r in lengths]
    counts = [int(r["count"]) for r in lengths]
    n = sum(counts)
    width = max(1.0, (xs[-1] - xs[0]) / 150)  # one-byte bars would vanish on a wide axis
    fig.add_trace(go.Bar(x=xs, y=[c / n for c in counts], name="PDF", width=width,
                         marker_color=COLORS[0],
                         hovertemplate="%{x} B: %{y:.2%}<extra>PDF</extra>"),
                  row=1, col=2, secondary_y=False)
    fig.add_trace(go.Scatter(x=xs, y=[c / n for c in accumulate(counts)], name="CDF",
                             mode="lines", line={"shape": "hv", "color": COLORS[1]},
                             hovertemplate="≤ %{x} B: %{y:.2%}<extra>CDF</extra>"),
                  row=1, col=2, secondary_y=True)
    fig.add_trace(go.Box(x=["frames"], q1=[box["q1"]], median=[box["median"]],
                         q3=[box["q3"]], lowerfence=[box["whisker_low"]],
                         upperfence=[box["whisker_high"]], name="box", boxpoints=False),
                  row=1, col=3)
    fig.add_trace(go.Scatter(x=["frames", "frames"], y=[box["min"], box["max"]],
                             mode="markers", name="min / max",
                             marker={"symbol": "line-ew-open", "size": 14}),
                  row=1, col=3)
    fig.update_xaxes(title_text="frame length (B)", row=1, col=1, type="category")
    fig.update_xaxes(title_text="frame length (B)", row=1, col=2)
    fig.update_yaxes(title_text="frames", row=1, col=1)
    fig.update_yaxes(title_text="share of frames", tickformat=".0%", row=1, col=2,
                     secondary_y=False)
    fig.update_yaxes(title_text="cumulative", tickformat=".0%", range=[0, 1.02],
                     tickvals=[0, 0.25, 0.5, 0.75, 1], row=1,
                     col=2, secondary_y=True, showgrid=False)
    fig.update_yaxes(title_text="frame length (B)", row=1, col=3)
    return layout(fig, f"{TITLE}: {n} frames", height=460, width=1350, showlegend=False)
