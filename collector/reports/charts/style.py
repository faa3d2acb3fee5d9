"""What every chart shares: the layout defaults and the empty-data figure."""

from __future__ import annotations

from typing import Any, Final

import plotly.graph_objects as go

from ..output import human_bytes

HEIGHT: Final = 480
COLORS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    """Title, size and margins common to every chart."""
    fig.update_layout(title={"text": title, "x": 0.01}, height=extra.pop("height", HEIGHT),
                      margin={"l": 60, "r": 30, "t": 60, "b": 60}, template="plotly_white",
                      **extra)
    return fig


def empty(title: str, why: str = "no data selected") -> go.Figure:
    """A figure that says there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=why, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 16})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title)


def byte_labels(values: list[int]) -> list[str]:
    """``1.5 kB`` labels for hover text."""
    return [human_bytes(int(v)) for v in values]
