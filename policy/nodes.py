"""Reading YAML with a line number for every key and value, collecting every problem.

:func:`compose_file` parses one file into a YAML node tree (PyYAML's ``compose`` with the
safe loader: no Python objects, no custom tags). A :class:`Reader` walks that tree for
one file: each ``want_*`` method checks one node's type and returns its value, or records
a :class:`Problem` at the node's line and returns ``None``; it never raises, so every
problem in a file is found in one pass. :meth:`Reader.mapping` also reports duplicate
and unknown keys.

A problem prints as ``FILE:LINE: key.path: message``; key paths join keys with dots and
write list positions as ``[i]`` (``policies.youtube.tiers[1].rate``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .model import Source

__all__ = ["Entry", "Problem", "Reader", "compose_file", "describe", "join", "suggest"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a policy file, at a place in it."""

    file: str
    line: int
    path: str
    message: str
    # Position of the file among those loaded, and the 0-based column: problems sort by
    # file order, then line, then column. Neither is printed.
    order: int = 0
    column: int = 0

    def sort_key(self) -> tuple[int, str, int, int, str, str]:
        """Sort order: file (as given), line, column."""
        return (self.order, self.file, self.line, self.column, self.path, self.message)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(frozen=True)
class Entry:
    """A mapping entry: its key node, value node and key path."""

    key: yaml.ScalarNode
    value: yaml.Node
    path: str


def join(path: str, key: str | int) -> str:
    """``path`` extended by a mapping key (``a.b``) or a list index (``a[0]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(node: yaml.Node) -> str:
    """What a node holds, for messages: ``a list``, ``a string``, ``an integer``, ..."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        "tag:yaml.org,2002:str": "a string",
        "tag:yaml.org,2002:int": "an integer",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:null": "nothing",
        "tag:yaml.org,2002:timestamp": "a date",
    }.get(node.tag, f"a value tagged {node.tag}")


def compose_file(path: Path, name: str, order: int) -> tuple[yaml.Node | None, list[Problem]]:
    """The node tree of one YAML file (``None`` when empty), or the problems reading it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [Problem(name, 0, "", "not UTF-8 text", order)]
    except OSError as exc:
        return None, [Problem(name, 0, "", f"cannot read ({exc.strerror or exc})", order)]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "not valid YAML"
        return None, [Problem(name, line, "", f"invalid YAML: {what}", order,
                              mark.column if mark is not None else 0)]
    except yaml.YAMLError as exc:
        return None, [Problem(name, 0, "", f"invalid YAML: {exc}", order)]
    return node, []


class Reader:
    """Typed access to the nodes of one file, recording problems instead of raising."""

    def __init__(self, file: str, order: int = 0) -> None:
        self.file = file
        self.order = order
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def source(self, node: yaml.Node) -> Source:
        """The file and 1-based line of ``node``."""
        return Source(self.file, node.start_mark.line + 1)

    def error(self, node: yaml.Node, path: str, message: str) -> None:
        """Record a problem at ``node``."""
        mark = node.start_mark
        self.problems.append(
            Problem(self.file, mark.line + 1, path, message, self.order, mark.column))

    def mapping(self, node: yaml.Node, path: str, allowed: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, Entry] | None:
        """The entries of a mapping node by key, reporting duplicate and unknown keys.

        Only entries with string keys in ``allowed`` are returned; a missing key of
        ``required`` is reported at the mapping's line.
        """
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping, got {describe(node)}")
            return None
        allowed_keys = list(allowed)
        return self._entries(node, path, allowed_keys, required)

    def named_mapping(self, node: yaml.Node, path: str) -> dict[str, Entry] | None:
        """The entries of a mapping whose keys are names chosen by the user."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping, got {describe(node)}")
            return None
        return self._entries(node, path, None, ())

    def _entries(self, node: yaml.MappingNode, path: str, allowed: list[str] | None,
                 required: Iterable[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                what = "a merge key (<<)" if key_node.tag == "tag:yaml.org,2002:merge" \
                    else describe(key_node)
                self.error(key_node, path, f"keys must be strings, got {what}")
                continue
            key = str(key_node.value)
            key_path = join(path, key)
            if key in first_line:
                self.error(key_node, key_path, f"duplicate key (first at line {first_line[key]})")
                continue
            first_line[key] = key_node.start_mark.line + 1
            if allowed is not None and key not in allowed:
                self.error(key_node, key_path, "unknown key" + suggest(key, allowed))
                continue
            out[key] = Entry(key_node, value_node, key_path)
        for key in required:
            if key not in first_line:
                self.error(node, path or "(top)", f"missing key '{key}'")
        return out

    def sequence(self, node: yaml.Node, path: str, *, scalar_ok: bool = True,
                 empty_ok: bool = True) -> list[tuple[yaml.Node, str]] | None:
        """The items of a list node with their paths; a lone scalar counts as one item."""
        if isinstance(node, yaml.SequenceNode):
            if not node.value and not empty_ok:
                self.error(node, path, "must not be empty")
                return None
            return [(item, join(path, i)) for i, item in enumerate(node.value)]
        if scalar_ok and isinstance(node, yaml.ScalarNode) and not self._is_null(node):
            return [(node, path)]
        self.error(node, path, f"expected a list, got {describe(node)}")
        return None

    def value(self, node: yaml.Node, path: str) -> Any:
        """The Python value of a scalar node (``None`` and a problem for anything else)."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, path, f"expected a single value, got {describe(node)}")
            return None
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.error(node, path, f"cannot read value: {exc}".splitlines()[0])
            return None

    def string(self, node: yaml.Node, path: str, *, hint: str = "") -> str | None:
        """A non-empty string value."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            text = str(node.value)
            if not text.strip():
                self.error(node, path, "must not be empty")
                return None
            return text
        extra = f" ({hint})" if hint and isinstance(node, yaml.ScalarNode) else ""
        self.error(node, path, f"expected a string, got {describe(node)}{extra}")
        return None

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        """A boolean value (``true``/``false``)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return bool(self.value(node, path))
        self.error(node, path, f"expected true or false, got {describe(node)}")
        return None

    def choice(self, node: yaml.Node, path: str, choices: Iterable[str]) -> str | None:
        """One of ``choices`` (a string, exactly as listed)."""
        options = list(choices)
        text = self.string(node, path)
        if text is None:
            return None
        if text not in options:
            self.error(node, path, f"{text!r} is not one of: {', '.join(options)}"
                       + suggest(text, options))
            return None
        return text

    @staticmethod
    def _is_null(node: yaml.ScalarNode) -> bool:
        return bool(node.tag == "tag:yaml.org,2002:null")


def suggest(word: str, options: Sequence[str], cutoff: float = 0.7) -> str:
    """``; did you mean 'X'?`` for the option closest to ``word`` (``""`` if none is)."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""
