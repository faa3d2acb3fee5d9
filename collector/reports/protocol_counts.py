"""Flat protocol counts: frames, bytes and unique sources per network/transport protocol.

Read from the ``layer = 0`` flow records (each frame once): ``network`` is ``ipv4``/``ipv6``
for IP records, else the ethertype's name (``arp``, ``0x88b5``...); ``transport`` is the
IP protocol name (``tcp``, ``udp``, ``icmp``...; empty for non-IP). ``sources`` is the
number of distinct source addresses of the row's records (0 for non-IP). Most frames first.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from .filters import Filters
from .names import ip_proto_name, network_name
from .result import QueryStore, ReportResult

COLUMNS: Final = ["network", "transport", "frames", "bytes", "sources"]


@dataclasses.dataclass(frozen=True)
class ProtocolCountsParams:
    filters: Filters = dataclasses.field(default_factory=Filters)


def protocol_counts_sql(where: str) -> str:
    """Frames, bytes and distinct sources per (ip_version, ip_proto, ethertype)."""
    return (
        "SELECT ip_version, if(ip_version IN (4, 6), ip_proto, 0) AS proto, "
        "if(ip_version IN (4, 6), 0, ethertype) AS ether, sum(packets) AS frame_count, "
        "sum(bytes) AS byte_count, uniqExactIf(src_ip, ip_version IN (4, 6)) AS source_count "
        f"FROM flows WHERE ({where}) AND layer = 0 GROUP BY ip_version, proto, ether"
    )


def protocol_counts(store: QueryStore, params: ProtocolCountsParams) -> ReportResult:
    """Rows ``{network, transport, frames, bytes, sources}``, most frames first."""
    rows: list[dict[str, Any]] = []
    for version, proto, ether, frames, nbytes, sources in store.query(
            protocol_counts_sql(params.filters.where())):
        ip = int(version) in (4, 6)
        rows.append({"network": network_name(int(version), int(ether)),
                     "transport": ip_proto_name(int(proto)) if ip else "",
                     "frames": int(frames), "bytes": int(nbytes), "sources": int(sources)})
    rows.sort(key=lambda r: (-r["frames"], -r["bytes"], r["network"], r["transport"]))
    return ReportResult(report="protocol_counts", filters=params.filters.describe(), rows=rows,
                        columns=list(COLUMNS))
