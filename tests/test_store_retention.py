"""Which partitions the legacy retention drops (pure). Real drops: test_store.py."""

from __future__ import annotations

import datetime as dt

import pytest

from netwarden.collector.store import RetentionDays, StoreError
from netwarden.collector.store.retention import partition_end, partitions_to_drop
from netwarden.collector.store.schema import FLOWS, USAGE_15M


def epoch(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp())


def test_partition_end() -> None:
    assert partition_end(FLOWS, "20240229") == epoch(2024, 3, 1)
    assert partition_end(USAGE_15M, "202402") == epoch(2024, 3, 1)
    assert partition_end(USAGE_15M, "202312") == epoch(2024, 1, 1)
    with pytest.raises(StoreError, match="table flows: unexpected partition '202402'"):
        partition_end(FLOWS, "202402")


def test_partitions_to_drop() -> None:
    now = epoch(2024, 3, 31, 12)
    parts = [("flows", "20240229"), ("flows", "20240301"), ("flows", "20240302"),
             ("usage_15m", "202402"), ("usage_15m", "202311"), ("other", "20200101")]
    # raw: 30 days → cutoff 2024-03-01 12:00: days ending by then go
    got = partitions_to_drop(parts, RetentionDays(raw=30, rollup=120), now)
    assert got == [("flows", "20240229"), ("usage_15m", "202311")]
    assert partitions_to_drop(parts, RetentionDays(), now) == []
    assert partitions_to_drop(parts, RetentionDays(raw=0, rollup=1), now) == [
        ("usage_15m", "202311"), ("usage_15m", "202402")]
