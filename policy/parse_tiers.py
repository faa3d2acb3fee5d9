"""Checking how much a policy allows (``quota``) and what happens on the way (``tiers``).

:func:`read_quota` reads the byte count; :func:`read_tiers` reads the list of thresholds
(a share of the quota) with their action (``alert``, ``throttle`` at a rate, ``block``
with a mode), which must rise, end with at most one block, and throttle ever slower.
"""

from __future__ import annotations

import itertools
from typing import Final, cast

import yaml

from .model import ACTIONS, BLOCK_MODES, Action, BlockMode, Tier
from .nodes import Entry, Reader
from .parse_values import read_unit
from .units import format_percent, format_rate, parse_bytes, parse_percent, parse_rate

__all__ = ["read_quota", "read_tiers"]

MAX_TIER_PERCENT: Final = 1000.0
TIER_KEYS: Final = ("at", "action", "rate", "mode")


def read_quota(r: Reader, node: yaml.Node, path: str) -> int | None:
    """A policy's ``quota``: more than 0 bytes."""
    n = read_unit(r, node, path, parse_bytes)
    if n is not None and n <= 0:
        r.error(node, path, "must be more than 0 bytes")
        return None
    return n


def read_tiers(r: Reader, node: yaml.Node, path: str) -> tuple[Tier, ...] | None:
    """A policy's ``tiers``, in rising order."""
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
        at = read_unit(r, e.value, e.path, parse_percent)
        if at is not None and at <= 0:
            r.error(e.value, e.path, "must be more than 0 %")
            at = None
        elif at is not None and at > MAX_TIER_PERCENT:
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
        if _allowed(r, e, action, "throttle", "rate"):
            rate = read_unit(r, e.value, e.path, parse_rate)
        ok &= rate is not None
    elif action == "throttle":
        r.error(node, path, "a throttle needs a rate (like '2 Mbit/s')")
        ok = False
    mode: BlockMode | None = None
    if "mode" in entries:
        e = entries["mode"]
        if _allowed(r, e, action, "block", "mode"):
            mode = cast(BlockMode | None, r.choice(e.value, e.path, BLOCK_MODES))
        ok &= mode is not None
    elif action == "block":
        mode = "drop"
    if not ok or at is None or action is None:
        return None
    return Tier(at=at, action=action, rate=rate, mode=mode)


def _allowed(r: Reader, entry: Entry, action: Action | None, only: Action, key: str) -> bool:
    """Whether a tier of ``action`` may have ``key`` (only ``only`` may); reports it if not."""
    if action is not None and action != only:
        r.error(entry.key, entry.path, f"only a {only} has a {key}")
        return False
    return True
