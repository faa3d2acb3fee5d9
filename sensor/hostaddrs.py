"""The host's own addresses, and a watcher that notices when they change.

Direction (in / out / local) is decided against the host's addresses, so a sensor must
follow them: DHCP renewals, SLAAC and privacy addresses, interfaces coming and going.
:class:`HostAddresses` re-reads them at most every ``every_s`` seconds (one getifaddrs
call through psutil: microseconds) and reports what changed.

psutil reads the network namespace of the calling process.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Sequence

import psutil

from netwarden.errors import InputError


def normalize(addr: str) -> str:
    """An address in canonical text form, without a zone (``fe80::1%eth0`` -> ``fe80::1``)."""
    try:
        return str(ipaddress.ip_address(addr.split("%", 1)[0]))
    except ValueError:
        raise InputError(f"not an IP address: {addr!r}") from None


def host_addresses(*, loopback: bool = True) -> tuple[str, ...]:
    """Every IPv4 and IPv6 address of every interface, sorted, without duplicates.

    ``loopback=False`` leaves out 127.0.0.0/8 and ::1.
    """
    out: set[str] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(a.address.split("%", 1)[0])
            if not loopback and ip.is_loopback:
                continue
            out.add(str(ip))
    return tuple(sorted(out, key=_sort_key))


def _sort_key(addr: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(addr)
    return ip.version, int(ip)


@dataclasses.dataclass(frozen=True)
class AddressChange:
    """The host's addresses now, and what came and went since the last reading."""

    addresses: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


class HostAddresses:
    """The host's addresses, re-read every ``every_s`` seconds by :meth:`check`.

    ``extra`` addresses (for example a NAT address the host answers on) always count as
    the host's. ``reader`` and ``clock`` are injectable for tests.
    """

    def __init__(self, *, every_s: float = 5.0, extra: Iterable[str] = (),
                 loopback: bool = True,
                 reader: Callable[[], Sequence[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self.every_s = every_s
        self._extra = frozenset(normalize(a) for a in extra)
        self._reader = reader if reader is not None else (
            lambda: host_addresses(loopback=loopback))
        self._clock = clock
        self._addresses = self._read()
        self._next = clock() + every_s

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses as of the last reading."""
        return self._addresses

    def _read(self) -> tuple[str, ...]:
        found = {normalize(a) for a in self._reader()} | self._extra
        return tuple(sorted(found, key=_sort_key))

    def check(self, *, force: bool = False) -> AddressChange | None:
        """Re-read the addresses when due (or ``force``); the change, or None if none."""
        now = self._clock()
        if not force and now < self._next:
            return None
        self._next = now + self.every_s
        new = self._read()
        if new == self._addresses:
            return None
        old = set(self._addresses)
        cur = set(new)
        self._addresses = new
        return AddressChange(
            addresses=new,
            added=tuple(a for a in new if a not in old),
            removed=tuple(sorted(old - cur, key=_sort_key)),
        )
