"""Apps: bytes per app label, or per server name, as the sensors labelled the records.

A sensor labels every flow record (:mod:`netwarden.sensor.apps`) with an ``app`` and says
where the label came from (``app_source``): the TLS or QUIC server name of its stream
(``tls``, ``quic``), the DNS name its remote address was resolved from (``dns``), or a
well-known port (``port``); ``app_name`` is the server name behind a ``tls``/``quic``/``dns``
label. Bytes and packets are those of the outermost IP header's records (``layer = 0``,
one record per frame and direction), as the talkers count them.

* ``by="app"``: a row per app, most bytes first: ``app``, ``bytes``, ``packets``,
  ``flows`` (distinct TCP/UDP conversations, per host), ``sources`` (the label sources
  seen, sorted) and ``names`` (up to three server names with most bytes). Records without
  a label are left out of the rows; ``meta`` has ``total_bytes`` and ``labelled_bytes``.
* ``by="name"``: a row per server name and source (``tls``, ``quic``, ``dns``): ``name``,
  ``source``, ``app`` (of the records labelled with it; empty when none was), ``frames``
  (the frames that carried the name, from the ``app_names`` table: every SNI occurrence,
  as tshark's ``tls.handshake.extensions_server_name``; a DNS name once per frame that
  asks, as ``dns.qry.name``), and ``bytes``/``packets`` of the records labelled with it.
  Most bytes first, then frames, then name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal

from ..store.sql import quote
from .ranking import TopParams, limit_sql
from .result import QueryStore, ReportResult

APP_COLUMNS: Final = ["app", "bytes", "packets", "flows", "sources", "names"]
NAME_COLUMNS: Final = ["name", "source", "app", "frames", "bytes", "packets"]
BY: Final = ("app", "name")
NAMES_PER_APP: Final = 3

By = Literal["app", "name"]


@dataclasses.dataclass(frozen=True)
class AppsParams(TopParams):
    """``by``: rows per ``app`` or per server ``name``; ``top``: rows kept (None: all)."""

    by: By = "app"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.by not in BY:
            raise ValueError(f"by must be one of {', '.join(BY)}, got {self.by!r}")


def apps_sql(where: str, top: int | None) -> str:
    """Per app label: bytes, packets, conversations and label sources (layer-0 records)."""
    return (
        "SELECT app, sum(bytes) AS byte_count, sum(packets) AS packet_count, "
        "uniqExactIf(host, stream, stream != 0) AS flow_count, "
        "groupUniqArray(app_source) AS source_list "
        f"FROM flows WHERE ({where}) AND layer = 0 AND app != '' "
        f"GROUP BY app ORDER BY byte_count DESC, packet_count DESC, app ASC{limit_sql(top)}"
    )


def app_names_sql(where: str, apps: list[str]) -> str:
    """Bytes per (app, server name) of the given apps (layer-0 records)."""
    listed = ", ".join(quote(a) for a in apps)
    return (
        "SELECT app, app_name, sum(bytes) AS byte_count FROM flows "
        f"WHERE ({where}) AND layer = 0 AND app_name != '' AND app IN ({listed}) "
        "GROUP BY app, app_name ORDER BY app ASC, byte_count DESC, app_name ASC"
    )


def totals_sql(where: str) -> str:
    """All bytes, and the labelled ones (layer-0 records)."""
    return ("SELECT sum(bytes) AS byte_count, sum(if(app != '', bytes, 0)) AS labelled "
            f"FROM flows WHERE ({where}) AND layer = 0")


def name_frames_sql(where: str) -> str:
    """Frames per (server name, source) from the ``app_names`` table."""
    return ("SELECT name, source, sum(frames) AS frame_count FROM app_names "
            f"WHERE ({where}) GROUP BY name, source")


def name_records_sql(where: str) -> str:
    """Per (server name, source) of the labelled records: app, bytes, packets."""
    return (
        "SELECT app_name, app_source, any(app) AS app_label, sum(bytes) AS byte_count, "
        "sum(packets) AS packet_count "
        f"FROM flows WHERE ({where}) AND layer = 0 AND app_name != '' "
        "GROUP BY app_name, app_source"
    )


def apps(store: QueryStore, params: AppsParams) -> ReportResult:
    """Rows per app or per server name (see the module doc)."""
    if params.by == "name":
        return _by_name(store, params)
    return _by_app(store, params)


def _by_app(store: QueryStore, params: AppsParams) -> ReportResult:
    where = params.filters.where()
    rows: list[dict[str, Any]] = [
        {"app": str(app), "bytes": int(nb), "packets": int(np_), "flows": int(nf),
         "sources": sorted(str(s) for s in sources if s), "names": []}
        for app, nb, np_, nf, sources in store.query(apps_sql(where, params.top))
    ]
    if rows:
        by_app = {r["app"]: r for r in rows}
        for app, name, _ in store.query(app_names_sql(where, list(by_app))):
            names = by_app[str(app)]["names"]
            if len(names) < NAMES_PER_APP:
                names.append(str(name))
    found = store.query(totals_sql(where))
    total, labelled = (int(found[0][0] or 0), int(found[0][1] or 0)) if found else (0, 0)
    return ReportResult(report="apps", filters=params.describe(), rows=rows,
                        columns=list(APP_COLUMNS),
                        meta={"by": "app", "total_bytes": total, "labelled_bytes": labelled})


def _by_name(store: QueryStore, params: AppsParams) -> ReportResult:
    where = params.filters.where()
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(name: str, source: str) -> dict[str, Any]:
        key = (name, source)
        if key not in rows:
            rows[key] = {"name": name, "source": source, "app": "", "frames": 0, "bytes": 0,
                         "packets": 0}
        return rows[key]

    for name, source, frames in store.query(name_frames_sql(where)):
        row(str(name), str(source))["frames"] = int(frames)
    for name, source, app, nb, np_ in store.query(name_records_sql(where)):
        r = row(str(name), str(source))
        r.update(app=str(app), bytes=int(nb), packets=int(np_))
    ordered = sorted(rows.values(), key=lambda r: (-r["bytes"], -r["frames"], r["name"],
                                                   r["source"]))
    if params.top is not None:
        ordered = ordered[:params.top]
    return ReportResult(report="apps", filters=params.describe(), rows=ordered,
                        columns=list(NAME_COLUMNS), meta={"by": "name"})
