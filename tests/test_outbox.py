"""The sensor's outbox: bounded by bytes, oldest dropped and counted, numbering, acks."""

from __future__ import annotations

import threading
import time

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.outbox import Outbox


def msg(payload: int = 100) -> pb.FlowBatch:
    """A batch message of about ``payload`` bytes."""
    m = pb.FlowBatch(host="h", interval_s=10)
    m.flows.columns.add(name="bytes", dtype="<u8", data=b"\x00" * payload)
    return m


def size() -> int:
    """Encoded size of :func:`msg` once numbered (1-byte seq)."""
    m = msg()
    m.seq = 1
    return m.ByteSize()


def test_numbers_batches_and_forgets_what_is_acknowledged() -> None:
    box = Outbox(10_000)
    seqs = [box.put(msg(), packets=10) for _ in range(4)]
    assert seqs == [1, 2, 3, 4]
    assert box.anchor(0) is None and box.seqs() == [1, 2, 3, 4]
    assert box.ack(2) == 2
    assert box.seqs() == [3, 4]
    assert box.ack(2) == 0  # acks are cumulative: an old one changes nothing
    assert box.stats.acked == 2


def test_full_outbox_drops_the_oldest_and_counts_their_packets() -> None:
    one = size()
    box = Outbox(3 * one)
    for packets in (10, 20, 30, 40, 50):
        box.put(msg(), packets=packets)
    assert box.seqs() == [3, 4, 5]
    assert box.bytes <= 3 * one
    assert (box.stats.dropped_batches, box.stats.dropped_packets) == (2, 30)
    assert box.take_dropped() == 30
    assert box.take_dropped() == 0  # handed out once, for the next capture stats


def test_a_batch_bigger_than_the_limit_is_kept_alone() -> None:
    box = Outbox(50)
    box.put(msg(10), packets=1)
    box.put(msg(500), packets=2)
    assert box.seqs() == [2]
    assert box.stats.dropped_packets == 1


def test_first_anchor_renumbers_after_what_the_collector_has() -> None:
    box = Outbox(10_000)
    for _ in range(3):
        box.put(msg(), packets=1)
    box.anchor(41)  # a restarted sensor: the collector has up to 41 from the last run
    assert box.seqs() == [42, 43, 44]
    entry = box.next_after(0, 0)
    assert entry is not None and entry.msg.seq == 42
    assert box.put(msg(), packets=1) == 45
    box.anchor(43)  # a later connection: 42 and 43 were stored
    assert box.seqs() == [44, 45]


def test_anchor_above_anything_sent_renumbers_again() -> None:
    box = Outbox(10_000)
    box.put(msg(), packets=1)
    box.anchor(0)
    box.put(msg(), packets=1)
    box.anchor(100)
    assert box.seqs() == [101, 102]


def test_dropped_after_sending_counts_only_if_not_stored() -> None:
    one = size()
    box = Outbox(one)
    box.anchor(0)
    box.put(msg(), packets=5)
    assert box.next_after(0, 0) is not None  # 1 is sent
    box.put(msg(), packets=7)  # 1 is pushed out while in flight
    assert box.seqs() == [2]
    assert box.stats.dropped_packets == 0 and box.unresolved_packets() == 5
    box.ack(1)  # it was stored after all
    assert box.stats.dropped_packets == 0 and box.unresolved_packets() == 0

    assert box.next_after(1, 0) is not None  # 2 is sent, then the stream breaks
    box.put(msg(), packets=9)  # 2 is pushed out
    box.anchor(1)  # reconnected: the collector never stored 2
    assert box.stats.dropped_packets == 7 and box.take_dropped() == 7


def test_reject_drops_one_batch_and_counts_it() -> None:
    box = Outbox(10_000)
    for p in (1, 2, 3):
        box.put(msg(), packets=p)
    entry = box.reject(2)
    assert entry is not None and entry.packets == 2
    assert box.seqs() == [1, 3]
    assert box.reject(2) is None
    assert (box.stats.rejected, box.stats.dropped_packets) == (1, 2)


def test_next_after_waits_for_a_new_batch() -> None:
    box = Outbox(10_000)
    assert box.next_after(0, 0.05) is None
    threading.Timer(0.05, lambda: box.put(msg(), packets=1)).start()
    t = time.monotonic()
    entry = box.next_after(0, 5)
    assert entry is not None and entry.seq == 1 and time.monotonic() - t < 2


def test_wait_empty() -> None:
    box = Outbox(10_000)
    box.put(msg(), packets=1)
    assert not box.wait_empty(0.05)
    threading.Timer(0.05, lambda: box.ack(1)).start()
    assert box.wait_empty(5)
