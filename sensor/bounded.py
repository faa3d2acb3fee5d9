"""A size-bounded map that forgets its least recently used keys.

Shared by the label tables (sensor/apps.py: stream → SNI, address → DNS name) and the
flow-head selector (sensor/flowheads.py: packets taken per stream and per address pair),
both of which must stay bounded on a long-running sensor.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

__all__ = ["BoundedMap"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """A dict holding at most ``size`` keys; beyond that the least recently used go first.

    :meth:`set` always counts as a use; :meth:`get` does only when ``touch_on_get``.
    """

    def __init__(self, size: int, *, touch_on_get: bool = False) -> None:
        self.size = size
        self.touch_on_get = touch_on_get
        self._d: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None and self.touch_on_get:
            self._d.move_to_end(key)
        return v

    def set(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)
