"""``HOST:PORT`` endpoints of the collector's gRPC server, as configs and options give them."""

from __future__ import annotations

import re
from typing import Final

from pydantic_core import PydanticCustomError

__all__ = ["DEFAULT_COLLECTOR", "check_endpoint", "check_listen", "grpc_options",
           "split_endpoint"]

DEFAULT_COLLECTOR: Final = "127.0.0.1:50051"

_ENDPOINT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$")


def split_endpoint(text: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """``host:port`` or ``[v6addr]:port`` as ``(host, port)``; ValueError when malformed."""
    m = _ENDPOINT.match(text)
    if not m:
        raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 address goes in brackets: "
                         "[::1]:50051)")
    port = int(m["port"])
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range")
    return m["v6"] or m["host"], port


def check_endpoint(text: str) -> str:
    """``text`` when it is a HOST:PORT with a port 1..65535 (pydantic validator)."""
    return _validated(text, allow_port_zero=False)


def check_listen(text: str) -> str:
    """``text`` when it is a HOST:PORT to listen on (port 0: any free port)."""
    return _validated(text, allow_port_zero=True)


def _validated(text: str, *, allow_port_zero: bool) -> str:
    try:
        split_endpoint(text, allow_port_zero=allow_port_zero)
    except ValueError as exc:
        raise PydanticCustomError("endpoint", "{problem}", {"problem": str(exc)}) from None
    return text


def grpc_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """gRPC options shared by the collector's server and its clients: message size
    limits, and keepalives that find a dead peer in about 40 s."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
