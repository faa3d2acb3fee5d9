"""Synthetic flow batches and an ingest benchmark (called from ``bench/``)."""

from __future__ import annotations

import time

import numpy as np

from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    TAP_FIRST_V4,
    TAP_FIRST_V6,
    FlowBatch,
    empty,
)

from .store import Store

NS = 1_000_000_000
CHAIN_PATHS = ("eth:ethertype:ip:tcp", "eth:ethertype:ip:udp:dns", "eth:ethertype:ipv6:tcp:tls",
               "eth:ethertype:arp")
SIZE_BUCKETS = np.array([60, 64, 74, 128, 576, 1280, 1500, 1514], dtype=np.uint32)


def _addresses(rng: np.random.Generator, v6: np.ndarray) -> np.ndarray:
    """16-byte addresses: 10.x.y.z mapped for v4 rows, 2001:db8::/32 for v6 rows."""
    n = len(v6)
    raw = np.zeros((n, 16), dtype=np.uint8)
    raw[:, 10:12] = 0xFF
    raw[:, 12] = 10
    raw[:, 13:16] = rng.integers(0, 256, size=(n, 3), dtype=np.uint8)
    six = np.flatnonzero(v6)
    raw[six, :4] = (0x20, 0x01, 0x0D, 0xB8)
    raw[six, 4:12] = 0
    raw[six, 12:16] = rng.integers(0, 256, size=(len(six), 4), dtype=np.uint8)
    return raw.view("S16").ravel()


def synthetic_batch(n_rows: int, *, host: str = "bench-host", start_s: int = 1_700_000_000,
                    intervals: int = 60, interval_s: int = 60, seed: int = 0,
                    v6_share: float = 0.3, inner_share: float = 0.05) -> FlowBatch:
    """A FlowBatch of ``n_rows`` random flows over ``intervals`` intervals, with chains,
    size histograms and capture stats for each interval. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = n_rows
    flows = empty(FLOW_COLUMNS, n)
    slot = rng.integers(0, intervals, size=n)
    start = (start_s + slot * interval_s).astype(np.int64) * NS
    v6 = rng.random(n) < v6_share
    flows["start_ns"] = start
    flows["ip_version"] = np.where(v6, 6, 4).astype(np.uint8)
    flows["src_ip"] = _addresses(rng, v6)
    flows["dst_ip"] = _addresses(rng, v6)
    flows["src_port"] = rng.integers(1024, 65536, size=n, dtype=np.uint16)
    flows["dst_port"] = rng.choice(np.array([53, 80, 443, 22, 123], dtype=np.uint16), size=n)
    flows["ip_proto"] = rng.choice(np.array([6, 17, 1], dtype=np.uint8), size=n, p=[.6, .35, .05])
    flows["ethertype"] = np.where(v6, 0x86DD, 0x0800).astype(np.uint16)
    flows["direction"] = rng.integers(0, 4, size=n, dtype=np.uint8)
    flows["layer"] = (rng.random(n) < inner_share).astype(np.uint8)
    # conversation bits at random; the outermost-IP bits on layer-0 records (TTL statistics)
    outer = flows["layer"] == 0
    flows["tap"] = (rng.integers(0, 8, size=n, dtype=np.uint8)
                    | np.where(outer & ~v6, TAP_FIRST_V4, 0).astype(np.uint8)
                    | np.where(outer & v6, TAP_FIRST_V6, 0).astype(np.uint8))
    flows["stream"] = rng.integers(0, 10**6, size=n, dtype=np.uint64)
    flows["first_frame"] = rng.integers(1, 10**7, size=n, dtype=np.uint64)
    packets = rng.integers(1, 200, size=n, dtype=np.uint64)
    flows["packets"] = packets
    flows["bytes"] = packets * rng.integers(60, 1515, size=n, dtype=np.uint64)
    offset = rng.integers(0, interval_s * NS // 2, size=n, dtype=np.int64)
    flows["first_seen"] = start + offset
    flows["last_seen"] = start + offset + rng.integers(0, interval_s * NS // 2, size=n,
                                                       dtype=np.int64)
    ttl_min = rng.integers(1, 128, size=n, dtype=np.uint8)
    flows["ttl_min"] = ttl_min
    flows["ttl_max"] = ttl_min + rng.integers(0, 64, size=n, dtype=np.uint8)
    flows["ttl_sum"] = packets * ttl_min.astype(np.uint64)
    flows["ttl_sq"] = packets * ttl_min.astype(np.uint64) ** 2
    flows["tcp_flags"] = np.where(flows["ip_proto"] == 6,
                                  rng.integers(0, 64, size=n), 0).astype(np.uint16)
    flows["app"] = np.array(["", "dns", "tls", "ssh"], dtype=object)[rng.integers(0, 4, size=n)]
    # local processes of the host's own TCP/UDP records (no random draw: the rest stays)
    own = (flows["direction"] != 0) & (flows["ip_proto"] != 1)
    which = np.where(own, flows["src_port"] % 4, 0)
    flows["process"] = np.array(["", "curl", "sshd", "unbound"], dtype=object)[which]
    flows["pid"] = np.where(which > 0, 1000 + which, 0).astype(np.uint32)

    starts = (start_s + np.arange(intervals, dtype=np.int64) * interval_s) * NS
    m = len(CHAIN_PATHS)
    chains = empty(CHAIN_COLUMNS, intervals * m)
    chains["start_ns"] = np.repeat(starts, m)
    chains["path"] = np.tile(np.array(CHAIN_PATHS, dtype=object), intervals)
    chains["frames"] = rng.integers(1, 10_000, size=intervals * m, dtype=np.uint64)
    chains["bytes"] = chains["frames"] * rng.integers(60, 1515, size=intervals * m,
                                                      dtype=np.uint64)
    chains["order"] = (np.arange(intervals * m, dtype=np.uint64) * 7) % 1000 + 1

    k = len(SIZE_BUCKETS) * 3
    sizes = empty(SIZE_COLUMNS, intervals * k)
    sizes["start_ns"] = np.repeat(starts, k)
    sizes["direction"] = np.tile(np.repeat(np.array([0, 1, 2], dtype=np.uint8),
                                           len(SIZE_BUCKETS)), intervals)
    sizes["frame_len"] = np.tile(SIZE_BUCKETS, 3 * intervals)
    sizes["packets"] = rng.integers(0, 5000, size=intervals * k, dtype=np.uint64)

    stats = empty(STAT_COLUMNS, intervals)
    stats["start_ns"] = starts
    stats["packets"] = rng.integers(0, 10**6, size=intervals, dtype=np.uint64)
    stats["bytes"] = stats["packets"] * 700
    stats["dropped"] = rng.integers(0, 10, size=intervals, dtype=np.uint64)
    stats["source"] = np.full(intervals, "synthetic", dtype=object)
    return FlowBatch(host, interval_s, flows, chains, sizes, stats)


def bench_ingest(store: Store, n_rows: int = 1_000_000, *, seed: int = 0) -> float:
    """Rows per second of ``store.write`` + ``store.flush`` for a synthetic batch of
    ``n_rows`` flows (generation not timed; materialized views included)."""
    batch = synthetic_batch(n_rows, host=f"bench-{seed}", seed=seed)
    t0 = time.perf_counter()
    store.write(batch)
    store.flush()
    return n_rows / (time.perf_counter() - t0)
