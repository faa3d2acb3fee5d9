"""Rendering SQL literals in Python (18.16 has no server-side query parameters).

Every value that goes into a query text passes through :func:`quote`. Addresses are
compared as 16-byte strings, IPv4 mapped into IPv6 (``::ffff:a.b.c.d``), which is the
same on ``FixedString(16)`` (legacy) and ``IPv6`` (modern) columns.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Sequence
from decimal import Decimal

from .errors import StoreError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SqlValue = (
    None | bool | int | float | str | bytes | Decimal | dt.datetime | dt.date | IPAddress
    | Sequence["SqlValue"]
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ident(name: str) -> str:
    """A backquoted identifier (column, table or database name)."""
    if not name or "\x00" in name:
        raise StoreError(f"invalid SQL identifier {name!r}")
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def is_plain_ident(name: str) -> bool:
    """True for names that need no quoting: letters, digits, underscore."""
    return bool(_IDENT.match(name))


def _quote_str(s: str) -> str:
    out = s.replace("\\", "\\\\").replace("'", "\\'")
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace("\x00", "\\0")
    return "'" + out + "'"


def _quote_bytes(b: bytes) -> str:
    return "'" + "".join(f"\\x{c:02X}" for c in b) + "'"


def quote(value: SqlValue) -> str:
    """Render ``value`` as a ClickHouse literal that parses the same on 18.16 and modern.

    ``None`` → ``NULL``; bool → ``1``/``0``; str → escaped ``'…'``; bytes → ``'\\xNN…'``;
    ``datetime`` → ``toDateTime(epoch)`` (naive values are taken as UTC); ``date`` →
    ``toDate('YYYY-MM-DD')``; an IP address → its 16-byte v4-mapped form
    (:func:`ip_literal`); list → array ``[…]``; tuple → tuple ``(…)``.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return _quote_str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _quote_bytes(bytes(value))
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return f"toDateTime({int(when.timestamp())})"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip_literal(value)
    if isinstance(value, tuple):
        inner = ", ".join(quote(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(quote(v) for v in value) + "]"
    raise StoreError(f"cannot render {type(value).__name__} value {value!r} as a SQL literal")


def parse_ip(addr: str | IPAddress) -> IPAddress:
    """An address object, or StoreError naming the bad text."""
    if isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return addr
    try:
        return ipaddress.ip_address(addr.strip())
    except ValueError:
        raise StoreError(f"not an IP address: {addr!r}") from None


def mapped_text(addr: str | IPAddress) -> str:
    """The store's text form of an address: IPv6, IPv4 mapped (``::ffff:10.0.0.5``)."""
    ip = parse_ip(addr)
    if isinstance(ip, ipaddress.IPv4Address):
        return f"::ffff:{ip}"
    return str(ip)


def ip16(addr: str | IPAddress) -> bytes:
    """The 16 bytes the store keeps for ``addr`` (IPv4 mapped into IPv6)."""
    ip = parse_ip(addr)
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def ip_literal(addr: str | IPAddress) -> str:
    """SQL for one address: ``IPv6StringToNum('::ffff:10.0.0.5')``; compare with ``=``."""
    return f"IPv6StringToNum('{mapped_text(addr)}')"


def cidr_bounds(cidr: str) -> tuple[str, str]:
    """The first and last address of a network, in the store's text form.

    ``10.0.0.0/8`` → ``('::ffff:10.0.0.0', '::ffff:10.255.255.255')``. Host bits set in
    the text (``10.1.2.3/8``) are an error, so a typo does not widen silently.
    """
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as e:
        raise StoreError(f"not a CIDR network: {cidr!r} ({e})") from None
    return mapped_text(net.network_address), mapped_text(net.broadcast_address)


def ip_in_cidr(column: str, cidr: str) -> str:
    """A condition true when ``column`` (a 16-byte address column) lies in ``cidr``.

    Rendered as a range, which works on ``FixedString(16)`` and ``IPv6`` alike
    (``IPv6CIDRToRange`` does not exist on 18.16).
    """
    lo, hi = cidr_bounds(cidr)
    col = column if is_plain_ident(column) else ident(column)
    return f"({col} >= IPv6StringToNum('{lo}') AND {col} <= IPv6StringToNum('{hi}'))"


def ip_text(column: str) -> str:
    """SQL turning a 16-byte address column into text, IPv4 without the ``::ffff:`` prefix."""
    col = column if is_plain_ident(column) else ident(column)
    return f"replaceRegexpOne(IPv6NumToString({col}), '^::ffff:', '')"
