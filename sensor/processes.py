"""Process attribution: the local process (comm name, pid) of each flow record, live only.

A :class:`SocketTable` follows the TCP/UDP sockets of the sensor's network namespace
and their owners (read from /proc by :mod:`netwarden.sensor.sockets`):

* :meth:`SocketTable.refresh` reads /proc/net/{tcp,tcp6,udp,udp6} (a few ms) and looks
  for the owners of the inodes it has not seen yet in /proc/[pid]/fd; with no new inode
  it does not walk the processes at all. An inode no process holds (a kernel socket, or
  one closed meanwhile) is not searched for again.
* A socket stays in the table ``retain_s`` after it was last listed: records are
  labelled when their interval is flushed, after short-lived sockets have closed.
  A socket whose addresses change (UDP ``connect``, TCP bind then connect) is kept under
  each of them.

The :class:`ProcessEnricher` runs a background thread that refreshes the table every
``scan_interval_s``, and at once (at most every :data:`MIN_GAP_S`) when
:meth:`~ProcessEnricher.observe` sees a TCP/UDP packet of a local port no listed socket
has: the socket of a new connection or of a short-lived sender is read while it still
exists. A port asked for and not found is not asked for again for
:data:`RETRY_S`; scans are at least :data:`DUTY` times their own length apart (at most
a fifth of a core on a host with very many sockets). Sockets that live less than the
capture latency plus one scan (about 0.1 s) can still be missed; the capture
statistics say how much was.

Matching, per record of direction ``in`` (the local end is the destination), ``out``
(the source) or ``local`` (the source's socket, else the destination's), TCP/UDP only:

1. the socket with exactly the record's local and remote address and port;
2. else a socket bound to the local address and port (a listener, an unconnected UDP
   socket, or another connection of the same local port), then one bound to the
   wildcard of the record's family (``0.0.0.0`` for IPv4, then ``::``, which takes IPv4
   too).

When several sockets qualify, the one whose listed lifetime is closest in time to the
record's packets wins (then the most recent). :meth:`ProcessEnricher.enrich` fills
``process`` and ``pid``, and ``local_bytes``/``process_bytes`` of the capture
statistics: per interval of the batch, the bytes of its ``layer = 0`` records of
direction in/out/local and the part of them that got a process, on the interval's
first statistics row (a row with zero packets is added for an interval that has
records but no statistics row; the accountant always hands out both together).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Final

import numpy as np

from netwarden.logging import get_logger
from netwarden.sensor.enrich import PacketView
from netwarden.sensor.records import (
    STAT_COLUMNS,
    Columns,
    Direction,
    FlowBatch,
    concat,
    empty,
)
from netwarden.sensor.sockets import (
    TCP,
    UDP,
    V4_ANY,
    V4_PREFIX,
    V6_ANY,
    Owner,
    Socket,
    SocketFileError,
    find_owners,
    read_sockets,
)

__all__ = ["MIN_GAP_S", "RETRY_S", "Entry", "ProcessEnricher", "ScanStats", "SocketTable"]

log = get_logger("netwarden.sensor.processes")

MIN_GAP_S: Final = 0.02  # shortest time between two scans asked for by observe()
DUTY: Final = 5  # the time between two scans is at least DUTY times the last one's length
RETRY_S: Final = 1.0  # a port asked for and not found is not asked for again this long
NS: Final = 1_000_000_000

Reader = Callable[[], list[Socket]]
OwnerFinder = Callable[[set[int]], dict[int, Owner]]


@dataclasses.dataclass
class Entry:
    """A socket under one set of addresses, its owner, and when scans listed it."""

    socket: Socket
    owner: Owner
    first_ns: int
    last_ns: int


@dataclasses.dataclass
class ScanStats:
    """Counters of a :class:`SocketTable` since it was made."""

    scans: int = 0
    walks: int = 0  # scans that looked for owners in /proc/[pid]/fd
    scan_ns: int = 0  # time spent scanning
    max_scan_ns: int = 0
    sockets: int = 0  # sockets listed by the last scan
    entries: int = 0  # entries held (listed or retained) after the last scan


_Exact = tuple[int, bytes, int, bytes, int]
_Bound = tuple[int, bytes, int]


class SocketTable:
    """The sockets of this network namespace and their owners, kept over time."""

    def __init__(self, *, retain_s: float = 60.0, reader: Reader | None = None,
                 owners: OwnerFinder | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.retain_ns = int(retain_s * NS)
        self._read = reader if reader is not None else read_sockets
        self._owners = owners if owners is not None else find_owners
        self._clock = clock
        self._entries: dict[tuple[int, int, bytes, int, bytes, int], Entry] = {}
        self._owner_of: dict[int, Owner] = {}  # inode -> owner, while listed or retained
        self._unowned: set[int] = set()  # listed inodes no process was found for
        self._exact: dict[_Exact, list[Entry]] = {}
        self._bound: dict[_Bound, list[Entry]] = {}
        self._ports: np.ndarray = np.zeros(0, np.uint32)  # proto << 16 | port, listed now
        self._lock = threading.Lock()  # one refresh at a time
        self.stats = ScanStats()

    @property
    def ports(self) -> np.ndarray:
        """Sorted ``proto << 16 | local port`` of the sockets the last scan listed."""
        return self._ports

    def refresh(self) -> None:
        """Read the sockets, find the owners of new ones, drop entries older than
        ``retain_s``, rebuild the index."""
        with self._lock:
            t0 = time.perf_counter_ns()
            now = self._clock()
            listed = self._read()
            inodes = {s.inode for s in listed}
            new = inodes - self._owner_of.keys() - self._unowned
            if new:
                found = self._owners(new)
                self._owner_of.update(found)
                self._unowned |= new - found.keys()
                self.stats.walks += 1
            self._unowned &= inodes
            for s in listed:
                owner = self._owner_of.get(s.inode)
                if owner is None:
                    continue
                key = (s.inode, s.proto, s.local, s.lport, s.remote, s.rport)
                entry = self._entries.get(key)
                if entry is None:
                    self._entries[key] = Entry(s, owner, now, now)
                else:  # the same socket and addresses (its state may have changed)
                    entry.socket, entry.last_ns = s, now
            horizon = now - self.retain_ns
            self._entries = {k: e for k, e in self._entries.items() if e.last_ns >= horizon}
            kept = {k[0] for k in self._entries}
            self._owner_of = {i: o for i, o in self._owner_of.items()
                              if i in kept or i in inodes}
            self._index()
            self._ports = np.unique(np.array([s.proto << 16 | s.lport for s in listed],
                                             dtype=np.uint32))
            took = time.perf_counter_ns() - t0
            st = self.stats
            st.scans += 1
            st.scan_ns += took
            st.max_scan_ns = max(st.max_scan_ns, took)
            st.sockets = len(listed)
            st.entries = len(self._entries)

    def _index(self) -> None:
        exact: dict[_Exact, list[Entry]] = {}
        bound: dict[_Bound, list[Entry]] = {}
        for e in self._entries.values():
            s = e.socket
            exact.setdefault((s.proto, s.local, s.lport, s.remote, s.rport), []).append(e)
            bound.setdefault((s.proto, s.local, s.lport), []).append(e)
        self._exact, self._bound = exact, bound  # swapped whole: lookups need no lock

    def entries(self) -> list[Entry]:
        """Every entry held (listed now or retained)."""
        return list(self._entries.values())

    def lookup(self, proto: int, local: bytes, lport: int, remote: bytes, rport: int,
               first_ns: int = 0, last_ns: int = 0) -> Entry | None:
        """The socket a packet between ``local``:``lport`` (this host) and
        ``remote``:``rport`` seen from ``first_ns`` to ``last_ns`` belongs to (see the
        module doc), or None. Addresses in the records' 16-byte form."""
        exact, bound = self._exact, self._bound
        cands = exact.get((proto, local, lport, remote, rport))
        if not cands:
            cands = bound.get((proto, local, lport))
        if not cands and local[:12] == V4_PREFIX:
            cands = bound.get((proto, V4_ANY, lport))
        if not cands:
            cands = bound.get((proto, V6_ANY, lport))
        if not cands:
            return None
        if len(cands) == 1:
            return cands[0]
        return min(cands, key=lambda e: (max(0, e.first_ns - last_ns, first_ns - e.last_ns),
                                         -e.first_ns, e.owner.pid))


class ProcessEnricher:
    """Fills ``process``/``pid`` and the attribution statistics (see the module doc)."""

    def __init__(self, table: SocketTable | None = None, *, scan_interval_s: float = 0.5,
                 retain_s: float = 60.0, start: bool = True) -> None:
        self.table = table if table is not None else SocketTable(retain_s=retain_s)
        self.scan_interval_s = scan_interval_s
        self.asked = 0  # scans asked for by observe()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._asked: dict[int, float] = {}  # port key -> monotonic time it may be asked again
        self._last_ask = 0.0
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Scan once now, then in the background."""
        if self._thread is not None:
            return
        self._scan()
        self._thread = threading.Thread(target=self._loop, name="sensor-processes",
                                        daemon=True)
        self._thread.start()

    def _scan(self) -> None:
        try:
            self.table.refresh()
        except (OSError, SocketFileError) as exc:
            log.warning("cannot read the socket table", error=str(exc))

    def _loop(self) -> None:
        last = time.monotonic()
        took = 0.0
        while not self._stop.is_set():
            every = max(self.scan_interval_s, DUTY * took)
            woken = self._wake.wait(max(0.0, last + every - time.monotonic()))
            if self._stop.is_set():
                return
            if woken:
                self._wake.clear()
                gap = last + max(MIN_GAP_S, DUTY * took) - time.monotonic()
                if gap > 0 and self._stop.wait(gap):
                    return
            t0 = time.monotonic()
            self._scan()
            last = time.monotonic()
            took = last - t0

    # -- Enricher -------------------------------------------------------------------------

    def observe(self, view: PacketView) -> None:
        """Ask for a scan when a TCP/UDP packet has a local port no listed socket has."""
        d = view.direction
        sel = (view.layer == 0) & ((view.ip_proto == TCP) | (view.ip_proto == UDP))
        proto = view.ip_proto.astype(np.uint32) << 16
        parts = []
        for which, ports in ((Direction.IN, view.dst_port), (Direction.OUT, view.src_port)):
            m = sel & ((d == which) | (d == Direction.LOCAL))
            if m.any():
                parts.append(proto[m] | ports[m].astype(np.uint32))
        if not parts:
            return
        keys = np.unique(np.concatenate(parts))
        unknown = np.setdiff1d(keys, self.table.ports, assume_unique=True)
        if not len(unknown):
            return
        now = time.monotonic()
        fresh = [k for k in unknown.tolist() if self._asked.get(k, 0.0) <= now]
        if not fresh:
            return
        for k in fresh:
            self._asked[k] = now + RETRY_S
        if len(self._asked) > 4096:
            self._asked = {k: t for k, t in self._asked.items() if t > now}
        self.asked += 1
        self._wake.set()

    def enrich(self, batch: FlowBatch) -> None:
        """Fill ``process``/``pid`` of the batch's records and its attribution statistics."""
        f = batch.flows
        n = len(f["direction"])
        if n:
            self._label(f, n)
        _statistics(batch)

    def _label(self, f: Columns, n: int) -> None:
        direction = f["direction"]
        proto = f["ip_proto"]
        todo = np.flatnonzero(((direction == Direction.IN) | (direction == Direction.OUT)
                               | (direction == Direction.LOCAL))
                              & ((proto == TCP) | (proto == UDP)))
        if not len(todo):
            return
        src = np.ascontiguousarray(f["src_ip"]).tobytes()
        dst = np.ascontiguousarray(f["dst_ip"]).tobytes()
        sp, dp = f["src_port"], f["dst_port"]
        first, last = f["first_seen"], f["last_seen"]
        process, pid = f["process"], f["pid"]
        lookup = self.table.lookup
        for i in todo.tolist():
            s_ip, d_ip = src[16 * i:16 * i + 16], dst[16 * i:16 * i + 16]
            p, dr = int(proto[i]), int(direction[i])
            t0, t1 = int(first[i]), int(last[i])
            entry = None
            if dr != Direction.IN:  # out, or local: the sender's socket first
                entry = lookup(p, s_ip, int(sp[i]), d_ip, int(dp[i]), t0, t1)
            if entry is None and dr != Direction.OUT:
                entry = lookup(p, d_ip, int(dp[i]), s_ip, int(sp[i]), t0, t1)
            if entry is not None:
                process[i] = entry.owner.comm
                pid[i] = entry.owner.pid

    def close(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        st = self.table.stats
        log.info("process attribution stopped", scans=st.scans, walks=st.walks,
                 asked=self.asked, mean_scan_ms=round(st.scan_ns / max(st.scans, 1) / 1e6, 3),
                 max_scan_ms=round(st.max_scan_ns / 1e6, 3))


def _statistics(batch: FlowBatch) -> None:
    """``local_bytes``/``process_bytes`` of every interval of the batch (module doc)."""
    f = batch.flows
    d = f["direction"]
    local = (f["layer"] == 0) & ((d == Direction.IN) | (d == Direction.OUT)
                                 | (d == Direction.LOCAL))
    starts = f["start_ns"][local]
    nbytes = f["bytes"][local].astype(np.uint64)
    owned = f["pid"][local] != 0
    intervals, inv = np.unique(starts, return_inverse=True)
    local_sum = np.zeros(len(intervals), np.uint64)
    owned_sum = np.zeros(len(intervals), np.uint64)
    np.add.at(local_sum, inv, nbytes)
    np.add.at(owned_sum, inv, np.where(owned, nbytes, np.uint64(0)))
    missing = np.setdiff1d(intervals, batch.stats["start_ns"])
    if len(missing):
        extra = empty(STAT_COLUMNS, len(missing))
        extra["start_ns"][:] = missing
        batch.stats = concat(STAT_COLUMNS, [batch.stats, extra])
    stats = batch.stats
    known, first_row = np.unique(stats["start_ns"], return_index=True)
    later = np.ones(len(stats["start_ns"]), bool)
    later[first_row] = False  # only an interval's first row carries them
    rows = first_row[np.searchsorted(known, intervals)]
    for col, sums in (("local_bytes", local_sum), ("process_bytes", owned_sum)):
        stats[col][later] = 0
        stats[col][rows] = sums
