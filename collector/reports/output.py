"""Rendering a :class:`ReportResult` as a rich table, JSON or CSV.

* ``json``: the object ``{"report", "filters", ...meta, "rows"}`` with exact numbers.
* ``csv``: a header line and one line per row, exact numbers; the protocol tree is
  flattened to ``depth, path, protocol, frames, bytes`` rows in tree order.
* ``table``: for people; byte counts are humanised (``1.5 MB``, powers of 1000), times
  shown to the microsecond. Use json or csv for exact values.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import IO, Any, Final, Literal

from rich.console import Console
from rich.table import Table

from .protocols import FLAT_COLUMNS, flatten
from .result import ReportResult

Format = Literal["table", "json", "csv"]
FORMATS: Final[tuple[Format, ...]] = ("table", "json", "csv")

_BYTE_COLUMNS: Final = frozenset({"bytes", "bytes_a_to_b", "bytes_b_to_a", "bytes_in",
                                  "bytes_out", "bytes_local", "src_port_bytes",
                                  "dst_port_bytes"})
_TIME_COLUMNS: Final = frozenset({"rel_start", "duration"})
_TEXT_COLUMNS: Final = frozenset({"host", "a", "b", "key", "protocol", "path", "country",
                                  "country_name", "as_name", "process", "pids", "app", "name",
                                  "source", "sources", "names"})
_TITLES: Final = {
    "conversations": "{kind} conversations",
    "protocols": "Protocol hierarchy",
    "io": "Frames and bytes per {interval} s",
    "talkers": "Top talkers",
    "ports": "Top ports",
    "processes": "Bytes per process",
    "geo": "Remote addresses by {by}",
    "apps": "Bytes per {by}",
}
_HEADERS: Final = {
    "host": "Host", "a": "Address A", "b": "Address B", "port_a": "Port A", "port_b": "Port B",
    "frames_a_to_b": "Frames A→B", "bytes_a_to_b": "Bytes A→B",
    "frames_b_to_a": "Frames B→A", "bytes_b_to_a": "Bytes B→A",
    "frames": "Frames", "bytes": "Bytes", "rel_start": "Rel start (s)",
    "duration": "Duration (s)", "start": "Start (s)", "key": "Key", "protocol": "Protocol",
    "country": "Country", "country_name": "Country name", "asn": "ASN", "as_name": "AS name",
    "addresses": "Addresses",
    "process": "Process", "pids": "PIDs", "bytes_in": "Bytes in", "bytes_out": "Bytes out",
    "bytes_local": "Bytes local", "flows": "Flows",
    "app": "App", "name": "Server name", "source": "Source", "sources": "Label sources",
    "names": "Top names", "packets": "Packets",
    "mix": "Protocols", "src_port": "Top src port", "src_port_bytes": "Src port bytes",
    "dst_port": "Top dst port", "dst_port_bytes": "Dst port bytes",
    "network": "Network", "transport": "Transport", "time": "Time (UTC)",
    "bucket": "Frame length", "count": "Frames", "version": "IP", "min": "Min",
    "max": "Max", "mean": "Mean", "variance": "Variance", "depth": "Depth", "path": "Path",
}
_KEY_HEADERS: Final = {"talkers": "Address", "ports": "Port", "transport": "Address",
                       "ttl": "Source address"}
# ``sources`` is a count of source addresses in ``protocols --flat``, label sources in apps
_REPORT_HEADERS: Final = {("protocol_counts", "sources"): "Source addresses",
                          ("ttl", "count"): "Frames"}
# identifiers, never shown with thousands separators
_ID_COLUMNS: Final = frozenset({"src_port", "dst_port", "port_a", "port_b", "asn", "pids",
                                "origin_ns", "version", "depth"})
_KIND_NAMES: Final = {"ip": "IPv4", "ipv6": "IPv6", "tcp": "TCP", "udp": "UDP"}
_COUNT_COLUMNS: Final = frozenset({"frames", "frames_a_to_b", "frames_b_to_a", "addresses",
                                   "packets"})
_LIST_COLUMNS: Final = frozenset({"sources", "names", "pids"})
_UNITS: Final = ("kB", "MB", "GB", "TB", "PB")


def human_bytes(n: int) -> str:
    """``980 B``, ``1.5 kB``, ``468 MB``... (powers of 1000, three significant digits)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1000
        if value < 1000 or unit == _UNITS[-1]:
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def render(result: ReportResult, fmt: Format) -> str:
    """The report as text in ``fmt`` (ends with a newline)."""
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(result)
    if fmt == "table":
        buf = io.StringIO()
        write_table(result, buf, width=10_000)
        return buf.getvalue()
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def write(result: ReportResult, fmt: Format, stream: IO[str]) -> None:
    """Write the report to ``stream``; a table fits a terminal's width when it is one."""
    if fmt == "table":
        write_table(result, stream, width=None if stream.isatty() else 10_000)
    else:
        stream.write(render(result, fmt))


def write_table(result: ReportResult, stream: IO[str], width: int | None) -> None:
    console = Console(file=stream, width=width, highlight=False)
    console.print(_table(result))
    console.print(_summary(result), soft_wrap=True, markup=False)


def _csv(result: ReportResult) -> str:
    buf = io.StringIO()
    if result.report == "protocols":
        columns, rows = list(FLAT_COLUMNS), list(flatten(result.rows))
    else:
        columns, rows = result.columns, result.rows
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _table(result: ReportResult) -> Table:
    meta = result.meta
    if result.report == "io" and meta.get("interval") is None:
        title = "Frames and bytes"  # nothing selected: no stored interval to name
    else:
        title = _TITLES.get(result.report, result.report).format(
            kind=_KIND_NAMES.get(str(meta.get("kind")), meta.get("kind")),
            interval=meta.get("interval"),
            by={"asn": "AS"}.get(str(meta.get("by")), meta.get("by")),
        )
    table = Table(title=title)
    if result.report == "protocols":
        rows: Iterable[dict[str, Any]] = (
            dict(r, protocol="  " * r["depth"] + str(r["protocol"])) for r in flatten(result.rows)
        )
        columns = list(result.columns)
    else:
        rows = result.rows
        columns = list(result.columns)
        if "host" in columns and len({r.get("host") for r in result.rows}) <= 1:
            columns.remove("host")  # one host: it is in the summary line
    for col in columns:
        justify: Literal["left", "right"] = "left" if col in _TEXT_COLUMNS else "right"
        table.add_column(header(result.report, col), justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(col, row.get(col)) for col in columns))
    return table


def header(report: str, column: str) -> str:
    """The column's heading for people (tables, the HTML page); JSON/CSV keep the names."""
    if column == "key":
        return _KEY_HEADERS.get(report, "Key")
    return _REPORT_HEADERS.get((report, column)) or _HEADERS.get(column, column)


def is_identifier(column: str) -> bool:
    """Ports, AS numbers, pids...: numbers shown as they are, without separators."""
    return column in _ID_COLUMNS


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in _BYTE_COLUMNS:
        return human_bytes(int(value))
    if column in _TIME_COLUMNS:
        return f"{float(value):.6f}"
    if column in _COUNT_COLUMNS:
        return f"{int(value):,}"
    if column in _LIST_COLUMNS and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _summary(result: ReportResult) -> str:
    f = result.filters
    parts = [f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"]
    hosts = f.get("hosts") or sorted({str(r["host"]) for r in result.rows if "host" in r})
    if hosts:
        parts.append("host " + ", ".join(hosts))
    if f.get("since"):
        parts.append(f"since {f['since']}")
    if f.get("until"):
        parts.append(f"until {f['until']}")
    if result.meta.get("origin"):
        parts.append(f"origin {result.meta['origin']}")
    if result.report == "protocols":
        parts[0] = f"{sum(int(n['frames']) for n in result.rows)} frames"
    if result.report == "apps" and result.meta.get("by") == "app":
        parts.append(f"{human_bytes(int(result.meta.get('labelled_bytes') or 0))} of "
                     f"{human_bytes(int(result.meta.get('total_bytes') or 0))} labelled")
    if result.report == "processes":
        share = result.meta.get("attributed")
        parts.append(f"{human_bytes(int(result.meta.get('process_bytes') or 0))} of "
                     f"{human_bytes(int(result.meta.get('local_bytes') or 0))} local bytes "
                     "attributed to a process"
                     + ("" if share is None else f" ({100 * float(share):.1f} %)"))
    return "; ".join(parts)
