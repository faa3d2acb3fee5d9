"""The offline pipeline: a capture file → flow records, hierarchy, sizes, statistics.

:mod:`pcapfile` indexes the packets; an :class:`~netwarden.sensor.accountant.Accountant`
(intervals aligned to the file's first frame, so io rows compare with tshark's
``io,stat``) turns them into records batch by batch; meanwhile tshark computes the
protocol hierarchy on the other core (:mod:`hierarchy`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from netwarden.sensor import hierarchy
from netwarden.sensor.accountant import Accountant, PacketBatch, address_pairs
from netwarden.sensor.enrich import Enrichers
from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    Columns,
    FlowBatch,
    concat,
    empty,
)

__all__ = ["FileAnalyzer", "FileResult", "PipelineSettings", "address_pairs"]

# Offline, records of finished intervals are handed out every this many batches, which
# bounds memory on long captures.
_EMIT_EVERY_BATCHES = 4


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


class FileAnalyzer:
    """Analyse capture files for one host. Inert until :meth:`run` is called."""

    def __init__(self, host: str, settings: PipelineSettings,
                 enrichers: Enrichers | None = None) -> None:
        self.host = host
        self.settings = settings
        self.enrichers = enrichers if enrichers is not None else Enrichers()
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
        if n == 0:
            return FileResult(path, 0, 0, 0, warnings, 0)
        ival = st.interval_s * 1_000_000_000
        t0 = int(idx.ts_ns[0])
        rel = np.maximum((idx.ts_ns - t0) // ival, 0) * ival  # interval starts, relative
        run = None
        if st.hierarchy:
            slices = hierarchy.slices_for([int(x) for x in np.unique(rel)],
                                          st.hierarchy_max_taps)
            run = hierarchy.start_hierarchy(path, slices, tshark=st.tshark)
        if started is not None:
            started()
        acc = Accountant(self.host, interval_s=st.interval_s,
                         host_addresses=st.host_addresses, align="first", source=path.name,
                         batch_packets=st.batch_packets, frame_base=self._frame_base,
                         observer=self.enrichers.observe if self.enrichers else None)
        records = 0
        stats_parts: list[Columns] = []
        try:
            whole = PacketBatch(idx.buf, idx.offset, idx.caplen, idx.wirelen, idx.linktype,
                                idx.ts_ns)
            since_emit = 0
            for lo in range(0, n, st.batch_packets):
                hi = min(lo + st.batch_packets, n)
                acc.add(whole.slice(lo, hi))
                since_emit += hi - lo
                if since_emit >= _EMIT_EVERY_BATCHES * st.batch_packets and hi < n:
                    # intervals before the next packet's are complete (ordered captures)
                    out = acc.flush(int(idx.ts_ns[hi]))
                    records += self._emit_counts(out, sink)
                    stats_parts.append(out.stats)
                    since_emit = 0
                if progress is not None:
                    progress(hi, n)
            out = acc.flush(None)
            records += self._emit_counts(out, sink)
            stats_parts.append(out.stats)
            if accounted is not None:
                accounted()
            chains = empty(CHAIN_COLUMNS)
            hier_frames = 0
            stats = concat(STAT_COLUMNS, stats_parts)
            if run is not None:
                res = run.result()
                if res.warning:
                    warnings.append(res.warning)
                chains = hierarchy.chain_columns(res, t0)
                hier_frames = res.frames
                for sr in res.slices:
                    ours = int(np.isin(rel, sr.slice.interval_starts).sum())
                    first = t0 + sr.slice.start_ns
                    stats["not_dissected"][stats["start_ns"] == first] = max(ours - sr.frames, 0)
            else:
                stats["not_dissected"][:] = stats["packets"]
        finally:
            if run is not None:
                run.close()
        last = FlowBatch(self.host, st.interval_s, empty(FLOW_COLUMNS), chains,
                         empty(SIZE_COLUMNS), stats)
        self.enrichers.enrich(last)
        sink(last)
        self._frame_base += n
        return FileResult(path, n, int(idx.wirelen.sum(dtype=np.uint64)), records,
                          warnings, hier_frames)

    def _emit_counts(self, out: FlowBatch, sink: Callable[[FlowBatch], None]) -> int:
        """Hand out the records and sizes of ``out`` (statistics come last)."""
        n = len(out.flows["packets"])
        if n or len(out.sizes["packets"]):
            batch = FlowBatch(out.host, out.interval_s, out.flows, out.chains, out.sizes,
                              empty(STAT_COLUMNS))
            self.enrichers.enrich(batch)
            sink(batch)
        return n
