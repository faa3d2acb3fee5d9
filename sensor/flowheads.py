"""Flow heads: the few packets of each stream that name its server, copied out of a batch.

Server names travel early: the TLS ClientHello (SNI) is in a TCP stream's first few
packets, the QUIC Initial in a UDP stream's first datagrams. DNS, the other source of
names, is kept whole. :class:`HeadSelector` looks at every accounted batch
(:class:`~netwarden.sensor.enrich.PacketView`) and copies out

* the first ``head_packets`` packets of every TCP/UDP stream (``stream`` of the view);
* every packet to or from a DNS port (53, mDNS 5353, LLMNR 5355; TCP and UDP);
* IP fragments whose datagram is not complete yet (TCP/UDP events without a stream), at
  most ``fragments_per_pair`` per address pair, so tshark can reassemble a fragmented
  QUIC Initial or DNS answer.

Copies are bounded: past ``max_pending_bytes`` of held packets, more are dropped and
counted (:attr:`HeadSelector.dropped`). Stream and pair counters are bounded LRU maps
(a stream evicted from it starts counting again).

:meth:`HeadSelector.take` hands the held packets over as one :class:`Heads` and starts
afresh. Every packet keeps what is needed to map a dissection back: its capture-wide frame
number, its interval start, and its innermost TCP/UDP stream and protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

import numpy as np

from netwarden.sensor.bounded import BoundedMap
from netwarden.sensor.decode import IPPROTO_TCP, IPPROTO_UDP
from netwarden.sensor.enrich import PacketView

__all__ = ["DNS_PORTS", "HeadSelector", "Heads"]

DNS_PORTS: Final = (53, 5353, 5355)
_L4: Final = (IPPROTO_TCP, IPPROTO_UDP)


@dataclasses.dataclass
class Heads:
    """Copied packets, in capture order: bytes ``buf[offset[i]:offset[i] + caplen[i]]``."""

    buf: np.ndarray  # uint8
    offset: np.ndarray  # int64
    caplen: np.ndarray  # uint32
    wirelen: np.ndarray  # uint32
    linktype: np.ndarray  # uint16
    ts_ns: np.ndarray  # int64
    frame_no: np.ndarray  # uint64, capture-wide
    start_ns: np.ndarray  # int64, interval start
    stream: np.ndarray  # uint64, innermost TCP/UDP stream (0: none)
    ip_proto: np.ndarray  # uint8, that stream's protocol (6, 17; 0: none)

    def __len__(self) -> int:
        return len(self.offset)

    @classmethod
    def empty(cls) -> Heads:
        return cls.concat([])

    @classmethod
    def concat(cls, parts: Sequence[Heads]) -> Heads:
        if not parts:
            z = np.zeros(0, np.int64)
            return cls(np.zeros(0, np.uint8), z, z.astype(np.uint32), z.astype(np.uint32),
                       z.astype(np.uint16), z, z.astype(np.uint64), z, z.astype(np.uint64),
                       z.astype(np.uint8))
        if len(parts) == 1:
            return parts[0]
        bases = np.cumsum([0, *(len(p.buf) for p in parts[:-1])])
        return cls(
            np.concatenate([p.buf for p in parts]),
            np.concatenate([p.offset + b for p, b in zip(parts, bases.tolist(), strict=True)]),
            *(np.concatenate([getattr(p, f) for p in parts])
              for f in ("caplen", "wirelen", "linktype", "ts_ns", "frame_no", "start_ns",
                        "stream", "ip_proto")))

    @property
    def nbytes(self) -> int:
        return int(self.buf.nbytes)


class HeadSelector:
    """Copies the flow-head packets of every batch it observes; see the module doc."""

    def __init__(self, *, head_packets: int = 16, fragments_per_pair: int = 64,
                 max_streams: int = 200_000, max_pending_bytes: int = 64 << 20) -> None:
        if head_packets < 0:
            raise ValueError(f"head_packets must be >= 0, got {head_packets}")
        self.head_packets = head_packets
        self.fragments_per_pair = fragments_per_pair
        self.max_pending_bytes = max_pending_bytes
        self._streams: BoundedMap[int, int] = BoundedMap(max_streams, touch_on_get=True)
        self._pairs: BoundedMap[tuple[int, int, int, int], int] = BoundedMap(
            max(1024, max_streams // 16), touch_on_get=True)
        self._parts: list[Heads] = []
        self._pending_bytes = 0
        self._pending_packets = 0
        self.seen = 0  # packets observed
        self.kept = 0  # packets copied
        self.dropped = 0  # packets that would have been kept, beyond max_pending_bytes

    @property
    def pending(self) -> int:
        """Packets held."""
        return self._pending_packets

    @property
    def pending_bytes(self) -> int:
        """Bytes of the packets held."""
        return self._pending_bytes

    def observe(self, v: PacketView) -> None:
        """Copy the head packets of one accounted batch."""
        n = len(v.offset)
        self.seen += n
        if n == 0 or len(v.row) == 0:
            return
        keep = np.zeros(n, bool)
        l4 = np.isin(v.ip_proto, _L4)
        dns = l4 & (np.isin(v.src_port, DNS_PORTS) | np.isin(v.dst_port, DNS_PORTS))
        keep[v.row[dns]] = True
        has_stream = l4 & (v.stream != 0)
        self._stream_heads(v, np.flatnonzero(has_stream & ~dns), keep)
        self._fragments(v, np.flatnonzero(l4 & (v.stream == 0) & ~dns), keep)
        rows = np.flatnonzero(keep)
        if len(rows) == 0:
            return
        # the innermost TCP/UDP stream of every kept packet
        stream = np.zeros(n, np.uint64)
        proto = np.zeros(n, np.uint8)
        ev = np.flatnonzero(has_stream)
        if len(ev):
            ev = ev[np.lexsort((v.layer[ev], v.row[ev]))]  # by row, then layer
            last = np.ones(len(ev), bool)
            last[:-1] = v.row[ev][1:] != v.row[ev][:-1]
            ev = ev[last]  # each row's innermost stream
            stream[v.row[ev]] = v.stream[ev]
            proto[v.row[ev]] = v.ip_proto[ev]
        start = np.zeros(n, np.int64)
        start[v.row] = v.start_ns  # every event of a packet has the packet's interval
        self._copy(v, rows, stream[rows], proto[rows], start[rows])

    def _stream_heads(self, v: PacketView, ev: np.ndarray, keep: np.ndarray) -> None:
        """Mark the first ``head_packets`` packets of each stream among events ``ev``."""
        k = self.head_packets
        if len(ev) == 0 or k == 0:
            return
        sid = v.stream[ev]
        order = np.lexsort((v.row[ev], sid))
        sid_s = sid[order]
        rows_s = v.row[ev][order]
        first = np.ones(len(order), bool)
        first[1:] = sid_s[1:] != sid_s[:-1]
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(order)))
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        room = np.empty(len(starts), np.int64)
        for i, (s, c) in enumerate(zip(sid_s[starts].tolist(), counts.tolist(), strict=True)):
            before = self._streams.get(s) or 0
            room[i] = max(k - before, 0)
            if before < k:
                self._streams.set(s, min(before + c, k))
        take = rank < np.repeat(room, counts)
        keep[rows_s[take]] = True

    def _fragments(self, v: PacketView, ev: np.ndarray, keep: np.ndarray) -> None:
        """Mark stream-less TCP/UDP packets (unreassembled fragments), capped per pair."""
        cap = self.fragments_per_pair
        if len(ev) == 0 or cap == 0:
            return
        for e in ev.tolist():
            key = (int(v.src_hi[e]), int(v.src_lo[e]), int(v.dst_hi[e]), int(v.dst_lo[e]))
            seen = self._pairs.get(key) or 0
            if seen < cap:
                self._pairs.set(key, seen + 1)
                keep[v.row[e]] = True

    def _copy(self, v: PacketView, rows: np.ndarray, stream: np.ndarray, proto: np.ndarray,
              start: np.ndarray) -> None:
        cap = v.caplen[rows].astype(np.int64)
        room = self.max_pending_bytes - self._pending_bytes
        fit = int(np.searchsorted(np.cumsum(cap), room, side="right"))
        if fit < len(rows):
            self.dropped += len(rows) - fit
            rows, cap, stream, proto, start = (x[:fit] for x in (rows, cap, stream, proto,
                                                                  start))
            if fit == 0:
                return
        total = int(cap.sum())
        offset = np.zeros(len(rows), np.int64)
        np.cumsum(cap[:-1], out=offset[1:])
        mem = np.ascontiguousarray(v.buf, dtype=np.uint8).data
        buf = np.frombuffer(b"".join([mem[o:o + c] for o, c in zip(
            v.offset[rows].tolist(), cap.tolist(), strict=True)]), np.uint8)
        self._parts.append(Heads(buf, offset, v.caplen[rows].copy(), v.wirelen[rows].copy(),
                                 v.linktype[rows].copy(), v.ts_ns[rows].copy(),
                                 v.frame_no[rows].copy(), start, stream, proto))
        self._pending_bytes += total
        self._pending_packets += len(rows)
        self.kept += len(rows)

    def take(self) -> Heads:
        """The packets held so far (capture order), and forget them."""
        out = Heads.concat(self._parts)
        self._parts = []
        self._pending_bytes = 0
        self._pending_packets = 0
        return out
