"""Traffic over time: ``timeline`` (calendar steps, an area) and ``io`` (bars per interval).

Bytes on the left axis, frames on the right one.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..result import ReportResult
from .style import byte_labels, empty, layout


def _two_axes(title: str) -> Any:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.update_yaxes(title_text="bytes", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="frames", secondary_y=True, rangemode="tozero",
                     showgrid=False)
    return fig


def timeline_figure(result: ReportResult) -> go.Figure:
    """Bytes (area) and frames (line) per calendar step (UTC dates on the x axis)."""
    step = result.meta.get("step")
    title = f"Traffic per {step} s step (UTC)" if step else "Traffic over time (UTC)"
    rows = result.rows
    if not rows:
        return empty(title)
    times = [r["time"] for r in rows]
    nbytes = [int(r["bytes"]) for r in rows]
    fig = _two_axes(title)
    mode = "lines+markers" if len(rows) < 60 else "lines"
    fig.add_trace(go.Scatter(x=times, y=nbytes, name="bytes", mode=mode, fill="tozeroy",
                             line={"shape": "hv"}, text=byte_labels(nbytes),
                             hovertemplate="%{x}<br>%{text}<extra>bytes</extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=times, y=[int(r["frames"]) for r in rows], name="frames",
                             mode=mode, line={"shape": "hv", "dash": "dot"}),
                  secondary_y=True)
    fig.update_xaxes(title_text="time (UTC)")
    return layout(fig, title, hovermode="x unified")


def io_figure(result: ReportResult) -> go.Figure:
    """Bytes per interval (bars spanning the interval) and frames (line)."""
    interval = result.meta.get("interval")
    origin = result.meta.get("origin")
    title = f"Frames and bytes per {interval} s" if interval else "Frames and bytes"
    rows = result.rows
    if not rows or not interval:
        return empty(title)
    starts = [int(r["start"]) for r in rows]
    nbytes = [int(r["bytes"]) for r in rows]
    fig = _two_axes(title)
    fig.add_trace(go.Bar(x=starts, y=nbytes, width=[interval] * len(rows), offset=0,
                         name="bytes", text=byte_labels(nbytes), textposition="none",
                         hovertemplate="%{x} s<br>%{text}<extra>bytes</extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=[s + interval / 2 for s in starts],
                             y=[int(r["frames"]) for r in rows], name="frames",
                             mode="lines+markers"),
                  secondary_y=True)
    fig.update_xaxes(title_text=f"seconds after {origin}" if origin else "seconds")
    return layout(fig, title, bargap=0.05)
