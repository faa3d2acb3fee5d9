"""Quantities written in policy files: byte counts, rates, percentages and durations.

Every parser takes what YAML gives (a string, or for byte counts a plain integer) and
returns an exact value, or raises :class:`UnitError` with a one-line message meant to be
shown after ``FILE:LINE: key.path:``. Every formatter writes a value back in a form its
parser reads to the same value, so a dumped policy loads unchanged.

* **Bytes**: ``10 GiB``, ``500MB``, ``1.5 TB``, ``123`` (plain bytes). Units are taken as
  written: decimal SI (``kB`` = 1000 B, ``KB`` too, ``MB``, ``GB``, ``TB``, ``PB``) or
  binary IEC (``KiB`` = 1024 B, ``MiB``, ``GiB``, ``TiB``, ``PiB``); ``B`` is bytes.
  The result must be a whole number of bytes.
* **Rates**: a byte or bit unit per second: ``250 kB/s``, ``1 MiB/s``, ``2 Mbit/s``,
  ``100 kbit/s`` (bit units are decimal: ``bit``, ``kbit``, ``Mbit``, ``Gbit``, ``Tbit``).
  The result is bytes per second, rounded to the nearest whole byte (at least 1).
* **Percentages**: ``80 %`` or ``80%``; decimals allowed (``99.5 %``); never a bare number,
  so ``0.8`` and ``80`` cannot be confused.
* **Durations**: whole numbers of ``w``, ``d``, ``h``, ``m`` (minutes), ``s``, largest
  first: ``30d``, ``1d 12h``, ``90m``.

Units are case-sensitive (``Mb`` is not ``MB``), except that ``KB`` means ``kB``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

__all__ = [
    "BYTE_UNITS",
    "RATE_BIT_UNITS",
    "UnitError",
    "format_bytes",
    "format_duration",
    "format_percent",
    "format_rate",
    "parse_bytes",
    "parse_duration",
    "parse_percent",
    "parse_rate",
]


class UnitError(ValueError):
    """A quantity that cannot be read; the message is one line for the user."""


BYTE_UNITS: Final[dict[str, int]] = {
    "B": 1,
    "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "PiB": 1024**5,
}
# Bits per unit; rates in bits are divided by 8 to give bytes per second.
RATE_BIT_UNITS: Final[dict[str, int]] = {
    "bit": 1, "kbit": 1000, "Mbit": 1000**2, "Gbit": 1000**3, "Tbit": 1000**4,
}
_BYTE_UNIT_LIST: Final = "B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB"
_RATE_UNIT_LIST: Final = "bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s"
_DURATION_UNITS: Final[dict[str, int]] = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

_QUANTITY = re.compile(r"^\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>[A-Za-z/%]*)\s*$")
_DURATION_PART = re.compile(r"(\d+)\s*([a-zA-Z]+)\s*")

# Output units, largest first: a value is written in the largest unit that divides it.
_BYTES_OUT: Final = ("PiB", "PB", "TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "kB")
_BITS_OUT: Final = ("Tbit", "Gbit", "Mbit", "kbit")


def _split(text: str, what: str) -> tuple[Decimal, str]:
    m = _QUANTITY.match(text)
    if m is None:
        raise UnitError(f"cannot read {text!r} as {what}")
    try:
        return Decimal(m["num"]), m["unit"]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits valid numbers only
        raise UnitError(f"cannot read {text!r} as {what}") from exc


def parse_bytes(value: object) -> int:
    """Bytes from ``"10 GiB"``, ``"500MB"``, ``"1.5 TB"``, ``"123 B"`` or an integer.

    Negative and fractional byte counts are errors; zero is allowed here (callers that
    need a positive amount check it).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnitError(f"expected a byte count like '10 GiB', got {_kind(value)}")
    if isinstance(value, int):
        number, unit = Decimal(value), "B"
    else:
        number, unit = _split(value, "a byte count like '10 GiB'")
        unit = unit or "B"
    if unit not in BYTE_UNITS:
        raise UnitError(f"unknown byte unit {unit!r} (use {_BYTE_UNIT_LIST})")
    total = number * BYTE_UNITS[unit]
    if total < 0:
        raise UnitError(f"{_show(value)} is negative")
    if total != total.to_integral_value():
        raise UnitError(f"{_show(value)} is not a whole number of bytes")
    return int(total)


def parse_rate(value: object) -> int:
    """Bytes per second from ``"2 Mbit/s"``, ``"250 kB/s"``, ``"1 MiB/s"``.

    Bit rates are divided by 8 and rounded to the nearest byte; a rate below 1 B/s is an
    error, as is a rate without ``/s``.
    """
    if not isinstance(value, str):
        raise UnitError(f"expected a rate like '2 Mbit/s', got {_kind(value)}")
    number, unit = _split(value, "a rate like '2 Mbit/s'")
    if not unit.endswith("/s"):
        raise UnitError(f"{value!r} is not a rate (use {_RATE_UNIT_LIST})")
    base = unit[:-2]
    if base in RATE_BIT_UNITS:
        per_s = number * RATE_BIT_UNITS[base] / 8
    elif base in BYTE_UNITS:
        per_s = number * BYTE_UNITS[base]
    else:
        raise UnitError(f"unknown rate unit {unit!r} (use {_RATE_UNIT_LIST})")
    rounded = int(per_s.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if rounded < 1:
        raise UnitError(f"{value!r} is less than 1 byte per second")
    return rounded


def parse_percent(value: object) -> float:
    """A percentage from ``"80 %"``, ``"80%"`` or ``"99.5 %"`` (the number, here 80.0)."""
    if not isinstance(value, str):
        raise UnitError(f"expected a percentage like '80 %', got {_kind(value)}")
    number, unit = _split(value, "a percentage like '80 %'")
    if unit != "%":
        raise UnitError(f"{value!r} is not a percentage (write it like '80 %')")
    return float(number)


def parse_duration(value: object) -> timedelta:
    """A duration from ``"30d"``, ``"1d 12h"``, ``"90m"``, ``"2w"``.

    Units ``w`` ``d`` ``h`` ``m`` ``s``, each at most once, largest first.
    """
    if not isinstance(value, str):
        raise UnitError(f"expected a duration like '30d', got {_kind(value)}")
    text = value.strip()
    pos, seconds, last = 0, 0, -1
    order = list(_DURATION_UNITS)
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise UnitError(f"cannot read {value!r} as a duration like '30d' or '1d 12h'")
        unit = m[2]
        if unit not in _DURATION_UNITS:
            raise UnitError(f"unknown duration unit {unit!r} (use w, d, h, m, s)")
        rank = order.index(unit)
        if rank <= last:
            raise UnitError(f"{value!r}: write each unit once, largest first (like '1d 12h')")
        last = rank
        seconds += int(m[1]) * _DURATION_UNITS[unit]
        pos = m.end()
    if not text:
        raise UnitError("expected a duration like '30d', got an empty string")
    return timedelta(seconds=seconds)


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest unit that writes it exactly (``10 GiB``, ``500 MB``)."""
    for unit in _BYTES_OUT:
        size = BYTE_UNITS[unit]
        if n and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def format_rate(per_s: int) -> str:
    """Bytes per second as an exact rate, in bits when whole (``2 Mbit/s``), else bytes."""
    bits = per_s * 8
    for unit in _BITS_OUT:
        size = RATE_BIT_UNITS[unit]
        if bits % size == 0:
            return f"{bits // size} {unit}/s"
    return f"{format_bytes(per_s)}/s"


def format_percent(p: float) -> str:
    """``80.0`` as ``80 %``, ``99.5`` as ``99.5 %``."""
    return f"{int(p)} %" if p == int(p) else f"{p!r} %"


def format_duration(d: timedelta) -> str:
    """A duration as ``30d``, ``1d 12h``, ``1h 30m``; whole weeks as ``2w``."""
    seconds = int(d.total_seconds())
    if seconds and seconds % _DURATION_UNITS["w"] == 0:
        return f"{seconds // _DURATION_UNITS['w']}w"
    parts: list[str] = []
    for unit, size in _DURATION_UNITS.items():
        if unit == "w":
            continue
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)
