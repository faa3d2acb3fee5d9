"""The server backend: clickhouse-driver over the native protocol.

Configured by a URL ``clickhouse://[user[:password]@]host[:port]/[database]`` (port 9000
by default). Inserts are columnar (``execute("INSERT … VALUES", columns, columnar=True)``)
in the driver's numpy mode, so numeric columns are sent as their buffers; inline
``VALUES (…)`` is never sent (it hangs on 18.16).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from .backend import Columns, Row
from .errors import StoreError, first_line
from .schema import Table
from .sql import ident

DEFAULT_PORT = 9000
SCHEME = "clickhouse://"


@dataclasses.dataclass(frozen=True)
class ServerURL:
    host: str
    port: int = DEFAULT_PORT
    user: str = "default"
    password: str = ""
    database: str | None = None

    @property
    def display(self) -> str:
        """The URL without its password (for messages)."""
        who = f"{self.user}@" if self.user != "default" else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"clickhouse://{who}{host}:{self.port}/{self.database or ''}"


def parse_url(url: str) -> ServerURL:
    """Parse ``clickhouse://[user[:password]@]host[:port]/[database]``."""
    if not url.startswith(SCHEME):
        raise StoreError(f"not a ClickHouse URL (expected {SCHEME}…): {url!r}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise StoreError(f"ClickHouse URL {url!r}: query strings and fragments are not supported")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise StoreError(f"ClickHouse URL {url!r}: bad port") from None
    if not parts.hostname:
        raise StoreError(f"ClickHouse URL {url!r}: no host")
    database = parts.path.strip("/") or None
    if database is not None and "/" in database:
        raise StoreError(f"ClickHouse URL {url!r}: the path must be one database name")
    return ServerURL(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=unquote(database) if database else None,
    )


# -- results: make the driver's values look like chdb's (see Backend) -------------------

Convert = Callable[[Any], Any]


def _datetime(value: Any) -> Any:
    # Columns with a zone come aware; zone-less ones come naive in the client's local
    # time (use_client_time_zone=1), and naive .timestamp() is local and fold-aware.
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return value


def _fixed(length: int) -> Convert:
    def conv(value: Any) -> Any:
        # The driver decodes valid UTF-8 to str and strips trailing NULs: undo both.
        if isinstance(value, str):
            return value.encode("utf-8").ljust(length, b"\x00")
        return value
    return conv


def _ip(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv6Address):
        return value.packed
    if isinstance(value, ipaddress.IPv4Address):
        return int(value)
    return value


def _unwrap(type_sql: str, prefix: str) -> str | None:
    if type_sql.startswith(prefix + "(") and type_sql.endswith(")"):
        return type_sql[len(prefix) + 1:-1]
    return None


_FIXED = re.compile(r"^FixedString\((\d+)\)$")


def converter(type_sql: str) -> Convert | None:
    """A function normalising values of ClickHouse type ``type_sql``, or None if none is needed."""
    for wrapper in ("Nullable", "LowCardinality"):
        inner = _unwrap(type_sql, wrapper)
        if inner is not None:
            conv = converter(inner)
            if conv is None:
                return None
            return lambda v: None if v is None else conv(v)
    inner = _unwrap(type_sql, "Array")
    if inner is not None:
        item = converter(inner)
        if item is None:
            return lambda v: list(v)
        return lambda v: [item(x) for x in v]
    if type_sql.startswith("DateTime"):
        return _datetime
    if type_sql in ("IPv6", "IPv4"):
        return _ip
    m = _FIXED.match(type_sql)
    if m:
        return _fixed(int(m.group(1)))
    return None


def server_message(text: str) -> str:
    """The useful first line of a server exception (no code prefix, no stack trace)."""
    msg = first_line(text)
    msg = re.sub(r"^Code: \d+[.,]\s*(e\.displayText\(\) = )?", "", msg)
    msg = re.sub(r"^DB::Exception: ", "", msg)
    msg = re.sub(r"(, e\.what\(\) = DB::Exception|\.? Stack trace:?)$", "", msg)
    msg = re.sub(r"(\(version [^)]*\))$", "", msg).rstrip()
    return msg.rstrip(".") or first_line(text)


def _column_values(column: Any, values: np.ndarray, kind: str) -> Any:
    """A column as clickhouse-driver's numpy mode writes it: numbers go out as their
    buffers (no per-value Python objects), times as datetime64, strings as objects."""
    if kind == "address":
        return np.ascontiguousarray(values, dtype="S16")
    if kind == "datetime":
        return np.asarray(values, dtype=np.int64).astype("datetime64[s]")
    if kind == "string" or values.dtype == object:
        return np.asarray(values, dtype=object)
    return np.ascontiguousarray(values)


class ServerBackend:
    """A ClickHouse server reached with clickhouse-driver."""

    def __init__(self, url: str | ServerURL, *, connect_timeout_s: float = 10,
                 timeout_s: float = 600) -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        self.target = f"ClickHouse server {self.url.display}"
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self._client: Any = None
        # numpy mode for inserts; blocks of 100k rows let the server work on one while
        # the next is encoded
        self._insert_settings: dict[str, Any] = {"insert_block_size": 100_000,
                                                 "use_numpy": True}

    def connect(self) -> None:
        if self._client is not None:
            return
        from clickhouse_driver import Client

        self._client = Client(
            self.url.host, port=self.url.port, user=self.url.user, password=self.url.password,
            database="default", connect_timeout=self.connect_timeout_s,
            send_receive_timeout=self.timeout_s, sync_request_timeout=self.timeout_s,
            client_name="netwarden", settings={"use_client_time_zone": 1},
        )
        # Inserts use the driver's numpy mode (columns go out as buffers, about twice
        # as fast as Python lists); it imports pandas, which takes a moment: do it now.
        import clickhouse_driver.columns.numpy.service  # noqa: F401

        _, rows = self.query(
            "SELECT name FROM system.settings WHERE name = 'max_partitions_per_insert_block'")
        if rows:
            self._insert_settings["max_partitions_per_insert_block"] = 0

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    def _run(self, what: str, fn: Callable[[Any], Any]) -> Any:
        from clickhouse_driver import errors

        if self._client is None:
            raise StoreError(f"{self.target}: not connected")
        try:
            return fn(self._client)
        except errors.ServerException as e:
            raise StoreError(f"{self.target}: {what}{server_message(e.message)} "
                             f"(code {e.code})") from None
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as e:
            text = e.message if isinstance(e, errors.Error) else str(e) or type(e).__name__
            text = re.sub(r"^Code: \d+\. ", "", first_line(text))
            raise StoreError(f"cannot reach {self.target}: {what}{text}") from None
        except errors.Error as e:
            raise StoreError(f"{self.target}: {what}{first_line(e.message)}") from None

    def version(self) -> str:
        _, rows = self.query("SELECT version()")
        return str(rows[0][0])

    def use(self, database: str) -> None:
        client = self._client
        if client is None:
            raise StoreError(f"{self.target}: not connected")
        client.connection.database = database
        client.disconnect()  # the next query reconnects with the new default database

    def execute(self, sql: str) -> None:
        self._run("", lambda c: c.execute(sql))

    def query(self, sql: str) -> tuple[list[str], list[Row]]:
        rows, types = self._run("", lambda c: c.execute(sql, with_column_types=True))
        names = [n for n, _ in types]
        convs = [converter(t) for _, t in types]
        if any(convs):
            rows = [tuple(v if f is None else f(v) for f, v in zip(convs, row, strict=True))
                    for row in rows]
        return names, [tuple(r) for r in rows]

    def insert(self, database: str, table: Table, columns: Columns) -> None:
        data = [_column_values(c, columns[c.name], c.kind) for c in table.columns]
        names = ", ".join(ident(n) for n in table.names)
        sql = f"INSERT INTO {ident(database)}.{ident(table.name)} ({names}) VALUES"
        self._run(f"insert into {table.name}: ",
                  lambda c: c.execute(sql, data, columnar=True, settings=self._insert_settings))
