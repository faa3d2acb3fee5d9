"""tcp.stream / udp.stream numbering: port reuse, retransmitted SYNs, UDP 4-tuples, state
across batches; and the same partition of frames into streams as tshark's."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from fixtures.packets import (
    ACK,
    FIN,
    ICMP,
    PSH,
    SYN,
    TCP,
    UDP,
    Frame,
    cut,
    ethernet,
    icmp,
    index_of,
    ipv4,
    ipv4_fragments,
    ipv6,
    needs_tshark,
    tcp,
    tshark_fields,
    udp,
    vxlan,
    write_pcap,
)

from netwarden.sensor.decode import Events, decode
from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.streams import StreamTracker

A, B, C, D = "192.0.2.1", "198.51.100.2", "10.0.0.3", "10.0.0.4"
X, Y = "2001:db8::1", "2001:db8::2"


def t(src: str, dst: str, sport: int, dport: int, flags: int, seq: int, *, ack: int = 0,
      payload: bytes = b"") -> bytes:
    return ethernet(ipv4(src, dst, TCP, tcp(sport, dport, flags=flags, seq=seq, ack=ack,
                                            payload=payload)))


def u(src: str, dst: str, sport: int, dport: int) -> bytes:
    return ethernet(ipv4(src, dst, UDP, udp(sport, dport, b"d")))


def _events(datas: list[bytes], gap: bytes = b"\xff" * 16) -> Events:
    buf, off, cap, lts = index_of(datas, gap=gap)
    return decode(buf, off, cap, lts).events


def _assign(datas: list[bytes], splits: tuple[int, ...] = (), gap: bytes = b"\xff" * 16
            ) -> list[int]:
    """Stream per frame (frames numbered from 1), one ``assign`` call per batch."""
    ev = _events(datas, gap)
    frame_no = ev.row.astype(np.uint64) + np.uint64(1)
    tracker = StreamTracker()
    out: list[int] = []
    bounds = [0, *splits, len(ev)]
    for lo, hi in itertools.pairwise(bounds):
        sel = np.arange(lo, hi)
        out += tracker.assign(ev.take(sel), frame_no[sel]).tolist()
    return out


HANDSHAKE = [
    t(A, B, 1000, 80, SYN, 100),
    t(B, A, 80, 1000, SYN | ACK, 500, ack=101),
    t(A, B, 1000, 80, ACK, 101, ack=501),
]


def test_one_connection_is_one_stream_named_by_its_first_frame() -> None:
    data = [u(C, D, 1, 2), *HANDSHAKE, t(A, B, 1000, 80, FIN | ACK, 101)]
    assert _assign(data) == [1, 2, 2, 2, 2]


def test_syn_with_a_new_sequence_number_on_a_reused_4_tuple_starts_a_new_stream() -> None:
    data = [*HANDSHAKE, t(A, B, 1000, 80, FIN | ACK, 101),
            t(A, B, 1000, 80, SYN, 90000),  # port reused: new connection
            t(B, A, 80, 1000, SYN | ACK, 7000, ack=90001),
            t(A, B, 1000, 80, ACK, 90001)]
    assert _assign(data) == [1, 1, 1, 1, 5, 5, 5]


def test_a_retransmitted_syn_stays_in_its_stream() -> None:
    data = [t(A, B, 1000, 80, SYN, 100), t(A, B, 1000, 80, SYN, 100), *HANDSHAKE[1:],
            t(A, B, 1000, 80, SYN, 100)]
    assert _assign(data) == [1, 1, 1, 1, 1]


def test_syn_ack_with_another_sequence_number_does_not_split() -> None:
    data = [*HANDSHAKE, t(B, A, 80, 1000, SYN | ACK, 999, ack=101)]
    assert _assign(data) == [1, 1, 1, 1]


def test_syn_after_mid_stream_start_with_another_number_splits() -> None:
    # capture starts mid-connection: the base is seq-1 of the first segment
    data = [t(A, B, 1000, 80, ACK, 5000), t(A, B, 1000, 80, SYN, 4999),
            t(A, B, 1000, 80, SYN, 100)]
    assert _assign(data) == [1, 1, 3]


def test_udp_is_one_stream_per_4_tuple_in_both_directions() -> None:
    data = [u(A, B, 53, 5353), u(B, A, 5353, 53), u(A, B, 53, 5354), u(A, B, 53, 5353),
            u(C, B, 53, 5353), u(B, C, 5353, 53)]
    assert _assign(data) == [1, 1, 3, 1, 5, 5]


ACROSS = [*HANDSHAKE, u(A, B, 53, 5353), t(A, B, 1000, 80, FIN | ACK, 101),
          t(A, B, 1000, 80, SYN, 9000), u(B, A, 5353, 53), t(B, A, 80, 1000, SYN | ACK, 1, ack=9001),
          t(A, B, 1000, 80, SYN, 9000), t(A, B, 1000, 80, ACK, 9001), u(A, B, 53, 5353)]
ACROSS_STREAMS = [1, 1, 1, 4, 1, 6, 4, 6, 6, 6, 4]


@pytest.mark.parametrize("split", range(1, len(ACROSS)))
def test_state_is_carried_across_batches(split: int) -> None:
    assert _assign(ACROSS) == ACROSS_STREAMS
    assert _assign(ACROSS, (split,)) == ACROSS_STREAMS
    assert _assign(ACROSS, (split // 2, split)) == ACROSS_STREAMS


def test_every_event_in_its_own_batch() -> None:
    assert _assign(ACROSS, tuple(range(1, len(ACROSS)))) == ACROSS_STREAMS


def test_tcp_and_udp_on_the_same_ports_are_different_streams() -> None:
    data = [u(A, B, 1000, 80), t(A, B, 1000, 80, ACK, 1), u(B, A, 80, 1000)]
    assert _assign(data) == [1, 2, 1]


def test_ipv6_streams() -> None:
    v6 = [ethernet(ipv6(X, Y, TCP, tcp(1, 2, flags=SYN, seq=1)), 0x86DD),
          ethernet(ipv6(Y, X, TCP, tcp(2, 1, flags=SYN | ACK, seq=9)), 0x86DD),
          ethernet(ipv6(X, Y, TCP, tcp(1, 2, flags=SYN, seq=77)), 0x86DD)]
    assert _assign(v6) == [1, 1, 3]


def test_events_without_ports_get_stream_0() -> None:
    first_fragment = ipv4_fragments(A, B, UDP, udp(1, 2, b"x" * 40), 24)[0]
    data = [ethernet(b"\0" * 28, 0x0806), ethernet(ipv4(A, B, ICMP, icmp(8, 0))),
            ethernet(first_fragment), u(A, B, 1, 2)]
    assert _assign(data) == [0, 0, 0, 4]


def test_tunnel_layers_get_their_own_streams() -> None:
    inner = ethernet(ipv4(C, D, TCP, tcp(4000, 22, flags=SYN, seq=3)))
    outer = ethernet(ipv4(A, B, UDP, udp(40000, 4789, vxlan(inner))))
    ev = _events([outer, outer])
    sid = StreamTracker().assign(ev, ev.row.astype(np.uint64) + np.uint64(1))
    assert ev.layer.tolist() == [0, 1, 0, 1] and sid.tolist() == [1, 1, 1, 1]
    tracker = StreamTracker()
    tracker.assign(ev, ev.row.astype(np.uint64) + np.uint64(1))
    assert len(tracker) == 2  # the UDP and the TCP 4-tuple


def test_a_tcp_header_cut_before_its_flags_does_not_split_the_stream() -> None:
    # a 4-byte TCP header once had its sequence number and flags read from the bytes
    # after it: here they would read as a SYN with sequence number 0x01020304
    after = bytes([1, 2, 3, 4, 0, 0, 0, 0, 0, SYN]) + b"\0" * 6
    data = [*HANDSHAKE, t(A, B, 1000, 80, ACK, 101)[:14 + 20 + 4], t(A, B, 1000, 80, ACK, 101)]
    assert _assign(data, gap=after) == [1, 1, 1, 1, 1]


SCENARIO = [
    *HANDSHAKE,
    t(A, B, 1000, 80, SYN, 100),  # retransmitted SYN
    t(A, B, 1000, 80, FIN | ACK, 101),
    t(A, B, 1000, 80, SYN, 9000),  # port reuse
    t(B, A, 80, 1000, SYN | ACK, 7000, ack=9001),
    t(A, B, 1000, 80, ACK, 9001),
    t(B, A, 80, 1000, SYN | ACK, 7777, ack=9001),
    t(B, A, 80, 1000, SYN, 31337),  # SYN from the other side with a new number
    t(A, B, 1000, 80, ACK, 9001),
    u(A, B, 53, 5353), u(B, A, 5353, 53), u(A, B, 53, 5354), u(A, B, 53, 5353),
    t(C, D, 2000, 22, ACK, 5000),  # mid-stream start
    t(C, D, 2000, 22, SYN, 100),
    u(A, B, 1000, 80),
]


def _scenario_frames() -> list[Frame]:
    datas: list[bytes | tuple[bytes, int]] = list(SCENARIO)
    # a TCP header cut to its ports, followed by a frame whose record header would have
    # read as a SYN with a new sequence number (captured length 0x2xx)
    datas.insert(9, (t(A, B, 1000, 80, ACK, 9001, ack=7001), 14 + 20 + 4))
    datas.insert(10, t(A, B, 1000, 80, ACK | PSH, 9001, payload=b"p" * (0x202 - 54)))
    return [cut(d[0], d[1], 1_700_000_000_000_000_000 + i * 1000) if isinstance(d, tuple)
            else Frame(d, 1_700_000_000_000_000_000 + i * 1000) for i, d in enumerate(datas)]


@needs_tshark
@pytest.mark.parametrize("batch", [0, 4])
def test_streams_partition_frames_like_tshark(tmp_path: Path, batch: int) -> None:
    path = write_pcap(tmp_path / "streams.pcap", _scenario_frames())
    idx = read_index(path)
    ev = decode(idx.buf, idx.offset, idx.caplen, idx.linktype).events
    tracker = StreamTracker()
    frame_no = ev.row.astype(np.uint64) + np.uint64(1)
    step = batch or len(ev)
    ours = np.concatenate([tracker.assign(ev.take(np.arange(lo, min(lo + step, len(ev)))),
                                          frame_no[lo:lo + step])
                           for lo in range(0, len(ev), step)])
    mine = {int(r) + 1: (int(p), int(s)) for r, p, s in zip(ev.row, ev.ip_proto, ours,
                                                              strict=True) if s}
    pairs = set()
    for num, ts, us in tshark_fields(path, ["frame.number", "tcp.stream", "udp.stream"]):
        if ts or us:
            theirs = (TCP, int(ts)) if ts else (UDP, int(us))
            pairs.add((mine[int(num)], theirs))
    # the same partition: a one-to-one map between our stream ids and tshark's
    assert len({m for m, _ in pairs}) == len({th for _, th in pairs}) == len(pairs)
    # our id of a stream is the number of the frame that started it
    for (_, sid), _ in pairs:
        assert mine[sid][1] == sid
