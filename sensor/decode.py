"""Vectorised header decoding: packets in, one *event* per IP header (or per non-IP frame) out.

Every step works on whole arrays of packets at once: a field is read for all packets with
one numpy gather from the capture buffer, and each protocol branch is a boolean mask. A
packet walks down its layers (link → IP → tunnel → IP ...) in a loop whose iterations
are layers, not packets.

What counts follows tshark's taps (see ``records.py`` and ``../shared/pcaps/SOURCES.md``):
each IP header a frame carries is an event at its depth (``layer``); headers quoted inside
ICMP/ICMPv6 errors are not decoded; IP fragments are reported with their fragment fields
so that :mod:`netwarden.sensor.fragments` can reassemble them and credit the L4 header to
the frame that completes the datagram, as tshark does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from netwarden.sensor.records import TAP_FIRST_V4, TAP_FIRST_V6, TAP_IP, TAP_L4, TAP_OUTER_L4

# link-layer header types (https://www.tcpdump.org/linktypes.html)
LT_NULL = 0
LT_ETHERNET = 1
LT_PPP = 9
LT_RAW_OLD = (12, 14)
LT_PPP_HDLC = 50
LT_PPP_ETHER = 51
LT_RAW = 101
LT_LOOP = 108
LT_LINUX_SLL = 113
LT_NFLOG = 239
LT_IPV4 = 228
LT_IPV6 = 229
LT_LINUX_SLL2 = 276

ET_IPV4 = 0x0800
ET_IPV6 = 0x86DD
ET_ARP = 0x0806
ET_VLAN = (0x8100, 0x88A8, 0x9100)
ET_PPPOE = 0x8864
ET_MPLS = (0x8847, 0x8848)
ET_TEB = 0x6558  # transparent Ethernet bridging (GRE)
ET_PPP = 0x880B

IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58
_V6_EXT = (0, 43, 60, 51, 135, 139, 140)  # extension headers walked over (44 = fragment)

UDP_VXLAN = 4789
UDP_TEREDO = 3544
UDP_GENEVE = 6081

MAX_LAYERS = 8
_V4_MAPPED_HI = np.uint64(0)
_V4_MAPPED_LO = np.uint64(0x0000FFFF00000000)


@dataclasses.dataclass
class Events:
    """One row per IP header (or per non-IP frame). ``row`` indexes the input packets."""

    row: np.ndarray  # int64
    layer: np.ndarray  # uint8
    ip_version: np.ndarray  # uint8
    src_hi: np.ndarray  # uint64, address bytes 0-7 (IPv4 mapped into IPv6)
    src_lo: np.ndarray  # uint64, address bytes 8-15
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    ip_proto: np.ndarray  # uint8
    src_port: np.ndarray  # uint16
    dst_port: np.ndarray  # uint16
    ttl: np.ndarray  # uint8
    tcp_flags: np.ndarray  # uint16
    tcp_seq: np.ndarray  # uint32
    tap: np.ndarray  # uint8
    has_ports: np.ndarray  # bool: a TCP/UDP header with ports was read
    # fragment bookkeeping (frag != 0 for a real fragment)
    frag: np.ndarray  # bool
    frag_id: np.ndarray  # uint32
    frag_off: np.ndarray  # int64, bytes
    frag_more: np.ndarray  # bool
    payload_pos: np.ndarray  # int64, absolute position of the IP payload in the buffer
    payload_len: np.ndarray  # int64, payload length the IP header announces
    hdr_pos: np.ndarray  # int64, position of this IP header

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        fields = [f.name for f in dataclasses.fields(cls)]
        if not parts:
            return cls(**{f: np.zeros(0) for f in fields})
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})

    def take(self, sel: np.ndarray) -> Events:
        return Events(**{f.name: getattr(self, f.name)[sel] for f in dataclasses.fields(self)})

    def __len__(self) -> int:
        return len(self.row)


@dataclasses.dataclass
class Decoded:
    """Per-packet facts plus the events."""

    ethertype: np.ndarray  # uint16, per packet: type of the outermost payload (0 unknown)
    events: Events


class _Buf:
    """Bounds-checked vectorised reads from a byte buffer."""

    def __init__(self, buf: np.ndarray) -> None:
        self.buf = buf
        self.last = max(len(buf) - 1, 0)

    def u8(self, pos: np.ndarray) -> np.ndarray:
        if len(self.buf) == 0:
            return np.zeros(len(pos), np.uint8)
        out: np.ndarray = self.buf[np.minimum(pos, self.last)]
        return out

    def u16(self, pos: np.ndarray) -> np.ndarray:
        out: np.ndarray = (self.u8(pos).astype(np.uint16) << 8) | self.u8(pos + 1)
        return out

    def u32(self, pos: np.ndarray) -> np.ndarray:
        out: np.ndarray = (self.u16(pos).astype(np.uint32) << 16) | self.u16(pos + 2)
        return out

    def u64(self, pos: np.ndarray) -> np.ndarray:
        out: np.ndarray = (self.u32(pos).astype(np.uint64) << np.uint64(32)) \
            | self.u32(pos + 4)
        return out


def decode(buf: np.ndarray, offset: np.ndarray, caplen: np.ndarray, linktype: np.ndarray,
           *, first_layer: int = 0) -> Decoded:
    """Decode a batch of packets that share ``buf``."""
    b = _Buf(buf)
    n = len(offset)
    end = offset.astype(np.int64) + caplen.astype(np.int64)
    et, pos = _link_layer(b, offset.astype(np.int64), end, linktype)
    outer_et = et.copy()
    parts: list[Events] = []
    rows = np.arange(n, dtype=np.int64)
    # frames with no IP at all get one layer-0 event
    is_ip = (et == ET_IPV4) | (et == ET_IPV6)
    non_ip = rows[~is_ip]
    if len(non_ip) and first_layer == 0:
        parts.append(_non_ip_events(non_ip))
    seen_l4 = np.zeros(n, dtype=bool)
    seen_ip = np.zeros((n, 2), dtype=bool)  # an IPv4 / IPv6 header seen in an outer layer
    cur_rows, cur_et, cur_pos = rows[is_ip], et[is_ip], pos[is_ip]
    layer = first_layer
    while len(cur_rows) and layer < MAX_LAYERS:
        ev, nxt_rows, nxt_et, nxt_pos = _ip_layer(b, cur_rows, cur_et, cur_pos, end, layer,
                                                  seen_l4, seen_ip)
        if layer == first_layer == 0:
            # an "IP" frame whose header is unreadable still counts once, as non-IP
            bad = np.setdiff1d(cur_rows, ev.row, assume_unique=True)
            if len(bad):
                parts.append(_non_ip_events(bad))
        parts.append(ev)
        cur_rows, cur_et, cur_pos = nxt_rows, nxt_et, nxt_pos
        layer += 1
    events = Events.concat(parts)
    order = np.lexsort((events.layer, events.row))
    return Decoded(ethertype=outer_et, events=events.take(order))


def _non_ip_events(rows: np.ndarray) -> Events:
    m = len(rows)
    z64 = np.zeros(m, np.uint64)
    return Events(
        row=rows, layer=np.zeros(m, np.uint8), ip_version=np.zeros(m, np.uint8),
        src_hi=z64, src_lo=z64, dst_hi=z64, dst_lo=z64, ip_proto=np.zeros(m, np.uint8),
        src_port=np.zeros(m, np.uint16), dst_port=np.zeros(m, np.uint16),
        ttl=np.zeros(m, np.uint8), tcp_flags=np.zeros(m, np.uint16),
        tcp_seq=np.zeros(m, np.uint32), tap=np.zeros(m, np.uint8),
        has_ports=np.zeros(m, bool), frag=np.zeros(m, bool), frag_id=np.zeros(m, np.uint32), frag_off=np.zeros(m, np.int64),
        frag_more=np.zeros(m, bool), payload_pos=np.zeros(m, np.int64),
        payload_len=np.zeros(m, np.int64), hdr_pos=np.zeros(m, np.int64))


# --------------------------------------------------------------------------- link layer

def _link_layer(b: _Buf, off: np.ndarray, end: np.ndarray, lt: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Return (ethertype of the network layer, its position) per packet; 0 = not IP-bearing."""
    n = len(off)
    et = np.zeros(n, np.uint16)
    pos = off.copy()

    m = lt == LT_ETHERNET
    if m.any():
        e, p = _ethernet(b, off[m], end[m])
        et[m], pos[m] = e, p

    m = lt == LT_LINUX_SLL
    if m.any():
        e, p = _after_ethertype(b, b.u16(off[m] + 14), off[m] + 16, end[m])
        et[m], pos[m] = e, p

    m = lt == LT_LINUX_SLL2
    if m.any():
        e, p = _after_ethertype(b, b.u16(off[m]), off[m] + 20, end[m])
        et[m], pos[m] = e, p

    m = (lt == LT_RAW) | np.isin(lt, LT_RAW_OLD)
    if m.any():
        et[m] = _by_version(b, off[m])

    et[lt == LT_IPV4] = ET_IPV4
    et[lt == LT_IPV6] = ET_IPV6

    m = (lt == LT_NULL) | (lt == LT_LOOP)
    if m.any():
        o = off[m]
        # the family is in the capturing host's byte order (NULL) or big-endian (LOOP)
        le = (b.u8(o + 1) == 0) & (b.u8(o + 2) == 0) & (b.u8(o + 3) == 0)
        fam = np.where(le & (lt[m] == LT_NULL), b.u8(o), b.u8(o + 3)).astype(np.uint32)
        e = np.zeros(len(o), np.uint16)
        e[fam == 2] = ET_IPV4
        e[np.isin(fam, (24, 28, 30))] = ET_IPV6  # BSD values; tshark has no entry for 10
        et[m], pos[m] = e, o + 4

    m = np.isin(lt, (LT_PPP, LT_PPP_HDLC))
    if m.any():
        e, p = _ppp(b, off[m])
        et[m], pos[m] = e, p

    m = lt == LT_NFLOG
    if m.any():
        idx = np.flatnonzero(m)
        for i in idx:  # NFLOG is rare: a TLV walk per packet is fine
            e1, p1 = _nflog_one(b.buf, int(off[i]), int(end[i]))
            et[i], pos[i] = e1, p1

    return et, pos


def _by_version(b: _Buf, pos: np.ndarray) -> np.ndarray:
    v = b.u8(pos) >> 4
    return np.where(v == 4, ET_IPV4, np.where(v == 6, ET_IPV6, 0)).astype(np.uint16)


def _ethernet(b: _Buf, off: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    short = off + 14 > end
    et = b.u16(off + 12)
    et = np.where(short, 0, et).astype(np.uint16)
    return _after_ethertype(b, et, off + 14, end)


def _after_ethertype(b: _Buf, et: np.ndarray, pos: np.ndarray, end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Follow VLAN tags, PPPoE and MPLS to the network layer."""
    et = et.astype(np.uint16).copy()
    pos = pos.copy()
    for _ in range(6):
        vlan = np.isin(et, ET_VLAN) & (pos + 4 <= end)
        pppoe = (et == ET_PPPOE) & (pos + 8 <= end)
        mpls = np.isin(et, ET_MPLS) & (pos + 4 <= end)
        if not (vlan.any() or pppoe.any() or mpls.any()):
            break
        if vlan.any():
            et[vlan] = b.u16(pos[vlan] + 2)
            pos[vlan] += 4
        if pppoe.any():
            proto = b.u16(pos[pppoe] + 6)
            e = np.zeros(len(proto), np.uint16)
            e[proto == 0x0021] = ET_IPV4
            e[proto == 0x0057] = ET_IPV6
            et[pppoe] = e
            pos[pppoe] += 8
        if mpls.any():
            bos = (b.u8(pos[mpls] + 2) & 1) == 1
            p = pos[mpls] + 4
            e = np.where(bos, _by_version(b, p), et[mpls])
            et[mpls] = e
            pos[mpls] = p
    # an 802.3 length field: LLC, where SNAP with OUI 0 carries an ethertype (tshark follows)
    snap = (et <= 1500) & (pos + 8 <= end)
    snap[snap] = ((b.u16(pos[snap]) == 0xAAAA) & (b.u16(pos[snap] + 2) == 0x0300)
                  & (b.u16(pos[snap] + 4) == 0))
    et[snap] = b.u16(pos[snap] + 6)
    pos[snap] += 8
    et[et <= 1500] = 0
    return et, pos


def _ppp(b: _Buf, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PPP with optional address/control and protocol-field compression."""
    has_ac = b.u16(pos) == 0xFF03
    p = pos + np.where(has_ac, 2, 0)
    first = b.u8(p)
    one_byte = (first & 1) == 1
    proto = np.where(one_byte, first.astype(np.uint16), b.u16(p))
    p = p + np.where(one_byte, 1, 2)
    et = np.zeros(len(pos), np.uint16)
    et[proto == 0x0021] = ET_IPV4
    et[proto == 0x0057] = ET_IPV6
    return et, p


def _nflog_one(buf: np.ndarray, off: int, end: int) -> tuple[int, int]:
    if off + 4 > end:
        return 0, off
    family = int(buf[off])
    p = off + 4
    while p + 4 <= end:
        tlen = int(buf[p]) | (int(buf[p + 1]) << 8)
        ttype = int(buf[p + 2]) | (int(buf[p + 3]) << 8)
        if tlen < 4:
            break
        if ttype == 9:  # NFULA_PAYLOAD
            et = ET_IPV4 if family == 2 else ET_IPV6 if family == 10 else 0
            return et, p + 4
        p += (tlen + 3) & ~3
    return 0, off


# --------------------------------------------------------------------------- network layer

def _ip_layer(b: _Buf, rows: np.ndarray, et: np.ndarray, pos: np.ndarray, end_all: np.ndarray,
              layer: int, seen_l4: np.ndarray, seen_ip: np.ndarray
              ) -> tuple[Events, np.ndarray, np.ndarray, np.ndarray]:
    """Decode one IP header per row; return its events and the next layer to decode."""
    end = end_all[rows]
    m = len(rows)
    v4 = (et == ET_IPV4) & (b.u8(pos) >> 4 == 4)
    v6 = (et == ET_IPV6) & (b.u8(pos) >> 4 == 6)
    ihl = (b.u8(pos) & 0x0F).astype(np.int64) * 4
    v4 &= (ihl >= 20) & (pos + ihl <= end)
    v6 &= pos + 40 <= end
    # tshark drops an IPv4 header whose total length is below its header length (0 is TSO)
    tot = b.u16(pos + 2).astype(np.int64)
    v4 &= (tot >= ihl) | (tot == 0)
    ok = v4 | v6
    # what follows the IP header ends with the datagram (as tshark's tvb does), not the frame
    end = np.where(v4 & (tot > 0), np.minimum(end, pos + tot), end)
    end = np.where(v6, np.minimum(end, pos + 40 + b.u16(pos + 4).astype(np.int64)), end)
    end_all[rows] = end

    src_hi = np.zeros(m, np.uint64)
    src_lo = np.zeros(m, np.uint64)
    dst_hi = np.zeros(m, np.uint64)
    dst_lo = np.zeros(m, np.uint64)
    proto = np.zeros(m, np.uint8)
    ttl = np.zeros(m, np.uint8)
    l4 = pos.copy()
    frag = np.zeros(m, bool)
    frag_id = np.zeros(m, np.uint32)
    frag_off = np.zeros(m, np.int64)
    frag_more = np.zeros(m, bool)
    pay_len = np.zeros(m, np.int64)
    v6_cut = np.zeros(m, bool)

    if v4.any():
        p = pos[v4]
        src_lo[v4] = _V4_MAPPED_LO | b.u32(p + 12).astype(np.uint64)
        dst_lo[v4] = _V4_MAPPED_LO | b.u32(p + 16).astype(np.uint64)
        proto[v4] = b.u8(p + 9)
        ttl[v4] = b.u8(p + 8)
        l4[v4] = p + ihl[v4]
        fw = b.u16(p + 6)
        frag_more[v4] = (fw & 0x2000) != 0
        frag_off[v4] = (fw & 0x1FFF).astype(np.int64) * 8
        frag[v4] = frag_more[v4] | (frag_off[v4] > 0)
        frag_id[v4] = b.u16(p + 4)
        pay_len[v4] = b.u16(p + 2).astype(np.int64) - ihl[v4]
    if v6.any():
        p = pos[v6]
        src_hi[v6], src_lo[v6] = b.u64(p + 8), b.u64(p + 16)
        dst_hi[v6], dst_lo[v6] = b.u64(p + 24), b.u64(p + 32)
        ttl[v6] = b.u8(p + 7)
        nh = b.u8(p + 6)
        q = p + 40
        plen = b.u16(p + 4).astype(np.int64)
        f6 = np.zeros(len(p), bool)
        fid = np.zeros(len(p), np.uint32)
        foff = np.zeros(len(p), np.int64)
        fmore = np.zeros(len(p), bool)
        e6 = end[v6]
        after_frag = np.zeros(len(p), bool)
        for _ in range(8):
            # what follows a fragment header is the fragmentable part: headers of the
            # first fragment only, so the walk stops there and reassembly goes on
            isfrag = (nh == 44) & (q + 8 <= e6) & ~after_frag
            ext = np.isin(nh, _V6_EXT) & (q + 2 <= e6) & ~after_frag
            if not (isfrag.any() or ext.any()):
                break
            if isfrag.any():
                qq = q[isfrag]
                w = b.u16(qq + 2)
                foff[isfrag] = (w & 0xFFF8).astype(np.int64)
                fmore[isfrag] = (w & 1) == 1
                fid[isfrag] = b.u32(qq + 4)
                f6 |= isfrag & ((foff > 0) | fmore)  # an atomic fragment is not a fragment
                nh[isfrag] = b.u8(qq)
                q[isfrag] = qq + 8
                after_frag |= isfrag
            if ext.any():
                ext &= ~isfrag
                qq = q[ext]
                ah = nh[ext] == 51
                ln = np.where(ah, (b.u8(qq + 1).astype(np.int64) + 2) * 4,
                              (b.u8(qq + 1).astype(np.int64) + 1) * 8)
                nh[ext] = b.u8(qq)
                q[ext] = qq + ln
        # an extension header cut short (by the snaplen or the payload length): tshark
        # shows the addresses but taps nothing
        cut6 = (q > e6) | (np.isin(nh, (*_V6_EXT, 44)) & ~after_frag)
        v6_cut[v6] = cut6
        proto[v6] = nh
        l4[v6] = q
        frag[v6], frag_id[v6], frag_off[v6], frag_more[v6] = f6, fid, foff, fmore
        pay_len[v6] = plen - (q - p - 40)

    # L4 (only on whole datagrams; fragments are reassembled elsewhere)
    whole = ok & ~frag & ~v6_cut
    sport = np.zeros(m, np.uint16)
    dport = np.zeros(m, np.uint16)
    flags = np.zeros(m, np.uint16)
    seq = np.zeros(m, np.uint32)
    tap = np.where(v4 | (v6 & ~frag & ~v6_cut), TAP_IP, 0).astype(np.uint8)
    tcp = whole & (proto == IPPROTO_TCP)
    udp = whole & (proto == IPPROTO_UDP)
    has_ports = (tcp | udp) & (l4 + 4 <= end)
    if has_ports.any():
        q = l4[has_ports]
        sport[has_ports] = b.u16(q)
        dport[has_ports] = b.u16(q + 2)
    if tcp.any():
        q = l4[tcp]
        thl = (b.u8(q + 12) >> 4).astype(np.int64) * 4
        # flags and sequence number only where captured: tshark needs the first 16 bytes
        # of the header before it looks the stream up
        h16 = q + 16 <= end[tcp]
        f = b.u8(q + 13).astype(np.uint16) | ((b.u8(q + 12).astype(np.uint16) & 1) << 8)
        flags[tcp] = np.where(h16, f, 0)
        seq[tcp] = np.where(h16, b.u32(q + 4), 0)
        full = (thl >= 20) & (q + thl <= end[tcp])
        t = tap[tcp]
        t[full] |= TAP_L4
        tap[tcp] = t
    if udp.any():
        q = l4[udp]
        hdr = q + 8 <= end[udp]
        # tshark: a UDP length below 8 is bogus (0 is an IPv6 jumbogram) and stops there;
        # otherwise the payload (a tunnel) ends with the UDP length
        ulen = b.u16(q + 4).astype(np.int64)
        full = hdr & ((ulen >= 8) | ((ulen == 0) & v6[udp]))
        t = tap[udp]
        t[full] |= TAP_L4
        tap[udp] = t
        e = np.where(full & (ulen >= 8), np.minimum(end[udp], q + ulen), end[udp])
        end[udp] = np.where(hdr & ~full, q, e)
        end_all[rows[udp]] = end[udp]
    # the frame's outermost TCP/UDP header credits the port rankings
    outer = has_ports & ~seen_l4[rows]
    tap[outer] |= TAP_OUTER_L4
    seen_l4[rows[has_ports]] = True
    # the frame's outermost IPv4 / IPv6 header carries its TTL / hop-limit statistics
    first4 = v4 & ~seen_ip[rows, 0]
    first6 = v6 & ~seen_ip[rows, 1]
    tap[first4] |= TAP_FIRST_V4
    tap[first6] |= TAP_FIRST_V6
    seen_ip[rows[v4], 0] = True
    seen_ip[rows[v6], 1] = True

    ev = Events(
        row=rows[ok], layer=np.full(int(ok.sum()), layer, np.uint8),
        ip_version=np.where(v4, 4, 6).astype(np.uint8)[ok],
        src_hi=src_hi[ok], src_lo=src_lo[ok], dst_hi=dst_hi[ok], dst_lo=dst_lo[ok],
        ip_proto=proto[ok], src_port=sport[ok], dst_port=dport[ok], ttl=ttl[ok],
        tcp_flags=flags[ok], tcp_seq=seq[ok], tap=tap[ok], has_ports=has_ports[ok],
        frag=frag[ok],
        frag_id=frag_id[ok], frag_off=frag_off[ok], frag_more=frag_more[ok],
        payload_pos=l4[ok], payload_len=pay_len[ok], hdr_pos=pos[ok])

    nxt_rows, nxt_et, nxt_pos = _tunnels(b, rows, whole, proto, l4, end, sport, dport)
    return ev, nxt_rows, nxt_et, nxt_pos


def _tunnels(b: _Buf, rows: np.ndarray, whole: np.ndarray, proto: np.ndarray, l4: np.ndarray,
             end: np.ndarray, sport: np.ndarray, dport: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find a tunnelled network layer inside each datagram (IP-in-IP, GRE, VXLAN, ...)."""
    out_rows: list[np.ndarray] = []
    out_et: list[np.ndarray] = []
    out_pos: list[np.ndarray] = []

    def add(sel: np.ndarray, et: np.ndarray, pos: np.ndarray) -> None:
        keep = (et == ET_IPV4) | (et == ET_IPV6)
        out_rows.append(rows[sel][keep])
        out_et.append(et[keep])
        out_pos.append(pos[keep])

    m = whole & (proto == IPPROTO_IPIP)
    if m.any():
        add(m, np.full(int(m.sum()), ET_IPV4, np.uint16), l4[m])
    m = whole & (proto == IPPROTO_IPV6)
    if m.any():
        add(m, np.full(int(m.sum()), ET_IPV6, np.uint16), l4[m])

    m = whole & (proto == IPPROTO_GRE) & (l4 + 4 <= end)
    if m.any():
        q = l4[m]
        f0 = b.u8(q)
        f1 = b.u8(q + 1)
        ver = f1 & 7
        ptype = b.u16(q + 2)
        hlen = 4 + np.where((f0 & 0xC0) != 0, 4, 0) + np.where((f0 & 0x20) != 0, 4, 0) \
            + np.where((f0 & 0x10) != 0, 4, 0)
        hlen = np.where(ver == 1, 8 + np.where((f0 & 0x10) != 0, 4, 0)
                        + np.where((f1 & 0x80) != 0, 4, 0), hlen)
        p = q + hlen
        et = ptype.copy()
        teb = ptype == ET_TEB
        if teb.any():
            e, pp = _ethernet(b, p[teb], end[m][teb])
            et[teb], p[teb] = e, pp
        ppp = ptype == ET_PPP
        if ppp.any():
            e, pp = _ppp(b, p[ppp])
            et[ppp], p[ppp] = e, pp
        has_payload = p < end[m]
        et = np.where(has_payload, et, 0).astype(np.uint16)
        add(m, et, p)

    udp = whole & (proto == IPPROTO_UDP) & (l4 + 8 <= end)
    # tshark tries the lower non-zero port first: a well-known service port below the
    # tunnel port wins (DNS from source port 3544 is DNS, not Teredo)
    low = np.minimum(sport, dport)
    udp &= ~((low > 0) & (low < 1024))
    m = udp & ((dport == UDP_VXLAN) | (sport == UDP_VXLAN))
    if m.any():
        e, p = _ethernet(b, l4[m] + 16, end[m])
        add(m, e, p)
    m = udp & ((dport == UDP_GENEVE) | (sport == UDP_GENEVE))
    if m.any():
        q = l4[m] + 8
        optlen = (b.u8(q) & 0x3F).astype(np.int64) * 4
        ptype = b.u16(q + 2)
        p = q + 8 + optlen
        et = ptype.copy()
        teb = ptype == ET_TEB
        if teb.any():
            e, pp = _ethernet(b, p[teb], end[m][teb])
            et[teb], p[teb] = e, pp
        add(m, et, p)
    m = udp & ((dport == UDP_TEREDO) | (sport == UDP_TEREDO))
    if m.any():
        p = l4[m] + 8
        auth = b.u16(p) == 0x0001
        if auth.any():
            pa = p[auth]
            p[auth] = pa + 13 + b.u8(pa + 2).astype(np.int64) + b.u8(pa + 3).astype(np.int64)
        origin = b.u16(p) == 0x0000
        p = p + np.where(origin, 8, 0)
        et = np.where(b.u8(p) >> 4 == 6, ET_IPV6, 0).astype(np.uint16)
        add(m, et, p)

    if not out_rows:
        z = np.zeros(0, np.int64)
        return z, np.zeros(0, np.uint16), z
    return np.concatenate(out_rows), np.concatenate(out_et), np.concatenate(out_pos)
