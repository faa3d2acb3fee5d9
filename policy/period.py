"""When a quota period starts and ends: pure functions of a :class:`Period` and an instant.

A period is the half-open interval ``[start, end)``. Calendar periods (daily, weekly,
monthly) reset at local midnight in the period's time zone, so their length in seconds
follows the zone's rules: a day is 23 or 25 hours long across a daylight-saving change,
and a month of resets at local midnight stays at local midnight on both sides of it.

Local midnight that does not exist (a zone that springs forward at 00:00, such as
America/Havana or, in 2011, Pacific/Apia skipping a whole day) is taken as the first
instant of that local day: the moment of the change. Midnight that happens twice
(falling back at 00:00) is taken as the first of the two.

A rolling window has no reset: the period at an instant ``t`` is ``[t - window, t)``,
in absolute time, and :func:`next_reset` is ``None``.

A fixed period is back-to-back windows of ``length`` seconds aligned to the Unix epoch,
in absolute time: the period at ``t`` starts at ``t - t % length`` (epoch seconds).

Every function takes an aware :class:`datetime` (a naive one is a :class:`ValueError`)
and returns aware datetimes in the period's zone (UTC for rolling and fixed periods).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from .model import Period

__all__ = ["local_midnight", "next_reset", "period_bounds", "period_start", "zone"]


@cache
def zone(name: str) -> ZoneInfo:
    """The :class:`ZoneInfo` called ``name`` (cached)."""
    return ZoneInfo(name)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of local date ``day`` in ``tz`` (see the module doc for gaps)."""
    naive = datetime.combine(day, time(0))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == naive:
        return first.astimezone(tz)
    # Midnight falls in a gap: find the change, the first instant whose wall time is at or
    # after midnight. It lies in (later offset's reading, earlier offset's reading].
    other = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    if _wall(datetime.fromtimestamp(hi_s, UTC), tz) < naive:
        hi_s += 1
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), tz) >= naive:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC).astimezone(tz)


def period_bounds(period: Period, at: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of the period that contains instant ``at``."""
    _need_aware(at)
    if period.kind == "rolling":
        if period.window is None:
            raise ValueError("a rolling period needs a window")
        now = at.astimezone(UTC)
        return now - period.window, now
    if period.kind == "fixed":
        if period.length is None:
            raise ValueError("a fixed period needs a length")
        length = int(period.length.total_seconds())
        epoch_s = int(at.timestamp() // 1)
        first_s = epoch_s - epoch_s % length
        return (datetime.fromtimestamp(first_s, UTC),
                datetime.fromtimestamp(first_s + length, UTC))
    tz = zone(period.time_zone or "UTC")
    today = at.astimezone(tz).date()
    if period.kind == "daily":
        first, after = today, today + timedelta(days=1)
    elif period.kind == "weekly":
        weekday = period.reset_weekday or 0
        first = today - timedelta(days=(today.weekday() - weekday) % 7)
        after = first + timedelta(days=7)
    else:
        first = _monthly_reset(period, today.year, today.month)
        if today < first:
            first = _monthly_reset(period, *_add_months(today.year, today.month, -1))
        after = _monthly_reset(period, *_add_months(first.year, first.month, 1))
    start, end = local_midnight(first, tz), local_midnight(after, tz)
    # A local date in a gap can start later than ``at`` reads (Pacific/Apia, 2011-12-30):
    # the period containing ``at`` is then the one before.
    if at < start:  # pragma: no cover - only for a date that does not exist at all
        return period_bounds(period, start - timedelta(microseconds=1))
    return start, end


def period_start(period: Period, at: datetime) -> datetime:
    """When the period containing ``at`` started."""
    return period_bounds(period, at)[0]


def next_reset(period: Period, at: datetime) -> datetime | None:
    """The first reset after ``at`` (the current period's end); ``None`` when rolling."""
    if period.kind == "rolling":
        _need_aware(at)
        return None
    return period_bounds(period, at)[1]


def _monthly_reset(period: Period, year: int, month: int) -> date:
    last = calendar.monthrange(year, month)[1]
    day = last if period.reset_day == "last" else min(int(period.reset_day or 1), last)
    return date(year, month, day)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _need_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the instant must carry a time zone (an aware datetime)")
