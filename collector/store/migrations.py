"""Schema migrations: an ordered list of named, idempotent steps.

Each step looks at the real state (``system.databases``, ``system.tables``,
``system.columns``) and applies itself only when something is missing, so a
half-applied schema (a table dropped by hand, a crash between two steps) is repaired.
Applied steps are recorded in ``schema_migrations (name, applied_at)``; the record is a
history, the real state decides.

Step names: ``create_database``, ``create_table_schema_migrations``,
``create_table_<table>`` (also adds columns a newer records.py has and the table lacks),
``create_view_<view>``.

A table that is the target of a ``fill`` view (the ``policy_usage`` rollups), created
when its source already exists, is filled from the source's rows right after it is
created (its view comes later in the steps; migrations run before the store takes
writes).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .backend import Backend
from .errors import StoreError
from .schema import (
    MIGRATIONS_TABLE,
    TABLES,
    VIEWS,
    Flavour,
    RetentionDays,
    Table,
    View,
    add_column_sql,
    create_database_sql,
    create_migrations_table_sql,
    create_table_sql,
    create_view_sql,
    fill_target_sql,
)
from .sql import ident, quote


@dataclasses.dataclass
class State:
    """What exists in the database right now."""

    database_exists: bool
    tables: dict[str, str]  # name -> engine
    columns: dict[str, list[str]]  # table -> column names, in order

    @classmethod
    def read(cls, backend: Backend, database: str) -> State:
        db = quote(database)
        _, rows = backend.query(f"SELECT name FROM system.databases WHERE name = {db}")
        if not rows:
            return cls(False, {}, {})
        _, rows = backend.query(f"SELECT name, engine FROM system.tables WHERE database = {db}")
        tables = {str(n): str(e) for n, e in rows}
        _, rows = backend.query(
            f"SELECT table, name FROM system.columns WHERE database = {db}")
        columns: dict[str, list[str]] = {}
        for table, name in rows:
            columns.setdefault(str(table), []).append(str(name))
        return cls(True, tables, columns)


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    needed: Callable[[State], bool]
    apply: Callable[[Backend], None]


def _table_step(table: Table, flavour: Flavour, database: str,
                retention: RetentionDays) -> Step:
    def missing_columns(state: State) -> list[int]:
        have = set(state.columns.get(table.name, []))
        return [i for i, c in enumerate(table.columns) if c.name not in have]

    def needed(state: State) -> bool:
        return table.name not in state.tables or bool(missing_columns(state))

    def apply(backend: Backend) -> None:
        state = State.read(backend, database)
        if table.name not in state.tables:
            backend.execute(create_table_sql(table, flavour, database, retention))
            for view in VIEWS:  # a rollup created after its source has rows: fill it
                if view.fill and view.target == table.name and view.source in state.tables:
                    backend.execute(fill_target_sql(view, database))
            return
        for i in missing_columns(state):
            after = table.columns[i - 1].name if i > 0 else None
            backend.execute(add_column_sql(table, table.columns[i], after, flavour, database))

    return Step(f"create_table_{table.name}", needed, apply)


def _view_step(view: View, database: str) -> Step:
    return Step(
        f"create_view_{view.name}",
        lambda state: view.name not in state.tables,
        lambda backend: backend.execute(create_view_sql(view, database)),
    )


def steps(flavour: Flavour, database: str, retention: RetentionDays | None = None) -> list[Step]:
    """Every step, in order: database, migrations table, tables, views."""
    retention = retention or RetentionDays()
    out = [
        Step("create_database", lambda s: not s.database_exists,
             lambda b: b.execute(create_database_sql(database))),
        Step(f"create_table_{MIGRATIONS_TABLE}", lambda s: MIGRATIONS_TABLE not in s.tables,
             lambda b: b.execute(create_migrations_table_sql(database))),
    ]
    out += [_table_step(t, flavour, database, retention) for t in TABLES]
    out += [_view_step(v, database) for v in VIEWS]
    return out


def migrate(backend: Backend, flavour: Flavour, database: str,
            retention: RetentionDays | None = None) -> list[str]:
    """Apply the steps that are needed; return their names (``[]`` when up to date)."""
    state = State.read(backend, database)
    applied: list[str] = []
    for step in steps(flavour, database, retention):
        if not step.needed(state):
            continue
        try:
            step.apply(backend)
        except StoreError as e:
            raise StoreError(f"migration {step.name} failed: {e}") from None
        applied.append(step.name)
    if applied:
        now = int(time.time())
        rows = " UNION ALL ".join(
            f"SELECT {quote(name)} AS name, toDateTime({now}, 'UTC') AS applied_at"
            for name in applied)
        backend.execute(
            f"INSERT INTO {ident(database)}.{MIGRATIONS_TABLE} (name, applied_at) {rows}")
    return applied


def recorded(backend: Backend, database: str) -> list[tuple[str, int]]:
    """The migration history: ``(name, applied_at epoch)`` in order of application."""
    _, rows = backend.query(
        f"SELECT name, toUInt32(applied_at) FROM {ident(database)}.{MIGRATIONS_TABLE} "
        "ORDER BY applied_at, name")
    return [(str(n), int(t)) for n, t in rows]

