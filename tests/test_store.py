"""The ClickHouse store on real engines: chdb (modern and legacy DDL) and 18.16 (legacy).

Nothing here is mocked: every test writes to and reads from a real ClickHouse.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netwarden.collector.store import (
    Store,
    StoreError,
    ip16,
    ip_in_cidr,
    ip_literal,
    ip_text,
    open_store,
    quote,
)
from netwarden.collector.store.bench import bench_ingest, synthetic_batch
from netwarden.collector.store.migrations import steps
from netwarden.collector.store.rows import batch_tables
from netwarden.sensor.records import FLOW_COLUMNS, FlowBatch, concat

Factory = Callable[..., Store]

# kind -> (store_factory kind, config)
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "chdb": ("chdb", {}),
    "chdb-legacy": ("chdb", {"flavour": "legacy"}),
    "server": ("server", {}),
}
ALL_KINDS = [
    "chdb", "chdb-legacy", pytest.param("server", marks=pytest.mark.server),
]
ENGINES = ["chdb", pytest.param("server", marks=pytest.mark.server)]

T2004 = 1_100_000_000  # 2004-11-09: old, like the test captures (retention keeps it)


def make(store_factory: Factory, kind: str, **config: Any) -> Store:
    factory_kind, base = KINDS[kind]
    return store_factory(factory_kind, **{**base, **config})


def count(store: Store, table: str, where: str = "1") -> int:
    return int(store.query(f"SELECT count() FROM {table} WHERE {where}")[0][0])


def text_of(addr16: bytes) -> str:
    ip = ipaddress.IPv6Address(addr16)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def special_batch(host: str, start_s: int) -> FlowBatch:
    """Rows with addresses that end in zero bytes or are all zero (non-IP)."""
    b = synthetic_batch(4, host=host, start_s=start_s, intervals=1, interval_s=60, seed=99)
    b.flows["src_ip"] = np.array([ip16("10.0.0.0"), ip16("2001:db8::"), b"\x00" * 16,
                                  ip16("255.255.255.255")], dtype="S16")
    b.flows["dst_ip"] = np.array([b"\x00" * 16, ip16("::1"), ip16("fe80::1:0"),
                                  ip16("192.168.0.1")], dtype="S16")
    b.flows["layer"] = np.zeros(4, dtype=np.uint8)
    return b


@pytest.fixture
def written(request: pytest.FixtureRequest, store_factory: Factory) -> tuple[Store, list[FlowBatch]]:
    """A store holding three hosts' batches (v4 and v6, many intervals, 2004 timestamps)."""
    store = make(store_factory, request.param)
    batches = [
        synthetic_batch(1500, host="alpha", start_s=T2004, intervals=12, interval_s=600, seed=1),
        synthetic_batch(900, host="beta", start_s=T2004 + 86_000, intervals=9, interval_s=300,
                        seed=2, v6_share=0.6),
        special_batch("gamma", T2004 + 3_600),
    ]
    for b in batches:
        store.write(b)
        store.flush()  # one insert per batch: several parts for the rollups to merge
    return store, batches


def all_flows(batches: list[FlowBatch]) -> dict[str, np.ndarray]:
    flows: dict[str, np.ndarray] = concat(FLOW_COLUMNS, [b.flows for b in batches])
    return flows


# -- migrations and flavour ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_migrations_apply_every_step_once_then_nothing(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    expected = [s.name for s in steps(store.flavour, store.database)]
    assert [name for name, _ in sorted(store.migration_history(),
                                       key=lambda r: expected.index(r[0]))] == expected
    assert "create_view_usage_15m_mv" in expected and "create_table_flows" in expected
    assert store.migrate() == []
    assert store.migrate() == []
    assert len(store.migration_history()) == len(expected)
    # a first run on an empty server applies every step, in order
    store.drop_database()
    assert store.migrate() == expected
    assert store.migrate() == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_migrate_repairs_exactly_what_was_dropped(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    store.execute("DROP TABLE talkers_1h_mv")
    assert store.migrate() == ["create_view_talkers_1h_mv"]
    store.execute("DROP TABLE capture_stats")
    store.execute("DROP TABLE sizes_1h_mv")
    assert store.migrate() == ["create_table_capture_stats", "create_view_sizes_1h_mv"]
    assert store.migrate() == []
    # the re-created view feeds its rollup again
    store.write(synthetic_batch(50, host="h", start_s=T2004, intervals=2))
    store.flush()
    assert store.query("SELECT sum(bytes) FROM talkers_1h") == store.query(
        "SELECT sum(bytes) FROM flows WHERE layer = 0")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_migrate_adds_a_missing_column_back_in_place(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    before = store.query("SELECT name, type FROM system.columns WHERE database = "
                         f"{quote(store.database)} AND table = 'flows'")
    store.execute("ALTER TABLE flows DROP COLUMN tcp_flags")
    assert store.migrate() == ["create_table_flows"]
    after = store.query("SELECT name, type FROM system.columns WHERE database = "
                        f"{quote(store.database)} AND table = 'flows'")
    assert after == before


@pytest.mark.parametrize(("kind", "flavour", "src_type"), [
    ("chdb", "modern", "IPv6"),
    ("chdb-legacy", "legacy", "FixedString(16)"),
    pytest.param("server", "legacy", "FixedString(16)", marks=pytest.mark.server),
])
def test_flavour_and_address_type(store_factory: Factory, kind: str, flavour: str,
                                  src_type: str) -> None:
    store = make(store_factory, kind)
    assert store.flavour == flavour
    types = dict(store.query("SELECT name, type FROM system.columns WHERE database = "
                             f"{quote(store.database)} AND table = 'flows'"))
    assert types["src_ip"] == src_type
    assert types["dst_ip"] == src_type
    assert types["ts"] == "DateTime('UTC')"
    assert types["host"] == ("LowCardinality(String)" if flavour == "modern" else "String")
    if kind == "server":
        assert store.version.startswith("18.16")
    else:
        assert int(store.version.split(".")[0]) >= 20


def test_existing_tables_keep_their_flavour(store_factory: Factory) -> None:
    legacy = make(store_factory, "chdb-legacy")
    assert legacy.flavour == "legacy"
    again = store_factory("chdb", database=legacy.database)  # no flavour forced: 26.9 → modern
    assert again.flavour == "legacy"
    assert again.migrate() == []
    forced = store_factory("chdb", database=legacy.database, flavour="modern")
    assert forced.flavour == "legacy"


# -- writes and reads ----------------------------------------------------------------------


@pytest.mark.parametrize("written", ALL_KINDS, indirect=True)
def test_counts_and_sums(written: tuple[Store, list[FlowBatch]]) -> None:
    store, batches = written
    flows = all_flows(batches)
    assert count(store, "flows") == len(flows["bytes"]) == 1500 + 900 + 4
    for b in batches:
        got = store.query_dicts(
            "SELECT count() AS n, sum(bytes) AS bytes, sum(packets) AS packets, "
            "sum(ttl_sq) AS ttl_sq, max(interval_s) AS interval_s, countIf(ip_version = 6) AS v6 "
            f"FROM flows WHERE host = {quote(b.host)}")
        assert got == [{
            "n": len(b.flows["bytes"]), "bytes": int(b.flows["bytes"].sum()),
            "packets": int(b.flows["packets"].sum()), "ttl_sq": int(b.flows["ttl_sq"].sum()),
            "interval_s": b.interval_s, "v6": int((b.flows["ip_version"] == 6).sum()),
        }]
        for table, attr in (("proto_chains", "chains"), ("pkt_sizes", "sizes"),
                            ("capture_stats", "stats")):
            assert count(store, table, f"host = {quote(b.host)}") == len(getattr(b, attr)["start_ns"])
    assert store.query(
        "SELECT sum(frames), sum(bytes) FROM proto_chains") == [
        (sum(int(b.chains["frames"].sum()) for b in batches),
         sum(int(b.chains["bytes"].sum()) for b in batches))]
    assert store.query("SELECT sum(dropped), any(source) FROM capture_stats WHERE host = 'alpha'") \
        == [(int(batches[0].stats["dropped"].sum()), "synthetic")]


@pytest.mark.parametrize("written", ALL_KINDS, indirect=True)
def test_every_column_round_trips_exactly(written: tuple[Store, list[FlowBatch]]) -> None:
    store, batches = written
    names = list(FLOW_COLUMNS)
    rows = store.query(f"SELECT {', '.join('`' + n + '`' for n in names)} FROM flows "
                       "ORDER BY first_frame, start_ns, src_port, src_ip, dst_ip, bytes")
    flows = all_flows(batches)
    order = np.lexsort((flows["bytes"], flows["dst_ip"], flows["src_ip"], flows["src_port"],
                        flows["start_ns"], flows["first_frame"]))
    for i, name in enumerate(names):
        got = [r[i] for r in rows]
        col = flows[name][order]
        if name in ("src_ip", "dst_ip"):
            want: list[Any] = [bytes(x) for x in col.view("V16")]  # all 16 bytes
            assert all(isinstance(v, bytes) and len(v) == 16 for v in got)
        else:
            want = col.tolist()
        assert got == want, name


@pytest.mark.parametrize("written", ALL_KINDS, indirect=True)
def test_address_text_and_ts(written: tuple[Store, list[FlowBatch]]) -> None:
    store, batches = written
    rows = store.query(f"SELECT src_ip, {ip_text('src_ip')}, dst_ip, {ip_text('dst_ip')} "
                       "FROM flows")
    assert len(rows) == 1500 + 900 + 4
    for src, src_text, dst, dst_text in rows:
        assert src_text == text_of(src)
        assert dst_text == text_of(dst)
    gamma = store.query(f"SELECT {ip_text('src_ip')}, {ip_text('dst_ip')} FROM flows "
                        "WHERE host = 'gamma' ORDER BY first_frame")
    assert sorted(gamma) == sorted([("10.0.0.0", "::"), ("2001:db8::", "::1"),
                                    ("::", "fe80::1:0"), ("255.255.255.255", "192.168.0.1")])
    # ts is the interval start in epoch seconds, returned as an int
    pairs = store.query("SELECT DISTINCT ts, start_ns, toUInt32(ts) FROM flows")
    assert pairs and all(ts == start // 10**9 == ts32 for ts, start, ts32 in pairs)
    assert min(ts for ts, _, _ in pairs) == T2004  # keep-forever retention: 2004 rows stay
    assert {p[0] for p in pairs} == {
        int(s) // 10**9 for b in batches for s in np.unique(b.flows["start_ns"])}


@pytest.mark.parametrize("written", ALL_KINDS, indirect=True)
def test_ip_filters(written: tuple[Store, list[FlowBatch]]) -> None:
    store, batches = written
    flows = all_flows(batches)
    src = [ipaddress.IPv6Address(bytes(x)) for x in flows["src_ip"].view("V16")]
    net4 = ipaddress.ip_network("10.0.0.0/10")
    want4 = sum(1 for a in src if a.ipv4_mapped is not None and a.ipv4_mapped in net4)
    assert 0 < want4 < len(src)
    assert count(store, "flows", ip_in_cidr("src_ip", "10.0.0.0/10")) == want4
    net6 = ipaddress.ip_network("2001:db8::/32")
    want6 = sum(1 for a in src if a in net6)
    assert count(store, "flows", ip_in_cidr("src_ip", "2001:db8::/32")) == want6 > 0
    assert count(store, "flows", f"src_ip = {ip_literal('10.0.0.0')}") == 1 + sum(
        1 for a in src[:-4] if a.ipv4_mapped == ipaddress.IPv4Address("10.0.0.0"))
    assert count(store, "flows", f"dst_ip = {ip_literal('192.168.0.1')}") == 1


ROLLUP_CHECKS = [
    # (rollup query, equivalent raw query); both return rows sorted by their keys
    ("SELECT host, toUInt32(ts), sum(bytes_in), sum(bytes_out), sum(packets_in), "
     "sum(packets_out), sum(flows) FROM usage_15m GROUP BY host, ts ORDER BY host, ts",
     "SELECT host, toUInt32(toStartOfFifteenMinutes(ts)) AS t, sumIf(bytes, direction = 1), "
     "sumIf(bytes, direction != 1), sumIf(packets, direction = 1), sumIf(packets, direction != 1), "
     "count() FROM flows WHERE layer = 0 GROUP BY host, t ORDER BY host, t"),
    ("SELECT host, toUInt32(ts), ip_version, ip_proto, src_ip, dst_ip, sum(bytes), sum(packets) "
     "FROM talkers_1h GROUP BY host, ts, ip_version, ip_proto, src_ip, dst_ip "
     "ORDER BY host, ts, ip_version, ip_proto, src_ip, dst_ip",
     "SELECT host, toUInt32(toStartOfHour(ts)) AS t, ip_version, ip_proto, src_ip, dst_ip, "
     "sum(bytes), sum(packets) FROM flows WHERE layer = 0 "
     "GROUP BY host, t, ip_version, ip_proto, src_ip, dst_ip "
     "ORDER BY host, t, ip_version, ip_proto, src_ip, dst_ip"),
    ("SELECT host, toUInt32(ts), path, sum(frames), sum(bytes), minMerge(`order`) "
     "FROM chains_1h GROUP BY host, ts, path ORDER BY host, ts, path",
     "SELECT host, toUInt32(toStartOfHour(ts)) AS t, path, sum(frames), sum(bytes), min(`order`) "
     "FROM proto_chains GROUP BY host, t, path ORDER BY host, t, path"),
    ("SELECT host, toUInt32(ts), direction, frame_len, sum(packets) FROM sizes_1h "
     "GROUP BY host, ts, direction, frame_len ORDER BY host, ts, direction, frame_len",
     "SELECT host, toUInt32(toStartOfHour(ts)) AS t, direction, frame_len, sum(packets) "
     "FROM pkt_sizes GROUP BY host, t, direction, frame_len ORDER BY host, t, direction, frame_len"),
]


@pytest.mark.parametrize("written", ALL_KINDS, indirect=True)
def test_rollups_equal_raw_before_and_after_merges(written: tuple[Store, list[FlowBatch]]) -> None:
    store, batches = written
    flows = all_flows(batches)
    layer0 = flows["layer"] == 0
    assert store.query("SELECT sum(bytes_in) + sum(bytes_out), sum(flows) FROM usage_15m") == [
        (int(flows["bytes"][layer0].sum()), int(layer0.sum()))]
    assert store.query("SELECT sum(bytes_in) FROM usage_15m") == [
        (int(flows["bytes"][layer0 & (flows["direction"] == 1)].sum()),)]
    for rollup_sql, raw_sql in ROLLUP_CHECKS:
        raw = store.query(raw_sql)
        assert len(raw) > 3
        assert store.query(rollup_sql) == raw
    for table in ("usage_15m", "talkers_1h", "chains_1h", "sizes_1h"):
        store.execute(f"OPTIMIZE TABLE {table} FINAL")
    for rollup_sql, raw_sql in ROLLUP_CHECKS:
        assert store.query(rollup_sql) == store.query(raw_sql)
    # after merges, one row per key: the summing engine summed and min-merged in place
    assert store.query("SELECT count() FROM sizes_1h") == store.query(
        "SELECT count() FROM (SELECT DISTINCT host, toStartOfHour(ts), direction, frame_len "
        "FROM pkt_sizes)")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_query_value_types(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    row = store.query_dicts(
        "SELECT toDateTime(1700000000) AS dt, toDate('2024-03-10') AS d, "
        "IPv6StringToNum('::ffff:1.2.3.0') AS ip, 'x' AS s, [1, 2] AS a, toUInt64(1) AS u, "
        "2.5 AS f")
    import datetime as dt

    assert row == [{"dt": 1700000000, "d": dt.date(2024, 3, 10),
                    "ip": ip16("1.2.3.0"), "s": "x", "a": [1, 2], "u": 1, "f": 2.5}]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_quote_round_trips_through_the_engine(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    tricky = ["", "it's", "back\\slash", "new\nline\ttab", "nul\x00byte", "ünïcödé ✓", "'; --"]
    for s in tricky:
        assert store.query(f"SELECT {quote(s)}") == [(s,)], s
    raw = bytes(range(256))
    assert store.query(f"SELECT hex({quote(raw)}) AS h") == [(raw.hex().upper(),)]
    assert store.query(f"SELECT {quote([1, 2, 3])}, {quote(-5)}, {quote(None)} IS NULL") == [
        ([1, 2, 3], -5, 1)]


# -- batching ------------------------------------------------------------------------------


def small(n: int, seed: int, host: str = "h") -> FlowBatch:
    return synthetic_batch(n, host=host, start_s=T2004, intervals=2, seed=seed)


@pytest.mark.parametrize("kind", ENGINES)
def test_rows_wait_for_batch_rows(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind, batch_rows=1000, flush_seconds=3600)
    assert store.write(small(400, 1)) == 0
    assert store.write(small(400, 2)) == 0
    assert count(store, "flows") == 0 and count(store, "proto_chains") == 0
    assert store.pending()["flows"] == 800
    assert store.inserts == 0
    assert store.write(small(300, 3)) == 1100  # reached batch_rows: one insert per table
    assert count(store, "flows") == 1100
    assert count(store, "usage_15m") > 0
    assert store.inserts == 4
    assert store.pending() == {"flows": 0, "proto_chains": 0, "pkt_sizes": 0, "capture_stats": 0,
                               "app_names": 0}
    assert store.write(small(10, 4)) == 0
    assert store.flush() == 10
    assert count(store, "flows") == 1110
    store.write(small(10, 5))
    store.stop(flush=False)
    assert store.pending()["flows"] == 0
    store.start()
    assert count(store, "flows") == 1110


@pytest.mark.parametrize("kind", ENGINES)
def test_rows_are_flushed_after_flush_seconds(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind, batch_rows=10**6, flush_seconds=0.5)
    assert store.write(small(20, 1)) == 0
    assert store.flush(force=False) == 0
    assert count(store, "flows") == 0
    time.sleep(0.6)
    assert store.write(small(30, 2)) == 50  # the first row waited long enough
    assert count(store, "flows") == 50
    assert store.write(small(5, 3)) == 0  # the timer restarted
    time.sleep(0.6)
    assert store.flush(force=False) == 5
    assert count(store, "flows") == 55


@pytest.mark.parametrize("kind", ENGINES)
def test_stop_flushes(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind, batch_rows=10**6, flush_seconds=3600)
    store.write(small(70, 1))
    store.stop()
    reopened = make(store_factory, kind, database=store.database)
    assert count(reopened, "flows") == 70
    assert count(reopened, "pkt_sizes") == len(small(70, 1).sizes["start_ns"])


def test_context_manager_flushes_on_exit(chdb_path: Path) -> None:
    db = f"nw_test_cm_{time.time_ns()}"
    with open_store(str(chdb_path), database=db, flush_seconds=3600) as store:
        store.write(small(25, 1))
        assert count(store, "flows") == 0
    with open_store(str(chdb_path), database=db) as store:
        assert count(store, "flows") == 25
        store.drop_database()


def test_batch_with_wrong_columns_is_rejected() -> None:
    batch = small(5, 1)
    del batch.flows["tcp_flags"]
    batch.flows["bogus"] = np.zeros(5, dtype=np.uint8)
    with pytest.raises(StoreError, match=r"^flows: columns do not match the store's: "
                                         r"missing tcp_flags; unknown bogus$"):
        batch_tables(batch)
    batch = small(5, 1)
    batch.sizes["packets"] = batch.sizes["packets"][:-1]
    with pytest.raises(StoreError, match=r"^pkt_sizes\.packets: expected \d+ values"):
        batch_tables(batch)


# -- retention -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chdb-legacy", pytest.param("server", marks=pytest.mark.server)])
def test_legacy_expire_drops_whole_old_partitions(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind, retention={"raw": 30, "rollup": 400})
    now = 1_700_000_000  # 2023-11-14 22:13:20 UTC
    day = 86_400
    old = synthetic_batch(100, host="h", start_s=now - 40 * day, intervals=2, interval_s=60)
    edge = synthetic_batch(100, host="h", start_s=now - 30 * day + 3600, intervals=1)
    recent = synthetic_batch(100, host="h", start_s=now - day, intervals=2, interval_s=60)
    for b in (old, edge, recent):
        store.write(b)
    store.flush()
    dropped = store.expire(now)
    assert sorted(dropped) == sorted(f"{t}:20231005" for t in
                                     ("flows", "proto_chains", "pkt_sizes", "capture_stats"))
    assert count(store, "flows") == 200  # the day 30 days ago is not over yet: kept
    assert count(store, "usage_15m") > 0  # rollups keep 400 days
    assert store.expire(now + 500 * day) != []
    assert count(store, "flows") == 0 and count(store, "usage_15m") == 0


def test_modern_retention_is_a_ttl(store_factory: Factory) -> None:
    store = make(store_factory, "chdb", retention={"raw": 30, "rollup": 0})
    engine = dict(store.query("SELECT name, engine_full FROM system.tables WHERE database = "
                              f"{quote(store.database)}"))
    assert "TTL ts + toIntervalDay(30)" in engine["flows"]
    assert "ttl_only_drop_parts = 1" in engine["flows"]
    assert "TTL" not in engine["usage_15m"]
    now = int(time.time())
    batches = [synthetic_batch(50, host="h", start_s=now - 3600, intervals=1),
               synthetic_batch(50, host="h", start_s=T2004, intervals=1)]
    for b in batches:
        store.write(b)
    store.flush()
    store.execute("OPTIMIZE TABLE flows FINAL")
    assert store.query(f"SELECT min(ts) >= {now - 7200}, count() FROM flows") == [(1, 50)]
    layer0 = sum(int((b.flows["layer"] == 0).sum()) for b in batches)
    assert store.query("SELECT sum(flows) FROM usage_15m") == [(layer0,)]  # rollups kept
    assert store.expire() == []


# -- errors ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_down_server_is_one_clear_line() -> None:
    port = free_port()
    store = open_store(f"clickhouse://127.0.0.1:{port}/", connect_timeout_s=2)
    with pytest.raises(StoreError) as info:
        store.start()
    msg = str(info.value)
    assert "\n" not in msg
    assert f"clickhouse://127.0.0.1:{port}/" in msg
    assert msg.startswith("cannot reach ClickHouse server")
    assert "refused" in msg.lower()
    assert not store.started


def test_password_is_not_in_messages() -> None:
    port = free_port()
    store = open_store(f"clickhouse://bob:s3cret@127.0.0.1:{port}/db1", connect_timeout_s=2)
    with pytest.raises(StoreError) as info:
        store.start()
    assert "s3cret" not in str(info.value)
    assert f"clickhouse://bob@127.0.0.1:{port}/db1" in str(info.value)


def test_a_second_chdb_path_is_one_clear_line(store_factory: Factory, tmp_path: Path) -> None:
    first = store_factory("chdb")
    other = open_store(str(tmp_path / "other"))
    with pytest.raises(StoreError, match=r"^chdb is already open on .* cannot open .*other "
                                         r"\(chdb allows one data path per process"):
        other.start()
    assert count(first, "flows") == 0  # the open store still works


@pytest.mark.server
def test_server_sql_error_is_one_line(store_factory: Factory) -> None:
    store = store_factory("server")
    with pytest.raises(StoreError) as info:
        store.query("SELECT * FROM no_such_table")
    msg = str(info.value)
    assert "\n" not in msg and "Stack trace" not in msg
    assert msg.endswith(f"{store.database}.no_such_table doesn't exist (code 60)")
    assert msg.startswith("ClickHouse server clickhouse://127.0.0.1:")


def test_chdb_sql_error_is_one_line(store_factory: Factory) -> None:
    store = store_factory("chdb")
    with pytest.raises(StoreError) as info:
        store.query("SELECT * FROM no_such_table")
    assert "\n" not in str(info.value) and "no_such_table" in str(info.value)


# -- benchmark helper ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ENGINES)
def test_bench_ingest_reports_a_rate_and_stores_the_rows(store_factory: Factory, kind: str) -> None:
    store = make(store_factory, kind)
    rate = bench_ingest(store, 20_000)
    assert rate > 1000
    assert count(store, "flows") == 20_000
    assert store.query("SELECT sum(flows) FROM usage_15m") == store.query(
        "SELECT count() FROM flows WHERE layer = 0")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_one_insert_may_span_many_days(store_factory: Factory, kind: str) -> None:
    # a replayed capture or a long buffer can cover more days than chdb's default
    # max_partitions_per_insert_block (100)
    store = make(store_factory, kind)
    batch = synthetic_batch(600, host="h", start_s=T2004, intervals=120, interval_s=86_400)
    store.write(batch)
    store.flush()
    assert store.query("SELECT count(), uniqExact(toDate(ts)) FROM flows") == [
        (600, len(np.unique(batch.flows["start_ns"])))]
    assert count(store, "capture_stats") == 120
