"""Checking one policy file's node tree and building its groups and policies.

:func:`parse_document` reads the top-level ``groups`` and ``policies`` mappings of one
file with a :class:`~netwarden.policy.nodes.Reader`, records every problem it finds, and
returns the groups and policies that are valid, with every default filled in. Checks
that need every file (names defined twice, references to groups) are made by
:mod:`netwarden.policy.load`; this module returns what they need (:class:`GroupRef`).

Each part of a policy is checked by its own module: ``who`` and groups by
:mod:`~netwarden.policy.parse_who`, ``what`` and ``exempt`` by
:mod:`~netwarden.policy.parse_what`, ``period`` by :mod:`~netwarden.policy.parse_period`,
``quota`` and ``tiers`` by :mod:`~netwarden.policy.parse_tiers`.

The format itself is documented in the README ("Data-plan policies").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, cast

import yaml

from .model import SCOPES, HostGroup, Policy, Scope, Selector
from .nodes import Entry, Problem, Reader
from .parse_period import read_period
from .parse_tiers import read_quota, read_tiers
from .parse_what import read_exemptions, read_matches
from .parse_who import GroupRef, read_group, read_selector

__all__ = ["GroupRef", "ParsedFile", "parse_document"]

NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOP_KEYS: Final = ("groups", "policies")
POLICY_KEYS: Final = (
    "description", "who", "what", "quota", "scope", "period", "tiers", "exempt")


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
        for name, g in _named(r, top["groups"]).items():
            out.group_names.append(name)
            if _check_name(r, g.key, g.path, name, "group"):
                group = read_group(r, name, g.key, g.value, g.path)
                if group is not None:
                    out.groups.append(group)
    if "policies" in top:
        for name, p in _named(r, top["policies"]).items():
            if _check_name(r, p.key, p.path, name, "policy"):
                policy = _policy(r, name, p.key, p.value, p.path, out.group_refs)
                if policy is not None:
                    out.policies.append(policy)
    return out


def _named(r: Reader, entry: Entry) -> dict[str, Entry]:
    """The entries of ``groups`` or ``policies``, by name (none when it is not a mapping)."""
    named = r.named_mapping(entry.value, entry.path)
    if named is not None and not named and isinstance(entry.value, yaml.MappingNode):
        r.error(entry.value, entry.path, "must not be empty")
    return named or {}


def _file_problem(r: Reader, message: str) -> Problem:
    return Problem(r.file, 0, "", message, r.order)


def _check_name(r: Reader, node: yaml.Node, path: str, name: str, what: str) -> bool:
    if NAME_RE.match(name):
        return True
    r.error(node, path, f"{name!r} is not a valid {what} name (letters, digits, '_', '.', "
                        "'-', starting with a letter or digit, at most 64)")
    return False


def _policy(r: Reader, name: str, key: yaml.Node, node: yaml.Node, path: str,
            refs: list[GroupRef]) -> Policy | None:
    entries = r.mapping(node, path, POLICY_KEYS, required=("who", "quota"))
    if entries is None:
        return None
    ok = "who" in entries and "quota" in entries
    who = quota = None
    if "who" in entries:
        who = read_selector(r, entries["who"].value, entries["who"].path, refs)
    if "quota" in entries:
        quota = read_quota(r, entries["quota"].value, entries["quota"].path)
    ok &= who is not None and quota is not None
    base = Policy(name=name, who=Selector(fleet=True), quota=1)
    what = base.what
    if "what" in entries:
        got_what = read_matches(r, entries["what"].value, entries["what"].path)
        ok &= got_what is not None
        what = got_what or what
    scope: Scope = base.scope
    if "scope" in entries:
        s = r.choice(entries["scope"].value, entries["scope"].path, SCOPES)
        ok &= s is not None
        scope = cast(Scope, s or scope)
    period = base.period
    if "period" in entries:
        got_period = read_period(r, entries["period"].value, entries["period"].path)
        ok &= got_period is not None
        period = got_period or period
    tiers = base.tiers
    if "tiers" in entries:
        got_tiers = read_tiers(r, entries["tiers"].value, entries["tiers"].path)
        ok &= got_tiers is not None
        tiers = got_tiers or tiers
    exempt = base.exempt
    if "exempt" in entries:
        got_exempt = read_exemptions(r, entries["exempt"].value, entries["exempt"].path)
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
