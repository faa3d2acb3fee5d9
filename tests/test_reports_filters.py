"""Time parsing and the WHERE fragment of report filters (pure logic)."""

from __future__ import annotations

import calendar

import pytest

from netwarden.collector.reports.filters import (
    Filters,
    TimeFormatError,
    iso_from_ns,
    parse_time,
)

S = 1_000_000_000
# 2024-03-01T10:00:00Z
T = calendar.timegm((2024, 3, 1, 10, 0, 0)) * S


def quote(value: object) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00Z", T),
        ("2024-03-01T10:00:00+00:00", T),
        ("2024-03-01T12:00:00+02:00", T),
        ("2024-03-01T10:00:00", T),  # no offset: UTC
        ("2024-03-01 10:00", T),
        ("2024-03-01", T - 10 * 3600 * S),
        ("2024-03-01T10:00:00.5Z", T + S // 2),
        ("2024-03-01T10:00:00.123456789Z", T + 123_456_789),
        ("2024-03-01T12:00:00.000000001+02:00", T + 1),
        (str(T // S), T),
        (f"{T // S}.25", T + S // 4),
        (f"{T // S}.123456789", T + 123_456_789),
        ("0", 0),
    ],
)
def test_parse_time_absolute(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("text", "back_s"),
    [("30m", 1800), ("2h", 7200), ("7d", 7 * 86400), ("1w", 7 * 86400), ("45s", 45),
     ("1.5h", 5400)],
)
def test_parse_time_relative_counts_back_from_now(text: str, back_s: int) -> None:
    assert parse_time(text, now_ns=T) == T - back_s * S


def test_parse_time_relative_defaults_to_the_current_time() -> None:
    import time

    before = time.time_ns()
    got = parse_time("1h")
    after = time.time_ns()
    assert before - 3600 * S <= got <= after - 3600 * S


@pytest.mark.parametrize("text", ["", "yesterday", "30x", "2024-13-01", "12:00:00", "-2h"])
def test_parse_time_rejects_garbage_naming_the_value(text: str) -> None:
    with pytest.raises(TimeFormatError) as exc:
        parse_time(text)
    if text:
        assert repr(text) in str(exc.value)


def test_iso_from_ns_keeps_only_needed_fraction_digits() -> None:
    assert iso_from_ns(T) == "2024-03-01T10:00:00Z"
    assert iso_from_ns(T + 500_000_000) == "2024-03-01T10:00:00.5Z"
    assert iso_from_ns(T + 123_456_789) == "2024-03-01T10:00:00.123456789Z"
    assert parse_time(iso_from_ns(T + 7)) == T + 7


def test_where_without_filters_selects_everything() -> None:
    assert Filters().where(quote) == "1"


def test_where_hosts_and_exact_range_on_start_ns_with_ts_bounds_for_the_index() -> None:
    f = Filters(since_ns=T + 250_000_000, until_ns=T + 20 * S, hosts=("a", "b'c"))
    assert f.where(quote) == (
        "host IN ('a', 'b\\'c')"
        f" AND ts >= toDateTime({T // S - 1}) AND start_ns >= {T + 250_000_000}"
        f" AND ts <= toDateTime({T // S + 20}) AND start_ns < {T + 20 * S}"
    )


def test_where_clamps_ts_bounds_at_zero() -> None:
    assert Filters(since_ns=0, until_ns=1).where(quote) == (
        "ts >= toDateTime(0) AND start_ns >= 0 AND ts <= toDateTime(1) AND start_ns < 1"
    )


def test_empty_range_is_an_error_naming_both_times() -> None:
    with pytest.raises(ValueError, match=r"since 2024-03-01T10:00:00Z is not before until"):
        Filters(since_ns=T, until_ns=T)


def test_describe_gives_iso_times_and_hosts() -> None:
    assert Filters(since_ns=T, hosts=("x",)).describe() == {
        "since": "2024-03-01T10:00:00Z", "until": None, "hosts": ["x"]}


def test_where_quotes_hosts_with_the_store_quoting_by_default() -> None:
    assert Filters(hosts=("b'c",)).where() == "host IN ('b\\'c')"


def test_globs_become_anchored_re2_patterns_beside_plain_names() -> None:
    from netwarden.collector.reports.filters import glob_regex, is_glob

    assert [is_glob(h) for h in ("web-1", "web-*", "db?", "r[12]")] == [False, True, True, True]
    assert glob_regex("web-*") == r"^web\-.*$"
    assert glob_regex("db?.lan") == r"^db.\.lan$"
    assert glob_regex("r[!0-9]x") == "^r[^0-9]x$"
    assert glob_regex("a[b") == r"^a\[b$"  # an unclosed class is a literal
    where = Filters(hosts=("a", "web-*")).where()
    assert where == r"(host IN ('a') OR match(host, '^web\\-.*$'))"
    assert Filters(hosts=("w*",)).where() == r"match(host, '^w.*$')"
