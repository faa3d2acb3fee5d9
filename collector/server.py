"""The collector: a gRPC server that stores what sensors stream and answers reports.

Component style: :class:`CollectorServer` takes a :class:`~.config.CollectorConfig`; the
constructor does nothing; :meth:`~CollectorServer.start` opens the store (running its
migrations), starts the writer thread (:mod:`.ingest`) and the gRPC server;
:meth:`~CollectorServer.stop` ends the streams, stores what was received and closes.

``Stream`` (one per sensor): the first message must be a Hello, else the sensor gets an
Error and the stream ends. The collector answers with an Ack of the highest batch number
it has stored for the host, then reads batches: each is decoded and validated
(:func:`netwarden.sensor.wire.decode_batch`); a bad one gets an Error naming the problem
and the batch number, nothing of it is stored, and the stream goes on. Good ones go to
the writer, which acknowledges them once they are durably stored (see :mod:`.ingest` for
duplicates, ordering and the exactly-once ledger). A second stream from the same host
replaces the first. Each stream holds a thread of the pool and a reader thread, so
``collector.max_streams`` bounds the sensors served at once (more are refused with
RESOURCE_EXHAUSTED and retry).

Enforcement (data-plan policies, :mod:`.policy.push`): when ``[policy] files`` are set,
a sensor's desired ``Enforcement`` goes out on its stream right after the Hello's Ack and
after every policy evaluation that changes it; the ``AppliedState`` messages a sensor
sends are kept, audited (``enforcement_applied``) and answered with a resend when they
do not match what is desired.

``Query``: runs a named report on the collector's store (:mod:`.query`) and returns its
JSON, so reports reach an embedded chdb store that only this process can open. Errors map
to status codes: bad parameters INVALID_ARGUMENT, empty store FAILED_PRECONDITION, store
failures UNAVAILABLE.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc

from netwarden.collector.config import CollectorConfig
from netwarden.collector.ingest import Ingest
from netwarden.collector.policy.status import POLICY_STATUS
from netwarden.collector.query import has_records, result_json, run_report
from netwarden.collector.store import Store, StoreError, open_store
from netwarden.endpoint import grpc_options, split_endpoint
from netwarden.errors import InputError, NetwardenError, RuntimeFailure, UsageError
from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb
from netwarden.proto import netwarden_pb2_grpc as pb_grpc
from netwarden.sensor.wire import PROTOCOL_VERSION, WireError, decode_batch

if TYPE_CHECKING:
    from netwarden.collector.policy.engine import PolicyEngine
    from netwarden.collector.policy.push import EnforcementPush

__all__ = ["CollectorServer"]

log = get_logger("netwarden.collector")

QUERY_WORKERS = 8



def _error(reason: str, seq: int = 0) -> pb.CollectorMessage:
    return pb.CollectorMessage(error=pb.Error(reason=reason.splitlines()[0], seq=seq))


class _StreamSession:
    """One sensor stream: the messages waiting to be sent to it, and how it ended."""

    def __init__(self, host: str, peer: str) -> None:
        self.host = host
        self.peer = peer
        self.failure: str | None = None
        self._out: queue.Queue[pb.CollectorMessage | None] = queue.Queue()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def deliver(self, msg: pb.CollectorMessage) -> None:
        if not self._closed.is_set():
            self._out.put(msg)

    def fail(self, reason: str) -> None:
        if not self._closed.is_set():
            self.failure = reason
        self.close()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._out.put(None)

    def messages(self) -> Iterator[pb.CollectorMessage]:
        while True:
            msg = self._out.get()
            if msg is None:
                return
            yield msg


class _Servicer(pb_grpc.CollectorServicer):  # type: ignore[misc]
    def __init__(self, server: CollectorServer) -> None:
        self._server = server

    def Stream(self, request_iterator: Iterator[pb.SensorMessage],
               context: grpc.ServicerContext) -> Iterator[pb.CollectorMessage]:
        yield from self._server._stream(request_iterator, context)

    def Query(self, request: pb.QueryRequest,
              context: grpc.ServicerContext) -> pb.QueryReply:
        return self._server._query(request, context)


class CollectorServer:
    """The collector process's server. Not reusable after :meth:`stop`."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.ingest: Ingest | None = None
        self.policy: PolicyEngine | None = None
        self.push: EnforcementPush | None = None
        self.port = 0
        self._grpc: Any = None
        self._sessions: dict[str, _StreamSession] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` to connect to (the real port when the config asked for 0)."""
        host, _ = split_endpoint(self.config.collector.listen, allow_port_zero=True)
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def start(self) -> None:
        """Open the store, start the writer and the gRPC server.

        Raises :class:`StoreError` when the store cannot be opened and
        :class:`RuntimeFailure` when the address cannot be listened on.
        """
        c = self.config.collector
        s = self.config.store
        retention = {"raw": s.retention_days, "rollup": 0}
        store = open_store(s.target, database=s.database, batch_rows=s.batch_rows,
                           flush_seconds=s.flush_seconds, retention=retention)
        store.start()
        self.store = store
        try:
            if self.config.policy.files:
                from netwarden.collector.policy.engine import PolicyEngine
                from netwarden.collector.policy.push import EnforcementPush

                self.policy = PolicyEngine(self.config.policy, store)
                self.push = EnforcementPush(self.policy, store)
                self.push.seed()
                self.policy.on_state = self.push.after_run
                self.policy.start()
            self.ingest = Ingest(store, queue_batches=c.queue_batches, group_rows=c.group_rows,
                                 on_stored=self.policy.rollup if self.policy else None)
            self.ingest.start()
            workers = c.max_streams + QUERY_WORKERS
            server = grpc.server(
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collector-rpc"),
                options=[*grpc_options(c.max_message_bytes), ("grpc.so_reuseport", 0),
                         ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
                         ("grpc.http2.max_ping_strikes", 0)],
                maximum_concurrent_rpcs=workers,
            )
            pb_grpc.add_CollectorServicer_to_server(_Servicer(self), server)
            try:
                port = server.add_insecure_port(c.listen)
            except RuntimeError as exc:
                raise RuntimeFailure(f"collector: cannot listen on {c.listen}: {exc}") from None
            if not port:
                raise RuntimeFailure(f"collector: cannot listen on {c.listen}")
            self.port = port
            server.start()
            self._grpc = server
        except BaseException:
            if self.ingest is not None:
                self.ingest.stop()
            if self.policy is not None:
                self.policy.stop()
            store.stop()
            raise
        log.info("collector listening", address=self.address, store=store.target,
                 database=store.database)

    def stop(self, timeout_s: float | None = None) -> None:
        """End every stream, store what was received (within the timeout), close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        timeout = self.config.collector.stop_timeout_s if timeout_s is None else timeout_s
        server, self._grpc = self._grpc, None
        done = server.stop(grace=min(timeout, 1.0)) if server is not None else None
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.close()
        if done is not None:
            done.wait(timeout)
        if self.ingest is not None:
            self.ingest.stop(timeout)
        if self.policy is not None:
            self.policy.stop()
        if self.store is not None:
            self.store.stop()
        log.info("collector stopped")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until :meth:`stop` (True) or the timeout (False)."""
        return self._stopped.wait(timeout_s)

    def connected_hosts(self) -> list[str]:
        """Hosts with an open stream."""
        with self._lock:
            return sorted(self._sessions)

    # -- Stream ---------------------------------------------------------------------------

    def _stream(self, requests: Iterator[pb.SensorMessage],
                context: grpc.ServicerContext) -> Iterator[pb.CollectorMessage]:
        peer = context.peer()
        try:
            first = next(requests)
        except (StopIteration, grpc.RpcError):
            return
        problem = _hello_problem(first)
        if problem:
            log.warning("stream refused", peer=peer, reason=problem)
            yield _error(problem)
            return
        hello = first.hello
        session = _StreamSession(hello.host, peer)
        context.add_callback(session.close)
        self._register(session)
        try:
            ingest = self.ingest
            if ingest is None or self._stopped.is_set():
                context.abort(grpc.StatusCode.UNAVAILABLE, "collector is stopping")
                return
            try:
                stored = ingest.hello(session)
            except NetwardenError as exc:
                log.error("sensor hello failed", host=hello.host, error=exc.message)
                context.abort(grpc.StatusCode.UNAVAILABLE, exc.message.splitlines()[0])
                return
            log.info("sensor connected", host=hello.host, peer=peer, version=hello.version,
                     stored_seq=stored,
                     interfaces=[i.name for i in hello.interfaces])
            yield pb.CollectorMessage(ack=pb.Ack(seq=stored))
            if self.push is not None:  # the desired enforcement state, first thing
                self.push.connected(hello.host, session.deliver)
            reader = threading.Thread(target=self._read, args=(session, requests),
                                      name=f"collector-read-{hello.host}", daemon=True)
            reader.start()
            yield from session.messages()
            if session.failure is not None:
                context.abort(grpc.StatusCode.UNAVAILABLE, session.failure)
        finally:
            session.close()
            if self.push is not None:
                self.push.disconnected(hello.host, session.deliver)
            self._unregister(session)
            log.info("sensor disconnected", host=hello.host, peer=peer)

    def _register(self, session: _StreamSession) -> None:
        with self._lock:
            old = self._sessions.get(session.host)
            self._sessions[session.host] = session
        if old is not None:
            log.warning("a new stream replaces the open one of the same host",
                        host=session.host, old_peer=old.peer, new_peer=session.peer)
            old.fail(f"replaced by a new stream of host {session.host!r} from {session.peer}")

    def _unregister(self, session: _StreamSession) -> None:
        with self._lock:
            if self._sessions.get(session.host) is session:
                del self._sessions[session.host]

    def _read(self, session: _StreamSession, requests: Iterator[pb.SensorMessage]) -> None:
        ingest = self.ingest
        assert ingest is not None
        try:
            for msg in requests:
                if session.closed:
                    return
                kind = msg.WhichOneof("body")
                if kind == "batch":
                    self._receive(ingest, session, msg.batch)
                elif kind == "applied":
                    if self.push is not None:
                        self.push.applied(session.host, msg.applied)
                elif kind == "hello":
                    session.deliver(_error("Hello sent twice on one stream"))
                else:
                    session.deliver(_error("empty SensorMessage"))
            ingest.finish(session)  # the sensor is done: close once the acks are out
        except (grpc.RpcError, RuntimeFailure):
            session.close()
        except Exception as exc:  # never leave a stream without a reader silently
            log.error("stream reader failed", host=session.host, error=repr(exc))
            session.fail(f"collector error: {exc}")

    def _receive(self, ingest: Ingest, session: _StreamSession, msg: pb.FlowBatch) -> None:
        try:
            batch, seq = decode_batch(msg)
        except WireError as exc:
            log.warning("bad batch refused", host=session.host, seq=msg.seq, error=exc.message)
            session.deliver(_error(exc.message, msg.seq))
            return
        if batch.host != session.host:
            reason = (f"FlowBatch {seq}: host {batch.host!r} is not the host of this "
                      f"stream ({session.host!r})")
            log.warning("bad batch refused", host=session.host, seq=seq, error=reason)
            session.deliver(_error(reason, seq))
            return
        ingest.submit(session, batch, seq)

    # -- Query ----------------------------------------------------------------------------

    def _query(self, request: pb.QueryRequest, context: grpc.ServicerContext) -> pb.QueryReply:
        code, message, reply = self._answer(request)
        if code is not None:
            context.abort(code, message)
        assert reply is not None
        return reply

    def _answer(self, request: pb.QueryRequest
                ) -> tuple[grpc.StatusCode | None, str, pb.QueryReply | None]:
        store = self.store
        if store is None or self._stopped.is_set():
            return grpc.StatusCode.UNAVAILABLE, "collector is stopping", None
        try:
            params = json.loads(request.params_json) if request.params_json else {}
        except ValueError as exc:
            return grpc.StatusCode.INVALID_ARGUMENT, f"params_json is not JSON: {exc}", None
        if request.report == POLICY_STATUS:  # answered from the collector's own policies
            return self._policy_status()
        try:
            if not has_records(store):
                return (grpc.StatusCode.FAILED_PRECONDITION,
                        f"the collector's store ({store.target}, database {store.database}) "
                        "has no flow records yet", None)
            result = run_report(store, request.report, params)
        except UsageError as exc:
            return grpc.StatusCode.INVALID_ARGUMENT, exc.message.splitlines()[0], None
        except InputError as exc:
            return grpc.StatusCode.FAILED_PRECONDITION, exc.message.splitlines()[0], None
        except StoreError as exc:
            return grpc.StatusCode.UNAVAILABLE, exc.message.splitlines()[0], None
        except NetwardenError as exc:
            return grpc.StatusCode.INTERNAL, exc.message.splitlines()[0], None
        return None, "", pb.QueryReply(result_json=result_json(result), columns=result.columns)


    def _policy_status(self) -> tuple[grpc.StatusCode | None, str, pb.QueryReply | None]:
        engine = self.policy
        if engine is None:
            return (grpc.StatusCode.FAILED_PRECONDITION,
                    "this collector evaluates no policy (no [policy] files)", None)
        from netwarden.collector.policy.status import status_result

        try:
            state = engine.state  # the last scheduled evaluation
            result = status_result(state if state is not None else engine.compute())
            if self.push is not None:
                result.meta["enforcement"] = self.push.status()
        except StoreError as exc:
            return grpc.StatusCode.UNAVAILABLE, exc.message.splitlines()[0], None
        return None, "", pb.QueryReply(result_json=result_json(result), columns=result.columns)


def _hello_problem(msg: pb.SensorMessage) -> str | None:
    if msg.WhichOneof("body") != "hello":
        return "the first message of a stream must be Hello"
    hello = msg.hello
    if not hello.host:
        return "Hello: host is empty"
    if hello.protocol != PROTOCOL_VERSION:
        return (f"Hello: protocol version {hello.protocol} is not supported "
                f"(this collector speaks {PROTOCOL_VERSION})")
    return None

