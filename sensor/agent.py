"""The sensor process: capture, count per interval, stream the records to the collector.

Component style: :class:`SensorAgent` takes a :class:`~.config.SensorConfig` and a packet
source; the constructor does nothing; :meth:`~SensorAgent.start` starts two threads;
:meth:`~SensorAgent.stop` flushes and tries to deliver what is held.

* **capture thread**: reads packet batches from the source (never blocking longer than a
  quarter second), feeds them to an :class:`~.accountant.Accountant` (intervals aligned to
  the epoch), follows the host's addresses, and ``flush_delay_s`` after each interval
  ends puts the interval's records into the :class:`~.outbox.Outbox` (split into
  messages of at most ``max_batch_rows`` rows per table). Kernel drops and batches the
  outbox had to drop are carried as ``dropped`` in the next capture statistics. Nothing
  here waits for the network.
* **transport thread**: connects to the collector, sends Hello, takes the first Ack
  (what the collector already has: see :meth:`Outbox.anchor`), then sends every
  unacknowledged batch in order and new ones as they come; Acks remove them from the
  outbox. A batch the collector refuses as malformed (Error with its number) is dropped
  and counted. On any error or end of stream it reconnects after an exponential backoff
  with jitter (``backoff_initial_s`` doubling up to ``backoff_max_s``; reset after a
  successful connection), while capture and counting go on.

The buffer is the outbox: ``transport.buffer_bytes`` (256 MiB by default) of encoded
batches. While the collector is unreachable nothing is lost until it fills; then the
oldest batches are dropped, counted and logged (see :mod:`.outbox`).
"""

from __future__ import annotations

import dataclasses
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any, Protocol

import grpc
import numpy as np
import psutil

from netwarden.endpoint import grpc_options
from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb
from netwarden.proto import netwarden_pb2_grpc as pb_grpc
from netwarden.sensor.accountant import Accountant, PacketBatch
from netwarden.sensor.config import SensorConfig, effective
from netwarden.sensor.enforce.enforcer import Enforcer
from netwarden.sensor.enrich import Enricher, Enrichers
from netwarden.sensor.hostaddrs import HostAddresses
from netwarden.sensor.livedissect import DissectedInterval, LiveDissector
from netwarden.sensor.outbox import Outbox
from netwarden.sensor.records import CHAIN_COLUMNS, Columns, FlowBatch, concat, nrows
from netwarden.sensor.wire import PROTOCOL_VERSION, TABLES, encode_batch, split_batch

__all__ = ["AgentStats", "PacketSource", "SensorAgent", "SourceStats", "channel_options"]

log = get_logger("netwarden.sensor")

NS = 1_000_000_000
READ_TIMEOUT_S = 0.25
POLL_S = 0.2
HELLO_TIMEOUT_S = 60.0  # a collector cleaning up after a crash may take a while to answer


class SourceStats(Protocol):
    """Counters of a packet source (libpcap's, for live capture)."""

    @property
    def received(self) -> int: ...

    @property
    def dropped(self) -> int: ...


class PacketSource(Protocol):
    """Where packets come from: live capture (:class:`~.live.LiveSource`) or a replay."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout_s: float) -> PacketBatch | None: ...

    def stats(self) -> SourceStats: ...


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """gRPC channel options of the sensor: the shared ones, and no transparent retries
    (the sensor resends from its outbox itself)."""
    return [*grpc_options(max_message_bytes), ("grpc.enable_retries", 0)]


@dataclasses.dataclass
class AgentStats:
    """Counters since start (the outbox has its own: ``agent.outbox.stats``)."""

    packets: int = 0  # packets accounted
    kernel_dropped: int = 0
    flushes: int = 0  # flushes that produced records
    connects: int = 0  # streams established (first Ack received)
    failures: int = 0  # connection attempts or streams that ended in an error
    collector_errors: int = 0  # Error messages received


def software_version() -> str:
    try:
        return metadata.version("netwarden")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "unknown"


class SensorAgent:
    """One sensor: a packet source, an accountant, an outbox and a stream to a collector."""

    def __init__(self, config: SensorConfig, source: PacketSource, *,
                 source_name: str | None = None, outbox: Outbox | None = None,
                 addresses: HostAddresses | None = None,
                 enrichers: Enrichers | None = None) -> None:
        self.config = effective(config)
        self.host: str = self.config.sensor.host or "localhost"
        self.source = source
        self.source_name = source_name if source_name is not None else \
            ",".join(self.config.capture.interfaces)
        self.outbox = outbox if outbox is not None else Outbox(self.config.transport.buffer_bytes)
        self.stats = AgentStats()
        self._addresses = addresses
        # app labels and process attribution (sensor/enrich.py); built in start() from
        # the configuration when not given
        self._enrichers = enrichers
        # iptables enforcement (sensor/enforce/): only when enforce.mode is not "off"
        self._enforcer: Enforcer | None = None
        # AppliedState messages waiting to go out on the stream (before the next batch)
        self._control: queue.Queue[pb.SensorMessage] = queue.Queue()
        self._accountant: Accountant | None = None
        self._dissector: LiveDissector | None = None
        self._chains: list[Columns] = []  # hierarchy rows waiting for the next flush
        self._capture: threading.Thread | None = None
        self._transport: threading.Thread | None = None
        self._stop_capture = threading.Event()
        self._stop_transport = threading.Event()
        self._capture_ended = threading.Event()
        self._connected = threading.Event()
        self._call: Any = None
        self._call_lock = threading.Lock()
        self._last_dropped = 0
        self._started_ns = 0
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A stream to the collector is established."""
        return self._connected.is_set()

    @property
    def error(self) -> BaseException | None:
        """What ended the capture thread, if it failed."""
        return self._error

    def start(self) -> None:
        """Start capturing (the source is started here) and streaming."""
        if self._capture is not None:
            return
        self._started_ns = time.time_ns()
        if self._addresses is None:
            extra = [str(a) for a in self.config.sensor.host_addresses]
            self._addresses = HostAddresses(every_s=5.0, extra=extra)
        if self._enrichers is None:
            self._enrichers = self._build_enrichers()
        self._accountant = Accountant(
            self.host, interval_s=self.config.sensor.interval_s,
            host_addresses=self._addresses.addresses, align="wall", source=self.source_name,
            observer=self._enrichers.observe if self._enrichers else None)
        d = self.config.dissection
        if d.enabled:
            interval_s = self.config.sensor.interval_s
            self._dissector = LiveDissector(
                interval_s=interval_s,
                max_packets_per_interval=max(1, int(d.max_packets_per_s * interval_s)))
            self._dissector.start()
        if self.config.enforce.mode != "off":
            self._enforcer = Enforcer(self.config.enforce, [self.config.transport.collector],
                                      on_change=self._send_applied)
            self._enforcer.start()  # restores the saved state: enforcing without a collector
        self.source.start()
        self._capture = threading.Thread(target=self._capture_loop, name="sensor-capture",
                                         daemon=True)
        self._transport = threading.Thread(target=self._transport_loop,
                                           name="sensor-transport", daemon=True)
        self._capture.start()
        self._transport.start()
        log.info("sensor started", host=self.host, collector=self.config.transport.collector,
                 source=self.source_name, interval_s=self.config.sensor.interval_s)

    def _build_enrichers(self) -> Enrichers:
        """The enrichers the configuration asks for (app labels, process attribution)."""
        stages: list[Enricher] = []
        if self.config.apps.enabled:  # tshark in a worker thread; a flush waits max_wait_s
            from pathlib import Path

            from netwarden.sensor.apprules import load_rules
            from netwarden.sensor.apps import AppLabeller
            a = self.config.apps
            stages.append(AppLabeller(
                load_rules(Path(a.rules_file) if a.rules_file else None),
                head_packets=a.head_packets, max_wait_s=a.max_wait_s, max_queued=2))
        p, s = self.config.processes, self.config.sensor
        if p.enabled:  # sockets live; records are labelled when flushed
            from netwarden.sensor.processes import ProcessEnricher
            stages.append(ProcessEnricher(scan_interval_s=p.scan_interval_s, retain_s=max(
                p.retain_s, 2 * s.interval_s + s.flush_delay_s)))
        return Enrichers(stages)

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop capturing, flush every interval, and send what is held for up to
        ``timeout_s`` (default ``transport.stop_timeout_s``). True when everything was
        acknowledged."""
        timeout = self.config.transport.stop_timeout_s if timeout_s is None else timeout_s
        if self._capture is None:
            return True
        self._stop_capture.set()
        self._capture.join()
        delivered: bool = self.outbox.wait_empty(timeout)
        self._stop_transport.set()
        with self._call_lock:
            if self._call is not None:
                self._call.cancel()
        if self._transport is not None:
            self._transport.join(timeout=5.0)
        if self._enforcer is not None:
            self._enforcer.stop()  # the rules stay in force (they carry their expiry)
        if not delivered:
            log.warning("sensor stopped with batches not acknowledged by the collector",
                        batches=len(self.outbox), bytes=self.outbox.bytes)
        log.info("sensor stopped", host=self.host, packets=self.stats.packets,
                 batches=self.outbox.stats.batches, acked=self.outbox.stats.acked,
                 dropped_batches=self.outbox.stats.dropped_batches)
        return delivered

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the capture thread ends (stop, or a source failure); True if it did."""
        return self._capture_ended.wait(timeout_s)

    # -- capture --------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            self._capture_until_stopped()
        except BaseException as exc:
            self._error = exc
            log.error("capture failed", error=str(exc).splitlines()[0] if str(exc) else
                      type(exc).__name__)
        finally:
            try:
                self.source.stop()
                if self._dissector is not None:
                    self._take_dissected(self._dissector.finish())
                self._flush(None)  # every interval, ended or not
            except Exception as exc:
                log.error("final flush failed", error=repr(exc))
            finally:
                if self._dissector is not None:
                    self._dissector.stop()
                if self._enrichers is not None:
                    self._enrichers.close()
                self._capture_ended.set()

    def _capture_until_stopped(self) -> None:
        acc = self._accountant
        assert acc is not None and self._addresses is not None
        interval_ns = self.config.sensor.interval_s * NS
        delay_ns = int(self.config.sensor.flush_delay_s * NS)
        next_flush = _next_boundary(time.time_ns(), interval_ns) + delay_ns
        while not self._stop_capture.is_set():
            now = time.time_ns()
            wait_s = min(READ_TIMEOUT_S, max(0.0, (next_flush - now) / NS))
            batch = self.source.read(wait_s)
            if batch is not None and len(batch):
                acc.add(batch)
                if self._dissector is not None:
                    self._dissector.add(batch)
                self.stats.packets += len(batch)
            change = self._addresses.check()
            if change is not None:
                log.info("host addresses changed", added=list(change.added),
                         removed=list(change.removed))
                acc.set_host_addresses(change.addresses)
            now = time.time_ns()
            if self._dissector is not None:
                self._take_dissected(self._dissector.poll(now))
            if now >= next_flush:
                self._flush(now - delay_ns)
                next_flush = _next_boundary(now - delay_ns, interval_ns) + delay_ns

    def _take_dissected(self, done: list[DissectedInterval]) -> None:
        """Keep the hierarchy of dissected intervals for the next batch; what tshark did not
        see (sampling, falling behind) is counted as not dissected."""
        acc = self._accountant
        for r in done:
            self._chains.append(r.chains)
            if acc is not None and (r.not_dissected or r.late):
                acc.note_drops(0, r.not_dissected + r.late)

    def _flush(self, now_ns: int | None) -> None:
        """Hand the intervals ended by ``now_ns`` (all when None) to the outbox."""
        acc = self._accountant
        if acc is None:
            return
        dropped = self._source_drops() + self.outbox.take_dropped()
        if dropped:
            acc.note_drops(dropped)
        batch = acc.flush(now_ns)
        if self._chains:
            batch.chains = concat(CHAIN_COLUMNS, [batch.chains, *self._chains])
            self._chains = []
        if not any(nrows(getattr(batch, t)) for t, _ in TABLES):
            return
        if self._enrichers:
            self._enrichers.enrich(batch)
        self.stats.flushes += 1
        for piece in split_batch(batch, self.config.transport.max_batch_rows):
            msg = encode_batch(piece, 0)
            self.outbox.put(msg, _packets(piece))

    def _source_drops(self) -> int:
        try:
            dropped = int(self.source.stats().dropped)
        except Exception as exc:  # statistics are best effort; counting goes on
            log.warning("cannot read capture statistics", error=str(exc))
            return 0
        new = max(0, dropped - self._last_dropped)
        self._last_dropped = max(dropped, self._last_dropped)
        self.stats.kernel_dropped += new
        return new

    # -- transport ------------------------------------------------------------------------

    def _transport_loop(self) -> None:
        t = self.config.transport
        backoff = t.backoff_initial_s
        while not self._stop_transport.is_set():
            established = False
            try:
                established = self._stream_once()
            except grpc.RpcError as exc:
                if not self._stop_transport.is_set():
                    self.stats.failures += 1
                    log.warning("collector stream failed", collector=t.collector,
                                code=_code(exc), details=_details(exc))
            except Exception as exc:
                self.stats.failures += 1
                log.error("collector stream error", collector=t.collector, error=repr(exc))
            finally:
                self._connected.clear()
            if self._stop_transport.is_set():
                return
            if established:
                backoff = t.backoff_initial_s
            delay = backoff * (0.5 + random.random() / 2)  # jitter: 50-100 % of the backoff
            backoff = min(backoff * 2, t.backoff_max_s)
            log.debug("reconnecting", in_s=round(delay, 3))
            self._stop_transport.wait(delay)

    def _stream_once(self) -> bool:
        """One stream, until it ends; True if it was established (first Ack received)."""
        t = self.config.transport
        channel = grpc.insecure_channel(t.collector, options=channel_options(t.max_message_bytes))
        anchored = threading.Event()
        ended = threading.Event()
        try:
            stub = pb_grpc.CollectorStub(channel)
            call = stub.Stream(self._requests(anchored, ended))
            with self._call_lock:
                self._call = call
            if self._stop_transport.is_set():
                call.cancel()
            for msg in call:
                kind = msg.WhichOneof("body")
                if kind == "ack":
                    if not anchored.is_set():
                        self.outbox.anchor(msg.ack.seq)
                        anchored.set()
                        self._connected.set()
                        self.stats.connects += 1
                        log.info("connected to the collector", collector=t.collector,
                                 stored_seq=msg.ack.seq, held=len(self.outbox))
                    else:
                        self.outbox.ack(msg.ack.seq)
                elif kind == "error":
                    self._collector_error(msg.error)
                elif kind == "enforcement":
                    self._enforcement(msg.enforcement)
            return anchored.is_set()
        finally:
            ended.set()
            with self._call_lock:
                self._call = None
            channel.close()

    def _enforcement(self, desired: pb.Enforcement) -> None:
        """Apply the collector's desired state (refused as a whole when enforcement is off)
        and report what is in force (the enforcer's ``on_change`` queues its state)."""
        if self._enforcer is None:
            log.warning("enforcement received while enforce.mode is off; nothing applied",
                        version=desired.version)
            self._send_applied(pb.AppliedState(
                mode="off", error="enforcement is off on this sensor (enforce.mode)"))
            return
        self._enforcer.apply(desired)

    def _send_applied(self, state: pb.AppliedState) -> None:
        """Queue ``state`` for the collector (sent on the current or the next stream)."""
        self._control.put(pb.SensorMessage(applied=state))

    def _collector_error(self, err: pb.Error) -> None:
        self.stats.collector_errors += 1
        if err.seq:
            entry = self.outbox.reject(err.seq)
            log.error("the collector refused a batch; it is dropped", seq=err.seq,
                      reason=err.reason, packets=entry.packets if entry else None)
        else:
            log.error("the collector reported an error", reason=err.reason)

    def _requests(self, anchored: threading.Event,
                  ended: threading.Event) -> Iterator[pb.SensorMessage]:
        yield pb.SensorMessage(hello=self._hello())
        deadline = time.monotonic() + HELLO_TIMEOUT_S
        while not anchored.wait(POLL_S):
            if ended.is_set() or self._stop_transport.is_set():
                return
            if time.monotonic() > deadline:
                log.warning("the collector did not answer Hello", timeout_s=HELLO_TIMEOUT_S)
                with self._call_lock:
                    if self._call is not None:
                        self._call.cancel()
                return
        if self._enforcer is not None:  # what is in force, for a collector that just met us
            self._send_applied(self._enforcer.state())
        sent = 0
        while not ended.is_set() and not self._stop_transport.is_set():
            while True:
                try:
                    yield self._control.get_nowait()
                except queue.Empty:
                    break
            entry = self.outbox.next_after(sent, POLL_S)
            if entry is None:
                continue
            sent = entry.seq
            yield pb.SensorMessage(batch=entry.msg)

    def _hello(self) -> pb.Hello:
        c = self.config
        hello = pb.Hello(host=self.host, version=software_version(), protocol=PROTOCOL_VERSION,
                         started_ns=self._started_ns)
        for name, addrs in sorted(_interfaces().items()):
            hello.interfaces.add(name=name, addresses=addrs)
        cap = hello.capture
        cap.interfaces.extend(c.capture.interfaces)
        cap.bpf = c.capture.bpf
        cap.snaplen = c.capture.snaplen
        cap.interval_s = c.sensor.interval_s
        cap.dissection.enabled = c.dissection.enabled
        cap.dissection.max_packets_per_s = c.dissection.max_packets_per_s
        return hello


def _next_boundary(now_ns: int, interval_ns: int) -> int:
    """The first interval boundary after ``now_ns``."""
    return (now_ns // interval_ns + 1) * interval_ns


def _packets(batch: FlowBatch) -> int:
    return int(np.asarray(batch.stats["packets"], dtype=np.uint64).sum()) if \
        nrows(batch.stats) else 0


def _interfaces() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        found = psutil.net_if_addrs()
    except OSError:
        return out
    for name, addrs in found.items():
        out[name] = [a.address.split("%", 1)[0] for a in addrs
                     if a.family in (socket.AF_INET, socket.AF_INET6)]
    return out


def _code(exc: grpc.RpcError) -> str:
    code = getattr(exc, "code", None)
    try:
        return str(code().name) if callable(code) else "UNKNOWN"
    except Exception:
        return "UNKNOWN"


def _details(exc: grpc.RpcError) -> str:
    details = getattr(exc, "details", None)
    try:
        return str(details()) if callable(details) else str(exc)
    except Exception:
        return str(exc)
