"""The store: buffered writes of sensor batches and SQL reads, on chdb or a server.

Component style: :class:`StoreConfig` holds every knob with a default; the
:class:`Store` constructor does nothing; :meth:`Store.start` connects, picks the
flavour and runs the migrations; :meth:`Store.stop` flushes and closes. A Store is a
context manager (``with open_store(path) as store: ...``).

Reads take SQL with plain table names (``SELECT sum(bytes) FROM flows``): the
connection's default database is the store's database. Render values with
:func:`~netwarden.collector.store.sql.quote` and the IP helpers (18.16 has no
server-side parameters).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from netwarden.sensor.records import FlowBatch

from . import ledger, migrations, retention
from .backend import Backend, Columns, Row
from .embedded import ChdbBackend
from .errors import StoreError
from .ledger import BatchMark
from .rows import BATCH_TABLES, WriteBuffer, batch_tables
from .schema import (
    FLAVOURS,
    Flavour,
    RetentionDays,
    Table,
    check_database_name,
    flavour_for_address_type,
    flavour_for_version,
)
from .server import SCHEME, ServerBackend, parse_url
from .sql import ident, quote

DEFAULT_DATABASE = "netwarden"


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """Settings of a store; every field has a default except the target.

    ``target`` is a ``clickhouse://`` URL (server) or a directory (embedded chdb).
    ``flavour`` forces the DDL flavour for *new* tables (tables that exist keep theirs);
    ``None`` picks it from the version.
    """

    target: str
    database: str = DEFAULT_DATABASE
    batch_rows: int = 100_000
    flush_seconds: float = 5.0
    retention: RetentionDays = dataclasses.field(default_factory=RetentionDays)
    flavour: Flavour | None = None
    connect_timeout_s: float = 10.0
    timeout_s: float = 600.0  # per query; DDL on 18.16 can be slow (see the ClickHouse notes)

    def __post_init__(self) -> None:
        if not self.target:
            raise StoreError("store target is empty: give a directory or a clickhouse:// URL")
        check_database_name(self.database)
        if self.batch_rows < 1:
            raise StoreError(f"store batch_rows must be >= 1, not {self.batch_rows}")
        if self.flush_seconds < 0:
            raise StoreError(f"store flush_seconds must be >= 0, not {self.flush_seconds}")
        if self.flavour is not None and self.flavour not in FLAVOURS:
            raise StoreError(f"store flavour must be one of {FLAVOURS}, not {self.flavour!r}")

    @property
    def is_server(self) -> bool:
        return self.target.startswith(SCHEME)


class Store:
    """Flow storage in one ClickHouse database. Thread-safe: calls are serialised."""

    def __init__(self, config: StoreConfig, *, clock: Callable[[], float] = time.monotonic,
                 backend: Backend | None = None) -> None:
        self.config = config
        self._clock = clock
        self._backend: Backend = backend or _make_backend(config)
        self._buffer = WriteBuffer(clock)
        self._lock = threading.RLock()
        self._started = False
        self.version = ""
        self.flavour: Flavour = config.flavour or "modern"
        self.inserts = 0  # insert statements sent (one per table per flush)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.config.database

    @property
    def target(self) -> str:
        return self._backend.target

    @property
    def started(self) -> bool:
        return self._started

    def start(self, *, migrate: bool = True) -> None:
        """Connect, pick the flavour, run the migrations. Idempotent.

        ``migrate=False`` is for readers: nothing is created, and a database without the
        ``flows`` table is an error (a typo in ``--database`` must not create one).
        """
        with self._lock:
            if self._started:
                return
            self._backend.connect()
            try:
                self.version = self._backend.version()
                existing = self._existing_flavour()
                if not migrate and existing is None:
                    raise StoreError(f"{self.target}: database {self.database!r} has no "
                                     "netwarden tables (nothing analysed into it yet?)")
                self.flavour = existing or self.config.flavour or \
                    flavour_for_version(self.version)
                if migrate:
                    self.migrate()
                self._backend.use(self.database)
            except BaseException:
                self._backend.close()
                raise
            self._started = True

    def stop(self, *, flush: bool = True) -> None:
        """Flush what is buffered and close. Idempotent; closes even if the flush fails.

        ``flush=False`` closes without inserting: buffered rows are discarded.
        """
        with self._lock:
            if not self._started:
                return
            try:
                if flush:
                    self.flush()
            finally:
                if not flush:
                    self._buffer = WriteBuffer(self._clock)
                self._started = False
                self._backend.close()

    def __enter__(self) -> Store:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _existing_flavour(self) -> Flavour | None:
        _, rows = self._backend.query(
            "SELECT type FROM system.columns WHERE database = "
            f"{quote(self.database)} AND table = 'flows' AND name = 'src_ip'")
        return flavour_for_address_type(str(rows[0][0])) if rows else None

    def _check_started(self) -> None:
        if not self._started:
            raise StoreError(f"{self.target}: store not started (call start())")

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the missing schema steps; return their names (``[]`` when up to date)."""
        with self._lock:
            return migrations.migrate(self._backend, self.flavour, self.database,
                                      self.config.retention)

    def migration_history(self) -> list[tuple[str, int]]:
        """``(step name, applied_at epoch)`` for every recorded step."""
        with self._lock:
            self._check_started()
            return migrations.recorded(self._backend, self.database)

    def expire(self, now: float | None = None) -> list[str]:
        """Legacy flavour: drop partitions older than the retention (``table:partition``).

        Modern tables expire by TTL, so this returns ``[]`` for them.
        """
        with self._lock:
            self._check_started()
            if self.flavour == "modern":
                return []
            return retention.expire(self._backend, self.database, self.config.retention,
                                    time.time() if now is None else now)

    def drop_database(self) -> None:
        """Drop the store's whole database (tests, resets). The store stays usable only
        after a new :meth:`migrate`."""
        with self._lock:
            self._check_started()
            self._backend.execute(f"DROP DATABASE IF EXISTS {ident(self.database)}")

    # -- writes ---------------------------------------------------------------------------

    def write(self, batch: FlowBatch, *, host: str | None = None, seq: int = 0) -> int:
        """Buffer ``batch`` (``host`` overrides ``batch.host``); flush when due.

        ``seq`` is the sensor's batch number, stored in every row's ``seq`` column (0 for
        rows that did not come from a sensor stream); see :mod:`.ledger`.

        A flush is due when ``batch_rows`` flow rows are buffered or ``flush_seconds``
        have passed since the first buffered row. Returns the flow rows inserted by this
        call (0 when everything stayed buffered).
        """
        tables = batch_tables(batch, host, seq)
        with self._lock:
            self._check_started()
            self._buffer.add(tables)
            return self.flush(force=False)

    def flush(self, *, force: bool = True) -> int:
        """Insert what is buffered (only if due when ``force`` is false); return flow rows."""
        with self._lock:
            if self._buffer.empty:
                return 0
            self._check_started()
            if not force and not self._buffer.due(self.config.batch_rows,
                                                  self.config.flush_seconds):
                return 0
            flow_rows = 0
            for table, _ in BATCH_TABLES:
                cols = self._buffer.take(table)
                if cols is None:
                    continue
                try:
                    self._backend.insert(self.database, table, cols)
                except BaseException:
                    self._buffer.restore(table, cols)
                    raise
                self.inserts += 1
                if table.name == "flows":
                    flow_rows = len(cols["host"])
            self._buffer.settle()
            return flow_rows

    def insert(self, table: Table, columns: Columns) -> None:
        """Insert rows into ``table`` at once, unbuffered (equal-length numpy columns,
        every column of the table): for tables the collector computes itself, such as
        ``policy_usage`` (see :mod:`netwarden.collector.policy`)."""
        with self._lock:
            self._check_started()
            if columns and len(next(iter(columns.values()))):
                self._backend.insert(self.database, table, columns)
                self.inserts += 1

    def discard_pending(self) -> None:
        """Forget the rows buffered and not inserted (after a failed flush whose batches
        will be sent again)."""
        with self._lock:
            self._buffer = WriteBuffer(self._clock)

    # -- the batch ledger (see ledger.py) -------------------------------------------------

    def record_batches(self, marks: Sequence[BatchMark]) -> None:
        """Write the ledger rows of batches whose rows are inserted (flush first)."""
        with self._lock:
            self._check_started()
            ledger.record(self._backend, self.database, marks)

    def stored_seq(self, host: str) -> int:
        """The highest sensor batch number stored for ``host`` (0 when none)."""
        with self._lock:
            self._check_started()
            return ledger.stored_seq(self._backend, host)

    def stored_seqs(self) -> dict[str, int]:
        """The highest sensor batch number stored, per host."""
        with self._lock:
            self._check_started()
            return ledger.stored_seqs(self._backend)

    def discard_unrecorded(self, host: str) -> dict[str, int]:
        """Delete ``host``'s rows of batches missing from the ledger (an interrupted
        store); return the rows found per table."""
        with self._lock:
            self._check_started()
            return ledger.discard_unrecorded(self._backend, self.database, host)

    def pending(self) -> dict[str, int]:
        """Rows buffered per table, not yet inserted."""
        with self._lock:
            return self._buffer.pending()

    # -- reads ----------------------------------------------------------------------------

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL, ``OPTIMIZE``, ``INSERT … SELECT``)."""
        with self._lock:
            self._check_started()
            self._backend.execute(sql)

    def query(self, sql: str) -> list[Row]:
        """Rows of a SELECT as tuples (value types: see :class:`~.backend.Backend`)."""
        return self.query_with_names(sql)[1]

    def query_with_names(self, sql: str) -> tuple[list[str], list[Row]]:
        """Column names and rows of a SELECT."""
        with self._lock:
            self._check_started()
            return self._backend.query(sql)

    def query_dicts(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a SELECT as ``{column: value}`` dicts."""
        names, rows = self.query_with_names(sql)
        return [dict(zip(names, row, strict=True)) for row in rows]


def _make_backend(config: StoreConfig) -> Backend:
    if config.is_server:
        return ServerBackend(config.target, connect_timeout_s=config.connect_timeout_s,
                             timeout_s=config.timeout_s)
    return ChdbBackend(config.target)


def open_store(target: str, *, database: str | None = None, **options: Any) -> Store:
    """A (not yet started) Store for ``target``.

    ``target`` starting with ``clickhouse://`` is a server URL, anything else a directory
    for chdb (created when started). The database is ``database``, else the URL's path,
    else ``netwarden``. ``options`` are other :class:`StoreConfig` fields; ``retention``
    may be a :class:`RetentionDays` or a ``{"raw": days, "rollup": days}`` dict.
    """
    if database is None and target.startswith(SCHEME):
        database = parse_url(target).database
    known = {f.name for f in dataclasses.fields(StoreConfig)} - {"target", "database"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise StoreError(f"unknown store option(s): {', '.join(unknown)}")
    ret = options.get("retention")
    if isinstance(ret, dict):
        options["retention"] = RetentionDays(**ret)
    config = StoreConfig(target=target, database=database or DEFAULT_DATABASE, **options)
    return Store(config)
