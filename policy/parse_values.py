"""Readers shared by the policy-file checks: lists of distinct items, values with units.

Like :class:`~netwarden.policy.nodes.Reader`'s own methods, each reader records a problem
at the node's line and returns ``None`` instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import yaml

from .nodes import Reader, describe
from .units import UnitError

__all__ = ["read_distinct", "read_unit", "shown"]

T = TypeVar("T")


def read_distinct(r: Reader, node: yaml.Node, path: str,
                  read_item: Callable[[Reader, yaml.Node, str], T | None],
                  label: Callable[[T], str] = repr, *, empty_ok: bool = True,
                  added: Callable[[T, yaml.Node, str], object] | None = None,
                  ) -> tuple[T, ...] | None:
    """A list (or one scalar) of items read by ``read_item``, none of them listed twice.

    Every item is checked; ``label`` names an item in the "listed twice" message, and
    ``added`` (if given) sees each distinct valid item with its node and path as it is
    read, even when another item turns out wrong.
    """
    items = r.sequence(node, path, empty_ok=empty_ok)
    if items is None:
        return None
    out: list[T] = []
    ok = True
    for item, item_path in items:
        value = read_item(r, item, item_path)
        if value is None:
            ok = False
        elif value in out:
            r.error(item, item_path, f"{label(value)} is listed twice")
            ok = False
        else:
            out.append(value)
            if added is not None:
                added(value, item, item_path)
    return tuple(out) if ok else None


def read_unit(r: Reader, node: yaml.Node, path: str, parse: Callable[[object], T]) -> T | None:
    """A scalar converted by one of the :mod:`~netwarden.policy.units` parsers."""
    value = r.value(node, path)
    if value is None:
        return None
    try:
        return parse(value)
    except UnitError as exc:
        r.error(node, path, str(exc))
        return None


def shown(node: yaml.Node) -> str:
    """A scalar as written (strings quoted), or what the node holds, for messages."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return repr(node.value)
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value)
    return describe(node)
