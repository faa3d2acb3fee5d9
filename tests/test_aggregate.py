"""Grouping events into flow records, directions, and the frame-size histogram."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from fixtures.packets import mapped

from netwarden.sensor import aggregate
from netwarden.sensor.aggregate import (
    concat,
    direction_of,
    group,
    merge_sizes,
    size_table,
    to_records,
)
from netwarden.sensor.records import FLOW_COLUMNS, SIZE_COLUMNS, Direction

KEY_DEFAULTS: dict[str, tuple[int, type]] = {
    "start_ns": (0, np.int64), "ip_version": (4, np.uint8), "src_hi": (0, np.uint64),
    "src_lo": (0, np.uint64), "dst_hi": (0, np.uint64), "dst_lo": (0, np.uint64),
    "src_port": (0, np.uint16), "dst_port": (0, np.uint16), "ip_proto": (6, np.uint8),
    "ethertype": (0x0800, np.uint16), "direction": (0, np.uint8), "layer": (0, np.uint8),
    "tap": (7, np.uint8), "stream": (0, np.uint64),
}


def _table(rows: list[dict[str, int]]) -> aggregate.Partial:
    """Event-level table: one packet per row; unspecified keys take a default."""
    n = len(rows)
    out: aggregate.Partial = {}
    for k, (default, dt) in KEY_DEFAULTS.items():
        out[k] = np.array([r.get(k, default) for r in rows], dtype=dt)
    frame = np.array([r.get("frame", i + 1) for i, r in enumerate(rows)], np.uint64)
    ts = np.array([r.get("ts", 0) for r in rows], np.int64)
    ttl = np.array([r.get("ttl", 64) for r in rows], np.uint8)
    out.update({
        "first_frame": frame, "packets": np.ones(n, np.uint64),
        "bytes": np.array([r.get("bytes", 60) for r in rows], np.uint64),
        "first_seen": ts, "last_seen": ts.copy(), "ttl_min": ttl, "ttl_max": ttl.copy(),
        "ttl_sum": ttl.astype(np.uint64), "ttl_sq": ttl.astype(np.uint64) ** 2,
        "tcp_flags": np.array([r.get("flags", 0) for r in rows], np.uint16),
    })
    return out


def _as_dict(p: aggregate.Partial) -> dict[tuple[int, ...], dict[str, int]]:
    keys = list(KEY_DEFAULTS)
    out = {}
    for i in range(len(p["packets"])):
        k = tuple(int(p[c][i]) for c in keys)
        assert k not in out, "group left two rows with one key"
        out[k] = {c: int(v[i]) for c, v in p.items() if c not in keys}
    return out


def test_group_sums_mins_maxes_and_ors() -> None:
    rows = [
        {"src_port": 1, "frame": 5, "ts": 500, "ttl": 60, "bytes": 100, "flags": 0x02},
        {"src_port": 2, "frame": 2, "ts": 200, "ttl": 10, "bytes": 999},
        {"src_port": 1, "frame": 3, "ts": 900, "ttl": 70, "bytes": 40, "flags": 0x10},
        {"src_port": 1, "frame": 9, "ts": 100, "ttl": 64, "bytes": 60, "flags": 0x01},
    ]
    g = _as_dict(group(_table(rows)))
    assert len(g) == 2
    one = next(v for k, v in g.items() if k[6] == 1)
    assert one == {
        "first_frame": 3, "packets": 3, "bytes": 200, "first_seen": 100, "last_seen": 900,
        "ttl_min": 60, "ttl_max": 70, "ttl_sum": 194, "ttl_sq": 60**2 + 70**2 + 64**2,
        "tcp_flags": 0x13,
    }
    two = next(v for k, v in g.items() if k[6] == 2)
    assert (two["packets"], two["bytes"], two["ttl_min"], two["first_frame"]) == (1, 999, 10, 2)


@pytest.mark.parametrize("key", list(KEY_DEFAULTS))
def test_every_key_column_separates_records(key: str) -> None:
    g = group(_table([{key: 1}, {key: 2}, {key: 1}]))
    assert len(g["packets"]) == 2
    assert sorted(g["packets"].tolist()) == [1, 2]


def test_group_is_a_merge_so_batches_can_be_grouped_again() -> None:
    rng = np.random.default_rng(7)
    rows = [{"src_port": int(rng.integers(3)), "stream": int(rng.integers(2)),
             "start_ns": int(rng.integers(2)) * 10, "frame": i + 1, "ts": int(rng.integers(1000)),
             "ttl": int(rng.integers(1, 255)), "bytes": int(rng.integers(60, 1500)),
             "flags": int(rng.integers(0, 512))} for i in range(200)]
    whole = _as_dict(group(_table(rows)))
    parts = [group(_table(rows[i:i + 37])) for i in range(0, 200, 37)]
    assert _as_dict(group(concat(parts))) == whole
    assert sum(v["packets"] for v in whole.values()) == 200


def test_group_of_nothing() -> None:
    g = group(_table([]))
    assert len(g["packets"]) == 0


HOST4, HOST6, OTHER4, OTHER6 = "192.0.2.10", "2001:db8::10", "198.51.100.7", "2001:db8::99"


def _direction(pairs: list[tuple[str, str]], host: list[str]) -> list[int]:
    s = np.array([mapped(a) for a, _ in pairs], np.uint64).reshape(-1, 2)
    d = np.array([mapped(b) for _, b in pairs], np.uint64).reshape(-1, 2)
    got = direction_of(s[:, 0], s[:, 1], d[:, 0], d[:, 1], [mapped(h) for h in host])
    return [int(x) for x in got]


def test_direction_relative_to_the_host_addresses() -> None:
    pairs = [(OTHER4, HOST4), (HOST4, OTHER4), (HOST4, HOST4), (OTHER4, "203.0.113.1"),
             (OTHER6, HOST6), (HOST6, OTHER6), (HOST4, HOST6), (HOST6, HOST6)]
    assert _direction(pairs, [HOST4, HOST6]) == [
        Direction.IN, Direction.OUT, Direction.LOCAL, Direction.OTHER,
        Direction.IN, Direction.OUT, Direction.LOCAL, Direction.LOCAL]


def test_direction_without_host_addresses_is_other() -> None:
    assert _direction([(HOST4, OTHER4), (OTHER4, HOST4)], []) == [Direction.OTHER] * 2


def test_an_ipv4_host_does_not_match_its_bare_ipv6_twin() -> None:
    # ::c000:20a (IPv4-compatible) is not ::ffff:192.0.2.10
    twin = str(ipaddress.IPv6Address(int(ipaddress.IPv4Address(HOST4))))
    assert _direction([(twin, OTHER6)], [HOST4]) == [Direction.OTHER]


def test_non_ip_events_are_other_even_for_a_zero_host() -> None:
    zero = np.zeros(1, np.uint64)
    assert direction_of(zero, zero, zero, zero, [mapped(HOST4)]).tolist() == [Direction.OTHER]


def test_to_records_has_the_contract_columns() -> None:
    rows = [{"src_hi": mapped(HOST6)[0], "src_lo": mapped(HOST6)[1],
             "dst_hi": mapped(OTHER4)[0], "dst_lo": mapped(OTHER4)[1], "ip_version": 6,
             "src_port": 443, "dst_port": 50000, "flags": 0x18}]
    rec = to_records(group(_table(rows)))
    assert list(rec) == list(FLOW_COLUMNS)
    for name, dt in FLOW_COLUMNS.items():
        assert rec[name].dtype == np.dtype(dt), name
    assert ipaddress.IPv6Address(bytes(rec["src_ip"][0])) == ipaddress.IPv6Address(HOST6)
    assert bytes(rec["dst_ip"][0]).ljust(16, b"\0") == ipaddress.IPv6Address(
        f"::ffff:{OTHER4}").packed
    assert (rec["src_port"][0], rec["dst_port"][0], rec["tcp_flags"][0]) == (443, 50000, 0x18)
    assert rec["app"].tolist() == [""]


def test_size_table_counts_frames_per_interval_direction_and_length() -> None:
    start = np.array([0, 0, 0, 10, 10, 0], np.int64)
    dirs = np.array([1, 1, 2, 1, 1, 1], np.uint8)
    lens = np.array([60, 60, 60, 60, 1514, 60], np.uint32)
    t = size_table(start, dirs, lens)
    assert list(t) == list(SIZE_COLUMNS)
    got = sorted(zip(t["start_ns"].tolist(), t["direction"].tolist(), t["frame_len"].tolist(),
                     t["packets"].tolist(), strict=True))
    assert got == [(0, 1, 60, 3), (0, 2, 60, 1), (10, 1, 60, 1), (10, 1, 1514, 1)]
    for name, dt in SIZE_COLUMNS.items():
        assert t[name].dtype == np.dtype(dt), name


def test_size_table_keeps_large_lengths_and_negative_interval_starts() -> None:
    start = np.array([-5_000_000_000, 1_700_000_000_000_000_000], np.int64)
    t = size_table(start, np.array([3, 0], np.uint8), np.array([262144, 65535], np.uint32))
    assert sorted(zip(t["start_ns"].tolist(), t["direction"].tolist(),
                      t["frame_len"].tolist(), strict=True)) == [
        (-5_000_000_000, 3, 262144), (1_700_000_000_000_000_000, 0, 65535)]


def test_size_table_of_nothing() -> None:
    t = size_table(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint32))
    assert all(len(v) == 0 for v in t.values()) and list(t) == list(SIZE_COLUMNS)


def test_merge_sizes_adds_equal_rows_across_parts() -> None:
    a = size_table(np.array([0, 0]), np.array([1, 1]), np.array([60, 70]))
    b = size_table(np.array([0, 10]), np.array([1, 1]), np.array([60, 60]))
    m = merge_sizes([a, b])
    got = sorted(zip(m["start_ns"].tolist(), m["frame_len"].tolist(), m["packets"].tolist(),
                     strict=True))
    assert got == [(0, 60, 2), (0, 70, 1), (10, 60, 1)]
    assert m["packets"].dtype == np.uint64
    assert all(len(v) == 0 for v in merge_sizes([]).values())
