"""The store's tables and views, and their DDL in two flavours.

Column lists come from ``sensor/records.py`` (the flow-record contract) plus the columns
the store adds (``host``, ``ts``, ``interval_s``, and ``seq`` last: the sequence number of
the sensor batch a row came in, 0 for rows written otherwise, see ``ledger.py``); types are derived from the numpy dtype
through one type map per flavour, so nothing is listed twice.

* ``legacy`` (ClickHouse below 20.3, e.g. Debian's 18.16): addresses ``FixedString(16)``,
  plain ``String``, no codecs, no TTL, no skip indexes. Retention drops partitions
  (see ``retention.py``).
* ``modern`` (20.3 and later, chdb): addresses ``IPv6 CODEC(ZSTD(1))`` with bloom-filter
  indexes on ``flows``, ``LowCardinality(String)`` for host/app/path/source, codecs on
  times and counters, ``TTL ts + toIntervalDay(N)`` with ``ttl_only_drop_parts = 1``.

Column names are the same in both flavours, so one query text runs on either.

``ts`` is ``DateTime('UTC')``: the interval start in epoch seconds. The explicit zone
makes partitions (``toYYYYMMDD``) and rollup buckets (``toStartOfHour``) UTC whatever
the server's timezone; on the wire and in Arrow it is the same UInt32.

Rollups are fed by materialized views whose SELECTs are flat, over physical columns only
(18.16 runs an MV's SELECT on the inserted block: ALIAS columns and subqueries fail the
INSERT into the source table). Queries re-aggregate rollups with ``sum()`` (and
``minMerge(order)`` for ``chains_1h``): rows merge eventually, not at insert.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    NAME_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
)

from .errors import StoreError
from .sql import ident

Flavour = Literal["legacy", "modern"]
FLAVOURS: Final[tuple[Flavour, ...]] = ("legacy", "modern")
MODERN_SINCE: Final = (20, 3)

# Column kinds: how a column is typed beyond its numpy dtype.
Kind = Literal["number", "address", "string", "datetime", "min_state"]
# Modern-only compression roles.
Codec = Literal["", "time", "nanos", "counter", "address"]

LOW_CARDINALITY: Final = frozenset({"host", "app", "app_source", "process", "path", "source"})
COUNTERS: Final = frozenset({
    "packets", "bytes", "frames", "ttl_sum", "ttl_sq", "stream", "first_frame", "dropped",
    "not_dissected", "seq", "local_bytes", "process_bytes", "bytes_in", "bytes_out", "packets_in", "packets_out", "flows",
})
NANOS: Final = frozenset({"start_ns", "first_seen", "last_seen"})

_INT_TYPES: Final[Mapping[str, str]] = {
    "int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64",
    "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
    "float32": "Float32", "float64": "Float64",
}
_CODECS: Final[Mapping[str, str]] = {
    "time": "CODEC(DoubleDelta, LZ4)",
    "nanos": "CODEC(Delta, ZSTD(1))",
    "counter": "CODEC(T64, LZ4)",
    "address": "CODEC(ZSTD(1))",
}


@dataclasses.dataclass(frozen=True)
class Column:
    """One stored column: its name, numpy dtype (for inserts) and kind."""

    name: str
    dtype: npt.DTypeLike
    kind: Kind = "number"

    @property
    def codec(self) -> Codec:
        if self.kind == "datetime":
            return "time"
        if self.kind == "address":
            return "address"
        if self.name in NANOS:
            return "nanos"
        if self.name in COUNTERS and self.kind == "number":
            return "counter"
        return ""

    def type_sql(self, flavour: Flavour) -> str:
        """The ClickHouse type of this column in ``flavour`` (no codec)."""
        if self.kind == "address":
            return "IPv6" if flavour == "modern" else "FixedString(16)"
        if self.kind == "string":
            if flavour == "modern" and self.name in LOW_CARDINALITY:
                return "LowCardinality(String)"
            return "String"
        if self.kind == "datetime":
            return "DateTime('UTC')"
        base = _INT_TYPES.get(np.dtype(self.dtype).name)
        if base is None:
            raise StoreError(f"column {self.name}: no ClickHouse type for dtype {self.dtype!r}")
        if self.kind == "min_state":
            return f"AggregateFunction(min, {base})"
        return base

    def ddl(self, flavour: Flavour) -> str:
        text = f"{ident(self.name)} {self.type_sql(flavour)}"
        if flavour == "modern" and self.codec:
            text += " " + _CODECS[self.codec]
        return text


def columns_from_spec(spec: Mapping[str, npt.DTypeLike]) -> tuple[Column, ...]:
    """Store columns for a records.py spec: S16 → address, object → string."""
    out = []
    for name, dt in spec.items():
        if dt is object:
            out.append(Column(name, object, "string"))
        elif np.dtype(dt) == np.dtype("S16"):
            out.append(Column(name, "S16", "address"))
        else:
            out.append(Column(name, dt))
    return tuple(out)


HOST: Final = Column("host", object, "string")
TS: Final = Column("ts", np.uint32, "datetime")
INTERVAL: Final = Column("interval_s", np.uint32)
SEQ: Final = Column("seq", np.uint64)

# "none": never expires (the batch ledger: forgetting it would let a batch be stored twice)
Retention = Literal["raw", "rollup", "none"]


@dataclasses.dataclass(frozen=True)
class Table:
    """A MergeTree-family table."""

    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    partition: Literal["day", "month"]
    retention: Retention
    sum_columns: tuple[str, ...] = ()  # SummingMergeTree when set
    address_indexes: tuple[str, ...] = ()  # modern: bloom-filter skip indexes
    primary_key: tuple[str, ...] = ("host", "ts")

    @property
    def engine(self) -> str:
        if self.sum_columns:
            return f"SummingMergeTree(({', '.join(ident(c) for c in self.sum_columns)}))"
        return "MergeTree()"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise StoreError(f"table {self.name} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclasses.dataclass(frozen=True)
class View:
    """A materialized view ``name`` feeding ``target`` from inserts into ``source``."""

    name: str
    source: str
    target: str
    select: str  # flat SELECT over {source}'s physical columns; "{source}" is substituted
    fill: bool = False  # a newly created target is filled from the source's rows


_FLOW_COLS: Final = columns_from_spec(FLOW_COLUMNS)
_CHAIN_COLS: Final = columns_from_spec(CHAIN_COLUMNS)
_SIZE_COLS: Final = columns_from_spec(SIZE_COLUMNS)
_STAT_COLS: Final = columns_from_spec(STAT_COLUMNS)
_NAME_COLS: Final = columns_from_spec(NAME_COLUMNS)


def _pick(cols: tuple[Column, ...], *names: str) -> tuple[Column, ...]:
    by_name = {c.name: c for c in cols}
    return tuple(by_name[n] for n in names)


def _u64(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, np.uint64) for n in names)


# Raw tables, in insert order. Every one has host, ts and the exact start_ns.
FLOWS: Final = Table(
    "flows", (HOST, TS, INTERVAL, *_FLOW_COLS, SEQ),
    order_by=("host", "ts", "direction", "ip_proto", "src_ip", "dst_ip"),
    partition="day", retention="raw", address_indexes=("src_ip", "dst_ip"),
)
PROTO_CHAINS: Final = Table(
    "proto_chains", (HOST, TS, *_CHAIN_COLS, SEQ),
    order_by=("host", "ts", "path"), partition="day", retention="raw",
)
PKT_SIZES: Final = Table(
    "pkt_sizes", (HOST, TS, *_SIZE_COLS, SEQ),
    order_by=("host", "ts", "direction", "frame_len"), partition="day", retention="raw",
)
CAPTURE_STATS: Final = Table(
    "capture_stats", (HOST, TS, INTERVAL, *_STAT_COLS, SEQ),
    order_by=("host", "ts", "source"), partition="day", retention="raw",
)
APP_NAMES: Final = Table(
    "app_names", (HOST, TS, *_NAME_COLS, SEQ),
    order_by=("host", "ts", "source", "name"), partition="day", retention="raw",
)

# Rollups (SummingMergeTree with explicit sum tuples), monthly partitions.
USAGE_15M: Final = Table(
    "usage_15m", (HOST, TS, *_u64("bytes_in", "bytes_out", "packets_in", "packets_out", "flows")),
    order_by=("host", "ts"), partition="month", retention="rollup",
    sum_columns=("bytes_in", "bytes_out", "packets_in", "packets_out", "flows"),
)
TALKERS_1H: Final = Table(
    "talkers_1h",
    (HOST, TS, *_pick(_FLOW_COLS, "ip_version", "ip_proto", "src_ip", "dst_ip"),
     *_u64("bytes", "packets")),
    order_by=("host", "ts", "ip_version", "ip_proto", "src_ip", "dst_ip"),
    partition="month", retention="rollup", sum_columns=("bytes", "packets"),
)
# ``order`` (first-seen sort key) must be a minimum, not a sum: it is an
# AggregateFunction(min, UInt64) column, which SummingMergeTree merges with its function.
# Read it with minMerge(`order`).
CHAINS_1H: Final = Table(
    "chains_1h",
    (HOST, TS, *_pick(_CHAIN_COLS, "path", "frames", "bytes"),
     Column("order", CHAIN_COLUMNS["order"], "min_state")),
    order_by=("host", "ts", "path"), partition="month", retention="rollup",
    sum_columns=("frames", "bytes"),
)
SIZES_1H: Final = Table(
    "sizes_1h", (HOST, TS, *_pick(_SIZE_COLS, "direction", "frame_len", "packets")),
    order_by=("host", "ts", "direction", "frame_len"), partition="month", retention="rollup",
    sum_columns=("packets",),
)

# The batch ledger: one row per sensor batch stored, written after the batch's rows (see
# ledger.py). ``ts`` is when the collector stored it; the row counts are per raw table.
SENSOR_BATCHES: Final = Table(
    "sensor_batches",
    (HOST, SEQ, TS, Column("first_start_ns", np.int64), Column("last_start_ns", np.int64),
     *_u64("flow_rows", "chain_rows", "size_rows", "stat_rows", "name_rows")),
    order_by=("host", "seq"), primary_key=("host", "seq"), partition="month", retention="none",
)

# Data-plan policies (collector/policy/). ``policy_usage``: bytes of the records a policy
# counts per host and minute, written by the collector at ingest (not a view: matching
# needs CIDRs, port ranges and app sets). ``definition`` is a digest of the policy's
# what/exempt, so a changed policy starts new rows. ``policy_decisions`` (the audit) and
# ``policy_alerts`` (tier crossings): one row per event; ``hosts`` is a comma-separated
# sorted list, ``period_end`` 0 for rolling windows. ``policy_usage`` is sorted by ``ts``
# before ``host``: evaluation reads a period's edge minutes of every host, which are then
# one contiguous range (host first, they would cost a granule per host). Stores created
# with (…, host, ts) keep that order: the same sums, read slower.
POLICY_USAGE: Final = Table(
    "policy_usage",
    (Column("policy", object, "string"), Column("definition", object, "string"), HOST, TS,
     *_u64("bytes", "packets")),
    order_by=("policy", "definition", "ts", "host"),
    primary_key=("policy", "definition", "ts", "host"),
    partition="month", retention="rollup", sum_columns=("bytes", "packets"),
)
# Coarser rollups of ``policy_usage`` (same key columns; ``ts`` = the UTC hour or UTC day),
# fed by views from it: evaluation reads whole UTC days from ``policy_usage_1d``, whole
# hours at a period's edges from ``policy_usage_1h`` and the rest from ``policy_usage``
# (collector/policy/usage.py), a few thousand rows whatever the period's length.
POLICY_USAGE_1H: Final = dataclasses.replace(POLICY_USAGE, name="policy_usage_1h")
POLICY_USAGE_1D: Final = dataclasses.replace(POLICY_USAGE, name="policy_usage_1d")
_DECISION_COLS: Final = (
    TS, Column("policy", object, "string"), Column("scope", object, "string"),
    Column("hosts", object, "string"), *_u64("usage", "quota"),
    Column("percent", np.float64), Column("threshold", np.float64),
    Column("tier", np.uint8), Column("action", object, "string"),
    Column("period_end", np.uint32, "datetime"),
)
POLICY_DECISIONS: Final = Table(
    "policy_decisions", (*_DECISION_COLS, Column("version", object, "string")),
    order_by=("policy", "ts", "scope"), primary_key=("policy", "ts"),
    partition="month", retention="rollup",
)
POLICY_ALERTS: Final = Table(
    "policy_alerts", (*_DECISION_COLS, Column("message", object, "string")),
    order_by=("policy", "ts", "scope"), primary_key=("policy", "ts"),
    partition="month", retention="rollup",
)
# ``enforcement_applied``: every AppliedState a sensor reported (append-only audit of the
# enforcement loop, collector/policy/push.py): the version and ruleset in force, the
# sensor's mode, how many rules are in force, and the refused/drift lines ("\n"-joined).
ENFORCEMENT_APPLIED: Final = Table(
    "enforcement_applied",
    (TS, HOST, *_u64("version"), Column("ruleset_id", object, "string"),
     Column("mode", object, "string"), Column("rules", np.uint32),
     Column("refused", object, "string"), Column("drift", object, "string"),
     Column("error", object, "string")),
    order_by=("host", "ts"), primary_key=("host", "ts"),
    partition="month", retention="rollup",
)
POLICY_TABLES: Final = (POLICY_USAGE, POLICY_USAGE_1H, POLICY_USAGE_1D, POLICY_DECISIONS,
                        POLICY_ALERTS, ENFORCEMENT_APPLIED)

RAW_TABLES: Final = (FLOWS, PROTO_CHAINS, PKT_SIZES, CAPTURE_STATS, APP_NAMES)
ROLLUP_TABLES: Final = (USAGE_15M, TALKERS_1H, CHAINS_1H, SIZES_1H)
TABLES: Final = (*RAW_TABLES, *ROLLUP_TABLES, SENSOR_BATCHES, *POLICY_TABLES)
TABLES_BY_NAME: Final = {t.name: t for t in TABLES}

# Direction 1 (in) counts as "in"; everything else (0 other, 2 out, 3 local) counts as
# "out", so bytes_in + bytes_out = bytes. Only layer 0 (the outermost IP header) counts.
VIEWS: Final = (
    View("usage_15m_mv", "flows", "usage_15m",
         "SELECT host, toStartOfFifteenMinutes(ts) AS ts,"
         " sum(if(direction = 1, bytes, 0)) AS bytes_in,"
         " sum(if(direction = 1, 0, bytes)) AS bytes_out,"
         " sum(if(direction = 1, packets, 0)) AS packets_in,"
         " sum(if(direction = 1, 0, packets)) AS packets_out,"
         " count() AS flows"
         " FROM {source} WHERE layer = 0 GROUP BY host, ts"),
    View("talkers_1h_mv", "flows", "talkers_1h",
         "SELECT host, toStartOfHour(ts) AS ts, ip_version, ip_proto, src_ip, dst_ip,"
         " sum(bytes) AS bytes, sum(packets) AS packets"
         " FROM {source} WHERE layer = 0"
         " GROUP BY host, ts, ip_version, ip_proto, src_ip, dst_ip"),
    View("chains_1h_mv", "proto_chains", "chains_1h",
         "SELECT host, toStartOfHour(ts) AS ts, path,"
         " sum(frames) AS frames, sum(bytes) AS bytes, minState(`order`) AS `order`"
         " FROM {source} GROUP BY host, ts, path"),
    View("sizes_1h_mv", "pkt_sizes", "sizes_1h",
         "SELECT host, toStartOfHour(ts) AS ts, direction, frame_len, sum(packets) AS packets"
         " FROM {source} GROUP BY host, ts, direction, frame_len"),
    # ``ts`` is DateTime('UTC'): toStartOfHour / toStartOfDay cut UTC hours and days.
    # ``fill``: a target created after its source already has rows is filled from them
    # (a store upgraded to these rollups keeps reading the usage it already had).
    View("policy_usage_1h_mv", "policy_usage", "policy_usage_1h",
         "SELECT policy, definition, host, toStartOfHour(ts) AS ts,"
         " sum(bytes) AS bytes, sum(packets) AS packets"
         " FROM {source} GROUP BY policy, definition, host, ts", fill=True),
    View("policy_usage_1d_mv", "policy_usage", "policy_usage_1d",
         "SELECT policy, definition, host, toStartOfDay(ts) AS ts,"
         " sum(bytes) AS bytes, sum(packets) AS packets"
         " FROM {source} GROUP BY policy, definition, host, ts", fill=True),
)

MIGRATIONS_TABLE: Final = "schema_migrations"


@dataclasses.dataclass(frozen=True)
class RetentionDays:
    """Days to keep raw and rollup rows; 0 keeps them forever (the default)."""

    raw: int = 0
    rollup: int = 0

    def __post_init__(self) -> None:
        for name in ("raw", "rollup"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise StoreError(f"retention {name}: days must be an integer >= 0, not {value!r}")

    def days(self, table: Table) -> int:
        if table.retention == "none":
            return 0
        return self.raw if table.retention == "raw" else self.rollup


def parse_version(version: str) -> tuple[int, ...]:
    """``'18.16.1'`` → ``(18, 16, 1)``; trailing non-numeric parts are ignored."""
    parts: list[int] = []
    for piece in version.strip().split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise StoreError(f"cannot parse ClickHouse version {version!r}")
    return tuple(parts)


def flavour_for_version(version: str) -> Flavour:
    """``legacy`` below 20.3, ``modern`` from 20.3."""
    return "modern" if parse_version(version)[:2] >= MODERN_SINCE else "legacy"


def flavour_for_address_type(type_sql: str) -> Flavour:
    """The flavour a table was created with, from the type of ``flows.src_ip``."""
    if "IPv6" in type_sql:
        return "modern"
    if "FixedString(16)" in type_sql:
        return "legacy"
    raise StoreError(f"flows.src_ip has unexpected type {type_sql!r}")


def _keys(names: tuple[str, ...]) -> str:
    return "(" + ", ".join(ident(n) for n in names) + ")"


def create_table_sql(
    table: Table, flavour: Flavour, database: str, retention: RetentionDays | None = None,
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` in ``flavour``."""
    lines = [f"    {c.ddl(flavour)}" for c in table.columns]
    if flavour == "modern":
        for name in table.address_indexes:
            lines.append(f"    INDEX {ident(name + '_bf')} {ident(name)} "
                         "TYPE bloom_filter(0.001) GRANULARITY 4")
    part = "toYYYYMMDD(ts)" if table.partition == "day" else "toYYYYMM(ts)"
    sql = (
        f"CREATE TABLE IF NOT EXISTS {ident(database)}.{ident(table.name)}\n(\n"
        + ",\n".join(lines)
        + f"\n)\nENGINE = {table.engine}\nPARTITION BY {part}\n"
        f"ORDER BY {_keys(table.order_by)}\nPRIMARY KEY {_keys(table.primary_key)}"
    )
    settings = ["index_granularity = 8192"]
    days = (retention or RetentionDays()).days(table)
    if flavour == "modern" and days > 0:
        sql += f"\nTTL ts + toIntervalDay({days})"
        settings.append("ttl_only_drop_parts = 1")
    return sql + "\nSETTINGS " + ", ".join(settings)


def create_view_sql(view: View, database: str) -> str:
    """``CREATE MATERIALIZED VIEW IF NOT EXISTS … TO …`` for ``view``."""
    db = ident(database)
    select = view.select.format(source=f"{db}.{ident(view.source)}")
    return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{ident(view.name)} "
            f"TO {db}.{ident(view.target)} AS {select}")


def fill_target_sql(view: View, database: str) -> str:
    """``INSERT INTO target SELECT …``: ``view``'s SELECT over every row of its source
    (run when the target is created, before the view: see ``migrations.py``)."""
    db = ident(database)
    names = ", ".join(ident(c) for c in TABLES_BY_NAME[view.target].names)
    select = view.select.format(source=f"{db}.{ident(view.source)}")
    return f"INSERT INTO {db}.{ident(view.target)} ({names}) {select}"


def add_column_sql(table: Table, column: Column, after: str | None, flavour: Flavour,
                   database: str) -> str:
    """``ALTER TABLE … ADD COLUMN`` (18.16 has no IF NOT EXISTS: check system.columns first)."""
    sql = f"ALTER TABLE {ident(database)}.{ident(table.name)} ADD COLUMN {column.ddl(flavour)}"
    return sql + (f" AFTER {ident(after)}" if after else "")


def create_migrations_table_sql(database: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {ident(database)}.{ident(MIGRATIONS_TABLE)} "
            "(name String, applied_at DateTime('UTC')) "
            "ENGINE = MergeTree() ORDER BY (name, applied_at)")


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {ident(database)}"


def render_schema(flavour: Flavour, database: str = "netwarden",
                  retention: RetentionDays | None = None) -> list[str]:
    """All DDL statements for a fresh database, in order (for docs and tests)."""
    return (
        [create_database_sql(database), create_migrations_table_sql(database)]
        + [create_table_sql(t, flavour, database, retention) for t in TABLES]
        + [create_view_sql(v, database) for v in VIEWS]
    )


def check_database_name(database: str) -> str:
    """Database names are plain identifiers (they appear in file paths and URLs)."""
    if not database or not database.replace("_", "a").isalnum() or not database.isascii():
        raise StoreError(f"invalid database name {database!r}: use letters, digits and _")
    return database
