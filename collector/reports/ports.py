"""Top ports: ``tcp/N`` / ``udp/N`` keys with the most bytes (the truth files' ``top_ports``).

A frame credits its length once to the source and once to the destination port of its
outermost TCP/UDP header: the record with the ``TAP_OUTER_L4`` bit (at most one per frame,
at whatever layer that header is). Equal ports are credited once. Frames without a
dissected TCP/UDP header (non-final fragments, non-IP) credit no port.
"""

from __future__ import annotations

from netwarden.sensor.records import TAP_OUTER_L4

from .ranking import TopParams, ranking, ranking_sql
from .result import QueryStore, ReportResult


def ports_sql(where: str, top: int | None) -> str:
    """Bytes and frames per ``proto/port`` of the outermost TCP/UDP header."""
    source = (
        "SELECT ip_proto, arrayJoin(if(src_port = dst_port, [src_port], [src_port, dst_port])) "
        f"AS port_number, packets, bytes FROM flows WHERE ({where}) "
        f"AND bitAnd(tap, {TAP_OUTER_L4}) != 0 AND ip_proto IN (6, 17)"
    )
    key = "concat(if(ip_proto = 6, 'tcp/', 'udp/'), toString(port_number))"
    return ranking_sql(key, source, top)


def ports(store: QueryStore, params: TopParams) -> ReportResult:
    """The ``params.top`` ports with the most bytes."""
    return ranking(store, "ports", ports_sql(params.filters.where(), params.top),
                   params)
