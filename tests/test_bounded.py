"""The size-bounded LRU map shared by the label tables and the flow-head selector."""

from __future__ import annotations

from netwarden.sensor.bounded import BoundedMap


def test_forgets_the_least_recently_set_key_beyond_size() -> None:
    m: BoundedMap[str, int] = BoundedMap(2)
    m.set("a", 1)
    m.set("b", 2)
    m.set("a", 3)  # a is now the most recent
    m.set("c", 4)
    assert (m.get("a"), m.get("b"), m.get("c"), len(m)) == (3, None, 4, 2)


def test_get_is_a_use_only_when_asked() -> None:
    plain: BoundedMap[str, int] = BoundedMap(2)
    touched: BoundedMap[str, int] = BoundedMap(2, touch_on_get=True)
    for m in (plain, touched):
        m.set("a", 1)
        m.set("b", 2)
        assert m.get("a") == 1
        assert m.get("missing") is None
        m.set("c", 3)
    assert (plain.get("a"), plain.get("b")) == (None, 2)
    assert (touched.get("a"), touched.get("b")) == (1, None)
