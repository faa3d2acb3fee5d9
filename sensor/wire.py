"""The wire codec: :class:`~netwarden.sensor.records.FlowBatch` to protobuf and back.

Tables travel as columns (``netwarden.v1.Column``): for a number or fixed-size bytes
column the numpy dtype string in little-endian form (``"<i8"``, ``"|u1"``, ``"|S16"``) and
the array's raw bytes; for a string column (``object`` in records.py) the dtype ``"str"``,
the distinct values in ``strings`` and the rows as ``"<u4"`` indexes into them. Encoding
and decoding are a few buffer copies per column, no per-row Python for numbers.

:func:`decode_batch` trusts nothing: it checks every table and column name against
records.py, every dtype against the one records.py declares, byte lengths, row counts,
string indexes, the host, the interval and the sequence number, and raises
:class:`WireError` (one line naming the table, column or field) on the first problem.
Decoded numeric columns are read-only views of the message's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from netwarden.errors import InputError
from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    NAME_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    Columns,
    FlowBatch,
    nrows,
)

__all__ = [
    "PROTOCOL_VERSION",
    "TABLES",
    "WireError",
    "batch_span",
    "decode_batch",
    "encode_batch",
    "split_batch",
    "wire_dtype",
]

PROTOCOL_VERSION: Final = 1
STR_DTYPE: Final = "str"
_INDEX: Final = np.dtype("<u4")

# (FlowBatch attribute = protobuf field, column spec), in store insert order.
TABLES: Final[tuple[tuple[str, Mapping[str, npt.DTypeLike]], ...]] = (
    ("flows", FLOW_COLUMNS), ("chains", CHAIN_COLUMNS), ("sizes", SIZE_COLUMNS),
    ("stats", STAT_COLUMNS), ("names", NAME_COLUMNS),
)


class WireError(InputError):
    """A message that does not follow the contract; one line naming what is wrong."""


def wire_dtype(spec: npt.DTypeLike) -> str:
    """The dtype string a column of records.py type ``spec`` travels with."""
    if spec is object:
        return STR_DTYPE
    return np.dtype(spec).newbyteorder("<").str


_WIRE_DTYPES: Final[dict[str, dict[str, str]]] = {
    table: {name: wire_dtype(dt) for name, dt in spec.items()} for table, spec in TABLES
}


# -- encoding ---------------------------------------------------------------------------


def encode_batch(batch: FlowBatch, seq: int) -> pb.FlowBatch:
    """``batch`` as a protobuf message with sequence number ``seq``.

    Raises :class:`WireError` when a table lacks a column, has columns of unequal
    length or a value that its declared dtype cannot hold.
    """
    msg = pb.FlowBatch(seq=seq, host=batch.host, interval_s=batch.interval_s)
    for table, spec in TABLES:
        _encode_table(table, spec, getattr(batch, table), getattr(msg, table))
    msg.first_start_ns, msg.last_start_ns = batch_span(batch)
    return msg


def _encode_table(table: str, spec: Mapping[str, npt.DTypeLike], data: Columns,
                  out: pb.Table) -> None:
    extra = sorted(set(data) - set(spec))
    if extra:
        raise WireError(f"{table}: unknown column {extra[0]!r}")
    n = nrows(data)
    out.rows = n
    for name, dt in spec.items():
        where = f"{table}.{name}"
        if name not in data:
            raise WireError(f"{where}: column missing")
        values = np.asarray(data[name])
        if values.ndim != 1 or len(values) != n:
            raise WireError(f"{where}: {len(values)} values, expected {n} like the other columns")
        col = out.columns.add(name=name, dtype=_WIRE_DTYPES[table][name])
        if dt is object:
            _encode_strings(where, values, col)
            continue
        want = np.dtype(col.dtype)
        if values.dtype != want:
            if not np.can_cast(values.dtype, want, "safe"):
                raise WireError(f"{where}: dtype {values.dtype.str}, expected {want.str}")
            values = values.astype(want)
        col.data = np.ascontiguousarray(values).tobytes()


def _encode_strings(where: str, values: np.ndarray, col: pb.Column) -> None:
    if len(values) == 0:
        return
    try:
        distinct, index = np.unique(values, return_inverse=True)
    except TypeError:  # values that do not compare with strings
        bad = next((v for v in values if not isinstance(v, str)), None)
        raise WireError(f"{where}: value {bad!r} is not a string") from None
    for v in distinct:
        if not isinstance(v, str):
            raise WireError(f"{where}: value {v!r} is not a string")
    col.strings.extend(distinct.tolist())
    col.data = index.astype(_INDEX).tobytes()


def batch_span(batch: FlowBatch) -> tuple[int, int]:
    """The smallest and largest interval start in ``batch`` (``(0, 0)`` when empty)."""
    lo: int | None = None
    hi: int | None = None
    for table, _ in TABLES:
        starts = np.asarray(getattr(batch, table).get("start_ns", ()))
        if len(starts):
            t_lo, t_hi = int(starts.min()), int(starts.max())
            lo = t_lo if lo is None else min(lo, t_lo)
            hi = t_hi if hi is None else max(hi, t_hi)
    return (lo or 0, hi or 0) if lo is not None else (0, 0)


# -- decoding ---------------------------------------------------------------------------


def decode_batch(msg: pb.FlowBatch) -> tuple[FlowBatch, int]:
    """The FlowBatch and sequence number of ``msg``, validated (see the module doc)."""
    seq = int(msg.seq)
    label = f"FlowBatch {seq}"
    if seq <= 0:
        raise WireError("FlowBatch: seq must be > 0")
    if not msg.host:
        raise WireError(f"{label}: host is empty")
    if msg.interval_s <= 0:
        raise WireError(f"{label}: interval_s must be > 0")
    tables: dict[str, Columns] = {}
    for table, spec in TABLES:
        if not msg.HasField(table):
            raise WireError(f"{label}: {table}: table missing")
        tables[table] = _decode_table(label, table, spec, getattr(msg, table))
    batch = FlowBatch(msg.host, int(msg.interval_s), tables["flows"], tables["chains"],
                      tables["sizes"], tables["stats"], tables["names"])
    _check_span(label, msg, batch)
    return batch, seq


def _decode_table(label: str, table: str, spec: Mapping[str, npt.DTypeLike],
                  msg: pb.Table) -> Columns:
    n = int(msg.rows)
    out: Columns = {}
    for col in msg.columns:
        where = f"{label}: {table}.{col.name}"
        if col.name not in spec:
            raise WireError(f"{label}: {table}: unknown column {col.name!r}")
        if col.name in out:
            raise WireError(f"{where}: column sent twice")
        want = _WIRE_DTYPES[table][col.name]
        if col.dtype != want:
            raise WireError(f"{where}: dtype {col.dtype!r}, expected {want!r}")
        if want == STR_DTYPE:
            out[col.name] = _decode_strings(where, col, n)
            continue
        if col.strings:
            raise WireError(f"{where}: strings given for a {want} column")
        dt = np.dtype(want)
        if len(col.data) % dt.itemsize:
            raise WireError(f"{where}: {len(col.data)} bytes is not a multiple of the "
                            f"{dt.itemsize}-byte item size")
        values = np.frombuffer(col.data, dtype=dt)
        if len(values) != n:
            raise WireError(f"{where}: {len(values)} rows, table says {n}")
        out[col.name] = values
    missing = [name for name in spec if name not in out]
    if missing:
        raise WireError(f"{label}: {table}.{missing[0]}: column missing")
    return {name: out[name] for name in spec}


def _decode_strings(where: str, col: pb.Column, n: int) -> np.ndarray:
    if len(col.data) % _INDEX.itemsize:
        raise WireError(f"{where}: {len(col.data)} bytes is not a multiple of the "
                        f"{_INDEX.itemsize}-byte index size")
    index = np.frombuffer(col.data, dtype=_INDEX)
    if len(index) != n:
        raise WireError(f"{where}: {len(index)} rows, table says {n}")
    distinct = np.empty(len(col.strings), dtype=object)
    distinct[:] = list(col.strings)
    if n and int(index.max()) >= len(distinct):
        raise WireError(f"{where}: string index {int(index.max())} out of range "
                        f"({len(distinct)} strings)")
    values: np.ndarray = distinct[index] if n else np.empty(0, dtype=object)
    return values


def _check_span(label: str, msg: pb.FlowBatch, batch: FlowBatch) -> None:
    first, last = int(msg.first_start_ns), int(msg.last_start_ns)
    lo, hi = batch_span(batch)
    if any(nrows(getattr(batch, t)) for t, _ in TABLES) and (lo < first or hi > last):
        raise WireError(f"{label}: interval starts {lo}..{hi} lie outside "
                        f"first_start_ns..last_start_ns {first}..{last}")
    if first > last:
        raise WireError(f"{label}: first_start_ns {first} is after last_start_ns {last}")


# -- splitting --------------------------------------------------------------------------


def split_batch(batch: FlowBatch, max_rows: int) -> list[FlowBatch]:
    """``batch`` cut into batches of at most ``max_rows`` rows per table (row order kept).

    Piece ``i`` holds rows ``[i*max_rows, (i+1)*max_rows)`` of every table, so the pieces
    together hold exactly the rows of ``batch``. A batch that fits is returned as it is.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, not {max_rows}")
    longest = max(nrows(getattr(batch, t)) for t, _ in TABLES)
    if longest <= max_rows:
        return [batch]
    pieces = []
    for lo in range(0, longest, max_rows):
        cut = slice(lo, lo + max_rows)
        parts = {t: {k: v[cut] for k, v in getattr(batch, t).items()} for t, _ in TABLES}
        pieces.append(FlowBatch(batch.host, batch.interval_s, parts["flows"],
                                parts["chains"], parts["sizes"], parts["stats"],
                                parts["names"]))
    return pieces
