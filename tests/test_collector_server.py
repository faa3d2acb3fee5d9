"""The collector over real gRPC on loopback, with a real store: streams, acks, errors,
duplicates, crash leftovers, store failures and the Query RPC."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from fixtures.collector import CollectorFactory, drop_database, start_collector, wait_for

from netwarden.collector.client import query_report
from netwarden.collector.query import REPORTS, filters_json, run_report
from netwarden.collector.reports import Filters, TopParams, talkers
from netwarden.collector.server import CollectorServer
from netwarden.collector.store.bench import synthetic_batch
from netwarden.errors import InputError, RuntimeFailure, UsageError
from netwarden.proto import netwarden_pb2 as pb
from netwarden.proto import netwarden_pb2_grpc as pb_grpc
from netwarden.sensor.records import FlowBatch
from netwarden.sensor.wire import PROTOCOL_VERSION, encode_batch

START_S = 1_300_000_000


class RawSensor:
    """A hand-driven sensor stream: send messages, receive the collector's answers."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self._out: queue.Queue[pb.SensorMessage | None] = queue.Queue()
        self._in: queue.Queue[Any] = queue.Queue()
        self.call = pb_grpc.CollectorStub(self.channel).Stream(iter(self._out.get, None))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for msg in self.call:
                self._in.put(msg)
            self._in.put(StopIteration())
        except grpc.RpcError as exc:
            self._in.put(exc)

    def send(self, msg: pb.SensorMessage) -> None:
        self._out.put(msg)

    def hello(self, host: str, protocol: int = PROTOCOL_VERSION) -> None:
        self.send(pb.SensorMessage(hello=pb.Hello(host=host, version="test",
                                                  protocol=protocol)))

    def batch(self, batch: FlowBatch, seq: int) -> None:
        self.send(pb.SensorMessage(batch=encode_batch(batch, seq)))

    def recv(self, timeout_s: float = 10.0) -> Any:
        """The next message, or the StopIteration / RpcError that ended the stream."""
        return self._in.get(timeout=timeout_s)

    def ack(self) -> int:
        msg = self.recv()
        assert isinstance(msg, pb.CollectorMessage) and msg.WhichOneof("body") == "ack", msg
        return int(msg.ack.seq)

    def close(self) -> Any:
        """Half-close, wait for the collector to end the stream; return how it ended."""
        self._out.put(None)
        try:
            while True:
                msg = self.recv(5.0)
                if not isinstance(msg, pb.CollectorMessage):
                    return msg
        finally:
            self.channel.close()


def batch(host: str, n: int = 40, seed: int = 1) -> FlowBatch:
    return synthetic_batch(n, host=host, start_s=START_S + seed * 600, intervals=2,
                           interval_s=60, seed=seed)


def flows(server: CollectorServer, host: str) -> tuple[int, int]:
    assert server.store is not None
    (n, total), = server.store.query(
        f"SELECT count(), sum(bytes) FROM flows WHERE host = '{host}'")
    return int(n), int(total or 0)


def test_hello_acks_what_is_stored_and_duplicates_are_not_stored_twice(
        collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    s = RawSensor(server.address)
    s.hello("web-1")
    assert s.ack() == 0
    b1, b2 = batch("web-1", 40, 1), batch("web-1", 30, 2)
    s.batch(b1, 1)
    assert s.ack() == 1
    assert flows(server, "web-1") == (40, int(b1.flows["bytes"].sum()))
    s.batch(b1, 1)  # resent after a reconnect: acknowledged, not stored again
    assert s.ack() == 1
    s.batch(b2, 5)  # gaps are fine (batches the sensor had to drop)
    assert s.ack() == 5
    assert flows(server, "web-1") == (70, int(b1.flows["bytes"].sum() + b2.flows["bytes"].sum()))
    assert isinstance(s.close(), StopIteration)

    again = RawSensor(server.address)
    again.hello("web-1")
    assert again.ack() == 5  # what the collector has, for the sensor to skip
    again.close()
    assert server.store is not None
    assert server.store.query("SELECT seq, flow_rows FROM sensor_batches ORDER BY seq") == [
        (1, 40), (5, 30)]


def test_bad_batch_gets_an_error_stores_nothing_and_the_stream_goes_on(
        collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 0
    bad = encode_batch(batch("h"), 1)
    next(c for c in bad.flows.columns if c.name == "bytes").dtype = "<u4"
    s.send(pb.SensorMessage(batch=bad))
    err = s.recv()
    assert err.WhichOneof("body") == "error"
    assert err.error.seq == 1
    assert err.error.reason == "FlowBatch 1: flows.bytes: dtype '<u4', expected '<u8'"
    assert flows(server, "h") == (0, 0)

    s.batch(batch("other-host"), 2)
    err = s.recv()
    assert err.error.seq == 2 and "host 'other-host' is not the host of this stream" in \
        err.error.reason
    s.batch(batch("h"), 3)
    assert s.ack() == 3
    assert flows(server, "h")[0] == 40
    s.close()


@pytest.mark.parametrize(("first", "reason"), [
    (pb.SensorMessage(batch=pb.FlowBatch(seq=1)), "the first message of a stream must be Hello"),
    (pb.SensorMessage(hello=pb.Hello(host="", protocol=PROTOCOL_VERSION)), "Hello: host is empty"),
    (pb.SensorMessage(hello=pb.Hello(host="h", protocol=99)),
     "Hello: protocol version 99 is not supported (this collector speaks 1)"),
])
def test_a_stream_must_start_with_a_valid_hello(collector_factory: CollectorFactory,
                                                first: pb.SensorMessage, reason: str) -> None:
    server = collector_factory()
    s = RawSensor(server.address)
    s.send(first)
    msg = s.recv()
    assert msg.WhichOneof("body") == "error" and msg.error.reason == reason
    assert msg.error.seq == 0
    assert isinstance(s.close(), StopIteration)


def test_rows_of_a_batch_missing_from_the_ledger_are_deleted_before_the_resend(
        collector_factory: CollectorFactory) -> None:
    """What a collector killed between inserting a batch's rows and its ledger row leaves."""
    server = collector_factory()
    assert server.store is not None
    b1, b2 = batch("h", 40, 1), batch("h", 25, 2)
    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 0
    s.batch(b1, 1)
    assert s.ack() == 1
    s.close()
    server.store.write(b2, host="h", seq=2)  # rows in, ledger row never written
    server.store.flush()
    assert flows(server, "h")[0] == 65

    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 1
    assert flows(server, "h")[0] == 40  # the half-stored batch is gone
    s.batch(b2, 2)
    assert s.ack() == 2
    assert flows(server, "h") == (65, int(b1.flows["bytes"].sum() + b2.flows["bytes"].sum()))
    (stats_rows,), = server.store.query("SELECT count() FROM capture_stats WHERE host = 'h'")
    assert stats_rows == len(b1.stats["packets"]) + len(b2.stats["packets"])
    s.close()


def test_a_store_failure_ends_the_stream_and_the_resend_is_stored_once(
        collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    store = server.store
    assert store is not None
    b1 = batch("h", 40, 1)
    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 0
    store.execute("ALTER TABLE pkt_sizes DROP COLUMN seq")  # flows insert works, then not
    s.batch(b1, 1)
    end = s.recv()
    assert isinstance(end, grpc.RpcError) and end.code() == grpc.StatusCode.UNAVAILABLE
    assert "collector could not store batches" in end.details()
    assert flows(server, "h")[0] == 40  # flows went in before the failure...
    assert store.stored_seq("h") == 0  # ...but the batch is not stored
    assert server.ingest is not None and server.ingest.stats.failures == 1

    store.migrate()  # the store is repaired
    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 0
    assert flows(server, "h")[0] == 0
    s.batch(b1, 1)
    assert s.ack() == 1
    assert flows(server, "h") == (40, int(b1.flows["bytes"].sum()))
    s.close()


def test_a_new_stream_of_the_same_host_replaces_the_old_one(
        collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    old = RawSensor(server.address)
    old.hello("h")
    assert old.ack() == 0
    new = RawSensor(server.address)
    new.hello("h")
    assert new.ack() == 0
    end = old.recv()
    assert isinstance(end, grpc.RpcError) and "replaced by a new stream" in end.details()
    new.batch(batch("h"), 1)
    assert new.ack() == 1
    assert server.connected_hosts() == ["h"]
    new.close()
    wait_for(lambda: server.connected_hosts() == [], what="the stream to close")


def test_several_sensors_at_once_keep_their_identity(collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    sensors = {f"host-{i}": RawSensor(server.address) for i in range(4)}
    for host, s in sensors.items():
        s.hello(host)
    for s in sensors.values():
        assert s.ack() == 0
    sent: dict[str, int] = {}
    for seq in (1, 2, 3):
        for i, (host, s) in enumerate(sensors.items()):
            b = batch(host, 20 + i, seed=seq * 10 + i)
            sent[host] = sent.get(host, 0) + int(b.flows["bytes"].sum())
            s.batch(b, seq)
    for s in sensors.values():
        acks = [s.ack()]
        while acks[-1] < 3:  # acks are cumulative: batches stored together get one
            acks.append(s.ack())
        assert acks == sorted(acks) and acks[-1] == 3
    for host, total in sent.items():
        assert flows(server, host)[1] == total
    for s in sensors.values():
        s.close()


# -- Query ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def filled(chdb_path: Path) -> Iterator[CollectorServer]:
    """A collector holding two batches of host alpha (shared by the Query tests)."""
    server = start_collector(str(chdb_path))
    s = RawSensor(server.address)
    s.hello("alpha")
    assert s.ack() == 0
    for seq in (1, 2):
        s.batch(batch("alpha", 300, seq), seq)
        assert s.ack() == seq
    s.close()
    yield server
    server.stop()
    drop_database(str(chdb_path), server.config.store.database)


PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("conversations", {"kind": "tcp", "top": 5}),
    ("conversations", {"kind": "ipv6"}),
    ("protocols", {}),
    ("io", {"interval_s": 120}),
    ("talkers", {"top": 3}),
    ("ports", {"top": 4}),
    ("ttl", {"top": 2}),
    ("sizes", {}),
    ("usage", {"top": 3}),
    ("timeline", {"step_s": 3600}),
    ("transport", {"top": 2}),
    ("protocol_counts", {}),
    ("geo", {"by": "asn", "top": 3}),
    ("processes", {"top": 3}),
    ("apps", {"by": "app", "top": 5}),
]


@pytest.mark.parametrize(("report", "params"), PARAMS)
def test_query_returns_the_same_json_as_the_direct_report(
        filled: CollectorServer, report: str, params: dict[str, Any]) -> None:
    assert filled.store is not None
    full = {**params, "filters": filters_json(Filters(hosts=("alpha",)))}
    remote = query_report(filled.address, report, full)
    local = run_report(filled.store, report, full)
    assert remote.to_json() == local.to_json()
    assert remote.columns == local.columns
    assert local.rows  # something to compare


def test_query_equals_the_report_function(filled: CollectorServer) -> None:
    assert filled.store is not None
    since = (START_S + 600) * 10**9
    direct = talkers(filled.store, TopParams(filters=Filters(since_ns=since), top=5))
    remote = query_report(filled.address, "talkers",
                          {"top": 5, "filters": {"since_ns": since, "until_ns": None,
                                                 "hosts": []}})
    assert remote.to_json() == direct.to_json()
    assert set(REPORTS) == {name for name, _ in PARAMS}  # every report is covered here


@pytest.mark.parametrize(("report", "params", "message"), [
    ("nope", {}, r"^unknown report 'nope'"),
    ("talkers", {"kind": "tcp"}, r"^report parameters: kind: unknown key for report talkers$"),
    ("talkers", {"top": "3"}, r"^report parameters: top: expected int, got '3'$"),
    ("talkers", {"top": 0}, r"^report parameters: top must be at least 1"),
    ("io", {"filters": {"since_ns": 5, "until_ns": 5}}, r"^--since/--until: empty time range"),
    ("io", {"filters": {"host": ["a"]}}, r"^report parameters: filters\.host: unknown key$"),
])
def test_query_with_bad_parameters_is_a_usage_error(filled: CollectorServer, report: str,
                                                    params: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        query_report(filled.address, report, params)


def test_query_of_an_empty_store_and_of_no_collector(collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    with pytest.raises(InputError, match=r"has no flow records yet$"):
        query_report(server.address, "talkers", {})
    port = server.port
    server.stop()
    with pytest.raises(RuntimeFailure, match=rf"127\.0\.0\.1:{port}"):
        query_report(f"127.0.0.1:{port}", "talkers", {}, timeout_s=5)


def test_listen_on_a_busy_port_fails_with_one_line(collector_factory: CollectorFactory) -> None:
    first = collector_factory()
    with pytest.raises(RuntimeFailure, match=r"^collector: cannot listen on 127\.0\.0\.1:\d+"):
        collector_factory(port=first.port)


def test_ack_is_sent_only_after_the_rows_are_readable(collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    assert server.store is not None
    s = RawSensor(server.address)
    s.hello("h")
    assert s.ack() == 0
    for seq in range(1, 6):
        b = batch("h", 10, seq)
        s.batch(b, seq)
        assert s.ack() == seq
        (n,), = server.store.query(f"SELECT count() FROM sensor_batches WHERE seq = {seq}")
        assert n == 1
        (got,), = server.store.query(f"SELECT sum(bytes) FROM flows WHERE seq = {seq}")
        assert int(got) == int(np.asarray(b.flows["bytes"]).sum())
    s.close()
