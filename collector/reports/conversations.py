"""Conversations, as tshark's ``-z conv,ip|ipv6|tcp|udp`` tables count them.

Which records feed a table (see :mod:`netwarden.sensor.records`):

* ``ip``/``ipv6``: ``ip_version`` 4/6 with the ``TAP_IP`` bit, at every layer (a tunnelled
  frame counts in the outer and in each inner conversation); one row per host and
  unordered address pair.
* ``tcp``/``udp``: ``ip_proto`` 6/17 with the ``TAP_L4`` bit; one row per host, stream and
  unordered (address, port) pair, so a reused 4-tuple gives one row per stream.

Side A is the source of the conversation's first packet, the record with the smallest
``first_frame`` (timestamps may go backwards, frame numbers do not). Rows come in tshark's
order: most frames first, then the conversation seen first; conversations first seen in
the same frame (a tunnel's outer and inner headers) in header order, outer first.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal

from netwarden.sensor.records import TAP_IP, TAP_L4

from .filters import Filters
from .result import QueryStore, ReportResult
from .selection import rel_seconds, select, text_address

Kind = Literal["ip", "ipv6", "tcp", "udp"]
KINDS: Final[tuple[Kind, ...]] = ("ip", "ipv6", "tcp", "udp")

_RECORDS: Final[dict[str, str]] = {
    "ip": f"ip_version = 4 AND bitAnd(tap, {TAP_IP}) != 0",
    "ipv6": f"ip_version = 6 AND bitAnd(tap, {TAP_IP}) != 0",
    "tcp": f"ip_proto = 6 AND bitAnd(tap, {TAP_L4}) != 0",
    "udp": f"ip_proto = 17 AND bitAnd(tap, {TAP_L4}) != 0",
}

ADDRESS_COLUMNS: Final = ["host", "a", "b"]
COUNT_COLUMNS: Final = [
    "frames_a_to_b", "bytes_a_to_b", "frames_b_to_a", "bytes_b_to_a",
    "frames", "bytes", "rel_start", "duration",
]


@dataclasses.dataclass(frozen=True)
class ConversationsParams:
    """``kind`` of table; ``top`` keeps the first N rows (``None``: all)."""

    kind: Kind = "ip"
    filters: Filters = dataclasses.field(default_factory=Filters)
    top: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"conversation kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.top is not None and self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")


def columns_for(kind: Kind) -> list[str]:
    """Row fields of a conversation table, in display order."""
    if kind in ("tcp", "udp"):
        return ["host", "a", "port_a", "b", "port_b", *COUNT_COLUMNS]
    return [*ADDRESS_COLUMNS, *COUNT_COLUMNS]


def conversations_sql(kind: Kind, where: str, top: int | None) -> str:
    """The query: one row per conversation with the lower and higher endpoint, the side A
    flag, per-direction counts and the time span, in tshark's order.

    ``first_tap`` orders by (first frame, layer); frame numbers stay far below 2**56.
    """
    with_ports = kind in ("tcp", "udp")
    if with_ports:
        src_first = "(src_ip < dst_ip OR (src_ip = dst_ip AND src_port <= dst_port))"
    else:
        src_first = "(src_ip <= dst_ip)"
    key = [
        f"if({src_first}, src_ip, dst_ip) AS lo_ip",
        f"if({src_first}, dst_ip, src_ip) AS hi_ip",
    ]
    group = ["host", "ip_version", "lo_ip", "hi_ip"]
    if with_ports:
        key += [
            f"if({src_first}, src_port, dst_port) AS lo_port",
            f"if({src_first}, dst_port, src_port) AS hi_port",
            "stream",
        ]
        group += ["lo_port", "hi_port", "stream"]
    ports = "lo_port AS port_lo, hi_port AS port_hi, " if with_ports else ""
    limit = f" LIMIT {int(top)}" if top is not None else ""
    return (
        "SELECT host AS host_name, "
        f"{text_address('lo_ip')} AS addr_lo, {text_address('hi_ip')} AS addr_hi, {ports}"
        "argMin(src_is_lo, first_frame) AS a_is_lo, "
        "sumIf(packets, src_is_lo = 1) AS frames_lo_hi, sumIf(bytes, src_is_lo = 1) AS bytes_lo_hi, "
        "sumIf(packets, src_is_lo = 0) AS frames_hi_lo, sumIf(bytes, src_is_lo = 0) AS bytes_hi_lo, "
        "sum(packets) AS total_frames, min(first_frame * 256 + layer) AS first_tap, "
        "min(first_seen) AS first_seen_min, max(last_seen) AS last_seen_max "
        f"FROM (SELECT host, ip_version, {', '.join(key)}, toUInt8({src_first}) AS src_is_lo, "
        "first_frame, layer, packets, bytes, first_seen, last_seen "
        f"FROM flows WHERE ({where}) AND {_RECORDS[kind]}) "
        f"GROUP BY {', '.join(group)} "
        "ORDER BY total_frames DESC, first_tap ASC, host_name ASC"
        f"{limit}"
    )


def conversations(store: QueryStore, params: ConversationsParams) -> ReportResult:
    """The ``params.kind`` conversation table of the selected records."""
    kind = params.kind
    with_ports = kind in ("tcp", "udp")
    sel = select(store, params.filters)
    rows: list[dict[str, Any]] = []
    if not sel.empty:
        sql = conversations_sql(kind, params.filters.where(), params.top)
        for rec in store.query(sql):
            rows.append(_row(rec, with_ports, sel.origin_ns))
    filters = params.filters.describe()
    filters["top"] = params.top
    return ReportResult(
        report="conversations",
        filters=filters,
        rows=rows,
        columns=columns_for(kind),
        meta={"kind": kind, **sel.describe()},
    )


def _row(rec: tuple[Any, ...], with_ports: bool, origin_ns: int) -> dict[str, Any]:
    values = list(rec)
    host, lo, hi = str(values[0]), str(values[1]), str(values[2])
    if with_ports:
        lo_port, hi_port = int(values[3]), int(values[4])
        rest = values[5:]
    else:
        lo_port = hi_port = 0
        rest = values[3:]
    a_is_lo, f_lh, b_lh, f_hl, b_hl, _total, _first, first_seen, last_seen = (int(v) for v in rest)
    if a_is_lo:
        a, b, port_a, port_b = lo, hi, lo_port, hi_port
        f_ab, b_ab, f_ba, b_ba = f_lh, b_lh, f_hl, b_hl
    else:
        a, b, port_a, port_b = hi, lo, hi_port, lo_port
        f_ab, b_ab, f_ba, b_ba = f_hl, b_hl, f_lh, b_lh
    row: dict[str, Any] = {"host": host, "a": a, "b": b}
    if with_ports:
        row["port_a"] = port_a
        row["port_b"] = port_b
    row.update({
        "frames_a_to_b": f_ab,
        "bytes_a_to_b": b_ab,
        "frames_b_to_a": f_ba,
        "bytes_b_to_a": b_ba,
        "frames": f_ab + f_ba,
        "bytes": b_ab + b_ba,
        "rel_start": rel_seconds(first_seen - origin_ns),
        "duration": rel_seconds(last_seen - first_seen),
    })
    return row
