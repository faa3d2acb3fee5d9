"""The offline pipeline: a capture file → flow records, hierarchy, sizes, statistics.

Stages: :mod:`pcapfile` indexes the packets; :mod:`decode` turns them into per-header
events, batch by batch; :mod:`fragments` reassembles IP datagrams; :mod:`streams` names
TCP/UDP streams; :mod:`aggregate` groups events into per-interval records. Meanwhile
tshark computes the protocol hierarchy on the other core (:mod:`hierarchy`).

Offline, intervals are aligned to the capture's first frame (so io rows compare with
tshark's ``io,stat``); a frame timestamped before the first frame falls in interval 0,
as in tshark.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from netwarden.sensor import aggregate, hierarchy
from netwarden.sensor.decode import Decoded, Events, decode
from netwarden.sensor.fragments import Reassembler
from netwarden.sensor.pcapfile import PacketIndex, read_index
from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    TAP_OUTER_L4,
    Columns,
    FlowBatch,
    empty,
)
from netwarden.sensor.streams import StreamTracker

LT_RAW = 101


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    interval_s: int = 10
    host_addresses: tuple[str, ...] = ()
    hierarchy: bool = True
    hierarchy_max_taps: int = 16
    batch_packets: int = 65536
    tshark: str = "tshark"


@dataclasses.dataclass
class FileResult:
    path: Path
    packets: int
    bytes: int
    records: int
    warnings: list[str]
    hierarchy_frames: int


def address_pairs(addrs: Sequence[str]) -> list[tuple[int, int]]:
    """Host addresses as (hi, lo) 64-bit halves of their IPv6 (v4-mapped) form."""
    out = []
    for a in addrs:
        ip = ipaddress.ip_address(a)
        v = int(ipaddress.IPv6Address(f"::ffff:{ip}")) if ip.version == 4 else int(ip)
        out.append((v >> 64, v & 0xFFFFFFFFFFFFFFFF))
    return out


class FileAnalyzer:
    """Analyse capture files for one host. Inert until :meth:`run` is called."""

    def __init__(self, host: str, settings: PipelineSettings) -> None:
        self.host = host
        self.settings = settings
        self._host_addrs = address_pairs(settings.host_addresses)
        self._frame_base = 0  # frames numbered across files, so streams stay distinct

    def run(self, path: Path, sink: Callable[[FlowBatch], None],
            progress: Callable[[int, int], None] | None = None,
            accounted: Callable[[], None] | None = None,
            started: Callable[[], None] | None = None) -> FileResult:
        """Analyse ``path``, handing every batch to ``sink``.

        ``started`` is called once tshark runs (so a caller can start slow work of its
        own, like connecting to the store, without delaying tshark, the long pole).
        Flow records and sizes go to ``sink`` as soon as the accounting is done (then
        ``accounted`` is called, e.g. to flush the store while tshark still dissects);
        the protocol hierarchy and the capture statistics follow when tshark is done.
        """
        st = self.settings
        idx = read_index(path)
        n = len(idx)
        warnings = list(idx.warnings)
        ival = st.interval_s * 1_000_000_000
        if n == 0:
            return FileResult(path, 0, 0, 0, warnings, 0)
        t0 = int(idx.ts_ns[0])
        rel = np.maximum((idx.ts_ns - t0) // ival, 0) * ival  # interval start, relative
        starts = t0 + rel
        run = None
        if st.hierarchy:
            slices = hierarchy.slices_for([int(x) for x in np.unique(rel)],
                                          st.hierarchy_max_taps)
            run = hierarchy.start_hierarchy(path, slices, tshark=st.tshark)
        if started is not None:
            started()
        try:
            flows, sizes, records = self._account(idx, starts, sink, progress)
            sink(FlowBatch(self.host, st.interval_s, aggregate.to_records(flows), empty(
                CHAIN_COLUMNS), sizes, empty(STAT_COLUMNS)))
            records += len(flows["packets"])
            if accounted is not None:
                accounted()
            chains = empty(CHAIN_COLUMNS)
            hier_frames = 0
            not_dissected: dict[int, int] = {}
            if run is not None:
                res = run.result()
                if res.warning:
                    warnings.append(res.warning)
                chains = hierarchy.chain_columns(res, t0)
                hier_frames = res.frames
                for sr in res.slices:
                    ours = int(np.isin(rel, sr.slice.interval_starts).sum())
                    not_dissected[t0 + sr.slice.start_ns] = max(ours - sr.frames, 0)
        finally:
            if run is not None:
                run.close()
        stats = self._stats(path, idx, starts, not_dissected, hierarchy_on=run is not None)
        sink(FlowBatch(self.host, st.interval_s, empty(FLOW_COLUMNS), chains,
                       empty(SIZE_COLUMNS), stats))
        self._frame_base += n
        return FileResult(path, n, int(idx.wirelen.sum(dtype=np.uint64)), records,
                          warnings, hier_frames)

    # ------------------------------------------------------------------ accounting

    def _account(self, idx: PacketIndex, starts: np.ndarray,
                 sink: Callable[[FlowBatch], None],
                 progress: Callable[[int, int], None] | None
                 ) -> tuple[aggregate.Partial, Columns, int]:
        st = self.settings
        n = len(idx)
        streams = StreamTracker()
        frags = Reassembler()
        pending: list[aggregate.Partial] = []
        pending_rows = 0
        emitted = 0
        size_parts: list[Columns] = []
        frame_no = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(self._frame_base)
        for lo in range(0, n, st.batch_packets):
            hi = min(lo + st.batch_packets, n)
            sl = slice(lo, hi)
            dec = decode(idx.buf, idx.offset[sl], idx.caplen[sl], idx.linktype[sl])
            ev = self._reassemble(idx, dec.events, lo, frags)
            rows = ev.row  # batch-relative packet index
            g = rows + lo
            sid = streams.assign(ev, frame_no[g])
            part = self._events_table(ev, g, sid, starts, idx, dec)
            pending.append(aggregate.group(part))
            pending_rows += len(pending[-1]["packets"])
            layer0 = ev.layer == 0
            size_parts.append(aggregate.size_table(
                starts[g[layer0]], part["direction"][layer0], idx.wirelen[g[layer0]]))
            if pending_rows > 4 * st.batch_packets:
                merged = aggregate.group(aggregate.concat(pending))
                # intervals before this batch's earliest are complete (for ordered captures)
                done = merged["start_ns"] < starts[sl].min()
                if done.any():
                    emit = {c: v[done] for c, v in merged.items()}
                    sink(FlowBatch(self.host, st.interval_s, aggregate.to_records(emit),
                                   empty(CHAIN_COLUMNS), aggregate.merge_sizes([]),
                                   empty(STAT_COLUMNS)))
                    emitted += int(done.sum())
                    merged = {c: v[~done] for c, v in merged.items()}
                pending = [merged]
                pending_rows = len(merged["packets"])
            if progress is not None:
                progress(hi, n)
        flows = aggregate.group(aggregate.concat(pending))
        return flows, aggregate.merge_sizes(size_parts), emitted

    def _reassemble(self, idx: PacketIndex, ev: Events, lo: int, frags: Reassembler) -> Events:
        """Replace fragment events by the reassembled datagrams they complete."""
        fsel = np.flatnonzero(ev.frag)
        if len(fsel) == 0:
            return ev
        fev = ev.take(fsel)
        g = fev.row + lo
        end = idx.offset[g] + idx.caplen[g]
        done = frags.add(idx.buf, end, fev)
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
            # the frame's outermost TCP/UDP header may sit in an outer (tunnel) layer
            outer_taken = bool(np.any((ev.row == ev.row[e]) & (ev.layer < layer)
                                      & ((ev.tap & TAP_OUTER_L4) != 0)))
            if outer_taken:
                sub.tap[:] &= ~np.uint8(TAP_OUTER_L4)
            # the reassembled header keeps the completing frame's own position/ttl
            parts.append(sub)
            replaced.append(e)
        if not parts:
            return ev
        keep = np.ones(len(ev), bool)
        keep[replaced] = False
        out = Events.concat([ev.take(keep), *parts])
        order = np.lexsort((out.layer, out.row))
        return out.take(order)

    def _events_table(self, ev: Events, g: np.ndarray, sid: np.ndarray, starts: np.ndarray,
                      idx: PacketIndex, dec: Decoded) -> aggregate.Partial:
        ttl = ev.ttl.astype(np.uint64)
        direction = aggregate.direction_of(ev.src_hi, ev.src_lo, ev.dst_hi, ev.dst_lo,
                                           self._host_addrs)
        return {
            "start_ns": starts[g],
            "ip_version": ev.ip_version,
            "src_hi": ev.src_hi, "src_lo": ev.src_lo, "dst_hi": ev.dst_hi, "dst_lo": ev.dst_lo,
            "src_port": ev.src_port, "dst_port": ev.dst_port,
            "ip_proto": ev.ip_proto,
            "ethertype": dec.ethertype[ev.row],
            "direction": direction,
            "layer": ev.layer,
            "tap": ev.tap,
            "stream": sid,
            "first_frame": g.astype(np.uint64) + np.uint64(self._frame_base + 1),
            "packets": np.ones(len(g), np.uint64),
            "bytes": idx.wirelen[g].astype(np.uint64),
            "first_seen": idx.ts_ns[g], "last_seen": idx.ts_ns[g],
            "ttl_min": ev.ttl,
            "ttl_max": ev.ttl,
            "ttl_sum": ttl, "ttl_sq": ttl * ttl,
            "tcp_flags": ev.tcp_flags,
        }

    def _stats(self, path: Path, idx: PacketIndex, starts: np.ndarray,
               not_dissected: dict[int, int], *, hierarchy_on: bool) -> Columns:
        u, inv = np.unique(starts, return_inverse=True)
        pk = np.bincount(inv, minlength=len(u)).astype(np.uint64)
        by = np.bincount(inv, weights=idx.wirelen, minlength=len(u)).astype(np.uint64)
        nd = np.array([not_dissected.get(int(s), 0) for s in u], np.uint64) if hierarchy_on \
            else pk.copy()
        dropped = np.zeros(len(u), np.uint64)
        return {"start_ns": u.astype(np.int64), "packets": pk, "bytes": by,
                "dropped": dropped, "not_dissected": nd,
                "source": np.full(len(u), path.name, dtype=object)}

