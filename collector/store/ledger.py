"""The batch ledger: which sensor batches the store holds, so each is stored exactly once.

A sensor numbers its batches 1, 2, 3... per host. The collector stores a batch in two
steps: the batch's rows go into the raw tables (``flows``, ``proto_chains``,
``pkt_sizes``, ``capture_stats``), each row carrying the batch number in its ``seq``
column; then one row per batch goes into ``sensor_batches`` (the ledger). A batch is
*stored* when, and only when, its ledger row exists: the highest ``seq`` in the ledger
for a host (:func:`stored_seq`) is what the collector acknowledges.

ClickHouse has no transactions, so a collector killed between the two steps (or in the
middle of an insert) leaves rows whose batch is not in the ledger. Such rows have
``seq > stored_seq(host)``, since batches are stored in order; :func:`discard_unrecorded`
deletes them (``ALTER TABLE … DELETE``, waited for) before the collector accepts that
host's batches again, and the sensor then resends them. Every raw row is therefore
counted exactly once whatever the instant of a crash. The rollups fed by materialized
views are not part of this guarantee: rows deleted this way stay counted in them (the
reports read the raw tables).

Rows written without a sensor batch (``netwarden analyze``) have ``seq = 0`` and are
never touched. The ledger never expires (retention ``none``): forgetting a batch would
let a resend store it twice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from netwarden.sensor.records import FlowBatch, nrows

from .backend import Backend, Columns
from .errors import StoreError
from .schema import RAW_TABLES, SENSOR_BATCHES
from .sql import ident, quote

MUTATION_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True)
class BatchMark:
    """The ledger row of one stored sensor batch."""

    host: str
    seq: int
    first_start_ns: int = 0
    last_start_ns: int = 0
    flow_rows: int = 0
    chain_rows: int = 0
    size_rows: int = 0
    stat_rows: int = 0
    name_rows: int = 0

    @classmethod
    def of(cls, batch: FlowBatch, seq: int, host: str | None = None) -> BatchMark:
        starts = [np.asarray(t["start_ns"]) for t in
                  (batch.flows, batch.chains, batch.sizes, batch.stats, batch.names)
                  if nrows(t)]
        first = min(int(s.min()) for s in starts) if starts else 0
        last = max(int(s.max()) for s in starts) if starts else 0
        return cls(host or batch.host, seq, first, last, nrows(batch.flows),
                   nrows(batch.chains), nrows(batch.sizes), nrows(batch.stats),
                   nrows(batch.names))


def stored_seq(backend: Backend, host: str) -> int:
    """The highest batch number stored for ``host`` (0 when none)."""
    _, rows = backend.query(
        f"SELECT max(seq) AS stored FROM {ident(SENSOR_BATCHES.name)} WHERE host = {quote(host)}")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def stored_seqs(backend: Backend) -> dict[str, int]:
    """The highest batch number stored per host."""
    _, rows = backend.query(
        f"SELECT host, max(seq) AS stored FROM {ident(SENSOR_BATCHES.name)} GROUP BY host")
    return {str(h): int(s) for h, s in rows}


def unrecorded(backend: Backend, host: str, after: int) -> dict[str, int]:
    """Rows of ``host`` with ``seq > after`` per raw table (only tables that have some)."""
    parts = [f"SELECT {quote(t.name)} AS table_name, count() AS n FROM {ident(t.name)} "
             f"WHERE host = {quote(host)} AND seq > {int(after)}" for t in RAW_TABLES]
    _, rows = backend.query(" UNION ALL ".join(parts))
    return {str(t): int(n) for t, n in rows if int(n)}


def discard_unrecorded(backend: Backend, database: str, host: str,
                       timeout_s: float = MUTATION_TIMEOUT_S) -> dict[str, int]:
    """Delete the rows of ``host`` whose batch is not in the ledger; return what was found.

    Waits until the deletions are done (mutations are asynchronous on 18.16) and checks
    that nothing is left.
    """
    after = stored_seq(backend, host)
    found = unrecorded(backend, host, after)
    if not found:
        return {}
    for table in found:
        backend.execute(f"ALTER TABLE {ident(database)}.{ident(table)} DELETE "
                        f"WHERE host = {quote(host)} AND seq > {after}")
    _wait_mutations(backend, database, list(found), timeout_s)
    left = unrecorded(backend, host, after)
    if left:
        detail = ", ".join(f"{t}: {n}" for t, n in sorted(left.items()))
        raise StoreError(f"rows of unrecorded batches of {host!r} remain after deleting ({detail})")
    return found


def _wait_mutations(backend: Backend, database: str, tables: list[str],
                    timeout_s: float) -> None:
    names = ", ".join(quote(t) for t in tables)
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        _, rows = backend.query(
            "SELECT count() AS pending FROM system.mutations WHERE database = "
            f"{quote(database)} AND table IN ({names}) AND is_done = 0")
        if not rows or not int(rows[0][0]):
            return
        if time.monotonic() > deadline:
            raise StoreError(f"deleting rows of unrecorded batches in {', '.join(tables)} did "
                             f"not finish within {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def record(backend: Backend, database: str, marks: Sequence[BatchMark],
           now_s: int | None = None) -> None:
    """Write the ledger rows of ``marks`` (one insert)."""
    if not marks:
        return
    ts = int(time.time()) if now_s is None else now_s
    n = len(marks)
    cols: Columns = {
        "host": np.array([m.host for m in marks], dtype=object),
        "seq": np.array([m.seq for m in marks], dtype=np.uint64),
        "ts": np.full(n, ts, dtype=np.uint32),
    }
    for name in ("first_start_ns", "last_start_ns"):
        cols[name] = np.array([getattr(m, name) for m in marks], dtype=np.int64)
    for name in ("flow_rows", "chain_rows", "size_rows", "stat_rows", "name_rows"):
        cols[name] = np.array([getattr(m, name) for m in marks], dtype=np.uint64)
    backend.insert(database, SENSOR_BATCHES, cols)
