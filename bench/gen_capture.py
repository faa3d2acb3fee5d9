"""Generate a synthetic pcap for benchmarks: N packets over ~F flows, mixed TCP/UDP/IPv6.

Everything is built with numpy (no per-packet Python), so a million packets take about a
second. The traffic is realistic in shape (Ethernet, IPv4 and IPv6, TCP with SYN/ACK/data,
UDP with DNS-sized and bulk payloads, frame lengths from 60 to 1514 bytes) but carries
zero payload bytes; it is meant for counting speed, not dissection accuracy.

    python bench/gen_capture.py OUT.pcap [--packets 1000000] [--flows 5000] [--seed 1]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np


def generate(path: Path, packets: int, flows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n = packets
    flow = rng.integers(0, flows, n)
    f_v6 = rng.random(flows) < 0.2
    f_udp = rng.random(flows) < 0.3
    f_src = rng.integers(0x0A000001, 0x0AFFFFFE, flows, dtype=np.uint32)
    f_dst = rng.integers(0xC0A80001, 0xC0A8FFFE, flows, dtype=np.uint32)
    f_sport = rng.integers(1024, 65535, flows, dtype=np.uint16)
    f_dport = np.where(f_udp, rng.choice(np.array([53, 123], np.uint16), flows),
                       rng.choice(np.array([80, 443, 22, 8080], np.uint16), flows))
    reply = rng.random(n) < 0.45
    v6 = f_v6[flow]
    udp = f_udp[flow]
    l4len = np.where(udp, 8, 20)
    iphl = np.where(v6, 40, 20)
    payload = np.minimum(rng.choice(np.array([0, 0, 40, 120, 512, 1200, 1460]), n),
                         1500 - iphl - l4len)
    caplen = (14 + iphl + l4len + payload).astype(np.int64)
    # records: 16-byte header + frame
    rec = 16 + caplen
    offs = np.concatenate([[24], 24 + np.cumsum(rec)[:-1]]).astype(np.int64)
    total = int(offs[-1] + rec[-1])
    buf = np.zeros(total, np.uint8)
    buf[:24] = np.frombuffer(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1), np.uint8)
    ts = 1_700_000_000_000_000 + np.sort(rng.integers(0, 120_000_000, n))  # 2 minutes, µs

    def put32le(pos: np.ndarray, val: np.ndarray) -> None:
        v = val.astype(np.uint32)
        for i in range(4):
            buf[pos + i] = (v >> (8 * i)) & 0xFF

    def put16be(pos: np.ndarray, val: np.ndarray) -> None:
        v = val.astype(np.uint32)
        buf[pos] = (v >> 8) & 0xFF
        buf[pos + 1] = v & 0xFF

    def put32be(pos: np.ndarray, val: np.ndarray) -> None:
        v = val.astype(np.uint64)
        for i in range(4):
            buf[pos + i] = (v >> np.uint64(8 * (3 - i))) & np.uint64(0xFF)

    put32le(offs, ts // 1_000_000)
    put32le(offs + 4, ts % 1_000_000)
    put32le(offs + 8, caplen)
    put32le(offs + 12, caplen)
    f = offs + 16
    buf[f] = 0x02
    buf[f + 6] = 0x02
    buf[f + 5] = (flow & 0xFF).astype(np.uint8)
    put16be(f + 12, np.where(v6, 0x86DD, 0x0800))
    ip = f + 14
    src = np.where(reply, f_dst[flow], f_src[flow])
    dst = np.where(reply, f_src[flow], f_dst[flow])
    sport = np.where(reply, f_dport[flow], f_sport[flow])
    dport = np.where(reply, f_sport[flow], f_dport[flow])
    proto = np.where(udp, 17, 6)
    m4 = ~v6
    p4 = ip[m4]
    buf[p4] = 0x45
    put16be(p4 + 2, (caplen - 14)[m4])
    buf[p4 + 8] = rng.choice(np.array([64, 63, 128, 255], np.uint8), int(m4.sum()))
    buf[p4 + 9] = proto[m4]
    put32be(p4 + 12, src[m4])
    put32be(p4 + 16, dst[m4])
    p6 = ip[v6]
    buf[p6] = 0x60
    put16be(p6 + 4, (caplen - 14 - 40)[v6])
    buf[p6 + 6] = proto[v6]
    buf[p6 + 7] = 64
    buf[p6 + 8] = 0xFD
    put32be(p6 + 20, src[v6])
    buf[p6 + 24] = 0xFD
    put32be(p6 + 36, dst[v6])
    l4 = ip + iphl
    put16be(l4, sport)
    put16be(l4 + 2, dport)
    t = ~udp
    # sequence numbers advance with the payload, per flow and direction
    fd = flow.astype(np.int64) * 2 + reply
    order = np.argsort(fd, kind="stable")
    pay = payload[order].astype(np.int64)
    cum = np.cumsum(pay) - pay
    first = np.ones(n, bool)
    first[1:] = fd[order][1:] != fd[order][:-1]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    before = np.empty(n, np.int64)
    before[order] = cum - cum[grp_start]
    isn = rng.integers(0, 2**32, flows * 2, dtype=np.uint64)
    seq = (isn[fd] + before.astype(np.uint64)) & np.uint64(0xFFFFFFFF)
    put32be(l4[t] + 4, seq[t])
    buf[l4[t] + 12] = 0x50
    put16be(l4[t] + 14, np.full(int(t.sum()), 0xFFFF))  # window
    buf[l4[t] + 13] = np.where(payload[t] > 0, 0x18, 0x10).astype(np.uint8)
    u = udp
    put16be(l4[u] + 4, 8 + payload[u])
    path.write_bytes(buf.tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--flows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    generate(a.out, a.packets, a.flows, a.seed)
    print(f"wrote {a.out} ({a.packets} packets)")


if __name__ == "__main__":
    main()
