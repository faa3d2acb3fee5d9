"""Pre-aggregation: decoded events → per-interval flow records and size histograms.

Grouping is a lexicographic sort over the key columns followed by ``reduceat`` over the
value columns, so its cost is a few sorts per batch, whatever the traffic mix. Partial
records of the same key from different batches are merged the same way before they are
emitted; records of one key in one interval may still be split if a late packet (an
out-of-order timestamp) arrives after its interval was emitted: reports sum, so that is
harmless.
"""

from __future__ import annotations

import numpy as np

from netwarden.sensor.grouping import sort_groups
from netwarden.sensor.records import FLOW_COLUMNS, SIZE_COLUMNS, Columns, Direction

# key columns of a flow record, and how each value column combines
_KEY = ("start_ns", "ip_version", "src_hi", "src_lo", "dst_hi", "dst_lo", "src_port",
        "dst_port", "ip_proto", "ethertype", "direction", "layer", "tap", "stream")
_SUM = ("packets", "bytes", "ttl_sum", "ttl_sq")
_MIN = ("first_frame", "first_seen", "ttl_min")
_MAX = ("last_seen", "ttl_max")
_OR = ("tcp_flags",)

Partial = dict[str, np.ndarray]


def group(table: Partial) -> Partial:
    """Merge rows with equal keys (works on event-level and record-level tables)."""
    n = len(table["packets"])
    if n == 0:
        return table
    order, change = sort_groups([table[k] for k in _KEY])
    srt = {k: v[order] for k, v in table.items()}
    starts = np.flatnonzero(change)
    out: Partial = {k: srt[k][starts] for k in _KEY}
    for k in _SUM:
        out[k] = np.add.reduceat(srt[k], starts)
    for k in _MIN:
        out[k] = np.minimum.reduceat(srt[k], starts)
    for k in _MAX:
        out[k] = np.maximum.reduceat(srt[k], starts)
    for k in _OR:
        out[k] = np.bitwise_or.reduceat(srt[k], starts)
    return out


def concat(parts: list[Partial]) -> Partial:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def direction_of(src_hi: np.ndarray, src_lo: np.ndarray, dst_hi: np.ndarray,
                 dst_lo: np.ndarray, host: list[tuple[int, int]]) -> np.ndarray:
    """Direction relative to the host, whose addresses are (hi, lo) pairs."""
    src_mine = np.zeros(len(src_hi), bool)
    dst_mine = np.zeros(len(src_hi), bool)
    for hi, lo in host:
        h, lo_ = np.uint64(hi), np.uint64(lo)
        src_mine |= (src_hi == h) & (src_lo == lo_)
        dst_mine |= (dst_hi == h) & (dst_lo == lo_)
    d = np.full(len(src_hi), Direction.OTHER, np.uint8)
    d[dst_mine] = Direction.IN
    d[src_mine] = Direction.OUT
    d[src_mine & dst_mine] = Direction.LOCAL
    return d


def to_records(p: Partial) -> Columns:
    """Turn a grouped partial table into flow-record columns (records.FLOW_COLUMNS)."""
    n = len(p["packets"])
    out: Columns = {}
    for name, dt in FLOW_COLUMNS.items():
        if name in ("src_ip", "dst_ip"):
            pre = name[:3]
            raw = np.empty((n, 2), dtype=">u8")
            raw[:, 0] = p[pre + "_hi"]
            raw[:, 1] = p[pre + "_lo"]
            out[name] = raw.view("S16").reshape(n)
        elif dt is object:  # enrichment strings, filled later
            out[name] = np.full(n, "", dtype=object)
        elif name not in p:  # enrichment numbers (pid)
            out[name] = np.zeros(n, dtype=dt)
        else:
            out[name] = p[name].astype(dt, copy=False)
    return out


def size_table(start_ns: np.ndarray, direction: np.ndarray, frame_len: np.ndarray) -> Columns:
    """Exact frame-length histogram per interval and direction."""
    if len(start_ns) == 0:
        return {k: np.zeros(0, dt) for k, dt in SIZE_COLUMNS.items()}
    # one int64 key: interval rank, direction (2 bits), length (22 bits)
    ivals, irank = np.unique(start_ns, return_inverse=True)
    key = (irank.astype(np.int64) << 24) | (direction.astype(np.int64) << 22) \
        | np.minimum(frame_len, (1 << 22) - 1).astype(np.int64)
    uk, counts = np.unique(key, return_counts=True)
    return {
        "start_ns": ivals[uk >> 24].astype(np.int64),
        "direction": ((uk >> 22) & 3).astype(np.uint8),
        "frame_len": (uk & ((1 << 22) - 1)).astype(np.uint32),
        "packets": counts.astype(np.uint64),
    }


def merge_sizes(parts: list[Columns]) -> Columns:
    if not parts:
        return {k: np.zeros(0, dt) for k, dt in SIZE_COLUMNS.items()}
    allp = {k: np.concatenate([p[k] for p in parts]) for k in SIZE_COLUMNS}
    if len(allp["packets"]) == 0:
        return allp
    keys = np.stack([allp["start_ns"].astype(np.int64), allp["direction"].astype(np.int64),
                     allp["frame_len"].astype(np.int64)], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    sums = np.zeros(len(uniq), np.uint64)
    np.add.at(sums, inv.ravel(), allp["packets"])
    return {"start_ns": uniq[:, 0].astype(np.int64), "direction": uniq[:, 1].astype(np.uint8),
            "frame_len": uniq[:, 2].astype(np.uint32), "packets": sums}
