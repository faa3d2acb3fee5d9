"""Flow-head selection on hand-made packet views (pure logic, no capture)."""

from __future__ import annotations

from typing import Any

import numpy as np

from netwarden.sensor.enrich import PacketView
from netwarden.sensor.flowheads import Heads, HeadSelector

TCP, UDP = 6, 17


def ev(stream: int = 0, proto: int = TCP, sport: int = 40000, dport: int = 443,
       layer: int = 0, src: int = 1, dst: int = 2) -> dict[str, int]:
    return {"stream": stream, "ip_proto": proto, "src_port": sport, "dst_port": dport,
            "layer": layer, "src_lo": src, "dst_lo": dst}


def view(packets: list[tuple[bytes, list[dict[str, int]]]], first_frame: int = 1,
         start_ns: int = 1_000) -> PacketView:
    """A view of ``packets`` (payload, events); frames numbered from ``first_frame``."""
    payloads = [p for p, _ in packets]
    lens = np.array([len(p) for p in payloads], np.uint32)
    offset = np.zeros(len(packets), np.int64)
    np.cumsum(lens[:-1], out=offset[1:])
    buf = np.frombuffer(b"".join(payloads), np.uint8).copy()
    rows: list[int] = []
    cols: dict[str, list[int]] = {k: [] for k in ev()}
    for i, (_, evs) in enumerate(packets):
        for e in evs:
            rows.append(i)
            for k, v in e.items():
                cols[k].append(v)
    n = len(packets)
    m = len(rows)

    def a(key: str, dt: Any) -> np.ndarray:
        return np.array(cols[key], dtype=dt)

    return PacketView(
        buf=buf, offset=offset, caplen=lens, wirelen=lens + 4,
        linktype=np.ones(n, np.uint16), ts_ns=np.arange(n, dtype=np.int64) * 10 + start_ns,
        frame_no=np.arange(first_frame, first_frame + n, dtype=np.uint64),
        row=np.array(rows, np.int64), layer=a("layer", np.uint8),
        stream=a("stream", np.uint64), ip_proto=a("ip_proto", np.uint8),
        src_port=a("src_port", np.uint16), dst_port=a("dst_port", np.uint16),
        src_hi=np.zeros(m, np.uint64), src_lo=a("src_lo", np.uint64),
        dst_hi=np.zeros(m, np.uint64), dst_lo=a("dst_lo", np.uint64),
        direction=np.zeros(m, np.uint8), start_ns=np.full(m, start_ns, np.int64))


def packets_of(h: Heads) -> list[bytes]:
    return [h.buf[o:o + c].tobytes() for o, c in zip(h.offset.tolist(), h.caplen.tolist(),
                                                     strict=True)]


def test_first_k_packets_of_each_stream_across_batches() -> None:
    sel = HeadSelector(head_packets=3)
    # stream 1 and stream 5 interleaved; 4 packets of stream 1 in the first batch
    sel.observe(view([(b"a1", [ev(1)]), (b"b1", [ev(5)]), (b"a2", [ev(1)]), (b"a3", [ev(1)]),
                      (b"a4", [ev(1)]), (b"b2", [ev(5)])]))
    sel.observe(view([(b"b3", [ev(5)]), (b"b4", [ev(5)]), (b"a5", [ev(1)]),
                      (b"c1", [ev(9)])], first_frame=7))
    h = sel.take()
    assert packets_of(h) == [b"a1", b"b1", b"a2", b"a3", b"b2", b"b3", b"c1"]
    assert h.frame_no.tolist() == [1, 2, 3, 4, 6, 7, 10]
    assert h.stream.tolist() == [1, 5, 1, 1, 5, 5, 9]
    assert h.wirelen.tolist() == [6] * 7
    assert (sel.seen, sel.kept) == (10, 7)
    assert len(sel.take()) == 0  # taken: nothing held


def test_dns_ports_are_kept_whole_and_other_ports_only_at_the_head() -> None:
    sel = HeadSelector(head_packets=1)
    pk = [(f"q{i}".encode(), [ev(3, UDP, 5353 if i % 2 else 40000, 53)]) for i in range(5)]
    pk += [(b"m1", [ev(4, UDP, 5353, 5353)]), (b"m2", [ev(4, UDP, 5353, 5353)]),
           (b"l1", [ev(8, TCP, 5355, 40001)]), (b"l2", [ev(8, TCP, 5355, 40001)]),
           (b"x1", [ev(7, UDP, 40000, 5354)]), (b"x2", [ev(7, UDP, 40000, 5354)])]
    sel.observe(view(pk))
    assert packets_of(sel.take()) == [b"q0", b"q1", b"q2", b"q3", b"q4", b"m1", b"m2", b"l1",
                                      b"l2", b"x1"]


def test_stream_less_l4_fragments_are_kept_up_to_a_cap_per_pair() -> None:
    sel = HeadSelector(head_packets=2, fragments_per_pair=2)
    frag = [(f"f{i}".encode(), [ev(0, UDP, 0, 0, src=1, dst=2)]) for i in range(3)]
    other = [(b"g0", [ev(0, UDP, 0, 0, src=3, dst=2)])]
    icmp = [(b"i0", [ev(0, 1, 0, 0)])]
    sel.observe(view([*frag, *other, *icmp, (b"done", [ev(4, UDP, 1000, 443)])]))
    h = sel.take()
    assert packets_of(h) == [b"f0", b"f1", b"g0", b"done"]
    assert h.stream.tolist() == [0, 0, 0, 4]


def test_a_tunnelled_packet_carries_its_innermost_stream() -> None:
    sel = HeadSelector(head_packets=4)
    # outer UDP (VXLAN-like, stream 2) carrying inner TCP stream 3; events out of order
    sel.observe(view([(b"t1", [ev(3, TCP, 40000, 443, layer=1), ev(2, UDP, 5000, 4789)]),
                      (b"t2", [ev(2, UDP, 5000, 4789), ev(3, TCP, 443, 40000, layer=1)])]))
    h = sel.take()
    assert h.stream.tolist() == [3, 3]
    assert h.ip_proto.tolist() == [TCP, TCP]


def test_copies_outlive_the_batch_buffer_and_keep_time_and_interval() -> None:
    sel = HeadSelector(head_packets=2)
    v = view([(b"hello", [ev(1)]), (b"world!", [ev(1)])], start_ns=5_000)
    sel.observe(v)
    v.buf[:] = 0  # the capture reuses its buffer
    h = sel.take()
    assert packets_of(h) == [b"hello", b"world!"]
    assert h.ts_ns.tolist() == [5_000, 5_010]
    assert h.start_ns.tolist() == [5_000, 5_000]
    assert h.nbytes == 11


def test_memory_bound_drops_and_counts() -> None:
    sel = HeadSelector(head_packets=10, max_pending_bytes=10)
    sel.observe(view([(b"aaaa", [ev(1)]), (b"bbbb", [ev(1)]), (b"cccc", [ev(1)])]))
    sel.observe(view([(b"dd", [ev(2)]), (b"e", [ev(3)])], first_frame=4))
    assert (sel.kept, sel.dropped, sel.pending, sel.pending_bytes) == (3, 2, 3, 10)
    assert packets_of(sel.take()) == [b"aaaa", b"bbbb", b"dd"]
    sel.observe(view([(b"ffff", [ev(4)])], first_frame=6))  # room again after take()
    assert packets_of(sel.take()) == [b"ffff"]


def test_heads_concat_keeps_every_packet() -> None:
    sel = HeadSelector(head_packets=5)
    sel.observe(view([(b"x", [ev(1)])]))
    one = sel.take()
    sel.observe(view([(b"yy", [ev(2)]), (b"zzz", [ev(2)])], first_frame=2))
    two = sel.take()
    both = Heads.concat([one, two])
    assert packets_of(both) == [b"x", b"yy", b"zzz"]
    assert both.frame_no.tolist() == [1, 2, 3]
    assert len(Heads.empty()) == 0
