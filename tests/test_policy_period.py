"""Quota periods: start and end for an instant, across DST changes and month ends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from netwarden.policy.model import Period
from netwarden.policy.period import local_midnight, next_reset, period_bounds, period_start

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def at(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone))  # type: ignore[arg-type, misc]


def length(bounds: tuple[datetime, datetime]) -> timedelta:
    start, end = bounds
    return end.astimezone(UTC) - start.astimezone(UTC)


def monthly(day: int | Literal["last"] = 1, tz: str = "UTC") -> Period:
    return Period(kind="monthly", time_zone=tz, reset_day=day)


def daily(tz: str) -> Period:
    return Period(kind="daily", time_zone=tz, reset_day=None)


def weekly(weekday: int, tz: str) -> Period:
    return Period(kind="weekly", time_zone=tz, reset_day=None, reset_weekday=weekday)


def test_daily_in_utc() -> None:
    start, end = period_bounds(daily("UTC"), at("UTC", 2024, 5, 17, 13, 45))
    assert (start, end) == (at("UTC", 2024, 5, 17), at("UTC", 2024, 5, 18))


@pytest.mark.parametrize(("day", "hours"), [
    (date(2024, 3, 31), 23),  # clocks go forward at 02:00
    (date(2024, 10, 27), 25),  # and back at 03:00
    (date(2024, 7, 1), 24),
])
def test_daily_period_length_follows_dst(day: date, hours: int) -> None:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=BERLIN)
    start, end = period_bounds(daily("Europe/Berlin"), noon)
    assert start == datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    assert (start.hour, end.hour) == (0, 0)
    assert length((start, end)) == timedelta(hours=hours)


def test_daily_periods_tile_a_year_at_local_midnight() -> None:
    period = daily("Europe/Berlin")
    t = at("Europe/Berlin", 2024, 1, 1, 0, 0)
    lengths: list[int] = []
    for _ in range(366):
        start, end = period_bounds(period, t)
        assert start == t and (end.hour, end.minute) == (0, 0)
        assert next_reset(period, t) == end
        assert period_bounds(period, end - timedelta(microseconds=1)) == (start, end)
        lengths.append(int(length((start, end)).total_seconds() // 3600))
        t = end
    assert t == at("Europe/Berlin", 2025, 1, 1)
    assert sorted(set(lengths)) == [23, 24, 25]
    assert (lengths.count(23), lengths.count(25)) == (1, 1)


def test_monthly_across_the_spring_change() -> None:
    start, end = period_bounds(monthly(1, "Europe/Berlin"), at("Europe/Berlin", 2024, 3, 15, 9))
    assert start == at("Europe/Berlin", 2024, 3, 1)
    assert end == at("Europe/Berlin", 2024, 4, 1)
    assert start.utcoffset() == HOUR and end.utcoffset() == 2 * HOUR
    assert length((start, end)) == 31 * DAY - HOUR


def test_an_instant_in_another_zone_is_placed_by_local_time() -> None:
    # 22:30 UTC on 31 March is 00:30 on 1 April in Berlin: the April period.
    start, end = period_bounds(monthly(1, "Europe/Berlin"), at("UTC", 2024, 3, 31, 22, 30))
    assert start == at("Europe/Berlin", 2024, 4, 1)
    assert end == at("Europe/Berlin", 2024, 5, 1)
    assert start.tzinfo == BERLIN


def test_the_reset_instant_starts_the_new_period() -> None:
    reset = at("Europe/Berlin", 2024, 4, 1)
    assert period_start(monthly(1, "Europe/Berlin"), reset) == reset
    before = reset - timedelta(microseconds=1)
    assert period_bounds(monthly(1, "Europe/Berlin"), before) == (
        at("Europe/Berlin", 2024, 3, 1), reset)


def test_monthly_reset_day_before_it_falls_in_the_previous_month_across_a_year() -> None:
    start, end = period_bounds(monthly(15), at("UTC", 2024, 1, 10))
    assert (start, end) == (at("UTC", 2023, 12, 15), at("UTC", 2024, 1, 15))


@pytest.mark.parametrize(("instant", "start", "end"), [
    ((2024, 2, 10), (2024, 1, 31), (2024, 2, 29)),  # leap year
    ((2024, 2, 29, 12), (2024, 2, 29), (2024, 3, 31)),
    ((2023, 2, 28, 1), (2023, 2, 28), (2023, 3, 31)),
    ((2023, 4, 30, 23, 59), (2023, 4, 30), (2023, 5, 31)),
    ((2023, 12, 31, 5), (2023, 12, 31), (2024, 1, 31)),
])
def test_monthly_last_day(instant: tuple[int, ...], start: tuple[int, ...],
                          end: tuple[int, ...]) -> None:
    assert period_bounds(monthly("last"), at("UTC", *instant)) == (
        at("UTC", *start), at("UTC", *end))


def test_weekly_reset_on_monday_across_dst() -> None:
    sunday = at("Europe/Berlin", 2024, 3, 31, 12)
    start, end = period_bounds(weekly(0, "Europe/Berlin"), sunday)
    assert start == at("Europe/Berlin", 2024, 3, 25)
    assert end == at("Europe/Berlin", 2024, 4, 1)
    assert start.weekday() == end.weekday() == 0
    assert length((start, end)) == 7 * DAY - HOUR


def test_weekly_reset_day_itself_starts_the_week() -> None:
    sunday_noon = at("America/New_York", 2024, 11, 3, 12)
    start, end = period_bounds(weekly(6, "America/New_York"), sunday_noon)
    assert start == at("America/New_York", 2024, 11, 3)
    assert end == at("America/New_York", 2024, 11, 10)
    assert length((start, end)) == 7 * DAY + HOUR


def test_midnight_in_a_gap_starts_the_day_at_the_change() -> None:
    # Havana springs forward at 00:00 (to 01:00) on 10 March 2024: the day starts at 01:00.
    havana = ZoneInfo("America/Havana")
    first = local_midnight(date(2024, 3, 10), havana)
    assert first.astimezone(UTC) == datetime(2024, 3, 10, 5, tzinfo=UTC)
    assert (first.hour, first.minute) == (1, 0)
    bounds = period_bounds(daily("America/Havana"), at("America/Havana", 2024, 3, 10, 12))
    assert bounds[0] == first
    assert length(bounds) == 23 * HOUR


def test_a_skipped_day_is_empty_and_periods_still_tile() -> None:
    # Samoa skipped 30 December 2011: 29 December 23:59:59 -10 was followed by 31 December.
    apia = ZoneInfo("Pacific/Apia")
    skipped = local_midnight(date(2011, 12, 30), apia)
    assert skipped == local_midnight(date(2011, 12, 31), apia)
    assert skipped.astimezone(UTC) == datetime(2011, 12, 30, 10, tzinfo=UTC)
    start, end = period_bounds(daily("Pacific/Apia"), at("Pacific/Apia", 2011, 12, 29, 12))
    assert end == skipped and length((start, end)) == DAY
    start, end = period_bounds(daily("Pacific/Apia"), skipped)
    assert start == skipped and end == local_midnight(date(2012, 1, 1), apia)
    # A month across the skipped day is a day short.
    bounds = period_bounds(monthly(28, "Pacific/Apia"), at("Pacific/Apia", 2011, 12, 29, 12))
    assert bounds == (at("Pacific/Apia", 2011, 12, 28), at("Pacific/Apia", 2012, 1, 28))
    assert length(bounds) == 30 * DAY


def test_midnight_twice_takes_the_first() -> None:
    # Santiago falls back at 24:00 on 6 April 2024 (to 23:00): that day lasts 25 hours.
    bounds = period_bounds(daily("America/Santiago"), at("America/Santiago", 2024, 4, 6, 12))
    assert bounds[0].astimezone(UTC) == datetime(2024, 4, 6, 3, tzinfo=UTC)
    assert bounds[1].astimezone(UTC) == datetime(2024, 4, 7, 4, tzinfo=UTC)
    assert length(bounds) == 25 * HOUR


def test_rolling_window_is_absolute_time_up_to_now() -> None:
    period = Period(kind="rolling", time_zone=None, reset_day=None, window=timedelta(days=7))
    now = at("Europe/Berlin", 2024, 4, 2, 12)  # a DST change lies inside the window
    start, end = period_bounds(period, now)
    assert end == now and end.tzinfo == UTC
    assert end - start == timedelta(days=7)
    assert start == datetime(2024, 3, 26, 10, tzinfo=UTC)
    assert next_reset(period, now) is None


def test_fixed_windows_are_aligned_to_the_epoch_and_tile() -> None:
    period = Period(kind="fixed", time_zone=None, reset_day=None,
                    length=timedelta(seconds=30))
    now = datetime(2024, 3, 31, 1, 0, 47, 500_000, tzinfo=UTC)  # Berlin changes at 01:00 UTC
    start, end = period_bounds(period, now)
    assert (start, end) == (datetime(2024, 3, 31, 1, 0, 30, tzinfo=UTC),
                            datetime(2024, 3, 31, 1, 1, tzinfo=UTC))
    assert int(start.timestamp()) % 30 == 0 and start.tzinfo == UTC
    assert next_reset(period, now) == end
    assert period_bounds(period, end) == (end, end + timedelta(seconds=30))  # reset instant
    odd = Period(kind="fixed", time_zone=None, reset_day=None, length=timedelta(seconds=45))
    t = datetime(2024, 1, 1, tzinfo=UTC)
    seen = period_bounds(odd, t)
    for _ in range(200):  # back to back, each 45 s, whatever the instant in a window
        t += timedelta(seconds=13)
        got = period_bounds(odd, t)
        assert got[1] - got[0] == timedelta(seconds=45)
        assert got[0] <= t < got[1] and int(got[0].timestamp()) % 45 == 0
        assert got == seen or got[0] == seen[1]
        seen = got
    assert period_bounds(period, at("Asia/Tokyo", 2024, 1, 1, 9, 0, 10))[0] == \
        datetime(2024, 1, 1, tzinfo=UTC)  # absolute time: the instant's zone is irrelevant


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        period_bounds(daily("UTC"), datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        next_reset(Period(kind="rolling", time_zone=None, reset_day=None,
                          window=timedelta(days=1)), datetime(2024, 1, 1))


def test_monthly_last_day_periods_tile_in_a_dst_zone() -> None:
    period = monthly("last", "Europe/London")
    t = at("Europe/London", 2023, 1, 31)
    for _ in range(30):
        start, end = period_bounds(period, t)
        assert start == t
        local = end.astimezone(ZoneInfo("Europe/London"))
        assert (local.hour, local.minute) == (0, 0)
        assert (local + DAY).day == 1  # the last day of its month
        assert next_reset(period, end - timedelta(seconds=1)) == end
        t = end
    assert t == at("Europe/London", 2025, 7, 31)
