"""Storing sensor batches exactly once: the collector's single writer thread.

Every store operation of the sensor streams runs on one thread, in the order the streams
asked for it, so nothing races:

* **hello** (a sensor connects): rows of ``host`` whose batch is missing from the ledger
  are deleted (left by a collector that died mid-store, see
  :mod:`netwarden.collector.store.ledger`); the answer is the highest batch number
  stored for the host, which the stream sends back as its first Ack. The connecting
  stream becomes the host's *owner*; batches still queued from an older stream of the
  same host are dropped from then on (the sensor resends them on the new stream).
* **write** (a batch arrived): a batch whose number is not above the host's stored
  number is a duplicate (a resend after a reconnect) and is only acknowledged again.
  Others are stored: their rows go into the raw tables with their ``seq``, then the
  store is flushed, then their ledger rows are written, then each stream gets an Ack
  of its host's new stored number. Acks therefore always mean "durably stored".
* **group commit**: the thread takes every job waiting in the queue (up to
  ``group_rows`` flow rows) and stores their batches with one insert per table and one
  ledger insert. With one sensor that is one flush per batch; with many, the inserts
  grow instead of multiplying. No timer delays a batch.
* **after storing** (optional ``on_stored``): once a group's ledger rows are written,
  ``on_stored`` gets the ``(host, batch)`` pairs stored, on this thread, before the acks
  (the policy usage rollup, :mod:`netwarden.collector.policy.usage`). It must not raise.
* **failure**: when the store fails, what is buffered is discarded, the streams whose
  batches were in the group are ended (the sensors reconnect with backoff and resend),
  and their hosts lose their owner until they say hello again, which cleans up first.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Protocol

from netwarden.collector.store import BatchMark, Store
from netwarden.errors import RuntimeFailure
from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.records import FlowBatch, nrows

__all__ = ["Ingest", "IngestStats", "Session"]

log = get_logger("netwarden.collector.ingest")


class Session(Protocol):
    """What the writer needs from a sensor stream."""

    host: str

    def deliver(self, msg: pb.CollectorMessage) -> None:
        """Queue ``msg`` for the sensor."""

    def fail(self, reason: str) -> None:
        """End the stream with an error: the sensor reconnects and resends."""

    def close(self) -> None:
        """End the stream normally once what is queued is sent."""


@dataclasses.dataclass
class _Hello:
    session: Session
    done: Future[int]


@dataclasses.dataclass
class _Write:
    session: Session
    batch: FlowBatch
    seq: int


@dataclasses.dataclass
class _Finish:
    session: Session


class _Stop:
    pass


_Job = _Hello | _Write | _Finish | _Stop


@dataclasses.dataclass
class IngestStats:
    """Counters since start."""

    batches: int = 0  # batches stored
    duplicates: int = 0  # batches already stored (acknowledged again)
    superseded: int = 0  # batches of a stream that no longer owns its host (resent later)
    flow_rows: int = 0
    groups: int = 0  # group commits (flush + ledger insert)
    failures: int = 0  # group commits that failed


class Ingest:
    """The writer thread of a collector. Component style: ``start()``, ``stop()``."""

    def __init__(self, store: Store, *, queue_batches: int = 256,
                 group_rows: int = 200_000,
                 on_stored: Callable[[Sequence[tuple[str, FlowBatch]]], None] | None = None
                 ) -> None:
        self.store = store
        self.on_stored = on_stored
        self.group_rows = group_rows
        self.stats = IngestStats()
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_batches)
        self._stored: dict[str, int] = {}  # host -> highest seq stored
        self._owner: dict[str, Session] = {}  # host -> the stream allowed to write
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="collector-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Store what is queued (within ``timeout_s``) and end the thread; True if it ended."""
        thread = self._thread
        if thread is None:
            return True
        self._stopping.set()
        self._put(_Stop(), force=True)
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("ingest did not finish in time", timeout_s=timeout_s,
                        queued=self._queue.qsize())
            return False
        self._thread = None
        return True

    # -- what streams call ----------------------------------------------------------------

    def hello(self, session: Session, timeout_s: float | None = None) -> int:
        """Make ``session`` the owner of its host; return the host's highest stored seq.

        Raises :class:`~netwarden.collector.store.StoreError` when the store fails.
        """
        done: Future[int] = Future()
        self._put(_Hello(session, done))
        return done.result(timeout_s)

    def submit(self, session: Session, batch: FlowBatch, seq: int) -> None:
        """Queue a validated batch for storing (blocks while the queue is full)."""
        self._put(_Write(session, batch, seq))

    def finish(self, session: Session) -> None:
        """Close ``session`` once its queued batches are stored and acknowledged."""
        self._put(_Finish(session))

    def _put(self, job: _Job, force: bool = False) -> None:
        while True:
            if self._stopping.is_set() and not force:
                raise RuntimeFailure("collector is stopping")
            try:
                self._queue.put(job, timeout=0.2)
                return
            except queue.Full:
                continue

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            jobs = self._take()
            group: list[_Write] = []
            for job in jobs:
                if isinstance(job, _Write):
                    group.append(job)
                    continue
                self._commit(group)
                group = []
                if isinstance(job, _Stop):
                    self._drain_after_stop()
                    return
                if isinstance(job, _Hello):
                    self._hello(job)
                else:
                    job.session.close()
                    if self._owner.get(job.session.host) is job.session:
                        del self._owner[job.session.host]
            self._commit(group)

    def _take(self) -> list[_Job]:
        jobs = [self._queue.get()]
        rows = _rows(jobs[0])
        while rows < self.group_rows and not isinstance(jobs[-1], _Stop):
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            jobs.append(job)
            rows += _rows(job)
        return jobs

    def _drain_after_stop(self) -> None:
        """Answer the hellos that raced with stop (their streams end anyway)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Hello):
                job.done.set_exception(RuntimeFailure("collector is stopping"))

    def _hello(self, job: _Hello) -> None:
        host = job.session.host
        try:
            found = self.store.discard_unrecorded(host)
            if found:
                log.warning("deleted rows of batches that were not completely stored",
                            host=host, rows=found)
            stored = self.store.stored_seq(host)
        except Exception as exc:
            self._stored.pop(host, None)
            self._owner.pop(host, None)
            job.done.set_exception(exc)
            return
        self._stored[host] = stored
        self._owner[host] = job.session
        job.done.set_result(stored)

    def _commit(self, group: list[_Write]) -> None:
        if not group:
            return
        marks: list[BatchMark] = []
        stored_batches: list[tuple[str, FlowBatch]] = []
        new_top: dict[str, int] = {}  # host -> highest seq stored by this group
        answered: dict[int, Session] = {}  # sessions to acknowledge, by id
        flow_rows = 0
        try:
            for w in group:
                host = w.session.host
                if self._owner.get(host) is not w.session or host not in self._stored:
                    self.stats.superseded += 1
                    continue
                answered[id(w.session)] = w.session
                if w.seq <= max(self._stored[host], new_top.get(host, 0)):
                    self.stats.duplicates += 1
                    continue
                marks.append(BatchMark.of(w.batch, w.seq, host))
                stored_batches.append((host, w.batch))
                new_top[host] = w.seq
                flow_rows += nrows(w.batch.flows)
                self.store.write(w.batch, host=host, seq=w.seq)
            if marks:
                self.store.flush()
                self.store.record_batches(marks)
        except Exception as exc:
            self._fail(group, new_top, exc)
        else:
            if marks:
                self._stored.update(new_top)
                self.stats.batches += len(marks)
                self.stats.flow_rows += flow_rows
                self.stats.groups += 1
                if self.on_stored is not None:
                    try:
                        self.on_stored(stored_batches)
                    except Exception as exc:  # the batches are stored: still acknowledge
                        log.error("after-store hook failed", error=repr(exc))
        for session in answered.values():
            stored = self._stored.get(session.host)
            if stored is not None and self._owner.get(session.host) is session:
                session.deliver(pb.CollectorMessage(ack=pb.Ack(seq=stored)))

    def _fail(self, group: Iterable[_Write], hosts: dict[str, int], exc: Exception) -> None:
        self.stats.failures += 1
        reason = f"collector could not store batches: {exc}".splitlines()[0]
        log.error("store failed; the sensors concerned will resend", error=str(exc),
                  hosts=sorted(hosts))
        self.store.discard_pending()
        failed: dict[int, Session] = {}
        for w in group:
            if w.session.host in hosts:
                failed[id(w.session)] = w.session
        for host in hosts:
            self._stored.pop(host, None)
            self._owner.pop(host, None)
        for session in failed.values():
            session.fail(reason)


def _rows(job: _Job) -> int:
    return max(1, nrows(job.batch.flows)) if isinstance(job, _Write) else 1

