"""A capture file as a packet source: the live sensor's input, replayed.

:class:`ReplaySource` has the interface of :class:`~.live.LiveSource` (``start``,
``stop``, ``read(timeout_s)``, ``stats``), so a :class:`~.agent.SensorAgent` runs on a
file exactly as on an interface. Packets come all at once (``speed=None``: as fast as
they are read) or paced like the capture (``speed=2.0``: twice as fast). ``retime=True``
moves the timestamps so that the first packet is "now" (paced: each packet carries the
time it is handed out), which makes a replay look like live traffic to wall-aligned
intervals; otherwise packets keep the file's timestamps.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from netwarden.sensor.accountant import PacketBatch
from netwarden.sensor.pcapfile import PacketIndex, read_index

__all__ = ["ReplaySource", "ReplayStats"]


@dataclasses.dataclass(frozen=True)
class ReplayStats:
    received: int  # packets handed out
    dropped: int = 0  # never: a file loses nothing


class ReplaySource:
    """Packets of ``path`` handed out by :meth:`read` (see the module doc)."""

    def __init__(self, path: Path, *, speed: float | None = None, retime: bool = False,
                 chunk_packets: int = 4096,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        self.path = Path(path)
        self.speed = speed
        self.retime = retime
        self.chunk_packets = chunk_packets
        self._clock = clock
        self._index: PacketIndex | None = None
        self._pos = 0
        self._start_ns = 0
        self._stopped = threading.Event()

    @property
    def done(self) -> bool:
        """Every packet was handed out."""
        return self._index is not None and self._pos >= len(self._index)

    @property
    def total(self) -> int:
        return len(self._index) if self._index is not None else 0

    def start(self) -> None:
        self._index = read_index(self.path)
        self._pos = 0
        self._start_ns = self._clock()
        self._stopped.clear()

    def stop(self) -> None:
        self._stopped.set()

    def stats(self) -> ReplayStats:
        return ReplayStats(received=self._pos)

    def _offset_ns(self, i: int) -> int:
        """When packet ``i`` is due, in ns after start."""
        assert self._index is not None
        dt = int(self._index.ts_ns[i]) - int(self._index.ts_ns[0])
        return max(0, int(dt / self.speed)) if self.speed else 0

    def read(self, timeout_s: float) -> PacketBatch | None:
        """The next packets that are due; None after ``timeout_s`` when none is."""
        idx = self._index
        if idx is None or self._stopped.is_set():
            return None
        if self._pos >= len(idx):
            self._stopped.wait(timeout_s)
            return None
        hi = min(self._pos + self.chunk_packets, len(idx))
        if self.speed is not None:
            elapsed = self._clock() - self._start_ns
            if self._offset_ns(self._pos) > elapsed:
                wait_ns = self._offset_ns(self._pos) - elapsed
                self._stopped.wait(min(timeout_s, wait_ns / 1e9))
                elapsed = self._clock() - self._start_ns
            rel = (idx.ts_ns[self._pos:hi] - idx.ts_ns[0]) / self.speed
            hi = self._pos + int(np.searchsorted(np.maximum.accumulate(rel), elapsed,
                                                 side="right"))
            if hi == self._pos:
                return None
        lo, self._pos = self._pos, hi
        ts = idx.ts_ns[lo:hi]
        if self.retime:
            rel = ts - idx.ts_ns[0]
            if self.speed:
                rel = (rel / self.speed).astype(np.int64)
            ts = self._start_ns + np.maximum(rel, 0)
        return PacketBatch(idx.buf, idx.offset[lo:hi], idx.caplen[lo:hi], idx.wirelen[lo:hi],
                           idx.linktype[lo:hi], np.asarray(ts, dtype=np.int64))
