"""Hashed grouping: equal keys contiguous, original order kept, exact even on collisions."""

from __future__ import annotations

import numpy as np
import pytest

from netwarden.sensor import grouping


def _check(cols: list[np.ndarray], order: np.ndarray, new_group: np.ndarray) -> None:
    keys = list(zip(*(c[order].tolist() for c in cols), strict=True))
    # every key forms exactly one contiguous run
    starts = np.flatnonzero(new_group)
    runs = [keys[s] for s in starts]
    assert len(runs) == len(set(runs)) == len(set(keys))
    for i in range(1, len(keys)):
        assert new_group[i] == (keys[i] != keys[i - 1])
    # inside a run, rows keep their original order
    for s, e in zip(starts, [*starts[1:], len(order)], strict=True):
        assert list(order[s:e]) == sorted(order[s:e])


def test_groups_equal_keys_in_original_order() -> None:
    rng = np.random.default_rng(3)
    cols = [rng.integers(0, 4, 500).astype(np.uint64), rng.integers(0, 3, 500).astype(np.uint16)]
    order, new_group = grouping.sort_groups(cols)
    _check(cols, order, new_group)


def test_a_hash_collision_falls_back_to_the_exact_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "row_hash", lambda cols: np.zeros(len(cols[0]), np.uint64))
    cols = [np.array([5, 1, 5, 2, 1], np.uint64), np.array([0, 0, 0, 0, 1], np.uint8)]
    order, new_group = grouping.sort_groups(cols)
    _check(cols, order, new_group)
    assert int(new_group.sum()) == 4


def test_empty_input() -> None:
    order, new_group = grouping.sort_groups([np.zeros(0, np.uint64)])
    assert len(order) == 0 and len(new_group) == 0
