"""From a sensor's FlowBatch to the store's table columns, and the write buffer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from netwarden.sensor.records import FlowBatch

from .backend import Columns
from .errors import StoreError
from .schema import APP_NAMES, CAPTURE_STATS, FLOWS, PKT_SIZES, PROTO_CHAINS, Column, Table

NS_PER_S = 1_000_000_000

# (table, FlowBatch attribute) in insert order.
BATCH_TABLES: tuple[tuple[Table, str], ...] = (
    (FLOWS, "flows"), (PROTO_CHAINS, "chains"), (PKT_SIZES, "sizes"), (CAPTURE_STATS, "stats"),
    (APP_NAMES, "names"),
)


def _coerce(table: Table, column: Column, values: npt.ArrayLike, n: int) -> np.ndarray:
    where = f"{table.name}.{column.name}"
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise StoreError(f"{where}: expected {n} values, got shape {arr.shape}")
    if column.kind == "string":
        if arr.dtype != object:
            arr = arr.astype(object)
        return arr
    if column.kind == "address":
        if arr.dtype.kind != "S" or arr.dtype.itemsize > 16:
            raise StoreError(f"{where}: expected 16-byte addresses (dtype S16), got {arr.dtype}")
        return arr.astype("S16", copy=False)
    if arr.dtype.kind not in "iub":
        raise StoreError(f"{where}: expected integers, got dtype {arr.dtype}")
    return arr.astype(column.dtype, copy=False)


def table_columns(table: Table, data: Mapping[str, npt.ArrayLike], host: str,
                  interval_s: int, seq: int = 0) -> Columns:
    """Every column of ``table`` for one FlowBatch table, with host/ts/interval_s/seq added."""
    added = {"host", "ts", "interval_s", "seq"}
    expected = {c.name for c in table.columns} - added
    given = set(data)
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        detail = "; ".join(
            part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)}" if extra else "") if part)
        raise StoreError(f"{table.name}: columns do not match the store's: {detail}")
    n = len(np.asarray(data["start_ns"]))
    out: Columns = {}
    for column in table.columns:
        if column.name == "host":
            out["host"] = np.full(n, host, dtype=object)
        elif column.name == "interval_s":
            out["interval_s"] = np.full(n, interval_s, dtype=np.uint32)
        elif column.name == "seq":
            out["seq"] = np.full(n, seq, dtype=np.uint64)
        elif column.name == "ts":
            start = _coerce(table, table.column("start_ns"), data["start_ns"], n)
            out["ts"] = (start // NS_PER_S).astype(np.uint32)
        else:
            out[column.name] = _coerce(table, column, data[column.name], n)
    return out


def batch_tables(batch: FlowBatch, host: str | None = None, seq: int = 0) -> dict[str, Columns]:
    """The four tables of ``batch`` as store columns (``host`` overrides ``batch.host``;
    every row gets the sensor batch number ``seq``)."""
    name = batch.host if host is None else host
    if not name:
        raise StoreError("FlowBatch has no host name")
    if seq < 0:
        raise StoreError(f"FlowBatch from {name}: seq must be >= 0, not {seq}")
    if batch.interval_s <= 0:
        raise StoreError(f"FlowBatch from {name}: interval_s must be > 0, not {batch.interval_s}")
    return {
        table.name: table_columns(table, getattr(batch, attr), name, batch.interval_s, seq)
        for table, attr in BATCH_TABLES
    }


class WriteBuffer:
    """Store columns waiting for insertion, with the time the first of them arrived."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._parts: dict[str, list[Columns]] = {t.name: [] for t, _ in BATCH_TABLES}
        self.flow_rows = 0
        self.first_at: float | None = None

    def add(self, tables: Mapping[str, Columns]) -> None:
        for name, cols in tables.items():
            if cols and len(next(iter(cols.values()))):
                self._parts[name].append(cols)
        self.flow_rows += len(tables["flows"]["host"])
        if self.first_at is None and any(self._parts.values()):
            self.first_at = self._clock()

    @property
    def empty(self) -> bool:
        return not any(self._parts.values())

    def due(self, batch_rows: int, flush_seconds: float) -> bool:
        if self.empty:
            return False
        if self.flow_rows >= batch_rows:
            return True
        return self.first_at is not None and self._clock() - self.first_at >= flush_seconds

    def pending(self) -> dict[str, int]:
        """Rows buffered per table."""
        return {name: sum(len(p["host"]) for p in parts) for name, parts in self._parts.items()}

    def take(self, table: Table) -> Columns | None:
        """Remove and return everything buffered for ``table`` (None when nothing is)."""
        parts = self._parts[table.name]
        if not parts:
            return None
        self._parts[table.name] = []
        if table.name == "flows":
            self.flow_rows = 0
        if len(parts) == 1:
            return parts[0]
        return {c.name: np.concatenate([p[c.name] for p in parts]) for c in table.columns}

    def restore(self, table: Table, cols: Columns) -> None:
        """Put back what :meth:`take` returned (the insert failed)."""
        self._parts[table.name].insert(0, cols)
        if table.name == "flows":
            self.flow_rows += len(cols["host"])

    def settle(self) -> None:
        """Reset the timer once everything is written."""
        if self.empty:
            self.first_at = None
