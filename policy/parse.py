"""Checking one policy file's node tree and building its groups and policies.

:func:`parse_document` reads the top-level ``groups`` and ``policies`` mappings of one
file with a :class:`~netwarden.policy.nodes.Reader`, records every problem it finds, and
returns the groups and policies that are valid, with every default filled in. Checks
that need every file (names defined twice, references to groups) are made by
:mod:`netwarden.policy.load`; this module returns what they need (:class:`GroupRef`).

The format itself is documented in the README ("Data-plan policies").
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Final, Literal, cast

import yaml

from .model import (
    ACTIONS,
    BLOCK_MODES,
    DIRECTIONS,
    PERIOD_KINDS,
    PROTOCOLS,
    SCOPES,
    WEEKDAYS,
    Action,
    BlockMode,
    Direction,
    Exemptions,
    HostGroup,
    Match,
    Network,
    Period,
    PeriodKind,
    Policy,
    PortRange,
    Protocol,
    Scope,
    Selector,
    Tier,
)
from .nodes import Problem, Reader, describe
from .units import (
    UnitError,
    format_percent,
    format_rate,
    parse_bytes,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = ["GroupRef", "ParsedFile", "parse_document"]

NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HOST_RE: Final = re.compile(r"^[A-Za-z0-9_.*?\[\]!:-]+$")
LABEL_KEY_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")
APP_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MIN_WINDOW: Final = timedelta(minutes=1)
MAX_WINDOW: Final = timedelta(days=366)
MIN_LENGTH: Final = timedelta(seconds=10)
MAX_TIER_PERCENT: Final = 1000.0

TOP_KEYS: Final = ("groups", "policies")
GROUP_KEYS: Final = ("hosts", "labels", "description")
POLICY_KEYS: Final = (
    "description", "who", "what", "quota", "scope", "period", "tiers", "exempt")
WHO_KEYS: Final = ("fleet", "hosts", "labels", "groups")
MATCH_KEYS: Final = ("direction", "dst", "src", "remote", "ports", "protocols", "apps")
PERIOD_KEYS: Final = ("kind", "time_zone", "reset_day", "reset_weekday", "window", "length")
TIER_KEYS: Final = ("at", "action", "rate", "mode")
EXEMPT_KEYS: Final = ("networks", "ports")
_PERIOD_ONLY: Final[dict[str, PeriodKind]] = {
    "reset_day": "monthly", "reset_weekday": "weekly", "window": "rolling",
    "length": "fixed"}


@dataclass(frozen=True)
class GroupRef:
    """A policy's reference to a host group, checked once every file is read."""

    name: str
    line: int
    path: str
    column: int = 0


@dataclass
class ParsedFile:
    """What one file defines (valid parts only) and the group names it refers to."""

    groups: list[HostGroup] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    group_refs: list[GroupRef] = field(default_factory=list)
    # Every group name the file declares, valid or not (so references to a group with
    # problems of its own are not also reported as unknown).
    group_names: list[str] = field(default_factory=list)


def parse_document(node: yaml.Node | None, r: Reader) -> ParsedFile:
    """Check a file's top-level mapping; problems go to ``r.problems``."""
    out = ParsedFile()
    if node is None:
        r.problems.append(_file_problem(r, "empty file: expected 'groups' and/or 'policies'"))
        return out
    top = r.mapping(node, "", TOP_KEYS)
    if top is None:
        return out
    if not top and not r.problems:
        r.error(node, "", "expected 'groups' and/or 'policies'")
    if "groups" in top:
        entry = top["groups"]
        groups = r.named_mapping(entry.value, entry.path)
        if groups is not None and not groups and isinstance(entry.value, yaml.MappingNode):
            r.error(entry.value, entry.path, "must not be empty")
        for name, g in (groups or {}).items():
            out.group_names.append(name)
            if _check_name(r, g.key, g.path, name, "group"):
                group = _group(r, name, g.key, g.value, g.path)
                if group is not None:
                    out.groups.append(group)
    if "policies" in top:
        entry = top["policies"]
        policies = r.named_mapping(entry.value, entry.path)
        if policies is not None and not policies and isinstance(entry.value, yaml.MappingNode):
            r.error(entry.value, entry.path, "must not be empty")
        for name, p in (policies or {}).items():
            if _check_name(r, p.key, p.path, name, "policy"):
                policy = _policy(r, name, p.key, p.value, p.path, out.group_refs)
                if policy is not None:
                    out.policies.append(policy)
    return out


def _file_problem(r: Reader, message: str) -> Problem:
    return Problem(r.file, 0, "", message, r.order)


def _check_name(r: Reader, node: yaml.Node, path: str, name: str, what: str) -> bool:
    if NAME_RE.match(name):
        return True
    r.error(node, path, f"{name!r} is not a valid {what} name (letters, digits, '_', '.', "
                        "'-', starting with a letter or digit, at most 64)")
    return False


# --- groups and selectors ---------------------------------------------------------------


def _group(r: Reader, name: str, key: yaml.Node, node: yaml.Node,
           path: str) -> HostGroup | None:
    entries = r.mapping(node, path, GROUP_KEYS)
    if entries is None:
        return None
    ok = True
    hosts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    description = ""
    if "hosts" in entries:
        got = _hosts(r, entries["hosts"].value, entries["hosts"].path)
        ok &= got is not None
        hosts = got or ()
    if "labels" in entries:
        lab = _labels(r, entries["labels"].value, entries["labels"].path)
        ok &= lab is not None
        labels = lab or ()
    if "description" in entries:
        desc = r.string(entries["description"].value, entries["description"].path)
        ok &= desc is not None
        description = desc or ""
    if ok and not hosts and not labels:
        r.error(node, path, "a group needs hosts or labels")
        return None
    if not ok:
        return None
    return HostGroup(name=name, hosts=hosts, labels=labels, description=description,
                     source=r.source(key))


def _hosts(r: Reader, node: yaml.Node, path: str) -> tuple[str, ...] | None:
    items = r.sequence(node, path)
    if items is None:
        return None
    out: list[str] = []
    ok = True
    for item, item_path in items:
        host = r.string(item, item_path)
        if host is None:
            ok = False
        elif not HOST_RE.match(host):
            r.error(item, item_path, f"{host!r} is not a host name or glob")
            ok = False
        elif host in out:
            r.error(item, item_path, f"{host!r} is listed twice")
            ok = False
        else:
            out.append(host)
    return tuple(out) if ok else None


def _labels(r: Reader, node: yaml.Node, path: str) -> tuple[tuple[str, str], ...] | None:
    entries = r.named_mapping(node, path)
    if entries is None:
        return None
    out: list[tuple[str, str]] = []
    ok = True
    for key, e in entries.items():
        if not LABEL_KEY_RE.match(key):
            r.error(e.key, e.path, f"{key!r} is not a label name")
            ok = False
            continue
        value = r.string(e.value, e.path, hint="quote it")
        if value is None:
            ok = False
        else:
            out.append((key, value))
    return tuple(out) if ok else None


def _selector(r: Reader, node: yaml.Node, path: str,
              refs: list[GroupRef]) -> Selector | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str" \
            and node.value == "fleet":
        return Selector(fleet=True)
    if not isinstance(node, yaml.MappingNode):
        r.error(node, path, f"expected a mapping or 'fleet', got {describe(node)}")
        return None
    entries = r.mapping(node, path, WHO_KEYS)
    if entries is None:
        return None
    ok = True
    fleet = False
    hosts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    groups: list[str] = []
    if "fleet" in entries:
        got_fleet = r.boolean(entries["fleet"].value, entries["fleet"].path)
        ok &= got_fleet is not None
        fleet = bool(got_fleet)
    if "hosts" in entries:
        got_hosts = _hosts(r, entries["hosts"].value, entries["hosts"].path)
        ok &= got_hosts is not None
        hosts = got_hosts or ()
    if "labels" in entries:
        got_labels = _labels(r, entries["labels"].value, entries["labels"].path)
        ok &= got_labels is not None
        labels = got_labels or ()
    if "groups" in entries:
        items = r.sequence(entries["groups"].value, entries["groups"].path)
        ok &= items is not None
        for item, item_path in items or []:
            name = r.string(item, item_path)
            if name is None:
                ok = False
            elif name in groups:
                r.error(item, item_path, f"{name!r} is listed twice")
                ok = False
            else:
                groups.append(name)
                refs.append(GroupRef(name, item.start_mark.line + 1, item_path,
                                    item.start_mark.column))
    if not ok:
        return None
    if fleet and (hosts or labels or groups):
        r.error(entries["fleet"].value, entries["fleet"].path,
                "fleet: true already selects every host; drop hosts, labels and groups")
        return None
    if not (fleet or hosts or labels or groups):
        r.error(node, path, "selects no hosts: give fleet: true, hosts, labels or groups")
        return None
    return Selector(fleet=fleet, hosts=hosts, labels=labels, groups=tuple(groups))


# --- traffic ------------------------------------------------------------------------------


def _matches(r: Reader, node: yaml.Node, path: str) -> tuple[Match, ...] | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str" \
            and node.value == "all":
        return (Match(),)
    if isinstance(node, yaml.SequenceNode):
        items = r.sequence(node, path, empty_ok=False)
        if items is None:
            return None
        got = [_match(r, item, item_path) for item, item_path in items]
        if any(m is None for m in got):
            return None
        done = [m for m in got if m is not None]
        for i, m in enumerate(done):
            if done.index(m) != i:
                r.error(items[i][0], items[i][1], f"same as {path}[{done.index(m)}]")
                return None
        return tuple(done)
    if isinstance(node, yaml.MappingNode):
        one = _match(r, node, path)
        return None if one is None else (one,)
    r.error(node, path, f"expected a mapping, a list of mappings or 'all', got {describe(node)}")
    return None


def _match(r: Reader, node: yaml.Node, path: str) -> Match | None:
    entries = r.mapping(node, path, MATCH_KEYS)
    if entries is None:
        return None
    ok = True
    direction: Direction = "both"
    if "direction" in entries:
        d = r.choice(entries["direction"].value, entries["direction"].path, DIRECTIONS)
        ok &= d is not None
        direction = cast(Direction, d or "both")
    nets: dict[str, tuple[Network, ...]] = {}
    for key in ("dst", "src", "remote"):
        if key in entries:
            got = _networks(r, entries[key].value, entries[key].path)
            ok &= got is not None
            nets[key] = got or ()
    protocols: tuple[Protocol, ...] = ("any",)
    if "protocols" in entries:
        protos = _protocols(r, entries["protocols"].value, entries["protocols"].path)
        ok &= protos is not None
        protocols = protos or ("any",)
    ports: tuple[PortRange, ...] = ()
    if "ports" in entries:
        got_ports = _ports(r, entries["ports"].value, entries["ports"].path)
        ok &= got_ports is not None
        ports = got_ports or ()
        if got_ports and protocols == ("icmp",):
            r.error(entries["ports"].value, entries["ports"].path,
                    "ports need protocol tcp, udp or any (ICMP has no ports)")
            ok = False
    apps: list[str] = []
    if "apps" in entries:
        items = r.sequence(entries["apps"].value, entries["apps"].path)
        ok &= items is not None
        for item, item_path in items or []:
            app = r.string(item, item_path)
            if app is None:
                ok = False
            elif not APP_RE.match(app):
                r.error(item, item_path, f"{app!r} is not an app label (lower-case letters, "
                                         "digits, '.', '_', '-')")
                ok = False
            elif app in apps:
                r.error(item, item_path, f"{app!r} is listed twice")
                ok = False
            else:
                apps.append(app)
    if not ok:
        return None
    return Match(direction=direction, dst=nets.get("dst", ()), src=nets.get("src", ()),
                 remote=nets.get("remote", ()), ports=ports, protocols=protocols,
                 apps=tuple(apps))


def _networks(r: Reader, node: yaml.Node, path: str) -> tuple[Network, ...] | None:
    items = r.sequence(node, path, empty_ok=False)
    if items is None:
        return None
    out: list[Network] = []
    ok = True
    for item, item_path in items:
        net = _network(r, item, item_path)
        if net is None:
            ok = False
        elif net in out:
            r.error(item, item_path, f"{net} is listed twice")
            ok = False
        else:
            out.append(net)
    return tuple(out) if ok else None


def _network(r: Reader, node: yaml.Node, path: str) -> Network | None:
    text = r.string(node, path)
    if text is None:
        return None
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(text.strip(), strict=False)
            r.error(node, path, f"{text!r} has host bits set (the network is {loose})")
        else:
            r.error(node, path, f"{text!r} is not a network (write it like 192.0.2.0/24 "
                                "or 2001:db8::/32)")
        return None


def _ports(r: Reader, node: yaml.Node, path: str) -> tuple[PortRange, ...] | None:
    items = r.sequence(node, path, empty_ok=False)
    if items is None:
        return None
    out: list[PortRange] = []
    ok = True
    for item, item_path in items:
        pr = _port_range(r, item, item_path)
        if pr is None:
            ok = False
        elif pr in out:
            r.error(item, item_path, f"port {pr} is listed twice")
            ok = False
        else:
            out.append(pr)
    return tuple(out) if ok else None


def _port_range(r: Reader, node: yaml.Node, path: str) -> PortRange | None:
    value = r.value(node, path)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        low = high = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*(-\s*\d+\s*)?", value):
        parts = [int(p) for p in value.split("-")]
        low, high = parts[0], parts[-1]
    else:
        r.error(node, path, f"expected a port (1-65535) or a range like '8000-8100', "
                            f"got {_shown(node)}")
        return None
    for port in (low, high):
        if not 1 <= port <= 65535:
            r.error(node, path, f"port {port} is out of range (1-65535)")
            return None
    if low > high:
        r.error(node, path, f"port range {low}-{high} runs backwards")
        return None
    return PortRange(low, high)


def _protocols(r: Reader, node: yaml.Node, path: str) -> tuple[Protocol, ...] | None:
    items = r.sequence(node, path, empty_ok=False)
    if items is None:
        return None
    out: list[Protocol] = []
    ok = True
    for item, item_path in items:
        p = r.choice(item, item_path, PROTOCOLS)
        if p is None:
            ok = False
        elif p in out:
            r.error(item, item_path, f"{p!r} is listed twice")
            ok = False
        else:
            out.append(cast(Protocol, p))
    if ok and "any" in out and len(out) > 1:
        r.error(node, path, "'any' already includes every protocol")
        return None
    return tuple(out) if ok else None


# --- quota, period, tiers, exemptions ------------------------------------------------------


def _quota(r: Reader, node: yaml.Node, path: str) -> int | None:
    value = r.value(node, path)
    if value is None:
        return None
    try:
        n = parse_bytes(value)
    except UnitError as exc:
        r.error(node, path, str(exc))
        return None
    if n <= 0:
        r.error(node, path, "must be more than 0 bytes")
        return None
    return n


def _period(r: Reader, node: yaml.Node, path: str) -> Period | None:
    if isinstance(node, yaml.ScalarNode):
        kind = r.choice(node, path, PERIOD_KINDS)
        if kind is None:
            return None
        if kind == "rolling":
            r.error(node, path, "a rolling period needs a window: write "
                                "{kind: rolling, window: 30d}")
            return None
        if kind == "fixed":
            r.error(node, path, "a fixed period needs a length: write "
                                "{kind: fixed, length: 1h}")
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
        if "window" not in entries:
            r.error(node, path, "a rolling period needs a window (like 30d)")
            return None
        window = _window(r, entries["window"].value, entries["window"].path)
        ok &= window is not None
    length = base.length
    if kind == "fixed":
        if "length" not in entries:
            r.error(node, path, "a fixed period needs a length (like 1h)")
            return None
        length = _length(r, entries["length"].value, entries["length"].path)
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
        close = difflib.get_close_matches(name, _zone_names(), n=1, cutoff=0.8)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        r.error(node, path, f"unknown time zone {name!r}{hint}")
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
        r.error(node, path, f"expected a day 1-28 or 'last', got {_shown(node)}")
    return None


def _window(r: Reader, node: yaml.Node, path: str) -> timedelta | None:
    value = r.value(node, path)
    if value is None:
        return None
    try:
        window = parse_duration(value)
    except UnitError as exc:
        r.error(node, path, str(exc))
        return None
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        r.error(node, path, "a window must be from 1m to 366d")
        return None
    return window


def _length(r: Reader, node: yaml.Node, path: str) -> timedelta | None:
    value = r.value(node, path)
    if value is None:
        return None
    try:
        length = parse_duration(value)
    except UnitError as exc:
        r.error(node, path, str(exc))
        return None
    if not MIN_LENGTH <= length <= MAX_WINDOW or length.microseconds:
        r.error(node, path, "a fixed period's length must be whole seconds from 10s to 366d")
        return None
    return length


def _tiers(r: Reader, node: yaml.Node, path: str) -> tuple[Tier, ...] | None:
    items = r.sequence(node, path, scalar_ok=False, empty_ok=False)
    if items is None:
        return None
    got = [_tier(r, item, item_path) for item, item_path in items]
    if any(t is None for t in got):
        return None
    tiers = [t for t in got if t is not None]
    for i in range(1, len(tiers)):
        prev, cur = tiers[i - 1], tiers[i]
        item, item_path = items[i]
        if prev.action == "block":
            r.error(item, item_path, f"nothing can follow the block at {format_percent(prev.at)} "
                                     f"({path}[{i - 1}])")
            return None
        if cur.at <= prev.at:
            r.error(item, item_path, f"thresholds must rise: {format_percent(cur.at)} is not "
                                     f"above {format_percent(prev.at)} ({path}[{i - 1}])")
            return None
    throttles = [(i, t) for i, t in enumerate(tiers) if t.action == "throttle"]
    for (i, a), (j, b) in itertools.pairwise(throttles):
        assert a.rate is not None and b.rate is not None
        if b.rate >= a.rate:
            r.error(items[j][0], items[j][1],
                    f"a later throttle must be slower: {format_rate(b.rate)} is not below "
                    f"{format_rate(a.rate)} ({path}[{i}])")
            return None
    return tuple(tiers)


def _tier(r: Reader, node: yaml.Node, path: str) -> Tier | None:
    entries = r.mapping(node, path, TIER_KEYS, required=("at", "action"))
    if entries is None:
        return None
    ok = "at" in entries and "action" in entries
    at: float | None = None
    if "at" in entries:
        e = entries["at"]
        value = r.value(e.value, e.path)
        if value is not None:
            try:
                at = parse_percent(value)
            except UnitError as exc:
                r.error(e.value, e.path, str(exc))
            else:
                if at <= 0:
                    r.error(e.value, e.path, "must be more than 0 %")
                    at = None
                elif at > MAX_TIER_PERCENT:
                    r.error(e.value, e.path, "must be at most 1000 %")
                    at = None
        ok &= at is not None
    action: Action | None = None
    if "action" in entries:
        e = entries["action"]
        action = cast(Action | None, r.choice(e.value, e.path, ACTIONS))
        ok &= action is not None
    rate: int | None = None
    if "rate" in entries:
        e = entries["rate"]
        if action is not None and action != "throttle":
            r.error(e.key, e.path, "only a throttle has a rate")
            ok = False
        else:
            value = r.value(e.value, e.path)
            if value is not None:
                try:
                    rate = parse_rate(value)
                except UnitError as exc:
                    r.error(e.value, e.path, str(exc))
            ok &= rate is not None
    elif action == "throttle":
        r.error(node, path, "a throttle needs a rate (like '2 Mbit/s')")
        ok = False
    mode: BlockMode | None = None
    if "mode" in entries:
        e = entries["mode"]
        if action is not None and action != "block":
            r.error(e.key, e.path, "only a block has a mode")
            ok = False
        else:
            mode = cast(BlockMode | None, r.choice(e.value, e.path, BLOCK_MODES))
            ok &= mode is not None
    elif action == "block":
        mode = "drop"
    if not ok or at is None or action is None:
        return None
    return Tier(at=at, action=action, rate=rate, mode=mode)


def _exempt(r: Reader, node: yaml.Node, path: str) -> Exemptions | None:
    entries = r.mapping(node, path, EXEMPT_KEYS)
    if entries is None:
        return None
    networks: tuple[Network, ...] | None = ()
    ports: tuple[PortRange, ...] | None = ()
    if "networks" in entries:
        networks = _networks(r, entries["networks"].value, entries["networks"].path)
    if "ports" in entries:
        ports = _ports(r, entries["ports"].value, entries["ports"].path)
    if networks is None or ports is None:
        return None
    return Exemptions(networks=networks, ports=ports)


# --- the policy ---------------------------------------------------------------------------


def _policy(r: Reader, name: str, key: yaml.Node, node: yaml.Node, path: str,
            refs: list[GroupRef]) -> Policy | None:
    entries = r.mapping(node, path, POLICY_KEYS, required=("who", "quota"))
    if entries is None:
        return None
    ok = "who" in entries and "quota" in entries
    who = quota = None
    if "who" in entries:
        who = _selector(r, entries["who"].value, entries["who"].path, refs)
    if "quota" in entries:
        quota = _quota(r, entries["quota"].value, entries["quota"].path)
    ok &= who is not None and quota is not None
    base = Policy(name=name, who=Selector(fleet=True), quota=1)
    what = base.what
    if "what" in entries:
        got_what = _matches(r, entries["what"].value, entries["what"].path)
        ok &= got_what is not None
        what = got_what or what
    scope: Scope = base.scope
    if "scope" in entries:
        s = r.choice(entries["scope"].value, entries["scope"].path, SCOPES)
        ok &= s is not None
        scope = cast(Scope, s or scope)
    period = base.period
    if "period" in entries:
        got_period = _period(r, entries["period"].value, entries["period"].path)
        ok &= got_period is not None
        period = got_period or period
    tiers = base.tiers
    if "tiers" in entries:
        got_tiers = _tiers(r, entries["tiers"].value, entries["tiers"].path)
        ok &= got_tiers is not None
        tiers = got_tiers or tiers
    exempt = base.exempt
    if "exempt" in entries:
        got_exempt = _exempt(r, entries["exempt"].value, entries["exempt"].path)
        ok &= got_exempt is not None
        exempt = got_exempt or exempt
    description = ""
    if "description" in entries:
        desc = r.string(entries["description"].value, entries["description"].path)
        ok &= desc is not None
        description = desc or ""
    if not ok or who is None or quota is None:
        return None
    return Policy(name=name, who=who, quota=quota, what=what, scope=scope, period=period,
                  tiers=tiers, exempt=exempt, description=description, source=r.source(key))


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return repr(node.value)
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value)
    return describe(node)
