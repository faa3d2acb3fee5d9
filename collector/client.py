"""Asking a collector for a report over gRPC (the Query RPC): ``report --collector``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import grpc

from netwarden.collector.query import result_from_json
from netwarden.collector.reports import ReportResult
from netwarden.errors import InputError, RuntimeFailure, UsageError
from netwarden.proto import netwarden_pb2 as pb
from netwarden.proto import netwarden_pb2_grpc as pb_grpc

__all__ = ["MAX_REPLY_BYTES", "query_report"]

MAX_REPLY_BYTES = 1024 * 1024 * 1024


def query_report(address: str, report: str, params: Mapping[str, Any], *,
                 timeout_s: float = 600.0) -> ReportResult:
    """Run ``report`` with ``params`` (see :mod:`.query`) on the collector at ``address``.

    Errors: the collector's INVALID_ARGUMENT is a :class:`UsageError`, FAILED_PRECONDITION
    (nothing stored yet) an :class:`InputError`, anything else (unreachable, store
    failure) a :class:`RuntimeFailure`; each names the collector.
    """
    request = pb.QueryRequest(report=report, params_json=json.dumps(dict(params)))
    options = [("grpc.max_receive_message_length", MAX_REPLY_BYTES),
               ("grpc.enable_retries", 0)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.CollectorStub(channel)
        try:
            reply = stub.Query(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise _error(address, exc) from None
    try:
        return result_from_json(reply.result_json, list(reply.columns))
    except ValueError as exc:
        raise RuntimeFailure(f"collector {address}: malformed report reply: {exc}") from None


def _error(address: str, exc: grpc.RpcError) -> Exception:
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    details = (details or "").splitlines()[0] if details else ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return UsageError(details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return InputError(f"collector {address}: {details}")
    if code == grpc.StatusCode.UNAVAILABLE and "connect" in details.lower():
        return RuntimeFailure(f"cannot reach the collector at {address}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return RuntimeFailure(f"collector {address}: no answer in time")
    name = code.name if code is not None else "UNKNOWN"
    return RuntimeFailure(f"collector {address}: {details or name} ({name})")
