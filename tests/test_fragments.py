"""IP reassembly: completion on the last-arriving fragment, duplicates, gaps, snaplen cuts,
IPv6, bounded state; and the whole pipeline against tshark's reassembly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from fixtures.packets import (
    ET_IPV6,
    LT_RAW,
    TCP,
    UDP,
    Frame,
    cut,
    ethernet,
    flow_conversations,
    index_of,
    ipv4_fragments,
    ipv6_fragments,
    needs_tshark,
    tcp,
    tshark_conversations,
    tshark_fields,
    udp,
    write_pcap,
)

from netwarden.sensor.decode import decode
from netwarden.sensor.fragments import Reassembled, Reassembler
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings
from netwarden.sensor.records import FLOW_COLUMNS, TAP_L4, FlowBatch, concat

A, B = "192.0.2.1", "198.51.100.2"
X, Y = "2001:db8::1", "2001:db8::2"
DGRAM = udp(1111, 2222, bytes(range(256)) * 2)  # 520 bytes: fragments of 160 -> 4 parts


def _v4(ident: int = 0x1234, src: str = A) -> list[bytes]:
    return [ethernet(f) for f in ipv4_fragments(src, B, UDP, DGRAM, 160, ident=ident)]


def _v6(ident: int = 0xABCD) -> list[bytes]:
    return [ethernet(f, ET_IPV6) for f in ipv6_fragments(X, Y, UDP, DGRAM, 160, ident=ident)]


def _feed(r: Reassembler, datas: list[bytes]) -> list[tuple[int, Reassembled]]:
    """Decode ``datas`` as one batch, hand its fragments to ``r``; return
    (packet index in ``datas`` that completed, result) per completed datagram."""
    buf, off, cap, lts = index_of(datas)
    ev = decode(buf, off, cap, lts).events
    fev = ev.take(np.flatnonzero(ev.frag))
    end = off[fev.row] + cap[fev.row].astype(np.int64)
    return [(int(fev.row[d.event]), d) for d in r.add(buf, end, fev)]


def _ports_of(packet: bytes) -> tuple[int, int, int]:
    buf = np.frombuffer(packet, np.uint8)
    ev = decode(buf, np.zeros(1, np.int64), np.array([len(packet)], np.uint32),
                np.array([LT_RAW], np.uint16)).events
    assert len(ev) == 1
    return int(ev.ip_proto[0]), int(ev.src_port[0]), int(ev.dst_port[0])


def test_in_order_fragments_complete_on_the_last() -> None:
    done = _feed(Reassembler(), _v4())
    assert [i for i, _ in done] == [3]
    pkt = done[0][1].packet
    assert done[0][1].version == 4
    assert pkt[0] == 0x45 and struct.unpack("!H", pkt[2:4])[0] == 20 + len(DGRAM)
    assert struct.unpack("!H", pkt[6:8])[0] == 0  # no MF, no offset
    assert pkt[20:] == DGRAM
    assert _ports_of(pkt) == (UDP, 1111, 2222)


@pytest.mark.parametrize("order", [[2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]])
def test_out_of_order_fragments_complete_on_the_last_arriving(order: list[int]) -> None:
    parts = _v4()
    done = _feed(Reassembler(), [parts[i] for i in order])
    assert [i for i, _ in done] == [3]
    assert done[0][1].packet[20:] == DGRAM


def test_duplicates_complete_once() -> None:
    p = _v4()
    done = _feed(Reassembler(), [p[0], p[1], p[0], p[1], p[2], p[3], p[3], p[1]])
    assert [i for i, _ in done] == [5]
    assert done[0][1].packet[20:] == DGRAM


def test_overlapping_fragments_complete() -> None:
    raw = ipv4_fragments(A, B, UDP, DGRAM, 160)
    # a re-fragmented copy of bytes 0..320 in one piece overlaps two fragments
    big = ipv4_fragments(A, B, UDP, DGRAM, 320)[0]
    done = _feed(Reassembler(), [ethernet(raw[1]), ethernet(big), ethernet(raw[3]),
                                 ethernet(raw[2])])
    assert [i for i, _ in done] == [3]
    assert done[0][1].packet[20:] == DGRAM


def test_a_datagram_with_a_gap_never_completes_until_it_is_filled() -> None:
    p = _v4()
    r = Reassembler()
    assert _feed(r, [p[0], p[1], p[3]]) == []
    assert _feed(r, [_v4(ident=7)[0]]) == []  # another datagram does not fill the gap
    done = _feed(r, [p[2]])  # state kept across calls (batches)
    assert [i for i, _ in done] == [0]
    assert done[0][1].packet[20:] == DGRAM


def test_snaplen_truncated_fragment_never_completes() -> None:
    p = _v4()
    r = Reassembler()
    assert _feed(r, [p[0], p[1][:100], p[2], p[3]]) == []
    assert _feed(Reassembler(), [p[0], p[1], p[2], p[3][:60]]) == []


def test_full_copy_of_a_truncated_fragment_completes_the_datagram() -> None:
    # tshark leaves a cut fragment out of the reassembly; a whole copy still completes it
    p = _v4()
    done = _feed(Reassembler(), [p[0], p[1][:100], p[2], p[3], p[1]])
    assert [i for i, _ in done] == [4]
    assert done[0][1].packet[20:] == DGRAM


def test_datagrams_are_told_apart_by_addresses_and_id() -> None:
    a, b, c = _v4(ident=1), _v4(ident=2), _v4(ident=1, src="192.0.2.99")
    done = _feed(Reassembler(), [a[0], b[0], c[0], a[1], b[1], c[1], a[2], b[2], c[2],
                                 c[3], a[3]])
    assert [i for i, _ in done] == [9, 10]
    assert all(d.packet[20:] == DGRAM for _, d in done)


def test_ipv4_datagrams_of_two_protocols_with_one_id_do_not_mix() -> None:
    u = _v4(ident=9)
    t = [ethernet(f) for f in ipv4_fragments(A, B, TCP, tcp(1, 2, payload=b"t" * 500), 160,
                                             ident=9)]
    done = _feed(Reassembler(), [u[0], t[0], u[1], t[1], u[2], t[2], u[3], t[3]])
    assert [i for i, _ in done] == [6, 7]
    assert done[0][1].packet[20:] == DGRAM
    assert _ports_of(done[1][1].packet) == (TCP, 1, 2)


def test_ipv6_out_of_order() -> None:
    p = _v6()
    done = _feed(Reassembler(), [p[3], p[1], p[0], p[2]])
    assert [i for i, _ in done] == [3]
    pkt = done[0][1].packet
    assert done[0][1].version == 6 and pkt[0] >> 4 == 6
    assert struct.unpack("!H", pkt[4:6])[0] == len(DGRAM) and pkt[6] == UDP
    assert pkt[8:40] == p[2][14 + 8:14 + 40]  # the completing fragment's addresses
    assert pkt[40:] == DGRAM
    assert _ports_of(pkt) == (UDP, 1111, 2222)


def test_ipv4_and_ipv6_datagrams_with_equal_ids_do_not_mix() -> None:
    p4, p6 = _v4(ident=5), _v6(ident=5)
    done = _feed(Reassembler(), [p4[0], p6[0], p4[1], p6[1], p4[2], p6[2], p6[3], p4[3]])
    assert [(i, d.version) for i, d in done] == [(6, 6), (7, 4)]


def test_pending_datagrams_are_bounded_oldest_first() -> None:
    r = Reassembler(max_pending=2)
    first = [_v4(ident=i) for i in range(3)]
    assert _feed(r, [f[0] for f in first]) == []  # datagram 0 is dropped
    assert _feed(r, first[0][1:]) == []
    done = _feed(r, first[2][1:])
    assert [i for i, _ in done] == [2]


# --------------------------------------------------------------------------- pipeline vs tshark


def _scenarios() -> list[Frame]:
    """Several datagrams, each on its own UDP/TCP 4-tuple, fragments interleaved."""
    def v4(sport: int, ident: int, proto: int = UDP) -> list[bytes]:
        body = (udp(sport, 2222, b"u" * 300) if proto == UDP
                else tcp(sport, 80, payload=b"t" * 300))
        return [ethernet(f) for f in ipv4_fragments(A, B, proto, body, 128, ident=ident)]

    def v6(sport: int, ident: int) -> list[bytes]:
        return [ethernet(f, ET_IPV6)
                for f in ipv6_fragments(X, Y, UDP, udp(sport, 2222, b"6" * 300), 128,
                                        ident=ident)]

    ordered, shuffled, dup, gap, trunc = v4(1, 1), v4(2, 2), v4(3, 3), v4(4, 4), v4(5, 5)
    tcp4, s6, gap6 = v4(6, 6, TCP), v6(7, 7), v6(8, 8)
    mix_u, mix_t = v4(10, 9), v4(11, 9, TCP)
    seq: list[bytes | tuple[bytes, int]] = [
        ordered[0], shuffled[2], ordered[1], dup[0], shuffled[0], ordered[2], dup[0],
        gap[0], shuffled[1], dup[1], trunc[0], (trunc[1], 80), dup[2], trunc[2], gap[2],
        tcp4[1], tcp4[0], s6[2], s6[0], gap6[0], tcp4[2], s6[1], gap6[2], trunc[1],
        dup[1],  # a late duplicate after completion starts nothing new
        # one id, two protocols: two datagrams for tshark's IPv4 reassembly
        mix_u[0], mix_t[0], mix_u[1], mix_t[1], mix_u[2], mix_t[2],
    ]
    return [cut(d[0], d[1], 1_700_000_000_000_000_000 + i * 1000) if isinstance(d, tuple)
            else Frame(d, 1_700_000_000_000_000_000 + i * 1000) for i, d in enumerate(seq)]


@needs_tshark
@pytest.mark.parametrize("batch", [65536, 3])
def test_pipeline_reassembles_like_tshark(tmp_path: Path, batch: int) -> None:
    path = write_pcap(tmp_path / "frags.pcap", _scenarios())
    got: list[FlowBatch] = []
    FileAnalyzer("f", PipelineSettings(hierarchy=False, batch_packets=batch)).run(
        path, got.append)
    flows = concat(FLOW_COLUMNS, [b.flows for b in got])
    for kind in ("ip", "ipv6", "udp", "tcp"):
        assert flow_conversations(flows, kind) == tshark_conversations(path, kind), kind
    # the L4 header is credited in the frame that completes the datagram, as in tshark
    ours = sorted(int(f) for f, t in zip(flows["first_frame"], flows["tap"], strict=True)
                  if int(t) & TAP_L4)
    theirs = [int(n) for n, u, t in tshark_fields(path, ["frame.number", "udp.srcport",
                                                         "tcp.srcport"]) if u or t]
    assert ours == theirs
    assert theirs == [6, 9, 13, 21, 22, 24, 30, 31]
