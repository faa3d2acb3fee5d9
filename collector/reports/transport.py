"""Transport mix of the top talkers: protocols, top source and destination port.

The addresses are ranked as :mod:`.talkers` ranks them (outermost IP header, ``layer = 0``).
For each, ``protocols`` is bytes per IP protocol name of those records (``tcp``, ``udp``,
``icmp``, ``gre``...; ``proto-N`` without a name). The ports come from the records whose
TCP/UDP header is the frame's outermost (``TAP_OUTER_L4``) at ``layer = 0`` and in which the
address is source or destination: the source port and the destination port with the most
bytes (ties: the lower port), or ``None`` when the address has no such record.
"""

from __future__ import annotations

from typing import Any, Final

from netwarden.sensor.records import TAP_OUTER_L4

from ..store.sql import quote
from .names import ip_proto_name
from .ranking import TopParams
from .result import QueryStore, ReportResult
from .selection import text_address
from .talkers import talkers_sql

COLUMNS: Final = ["key", "bytes", "frames", "mix", "src_port", "src_port_bytes", "dst_port",
                  "dst_port_bytes"]


def _addressed(where: str, keys: list[str], columns: str, extra: str = "") -> str:
    """Records of the outermost IP header, one row per (distinct) address in ``keys``."""
    return (
        f"SELECT addr_text, {columns} FROM (SELECT {text_address('addr')} AS addr_text, "
        "ip_proto, src_port, dst_port, bytes "
        "FROM (SELECT arrayJoin(if(src_ip = dst_ip, [src_ip], [src_ip, dst_ip])) AS addr, "
        "ip_version, ip_proto, src_port, dst_port, bytes FROM flows "
        f"WHERE ({where}) AND layer = 0 AND ip_version IN (4, 6){extra})) "
        f"WHERE addr_text IN ({', '.join(quote(k) for k in keys)})"
    )


def mix_sql(where: str, keys: list[str]) -> str:
    """Bytes per (address, ip_proto) for the addresses ``keys``."""
    return (f"SELECT addr_text, ip_proto, sum(bytes) AS byte_count FROM "
            f"({_addressed(where, keys, 'ip_proto, bytes')}) GROUP BY addr_text, ip_proto")


def port_sql(where: str, keys: list[str], column: str) -> str:
    """Bytes per (address, ``column`` port) over outermost TCP/UDP records."""
    extra = f" AND bitAnd(tap, {TAP_OUTER_L4}) != 0"
    return (f"SELECT addr_text, {column} AS port, sum(bytes) AS byte_count FROM "
            f"({_addressed(where, keys, f'{column}, bytes', extra)}) "
            f"GROUP BY addr_text, port")


def _best(rows: list[tuple[Any, ...]]) -> dict[str, tuple[int, int]]:
    best: dict[str, tuple[int, int]] = {}
    for key, port, nbytes in rows:
        k, p, b = str(key), int(port), int(nbytes)
        if k not in best or (b, -p) > (best[k][1], -best[k][0]):
            best[k] = (p, b)
    return best


def transport(store: QueryStore, params: TopParams) -> ReportResult:
    """The ``params.top`` talkers with their protocol mix and top ports."""
    where = params.filters.where()
    ranked = [(str(k), int(b), int(f)) for k, b, f in store.query(talkers_sql(where, params.top))]
    keys = [k for k, _, _ in ranked]
    mixes: dict[str, dict[str, int]] = {k: {} for k in keys}
    src: dict[str, tuple[int, int]] = {}
    dst: dict[str, tuple[int, int]] = {}
    if keys:
        for key, proto, nbytes in store.query(mix_sql(where, keys)):
            name = ip_proto_name(int(proto))
            mix = mixes[str(key)]
            mix[name] = mix.get(name, 0) + int(nbytes)
        src = _best(store.query(port_sql(where, keys, "src_port")))
        dst = _best(store.query(port_sql(where, keys, "dst_port")))
    rows: list[dict[str, Any]] = []
    for key, nbytes, frames in ranked:
        protocols = dict(sorted(mixes[key].items(), key=lambda kv: (-kv[1], kv[0])))
        sp, db = src.get(key), dst.get(key)
        rows.append({
            "key": key, "bytes": nbytes, "frames": frames, "protocols": protocols,
            "mix": " ".join(f"{name}:{b}" for name, b in protocols.items()),
            "src_port": None if sp is None else sp[0],
            "src_port_bytes": None if sp is None else sp[1],
            "dst_port": None if db is None else db[0],
            "dst_port_bytes": None if db is None else db[1],
        })
    return ReportResult(report="transport", filters=params.describe(), rows=rows,
                        columns=list(COLUMNS))
