"""Stream flow records out of a store as CSV, JSON Lines or Parquet, in chunks.

Records are read a chunk of intervals at a time (whole intervals, at most about
``chunk_rows`` rows unless a single interval holds more), so the table is never held in
memory. Columns: ``host``, ``interval_s`` and every column of
:data:`~netwarden.sensor.records.FLOW_COLUMNS`; addresses as text (IPv4 dotted, IPv6
compressed, ``""`` for a record without IP), times as integer nanoseconds since the epoch.
With an :class:`~netwarden.collector.anonymize.PrefixAnonymizer` every address is
replaced by its anonymised form.
"""

from __future__ import annotations

import csv
import dataclasses
import ipaddress
import json
from collections.abc import Iterator, Sequence
from typing import IO, Any, Final, Literal

import numpy as np

from netwarden.sensor.records import FLOW_COLUMNS

from .anonymize import PrefixAnonymizer
from .reports.filters import Filters
from .store import Store

__all__ = ["EXPORT_COLUMNS", "FORMATS", "ExportStats", "Format", "export", "iter_chunks"]

Format = Literal["csv", "json", "parquet"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "json", "parquet")

EXPORT_COLUMNS: Final[tuple[str, ...]] = ("host", "interval_s", *FLOW_COLUMNS)
ADDRESS_COLUMNS: Final = ("src_ip", "dst_ip")
_MAPPED = b"\x00" * 10 + b"\xff\xff"
_ZERO16 = b"\x00" * 16

Chunk = dict[str, list[Any]]


@dataclasses.dataclass
class ExportStats:
    rows: int = 0
    bytes: int = 0  # sum of the records' ``bytes`` column
    chunks: int = 0


def address_text(raw: bytes) -> str:
    """Text of a stored 16-byte address: dotted IPv4 when mapped, ``""`` when all zero."""
    raw = raw.ljust(16, b"\x00")
    if raw == _ZERO16:
        return ""
    if raw[:12] == _MAPPED:
        return str(ipaddress.IPv4Address(raw[12:]))
    return str(ipaddress.IPv6Address(raw))


def _plan(store: Store, where: str, chunk_rows: int) -> list[tuple[int, int]]:
    """``[start_ns, end_ns)`` ranges of whole intervals of about ``chunk_rows`` rows each."""
    counts = store.query(f"SELECT start_ns, count() FROM flows WHERE {where} "
                         "GROUP BY start_ns ORDER BY start_ns")
    ranges: list[tuple[int, int]] = []
    first: int | None = None
    size = 0
    for start, n in counts:
        if first is None:
            first = int(start)
        size += int(n)
        if size >= chunk_rows:
            ranges.append((first, int(start) + 1))
            first, size = None, 0
    if first is not None:
        ranges.append((first, int(counts[-1][0]) + 1))
    return ranges


def iter_chunks(store: Store, filters: Filters, *, chunk_rows: int = 50_000,
                anonymizer: PrefixAnonymizer | None = None) -> Iterator[Chunk]:
    """The selected flow records, as column lists (addresses as text), chunk by chunk."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, not {chunk_rows}")
    where = filters.where()
    select = ", ".join(EXPORT_COLUMNS)
    order = "host, start_ns, layer, src_ip, dst_ip, src_port, dst_port, ip_proto, first_frame"
    for low, high in _plan(store, where, chunk_rows):
        rows = store.query(f"SELECT {select} FROM flows WHERE {where} AND start_ns >= {low} "
                           f"AND start_ns < {high} ORDER BY {order}")
        if not rows:
            continue
        columns = [list(col) for col in zip(*rows, strict=True)]
        chunk: Chunk = dict(zip(EXPORT_COLUMNS, columns, strict=True))
        for name in ADDRESS_COLUMNS:
            chunk[name] = _addresses(chunk[name], anonymizer)
        yield chunk


def _addresses(raw: Sequence[bytes], anonymizer: PrefixAnonymizer | None) -> list[str]:
    """Text of each address, converting (and anonymising) each distinct value once."""
    distinct = set(raw)
    text: dict[bytes, str] = {}
    for value in distinct:
        stored = bytes(value).ljust(16, b"\x00")
        if anonymizer is not None:
            stored = anonymizer.anonymize16(stored)
        text[value] = address_text(stored)
    return [text[v] for v in raw]


def export(store: Store, filters: Filters, fmt: Format, stream: IO[Any], *,
           chunk_rows: int = 50_000, anonymizer: PrefixAnonymizer | None = None
           ) -> ExportStats:
    """Write the selected records to ``stream`` (text for csv/json, binary for parquet)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    stats = ExportStats()
    chunks = iter_chunks(store, filters, chunk_rows=chunk_rows, anonymizer=anonymizer)
    if fmt == "parquet":
        _write_parquet(chunks, stream, stats)
        return stats
    writer = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    for chunk in chunks:
        _count(chunk, stats)
        rows = zip(*(chunk[name] for name in EXPORT_COLUMNS), strict=True)
        if writer is not None:
            writer.writerows(rows)
        else:
            stream.writelines(json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)),
                                         separators=(",", ":")) + "\n" for row in rows)
    return stats


def _count(chunk: Chunk, stats: ExportStats) -> None:
    stats.rows += len(chunk["bytes"])
    stats.bytes += sum(int(b) for b in chunk["bytes"])
    stats.chunks += 1


def _arrow_schema() -> Any:
    import pyarrow as pa

    fields = [pa.field("host", pa.string()), pa.field("interval_s", pa.uint32())]
    for name, dtype in FLOW_COLUMNS.items():
        if name in ADDRESS_COLUMNS or dtype is object:
            fields.append(pa.field(name, pa.string()))
        else:
            fields.append(pa.field(name, pa.from_numpy_dtype(np.dtype(dtype))))
    return pa.schema(fields)


def _write_parquet(chunks: Iterator[Chunk], stream: IO[bytes], stats: ExportStats) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    with pq.ParquetWriter(stream, schema) as writer:
        for chunk in chunks:
            _count(chunk, stats)
            arrays = [pa.array(chunk[f.name], type=f.type) for f in schema]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
