"""Accumulated usage: bytes and frames per IP pair, per sensor host, and in total.

Pairs are unordered pairs of the addresses of a frame's outermost IP header (the
``layer = 0`` IPv4/IPv6 records, one per frame): ``a`` is the smaller address in store
order, ``b`` the other, ``bytes`` counts both directions and ``bytes_a_to_b`` /
``bytes_b_to_a`` each one. Host and total rows count every frame (``layer = 0``, IP or
not), so the total can exceed the sum of the pairs.

Rows are the pairs, most bytes first (``top`` kept); ``meta`` holds ``hosts``
(``{host: {"bytes", "frames"}}``) and ``total`` (``{"bytes", "frames"}``).

The usage log (:func:`usage_log`, written by ``netwarden report usage --write FILE``) is a
JSON object of byte counts::

    {"pairs": {"10.0.0.1 <-> 10.0.0.2": 6280, ...},
     "hosts": {"alpha": 3936, "beta": 5500},
     "total": 9436}
"""

from __future__ import annotations

from typing import Any, Final

from .ranking import TopParams, limit_sql
from .result import QueryStore, ReportResult
from .selection import text_address

COLUMNS: Final = ["a", "b", "bytes", "frames", "bytes_a_to_b", "frames_a_to_b",
                  "bytes_b_to_a", "frames_b_to_a"]


def pairs_sql(where: str, top: int | None) -> str:
    """Bytes and frames per unordered outermost address pair, both directions and each."""
    lo = "if(src_ip <= dst_ip, src_ip, dst_ip)"
    hi = "if(src_ip <= dst_ip, dst_ip, src_ip)"
    forward = "src_ip <= dst_ip"
    return (
        f"SELECT {text_address('pair_lo')} AS addr_a, {text_address('pair_hi')} AS addr_b, "
        "sum(bytes) AS byte_count, sum(packets) AS frame_count, "
        "sum(if(is_forward, bytes, 0)) AS bytes_ab, sum(if(is_forward, packets, 0)) AS frames_ab, "
        "sum(if(is_forward, 0, bytes)) AS bytes_ba, sum(if(is_forward, 0, packets)) AS frames_ba "
        f"FROM (SELECT ip_version, {lo} AS pair_lo, {hi} AS pair_hi, {forward} AS is_forward, "
        f"packets, bytes FROM flows WHERE ({where}) AND layer = 0 AND ip_version IN (4, 6)) "
        "GROUP BY ip_version, pair_lo, pair_hi "
        "ORDER BY byte_count DESC, frame_count DESC, addr_a ASC, addr_b ASC"
        f"{limit_sql(top)}"
    )


def hosts_sql(where: str) -> str:
    """Bytes and frames per sensor host (every frame once)."""
    return ("SELECT host, sum(bytes) AS byte_count, sum(packets) AS frame_count "
            f"FROM flows WHERE ({where}) AND layer = 0 GROUP BY host ORDER BY host")


def usage(store: QueryStore, params: TopParams) -> ReportResult:
    """Pairs (the ``params.top`` with most bytes), hosts and total of the selection."""
    where = params.filters.where()
    rows: list[dict[str, Any]] = [
        {"a": str(a), "b": str(b), "bytes": int(nb), "frames": int(nf),
         "bytes_a_to_b": int(bab), "frames_a_to_b": int(fab),
         "bytes_b_to_a": int(bba), "frames_b_to_a": int(fba)}
        for a, b, nb, nf, bab, fab, bba, fba in store.query(pairs_sql(where, params.top))
    ]
    hosts = {str(h): {"bytes": int(nb), "frames": int(nf)}
             for h, nb, nf in store.query(hosts_sql(where))}
    total = {"bytes": sum(v["bytes"] for v in hosts.values()),
             "frames": sum(v["frames"] for v in hosts.values())}
    return ReportResult(report="usage", filters=params.describe(), rows=rows,
                        columns=list(COLUMNS),
                        meta={"hosts": hosts, "total": total})


def usage_log(result: ReportResult) -> dict[str, Any]:
    """The usage log object (see the module doc) of a :func:`usage` result."""
    hosts = result.meta.get("hosts") or {}
    total = result.meta.get("total") or {"bytes": 0}
    return {
        "pairs": {f"{r['a']} <-> {r['b']}": int(r["bytes"]) for r in result.rows},
        "hosts": {str(h): int(v["bytes"]) for h, v in hosts.items()},
        "total": int(total["bytes"]),
    }
