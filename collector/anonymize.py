"""Prefix-preserving address anonymisation, Crypto-PAn style (Xu, Fan, Ammar, Moon).

Two addresses that share exactly their first ``k`` bits map to two addresses that share
exactly their first ``k`` bits, so subnets stay subnets; without the key the mapping
cannot be inverted or recomputed. IPv4 addresses are anonymised in the 32-bit space (they
stay IPv4, also when stored IPv4-mapped), IPv6 addresses in the 128-bit space.

Scheme: ``HMAC-SHA256(KEY, label)`` gives 32 bytes: 16 key a pseudo-random function, 16
make the pad. For bit ``i`` of an ``n``-bit address, the PRF input is the address's first
``i`` bits followed by the pad's remaining ``128 - i`` bits; output bit ``i`` is input bit
``i`` XOR the first bit of the PRF. Crypto-PAn uses AES-128 as the PRF; the
``cryptography`` package is not a dependency here, so the PRF is HMAC-SHA256 under the
derived key (a keyed PRF is all the construction needs). The result is deterministic
across processes: never Python's ``hash()``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable

__all__ = ["PrefixAnonymizer"]

_LABEL = b"netwarden anonymize v1"
_MAPPED = b"\x00" * 10 + b"\xff\xff"
_ZERO16 = b"\x00" * 16

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrefixAnonymizer:
    """A keyed, prefix-preserving address mapping; results are cached (LRU) per address."""

    def __init__(self, key: str | bytes, *, cache_size: int = 1 << 16) -> None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if not raw:
            raise ValueError("anonymisation key is empty")
        derived = hmac.digest(raw, _LABEL, "sha256")
        self._prf_key = derived[:16]
        self._pad = int.from_bytes(derived[16:], "big")
        self._cached: Callable[[int, int], int] = functools.lru_cache(maxsize=cache_size)(
            self._compute)

    def _compute(self, value: int, bits: int) -> int:
        key = self._prf_key
        tag = bytes([bits])
        shift = 128 - bits
        aligned = value << shift  # address bits at the top of a 128-bit block
        flips = 0
        for i in range(bits):
            low = 128 - i  # number of pad bits kept
            block = (aligned >> low << low) | (self._pad & ((1 << low) - 1))
            digest = hmac.digest(key, tag + block.to_bytes(16, "big"), "sha256")
            flips = (flips << 1) | (digest[0] >> 7)
        return value ^ flips

    def anonymize_int(self, value: int, bits: int) -> int:
        """The anonymised form of an unsigned ``bits``-wide (32 or 128) address value."""
        if bits not in (32, 128):
            raise ValueError(f"address width must be 32 or 128 bits, not {bits}")
        if not 0 <= value < (1 << bits):
            raise ValueError(f"address value {value} does not fit in {bits} bits")
        return self._cached(value, bits)

    def anonymize(self, addr: IPAddress) -> IPAddress:
        """Same family out as in; an IPv4-mapped IPv6 address stays IPv4-mapped."""
        if isinstance(addr, ipaddress.IPv4Address):
            return ipaddress.IPv4Address(self.anonymize_int(int(addr), 32))
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv6Address((0xFFFF << 32) | self.anonymize_int(int(mapped), 32))
        return ipaddress.IPv6Address(self.anonymize_int(int(addr), 128))

    def anonymize_text(self, text: str) -> str:
        """``'10.1.2.3'`` → another IPv4 text; IPv6 text → compressed IPv6 text."""
        try:
            addr = ipaddress.ip_address(text.strip())
        except ValueError:
            raise ValueError(f"not an IP address: {text!r}") from None
        return str(self.anonymize(addr))

    def anonymize16(self, raw: bytes) -> bytes:
        """The store's 16-byte form (IPv4 mapped); all-zero (not IP) is left as it is."""
        if len(raw) != 16:
            raise ValueError(f"a stored address has 16 bytes, not {len(raw)}")
        if raw == _ZERO16:
            return raw
        if raw[:12] == _MAPPED:
            v4 = self.anonymize_int(int.from_bytes(raw[12:], "big"), 32)
            return _MAPPED + v4.to_bytes(4, "big")
        return self.anonymize_int(int.from_bytes(raw, "big"), 128).to_bytes(16, "big")

    def cache_info(self) -> str:
        return str(self._cached.cache_info())  # type: ignore[attr-defined]
