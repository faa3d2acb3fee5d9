"""A capture file as a packet source: instant, paced, retimed."""

from __future__ import annotations

import time

import numpy as np
from fixtures.collector import PCAPS

from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.replay import ReplaySource

WIKI = PCAPS / "zeek-wikipedia.pcap"  # 136 packets over 6.38 s


def drain(src: ReplaySource, timeout_s: float = 0.05) -> list[int]:
    sizes = []
    while not src.done:
        batch = src.read(timeout_s)
        if batch is not None:
            sizes.append(len(batch))
    return sizes


def test_instant_replay_hands_out_every_packet_with_file_timestamps() -> None:
    src = ReplaySource(WIKI, chunk_packets=50)
    src.start()
    got = []
    while not src.done:
        batch = src.read(0.01)
        assert batch is not None
        got.append(batch)
    assert [len(b) for b in got] == [50, 50, 36]
    index = read_index(WIKI)
    assert np.concatenate([b.ts_ns for b in got]).tolist() == index.ts_ns.tolist()
    assert np.concatenate([b.wirelen for b in got]).tolist() == index.wirelen.tolist()
    assert src.stats().received == 136 and src.stats().dropped == 0
    t = time.monotonic()
    assert src.read(0.05) is None  # exhausted: waits, returns nothing
    assert time.monotonic() - t >= 0.04


def test_paced_replay_follows_the_capture_clock_and_retimes() -> None:
    src = ReplaySource(WIKI, speed=64.0, retime=True)  # 6.38 s at 64x: 0.1 s
    t0 = time.time_ns()
    src.start()
    first = src.read(0.5)
    assert first is not None and len(first) < 136  # not everything is due at once
    drain(src)
    elapsed = time.time_ns() - t0
    assert elapsed >= 0.09e9
    assert src.stats().received == 136
    assert int(first.ts_ns[0]) >= t0  # moved to now
    assert int(first.ts_ns[0]) - t0 < 1e9


def test_stop_ends_reads_at_once() -> None:
    src = ReplaySource(WIKI, speed=0.001)
    src.start()
    src.read(0.01)
    src.stop()
    t = time.monotonic()
    assert src.read(5) is None
    assert time.monotonic() - t < 1
