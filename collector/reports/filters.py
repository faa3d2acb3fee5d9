"""What a report reads: a time range and a set of hosts, rendered as one SQL WHERE fragment.

A record belongs to the selection when its *interval start* lies in ``[since, until)`` and
its host is one of ``hosts`` (every host when empty). Times are integer nanoseconds since
the epoch, so a range is exact to the nanosecond whatever the interval length.

``--since``/``--until`` accept ISO 8601 (``2024-03-01T10:00:00Z``; a time without an offset is
UTC), epoch seconds (``1709287200``, ``1709287200.5``) or a duration back from now (``30m``,
``2h``, ``7d``; units ``s m h d w``). :func:`parse_time` turns any of them into nanoseconds.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..store.sql import quote as sql_quote

NS_PER_S = 1_000_000_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_EPOCH = re.compile(r"^-?\d+(?:\.\d+)?$")
_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2})[.,](\d+)")


class TimeFormatError(ValueError):
    """A --since/--until value that is none of ISO 8601, epoch seconds or a duration."""


def parse_time(text: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for an ISO 8601 time, epoch seconds or ``30m``-style duration.

    A duration means ``now`` minus that much (``now_ns`` defaults to the current time).
    Raises :class:`TimeFormatError` with a one-line message naming the value.
    """
    value = text.strip()
    if not value:
        raise TimeFormatError("empty time value")
    rel = _RELATIVE.match(value)
    if rel:
        now = time.time_ns() if now_ns is None else now_ns
        seconds = Decimal(rel.group(1)) * _UNITS[rel.group(2)]
        return now - int(seconds * NS_PER_S)
    if _EPOCH.match(value):
        try:
            return int(Decimal(value) * NS_PER_S)
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise TimeFormatError(f"not a number of seconds: {text!r}") from exc
    return _parse_iso(value, text)


def _parse_iso(value: str, original: str) -> int:
    # datetime keeps microseconds only: cut the fraction out and add it back in ns.
    extra_ns = 0
    frac = _FRACTION.search(value)
    if frac:
        digits = frac.group(2)
        extra_ns = int((digits + "000000000")[:9])
        value = value[: frac.start(2) - 1] + value[frac.end(2):]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TimeFormatError(
            f"not an ISO 8601 time, epoch seconds or duration like 30m/2h/7d: {original!r}"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    whole = parsed.replace(microsecond=0)
    return int(whole.timestamp()) * NS_PER_S + extra_ns


def iso_from_ns(ns: int) -> str:
    """RFC 3339 UTC text of an epoch-ns instant, with only the fraction digits it needs."""
    seconds, frac = divmod(ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


Quote = Callable[[Any], str]


GLOB_CHARS = frozenset("*?[")


def is_glob(name: str) -> bool:
    """A host pattern (``web-*``, ``db?``, ``rack[12]-*``) rather than a name."""
    return any(c in GLOB_CHARS for c in name)


def glob_regex(pattern: str) -> str:
    """A shell glob as an anchored RE2 regular expression (ClickHouse ``match()``):
    ``*`` any run, ``?`` one character, ``[...]`` a class (``[!...]`` negated)."""
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + 1
            j += pattern[j:j + 1] == "!"
            j += pattern[j:j + 1] == "]"
            end = pattern.find("]", j)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                neg = body.startswith("!")
                body = body[1:] if neg else body
                out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


@dataclasses.dataclass(frozen=True)
class Filters:
    """Time range ``[since_ns, until_ns)`` on interval starts, and hosts (empty = all):
    names or shell globs (``web-*``)."""

    since_ns: int | None = None
    until_ns: int | None = None
    hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.since_ns is not None and self.until_ns is not None
                and self.since_ns >= self.until_ns):
            raise ValueError(
                f"empty time range: since {iso_from_ns(self.since_ns)} is not before "
                f"until {iso_from_ns(self.until_ns)}")

    def where(self, quote: Quote = sql_quote) -> str:
        """SQL condition over ``host``, ``ts`` and ``start_ns`` (``1`` when nothing is filtered).

        ``quote`` renders the host names (default: the store's literal quoting).
        The exact test is on ``start_ns``; the ``ts`` bounds (one second wider than needed)
        only let the primary key ``(host, ts)`` skip data.
        """
        parts: list[str] = []
        if self.hosts:
            names = [h for h in self.hosts if not is_glob(h)]
            either = ([f"host IN ({', '.join(quote(h) for h in names)})"] if names else []) \
                + [f"match(host, {quote(glob_regex(h))})" for h in self.hosts if is_glob(h)]
            parts.append(either[0] if len(either) == 1 else "(" + " OR ".join(either) + ")")
        if self.since_ns is not None:
            low_s = max(0, self.since_ns // NS_PER_S - 1)
            parts.append(f"ts >= toDateTime({low_s})")
            parts.append(f"start_ns >= {int(self.since_ns)}")
        if self.until_ns is not None:
            high_s = max(0, (self.until_ns - 1) // NS_PER_S + 1)
            parts.append(f"ts <= toDateTime({high_s})")
            parts.append(f"start_ns < {int(self.until_ns)}")
        return " AND ".join(parts) if parts else "1"

    def describe(self) -> dict[str, Any]:
        """The filters as JSON-ready values (ISO times, host list)."""
        return {
            "since": None if self.since_ns is None else iso_from_ns(self.since_ns),
            "until": None if self.until_ns is None else iso_from_ns(self.until_ns),
            "hosts": list(self.hosts),
        }
