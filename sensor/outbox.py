"""The sensor's outbox: encoded batches waiting for the collector's acknowledgement.

Bounded by bytes (``transport.buffer_bytes``, 256 MiB by default: at a few hundred bytes
per flow record that is hours of a busy host's records). Capture never waits for it:
:meth:`Outbox.put` always succeeds, and when the new batch takes the outbox over its limit
the *oldest* batches are dropped until it fits (the newest batch is always kept). A
dropped batch's packets are counted (:meth:`Outbox.take_dropped`); the agent carries
them as ``dropped`` in the capture statistics of its next batch, and logs them.

A dropped batch that was already sent on the open stream may still be stored by the
collector: it is counted only once that is known not to have happened (the next
acknowledgement above it says it was stored; a reconnection whose first Ack is below it
says it was lost).

Sequence numbers: :meth:`Outbox.put` numbers batches 1, 2, 3... provisionally. The first
Ack after the sensor connects says what the collector already has for this host
(:meth:`Outbox.anchor`); the first time (a new sensor process, whose numbers restarted),
every held batch is renumbered to follow it, so a restarted sensor never reuses a number
the collector has stored. Later connections only drop what the Ack covers. Thread-safe.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb

__all__ = ["Entry", "Outbox", "OutboxStats"]

log = get_logger("netwarden.sensor.outbox")


@dataclasses.dataclass
class Entry:
    """One batch in the outbox."""

    seq: int
    msg: pb.FlowBatch  # msg.seq == seq
    size: int  # encoded bytes
    packets: int  # frames the batch accounts for (its capture statistics)


@dataclasses.dataclass
class OutboxStats:
    """Counters since start."""

    batches: int = 0  # batches put
    acked: int = 0  # batches acknowledged
    dropped_batches: int = 0  # batches lost to the size limit or refused by the collector
    dropped_packets: int = 0
    rejected: int = 0  # batches the collector refused as malformed (also in dropped_*)


class Outbox:
    """Unacknowledged batches in sequence order, at most ``max_bytes`` of them."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, not {max_bytes}")
        self.max_bytes = max_bytes
        self.stats = OutboxStats()
        self._entries: collections.deque[Entry] = collections.deque()
        self._bytes = 0
        self._next_seq = 1
        self._anchored = False
        self._sent_upto = 0  # highest seq handed out on the current stream
        self._limbo: dict[int, int] = {}  # dropped after sending: seq -> packets
        self._undelivered_drops = 0  # dropped packets not yet taken by the agent
        self._cond = threading.Condition()

    # -- the capture side -----------------------------------------------------------------

    def put(self, msg: pb.FlowBatch, packets: int) -> int:
        """Add a batch (numbered here: ``msg.seq`` is set); return its number.

        Drops the oldest batches when the outbox goes over ``max_bytes``.
        """
        with self._cond:
            seq = self._next_seq
            self._next_seq += 1
            msg.seq = seq
            entry = Entry(seq, msg, msg.ByteSize(), packets)
            self._entries.append(entry)
            self._bytes += entry.size
            self.stats.batches += 1
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._evict(self._entries.popleft())
            self._cond.notify_all()
            return seq

    def _evict(self, entry: Entry) -> None:
        self._bytes -= entry.size
        if entry.seq <= self._sent_upto:
            self._limbo[entry.seq] = entry.packets  # maybe stored: wait for the collector
            return
        self._count_drop(entry.packets)
        log.warning("outbox full: oldest batch dropped", seq=entry.seq, packets=entry.packets,
                    max_bytes=self.max_bytes)

    def _count_drop(self, packets: int) -> None:
        self.stats.dropped_batches += 1
        self.stats.dropped_packets += packets
        self._undelivered_drops += packets

    def take_dropped(self) -> int:
        """Packets of batches dropped since the last call (for the next capture stats)."""
        with self._cond:
            n, self._undelivered_drops = self._undelivered_drops, 0
            return n

    # -- the transport side ---------------------------------------------------------------

    def anchor(self, stored: int) -> None:
        """Take the first Ack of a stream: ``stored`` is the collector's highest number."""
        with self._cond:
            self._sent_upto = 0
            if not self._anchored or stored >= self._next_seq:
                if self._anchored:
                    log.warning("the collector has batch numbers this sensor never sent "
                                "(another sensor with the same host name?): renumbering",
                                stored=stored, next_seq=self._next_seq)
                    self._forget_limbo(stored=-1)
                self._renumber(stored + 1)
                self._anchored = True
            else:
                self._ack(stored)
                self._forget_limbo(stored)
            self._cond.notify_all()

    def _renumber(self, first: int) -> None:
        seq = first
        for entry in self._entries:
            entry.seq = seq
            entry.msg.seq = seq
            seq += 1
        self._next_seq = seq

    def _forget_limbo(self, stored: int) -> None:
        """Batches dropped after sending and not stored (``seq > stored``) are lost."""
        for seq, packets in list(self._limbo.items()):
            del self._limbo[seq]
            if seq > stored:
                self._count_drop(packets)
                log.warning("outbox full: a batch dropped after sending was not stored",
                            seq=seq, packets=packets)

    def ack(self, seq: int) -> int:
        """Every batch numbered ``<= seq`` is stored: forget them; return how many."""
        with self._cond:
            n = self._ack(seq)
            self._cond.notify_all()
            return n

    def _ack(self, seq: int) -> int:
        n = 0
        while self._entries and self._entries[0].seq <= seq:
            self._bytes -= self._entries.popleft().size
            n += 1
        self.stats.acked += n
        for s in [s for s in self._limbo if s <= seq]:
            del self._limbo[s]  # stored after all
        return n

    def reject(self, seq: int) -> Entry | None:
        """The collector refused batch ``seq`` (malformed): drop it and count it."""
        with self._cond:
            for i, entry in enumerate(self._entries):
                if entry.seq == seq:
                    del self._entries[i]
                    self._bytes -= entry.size
                    self.stats.rejected += 1
                    self._count_drop(entry.packets)
                    self._cond.notify_all()
                    return entry
            return None

    def next_after(self, seq: int, timeout_s: float) -> Entry | None:
        """The first batch numbered above ``seq``, waiting up to ``timeout_s`` for one."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for entry in self._entries:
                    if entry.seq > seq:
                        self._sent_upto = max(self._sent_upto, entry.seq)
                        return entry
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until every batch is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._entries:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- state ----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    @property
    def bytes(self) -> int:
        with self._cond:
            return self._bytes

    @property
    def anchored(self) -> bool:
        with self._cond:
            return self._anchored

    def seqs(self) -> list[int]:
        """Numbers of the batches held, in order."""
        with self._cond:
            return [e.seq for e in self._entries]

    def unresolved_packets(self) -> int:
        """Packets of batches dropped after sending whose fate is unknown."""
        with self._cond:
            return sum(self._limbo.values())
