"""Bytes per local process: what the live sensors attributed to each process name.

A sensor labels a record with the process (``comm`` name) and pid owning the local
socket of its TCP/UDP traffic (:mod:`netwarden.sensor.processes`). Rows are per process
name over the outermost IP header (``layer = 0``, one record per frame and direction):
``pids`` (every pid seen, ascending), ``bytes`` and ``frames`` in total, ``bytes_in``
(direction ``in``: received), ``bytes_out`` (``out``: sent), ``bytes_local`` (both ends
on the host, e.g. loopback), and ``flows``: distinct TCP/UDP conversations (``stream``
per host). Most bytes first; ``top`` kept (``None``: all).

``meta``: ``local_bytes`` (bytes of the host's own traffic, direction in/out/local, from
the capture statistics), ``process_bytes`` (the part a process was found for) and
``attributed`` (their ratio, ``None`` without local bytes). Capture files analysed
offline have no sockets: their records carry no process.
"""

from __future__ import annotations

from typing import Any, Final

from netwarden.sensor.records import Direction

from .ranking import TopParams, limit_sql
from .result import QueryStore, ReportResult

COLUMNS: Final = ["process", "pids", "bytes", "bytes_in", "bytes_out", "bytes_local",
                  "frames", "flows"]


def processes_sql(where: str, top: int | None) -> str:
    """Per process name: pids, bytes (total, in, out, local), frames, conversations."""
    return (
        "SELECT process, groupUniqArray(pid) AS pid_list, sum(bytes) AS byte_count, "
        f"sum(if(direction = {int(Direction.IN)}, bytes, 0)) AS bytes_received, "
        f"sum(if(direction = {int(Direction.OUT)}, bytes, 0)) AS bytes_sent, "
        f"sum(if(direction = {int(Direction.LOCAL)}, bytes, 0)) AS bytes_on_host, "
        "sum(packets) AS frame_count, uniqExact(host, stream) AS flow_count "
        f"FROM flows WHERE ({where}) AND layer = 0 AND process != '' "
        "GROUP BY process ORDER BY byte_count DESC, frame_count DESC, process ASC"
        f"{limit_sql(top)}"
    )


def attribution_sql(where: str) -> str:
    """The host's own bytes and the part attributed to a process (capture statistics)."""
    return ("SELECT sum(local_bytes) AS local_total, sum(process_bytes) AS process_total "
            f"FROM capture_stats WHERE ({where})")


def processes(store: QueryStore, params: TopParams) -> ReportResult:
    """The ``params.top`` process names with most bytes, and the attributed share."""
    where = params.filters.where()
    rows: list[dict[str, Any]] = [
        {"process": str(name), "pids": sorted(int(p) for p in pids), "bytes": int(nb),
         "bytes_in": int(bi), "bytes_out": int(bo), "bytes_local": int(bl),
         "frames": int(nf), "flows": int(nc)}
        for name, pids, nb, bi, bo, bl, nf, nc in store.query(processes_sql(where, params.top))
    ]
    found = store.query(attribution_sql(where))
    local, owned = (int(found[0][0] or 0), int(found[0][1] or 0)) if found else (0, 0)
    return ReportResult(report="processes", filters=params.describe(), rows=rows,
                        columns=list(COLUMNS),
                        meta={"local_bytes": local, "process_bytes": owned,
                              "attributed": owned / local if local else None})
