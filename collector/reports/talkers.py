"""Top talkers: the addresses with the most bytes (the truth files' ``top_ips``).

A frame credits its length once to each address of its outermost IP header: the
``layer = 0`` IPv4/IPv6 records (one per frame), source and destination, once when they
are equal. Tunnelled inner headers (layer >= 1) and non-IP frames credit nothing.
"""

from __future__ import annotations

from .ranking import TopParams, ranking, ranking_sql
from .result import QueryStore, ReportResult
from .selection import text_address


def talkers_sql(where: str, top: int | None) -> str:
    """Bytes and frames per address of the outermost IP header."""
    source = (
        "SELECT ip_version, arrayJoin(if(src_ip = dst_ip, [src_ip], [src_ip, dst_ip])) AS addr, "
        f"packets, bytes FROM flows WHERE ({where}) AND layer = 0 AND ip_version IN (4, 6)"
    )
    return ranking_sql(text_address("addr"), source, top)


def talkers(store: QueryStore, params: TopParams) -> ReportResult:
    """The ``params.top`` addresses with the most bytes."""
    return ranking(store, "talkers", talkers_sql(params.filters.where(), params.top),
                   params)
