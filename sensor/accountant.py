"""Streaming accounting: packet batches in, per-interval flow records out.

The :class:`Accountant` is the stage that both the offline pipeline and the live sensor
run: it decodes each :class:`PacketBatch` (:mod:`decode`), reassembles IP fragments
(:mod:`fragments`), names TCP/UDP streams (:mod:`streams`) and groups the events into
per-interval records (:mod:`aggregate`). :meth:`Accountant.flush` hands out the records,
size histograms and capture statistics of every interval that has ended.

Intervals are aligned either to the epoch (``align="wall"``, live sensors: an interval
starts at a multiple of ``interval_s``) or to the first packet (``align="first"``,
capture files, so io rows line up with tshark's ``io,stat``; a packet timestamped
before the first one falls in interval 0, as in tshark).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from netwarden.sensor import aggregate
from netwarden.sensor.decode import Events, decode
from netwarden.sensor.enrich import PacketView
from netwarden.sensor.fragments import Reassembler
from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    STAT_COLUMNS,
    TAP_FIRST_V4,
    TAP_FIRST_V6,
    TAP_OUTER_L4,
    Columns,
    FlowBatch,
    empty,
)
from netwarden.sensor.streams import StreamTracker

LT_RAW = 101
NS = 1_000_000_000

Align = Literal["wall", "first"]


@dataclasses.dataclass
class PacketBatch:
    """Packets sharing one byte buffer (a file's mapping, or a copy of a libpcap batch)."""

    buf: np.ndarray  # uint8
    offset: np.ndarray  # int64: start of each packet's data in buf
    caplen: np.ndarray  # uint32: captured bytes
    wirelen: np.ndarray  # uint32: original length (frame.len)
    linktype: np.ndarray  # uint16 per packet (LINKTYPE_*)
    ts_ns: np.ndarray  # int64, ns since the epoch

    def __len__(self) -> int:
        return len(self.offset)

    def slice(self, lo: int, hi: int) -> PacketBatch:
        s = slice(lo, hi)
        return PacketBatch(self.buf, self.offset[s], self.caplen[s], self.wirelen[s],
                           self.linktype[s], self.ts_ns[s])


def address_pairs(addrs: Sequence[str]) -> list[tuple[int, int]]:
    """Addresses as (hi, lo) 64-bit halves of their IPv6 (IPv4-mapped) form."""
    out = []
    for a in addrs:
        ip = ipaddress.ip_address(str(a).split("%")[0])
        v = int(ipaddress.IPv6Address(f"::ffff:{ip}")) if ip.version == 4 else int(ip)
        out.append((v >> 64, v & 0xFFFFFFFFFFFFFFFF))
    return out


class Accountant:
    """Per-interval accounting for one host (one capture source)."""

    def __init__(self, host: str, *, interval_s: int = 10, host_addresses: Sequence[str] = (),
                 align: Align = "wall", source: str = "", batch_packets: int = 65536,
                 frame_base: int = 0,
                 observer: Callable[[PacketView], None] | None = None) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.host = host
        self.interval_s = interval_s
        self.align = align
        self.source = source
        self.batch_packets = batch_packets
        self._ival = interval_s * NS
        self._host_addrs = address_pairs(host_addresses)
        self._origin: int | None = None
        self._streams = StreamTracker()
        self._frags = Reassembler()
        self._frames = 0  # frames accounted
        self._frame_base = frame_base  # frames are numbered from frame_base + 1
        self._pending: list[aggregate.Partial] = []
        self._pending_rows = 0
        self._sizes: list[Columns] = []
        self._stats: dict[int, list[int]] = {}  # interval start -> [packets, bytes]
        self._dropped = 0
        self._not_dissected = 0
        self.observer = observer  # enrichers' view of every accounted batch

    # ------------------------------------------------------------------ input

    @property
    def frames(self) -> int:
        """Frames accounted so far."""
        return self._frames

    @property
    def origin_ns(self) -> int | None:
        """Start of interval 0 with ``align="first"`` (the first packet's timestamp)."""
        return self._origin

    def set_host_addresses(self, addrs: Sequence[str]) -> None:
        """The host's addresses changed: later packets get directions from the new set."""
        self._host_addrs = address_pairs(addrs)

    def note_drops(self, dropped: int, not_dissected: int = 0) -> None:
        """Frames lost before accounting (kernel drops...), reported with the next flush."""
        self._dropped += dropped
        self._not_dissected += not_dissected

    def interval_starts(self, ts_ns: np.ndarray) -> np.ndarray:
        """The start (ns) of the interval each timestamp falls in."""
        out: np.ndarray
        if self.align == "wall":
            out = (ts_ns // self._ival) * self._ival
            return out
        if self._origin is None:
            self._origin = int(ts_ns[0])
        out = self._origin + np.maximum((ts_ns - self._origin) // self._ival, 0) * self._ival
        return out

    def add(self, batch: PacketBatch) -> None:
        """Account every packet of ``batch`` (in capture order)."""
        for lo in range(0, len(batch), self.batch_packets):
            self._add(batch.slice(lo, min(lo + self.batch_packets, len(batch))))

    def _add(self, b: PacketBatch) -> None:
        n = len(b)
        if n == 0:
            return
        starts = self.interval_starts(b.ts_ns)
        first = self._frame_base + self._frames + 1
        frame_no = np.arange(first, first + n, dtype=np.uint64)
        dec = decode(b.buf, b.offset, b.caplen, b.linktype)
        ev = self._reassemble(b, dec.events)
        rows = ev.row
        sid = self._streams.assign(ev, frame_no[rows])
        direction = aggregate.direction_of(ev.src_hi, ev.src_lo, ev.dst_hi, ev.dst_lo,
                                           self._host_addrs)
        ttl = ev.ttl.astype(np.uint64)
        part = {
            "start_ns": starts[rows],
            "ip_version": ev.ip_version,
            "src_hi": ev.src_hi, "src_lo": ev.src_lo, "dst_hi": ev.dst_hi, "dst_lo": ev.dst_lo,
            "src_port": ev.src_port, "dst_port": ev.dst_port,
            "ip_proto": ev.ip_proto,
            "ethertype": dec.ethertype[rows],
            "direction": direction,
            "layer": ev.layer,
            "tap": ev.tap,
            "stream": sid,
            "first_frame": frame_no[rows],
            "packets": np.ones(len(rows), np.uint64),
            "bytes": b.wirelen[rows].astype(np.uint64),
            "first_seen": b.ts_ns[rows], "last_seen": b.ts_ns[rows],
            "ttl_min": ev.ttl, "ttl_max": ev.ttl,
            "ttl_sum": ttl, "ttl_sq": ttl * ttl,
            "tcp_flags": ev.tcp_flags,
        }
        if self.observer is not None:
            self.observer(PacketView(
                buf=b.buf, offset=b.offset, caplen=b.caplen, wirelen=b.wirelen,
                linktype=b.linktype, ts_ns=b.ts_ns, frame_no=frame_no, row=rows,
                layer=ev.layer, stream=sid, ip_proto=ev.ip_proto, src_port=ev.src_port,
                dst_port=ev.dst_port, src_hi=ev.src_hi, src_lo=ev.src_lo, dst_hi=ev.dst_hi,
                dst_lo=ev.dst_lo, direction=direction, start_ns=starts[rows]))
        grouped = aggregate.group(part)
        self._pending.append(grouped)
        self._pending_rows += len(grouped["packets"])
        layer0 = ev.layer == 0  # exactly one layer-0 event per frame
        self._sizes.append(aggregate.size_table(starts[rows[layer0]], direction[layer0],
                                                b.wirelen[rows[layer0]]))
        u, inv = np.unique(starts, return_inverse=True)
        pk = np.bincount(inv, minlength=len(u))
        by = np.bincount(inv, weights=b.wirelen.astype(np.float64), minlength=len(u))
        for s, p, y in zip(u.tolist(), pk.tolist(), by.tolist(), strict=True):
            st = self._stats.setdefault(s, [0, 0])
            st[0] += p
            st[1] += round(y)
        self._frames += n
        if self._pending_rows > 4 * self.batch_packets:
            self._compact()

    def _compact(self) -> None:
        merged = aggregate.group(aggregate.concat(self._pending))
        self._pending = [merged]
        self._pending_rows = len(merged["packets"])
        self._sizes = [aggregate.merge_sizes(self._sizes)]

    def _reassemble(self, b: PacketBatch, ev: Events) -> Events:
        """Replace fragment events by the reassembled datagrams they complete."""
        fsel = np.flatnonzero(ev.frag)
        if len(fsel) == 0:
            return ev
        fev = ev.take(fsel)
        end = b.offset[fev.row] + b.caplen[fev.row]
        done = self._frags.add(b.buf, end, fev)
        if not done:
            return ev
        buf = np.frombuffer(b"".join(d.packet for d in done), dtype=np.uint8)
        lens = np.array([len(d.packet) for d in done], dtype=np.int64)
        offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        parts = []
        replaced = []
        for i, d in enumerate(done):
            e = fsel[d.event]
            layer = int(ev.layer[e])
            sub = decode(buf, offs[i:i + 1], lens[i:i + 1].astype(np.uint32),
                         np.array([LT_RAW], np.uint16), first_layer=layer).events
            if len(sub) == 0:
                continue
            sub.row[:] = ev.row[e]
            # the frame's outermost TCP/UDP and IP headers may sit in outer (tunnel) layers
            outer = ev.tap[(ev.row == ev.row[e]) & (ev.layer < layer)]
            taken = np.bitwise_or.reduce(outer, initial=0) & (
                TAP_OUTER_L4 | TAP_FIRST_V4 | TAP_FIRST_V6)
            if taken:
                sub.tap[:] &= ~np.uint8(taken)
            parts.append(sub)
            replaced.append(e)
        if not parts:
            return ev
        keep = np.ones(len(ev), bool)
        keep[replaced] = False
        out = Events.concat([ev.take(keep), *parts])
        order = np.lexsort((out.layer, out.row))
        return out.take(order)

    # ------------------------------------------------------------------ output

    def flush(self, now_ns: int | None = None) -> FlowBatch:
        """Records of the intervals that ended at or before ``now_ns`` (all when None)."""
        merged = aggregate.group(aggregate.concat(self._pending)) if self._pending else None
        sizes = aggregate.merge_sizes(self._sizes)
        # an interval starting at or before ``limit`` has ended
        limit = None if now_ns is None else now_ns - self._ival
        if merged is not None:
            done = np.ones(len(merged["packets"]), bool) if limit is None \
                else merged["start_ns"] <= limit
            emit = {k: v[done] for k, v in merged.items()}
            rest = {k: v[~done] for k, v in merged.items()}
            self._pending = [rest] if len(rest["packets"]) else []
            self._pending_rows = len(rest["packets"])
            flows = aggregate.to_records(emit) if len(emit["packets"]) else empty(FLOW_COLUMNS)
        else:
            flows = empty(FLOW_COLUMNS)
        sdone = np.ones(len(sizes["packets"]), bool) if limit is None \
            else sizes["start_ns"] <= limit
        self._sizes = [{k: v[~sdone] for k, v in sizes.items()}]
        out_sizes = {k: v[sdone] for k, v in sizes.items()}
        stats = self._take_stats(limit)
        return FlowBatch(self.host, self.interval_s, flows, empty(CHAIN_COLUMNS), out_sizes,
                         stats)

    def _take_stats(self, limit: int | None) -> Columns:
        keys = sorted(s for s in self._stats if limit is None or s <= limit)
        n = len(keys)
        out = empty(STAT_COLUMNS, n)
        if n == 0:
            return out
        out["start_ns"][:] = keys
        out["packets"][:] = [self._stats[s][0] for s in keys]
        out["bytes"][:] = [self._stats[s][1] for s in keys]
        out["source"][:] = self.source
        # losses noted since the last flush go with the latest interval handed out
        out["dropped"][-1] = self._dropped
        out["not_dissected"][-1] = self._not_dissected
        self._dropped = self._not_dissected = 0
        for s in keys:
            del self._stats[s]
        return out
