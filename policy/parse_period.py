"""Checking a policy's ``period``: when its quota resets, with every default filled in.

:func:`read_period` accepts a kind alone (``daily``, ``weekly``, ``monthly``) or a mapping
with ``kind`` and the keys that kind allows: ``time_zone`` (calendar kinds),
``reset_day`` (monthly), ``reset_weekday`` (weekly), ``window`` (rolling) and
``length`` (fixed).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cache
from typing import Final, Literal, cast

import yaml

from .model import PERIOD_KINDS, WEEKDAYS, Period, PeriodKind
from .nodes import Entry, Reader, suggest
from .parse_values import read_unit, shown
from .units import parse_duration

__all__ = ["read_period"]

MIN_WINDOW: Final = timedelta(minutes=1)
MAX_WINDOW: Final = timedelta(days=366)
MIN_LENGTH: Final = timedelta(seconds=10)
PERIOD_KEYS: Final = ("kind", "time_zone", "reset_day", "reset_weekday", "window", "length")
_PERIOD_ONLY: Final[dict[str, PeriodKind]] = {
    "reset_day": "monthly", "reset_weekday": "weekly", "window": "rolling",
    "length": "fixed"}
# what a rolling / fixed period must have, with an example
_NEEDS: Final[dict[str, tuple[str, str]]] = {"rolling": ("window", "30d"),
                                            "fixed": ("length", "1h")}


def read_period(r: Reader, node: yaml.Node, path: str) -> Period | None:
    """A policy's ``period``: a calendar kind alone or a mapping with ``kind``."""
    if isinstance(node, yaml.ScalarNode):
        kind = r.choice(node, path, PERIOD_KINDS)
        if kind is None:
            return None
        if kind in _NEEDS:
            key, example = _NEEDS[kind]
            r.error(node, path, f"a {kind} period needs a {key}: write "
                                f"{{kind: {kind}, {key}: {example}}}")
            return None
        return _default_period(cast(PeriodKind, kind))
    entries = r.mapping(node, path, PERIOD_KEYS, required=("kind",))
    if entries is None or "kind" not in entries:
        return None
    kind_s = r.choice(entries["kind"].value, entries["kind"].path, PERIOD_KINDS)
    if kind_s is None:
        return None
    kind = cast(PeriodKind, kind_s)
    ok = True
    for key, only in _PERIOD_ONLY.items():
        if key in entries and kind != only:
            r.error(entries[key].key, entries[key].path, f"only for {only} periods")
            ok = False
    base = _default_period(kind)
    time_zone = base.time_zone
    if "time_zone" in entries:
        e = entries["time_zone"]
        if kind in ("rolling", "fixed"):
            r.error(e.key, e.path, "a rolling window has no time zone" if kind == "rolling"
                    else "a fixed period has no time zone (epoch-aligned, absolute time)")
            ok = False
        else:
            time_zone = _time_zone(r, e.value, e.path)
            ok &= time_zone is not None
    reset_day = base.reset_day
    if kind == "monthly" and "reset_day" in entries:
        reset_day = _reset_day(r, entries["reset_day"].value, entries["reset_day"].path)
        ok &= reset_day is not None
    reset_weekday = base.reset_weekday
    if kind == "weekly" and "reset_weekday" in entries:
        e = entries["reset_weekday"]
        wd = r.choice(e.value, e.path, WEEKDAYS)
        ok &= wd is not None
        reset_weekday = WEEKDAYS.index(wd) if wd is not None else None
    window = base.window
    if kind == "rolling":
        window = _needed(r, node, path, entries, kind, _window)
        ok &= window is not None
    length = base.length
    if kind == "fixed":
        length = _needed(r, node, path, entries, kind, _length)
        ok &= length is not None
    if not ok:
        return None
    return Period(kind=kind, time_zone=time_zone, reset_day=reset_day,
                  reset_weekday=reset_weekday, window=window, length=length)


def _default_period(kind: PeriodKind) -> Period:
    if kind == "daily":
        return Period(kind="daily", reset_day=None)
    if kind == "weekly":
        return Period(kind="weekly", reset_day=None, reset_weekday=0)
    if kind == "monthly":
        return Period(kind="monthly")
    if kind == "fixed":
        return Period(kind="fixed", time_zone=None, reset_day=None)
    return Period(kind="rolling", time_zone=None, reset_day=None)


@cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _time_zone(r: Reader, node: yaml.Node, path: str) -> str | None:
    name = r.string(node, path)
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        r.error(node, path, f"unknown time zone {name!r}"
                            + suggest(name, _zone_names(), cutoff=0.8))
        return None
    return name


def _reset_day(r: Reader, node: yaml.Node, path: str) -> int | Literal["last"] | None:
    value = r.value(node, path)
    if value == "last":
        return "last"
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 28:
            return value
        if 29 <= value <= 31:
            r.error(node, path, f"day {value} does not exist in every month; "
                                "use 1-28 or 'last'")
            return None
        r.error(node, path, f"day {value} is not a day of the month; use 1-28 or 'last'")
        return None
    if value is not None:
        r.error(node, path, f"expected a day 1-28 or 'last', got {shown(node)}")
    return None


def _needed(r: Reader, node: yaml.Node, path: str, entries: Mapping[str, Entry], kind: str,
            read: Callable[[Reader, yaml.Node, str], timedelta | None]) -> timedelta | None:
    """The ``window`` of a rolling or the ``length`` of a fixed period, read by ``read``."""
    key, example = _NEEDS[kind]
    if key not in entries:
        r.error(node, path, f"a {kind} period needs a {key} (like {example})")
        return None
    return read(r, entries[key].value, entries[key].path)


def _window(r: Reader, node: yaml.Node, path: str) -> timedelta | None:
    window = read_unit(r, node, path, parse_duration)
    if window is not None and not MIN_WINDOW <= window <= MAX_WINDOW:
        r.error(node, path, "a window must be from 1m to 366d")
        return None
    return window


def _length(r: Reader, node: yaml.Node, path: str) -> timedelta | None:
    length = read_unit(r, node, path, parse_duration)
    if length is not None and (not MIN_LENGTH <= length <= MAX_WINDOW or length.microseconds):
        r.error(node, path, "a fixed period's length must be whole seconds from 10s to 366d")
        return None
    return length
