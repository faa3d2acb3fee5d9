"""Checking what traffic a policy counts (``what``) and never touches (``exempt``).

:func:`read_matches` checks ``what``: ``all``, one match mapping or a list of them (direction,
``dst``/``src``/``remote`` networks, ports, protocols, apps). :func:`read_exemptions`
checks ``exempt`` (networks and ports).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, cast

import yaml

from .model import (
    DIRECTIONS,
    PROTOCOLS,
    Direction,
    Exemptions,
    Match,
    Network,
    PortRange,
    Protocol,
)
from .nodes import Reader, describe
from .parse_values import read_distinct, shown

__all__ = ["read_exemptions", "read_matches"]

APP_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MATCH_KEYS: Final = ("direction", "dst", "src", "remote", "ports", "protocols", "apps")
EXEMPT_KEYS: Final = ("networks", "ports")


def read_matches(r: Reader, node: yaml.Node, path: str) -> tuple[Match, ...] | None:
    """A policy's ``what``: ``all``, a match mapping or a list of distinct ones."""
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


def read_exemptions(r: Reader, node: yaml.Node, path: str) -> Exemptions | None:
    """A policy's ``exempt``: networks and ports never counted nor touched."""
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
    apps: tuple[str, ...] = ()
    if "apps" in entries:
        got_apps = read_distinct(r, entries["apps"].value, entries["apps"].path, _app)
        ok &= got_apps is not None
        apps = got_apps or ()
    if not ok:
        return None
    return Match(direction=direction, dst=nets.get("dst", ()), src=nets.get("src", ()),
                 remote=nets.get("remote", ()), ports=ports, protocols=protocols,
                 apps=apps)


def _networks(r: Reader, node: yaml.Node, path: str) -> tuple[Network, ...] | None:
    return read_distinct(r, node, path, _network, str, empty_ok=False)


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
    return read_distinct(r, node, path, _port_range, lambda pr: f"port {pr}", empty_ok=False)


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
                            f"got {shown(node)}")
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
    out: tuple[Protocol, ...] | None = read_distinct(r, node, path, _protocol, empty_ok=False)
    if out is not None and "any" in out and len(out) > 1:
        r.error(node, path, "'any' already includes every protocol")
        return None
    return out


def _protocol(r: Reader, node: yaml.Node, path: str) -> Protocol | None:
    return cast(Protocol | None, r.choice(node, path, PROTOCOLS))


def _app(r: Reader, node: yaml.Node, path: str) -> str | None:
    app = r.string(node, path)
    if app is not None and not APP_RE.match(app):
        r.error(node, path, f"{app!r} is not an app label (lower-case letters, "
                            "digits, '.', '_', '-')")
        return None
    return app
