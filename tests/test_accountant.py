"""The streaming Accountant: wall-clock intervals, flushing ended intervals only, address
changes, drop notes, and stream state carried across batches."""

from __future__ import annotations

import numpy as np
from fixtures.packets import ACK, SYN, TCP, UDP, ethernet, index_of, ipv4, tcp, udp

from netwarden.sensor.accountant import Accountant, PacketBatch
from netwarden.sensor.records import Direction

S = 1_000_000_000
T = 1_700_000_003 * S  # 3 s into a 10 s wall-clock interval


def batch(datas: list[bytes], ts: list[int]) -> PacketBatch:
    buf, off, cap, lt = index_of(datas)
    return PacketBatch(buf, off, cap, cap.copy(), lt, np.array(ts, np.int64))


def pkt(src: str, dst: str, size: int = 10) -> bytes:
    return ethernet(ipv4(src, dst, UDP, udp(1000, 2000, b"x" * size)))


def test_wall_alignment_and_flush_of_ended_intervals_only() -> None:
    acc = Accountant("h", interval_s=10, align="wall")
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")] * 3, [T, T + 5 * S, T + 12 * S]))
    start0 = (T // (10 * S)) * 10 * S
    # at T + 9 s the first interval (start0 .. start0+10 s) has not ended
    assert len(acc.flush(start0 + 9 * S).flows["packets"]) == 0
    out = acc.flush(start0 + 10 * S)
    assert out.flows["start_ns"].tolist() == [start0]
    assert out.flows["packets"].tolist() == [2]
    assert out.stats["packets"].tolist() == [2]
    rest = acc.flush()  # everything else
    assert rest.flows["start_ns"].tolist() == [start0 + 10 * S]
    assert acc.frames == 3


def test_first_alignment_puts_early_frames_in_interval_zero() -> None:
    acc = Accountant("h", interval_s=10, align="first")
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")] * 3, [T, T - 2 * S, T + 10 * S]))
    out = acc.flush()
    assert sorted(out.flows["start_ns"].tolist()) == [T, T + 10 * S]
    assert acc.origin_ns == T


def test_address_change_applies_to_later_packets() -> None:
    acc = Accountant("h", host_addresses=["10.0.0.1"])
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")], [T]))
    acc.set_host_addresses(["10.0.0.2"])
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")], [T + 1]))
    out = acc.flush()
    assert sorted(out.flows["direction"].tolist()) == [Direction.IN, Direction.OUT]


def test_drops_are_reported_with_the_next_flush() -> None:
    acc = Accountant("h")
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")], [T]))
    acc.note_drops(7, not_dissected=3)
    out = acc.flush()
    assert out.stats["dropped"].tolist() == [7]
    assert out.stats["not_dissected"].tolist() == [3]
    acc.add(batch([pkt("10.0.0.1", "10.0.0.2")], [T + 1]))
    assert acc.flush().stats["dropped"].tolist() == [0]


def test_streams_and_frame_numbers_continue_across_batches() -> None:
    acc = Accountant("h", frame_base=100)
    syn = ethernet(ipv4("10.0.0.1", "10.0.0.2", TCP, tcp(4000, 80, seq=1, flags=SYN)))
    ack = ethernet(ipv4("10.0.0.1", "10.0.0.2", TCP, tcp(4000, 80, seq=2, flags=ACK)))
    acc.add(batch([syn], [T]))
    acc.add(batch([ack], [T + 1]))
    out = acc.flush()
    assert out.flows["stream"].tolist() == [101]  # one record, named by its first frame
    assert out.flows["first_frame"].tolist() == [101]
    assert out.flows["packets"].tolist() == [2]
    assert out.flows["tcp_flags"].tolist() == [SYN | ACK]
