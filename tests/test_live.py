"""Live capture (sensor/live.py) on veth pairs between network namespaces."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.netns import (
    Topology,
    netns_fixture,  # noqa: F401  (the netns fixture)
    require_netns,
)

from netwarden.errors import InputError, RuntimeFailure
from netwarden.sensor.accountant import Accountant, PacketBatch
from netwarden.sensor.live import LiveSource, LiveStats
from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.records import Direction

UDP_COUNT = 200
UDP_SIZE = 300
TCP_BYTES = 500_000


def drain(src: LiveSource, idle_s: float = 0.4, limit_s: float = 15.0) -> list[PacketBatch]:
    """Read until nothing arrives for ``idle_s``."""
    out: list[PacketBatch] = []
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        b = src.read(idle_s)
        if b is None:
            break
        out.append(b)
    return out


def join(batches: list[PacketBatch]) -> PacketBatch:
    """One batch (own buffer) from several."""
    bufs, offs, base = [], [], 0
    for b in batches:
        bufs.append(np.asarray(b.buf))
        offs.append(b.offset + base)
        base += len(b.buf)
    cat = np.concatenate
    return PacketBatch(cat(bufs) if bufs else np.zeros(0, np.uint8),
                       cat(offs) if offs else np.zeros(0, np.int64),
                       cat([b.caplen for b in batches]) if batches else np.zeros(0, np.uint32),
                       cat([b.wirelen for b in batches]) if batches else np.zeros(0, np.uint32),
                       cat([b.linktype for b in batches]) if batches else np.zeros(0, np.uint16),
                       cat([b.ts_ns for b in batches]) if batches else np.zeros(0, np.int64))


def packet_digests(buf: np.ndarray, offset: np.ndarray, caplen: np.ndarray) -> list[str]:
    return [hashlib.sha1(bytes(buf[o:o + c])).hexdigest()
            for o, c in zip(offset.tolist(), caplen.tolist(), strict=True)]


def tcp_payload(b: PacketBatch, port: int) -> int:
    """TCP payload bytes carried to ``port``, retransmissions counted once (the span of
    sequence numbers of the data segments; IPv4/IPv6 without extensions, on Ethernet)."""
    lo: int | None = None
    hi = 0
    for o, c in zip(b.offset.tolist(), b.caplen.tolist(), strict=True):
        f = bytes(b.buf[o:o + c])
        et = int.from_bytes(f[12:14], "big")
        if et == 0x0800 and f[23] == 6:
            ihl = (f[14] & 0xF) * 4
            ip_len = int.from_bytes(f[16:18], "big")
            tcp = 14 + ihl
            l4_len = ip_len - ihl
        elif et == 0x86DD and f[20] == 6:
            tcp = 14 + 40
            l4_len = int.from_bytes(f[18:20], "big")
        else:
            continue
        if int.from_bytes(f[tcp + 2:tcp + 4], "big") != port:
            continue
        size = l4_len - (f[tcp + 12] >> 4) * 4
        if size > 0:
            seq = int.from_bytes(f[tcp + 4:tcp + 8], "big")
            lo = seq if lo is None else min(lo, seq)
            hi = max(hi, seq + size)
    return 0 if lo is None else hi - lo


class Tcpdump:
    """tcpdump -w on an interface inside a host, for comparison."""

    def __init__(self, topo: Topology, host: str, ifname: str, path: Path) -> None:
        self.path = path
        self.proc = topo.popen(host, ["tcpdump", "-i", ifname, "-w", str(path), "-U", "-n",
                                      "-Z", "root", "-B", "16384", "--immediate-mode",
                                      "--time-stamp-precision=nano"])
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 10
        line = ""
        while "listening" not in line and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
        assert "listening" in line, f"tcpdump did not start: {line!r}"

    def stop(self) -> PacketBatch:
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=10)
        ix = read_index(self.path)
        return PacketBatch(ix.buf, ix.offset, ix.caplen, ix.wirelen, ix.linktype, ix.ts_ns)


def send_known_traffic(topo: Topology, version: int, dst: str) -> None:
    """From b to a: UDP_COUNT datagrams to port 9000, TCP_BYTES to port 9001."""
    sink = topo.traffic_popen("a", "udp-recv", dst, "9000", "--count", str(UDP_COUNT),
                              "--timeout", "15")
    server = topo.traffic_popen("a", "tcp-server", dst, "9001", "--timeout", "15")
    for p in (sink, server):
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"
    topo.traffic("b", "udp-send", dst, "9000", "--count", str(UDP_COUNT), "--size",
                 str(UDP_SIZE))
    topo.traffic("b", "tcp-send", dst, "9001", "--bytes", str(TCP_BYTES))
    assert json.loads(sink.communicate(timeout=20)[0])["received"] == UDP_COUNT
    assert json.loads(server.communicate(timeout=20)[0])["received"] == TCP_BYTES


@pytest.mark.parametrize("version", [4, 6])
def test_capture_equals_what_was_sent_and_tcpdump(netns, tmp_path, version):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    ifname = link.ifname("a")
    dst = link.addr("a", version)
    dump = Tcpdump(topo, "a", ifname, tmp_path / "ref.pcap")
    with topo.enter("a"):
        src = LiveSource([ifname])
        src.start()
    try:
        assert src.linktypes == {ifname: 1}
        assert src.timestamp_precision == "ns"
        # a marker both captures see: compare from there (the link's own IPv6 chatter may
        # reach tcpdump before the LiveSource is open)
        topo.traffic("b", "udp-send", dst, "9999", "--count", "1", "--size", "8")
        send_known_traffic(topo, version, dst)
        topo.traffic("b", "udp-send", dst, "9998", "--count", "1", "--size", "8")
        got = join(drain(src))
        stats = src.stats()
    finally:
        src.stop()
    ref = between_markers(dump.stop())
    assert stats.delivered == len(got)
    # the kernel's own count (PACKET_STATISTICS) is read at its own moment: it may lag the
    # frames already handed out by a block or two, or lead them with late IPv6 chatter
    assert abs(stats.received - len(got)) <= 8
    assert stats.dropped == 0
    got = between_markers(got)

    # the same frames as tcpdump: same count, lengths and bytes. A receiving and a sending
    # frame may come in either order on two sockets, and each socket stamps an outgoing
    # frame itself: compare as sets, timestamps within a millisecond.
    assert len(got) == len(ref) > UDP_COUNT
    assert np.array_equal(got.caplen, got.wirelen)
    mine = sorted(zip(packet_digests(got.buf, got.offset, got.caplen), got.wirelen.tolist(),
                      got.ts_ns.tolist(), strict=True))
    theirs = sorted(zip(packet_digests(ref.buf, ref.offset, ref.caplen), ref.wirelen.tolist(),
                        ref.ts_ns.tolist(), strict=True))
    assert [m[:2] for m in mine] == [t[:2] for t in theirs]
    assert max(abs(m[2] - t[2]) for m, t in zip(mine, theirs, strict=True)) < 1_000_000
    assert np.any(got.ts_ns % 1000 != 0)  # nanosecond resolution

    # per protocol, through the accountant: exactly what b sent
    acc = Accountant("a", interval_s=3600, host_addresses=topo.addresses("a"))
    acc.add(got)
    flows = acc.flush().flows
    top = flows["layer"] == 0
    ipv = flows["ip_version"] == version
    udp_in = top & ipv & (flows["ip_proto"] == 17) & (flows["dst_port"] == 9000)
    header = 14 + (20 if version == 4 else 40) + 8
    assert int(flows["packets"][udp_in].sum()) == UDP_COUNT
    assert int(flows["bytes"][udp_in].sum()) == UDP_COUNT * (header + UDP_SIZE)
    assert set(flows["direction"][udp_in].tolist()) == {Direction.IN}
    tcp = top & ipv & (flows["ip_proto"] == 6)
    tcp_frames = int(flows["packets"][tcp].sum())
    assert tcp_frames == int(np.count_nonzero(_is_tcp(ref)))
    assert int(flows["bytes"][tcp].sum()) == int(ref.wirelen[_is_tcp(ref)].sum())
    assert tcp_payload(got, 9001) == TCP_BYTES
    assert int(flows["packets"][top].sum()) == len(got)
    assert int(flows["bytes"][top].sum()) == int(ref.wirelen.sum())


def between_markers(b: PacketBatch) -> PacketBatch:
    """The packets from the UDP datagram to port 9999 to the one to port 9998."""
    found = {}
    for i, (o, c) in enumerate(zip(b.offset.tolist(), b.caplen.tolist(), strict=True)):
        f = bytes(b.buf[o:o + c])
        et = int.from_bytes(f[12:14], "big")
        at = 36 if et == 0x0800 else 56 if et == 0x86DD else None
        proto = f[23] if et == 0x0800 else f[20] if et == 0x86DD else None
        if at is not None and proto == 17:
            found.setdefault(int.from_bytes(f[at:at + 2], "big"), i)
    assert 9999 in found and 9998 in found, "marker datagrams not captured"
    return b.slice(found[9999], found[9998] + 1)


def _is_tcp(b: PacketBatch) -> np.ndarray:
    et = b.buf[b.offset + 12].astype(int) << 8 | b.buf[b.offset + 13]
    proto = np.where(et == 0x0800, b.buf[b.offset + 23], np.where(et == 0x86DD,
                     b.buf[b.offset + 20], 0))
    return np.asarray(proto == 6)


def test_idle_interface_read_returns_none_in_time(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    with topo.enter("a"):
        src = LiveSource([link.ifname("a")], bpf="udp port 7")
        src.start()
    try:
        drain(src, idle_s=0.2)
        for timeout in (0.0, 0.3, 1.0):
            t0 = time.monotonic()
            assert src.read(timeout) is None
            took = time.monotonic() - t0
            assert timeout - 0.01 <= took < timeout + 0.3
    finally:
        src.stop()


def test_bpf_filter_runs_in_the_kernel(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    dst = link.addr("a", 4)
    with topo.enter("a"):
        src = LiveSource([link.ifname("a")], bpf="udp dst port 9000")
        src.start()
    try:
        topo.traffic("b", "udp-send", dst, "9000", "--count", "30", "--size", "64")
        topo.traffic("b", "udp-send", dst, "9002", "--count", "40", "--size", "64")
        topo.traffic("b", "udp-send", link.addr("a", 6), "9000", "--count", "5", "--size", "64")
        got = join(drain(src))
        stats = src.stats()
    finally:
        src.stop()
    assert len(got) == 35
    dport = got.buf[got.offset + 36].astype(int) << 8 | got.buf[got.offset + 37]
    dport6 = got.buf[got.offset + 56].astype(int) << 8 | got.buf[got.offset + 57]
    et = got.buf[got.offset + 12].astype(int) << 8 | got.buf[got.offset + 13]
    assert np.all(np.where(et == 0x0800, dport, dport6) == 9000)
    # the kernel counted only what passed the filter
    assert stats.received == stats.delivered == 35


def test_several_interfaces_at_once_merged_in_time(netns):
    topo = netns(["a", "b", "c"])
    ab = topo.link("a", "b")
    ac = topo.link("a", "c")
    with topo.enter("a"):
        src = LiveSource([ab.ifname("a"), ac.ifname("a"), "lo"], bpf="udp")
        src.start()
    try:
        assert src.linktypes == {ab.ifname("a"): 1, ac.ifname("a"): 1, "lo": 1}
        b = topo.traffic_popen("b", "udp-send", ab.addr("a"), "9000", "--count", "100",
                               "--size", "100", "--rate", "2000")
        c = topo.traffic_popen("c", "udp-send", ac.addr("a"), "9000", "--count", "60",
                               "--size", "200", "--rate", "2000")
        b.communicate(timeout=20)
        c.communicate(timeout=20)
        batches = drain(src)
        stats = src.stats()
    finally:
        src.stop()
    got = join(batches)
    assert len(got) == 160
    assert sorted(got.wirelen.tolist()) == [142] * 100 + [242] * 60
    for batch in batches:
        assert np.all(np.diff(batch.ts_ns) >= 0)
    per = {s.interface: s.delivered for s in stats.interfaces}
    assert per == {ab.ifname("a"): 100, ac.ifname("a"): 60, "lo": 0}
    assert stats.delivered == 160 and stats.dropped == 0


def test_short_snaplen_keeps_the_wire_length(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    with topo.enter("a"):
        src = LiveSource([link.ifname("a")], bpf="udp", snaplen=96)
        src.start()
    try:
        topo.traffic("b", "udp-send", link.addr("a"), "9000", "--count", "20", "--size", "1000")
        got = join(drain(src))
        stats = src.stats()
    finally:
        src.stop()
    assert got.caplen.tolist() == [96] * 20
    assert got.wirelen.tolist() == [1042] * 20
    assert stats.truncated == 20
    assert np.any(got.ts_ns % 1000 != 0)


def test_missing_interface_is_an_input_error(netns):
    topo = netns(["a"])
    with topo.enter("a"), pytest.raises(InputError, match=r"interface 'nope0': no such interface"):
        LiveSource(["lo", "nope0"]).start()


def test_bad_filter_names_the_filter_and_libpcap_message(netns):
    topo = netns(["a"])
    with topo.enter("a"):
        src = LiveSource(["lo"], bpf="tcp port")
        with pytest.raises(InputError) as err:
            src.start()
    msg = str(err.value)
    assert "BPF filter 'tcp port'" in msg and "syntax error" in msg and "\n" not in msg
    assert not src.running


def test_no_permission_is_a_runtime_failure():
    require_netns()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    code = (
        "from netwarden.sensor.live import LiveSource\n"
        "from netwarden.errors import RuntimeFailure\n"
        "try:\n"
        "    LiveSource(['lo']).start()\n"
        "except RuntimeFailure as e:\n"
        "    print('RuntimeFailure:', e)\n"
    )
    # root without CAP_NET_RAW/CAP_NET_ADMIN: libpcap cannot open a packet socket
    out = subprocess.run(["setpriv", "--bounding-set=-net_raw,-net_admin", sys.executable,
                          "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("RuntimeFailure: interface lo: no permission to capture"), \
        out.stdout + out.stderr
    assert "Operation not permitted" in out.stdout and out.stdout.count("\n") == 1


def test_stats_before_start_after_stop_and_read_misuse():
    src = LiveSource(["lo"])
    assert src.stats() == LiveStats(tuple(src.stats().interfaces))
    assert src.stats().received == 0
    with pytest.raises(RuntimeFailure, match="before start"):
        src.read(0.1)
    with pytest.raises(InputError, match="snaplen"):
        LiveSource(["lo"], snaplen=0)
    with pytest.raises(InputError, match="no interface"):
        LiveSource([])


def test_min_packets_waits_for_a_larger_batch(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    with topo.enter("a"):
        src = LiveSource([link.ifname("a")], bpf="udp dst port 9000")
        src.start()
    try:
        topo.traffic("b", "udp-send", link.addr("a"), "9000", "--count", "30", "--size", "10")
        t0 = time.monotonic()
        got = src.read(0.6, min_packets=1000)  # fewer come: the timeout ends the read
        took = time.monotonic() - t0
        assert got is not None and len(got) == 30
        assert 0.55 <= took < 1.0
        sender = topo.traffic_popen("b", "udp-send", link.addr("a"), "9000", "--count",
                                    "400", "--size", "10", "--rate", "1000")
        t0 = time.monotonic()
        got = src.read(5.0, min_packets=100)  # returns once 100 are in, well before 5 s
        assert got is not None and 100 <= len(got) < 400
        assert time.monotonic() - t0 < 2.0
        sender.communicate(timeout=10)
    finally:
        src.stop()


def test_interface_removed_while_capturing(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    with topo.enter("a"):
        src = LiveSource([link.ifname("a"), "lo"])
        src.start()
    try:
        topo.run("a", ["ip", "link", "del", link.ifname("a")])
        with pytest.raises(RuntimeFailure, match=rf"interface {link.ifname('a')}: capture "
                                                 r"failed: The interface went down"):
            for _ in range(10):
                src.read(0.2)
    finally:
        src.stop()
    assert not src.running
