"""Shared readers of policy files: distinct lists, values with units, values shown."""

from __future__ import annotations

import yaml

from netwarden.policy.nodes import Reader
from netwarden.policy.parse_values import read_distinct, read_unit, shown
from netwarden.policy.units import parse_bytes


def node(text: str) -> yaml.Node:
    got = yaml.compose(text, Loader=yaml.SafeLoader)
    assert got is not None
    return got


def problems(r: Reader) -> list[str]:
    return [str(p) for p in r.problems]


def small_int(r: Reader, n: yaml.Node, path: str) -> int | None:
    value = r.value(n, path)
    if not isinstance(value, int) or value > 9:
        r.error(n, path, "not a digit")
        return None
    return value


def test_read_distinct_keeps_order_and_accepts_one_scalar() -> None:
    r = Reader("f.yaml")
    assert read_distinct(r, node("[3, 1, 2]"), "k", small_int) == (3, 1, 2)
    assert read_distinct(r, node("7"), "k", small_int) == (7,)
    assert read_distinct(r, node("[]"), "k", small_int) == ()
    assert r.problems == []


def test_read_distinct_reports_every_bad_and_repeated_item() -> None:
    r = Reader("f.yaml")
    got = read_distinct(r, node("- 1\n- 12\n- 1\n- 1\n"), "a.b", small_int,
                        lambda v: f"digit {v}")
    assert got is None
    assert problems(r) == ["f.yaml:2: a.b[1]: not a digit",
                           "f.yaml:3: a.b[2]: digit 1 is listed twice",
                           "f.yaml:4: a.b[3]: digit 1 is listed twice"]


def test_read_distinct_empty_list_when_not_allowed() -> None:
    r = Reader("f.yaml")
    assert read_distinct(r, node("x: []"), "k", small_int, empty_ok=False) is None
    assert problems(r) == ["f.yaml:1: k: expected a list, got a mapping"]
    r = Reader("f.yaml")
    assert read_distinct(r, node("[]"), "k", small_int, empty_ok=False) is None
    assert problems(r) == ["f.yaml:1: k: must not be empty"]


def test_read_distinct_tells_added_items_even_when_another_is_wrong() -> None:
    r = Reader("f.yaml")
    seen: list[tuple[int, str, int]] = []
    got = read_distinct(r, node("- 4\n- 4\n- 40\n- 5\n"), "k", small_int,
                        added=lambda v, n, p: seen.append((v, p, n.start_mark.line + 1)))
    assert got is None
    assert seen == [(4, "k[0]", 1), (5, "k[3]", 4)]


def test_read_unit_converts_or_reports_the_unit_error() -> None:
    r = Reader("f.yaml")
    assert read_unit(r, node("2 KiB"), "quota", parse_bytes) == 2048
    assert read_unit(r, node("[1]"), "quota", parse_bytes) is None
    assert read_unit(r, node("lots"), "quota", parse_bytes) is None
    assert len(r.problems) == 2
    assert problems(r)[0] == "f.yaml:1: quota: expected a single value, got a list"
    assert problems(r)[1].startswith("f.yaml:1: quota: ")


def test_shown_quotes_strings_and_describes_the_rest() -> None:
    assert shown(node("'443'")) == "'443'"
    assert shown(node("443")) == "443"
    assert shown(node("~")) == "nothing"
    assert shown(node("[1]")) == "a list"
