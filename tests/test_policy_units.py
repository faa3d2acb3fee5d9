"""Byte counts, rates, percentages and durations as written in policy files."""

from __future__ import annotations

from datetime import timedelta

import pytest

from netwarden.policy.units import (
    UnitError,
    format_bytes,
    format_duration,
    format_percent,
    format_rate,
    parse_bytes,
    parse_duration,
    parse_percent,
    parse_rate,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("10 GiB", 10 * 2**30),
    ("10GiB", 10 * 2**30),
    ("500MB", 500_000_000),
    ("1.5 TB", 1_500_000_000_000),
    ("1.5 GiB", 3 * 2**29),
    ("1 kB", 1000),
    ("1 KB", 1000),
    ("1 KiB", 1024),
    ("2 PiB", 2 * 2**50),
    ("7 B", 7),
    ("123", 123),
    (123, 123),
    (0, 0),
    ("1.1 GB", 1_100_000_000),  # exact decimal arithmetic, no float rounding
])
def test_parse_bytes(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("10 Gb", "unknown byte unit 'Gb' (use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"),
    ("10 gib", "unknown byte unit 'gib' (use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"),
    ("-5 GB", "'-5 GB' is negative"),
    (-1, "-1 is negative"),
    ("0.5 B", "'0.5 B' is not a whole number of bytes"),
    ("lots", "cannot read 'lots' as a byte count like '10 GiB'"),
    ("10 G B", "cannot read '10 G B' as a byte count like '10 GiB'"),
    (1.5, "expected a byte count like '10 GiB', got a number"),
    (True, "expected a byte count like '10 GiB', got a boolean"),
    (None, "expected a byte count like '10 GiB', got nothing"),
])
def test_parse_bytes_rejects(text: object, message: str) -> None:
    with pytest.raises(UnitError) as err:
        parse_bytes(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    ("2 Mbit/s", 250_000),
    ("2Mbit/s", 250_000),
    ("250 kB/s", 250_000),
    ("1 MiB/s", 2**20),
    ("100 kbit/s", 12_500),
    ("1 Gbit/s", 125_000_000),
    ("1.5 kbit/s", 188),  # 187.5 rounds to the nearest (even) byte
    ("8 bit/s", 1),
])
def test_parse_rate(text: str, expected: int) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2 Mbit", "'2 Mbit' is not a rate (use bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s, B/s, "
               "kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)"),
    ("2 Mbps/s", "unknown rate unit 'Mbps/s' (use bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s, "
                 "B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)"),
    ("1 bit/s", "'1 bit/s' is less than 1 byte per second"),
    ("0 kB/s", "'0 kB/s' is less than 1 byte per second"),
    (2000, "expected a rate like '2 Mbit/s', got an integer"),
])
def test_parse_rate_rejects(text: object, message: str) -> None:
    with pytest.raises(UnitError) as err:
        parse_rate(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    ("80 %", 80.0), ("80%", 80.0), ("99.5 %", 99.5), ("120%", 120.0), ("0 %", 0.0),
])
def test_parse_percent(text: str, expected: float) -> None:
    assert parse_percent(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    (80, "expected a percentage like '80 %', got an integer"),
    (0.8, "expected a percentage like '80 %', got a number"),
    ("80", "'80' is not a percentage (write it like '80 %')"),
    ("80 pct", "'80 pct' is not a percentage (write it like '80 %')"),
    ("% 80", "cannot read '% 80' as a percentage like '80 %'"),
])
def test_parse_percent_rejects(text: object, message: str) -> None:
    with pytest.raises(UnitError) as err:
        parse_percent(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)),
    ("1d 12h", timedelta(days=1, hours=12)),
    ("1d12h", timedelta(days=1, hours=12)),
    ("90m", timedelta(minutes=90)),
    ("2w", timedelta(weeks=2)),
    ("1h 30s", timedelta(hours=1, seconds=30)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("30", "cannot read '30' as a duration like '30d' or '1d 12h'"),
    ("30 days", "unknown duration unit 'days' (use w, d, h, m, s)"),
    ("12h 1d", "'12h 1d': write each unit once, largest first (like '1d 12h')"),
    ("1d 1d", "'1d 1d': write each unit once, largest first (like '1d 12h')"),
    ("", "expected a duration like '30d', got an empty string"),
    (30, "expected a duration like '30d', got an integer"),
])
def test_parse_duration_rejects(text: object, message: str) -> None:
    with pytest.raises(UnitError) as err:
        parse_duration(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("n", "text"), [
    (10 * 2**30, "10 GiB"), (500_000_000, "500 MB"), (1_500_000_000_000, "1500 GB"),
    (1024, "1 KiB"), (1000, "1 kB"), (1_048_576_000, "1000 MiB"), (7, "7 B"), (0, "0 B"),
])
def test_format_bytes_is_exact(n: int, text: str) -> None:
    assert format_bytes(n) == text
    assert parse_bytes(text) == n


@pytest.mark.parametrize("n", [1, 999, 1000, 1023, 1024, 123_456_789, 3 * 2**29, 10**15,
                               2**50 + 1, 5 * 10**12 + 2**20])
def test_bytes_round_trip(n: int) -> None:
    assert parse_bytes(format_bytes(n)) == n


@pytest.mark.parametrize(("per_s", "text"), [
    (250_000, "2 Mbit/s"), (125, "1 kbit/s"), (2**20, "1 MiB/s"), (1, "1 B/s"),
    (125_000_000, "1 Gbit/s"), (187, "187 B/s"),
])
def test_format_rate_round_trips(per_s: int, text: str) -> None:
    assert format_rate(per_s) == text
    assert parse_rate(text) == per_s


@pytest.mark.parametrize("p", [80.0, 100.0, 99.5, 0.1, 1000.0, 33.333])
def test_percent_round_trip(p: float) -> None:
    assert parse_percent(format_percent(p)) == p


def test_format_percent_whole_numbers_have_no_decimals() -> None:
    assert format_percent(80.0) == "80 %"
    assert format_percent(99.5) == "99.5 %"


@pytest.mark.parametrize(("d", "text"), [
    (timedelta(days=30), "30d"), (timedelta(days=14), "2w"), (timedelta(days=1, hours=12), "1d 12h"),
    (timedelta(minutes=90), "1h 30m"), (timedelta(seconds=61), "1m 1s"),
])
def test_duration_round_trip(d: timedelta, text: str) -> None:
    assert format_duration(d) == text
    assert parse_duration(text) == d
