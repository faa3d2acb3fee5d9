"""The protocol hierarchy of live traffic: tshark per interval, sampling when it lags.

Counting never depends on this module: packets and bytes come from the
:class:`~netwarden.sensor.accountant.Accountant`. Here tshark only names the protocol chain
(``eth:ip:tcp:tls``) of the frames it is given, interval by interval:

* :meth:`LiveDissector.add` appends the packets of the open interval to a pcapng file in a
  private temporary directory (one Interface Description Block per link type, nanosecond
  timestamps). Nothing is held in memory.
* When the interval ends (a packet of a later interval arrives, or :meth:`poll` is given a
  time past its end plus ``grace_s``), the file is closed and ``tshark -z io,phs`` runs on it
  in the background (:func:`~netwarden.sensor.hierarchy.start_hierarchy`: private, empty
  configuration). One tshark at a time, each a fresh process, so tshark's memory cannot grow
  with the months a sensor runs.
* tshark dissects about 130 k packets/s per core, less than a busy link carries, so an
  interval gives tshark at most ``max_packets_per_interval`` frames (and
  ``max_bytes_per_interval`` bytes): every ``stride``-th frame, the stride chosen from the
  previous interval's frame count, then doubled for every interval that closes while
  tshark is still busy with an earlier one (halved again when it keeps up). One closed
  interval may wait for tshark; when another closes while one waits, it is skipped whole.
* Every :class:`DissectedInterval` says how many frames the interval had, how many tshark
  saw, and why any were left out; ``not_dissected`` goes into the capture statistics
  (``Accountant.note_drops``). Chain rows count the dissected frames only.

Every file is deleted once tshark has read it (or on failure), and the directory at
:meth:`stop`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import math
import os
import shutil
import tempfile
import time
from types import TracebackType
from typing import BinaryIO, Final

import numpy as np

from netwarden.errors import NetwardenError, RuntimeFailure
from netwarden.logging import get_logger
from netwarden.sensor.accountant import PacketBatch
from netwarden.sensor.hierarchy import (
    ORDER_SLICE_SHIFT,
    HierarchyRun,
    chain_columns,
    slices_for,
    start_hierarchy,
)
from netwarden.sensor.pcapngwriter import SHB, enhanced_packets, idb
from netwarden.sensor.records import CHAIN_COLUMNS, Columns, empty

log = get_logger(__name__)

NS: Final = 1_000_000_000
MAX_BEHIND: Final = 1024  # largest stride factor falling behind can reach

# why frames of an interval were not dissected
FULL: Final = ""
BUDGET: Final = "budget"  # more frames than max_packets/bytes_per_interval: sampled
BEHIND: Final = "behind"  # tshark lagged: sampled more sparsely
SKIPPED: Final = "skipped"  # tshark lagged and the wait slot was taken: not dissected at all
FAILED: Final = "failed"  # tshark failed or took too long: not dissected


@dataclasses.dataclass(frozen=True)
class DissectedInterval:
    """The hierarchy of one interval, and how much of the interval it covers."""

    start_ns: int
    frames: int  # frames of the interval given to the dissector
    dissected: int  # of those, the frames tshark dissected
    stride: int  # every stride-th frame was offered to tshark (1: all)
    reason: str  # FULL, BUDGET, BEHIND, SKIPPED or FAILED
    chains: Columns  # CHAIN_COLUMNS rows (start_ns = the interval's start), dissected frames;
    # ``order`` = LiveDissector.order_base(start_ns) + pre-order index in the interval's tree
    late: int = 0  # frames of already closed intervals that arrived since the last result

    @property
    def not_dissected(self) -> int:
        """Frames tshark did not see: this interval's left-outs plus late frames."""
        return self.frames - self.dissected + self.late

    @property
    def fraction(self) -> float:
        """Share of the interval's frames that were dissected."""
        return self.dissected / self.frames if self.frames else 1.0


@dataclasses.dataclass(frozen=True)
class DissectStats:
    """Totals since start."""

    frames: int
    dissected: int
    late: int
    intervals: int
    sampled: int  # intervals dissected only in part
    skipped: int
    failed: int

    @property
    def not_dissected(self) -> int:
        return self.frames - self.dissected + self.late


class _IntervalFile:
    """The pcapng file of one interval, being written."""

    def __init__(self, directory: str, start_ns: int, stride: int, reason: str) -> None:
        self.start_ns = start_ns
        self.stride = stride
        self.reason = reason
        self.path = os.path.join(directory, f"interval-{start_ns}.pcapng")
        self.frames = 0  # frames offered
        self.written = 0
        self.bytes = 0
        self.ifaces: dict[int, int] = {}  # linktype -> interface id
        self.fh: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self.fh.write(SHB)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def write(self, b: PacketBatch, rows: np.ndarray) -> None:
        """Append the packets ``rows`` of ``b``."""
        assert self.fh is not None
        if len(rows) == 0:
            return
        link = b.linktype[rows]
        for lt in np.unique(link).tolist():
            if lt not in self.ifaces:
                self.ifaces[lt] = len(self.ifaces)
                self.fh.write(idb(lt))
        iface = np.array([self.ifaces[lt] for lt in link.tolist()], dtype=np.uint32) \
            if len(self.ifaces) > 1 else np.zeros(len(rows), np.uint32)
        blocks = enhanced_packets(b.buf, b.offset[rows], b.caplen[rows], b.wirelen[rows],
                                  b.ts_ns[rows], iface)
        self.fh.write(blocks.data)
        self.written += len(rows)
        self.bytes += len(blocks)


class LiveDissector:
    """Per-interval protocol hierarchy of live packets; see the module docstring.

    Use from one thread: ``add`` every batch, ``poll`` regularly (it also reaps tshark),
    ``finish`` at the end, ``stop`` always (or use it as a context manager).
    """

    def __init__(self, *, interval_s: int = 10, max_packets_per_interval: int = 200_000,
                 max_bytes_per_interval: int = 256 << 20, grace_s: float = 1.0,
                 run_timeout_s: float | None = None, tshark: str = "tshark",
                 tmp_dir: str | None = None) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        if max_packets_per_interval < 1 or max_bytes_per_interval < 1:
            raise ValueError("max_packets_per_interval and max_bytes_per_interval must be "
                             "positive")
        self.interval_s = interval_s
        self.max_packets = max_packets_per_interval
        self.max_bytes = max_bytes_per_interval
        self.grace_ns = int(grace_s * NS)
        self.run_timeout_s = run_timeout_s if run_timeout_s is not None else 5.0 * interval_s
        self.tshark = tshark
        self._tmp_parent = tmp_dir
        self._ival = interval_s * NS
        self._dir: str | None = None
        self._open: _IntervalFile | None = None
        self._waiting: collections.deque[_IntervalFile] = collections.deque()
        self._running: tuple[_IntervalFile, HierarchyRun, float] | None = None
        self._results: list[DissectedInterval] = []
        self._behind = 1
        self._last_frames = 0
        self._last_start: int | None = None  # latest interval opened
        self._late = 0  # late frames not yet reported
        self._tot = collections.Counter[str]()

    # ------------------------------------------------------------------ lifecycle

    def order_base(self, start_ns: int) -> int:
        """What the ``order`` of an interval's chain rows starts from (interval number
        times :data:`~netwarden.sensor.hierarchy.ORDER_SLICE_SHIFT`)."""
        return int(start_ns // self._ival) * int(ORDER_SLICE_SHIFT)

    @property
    def directory(self) -> str | None:
        """The private temporary directory (None before start / after stop)."""
        return self._dir

    def start(self) -> None:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="netwarden-live-", dir=self._tmp_parent)

    def stop(self) -> None:
        """Kill tshark, delete every file and the directory. Unreported results are lost."""
        if self._running is not None:
            f, run, _ = self._running
            run.close()
            f.remove()
            self._running = None
        for f in self._waiting:
            f.remove()
        self._waiting.clear()
        if self._open is not None:
            self._open.remove()
            self._open = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LiveDissector:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ input

    def add(self, batch: PacketBatch) -> None:
        """Take the packets of ``batch`` (in time order) for their intervals."""
        if self._dir is None:
            raise RuntimeFailure("live dissection: add() before start() or after stop()")
        n = len(batch)
        if n == 0:
            return
        starts = (batch.ts_ns // self._ival) * self._ival
        # runs of equal interval start (a batch is in time order: usually one run)
        cut = np.flatnonzero(starts[1:] != starts[:-1]) + 1
        bounds = [0, *cut.tolist(), n]
        for lo, hi in itertools.pairwise(bounds):
            self._add_run(batch, int(starts[lo]), lo, hi)

    def _add_run(self, b: PacketBatch, start: int, lo: int, hi: int) -> None:
        if self._last_start is not None and start < self._last_start:
            self._late += hi - lo  # its interval was closed already
            self._tot["late"] += hi - lo
            return
        if self._open is None or start != self._open.start_ns:
            if self._open is not None:
                self._close_open()
            self._open = self._new_file(start)
            self._last_start = start
        f = self._open
        self._tot["frames"] += hi - lo
        idx = np.arange(f.frames, f.frames + (hi - lo))
        f.frames += hi - lo
        rows = lo + np.flatnonzero(idx % f.stride == 0)
        room = self.max_packets - f.written
        if len(rows) > room:
            rows = rows[:max(room, 0)]
            f.reason = f.reason or BUDGET
        if len(rows):
            sizes = 32 + b.caplen[rows].astype(np.int64) + 3
            fit = int(np.searchsorted(np.cumsum(sizes), self.max_bytes - f.bytes, side="right"))
            if fit < len(rows):
                rows = rows[:fit]
                f.reason = f.reason or BUDGET
        f.write(b, rows)

    def _new_file(self, start: int) -> _IntervalFile:
        assert self._dir is not None
        stride = max(1, math.ceil(self._last_frames / self.max_packets))
        reason = BUDGET if stride > 1 else FULL
        if self._behind > 1:
            stride *= self._behind
            reason = BEHIND
        return _IntervalFile(self._dir, start, stride, reason)

    def _close_open(self) -> None:
        self._reap()
        self._advance()
        f = self._open
        assert f is not None
        self._open = None
        f.close()
        self._last_frames = f.frames
        busy = self._running is not None or bool(self._waiting)
        if busy:
            self._behind = min(self._behind * 2, MAX_BEHIND)
        else:
            self._behind = max(self._behind // 2, 1)
        if self._running is None and not self._waiting:
            self._start_run(f)
        elif not self._waiting:
            self._waiting.append(f)
        else:
            f.remove()
            self._emit(f, SKIPPED, None)

    # ------------------------------------------------------------------ tshark

    def _start_run(self, f: _IntervalFile) -> None:
        if f.written == 0:
            f.remove()
            self._emit(f, f.reason or SKIPPED, None)
            return
        try:
            run = start_hierarchy(f.path, slices_for([]), tshark=self.tshark)
        except NetwardenError as e:
            log.warning("live dissection failed", interval_ns=f.start_ns, error=str(e))
            f.remove()
            self._emit(f, FAILED, None)
            return
        self._running = (f, run, time.monotonic())

    def _reap(self, wait_s: float | None = None) -> None:
        """Collect tshark's result if it has finished (waiting up to ``wait_s``)."""
        if self._running is None:
            return
        f, run, began = self._running
        if wait_s is None and not run.done():
            if time.monotonic() - began <= self.run_timeout_s:
                return
            wait_s = 0.0
        self._running = None
        try:
            limit = self.run_timeout_s if wait_s is None else wait_s
            result = run.result(timeout=max(limit, 0.0))
            chains = chain_columns(result, f.start_ns)
            # sibling order across intervals: an earlier interval's nodes sort first, as
            # the offline pass's slices do
            chains["order"] += np.uint64(self.order_base(f.start_ns))
            if result.frames != f.written:
                log.warning("tshark dissected a different number of frames",
                            interval_ns=f.start_ns, written=f.written, dissected=result.frames)
        except NetwardenError as e:
            log.warning("live dissection failed", interval_ns=f.start_ns, error=str(e))
            self._emit(f, FAILED, None)
        else:
            self._emit(f, f.reason, chains)
        finally:
            run.close()
            f.remove()

    def _emit(self, f: _IntervalFile, reason: str, chains: Columns | None) -> None:
        dissected = f.written if chains is not None else 0
        if chains is None:
            chains = empty(CHAIN_COLUMNS)
        if dissected < f.frames and not reason:
            reason = BUDGET
        self._results.append(DissectedInterval(f.start_ns, f.frames, dissected, f.stride,
                                               reason, chains, self._late))
        self._late = 0
        self._tot["intervals"] += 1
        self._tot["dissected"] += dissected
        self._tot["sampled"] += 0 < dissected < f.frames
        self._tot["skipped"] += reason == SKIPPED
        self._tot["failed"] += reason == FAILED

    def _advance(self) -> None:
        if self._running is None and self._waiting:
            self._start_run(self._waiting.popleft())

    # ------------------------------------------------------------------ output

    def poll(self, now_ns: int | None = None) -> list[DissectedInterval]:
        """Reap tshark, close the open interval once ``now_ns`` is past its end plus the
        grace time, start tshark on what waits; the intervals finished since the last call."""
        self._reap()
        self._advance()
        if (now_ns is not None and self._open is not None
                and now_ns >= self._open.start_ns + self._ival + self.grace_ns):
            self._close_open()
        self._advance()
        out, self._results = self._results, []
        return out

    def finish(self, timeout_s: float | None = None) -> list[DissectedInterval]:
        """Wait for tshark on everything closed, then close the open interval and wait for
        it too (each run at most ``timeout_s``, default ``run_timeout_s``); every remaining
        result. Nothing is skipped."""
        wait = self.run_timeout_s if timeout_s is None else timeout_s
        while True:
            while self._running is not None or self._waiting:
                self._reap(wait)
                self._advance()
            if self._open is None:
                break
            self._close_open()
        out, self._results = self._results, []
        return out

    def stats(self) -> DissectStats:
        t = self._tot
        return DissectStats(t["frames"], t["dissected"], t["late"], t["intervals"],
                            t["sampled"], t["skipped"], t["failed"])
