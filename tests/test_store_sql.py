"""Literal rendering (pure). The engines parse these back in test_store.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
from decimal import Decimal

import pytest

from netwarden.collector.store import (
    StoreError,
    cidr_bounds,
    ip16,
    ip_in_cidr,
    ip_literal,
    ip_text,
    quote,
)
from netwarden.collector.store.server import parse_url


@pytest.mark.parametrize(("value", "sql"), [
    (None, "NULL"), (True, "1"), (False, "0"), (42, "42"), (-7, "-7"), (2.5, "2.5"),
    (float("nan"), "nan"), (float("-inf"), "-inf"), (Decimal("1.25"), "1.25"),
    ("it's", r"'it\'s'"), ("a\\b", r"'a\\b'"), ("l1\nl2\t", r"'l1\nl2\t'"), ("\x00", r"'\0'"),
    (b"\x00\xff", r"'\x00\xFF'"),
    (dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC), "toDateTime(1710072000)"),
    (dt.datetime(2024, 3, 10, 12, 0), "toDateTime(1710072000)"),
    (dt.date(2024, 3, 10), "toDate('2024-03-10')"),
    ([1, "x"], "[1, 'x']"), ((1,), "(1,)"), ((1, 2), "(1, 2)"),
    (ipaddress.ip_address("10.0.0.5"), "IPv6StringToNum('::ffff:10.0.0.5')"),
])
def test_quote(value: object, sql: str) -> None:
    assert quote(value) == sql


def test_quote_rejects_unknown_types() -> None:
    with pytest.raises(StoreError, match="cannot render set value"):
        quote({1})


def test_ip_helpers() -> None:
    assert ip_literal("10.0.0.5") == "IPv6StringToNum('::ffff:10.0.0.5')"
    assert ip_literal("2001:DB8::1") == "IPv6StringToNum('2001:db8::1')"
    assert ip16("10.0.0.5") == bytes(10) + b"\xff\xff\x0a\x00\x00\x05"
    assert ip16("::1") == bytes(15) + b"\x01"
    assert cidr_bounds("10.0.0.0/8") == ("::ffff:10.0.0.0", "::ffff:10.255.255.255")
    assert cidr_bounds("2001:db8::/32") == ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
    assert ip_in_cidr("src_ip", "192.168.1.0/24") == (
        "(src_ip >= IPv6StringToNum('::ffff:192.168.1.0') "
        "AND src_ip <= IPv6StringToNum('::ffff:192.168.1.255'))")
    assert ip_text("dst_ip") == "replaceRegexpOne(IPv6NumToString(dst_ip), '^::ffff:', '')"


@pytest.mark.parametrize(("bad", "message"), [
    ("10.0.0.1/8", "not a CIDR network: '10.0.0.1/8'"),
    ("nonsense", "not a CIDR network: 'nonsense'"),
])
def test_bad_cidr(bad: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        cidr_bounds(bad)


def test_bad_ip() -> None:
    with pytest.raises(StoreError, match=r"not an IP address: '10\.0\.0\.256'"):
        ip_literal("10.0.0.256")


def test_parse_url() -> None:
    u = parse_url("clickhouse://bob:p%40ss@db.example:9440/flows")
    assert (u.host, u.port, u.user, u.password, u.database) == (
        "db.example", 9440, "bob", "p@ss", "flows")
    assert u.display == "clickhouse://bob@db.example:9440/flows"
    d = parse_url("clickhouse://127.0.0.1/")
    assert (d.port, d.user, d.password, d.database) == (9000, "default", "", None)
    with pytest.raises(StoreError, match="no host"):
        parse_url("clickhouse:///x")
    with pytest.raises(StoreError, match="query strings"):
        parse_url("clickhouse://h/db?secure=1")
