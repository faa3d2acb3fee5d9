"""The vectorised decoder on hand-built frames: link types, tunnels, truncation, taps.

Unit tests read the events directly; two captures (every link type as a pcapng interface,
and a "zoo" of edge cases) are also read by the real tshark to prove the expectations are
tshark's: its conversation tables and the outermost TCP/UDP ports of each frame.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from fixtures.packets import (
    ACK,
    ET_ARP,
    ET_IPV4,
    ET_IPV6,
    ET_PPPOE,
    ET_QINQ,
    ET_TEB,
    ET_VLAN,
    GRE,
    ICMP,
    ICMPV6,
    IPIP,
    IPV6_IN_IP,
    LT_ETHERNET,
    LT_IPV4,
    LT_IPV6,
    LT_LOOP,
    LT_NULL,
    LT_RAW,
    LT_SLL,
    LT_SLL2,
    SYN,
    TCP,
    UDP,
    Frame,
    Interface,
    cut,
    ethernet,
    ethernet_tagged,
    ext_header,
    flow_conversations,
    frag6_header,
    gre,
    icmp,
    icmpv6,
    index_of,
    ipv4,
    ipv4_fragments,
    ipv6,
    ipv6_fragments,
    mapped,
    needs_tshark,
    null,
    pppoe_session,
    sll,
    sll2,
    tcp,
    tcp_options_syn,
    teredo,
    tshark_conversations,
    tshark_fields,
    udp,
    vxlan,
    write_pcap,
    write_pcapng,
)

from netwarden.sensor.decode import Events, decode
from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings
from netwarden.sensor.records import (
    FLOW_COLUMNS,
    TAP_FIRST_V4,
    TAP_FIRST_V6,
    TAP_IP,
    TAP_L4,
    TAP_OUTER_L4,
    Columns,
    FlowBatch,
    concat,
)

A, B = "192.0.2.1", "198.51.100.2"
C, D = "10.1.1.1", "10.2.2.2"
X, Y = "2001:db8::1", "2001:db8::2"
ALL = TAP_IP | TAP_L4 | TAP_OUTER_L4

Row = tuple[int, int, int, int, int, int, int]  # row, layer, version, proto, sport, dport, tap


def _decode(datas: list[bytes], lt: int | list[int] = LT_ETHERNET) -> tuple[np.ndarray, Events]:
    buf, off, cap, lts = index_of(datas, lt)
    d = decode(buf, off, cap, lts)
    return d.ethertype, d.events


CONV_BITS = ALL  # the TTL bits have a test of their own


def _rows(ev: Events) -> list[Row]:
    return [(int(ev.row[i]), int(ev.layer[i]), int(ev.ip_version[i]), int(ev.ip_proto[i]),
             int(ev.src_port[i]), int(ev.dst_port[i]), int(ev.tap[i]) & CONV_BITS)
            for i in range(len(ev))]


def _one(data: bytes, lt: int = LT_ETHERNET) -> Row:
    _, ev = _decode([data], lt)
    (r,) = _rows(ev)
    return r


def _udp4() -> bytes:
    return ipv4(A, B, UDP, udp(1234, 53, b"query"))


def _udp6() -> bytes:
    return ipv6(X, Y, UDP, udp(1234, 53, b"query"))


# --------------------------------------------------------------------------- link layers

SNAP = b"\xaa\xaa\x03\x00\x00\x00"  # LLC + SNAP header, the ethertype follows


def _snap(payload: bytes, ethertype: int) -> bytes:
    return SNAP + struct.pack("!H", ethertype) + payload


LINK_CASES = {
    "ethernet": (LT_ETHERNET, ethernet(_udp4()), 4, ET_IPV4),
    "ethernet-v6": (LT_ETHERNET, ethernet(_udp6(), ET_IPV6), 6, ET_IPV6),
    "vlan": (LT_ETHERNET, ethernet_tagged(_udp4(), ET_IPV4, [(ET_VLAN, 10)]), 4, ET_IPV4),
    "qinq": (LT_ETHERNET, ethernet_tagged(_udp6(), ET_IPV6, [(ET_QINQ, 100), (ET_VLAN, 20)]),
             6, ET_IPV6),
    "pppoe": (LT_ETHERNET, ethernet(pppoe_session(_udp4()), ET_PPPOE), 4, ET_IPV4),
    "pppoe-v6": (LT_ETHERNET, ethernet(pppoe_session(_udp6(), 0x0057), ET_PPPOE), 6, ET_IPV6),
    "pppoe-over-qinq": (LT_ETHERNET, ethernet_tagged(pppoe_session(_udp4()), ET_PPPOE,
                                                     [(ET_QINQ, 1), (ET_VLAN, 2)]), 4, ET_IPV4),
    "mpls": (LT_ETHERNET, ethernet(struct.pack("!I", (100 << 12) | 0x100 | 64) + _udp4(),
                                   0x8847), 4, ET_IPV4),
    "llc-snap": (LT_ETHERNET, ethernet(_snap(_udp4(), ET_IPV4), 8 + len(_udp4())), 4, ET_IPV4),
    "sll": (LT_SLL, sll(_udp4()), 4, ET_IPV4),
    "sll-llc-snap": (LT_SLL, sll(_snap(_udp6(), ET_IPV6), 0x0004), 6, ET_IPV6),
    "sll-vlan": (LT_SLL, sll(struct.pack("!HH", 5, ET_IPV6) + _udp6(), ET_VLAN), 6, ET_IPV6),
    "sll2": (LT_SLL2, sll2(_udp6(), ET_IPV6), 6, ET_IPV6),
    "null-le": (LT_NULL, null(_udp4(), 2, "<"), 4, ET_IPV4),
    "null-be": (LT_NULL, null(_udp4(), 2, ">"), 4, ET_IPV4),
    "null-v6-bsd": (LT_NULL, null(_udp6(), 24), 6, ET_IPV6),
    "null-v6-freebsd": (LT_NULL, null(_udp6(), 28, ">"), 6, ET_IPV6),
    "null-v6-darwin": (LT_NULL, null(_udp6(), 30), 6, ET_IPV6),
    "loop": (LT_LOOP, null(_udp4(), 2, ">"), 4, ET_IPV4),
    "ppp": (9, b"\xff\x03\x00\x21" + _udp4(), 4, ET_IPV4),
    "ppp-v6-no-address": (9, b"\x00\x57" + _udp6(), 6, ET_IPV6),
    "ppp-hdlc": (50, b"\xff\x03\x00\x21" + _udp4(), 4, ET_IPV4),
    "raw-v4": (LT_RAW, _udp4(), 4, ET_IPV4),
    "raw-old": (12, _udp6(), 6, ET_IPV6),
    "raw-v6": (LT_RAW, _udp6(), 6, ET_IPV6),
    "ipv4": (LT_IPV4, _udp4(), 4, ET_IPV4),
    "ipv6": (LT_IPV6, _udp6(), 6, ET_IPV6),
}


@pytest.mark.parametrize("case", LINK_CASES)
def test_each_link_type_reaches_the_ip_header(case: str) -> None:
    lt, data, version, ethertype = LINK_CASES[case]
    et, ev = _decode([data], lt)
    assert _rows(ev) == [(0, 0, version, UDP, 1234, 53, ALL)]
    assert et.tolist() == [ethertype]
    src, dst = (A, B) if version == 4 else (X, Y)
    assert (int(ev.src_hi[0]), int(ev.src_lo[0])) == mapped(src)
    assert (int(ev.dst_hi[0]), int(ev.dst_lo[0])) == mapped(dst)
    assert ev.ttl[0] == 64


NON_IP_CASES = {
    "arp": (LT_ETHERNET, ethernet(b"\0\x01\x08\0\x06\x04\0\x01" + b"\0" * 20, ET_ARP), ET_ARP),
    "llc": (LT_ETHERNET, ethernet(b"\x42\x42\x03" + b"\0" * 35, 38), 0),
    "null-linux-inet6": (LT_NULL, null(_udp6(), 10), 0),  # tshark: "null:data"
    "raw-garbage": (LT_RAW, b"\x20" + b"\0" * 30, 0),
    "runt-ethernet": (LT_ETHERNET, b"\x02\0\0\0\0\x01\x02", 0),
}


@pytest.mark.parametrize("case", NON_IP_CASES)
def test_a_frame_without_ip_is_one_layer_0_event(case: str) -> None:
    lt, data, ethertype = NON_IP_CASES[case]
    et, ev = _decode([data], lt)
    assert _rows(ev) == [(0, 0, 0, 0, 0, 0, 0)]
    assert et.tolist() == [ethertype]
    assert ev.src_hi[0] == ev.src_lo[0] == ev.dst_lo[0] == 0


def test_events_come_sorted_by_packet_and_layer() -> None:
    tunnel = ethernet(ipv4(C, D, IPIP, _udp4()))
    datas = [tunnel, ethernet(b"\0" * 28, ET_ARP), tunnel, ethernet(_udp6(), ET_IPV6)]
    _, ev = _decode(datas)
    assert [(r[0], r[1]) for r in _rows(ev)] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0)]


def test_empty_batch() -> None:
    buf = np.zeros(0, np.uint8)
    d = decode(buf, np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.uint16))
    assert len(d.events) == 0 and len(d.ethertype) == 0


def test_first_layer_numbers_the_headers_and_skips_non_ip() -> None:
    buf, off, cap, lts = index_of([_udp4(), b"\x00" * 20], LT_RAW)
    ev = decode(buf, off, cap, lts, first_layer=2).events
    assert _rows(ev) == [(0, 2, 4, UDP, 1234, 53, ALL)]


# --------------------------------------------------------------------------- truncation


def test_ipv4_header_cut_by_snaplen_is_one_non_ip_event() -> None:
    with_opts = ethernet(ipv4(A, B, UDP, udp(1, 2), options=b"\x94\x04\0\0"))
    datas = [ethernet(_udp4())[:14 + 16], with_opts[:14 + 22], ethernet(_udp4())[:14 + 19]]
    et, ev = _decode(datas)
    assert _rows(ev) == [(i, 0, 0, 0, 0, 0, 0) for i in range(3)]
    assert et.tolist() == [ET_IPV4] * 3


def test_ipv4_total_length_below_header_length_is_not_ip() -> None:
    # tshark: "Bogus IP length", no ip.src, no tap; a total length of 0 is TSO and is IP
    bogus = ethernet(ipv4(A, B, UDP, udp(5, 6, b"hello"), total_len=12))
    tso = ethernet(ipv4(A, B, TCP, tcp(5, 6, flags=SYN), total_len=0))
    _, ev = _decode([bogus, tso])
    assert _rows(ev) == [(0, 0, 0, 0, 0, 0, 0), (1, 0, 4, TCP, 5, 6, ALL)]


def test_tcp_options_cut_by_snaplen_credit_ports_but_not_the_conversation() -> None:
    syn = ethernet(ipv4(A, B, TCP, tcp(40000, 443, seq=77, flags=SYN, options=tcp_options_syn())))
    _, ev = _decode([syn[:14 + 20 + 30]])  # 10 of 20 option bytes
    assert _rows(ev) == [(0, 0, 4, TCP, 40000, 443, TAP_IP | TAP_OUTER_L4)]
    assert ev.has_ports[0] and ev.tcp_flags[0] == SYN and ev.tcp_seq[0] == 77


def test_tcp_header_cut_before_its_flags_has_no_flags() -> None:
    # the bytes past the capture (0xff in index_of, the next record in a file) are not read:
    # garbage there once looked like a SYN and split the stream
    seg = ethernet(ipv4(A, B, TCP, tcp(40000, 443, seq=77, flags=SYN | ACK)))
    _, ev = _decode([seg[:14 + 20 + 4], seg[:14 + 20 + 15], seg[:14 + 20 + 16]])
    assert [r[4:] for r in _rows(ev)] == [(40000, 443, TAP_IP | TAP_OUTER_L4)] * 3
    assert ev.tcp_flags.tolist() == [0, 0, SYN | ACK]
    assert ev.tcp_seq.tolist() == [0, 0, 77]


def test_tcp_and_udp_headers_cut_to_their_ports() -> None:
    t = ethernet(ipv4(A, B, TCP, tcp(1, 2)))
    u = ethernet(ipv4(A, B, UDP, udp(3, 4, b"xx")))
    _, ev = _decode([t[:14 + 20 + 3], u[:14 + 20 + 4], u[:14 + 20 + 7], u[:14 + 20 + 8]])
    assert _rows(ev) == [(0, 0, 4, TCP, 0, 0, TAP_IP),
                         (1, 0, 4, UDP, 3, 4, TAP_IP | TAP_OUTER_L4),
                         (2, 0, 4, UDP, 3, 4, TAP_IP | TAP_OUTER_L4),
                         (3, 0, 4, UDP, 3, 4, ALL)]
    assert ev.has_ports.tolist() == [False, True, True, True]


def test_l4_ends_with_the_ip_datagram_not_the_frame() -> None:
    # IPv4 total length 24 leaves 4 bytes of a 20-byte TCP header: tshark shows the ports
    # but no stream and no conversation. Ethernet padding after a short datagram is ignored.
    short_len = ethernet(ipv4(A, B, TCP, tcp(5, 6), total_len=24))
    padded = ethernet(ipv4(A, B, TCP, tcp(7, 8, flags=ACK))) + b"\0" * 6
    v6_short = ethernet(_udp6(), ET_IPV6)
    v6_short = v6_short[:18] + struct.pack("!H", 4) + v6_short[20:]
    v6_zero = v6_short[:18] + b"\0\0" + v6_short[20:]
    _, ev = _decode([short_len, padded, v6_short, v6_zero])
    assert _rows(ev) == [(0, 0, 4, TCP, 5, 6, TAP_IP | TAP_OUTER_L4),
                         (1, 0, 4, TCP, 7, 8, ALL),
                         (2, 0, 6, UDP, 1234, 53, TAP_IP | TAP_OUTER_L4),
                         (3, 0, 6, UDP, 0, 0, TAP_IP)]
    assert ev.tcp_flags.tolist()[:2] == [0, ACK]


def _ulen(u: bytes, n: int) -> bytes:
    return u[:4] + struct.pack("!H", n) + u[6:]


def test_udp_length_below_8_is_bogus_and_stops_the_dissection() -> None:
    # tshark shows the ports but no stream, no conversation and no tunnel; 0 is an IPv6
    # jumbogram and counts; a length past the datagram is only clamped
    tunnel = udp(40000, 4789, vxlan(ethernet(_V4_TCP)))
    datas = [ethernet(ipv4(A, B, UDP, _ulen(udp(1, 2, b"abcdef"), 4))),
             ethernet(ipv4(A, B, UDP, _ulen(udp(3, 4, b"abcdef"), 0))),
             ethernet(ipv6(X, Y, UDP, _ulen(udp(5, 6, b"abcdef"), 0)), ET_IPV6),
             ethernet(ipv4(A, B, UDP, _ulen(udp(7, 8, b"abcdef"), 400))),
             ethernet(ipv4(A, B, UDP, _ulen(tunnel, 4))),
             ethernet(ipv4(A, B, UDP, _ulen(tunnel, 8 + 8 + 14 + 19))),  # inner header cut
             ethernet(ipv4(A, B, UDP, tunnel))]
    _, ev = _decode(datas)
    assert _rows(ev) == [(0, 0, 4, UDP, 1, 2, TAP_IP | TAP_OUTER_L4),
                         (1, 0, 4, UDP, 3, 4, TAP_IP | TAP_OUTER_L4),
                         (2, 0, 6, UDP, 5, 6, ALL),
                         (3, 0, 4, UDP, 7, 8, ALL),
                         (4, 0, 4, UDP, 40000, 4789, TAP_IP | TAP_OUTER_L4),
                         (5, 0, 4, UDP, 40000, 4789, ALL),
                         (6, 0, 4, UDP, 40000, 4789, ALL),
                         (6, 1, 4, TCP, 50000, 80, TAP_IP | TAP_L4)]


def test_ipv6_extension_headers_are_walked() -> None:
    chain = (ext_header(60) + ext_header(43, b"\0\0\0\0\0\0")  # hop-by-hop, dst opts
             + struct.pack("!BBBB4s", TCP, 0, 0, 0, b"\0" * 4))  # routing, 0 segments
    data = ethernet(ipv6(X, Y, 0, chain + tcp(1, 2, flags=SYN)), ET_IPV6)
    _, ev = _decode([data])
    assert _rows(ev) == [(0, 0, 6, TCP, 1, 2, ALL)]
    assert ev.payload_pos[0] == 14 + 40 + 24


def test_ipv6_extension_header_cut_by_snaplen_taps_nothing() -> None:
    # tshark shows both addresses but neither conv,ipv6 nor the ports: the event keeps
    # the addresses (talkers count them) without any tap bit
    data = ethernet(ipv6(X, Y, 0, ext_header(60) + ext_header(UDP) + udp(1, 2, b"x")),
                    ET_IPV6)
    datas = [data[:14 + 41], data[:14 + 48], data[:14 + 52], data[:14 + 56]]
    _, ev = _decode(datas)
    assert _rows(ev)[:3] == [(0, 0, 6, 0, 0, 0, 0), (1, 0, 6, 60, 0, 0, 0),
                             (2, 0, 6, UDP, 0, 0, 0)]
    assert _rows(ev)[3] == (3, 0, 6, UDP, 0, 0, TAP_IP)  # chain complete, UDP header cut
    assert (int(ev.src_hi[0]), int(ev.src_lo[0])) == mapped(X)


def test_ipv6_header_cut_by_snaplen_is_non_ip() -> None:
    _, ev = _decode([ethernet(_udp6(), ET_IPV6)[:14 + 39]])
    assert _rows(ev) == [(0, 0, 0, 0, 0, 0, 0)]


# --------------------------------------------------------------------------- fragments


def test_ipv6_atomic_fragment_is_unfragmented() -> None:
    data = ethernet(ipv6(X, Y, 44, frag6_header(UDP, 0, False, 99) + udp(7, 8, b"atomic")),
                    ET_IPV6)
    _, ev = _decode([data])
    assert _rows(ev) == [(0, 0, 6, UDP, 7, 8, ALL)]
    assert not ev.frag[0]


def test_fragments_are_reported_with_their_fields_and_no_ports() -> None:
    payload = udp(1111, 2222, b"Z" * 100)
    f4 = ipv4_fragments(A, B, UDP, payload, 48, ident=0x4242)
    f6 = ipv6_fragments(X, Y, UDP, payload, 48, ident=0xBEEF)
    _, ev = _decode([ethernet(f) for f in f4] + [ethernet(f, ET_IPV6) for f in f6])
    rows = _rows(ev)
    # IPv4 fragments feed conv,ip; IPv6 fragments are tapped only once reassembled
    assert rows == ([(i, 0, 4, UDP, 0, 0, TAP_IP) for i in range(3)]
                    + [(i, 0, 6, UDP, 0, 0, 0) for i in range(3, 6)])
    assert ev.frag.all()
    assert ev.frag_id.tolist() == [0x4242] * 3 + [0xBEEF] * 3
    assert ev.frag_off.tolist() == [0, 48, 96] * 2
    assert ev.frag_more.tolist() == [True, True, False] * 2
    assert ev.payload_len.tolist() == [48, 48, len(payload) - 96] * 2
    assert ev.payload_pos[0] == 14 + 20 and ev.payload_pos[3] - ev.hdr_pos[3] == 48


def test_a_fragmented_tunnel_is_not_followed() -> None:
    inner = ipv4(C, D, UDP, udp(1, 2, b"q" * 40))
    first = ipv4_fragments(A, B, IPIP, inner, 32)[0]
    _, ev = _decode([ethernet(first)])
    assert _rows(ev) == [(0, 0, 4, IPIP, 0, 0, TAP_IP)]


# --------------------------------------------------------------------------- tunnels

_TCP_IN = tcp(50000, 80, flags=SYN)
_V4_TCP = ipv4(C, D, TCP, _TCP_IN)
_V6_UDP = ipv6(X, Y, UDP, udp(5353, 5353, b"m"))
_PPTP = (bytes([0x30, 0x81]) + struct.pack("!HHHII", 0x880B, 4 + len(_V4_TCP), 7, 1, 0)
         + b"\xff\x03\x00\x21" + _V4_TCP)
_GENEVE = struct.pack("!BBHI", 0, 0, ET_TEB, 0x000100) + ethernet(_V4_TCP)

TUNNELS = {
    # name: (frame, [(layer, version, proto, sport, dport, tap) ...])
    "gre": (ethernet(ipv4(A, B, GRE, gre(_V4_TCP, key=5, seq=9, checksum=True))),
            [(0, 4, GRE, 0, 0, TAP_IP), (1, 4, TCP, 50000, 80, ALL)]),
    "gre-teb": (ethernet(ipv4(A, B, GRE, gre(ethernet(_V4_TCP), ET_TEB))),
                [(0, 4, GRE, 0, 0, TAP_IP), (1, 4, TCP, 50000, 80, ALL)]),
    "gre-in-gre": (ethernet(ipv4(A, B, GRE, gre(ipv4(C, D, GRE, gre(
        ipv4("10.3.3.3", "10.4.4.4", ICMP, icmp(8, 0, b"ping"))))))),
        [(0, 4, GRE, 0, 0, TAP_IP), (1, 4, GRE, 0, 0, TAP_IP), (2, 4, ICMP, 0, 0, TAP_IP)]),
    "pptp": (ethernet(ipv4(A, B, GRE, _PPTP)),
             [(0, 4, GRE, 0, 0, TAP_IP), (1, 4, TCP, 50000, 80, ALL)]),
    "vxlan": (ethernet(ipv4(A, B, UDP, udp(40000, 4789, vxlan(ethernet(_V4_TCP))))),
              [(0, 4, UDP, 40000, 4789, ALL), (1, 4, TCP, 50000, 80, TAP_IP | TAP_L4)]),
    "geneve": (ethernet(ipv4(A, B, UDP, udp(40001, 6081, _GENEVE))),
               [(0, 4, UDP, 40001, 6081, ALL), (1, 4, TCP, 50000, 80, TAP_IP | TAP_L4)]),
    "ipip": (ethernet(ipv4(A, B, IPIP, _V4_TCP)),
             [(0, 4, IPIP, 0, 0, TAP_IP), (1, 4, TCP, 50000, 80, ALL)]),
    "6in4": (ethernet(ipv4(A, B, IPV6_IN_IP, _V6_UDP)),
             [(0, 4, IPV6_IN_IP, 0, 0, TAP_IP), (1, 6, UDP, 5353, 5353, ALL)]),
    "4in6": (ethernet(ipv6(X, Y, IPIP, _V4_TCP), ET_IPV6),
             [(0, 6, IPIP, 0, 0, TAP_IP), (1, 4, TCP, 50000, 80, ALL)]),
    "teredo": (ethernet(ipv4(A, B, UDP, udp(3544, 50001, teredo(_V6_UDP)))),
               [(0, 4, UDP, 3544, 50001, ALL), (1, 6, UDP, 5353, 5353, TAP_IP | TAP_L4)]),
    "teredo-origin": (ethernet(ipv4(A, B, UDP, udp(50002, 3544, teredo(_V6_UDP, origin=True)))),
                      [(0, 4, UDP, 50002, 3544, ALL), (1, 6, UDP, 5353, 5353, TAP_IP | TAP_L4)]),
}


@pytest.mark.parametrize("case", TUNNELS)
def test_tunnels_give_one_event_per_ip_layer(case: str) -> None:
    data, want = TUNNELS[case]
    _, ev = _decode([data])
    assert [r[1:] for r in _rows(ev)] == want
    # the outermost TCP/UDP header of the frame, wherever it is, credits the ports
    assert int(((ev.tap & TAP_OUTER_L4) != 0).sum()) == int(ev.has_ports.any())


def test_udp_tunnel_port_loses_to_a_lower_well_known_port() -> None:
    # tshark tries the lower port first: DNS from source port 3544/4789 stays DNS
    dns_like = udp(3544, 53, b"\x60" + b"\0" * 60)
    vx_like = udp(53, 4789, vxlan(ethernet(_V4_TCP)))
    vx_zero = udp(0, 4789, vxlan(ethernet(_V4_TCP)))  # port 0 is skipped by tshark
    _, ev = _decode([ethernet(ipv4(A, B, UDP, dns_like)), ethernet(ipv4(A, B, UDP, vx_like)),
                     ethernet(ipv4(A, B, UDP, vx_zero))])
    assert [(r[0], r[1]) for r in _rows(ev)] == [(0, 0), (1, 0), (2, 0), (2, 1)]


def test_icmp_errors_do_not_decode_the_quoted_headers() -> None:
    quoted4 = ipv4(B, A, UDP, udp(53, 1234, b"answer"))[:28]
    quoted6 = ipv6(Y, X, TCP, tcp(443, 40000))[:48]
    e4 = ethernet(ipv4(C, B, ICMP, icmp(3, 3, quoted4)))
    e6 = ethernet(ipv6("2001:db8::99", Y, ICMPV6, icmpv6(1, 4, quoted6)), ET_IPV6)
    ttl = ethernet(ipv4(C, A, ICMP, icmp(11, 0, ipv4(A, B, ICMP, icmp(8, 0, b"ping"), ttl=1))))
    _, ev = _decode([e4, e6, ttl])
    assert _rows(ev) == [(0, 0, 4, ICMP, 0, 0, TAP_IP), (1, 0, 6, ICMPV6, 0, 0, TAP_IP),
                         (2, 0, 4, ICMP, 0, 0, TAP_IP)]


# --------------------------------------------------------------------------- against tshark


def _zoo() -> list[Frame]:
    syn = ethernet(ipv4(A, B, TCP, tcp(40000, 443, flags=SYN, options=tcp_options_syn())))
    v6_hop = ethernet(ipv6(X, Y, 0, ext_header(60) + ext_header(UDP) + udp(1, 2, b"x")),
                      ET_IPV6)
    (frag4, _) = ipv4_fragments(C, D, UDP, udp(9, 9, b"F" * 64), 40)
    (frag6, _) = ipv6_fragments(X, Y, UDP, udp(9, 9, b"F" * 64), 40)
    quoted = ipv4(B, A, UDP, udp(53, 1234, b"answer"))[:28]
    datas: list[bytes | tuple[bytes, int]] = [
        syn, (syn, 14 + 20 + 30),
        ethernet(ipv4(A, B, UDP, udp(1, 2, b"o"), options=b"\x94\x04\0\0")),
        *(c[1] for c in LINK_CASES.values() if c[0] == LT_ETHERNET),
        *(c[0] for c in TUNNELS.values()),
        *(c[1] for c in NON_IP_CASES.values() if c[0] == LT_ETHERNET),
        (ethernet(_udp4()), 14 + 16), (ethernet(ipv4(C, D, TCP, tcp(3, 4, seq=5))), 14 + 24),
        ethernet(ipv4(A, B, UDP, udp(5, 6, b"hello"), total_len=12)),
        ethernet(ipv4(C, D, TCP, tcp(5, 6), total_len=24)),
        (v6_hop, 14 + 48), v6_hop,
        ethernet(ipv6(X, Y, 44, frag6_header(UDP, 0, False, 99) + udp(7, 8, b"a")), ET_IPV6),
        ethernet(frag4), ethernet(frag6, ET_IPV6),
        ethernet(ipv4(C, B, ICMP, icmp(3, 3, quoted))),
        ethernet(ipv4(A, B, UDP, udp(3544, 53, b"\x60" + b"\0" * 60))),
        ethernet(ipv4(A, B, UDP, udp(53, 4789, vxlan(ethernet(_V4_TCP))))),
        ethernet(ipv4(C, D, UDP, _ulen(udp(11, 12, b"bogus"), 4))),
        ethernet(ipv4(C, D, UDP, _ulen(udp(40000, 4789, vxlan(ethernet(_V4_TCP))), 4))),
        ethernet(ipv4(C, D, UDP, _ulen(udp(40002, 4789, vxlan(ethernet(_V4_TCP))), 49))),
        ethernet(ipv6(X, Y, UDP, _ulen(udp(13, 14, b"jumbo"), 0)), ET_IPV6),
        ethernet(ipv4(C, D, TCP, tcp(15, 16)[:12] + b"\x40" + tcp(15, 16)[13:])),  # hlen 16
    ]
    out = []
    for i, d in enumerate(datas):
        t = 1_700_000_000_000_000_000 + i * 1000
        out.append(cut(d[0], d[1], t) if isinstance(d, tuple) else Frame(d, t))
    return out


def _flows(path: Path) -> Columns:
    got: list[FlowBatch] = []
    FileAnalyzer("zoo", PipelineSettings(hierarchy=False)).run(path, got.append)
    flows: Columns = concat(FLOW_COLUMNS, [b.flows for b in got])
    return flows


def _tshark_outer_ports(path: Path) -> list[tuple[int, int, int] | None]:
    """Per frame, (proto, sport, dport) of the first TCP/UDP header tshark read, the one
    the port rankings credit (``make_truth.py``: not inside an ICMP error)."""
    out: list[tuple[int, int, int] | None] = []
    for protos, tsp, tdp, usp, udp_ in tshark_fields(
            path, ["frame.protocols", "tcp.srcport", "tcp.dstport", "udp.srcport",
                   "udp.dstport"]):
        first: tuple[int, int, int] | None = None
        for p in protos.split(":"):
            if p in ("icmp", "icmpv6"):
                break
            if p == "tcp" and tsp:
                first = (TCP, int(tsp.split(",")[0]), int(tdp.split(",")[0]))
            elif p == "udp" and usp:
                first = (UDP, int(usp.split(",")[0]), int(udp_.split(",")[0]))
            if p in ("tcp", "udp"):
                break
        out.append(first)
    return out


@needs_tshark
def test_zoo_conversations_and_port_credits_equal_tsharks(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "zoo.pcap", _zoo())
    flows = _flows(path)
    for kind in ("ip", "ipv6", "tcp", "udp"):
        assert flow_conversations(flows, kind) == tshark_conversations(path, kind), kind
    idx = read_index(path)
    ev = decode(idx.buf, idx.offset, idx.caplen, idx.linktype).events
    ours: list[tuple[int, int, int] | None] = [None] * len(idx)
    for i in np.flatnonzero(ev.tap & TAP_OUTER_L4):
        assert ours[int(ev.row[i])] is None  # at most one per frame
        ours[int(ev.row[i])] = (int(ev.ip_proto[i]), int(ev.src_port[i]), int(ev.dst_port[i]))
    assert ours == _tshark_outer_ports(path)


@needs_tshark
def test_every_link_type_equals_tsharks(tmp_path: Path) -> None:
    null10 = NON_IP_CASES["null-linux-inet6"]
    cases = [*LINK_CASES.values(), (null10[0], null10[1], 0, 0)]
    lts = sorted({c[0] for c in cases})
    ifaces = [Interface(lt) for lt in lts]
    recs = [Frame(c[1], 1_700_000_000_000_000_000 + i * 1000, iface=lts.index(c[0]))
            for i, c in enumerate(cases)]
    path = write_pcapng(tmp_path / "links.pcapng", ifaces, recs)
    _, ev = _decode([c[1] for c in cases], [c[0] for c in cases])
    theirs = tshark_fields(path, ["ip.src", "ipv6.src", "udp.srcport"])
    assert len(theirs) == len(cases)
    for i, (v4, v6, sport) in enumerate(theirs):
        mine = [r for r in _rows(ev) if r[0] == i]
        assert len(mine) == 1
        want_version = 4 if v4 else 6 if v6 else 0
        assert (mine[0][2], mine[0][4]) == (want_version, int(sport) if sport else 0), i


def test_the_outermost_ipv4_and_ipv6_headers_carry_the_ttl_bits() -> None:
    inner4 = ipv4("10.0.0.1", "10.0.0.2", UDP, udp(1, 2, b"x"), ttl=9)
    teredo6 = ipv4("192.0.2.1", "192.0.2.2", UDP, udp(3544, 50001, teredo(
        ipv6("2001::1", "2001::2", UDP, udp(5000, 6000, b"y")))), ttl=33)
    gre_in_gre = ipv4("192.0.2.1", "192.0.2.2", 47, gre(inner4), ttl=44)
    _, ev = _decode([ethernet(teredo6), ethernet(gre_in_gre)])
    got = [(int(ev.row[i]), int(ev.layer[i]), int(ev.ttl[i]),
            int(ev.tap[i]) & (TAP_FIRST_V4 | TAP_FIRST_V6)) for i in range(len(ev))]
    assert got == [(0, 0, 33, TAP_FIRST_V4), (0, 1, 64, TAP_FIRST_V6),
                   (1, 0, 44, TAP_FIRST_V4), (1, 1, 9, 0)]
