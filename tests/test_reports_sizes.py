"""Size distribution figures from an exact length histogram (pure logic; the real store is
covered by test_truth.py, which checks count/min/max/mean/variance/histogram on every
capture against tshark)."""

from __future__ import annotations

from typing import Any

from netwarden.collector.reports.sizes import SizesParams, sizes


class HistogramStore:
    """Answers the one query the report makes with a fixed length histogram."""

    def __init__(self, hist: dict[int, int]) -> None:
        self.hist = hist

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        assert "FROM pkt_sizes" in sql
        return sorted(self.hist.items())


def test_percentiles_and_box_by_nearest_rank() -> None:
    # 100 frames: lengths 60 (40x), 100 (30x), 500 (20x), 1500 (9x), 9000 (1x)
    res = sizes(HistogramStore({60: 40, 100: 30, 500: 20, 1500: 9, 9000: 1}), SizesParams())
    pct = res.meta["percentiles"]
    assert (pct["p1"], pct["p25"], pct["p50"], pct["p75"], pct["p90"], pct["p99"]) == \
        (60, 60, 100, 500, 500, 1500)
    box = res.meta["box"]
    assert (box["q1"], box["median"], box["q3"]) == (60, 100, 500)
    # IQR 440: whiskers reach 60 .. 1160, so 1500 and 9000 are outliers (10 frames)
    assert (box["whisker_low"], box["whisker_high"], box["outliers"]) == (60, 500, 10)
    fl = res.meta["frame_len"]
    assert (fl["count"], fl["min"], fl["max"]) == (100, 60, 9000)
    assert fl["mean"] == (60 * 40 + 100 * 30 + 500 * 20 + 1500 * 9 + 9000) / 100
    buckets = {r["bucket"]: r["count"] for r in res.rows}
    assert buckets["40-79"] == 40 and buckets["5120 and greater"] == 1
    assert sum(buckets.values()) == 100


def test_no_frames() -> None:
    res = sizes(HistogramStore({}), SizesParams())
    assert res.meta["frame_len"]["count"] == 0
    assert "percentiles" not in res.meta
