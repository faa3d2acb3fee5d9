"""Bytes per country and per autonomous system of the remote addresses.

The remote address of a record (outermost IP header: ``layer = 0`` IPv4/IPv6 records, one
per frame) is, by its direction relative to the sensor's host: ``in`` → the source,
``out`` → the destination; ``other`` and ``local`` → the destination when it is a public
address (:func:`netwarden.collector.geo.is_public`), else the source. So a conversation
between a private and a public address credits the public one, both ways. SQL sums bytes
and frames per remote address (per (destination, source) pair for ``other``/``local``,
where Python picks one); each distinct address is then looked up
(:mod:`netwarden.collector.geo`, offline) and the sums are added up per country or AS.

Rows, most bytes first (then frames, then key), ``top`` kept:

* ``by="country"`` (default): ``{"country", "country_name", "bytes", "frames",
  "addresses"}``; ``country`` is the ISO 3166 alpha-2 code, ``"--"`` for private/reserved
  addresses, ``"??"`` for public ones the data does not place; ``addresses`` counts the
  distinct remote addresses. A world map needs only ``country`` and ``bytes``.
* ``by="asn"``: ``{"asn", "as_name", "country", "country_name", "bytes", "frames",
  "addresses"}``; the AS is keyed by name (``asn`` is ``null``: the shipped data has no
  AS numbers); ``"private"`` / ``"unknown"`` for addresses without an AS; ``country`` is
  the country with most bytes among the AS's addresses.

``meta``: ``by``, ``geo_data`` (what the loaded geo data is, ``null`` while the process has
loaded none: no public address looked up yet) and ``total`` ``{"bytes", "frames", "addresses"}`` over every remote address
(before ``top``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Final

from netwarden.sensor.records import Direction

from ..geo import GeoInfo, database, is_public
from .ranking import TopParams
from .result import QueryStore, ReportResult
from .selection import text_address

BY: Final = ("country", "asn")
COUNTRY_COLUMNS: Final = ["country", "country_name", "bytes", "frames", "addresses"]
ASN_COLUMNS: Final = ["asn", "as_name", "country", "bytes", "frames", "addresses"]


@dataclasses.dataclass(frozen=True)
class GeoParams(TopParams):
    """``by``: ``"country"`` or ``"asn"``; ``top``: rows kept (``None``: all)."""

    by: str = "country"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.by not in BY:
            raise ValueError(f"by: expected one of {', '.join(BY)}, got {self.by!r}")


def remote_sql(where: str) -> str:
    """Bytes and frames per (first, second) remote candidate: both the remote address for
    ``in``/``out`` records, (destination, source) for ``other``/``local`` ones."""
    first = (f"multiIf(direction = {int(Direction.IN)}, src_ip, "
             f"direction = {int(Direction.OUT)}, dst_ip, dst_ip)")
    second = (f"if(direction IN ({int(Direction.IN)}, {int(Direction.OUT)}), "
              "remote_first, src_ip)")
    return (
        f"SELECT {text_address('remote_first')} AS first_text, "
        f"{text_address('remote_second')} AS second_text, "
        "sum(bytes) AS byte_count, sum(packets) AS frame_count "
        f"FROM (SELECT ip_version, {first} AS remote_first, {second} AS remote_second, "
        f"packets, bytes FROM flows WHERE ({where}) AND layer = 0 AND ip_version IN (4, 6)) "
        "GROUP BY ip_version, remote_first, remote_second"
    )


def per_address(rows: Iterable[tuple[Any, ...]]) -> dict[str, tuple[int, int]]:
    """``{remote address: (bytes, frames)}`` from :func:`remote_sql` rows."""
    out: dict[str, tuple[int, int]] = {}
    for first, second, nbytes, frames in rows:
        a, b = str(first), str(second)
        remote = a if a == b or is_public(a) else b
        have = out.get(remote, (0, 0))
        out[remote] = (have[0] + int(nbytes), have[1] + int(frames))
    return out


@dataclasses.dataclass
class _Group:
    bytes: int = 0
    frames: int = 0
    addresses: int = 0
    countries: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)

    def add(self, info: GeoInfo, nbytes: int, frames: int) -> None:
        self.bytes += nbytes
        self.frames += frames
        self.addresses += 1
        key = (info.country, info.country_name)
        self.countries[key] = self.countries.get(key, 0) + nbytes

    def country(self) -> tuple[str, str]:
        """The country with most bytes (ties: the smaller code)."""
        return min(self.countries, key=lambda k: (-self.countries[k], k))


def _rows(by: str, groups: dict[tuple[Any, ...], _Group]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, g in groups.items():
        if by == "country":
            rows.append({"country": key[0], "country_name": key[1], "bytes": g.bytes,
                         "frames": g.frames, "addresses": g.addresses})
        else:
            code, name = g.country()
            rows.append({"asn": key[0], "as_name": key[1], "country": code,
                         "country_name": name, "bytes": g.bytes, "frames": g.frames,
                         "addresses": g.addresses})
    first = "country" if by == "country" else "as_name"
    rows.sort(key=lambda r: (-r["bytes"], -r["frames"], r[first]))
    return rows


def geo(store: QueryStore, params: GeoParams) -> ReportResult:
    """The ``params.top`` countries or ASes of the remote addresses with most bytes."""
    sums = per_address(store.query(remote_sql(params.filters.where())))
    db = database()
    infos = db.lookup_many(sums)
    groups: dict[tuple[Any, ...], _Group] = {}
    for address, (nbytes, frames) in sums.items():
        info = infos[address]
        key = ((info.country, info.country_name) if params.by == "country"
               else (info.asn, info.as_name))
        groups.setdefault(key, _Group()).add(info, nbytes, frames)
    rows = _rows(params.by, groups)
    if params.top is not None:
        rows = rows[:params.top]
    total = {"bytes": sum(b for b, _ in sums.values()),
             "frames": sum(f for _, f in sums.values()), "addresses": len(sums)}
    columns = COUNTRY_COLUMNS if params.by == "country" else ASN_COLUMNS
    if params.by == "asn" and all(r["asn"] is None for r in rows):
        columns = [c for c in columns if c != "asn"]  # the data has no AS numbers
    return ReportResult(report="geo", filters=params.describe(), rows=rows,
                        columns=list(columns),
                        meta={"by": params.by, "geo_data": db.source, "total": total})
