"""Shared pytest fixtures. Each helper keeps its fixtures in a marked section."""

from __future__ import annotations

# --- ClickHouse store: clickhouse_server (18.16, session), chdb_path (session), ---------
# --- store_factory. Implemented in tests/fixtures/clickhouse_server.py. ---------------
from fixtures.clickhouse_server import chdb_path, clickhouse_server, store_factory

# --- end ClickHouse store ---------------------------------------------------------------
# --- Wire (collector, sensor transport): collector_factory. ---------------------------
# --- Implemented in tests/fixtures/collector.py. --------------------------------------
from fixtures.collector import collector_factory

# --- end wire -------------------------------------------------------------------------

__all__ = ["chdb_path", "clickhouse_server", "collector_factory", "store_factory"]
