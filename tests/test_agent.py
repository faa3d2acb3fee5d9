"""Sensor agents replaying real captures into a real collector over loopback gRPC.

The collector's store must hold exactly the packets and bytes tshark counts in each file,
per host: with two sensors at once, after a collector restart, when the sensor starts
first, and with an outbox too small to hold what piles up while the collector is down
(then every packet is either stored or counted as dropped).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from fixtures.clickhouse_server import free_port
from fixtures.collector import PCAPS, CollectorFactory, host_totals, sensor_config, truth, wait_for

from netwarden.collector.server import CollectorServer
from netwarden.proto import netwarden_pb2 as pb
from netwarden.proto import netwarden_pb2_grpc as pb_grpc
from netwarden.sensor.agent import SensorAgent
from netwarden.sensor.enforce import EnforceConfig, ruleset_id
from netwarden.sensor.outbox import Outbox
from netwarden.sensor.replay import ReplaySource

WIKI = "zeek-wikipedia.pcap"  # 136 frames over 6.4 s
EXAMPLE = "pcapplusplus-example.pcap"  # 4631 frames over 15.6 s


def agent(host: str, collector: str, capture: str, *, speed: float | None = None,
          outbox: Outbox | None = None) -> SensorAgent:
    source = ReplaySource(PCAPS / capture, speed=speed, retime=speed is not None)
    return SensorAgent(sensor_config(host, collector), source, source_name=capture,
                       outbox=outbox)


def stats_totals(server: CollectorServer) -> dict[str, tuple[int, int, int]]:
    """{host: (packets, bytes, dropped)} from capture_stats."""
    assert server.store is not None
    rows = server.store.query("SELECT host, sum(packets), sum(bytes), sum(dropped) "
                              "FROM capture_stats GROUP BY host")
    return {str(h): (int(p), int(b), int(d)) for h, p, b, d in rows}


@pytest.mark.parametrize("kind", ["chdb", pytest.param("server", marks=pytest.mark.server)])
def test_two_sensors_store_exactly_their_captures(collector_factory: CollectorFactory,
                                                  kind: str) -> None:
    server = collector_factory(kind)
    a = agent("a", server.address, WIKI)
    b = agent("b", server.address, EXAMPLE)
    a.start()
    b.start()
    wait_for(lambda: a.source.done and b.source.done, what="the replays")  # type: ignore[attr-defined]
    assert a.stop() and b.stop()
    assert server.store is not None
    assert host_totals(server.store) == {"a": truth(WIKI), "b": truth(EXAMPLE)}
    assert stats_totals(server) == {"a": (*truth(WIKI), 0), "b": (*truth(EXAMPLE), 0)}
    assert a.outbox.stats.dropped_batches == b.outbox.stats.dropped_batches == 0
    assert server.store.stored_seqs() == {"a": a.outbox.stats.batches,
                                          "b": b.outbox.stats.batches}


def test_collector_restart_while_a_sensor_runs_loses_and_doubles_nothing(
        collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    port, database = server.port, server.config.store.database
    s = agent("a", server.address, EXAMPLE, speed=4.0)  # ~4 s of 1 s intervals
    s.start()
    wait_for(lambda: s.outbox.stats.acked >= 1, what="a first batch stored")
    server.stop()
    time.sleep(1.0)  # batches pile up in the outbox meanwhile
    assert not s.connected
    held = len(s.outbox)
    restarted = collector_factory(port=port, database=database)
    wait_for(lambda: s.source.done, what="the replay")  # type: ignore[attr-defined]
    assert s.stop()
    assert restarted.store is not None
    assert host_totals(restarted.store) == {"a": truth(EXAMPLE)}
    assert stats_totals(restarted) == {"a": (*truth(EXAMPLE), 0)}
    assert s.stats.connects >= 2 and held >= 1
    assert restarted.store.stored_seq("a") == s.outbox.stats.batches


def test_a_sensor_started_before_its_collector_delivers_once_it_is_up(
        collector_factory: CollectorFactory) -> None:
    port = free_port()
    s = agent("early", f"127.0.0.1:{port}", WIKI)
    s.start()
    wait_for(lambda: len(s.outbox) >= 1 and s.stats.failures >= 2,
             what="a held batch and failed connection attempts")
    assert not s.connected and len(s.outbox) >= 1
    server = collector_factory(port=port)
    wait_for(lambda: len(s.outbox) == 0, what="delivery")
    assert s.stop()
    assert server.store is not None
    assert host_totals(server.store) == {"early": truth(WIKI)}


def test_outbox_overflow_drops_the_oldest_and_counts_every_lost_packet(
        collector_factory: CollectorFactory) -> None:
    port = free_port()
    box = Outbox(1)  # holds only the newest batch
    s = agent("tiny", f"127.0.0.1:{port}", WIKI, speed=2.0, outbox=box)  # ~3.2 s, 1 s intervals
    s.start()
    wait_for(lambda: box.stats.dropped_batches >= 1, what="a dropped batch")
    server = collector_factory(port=port)
    wait_for(lambda: s.source.done, what="the replay")  # type: ignore[attr-defined]
    wait_for(lambda: len(box) == 0, what="delivery")
    assert s.stop()
    assert server.store is not None
    frames, _ = truth(WIKI)
    stored, _ = host_totals(server.store)["tiny"]
    packets, _, dropped = stats_totals(server)["tiny"]
    assert packets == stored
    assert box.stats.dropped_packets > 0
    assert stored + box.stats.dropped_packets == frames  # nothing unaccounted for
    assert dropped == box.stats.dropped_packets  # and the collector was told


def test_stop_without_a_collector_gives_up_after_the_timeout() -> None:
    s = agent("alone", f"127.0.0.1:{free_port()}", WIKI)
    s.start()
    wait_for(lambda: s.source.done, what="the replay")  # type: ignore[attr-defined]
    t = time.monotonic()
    assert s.stop(timeout_s=0.5) is False
    assert time.monotonic() - t < 5
    assert len(s.outbox) == 1 and s.stats.packets == truth(WIKI)[0]


class _EnforcingCollector(pb_grpc.CollectorServicer):  # type: ignore[misc]
    """A stand-in collector on real gRPC: acknowledges Hello, then sends one Enforcement
    and records every AppliedState the sensor reports."""

    def __init__(self, desired: pb.Enforcement) -> None:
        self.desired = desired
        self.applied: list[pb.AppliedState] = []

    def Stream(self, requests: Any, context: Any) -> Any:
        replies: queue.Queue[pb.CollectorMessage | None] = queue.Queue()

        def read() -> None:
            try:
                for msg in requests:
                    kind = msg.WhichOneof("body")
                    if kind == "hello":
                        replies.put(pb.CollectorMessage(ack=pb.Ack(seq=0)))
                        replies.put(pb.CollectorMessage(enforcement=self.desired))
                    elif kind == "applied":
                        self.applied.append(msg.applied)
            except grpc.RpcError:
                pass  # the stream was cancelled (server stopping)
            finally:
                replies.put(None)  # ends the handler, or the server's pool never exits

        threading.Thread(target=read, daemon=True).start()
        while (reply := replies.get()) is not None:
            yield reply


def test_each_enforcement_is_applied_and_reported_once(tmp_path: Path) -> None:
    """Dry-run (no iptables): on connect the sensor reports what is in force (nothing),
    then exactly one AppliedState for the Enforcement it was sent."""
    rule = pb.Rule(id="r1", policy="p", action=pb.ACTION_BLOCK_DROP,
                   expires_ns=time.time_ns() + 600 * 10**9,
                   match=pb.Match(direction=pb.DIRECTION_OUT, remote_cidrs=["192.0.2.0/24"]))
    desired = pb.Enforcement(version=7, ruleset_id=ruleset_id([rule]), rules=[rule],
                             issued_ns=time.time_ns())
    servicer = _EnforcingCollector(desired)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_CollectorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = sensor_config("enf", f"127.0.0.1:{port}").model_copy(update={
        "enforce": EnforceConfig(mode="dry-run", state_file=str(tmp_path / "state.json"))})
    a = SensorAgent(config, ReplaySource(PCAPS / WIKI), source_name=WIKI)
    a.start()
    try:
        wait_for(lambda: any(s.version == 7 for s in servicer.applied), 20,
                 "the AppliedState of version 7")
        time.sleep(1.0)  # a duplicate would arrive by now
    finally:
        a.stop(timeout_s=2)
        server.stop(0)
    versions = [s.version for s in servicer.applied]
    assert versions == [0, 7], versions
    (state,) = [s for s in servicer.applied if s.version == 7]
    assert (state.mode, state.ruleset_id, state.error) == ("dry-run", desired.ruleset_id, "")
    assert [c.rule_id for c in state.counters] == ["r1"]
