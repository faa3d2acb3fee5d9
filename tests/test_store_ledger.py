"""The batch ledger on real engines: stored seq per host, unrecorded rows deleted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netwarden.collector.store import BatchMark, Store
from netwarden.collector.store.bench import synthetic_batch

Factory = Callable[..., Store]
ENGINES = ["chdb", pytest.param("server", marks=pytest.mark.server)]
T2004 = 1_100_000_000


def totals(store: Store, host: str) -> dict[str, int]:
    out = {}
    for table, col in (("flows", "bytes"), ("proto_chains", "frames"), ("pkt_sizes", "packets"),
                       ("capture_stats", "packets")):
        rows = store.query(f"SELECT count(), sum({col}) FROM {table} WHERE host = '{host}'")
        out[table] = int(rows[0][0])
        out[table + ".sum"] = int(rows[0][1] or 0)
    return out


def store_batch(store: Store, batch: Any, seq: int, host: str) -> None:
    store.write(batch, host=host, seq=seq)
    store.flush()
    store.record_batches([BatchMark.of(batch, seq, host)])


@pytest.mark.parametrize("kind", ENGINES)
def test_stored_seq_and_unrecorded_rows(store_factory: Factory, kind: str) -> None:
    store = store_factory(kind)
    b1 = synthetic_batch(200, host="a", start_s=T2004, intervals=2, seed=1)
    b2 = synthetic_batch(300, host="a", start_s=T2004 + 600, intervals=2, seed=2)
    other = synthetic_batch(100, host="b", start_s=T2004, intervals=1, seed=3)
    assert store.stored_seq("a") == 0
    store_batch(store, b1, 1, "a")
    store_batch(store, other, 7, "b")
    after_one = totals(store, "a")
    assert store.stored_seq("a") == 1 and store.stored_seqs() == {"a": 1, "b": 7}
    assert store.discard_unrecorded("a") == {}

    # batch 2's rows are inserted but the collector "dies" before its ledger row
    store.write(b2, host="a", seq=2)
    store.flush()
    assert totals(store, "a")["flows"] == 500
    found = store.discard_unrecorded("a")
    assert found == {"flows": 300, "proto_chains": len(b2.chains["path"]),
                     "pkt_sizes": len(b2.sizes["packets"]),
                     "capture_stats": len(b2.stats["packets"])}
    assert totals(store, "a") == after_one
    assert store.stored_seq("b") == 7 and totals(store, "b")["flows"] == 100

    # the resend stores it once
    store_batch(store, b2, 2, "a")
    assert store.stored_seq("a") == 2
    assert totals(store, "a")["flows.sum"] == after_one["flows.sum"] + int(b2.flows["bytes"].sum())


def test_ledger_row_counts_and_span(store_factory: Factory) -> None:
    store = store_factory("chdb")
    b = synthetic_batch(50, host="x", start_s=T2004, intervals=3, interval_s=60, seed=4)
    mark = BatchMark.of(b, 9)
    assert (mark.host, mark.seq, mark.flow_rows) == ("x", 9, 50)
    assert mark.first_start_ns == T2004 * 10**9
    assert mark.last_start_ns == (T2004 + 120) * 10**9
    store_batch(store, b, 9, "x")
    rows = store.query_dicts("SELECT * FROM sensor_batches")
    assert len(rows) == 1
    assert rows[0]["flow_rows"] == 50 and rows[0]["stat_rows"] == len(b.stats["packets"])
    assert store.query("SELECT DISTINCT seq FROM flows") == [(9,)]


def test_rows_written_without_a_sensor_batch_have_seq_zero_and_stay(
        store_factory: Factory) -> None:
    store = store_factory("chdb")
    store.write(synthetic_batch(20, host="file.pcap", start_s=T2004, intervals=1))
    store.flush()
    assert store.query("SELECT DISTINCT seq FROM flows") == [(0,)]
    assert store.discard_unrecorded("file.pcap") == {}
    assert store.query("SELECT count() FROM flows") == [(20,)]


def test_an_older_store_gets_the_seq_column_and_the_ledger(store_factory: Factory) -> None:
    store = store_factory("chdb")
    for table in ("flows", "proto_chains", "pkt_sizes", "capture_stats"):
        store.execute(f"ALTER TABLE {table} DROP COLUMN seq")
    store.execute("DROP TABLE sensor_batches")
    store.execute(  # rows an older netwarden wrote, without seq
        "INSERT INTO flows (host, ts, start_ns, packets, bytes) VALUES ('old', 1100000000, "
        "1100000000000000000, 3, 300)")
    applied = store.migrate()
    assert {"create_table_flows", "create_table_capture_stats",
            "create_table_sensor_batches"} <= set(applied)
    assert store.query("SELECT seq, bytes FROM flows WHERE host = 'old'") == [(0, 300)]
    assert store.discard_unrecorded("old") == {}
    assert store.stored_seq("old") == 0
