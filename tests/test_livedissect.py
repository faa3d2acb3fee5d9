"""Live protocol hierarchy (sensor/livedissect.py): equal to the offline pass, sampling
recorded, temporary files always removed. tshark is real throughout."""

from __future__ import annotations

import json
import os
import stat
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.netns import netns_fixture  # noqa: F401  (the netns fixture)

from netwarden.sensor.accountant import PacketBatch
from netwarden.sensor.hierarchy import run_hierarchy, slices_for
from netwarden.sensor.live import LiveSource
from netwarden.sensor.livedissect import (
    BEHIND,
    BUDGET,
    FAILED,
    FULL,
    SKIPPED,
    DissectedInterval,
    LiveDissector,
)
from netwarden.sensor.pcapfile import read_index

PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
NS = 1_000_000_000
HUGE = 10**9  # one interval holds any capture


def batch_of(path: Path) -> PacketBatch:
    ix = read_index(path)
    return PacketBatch(ix.buf, ix.offset, ix.caplen, ix.wirelen, ix.linktype, ix.ts_ns)


def moved(b: PacketBatch, to_ns: int, span_ns: int | None = None) -> PacketBatch:
    """``b`` with its timestamps moved to start at ``to_ns`` (squeezed into ``span_ns``)."""
    rel = b.ts_ns - b.ts_ns.min()
    if span_ns is not None:
        rel = (rel * ((span_ns - 1) / max(int(rel.max()), 1))).astype(np.int64)
    return PacketBatch(b.buf, b.offset, b.caplen, b.wirelen, b.linktype, to_ns + rel)


def rows(res: DissectedInterval, interval_s: int = HUGE) -> list[tuple[str, int, int, int]]:
    """The chain rows, ``order`` relative to the interval's base."""
    c = res.chains
    base = (res.start_ns // (interval_s * NS)) << 24
    return sorted(zip(c["path"].tolist(), c["frames"].tolist(), c["bytes"].tolist(),
                      (c["order"] - base).tolist(), strict=True))


def reference(path: Path) -> list[tuple[str, int, int, int]]:
    return sorted((r.path, r.frames, r.bytes, r.order)
                  for r in run_hierarchy(path, slices_for([])).rows())


def files_in(d: LiveDissector) -> list[str]:
    return sorted(os.listdir(d.directory)) if d.directory else []


@pytest.mark.parametrize("name", ["pcapplusplus-example.pcap",
                                  "zeek-pcapng-multi-interface.pcapng"])
def test_equals_offline_hierarchy_when_not_sampling(name):
    path = PCAPS / name
    b = batch_of(path)
    with LiveDissector(interval_s=HUGE) as d:
        d.add(b)
        [res] = d.finish()
        assert files_in(d) == []
        tmp = d.directory
    assert tmp is not None and not os.path.exists(tmp)
    assert (res.frames, res.dissected, res.not_dissected, res.stride, res.reason) == \
        (len(b), len(b), 0, 1, FULL)
    assert res.fraction == 1.0
    assert res.start_ns == (int(b.ts_ns.min()) // (HUGE * NS)) * HUGE * NS
    assert set(res.chains["start_ns"].tolist()) == {res.start_ns}
    assert rows(res) == reference(path)


def test_budget_samples_and_records_it():
    b = batch_of(PCAPS / "pcapplusplus-example.pcap")
    n = len(b)
    t0 = 1_800_000_000 * NS
    with LiveDissector(interval_s=10, max_packets_per_interval=1000) as d:
        d.add(moved(b, t0, 10 * NS))  # interval 1: no history, so cut at the budget
        d.add(moved(b, t0 + 10 * NS, 10 * NS))  # interval 2: every 5th frame
        first, second = d.finish()
        stats = d.stats()
    assert (first.start_ns, first.frames, first.dissected, first.stride, first.reason) == \
        (t0, n, 1000, 1, BUDGET)
    assert first.not_dissected == n - 1000
    assert int(first.chains["frames"].sum()) == 1000
    stride = -(-n // 1000)
    assert (second.frames, second.stride, second.reason) == (n, stride, BUDGET)
    assert second.dissected == len(range(0, n, stride))
    assert int(second.chains["frames"].sum()) == second.dissected
    # the sampled frames are spread over the whole interval: each one's bytes are counted
    assert int(second.chains["bytes"].sum()) == int(b.wirelen[::stride].sum())
    assert stats.frames == 2 * n and stats.dissected == 1000 + second.dissected
    assert stats.not_dissected == 2 * n - stats.dissected and stats.sampled == 2


def _slow_tshark(tmp_path: Path, delay_s: float) -> str:
    script = tmp_path / "slow-tshark"
    script.write_text(f"#!/bin/sh\nsleep {delay_s}\nexec tshark \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_falling_behind_samples_more_and_skips_when_the_queue_is_full(tmp_path):
    b = batch_of(PCAPS / "chrissanders-http_espn.pcapng")
    n = len(b)
    t0 = 1_800_000_000 * NS
    with LiveDissector(interval_s=10, tshark=_slow_tshark(tmp_path, 1.0)) as d:
        for i in range(4):
            d.add(moved(b, t0 + i * 10 * NS, 10 * NS))
            assert len(files_in(d)) <= 3  # open + waiting + running, never more
        results = d.finish()
        assert files_in(d) == []
    by = {(r.start_ns - t0) // (10 * NS): r for r in results}
    assert sorted(by) == [0, 1, 2, 3]
    assert (by[0].reason, by[0].dissected) == (FULL, n)  # tshark was idle
    assert (by[1].reason, by[1].dissected) == (FULL, n)  # waited its turn
    # interval 2 opened while tshark was busy: sampled; it then found the wait slot taken
    assert (by[2].reason, by[2].dissected, by[2].stride) == (SKIPPED, 0, 2)
    assert by[2].not_dissected == n and len(by[2].chains["path"]) == 0
    assert (by[3].reason, by[3].stride) == (BEHIND, 4)
    assert by[3].dissected == len(range(0, n, 4))
    assert int(by[3].chains["frames"].sum()) == by[3].dissected


def test_poll_closes_the_interval_after_grace_and_runs_tshark_in_background():
    b = batch_of(PCAPS / "zeek-wikipedia.pcap")
    t0 = 1_800_000_000 * NS
    with LiveDissector(interval_s=10, grace_s=1.0) as d:
        d.add(moved(b, t0, 5 * NS))
        assert d.poll(t0 + 10 * NS) == []  # ended, but within the grace time
        assert len(files_in(d)) == 1
        assert d.poll(t0 + 11 * NS) == []  # closed: tshark started, not done yet
        deadline = time.monotonic() + 30
        got: list[DissectedInterval] = []
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = d.poll(t0 + 12 * NS)
        [res] = got
        assert files_in(d) == []
    assert (res.frames, res.dissected, res.reason) == (len(b), len(b), FULL)
    assert rows(res, 10) == reference(PCAPS / "zeek-wikipedia.pcap")
    base = d.order_base(t0)
    assert base == (t0 // (10 * NS)) << 24
    assert base <= int(res.chains["order"].min()) <= int(res.chains["order"].max()) < base + (1 << 24)


def test_late_frames_and_tshark_failures_are_counted_as_not_dissected(tmp_path):
    b = batch_of(PCAPS / "zeek-wikipedia.pcap")
    t0 = 1_800_000_000 * NS
    with LiveDissector(interval_s=10, tshark=str(tmp_path / "no-tshark")) as d:
        d.add(moved(b, t0, 5 * NS))
        d.add(moved(b, t0 + 10 * NS, 5 * NS))
        d.add(moved(b.slice(0, 7), t0 + 2 * NS))  # interval 0 is closed already
        first, second = d.finish()
        stats = d.stats()
    assert (first.reason, first.dissected, first.not_dissected) == (FAILED, 0, len(b))
    assert (second.reason, second.late) == (FAILED, 7)
    assert second.not_dissected == len(b) + 7
    assert (stats.late, stats.failed, stats.not_dissected) == (7, 2, 2 * len(b) + 7)


def test_tshark_that_takes_too_long_is_killed(tmp_path):
    b = batch_of(PCAPS / "zeek-wikipedia.pcap")
    with LiveDissector(interval_s=HUGE, run_timeout_s=0.3,
                       tshark=_slow_tshark(tmp_path, 30)) as d:
        d.add(b)
        t = time.monotonic()
        [res] = d.finish()
        assert time.monotonic() - t < 5
        assert files_in(d) == []
    assert (res.reason, res.dissected) == (FAILED, 0)


def test_stop_removes_everything_even_mid_run(tmp_path):
    b = batch_of(PCAPS / "zeek-wikipedia.pcap")
    t0 = 1_800_000_000 * NS
    d = LiveDissector(interval_s=10, tshark=_slow_tshark(tmp_path, 30), tmp_dir=str(tmp_path))
    d.start()
    for i in range(3):
        d.add(moved(b, t0 + i * 10 * NS, 5 * NS))
    assert len(files_in(d)) == 3
    tmp = d.directory
    d.stop()
    assert tmp is not None and not os.path.exists(tmp)
    assert [p.name for p in tmp_path.iterdir()] == ["slow-tshark"]


def joined(batches: list[PacketBatch]) -> PacketBatch:
    bases = np.cumsum([0] + [len(x.buf) for x in batches[:-1]])
    return PacketBatch(np.concatenate([x.buf for x in batches]),
                       np.concatenate([x.offset + base for x, base in zip(batches, bases,
                                                                          strict=True)]),
                       np.concatenate([x.caplen for x in batches]),
                       np.concatenate([x.wirelen for x in batches]),
                       np.concatenate([x.linktype for x in batches]),
                       np.concatenate([x.ts_ns for x in batches]))


def _write_pcap(path: Path, b: PacketBatch) -> None:
    """A plain nanosecond pcap of ``b`` (Ethernet), written independently of the dissector."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for o, c, w, t in zip(b.offset.tolist(), b.caplen.tolist(), b.wirelen.tolist(),
                              b.ts_ns.tolist(), strict=True):
            f.write(struct.pack("<IIII", t // NS, t % NS, c, w))
            f.write(bytes(b.buf[o:o + c]))


def test_live_capture_hierarchy_equals_tshark_on_the_same_packets(netns, tmp_path):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    with topo.enter("a"):
        src = LiveSource([link.ifname("a")], bpf="ip or ip6")
        src.start()
    batches = []
    with src, LiveDissector(interval_s=HUGE) as d:
        for version in (4, 6):
            dst = link.addr("a", version)
            server = topo.traffic_popen("a", "tcp-server", dst, "9001", "--timeout", "15")
            assert server.stdout is not None and server.stdout.readline().strip() == "READY"
            topo.traffic("b", "udp-send", dst, "53", "--count", "20", "--size", "40")
            topo.traffic("b", "tcp-send", dst, "9001", "--bytes", "200000")
            assert json.loads(server.communicate(timeout=20)[0])["received"] == 200000
        while (got := src.read(0.4)) is not None:
            batches.append(got)
            d.add(got)
        [res] = d.finish()
    total = sum(len(x) for x in batches)
    assert (res.frames, res.dissected, res.reason) == (total, total, FULL)
    ref = tmp_path / "same.pcap"
    _write_pcap(ref, joined(batches))
    assert rows(res) == reference(ref)
    paths = set(res.chains["path"].tolist())
    assert any(p.startswith("eth:ip:udp:dns") for p in paths)
    assert any(p.startswith("eth:ipv6:udp:dns") for p in paths)
    assert any(p.startswith("eth:ip:tcp") for p in paths)
    assert any(p.startswith("eth:ipv6:tcp") for p in paths)
