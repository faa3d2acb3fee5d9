"""What the store needs from a ClickHouse connection, whichever engine runs it."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .schema import Table

Row = tuple[Any, ...]
Columns = dict[str, np.ndarray]


class Backend(Protocol):
    """A connection to one ClickHouse engine (embedded chdb or a server).

    Results are plain Python values with the same types on every backend: ints,
    floats, ``str`` for String, ``bytes`` for FixedString/IPv6 (16 raw bytes for
    addresses), ``int`` epoch seconds for DateTime, ``datetime.date`` for Date, ``list``
    for arrays, ``None`` for NULL.
    """

    target: str  # how errors name this backend: a path or a URL without password

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def version(self) -> str: ...

    def use(self, database: str) -> None:
        """Make ``database`` the default for unqualified table names."""

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str) -> tuple[list[str], list[Row]]: ...

    def insert(self, database: str, table: Table, columns: Columns) -> None:
        """Insert equal-length numpy columns (every column of ``table``, in its order)."""
