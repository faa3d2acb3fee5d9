"""Just enough DNS (RFC 1035) for A/AAAA questions and answers: the live demo's name
server and client, and the live tests' (real DNS packets on real interfaces, so the
sensor's app labelling sees what a resolver would send)."""

from __future__ import annotations

import random
import socket
import struct

__all__ = ["DNS_PORT", "QTYPE_A", "QTYPE_AAAA", "QTYPE_NAMES", "dns_addresses", "dns_answer",
           "dns_query", "dns_resolve"]

DNS_PORT = 53


QTYPE_A = 1
QTYPE_AAAA = 28
QTYPE_NAMES = {QTYPE_A: "A", QTYPE_AAAA: "AAAA"}


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def _decode_name(msg: bytes, pos: int) -> tuple[str, int]:
    """The (uncompressed) name at ``pos`` and the position after it."""
    labels: list[str] = []
    while True:
        n = msg[pos]
        if n == 0:
            return ".".join(labels), pos + 1
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii"))
        pos += 1 + n


def dns_query(ident: int, name: str, qtype: int) -> bytes:
    """A recursion-desired query for ``name``/``qtype``."""
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _encode_name(name) + \
        struct.pack("!HH", qtype, 1)


def dns_answer(query: bytes, zone: dict[str, dict[int, list[str]]]) -> bytes | None:
    """The authoritative answer to ``query`` from ``zone``, None for garbage."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    try:
        name, pos = _decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[pos:pos + 4])
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None
    question = query[12:pos + 4]
    records = zone.get(name.lower())
    rcode = 0 if records is not None else 3  # NXDOMAIN
    answers = b""
    count = 0
    family = socket.AF_INET if qtype == QTYPE_A else socket.AF_INET6
    for addr in (records or {}).get(qtype, []):
        rdata = socket.inet_pton(family, addr)
        answers += struct.pack("!HHHIH", 0xC00C, qtype, qclass, 60, len(rdata)) + rdata
        count += 1
    head = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, count, 0, 0)
    return head + question + answers


def dns_resolve(server: str, name: str, qtype: int, timeout_s: float = 2.0) -> list[str]:
    """Ask ``server`` (port 53) for ``name``; the addresses (empty for NXDOMAIN)."""
    ident = random.randrange(1 << 16)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        for _ in range(3):
            s.sendto(dns_query(ident, name, qtype), (server, DNS_PORT))
            try:
                reply = s.recv(4096)
            except TimeoutError:
                continue
            if struct.unpack("!H", reply[:2])[0] == ident:
                break
        else:
            raise RuntimeError(f"DNS server {server} did not answer")
    return dns_addresses(reply)


def dns_addresses(reply: bytes) -> list[str]:
    """The A/AAAA addresses of a reply to one question (answers named by a pointer)."""
    count = struct.unpack("!H", reply[6:8])[0]
    _, pos = _decode_name(reply, 12)
    pos += 4
    addrs = []
    for _ in range(count):
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", reply[pos + 2:pos + 12])
        rdata = reply[pos + 12:pos + 12 + rdlen]
        pos += 12 + rdlen
        if rtype in (QTYPE_A, QTYPE_AAAA):
            family = socket.AF_INET if rtype == QTYPE_A else socket.AF_INET6
            addrs.append(socket.inet_ntop(family, rdata))
    return addrs
