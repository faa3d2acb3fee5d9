"""DDL rendering of the store's schema (pure: no engine). Engines run it in test_store.py."""

from __future__ import annotations

import re

import pytest

from netwarden.collector.store import StoreError
from netwarden.collector.store.schema import (
    FLOWS,
    TABLES,
    VIEWS,
    Flavour,
    RetentionDays,
    create_table_sql,
    create_view_sql,
    flavour_for_address_type,
    flavour_for_version,
    parse_version,
    render_schema,
)
from netwarden.sensor.records import CHAIN_COLUMNS, FLOW_COLUMNS, SIZE_COLUMNS, STAT_COLUMNS


@pytest.mark.parametrize(("version", "flavour"), [
    ("18.16.1", "legacy"), ("19.17.4.11", "legacy"), ("20.2.1.2362", "legacy"),
    ("20.3.1.1", "modern"), ("20.3", "modern"), ("21.8.10.19-lts", "modern"),
    ("26.9.2.1", "modern"), ("100.1", "modern"),
])
def test_flavour_by_version(version: str, flavour: str) -> None:
    assert flavour_for_version(version) == flavour


def test_bad_version_is_an_error() -> None:
    assert parse_version("23.8.2.7-stable") == (23, 8, 2, 7)
    with pytest.raises(StoreError, match="cannot parse ClickHouse version 'dev'"):
        flavour_for_version("dev")


def test_flavour_of_existing_tables() -> None:
    assert flavour_for_address_type("IPv6") == "modern"
    assert flavour_for_address_type("FixedString(16)") == "legacy"
    with pytest.raises(StoreError, match=r"flows\.src_ip has unexpected type 'String'"):
        flavour_for_address_type("String")


def column_lines(sql: str) -> dict[str, str]:
    """``{column: type and codec}`` from a CREATE TABLE."""
    body = sql[sql.index("(\n") + 2:sql.index("\n)\n")]
    out = {}
    for line in body.split(",\n"):
        line = line.strip()
        if line.startswith("INDEX"):
            continue
        name, rest = line.split(" ", 1)
        out[name.strip("`")] = rest
    return out


@pytest.mark.parametrize(("table", "spec", "added"), [
    ("flows", FLOW_COLUMNS, ["host", "ts", "interval_s"]),
    ("proto_chains", CHAIN_COLUMNS, ["host", "ts"]),
    ("pkt_sizes", SIZE_COLUMNS, ["host", "ts"]),
    ("capture_stats", STAT_COLUMNS, ["host", "ts", "interval_s"]),
])
@pytest.mark.parametrize("flavour", ["legacy", "modern"])
def test_raw_columns_come_from_records_py(table: str, spec: dict[str, object], added: list[str],
                                          flavour: Flavour) -> None:
    t = next(t for t in TABLES if t.name == table)
    cols = column_lines(create_table_sql(t, flavour, "nw"))
    assert list(cols) == [*added, *spec, "seq"]


def test_legacy_flows_ddl() -> None:
    sql = create_table_sql(FLOWS, "legacy", "nw", RetentionDays(raw=30, rollup=365))
    cols = column_lines(sql)
    assert cols["src_ip"] == cols["dst_ip"] == "FixedString(16)"
    assert cols["host"] == cols["app"] == "String"
    assert cols["ts"] == "DateTime('UTC')"
    assert cols["start_ns"] == "Int64"
    assert cols["bytes"] == "UInt64"
    assert cols["src_port"] == "UInt16"
    for word in ("CODEC", "TTL", "INDEX", "LowCardinality", "IPv6", "ttl_only_drop_parts"):
        assert word not in sql
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `nw`.`flows`\n")
    assert "ENGINE = MergeTree()\nPARTITION BY toYYYYMMDD(ts)\n" in sql
    assert "ORDER BY (`host`, `ts`, `direction`, `ip_proto`, `src_ip`, `dst_ip`)\n" in sql
    assert "PRIMARY KEY (`host`, `ts`)" in sql


def test_modern_flows_ddl() -> None:
    sql = create_table_sql(FLOWS, "modern", "nw", RetentionDays(raw=30, rollup=365))
    cols = column_lines(sql)
    assert cols["src_ip"] == "IPv6 CODEC(ZSTD(1))"
    assert cols["host"] == cols["app"] == "LowCardinality(String)"
    assert cols["ts"] == "DateTime('UTC') CODEC(DoubleDelta, LZ4)"
    assert cols["bytes"] == cols["packets"] == "UInt64 CODEC(T64, LZ4)"
    assert cols["first_seen"] == "Int64 CODEC(Delta, ZSTD(1))"
    assert cols["ip_proto"] == "UInt8"
    assert "INDEX `src_ip_bf` `src_ip` TYPE bloom_filter(0.001) GRANULARITY 4" in sql
    assert "\nTTL ts + toIntervalDay(30)\nSETTINGS index_granularity = 8192, " \
           "ttl_only_drop_parts = 1" in sql


def test_modern_retention_zero_means_no_ttl_and_rollups_get_their_own() -> None:
    assert "TTL" not in create_table_sql(FLOWS, "modern", "nw")
    usage = next(t for t in TABLES if t.name == "usage_15m")
    sql = create_table_sql(usage, "modern", "nw", RetentionDays(raw=30, rollup=1825))
    assert "TTL ts + toIntervalDay(1825)" in sql
    assert "PARTITION BY toYYYYMM(ts)" in sql


def test_rollups_are_summing_with_explicit_columns() -> None:
    engines = {t.name: create_table_sql(t, "legacy", "nw") for t in TABLES}
    assert "SummingMergeTree((`bytes_in`, `bytes_out`, `packets_in`, `packets_out`, `flows`))" \
        in engines["usage_15m"]
    assert "SummingMergeTree((`bytes`, `packets`))" in engines["talkers_1h"]
    assert "SummingMergeTree((`frames`, `bytes`))" in engines["chains_1h"]
    assert "`order` AggregateFunction(min, UInt64)" in engines["chains_1h"]
    assert "SummingMergeTree((`packets`))" in engines["sizes_1h"]
    talkers = column_lines(engines["talkers_1h"])
    assert list(talkers) == ["host", "ts", "ip_version", "ip_proto", "src_ip", "dst_ip",
                             "bytes", "packets"]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_views_are_flat_and_fill_every_target_column(view: object) -> None:
    from netwarden.collector.store.schema import TABLES_BY_NAME, View

    assert isinstance(view, View)
    sql = create_view_sql(view, "nw")
    assert sql.startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `nw`.`{view.name}` "
                          f"TO `nw`.`{view.target}` AS SELECT ")
    assert sql.count("SELECT") == 1  # no subqueries (18.16 MVs cannot run them)
    assert f"FROM `nw`.`{view.source}`" in sql
    select = sql[sql.index(" AS SELECT ") + 11:sql.index(" FROM ")]
    outputs = []
    for item in re.split(r",\s*(?![^()]*\))", select):
        m = re.search(r"\bAS\s+`?(\w+)`?$", item.strip())
        outputs.append(m.group(1) if m else item.strip())
    assert outputs == list(TABLES_BY_NAME[view.target].names)
    # every column the view reads is a physical column of its source
    source = set(TABLES_BY_NAME[view.source].names)
    body = sql[sql.index(" AS SELECT ") + 11:]
    words = {m.group(0) for m in re.finditer(r"[A-Za-z_]\w*", body)
             if not re.match(r"\s*\(", body[m.end():])}  # function names are followed by (
    keywords = {"AS", "FROM", "WHERE", "GROUP", "BY", "nw", view.source}
    assert words - keywords <= source | set(outputs)


def test_render_schema_orders_database_tables_views() -> None:
    stmts = render_schema("modern", "nw")
    assert stmts[0] == "CREATE DATABASE IF NOT EXISTS `nw`"
    assert "schema_migrations" in stmts[1]
    kinds = ["view" if "MATERIALIZED VIEW" in s else "table" for s in stmts[2:]]
    assert kinds == ["table"] * len(TABLES) + ["view"] * len(VIEWS)


def test_retention_must_be_non_negative() -> None:
    with pytest.raises(StoreError, match="retention raw: days must be an integer >= 0, not -1"):
        RetentionDays(raw=-1)
