"""Protocol hierarchy as a sunburst (bytes), and ``protocols --flat`` as a treemap.

A node's size is its bytes; plotly's ``remainder`` mode is given each node's own share
(bytes not under a child), never negative, so the rings always add up as tshark's tree
does (a frame counts under every protocol of its path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import plotly.graph_objects as go

from ..output import human_bytes
from ..result import ReportResult
from .style import empty, layout


def _nodes(tree: list[dict[str, Any]], parent: str
           ) -> Iterator[tuple[str, str, str, int, int, int]]:
    """(id, label, parent id, own bytes, bytes, frames) in pre-order."""
    for node in tree:
        path = f"{parent}:{node['protocol']}" if parent else str(node["protocol"])
        children = node.get("children") or []
        below = sum(int(c["bytes"]) for c in children)
        own = max(0, int(node["bytes"]) - below)
        yield path, str(node["protocol"]), parent, own, int(node["bytes"]), int(node["frames"])
        yield from _nodes(children, path)


def protocols_figure(result: ReportResult) -> go.Figure:
    """Sunburst of the protocol tree, sized by bytes."""
    title = "Protocol hierarchy (bytes)"
    nodes = list(_nodes(result.rows, ""))
    if not nodes:
        return empty(title)
    fig = go.Figure(go.Sunburst(
        ids=[n[0] for n in nodes], labels=[n[1] for n in nodes],
        parents=[n[2] for n in nodes], values=[n[3] for n in nodes],
        branchvalues="remainder",
        customdata=[[human_bytes(n[4]), n[5]] for n in nodes],
        hovertemplate="%{id}<br>%{customdata[0]}, %{customdata[1]} frames<extra></extra>",
        insidetextorientation="radial"))
    return layout(fig, title, height=620)


def protocol_counts_figure(result: ReportResult) -> go.Figure:
    """Treemap network → transport of the outermost headers, sized by bytes."""
    title = "Network and transport protocols (bytes)"
    if not result.rows:
        return empty(title)
    ids: list[str] = []
    labels: list[str] = []
    parents: list[str] = []
    values: list[int] = []
    for row in result.rows:
        network = str(row.get("network") or "other")
        if network not in ids:
            ids.append(network)
            labels.append(network)
            parents.append("")
            values.append(0)
        transport = str(row.get("transport") or "")
        nbytes = int(row.get("bytes") or 0)
        if transport:
            ids.append(f"{network}/{transport}")
            labels.append(transport)
            parents.append(network)
            values.append(nbytes)
        else:
            values[ids.index(network)] += nbytes
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values,
                               branchvalues="remainder", textinfo="label+value+percent root"))
    return layout(fig, title, height=520)
