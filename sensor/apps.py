"""App labels: the :class:`AppLabeller` enricher (columns ``app``, ``app_name``,
``app_source`` and the ``names`` table).

On the capture path it only copies flow heads (:mod:`.flowheads`). When a batch is about
to leave (:meth:`AppLabeller.enrich`) the heads observed so far are dissected by tshark
(:mod:`.headnames`), which yields

* the server name of a stream, from the TLS ClientHello's SNI (source ``"tls"``) or the
  one in a QUIC Initial (``"quic"``), kept per stream (bounded LRU);
* remote address → name, from the A/AAAA answers of DNS responses (bounded LRU; an entry
  older than ``dns_ttl_s``, by packet time, is not used);
* the ``names`` rows: per interval, source and name, the frames that carry it (SNI: every
  occurrence, as tshark's ``tls.handshake.extensions_server_name``; DNS: each distinct
  ``dns.qry.name`` once per frame).

Then every flow record of the batch gets the first label that applies:

1. the SNI of its stream → ``app`` from the rules (:mod:`.apprules`), ``app_name`` the SNI;
2. the DNS name of its remote address (direction in: the source; out: the destination;
   other or local: the destination, else the source) → source ``"dns"``;
3. a well-known port of either side (``[ports]`` of the rules) → source ``"port"``,
   ``app_name`` empty;
4. nothing (all three columns empty).

A name found later labels the later records of the stream (or address); records already
sent keep what they had.

tshark runs in a worker thread, one run per ``submit_packets`` head packets (and one for
what is left when a batch is enriched), so it dissects while the accountant goes on.
``enrich`` waits for the dissections of the heads observed before it was called: offline
(``max_wait_s=None``) until they are done, so labels never depend on timing; a live sensor
must not stall its capture thread, so it waits at most ``max_wait_s`` and names that come
later label later batches. While more than ``max_queued`` dissections wait (live), new
heads are dropped and counted (:attr:`AppLabeller.dropped`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Iterable
from typing import Final

import numpy as np

from netwarden.errors import NetwardenError
from netwarden.logging import get_logger
from netwarden.sensor.apprules import AppRules
from netwarden.sensor.bounded import BoundedMap
from netwarden.sensor.decode import IPPROTO_UDP
from netwarden.sensor.enrich import PacketView
from netwarden.sensor.flowheads import Heads, HeadSelector
from netwarden.sensor.headnames import FrameNames, dissect
from netwarden.sensor.records import NAME_COLUMNS, Columns, Direction, FlowBatch, concat

__all__ = ["AppLabeller", "LabelTables"]

log = get_logger(__name__)

NS: Final = 1_000_000_000
SOURCE_TLS: Final = "tls"
SOURCE_QUIC: Final = "quic"
SOURCE_DNS: Final = "dns"
SOURCE_PORT: Final = "port"


class LabelTables:
    """What dissection has learnt: stream → SNI, address → DNS name, names per interval.

    Pure logic (no tshark): :meth:`learn` takes dissected frames, :meth:`label` fills a
    batch's columns, :meth:`take_names` hands out the ``names`` rows.
    """

    def __init__(self, rules: AppRules, *, max_streams: int = 200_000,
                 max_addresses: int = 100_000, dns_ttl_s: float = 3600.0) -> None:
        self.rules = rules
        self.dns_ttl_ns = int(dns_ttl_s * NS)
        # stream -> (server name, source, app); address -> (name, packet time, app)
        self._streams: BoundedMap[int, tuple[str, str, str]] = BoundedMap(max_streams)
        self._addresses: BoundedMap[bytes, tuple[str, int, str]] = BoundedMap(max_addresses)
        self._names: collections.Counter[tuple[int, str, str]] = collections.Counter()

    # -- learning ----------------------------------------------------------------------

    def learn(self, heads: Heads, frames: Iterable[FrameNames]) -> None:
        """Take what the dissected ``frames`` of ``heads`` say."""
        for fr in frames:
            i = fr.index
            start = int(heads.start_ns[i])
            if fr.sni:
                source = SOURCE_QUIC if int(heads.ip_proto[i]) == IPPROTO_UDP else SOURCE_TLS
                for name in fr.sni:
                    self._names[(start, source, name)] += 1
                stream = int(heads.stream[i])
                if stream and self._streams.get(stream) is None:
                    self._streams.set(stream, (fr.sni[0], source,
                                               self.rules.app_for_name(fr.sni[0])))
            for name in fr.qnames:
                self._names[(start, SOURCE_DNS, name)] += 1
            ts = int(heads.ts_ns[i])
            for addr, name in fr.answers:
                self._addresses.set(addr, (name, ts, self.rules.app_for_name(name)))

    def take_names(self) -> Columns:
        """The ``names`` rows learnt since the last call."""
        items = sorted(self._names.items())
        self._names.clear()
        return {
            "start_ns": np.array([k[0] for k, _ in items], np.int64),
            "source": np.array([k[1] for k, _ in items], dtype=object),
            "name": np.array([k[2] for k, _ in items], dtype=object),
            "frames": np.array([v for _, v in items], np.uint64),
        }

    # -- labelling ---------------------------------------------------------------------

    def label(self, flows: Columns) -> None:
        """Fill ``app``, ``app_name`` and ``app_source`` of every record in ``flows``."""
        n = len(flows["packets"])
        if n == 0:
            return
        app = np.full(n, "", dtype=object)
        name = np.full(n, "", dtype=object)
        source = np.full(n, "", dtype=object)
        done = np.zeros(n, bool)
        # 1. the stream's server name
        streams = flows["stream"]
        sel = np.flatnonzero(streams != 0)
        if len(sel) and len(self._streams):
            u, inv = np.unique(streams[sel], return_inverse=True)
            hit = [self._streams.get(int(s)) for s in u.tolist()]
            have = np.array([h is not None for h in hit])
            if have.any():
                names = np.array([h[0] if h else "" for h in hit], dtype=object)
                srcs = np.array([h[1] if h else "" for h in hit], dtype=object)
                apps = np.array([h[2] if h else "" for h in hit], dtype=object)
                rows = sel[have[inv]]
                k = inv[have[inv]]
                app[rows], name[rows], source[rows] = apps[k], names[k], srcs[k]
                done[rows] = True
        # 2. the DNS name of the remote address
        if len(self._addresses):
            self._label_dns(flows, app, name, source, done)
        # 3. a well-known port
        rest = np.flatnonzero(~done)
        if len(rest):
            labels = self.rules.port_labels(flows["ip_proto"][rest], flows["src_port"][rest],
                                            flows["dst_port"][rest])
            got = labels != ""
            app[rest[got]] = labels[got]
            source[rest[got]] = SOURCE_PORT
        flows["app"], flows["app_name"], flows["app_source"] = app, name, source

    def _label_dns(self, flows: Columns, app: np.ndarray, name: np.ndarray,
                   source: np.ndarray, done: np.ndarray) -> None:
        d = flows["direction"]
        # remote first, the other side second (other/local: destination, then source)
        first = np.where(d == Direction.IN, flows["src_ip"], flows["dst_ip"])
        second = np.where((d == Direction.IN) | (d == Direction.OUT), b"", flows["src_ip"])
        seen = flows["last_seen"]
        for cand in (first, second):
            rest = np.flatnonzero(~done & (cand != b""))
            if len(rest) == 0:
                continue
            u, inv = np.unique(cand[rest], return_inverse=True)
            found = np.zeros(len(u), bool)
            names = np.full(len(u), "", dtype=object)
            apps = np.full(len(u), "", dtype=object)
            stamp = np.zeros(len(u), np.int64)
            for j, a in enumerate(u.tolist()):
                hit = self._addresses.get(a)
                if hit is not None:
                    found[j], names[j], stamp[j], apps[j] = True, hit[0], hit[1], hit[2]
            ok = found[inv] & (seen[rest] <= stamp[inv] + self.dns_ttl_ns)
            rows = rest[ok]
            if len(rows) == 0:
                continue
            k = inv[ok]
            name[rows] = names[k]
            app[rows] = apps[k]
            source[rows] = SOURCE_DNS
            done[rows] = True


class AppLabeller:
    """The app-label enricher; see the module doc."""

    def __init__(self, rules: AppRules, *, head_packets: int = 8,
                 max_wait_s: float | None = None, max_queued: int | None = None,
                 submit_packets: int = 50_000, tshark: str = "tshark",
                 dissect_timeout_s: float = 300.0, max_streams: int = 200_000,
                 max_addresses: int = 100_000, dns_ttl_s: float = 3600.0,
                 max_pending_bytes: int = 64 << 20) -> None:
        self.tables = LabelTables(rules, max_streams=max_streams,
                                  max_addresses=max_addresses, dns_ttl_s=dns_ttl_s)
        self.heads = HeadSelector(head_packets=head_packets, max_streams=max_streams,
                                  max_pending_bytes=max_pending_bytes)
        self.max_wait_s = max_wait_s
        self.max_queued = max_queued
        self.submit_packets = submit_packets
        self.tshark = tshark
        self.dissect_timeout_s = dissect_timeout_s
        self.dissected = 0  # packets given to tshark
        self.dropped = 0  # head packets never dissected (worker behind)
        self.failures = 0
        self.dissect_seconds = 0.0
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: collections.deque[
            tuple[Heads, concurrent.futures.Future[list[FrameNames]]]] = collections.deque()
        self._closed = False

    # -- Enricher ----------------------------------------------------------------------

    def observe(self, view: PacketView) -> None:
        self.heads.observe(view)
        if (self.heads.pending >= self.submit_packets
                or self.heads.pending_bytes >= self.heads.max_pending_bytes // 2):
            self._submit(self.heads.take())

    def enrich(self, batch: FlowBatch) -> None:
        self._submit(self.heads.take())
        self._collect(None if self.max_wait_s is None
                      else time.monotonic() + self.max_wait_s)
        self.tables.label(batch.flows)
        names = self.tables.take_names()
        if len(names["name"]):
            batch.names = concat(NAME_COLUMNS, [batch.names, names])

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            for _, fut in self._queue:
                fut.cancel()
            self._queue.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- work --------------------------------------------------------------------------

    def _dissect(self, heads: Heads) -> list[FrameNames]:
        t0 = time.monotonic()
        try:
            frames: list[FrameNames] = dissect(heads, tshark=self.tshark,
                                               timeout_s=self.dissect_timeout_s)
            return frames
        except NetwardenError as exc:
            with self._lock:
                self.failures += 1
            log.warning("app dissection failed; records of these packets keep no server "
                        "name", packets=len(heads), error=exc.message)
            return []
        finally:
            with self._lock:
                self.dissected += len(heads)
                self.dissect_seconds += time.monotonic() - t0

    def _submit(self, heads: Heads) -> None:
        """Queue ``heads`` for the worker thread (dropped while it is too far behind)."""
        if len(heads) == 0 or self._closed:
            return
        if self.max_queued is not None and len(self._queue) >= self.max_queued:
            self.dropped += len(heads)
            log.warning("app dissection is behind: head packets dropped", packets=len(heads))
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="netwarden-apps")
        self._queue.append((heads, self._pool.submit(self._dissect, heads)))

    def _collect(self, deadline: float | None) -> None:
        """Learn from finished dissections, in order, waiting for them until ``deadline``
        (``None``: until all are done)."""
        while self._queue:
            heads, fut = self._queue[0]
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                frames = fut.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                return
            self._queue.popleft()
            self.tables.learn(heads, frames)
