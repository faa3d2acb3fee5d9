"""ClickHouse flow storage: embedded chdb (default) or a server (clickhouse-driver).

>>> with open_store("/var/lib/netwarden/chdb") as store:   # doctest: +SKIP
...     store.write(batch)
...     store.query("SELECT host, sum(bytes) FROM flows WHERE layer = 0 GROUP BY host")
"""

from __future__ import annotations

from .errors import StoreError
from .ledger import BatchMark
from .schema import Flavour, RetentionDays, flavour_for_version, render_schema
from .sql import cidr_bounds, ip16, ip_in_cidr, ip_literal, ip_text, quote
from .store import DEFAULT_DATABASE, Store, StoreConfig, open_store

__all__ = [
    "DEFAULT_DATABASE",
    "BatchMark",
    "Flavour",
    "RetentionDays",
    "Store",
    "StoreConfig",
    "StoreError",
    "cidr_bounds",
    "flavour_for_version",
    "ip16",
    "ip_in_cidr",
    "ip_literal",
    "ip_text",
    "open_store",
    "quote",
    "render_schema",
]
