"""Checking who a policy applies to: host groups and ``who`` selectors.

:func:`read_group` checks one entry of a file's ``groups``; :func:`read_selector` checks a
policy's ``who`` and records each group it names as a :class:`GroupRef`, which
:mod:`netwarden.policy.load` resolves once every file is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import yaml

from .model import HostGroup, Selector
from .nodes import Entry, Reader, describe
from .parse_values import read_distinct

__all__ = ["GroupRef", "read_group", "read_selector"]

HOST_RE: Final = re.compile(r"^[A-Za-z0-9_.*?\[\]!:-]+$")
LABEL_KEY_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")
GROUP_KEYS: Final = ("hosts", "labels", "description")
WHO_KEYS: Final = ("fleet", "hosts", "labels", "groups")


@dataclass(frozen=True)
class GroupRef:
    """A policy's reference to a host group, checked once every file is read."""

    name: str
    line: int
    path: str
    column: int = 0


def read_group(r: Reader, name: str, key: yaml.Node, node: yaml.Node,
               path: str) -> HostGroup | None:
    """One host group (``groups.NAME``)."""
    entries = r.mapping(node, path, GROUP_KEYS)
    if entries is None:
        return None
    ok, hosts, labels = _hosts_and_labels(r, entries)
    description = ""
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


def read_selector(r: Reader, node: yaml.Node, path: str,
                  refs: list[GroupRef]) -> Selector | None:
    """A policy's ``who``: ``fleet`` or a mapping; group names it uses go to ``refs``."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str" \
            and node.value == "fleet":
        return Selector(fleet=True)
    if not isinstance(node, yaml.MappingNode):
        r.error(node, path, f"expected a mapping or 'fleet', got {describe(node)}")
        return None
    entries = r.mapping(node, path, WHO_KEYS)
    if entries is None:
        return None
    fleet = False
    groups: tuple[str, ...] = ()
    got_fleet: bool | None = False
    if "fleet" in entries:
        got_fleet = r.boolean(entries["fleet"].value, entries["fleet"].path)
        fleet = bool(got_fleet)
    ok, hosts, labels = _hosts_and_labels(r, entries)
    ok &= got_fleet is not None
    if "groups" in entries:
        got_groups = _group_names(r, entries["groups"].value, entries["groups"].path, refs)
        ok &= got_groups is not None
        groups = got_groups or ()
    if not ok:
        return None
    if fleet and (hosts or labels or groups):
        r.error(entries["fleet"].value, entries["fleet"].path,
                "fleet: true already selects every host; drop hosts, labels and groups")
        return None
    if not (fleet or hosts or labels or groups):
        r.error(node, path, "selects no hosts: give fleet: true, hosts, labels or groups")
        return None
    return Selector(fleet=fleet, hosts=hosts, labels=labels, groups=groups)


def _hosts_and_labels(r: Reader, entries: dict[str, Entry],
                      ) -> tuple[bool, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The ``hosts`` and ``labels`` of a group or selector, and whether both are valid."""
    ok = True
    hosts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    if "hosts" in entries:
        got_hosts = read_distinct(r, entries["hosts"].value, entries["hosts"].path, _host)
        ok &= got_hosts is not None
        hosts = got_hosts or ()
    if "labels" in entries:
        got_labels = _labels(r, entries["labels"].value, entries["labels"].path)
        ok &= got_labels is not None
        labels = got_labels or ()
    return ok, hosts, labels


def _host(r: Reader, node: yaml.Node, path: str) -> str | None:
    host = r.string(node, path)
    if host is not None and not HOST_RE.match(host):
        r.error(node, path, f"{host!r} is not a host name or glob")
        return None
    return host


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


def _group_names(r: Reader, node: yaml.Node, path: str,
                 refs: list[GroupRef]) -> tuple[str, ...] | None:
    """``who.groups``; each distinct name goes to ``refs`` even when another is wrong."""
    def add_ref(name: str, item: yaml.Node, item_path: str) -> None:
        refs.append(GroupRef(name, item.start_mark.line + 1, item_path, item.start_mark.column))

    return read_distinct(r, node, path, Reader.string, added=add_ref)
