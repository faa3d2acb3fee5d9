"""Loading policy files: every file checked, merged into one :class:`PolicySet`.

:func:`load_policies` reads YAML policy files (a directory stands for its ``*.yaml`` and
``*.yml`` files, in name order), checks each one (:mod:`netwarden.policy.parse`), then
checks them together:

* a group or policy name defined twice - in one file or in two, or differing only in
  case (``YouTube`` and ``youtube`` overlap) - is an error at the later definition,
  naming the earlier one's ``FILE:LINE``;
* a policy's ``who.groups`` must name a group defined in one of the files.

Every problem is collected; if there is any, :class:`PolicyError` (a
:class:`~netwarden.errors.ConfigError`, exit status 2) carries all of them, one line each
as ``FILE:LINE: key.path: message``, sorted by file (in the order given) then line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from netwarden.errors import ConfigError

from .model import HostGroup, Policy, PolicySet, Source
from .nodes import Problem, Reader, compose_file, join, suggest
from .parse import ParsedFile, parse_document

__all__ = ["PolicyError", "check_policies", "expand_paths", "load_policies"]

SUFFIXES = (".yaml", ".yml")


class PolicyError(ConfigError):
    """Policy files with problems; :attr:`problems` holds them, sorted."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read: each path as given, a directory replaced by its YAML files."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir()
                              if p.suffix in SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def check_policies(paths: Iterable[str | Path]) -> tuple[PolicySet, list[Problem]]:
    """The policies that are valid and every problem found (sorted), without raising."""
    files = expand_paths(paths)
    problems: list[Problem] = []
    parsed: list[tuple[str, int, ParsedFile]] = []
    if not files:
        problems.append(Problem("(policies)", 0, "", "no policy files given"))
    for order, path in enumerate(files):
        name = str(path)
        node, read_problems = compose_file(path, name, order)
        problems.extend(read_problems)
        if read_problems:
            continue
        reader = Reader(name, order)
        parsed.append((name, order, parse_document(node, reader)))
        problems.extend(reader.problems)
    groups = _unique(parsed, "group", problems)
    policies = _unique(parsed, "policy", problems)
    known = {g for _, _, pf in parsed for g in pf.group_names}
    for name, order, pf in parsed:
        for ref in pf.group_refs:
            if ref.name not in known:
                hint = suggest(ref.name, sorted(known), cutoff=0.6)
                problems.append(Problem(name, ref.line, ref.path,
                                        f"unknown group {ref.name!r}{hint}", order,
                                        ref.column))
    result = PolicySet(
        groups=tuple(g for g in groups if isinstance(g, HostGroup)),
        policies=tuple(p for p in policies if isinstance(p, Policy)),
        files=tuple(str(f) for f in files))
    return result, sorted(problems, key=Problem.sort_key)


def load_policies(paths: Iterable[str | Path]) -> PolicySet:
    """Every group and policy in ``paths``; :class:`PolicyError` lists every problem."""
    policy_set, problems = check_policies(paths)
    if problems:
        raise PolicyError(problems)
    return policy_set


def _unique(parsed: list[tuple[str, int, ParsedFile]], what: str,
            problems: list[Problem]) -> list[HostGroup | Policy]:
    """The groups (or policies) of every file, dropping and reporting names seen before."""
    seen: dict[str, HostGroup | Policy] = {}
    out: list[HostGroup | Policy] = []
    top = "groups" if what == "group" else "policies"
    for name, order, pf in parsed:
        items: list[HostGroup | Policy] = [*pf.groups] if what == "group" else [*pf.policies]
        for item in items:
            folded = item.name.casefold()
            first = seen.get(folded)
            if first is None:
                seen[folded] = item
                out.append(item)
                continue
            here = item.source or Source(name, 0)
            there = first.source or Source(name, 0)
            if first.name == item.name:
                message = f"{what} {item.name!r} is already defined at {there}"
            else:
                message = (f"{what} {item.name!r} overlaps {what} {first.name!r} defined at "
                           f"{there} (names are compared ignoring case)")
            problems.append(Problem(here.file, here.line, join(top, item.name), message,
                                    order))
    return out
