"""Retention for the legacy flavour: drop whole partitions older than the retention.

Modern tables carry ``TTL ts + toIntervalDay(N)`` with ``ttl_only_drop_parts = 1`` and
need nothing here. 18.16 has no TTL, so :func:`expire` lists the active partitions in
``system.parts`` and drops those whose whole day (raw tables) or month (rollups) ended
more than N days ago: the same rows a TTL would have removed, partition by partition.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable

from .backend import Backend
from .errors import StoreError
from .schema import TABLES_BY_NAME, RetentionDays, Table
from .sql import ident, quote

DAY_S = 86_400


def partition_end(table: Table, partition: str) -> int:
    """Epoch second at which ``partition`` (``YYYYMMDD`` or ``YYYYMM``, UTC) ends."""
    text = partition.strip("'")
    try:
        if table.partition == "day" and len(text) == 8 and text.isdigit():
            start = dt.datetime(int(text[:4]), int(text[4:6]), int(text[6:]), tzinfo=dt.UTC)
            return int(start.timestamp()) + DAY_S
        if table.partition == "month" and len(text) == 6 and text.isdigit():
            year, month = int(text[:4]), int(text[4:])
            days = calendar.monthrange(year, month)[1]
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            return int(start.timestamp()) + days * DAY_S
    except ValueError:
        pass
    raise StoreError(f"table {table.name}: unexpected partition {partition!r}")


def partitions_to_drop(
    partitions: Iterable[tuple[str, str]], retention: RetentionDays, now: float,
) -> list[tuple[str, str]]:
    """The ``(table, partition)`` pairs whose every row is older than the retention.

    Tables with retention 0 (keep forever) and tables the store does not own are kept.
    """
    out = []
    for table_name, partition in partitions:
        table = TABLES_BY_NAME.get(table_name)
        if table is None:
            continue
        days = retention.days(table)
        if days <= 0:
            continue
        if partition_end(table, partition) <= now - days * DAY_S:
            out.append((table_name, partition))
    return sorted(set(out))


def expire(backend: Backend, database: str, retention: RetentionDays, now: float) -> list[str]:
    """Drop expired partitions; return them as ``table:partition``."""
    if retention.raw <= 0 and retention.rollup <= 0:
        return []
    _, rows = backend.query(
        f"SELECT DISTINCT table, partition FROM system.parts "
        f"WHERE database = {quote(database)} AND active")
    dropped = []
    for table_name, partition in partitions_to_drop(
            ((str(t), str(p)) for t, p in rows), retention, now):
        backend.execute(f"ALTER TABLE {ident(database)}.{ident(table_name)} "
                        f"DROP PARTITION {partition}")
        dropped.append(f"{table_name}:{partition}")
    return dropped
