"""Exact summary statistics from integer sums (count, min, max, Σx, Σx²).

Mean and population variance are computed from the exact integer sums with fractions and
only turned into floats at the end, so they equal a direct computation over every value.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any


def summary(count: int, lo: int | None, hi: int | None, total: int, squares: int
            ) -> dict[str, Any]:
    """``{count, min, max, mean, variance}`` (``None`` values when ``count`` is 0)."""
    if count == 0:
        return {"count": 0, "min": None, "max": None, "mean": None, "variance": None}
    mean = Fraction(total, count)
    variance = Fraction(squares, count) - mean * mean
    return {"count": count, "min": lo, "max": hi, "mean": float(mean),
            "variance": float(variance)}
