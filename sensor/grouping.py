"""Fast grouping of rows by many key columns.

``np.lexsort`` over a dozen columns is the most expensive step of the accounting. Here
the key columns are first mixed into one 64-bit hash and only that is sorted (stable, so
rows keep their order within a group); then adjacent rows are compared on the real keys.
Two different keys with the same hash would show up as a mismatch between adjacent rows
of equal hash: in that (astronomically rare) case the full ``lexsort`` is used instead,
so the result is always exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MUL = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(31)


def row_hash(cols: Sequence[np.ndarray]) -> np.ndarray:
    h = np.full(len(cols[0]), 0x243F6A8885A308D3, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h ^= c.astype(np.uint64, copy=False)
            h *= _MUL
            h ^= h >> _SHIFT
    return h


def sort_groups(cols: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return (order, new_group): ``order`` sorts the rows so that equal keys are
    contiguous, keeping the original order inside a group; ``new_group[i]`` is True
    where sorted row ``i`` starts a group."""
    n = len(cols[0])
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    h = row_hash(cols)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same_hash = hs[1:] == hs[:-1]
    differ = np.zeros(n - 1, bool)
    for c in cols:
        cs = c[order]
        differ |= cs[1:] != cs[:-1]
    if np.any(same_hash & differ):  # a hash collision: fall back to the exact sort
        order = np.lexsort((np.arange(n), *reversed(list(cols))))
        differ = np.zeros(n - 1, bool)
        for c in cols:
            cs = c[order]
            differ |= cs[1:] != cs[:-1]
    new_group = np.ones(n, bool)
    new_group[1:] = differ
    return order, new_group
