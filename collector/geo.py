"""Country and autonomous system of an IP address, from the data files geoip2fast ships.

Nothing is fetched: the data is the ``geoip2fast-asn.dat.gz`` (IPv4) or
``geoip2fast-asn-ipv6.dat.gz`` (IPv4 and IPv6) file inside the installed ``geoip2fast``
package (MaxMind GeoLite2 Country + ASN; its date is :attr:`GeoDatabase.source`). To update
the data, update the package; stored records keep addresses, so every report looks them up
anew.

:func:`lookup` answers a :class:`GeoInfo` for an address text (dotted quad, IPv6 text, or
IPv4-mapped IPv6, which counts as its IPv4 address):

* **private** (:data:`PRIVATE`): every address that is not global unicast (RFC 1918,
  loopback, link-local, CGNAT, ULA, documentation, multicast, reserved, unspecified...,
  by :func:`is_public`), and the special networks the data itself marks so (6to4 relay
  anycast): ``country "--"``, ``country_name "private"``, ``as_name "private"``;
* **unknown**: a public address the data has no network for: ``country "??"``,
  ``country_name "unknown"``; an address with no AS network: ``as_name "unknown"``;
* ``asn`` is always ``None``: geoip2fast 1.2.2 keeps AS *names* only (its builder
  renumbers the ASes by name), so the AS name is the AS's key.

One process-wide database (:func:`database`) is loaded on first use, and only what is
needed: the IPv4 file until an IPv6 address is asked, then the IPv4+IPv6 file (geoip2fast
keeps its tables in module globals, so a process holds one file at a time). Answers are
cached per address. Two faults of geoip2fast are worked around: it reads IPv6 addresses
below 2**32 (``::1``, ``::ffff:a.b.c.d``) as IPv4, and with the IPv6 file it credits an
IPv4 address in a gap between AS networks to the network before the gap; so non-public
addresses never reach it, mapped ones are unmapped first, and an AS answer is kept only
when its network holds the address.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import threading
import warnings
from collections.abc import Iterable
from typing import Any, Final

from netwarden.errors import RuntimeFailure

__all__ = ["PRIVATE", "PRIVATE_COUNTRY", "UNKNOWN_AS", "UNKNOWN_COUNTRY", "GeoDatabase",
           "GeoInfo", "database", "is_public", "lookup", "lookup_many"]

IPV4_FILE: Final = "geoip2fast-asn.dat.gz"
IPV6_FILE: Final = "geoip2fast-asn-ipv6.dat.gz"

PRIVATE_COUNTRY: Final = "--"
UNKNOWN_COUNTRY: Final = "??"
UNKNOWN_AS: Final = "unknown"
_PRIVATE_NAME: Final = "private"
_UNKNOWN_NAME: Final = "unknown"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class GeoInfo:
    """Where an address is: ISO 3166 alpha-2 ``country`` and its English name, the AS
    number (``None``: not in the data) and name. See the module doc for the special
    values."""

    country: str
    country_name: str
    asn: int | None
    as_name: str

    @property
    def private(self) -> bool:
        return self.country == PRIVATE_COUNTRY


PRIVATE: Final = GeoInfo(PRIVATE_COUNTRY, _PRIVATE_NAME, None, _PRIVATE_NAME)


def _parse(address: str) -> Address:
    """The address of ``address`` text; an IPv4-mapped IPv6 address is its IPv4 one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _public(ip: Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    """Whether ``address`` is a global unicast address (what has a country)."""
    return _public(_parse(address))


class GeoDatabase:
    """The geoip2fast data of this process, loaded lazily (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._geoip: Any = None
        self._file: str | None = None
        self._cache: dict[str, GeoInfo] = {}

    @property
    def loaded(self) -> str | None:
        """The data file loaded (``None`` before the first public address)."""
        return self._file

    @property
    def source(self) -> str | None:
        """What the loaded data is (``MAXMIND:GeoLite2-CountryASN-IPv4-en-20240618``)."""
        return None if self._geoip is None else str(self._geoip.source_info)

    def lookup(self, address: str) -> GeoInfo:
        """The :class:`GeoInfo` of ``address`` text; ``ValueError`` if it is no address."""
        return self.lookup_many([address])[address]

    def lookup_many(self, addresses: Iterable[str]) -> dict[str, GeoInfo]:
        """``{address: GeoInfo}`` for every address text given (loads the IPv6 file only
        when one of them is a public IPv6 address)."""
        wanted = list(dict.fromkeys(addresses))
        with self._lock:
            todo = [a for a in wanted if a not in self._cache]
            parsed = {a: _parse(a) for a in todo}
            public = {a: ip for a, ip in parsed.items() if _public(ip)}
            for a in parsed.keys() - public.keys():
                self._cache[a] = PRIVATE
            if public:
                self._load(ipv6=any(ip.version == 6 for ip in public.values()))
                for a, ip in public.items():
                    self._cache[a] = self._find(ip)
            return {a: self._cache[a] for a in wanted}

    def _load(self, ipv6: bool) -> None:
        want = IPV6_FILE if ipv6 else IPV4_FILE
        if self._file == want or (self._file == IPV6_FILE and not ipv6):
            return
        try:
            self._geoip = _geoip2fast()(geoip2fast_data_file=want)
        except Exception as exc:  # ImportError, geoip2fast's GeoIPError (any cause)
            raise RuntimeFailure(f"geo data {want}: cannot load from the geoip2fast "
                                 f"package: {exc}") from None
        self._file = want

    def _find(self, ip: Address) -> GeoInfo:
        found = self._geoip.lookup(str(ip))
        if found.is_private:
            return PRIVATE
        code = str(found.country_code)
        if len(code) == 2 and code.isalpha():
            country, name = code, str(found.country_name)
        else:
            country, name = UNKNOWN_COUNTRY, _UNKNOWN_NAME
        as_name = str(found.asn_name or "")
        if not as_name or not _holds(str(found.asn_cidr or ""), ip):
            as_name = UNKNOWN_AS
        return GeoInfo(country, name, None, as_name)


def _geoip2fast() -> Any:
    """The ``GeoIP2Fast`` class, imported without its side effects: the module sets
    ``PYTHONWARNINGS``/``PYTHONIOENCODING`` in the environment (put back here) and has
    invalid escape sequences (warnings silenced)."""
    saved = {k: os.environ.get(k) for k in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from geoip2fast import GeoIP2Fast
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return GeoIP2Fast


def _holds(cidr: str, ip: Address) -> bool:
    network = _network(cidr)
    return network is not None and ip in network


@functools.lru_cache(maxsize=65536)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


_DATABASE: Final = GeoDatabase()


def database() -> GeoDatabase:
    """The process-wide :class:`GeoDatabase`."""
    return _DATABASE


def lookup(address: str) -> GeoInfo:
    """:meth:`GeoDatabase.lookup` on the process-wide database."""
    return _DATABASE.lookup(address)


def lookup_many(addresses: Iterable[str]) -> dict[str, GeoInfo]:
    """:meth:`GeoDatabase.lookup_many` on the process-wide database."""
    return _DATABASE.lookup_many(addresses)
