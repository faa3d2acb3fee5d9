"""Protocol hierarchy: tshark's ``-z io,phs`` tree over the selected intervals.

``proto_chains`` rows count the frames whose dissection chain is exactly ``path``; summed
per path over any set of intervals they rebuild tshark's tree
(:func:`netwarden.sensor.hierarchy.tree_from_chains`). With several hosts the tree sums
them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Final

from netwarden.sensor.hierarchy import tree_from_chains

from .filters import Filters
from .result import QueryStore, ReportResult

COLUMNS: Final = ["protocol", "frames", "bytes"]
FLAT_COLUMNS: Final = ["depth", "path", "protocol", "frames", "bytes"]


@dataclasses.dataclass(frozen=True)
class ProtocolsParams:
    filters: Filters = dataclasses.field(default_factory=Filters)


def protocols_sql(where: str) -> str:
    """Frames, bytes and first-seen order per chain path."""
    return (
        "SELECT path, sum(frames) AS frame_count, sum(bytes) AS byte_count, "
        "min(`order`) AS first_order "
        f"FROM proto_chains WHERE {where} GROUP BY path"
    )


def protocols(store: QueryStore, params: ProtocolsParams) -> ReportResult:
    """The protocol tree ``[{protocol, frames, bytes, children}]`` of the selection."""
    rows = store.query(protocols_sql(params.filters.where()))
    tree = tree_from_chains(
        (str(path), int(frames), int(nbytes), int(order)) for path, frames, nbytes, order in rows
    )
    return ReportResult(report="protocols", filters=params.filters.describe(), rows=tree,
                        columns=list(COLUMNS))


def flatten(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Pre-order rows ``{depth, path, protocol, frames, bytes}`` of a protocol tree."""

    def walk(nodes: list[dict[str, Any]], prefix: str, depth: int) -> Iterator[dict[str, Any]]:
        for node in nodes:
            path = f"{prefix}:{node['protocol']}" if prefix else str(node["protocol"])
            yield {"depth": depth, "path": path, "protocol": node["protocol"],
                   "frames": node["frames"], "bytes": node["bytes"]}
            yield from walk(node["children"], path, depth + 1)

    yield from walk(tree, "", 0)
