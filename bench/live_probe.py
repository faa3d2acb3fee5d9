"""Live capture throughput on a veth pair: the highest rate with zero loss.

    .venv/bin/python bench/live_probe.py [--rates 100000,200000,...] [--seconds 3]

Needs root (it builds two network namespaces with tests/fixtures/netns.py and deletes them
at the end). For each rate:

* a sender in host ``b`` writes pre-built Ethernet/IPv4/UDP frames (60 bytes, 1024 flows)
  to its veth end through an AF_PACKET socket, paced in 1 ms bursts, for ``--seconds``;
  the destination MAC is not ``a``'s, so ``a``'s kernel drops the frames right after the
  capture tap and only the capture costs CPU;
* a capture process in host ``a`` runs :class:`~netwarden.sensor.live.LiveSource` and the
  :class:`~netwarden.sensor.accountant.Accountant` (flushing every second) until the
  frames stop, and reports what it got, the kernel drops, its CPU seconds (all, and the
  accounting part alone) and its peak resident memory.

A rate counts as lossless when the capture accounted every frame the sender sent and the
kernel dropped none. The sender shares the machine's two cores with the capture: at the
top rates the sender (and the kernel's veth work it pays for) is the limit, which the
"achieved" column shows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FLOWS = 1024
DST_MAC = bytes.fromhex("020000000099")  # nobody's: a's kernel drops after the tap


def _frames(src_mac: bytes) -> list[bytes]:
    out = []
    for i in range(FLOWS):
        payload = bytes(18)
        udp = struct.pack("!HHHH", 10000 + i, 9000, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         socket.inet_aton("10.231.1.2"), socket.inet_aton("10.231.1.1"))
        out.append(DST_MAC + src_mac + b"\x08\x00" + ip + udp)
    return out


def send(ifname: str, rate: int, seconds: float) -> dict[str, Any]:
    """Send ``rate`` frames/s for ``seconds`` (paced in 1 ms bursts); what was sent."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
    frames = _frames(bytes.fromhex(mac.replace(":", "")))
    total = int(rate * seconds)
    per_ms = max(1, rate // 1000)
    sent = 0
    push = s.send
    start = time.perf_counter()
    while sent < total:
        burst = min(per_ms, total - sent)
        for i in range(sent, sent + burst):
            try:
                push(frames[i & (FLOWS - 1)])
            except BlockingIOError:  # queue full: retry once later
                time.sleep(0.0001)
                push(frames[i & (FLOWS - 1)])
        sent += burst
        due = start + sent / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    took = time.perf_counter() - start
    return {"sent": sent, "seconds": took, "achieved": sent / took}


def capture(ifname: str, idle_s: float, limit_s: float, min_packets: int) -> dict[str, Any]:
    """Capture + account until nothing arrives for ``idle_s`` after the first frame;
    reads return once ``min_packets`` are in (or after ``idle_s``)."""
    from netwarden.sensor.accountant import Accountant
    from netwarden.sensor.live import LiveSource

    acc = Accountant("a", interval_s=1)
    src = LiveSource([ifname], bpf="udp dst port 9000", buffer_mb=64)
    src.start()
    print("READY", flush=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    accounted = 0
    acc_cpu = 0.0
    seen_any = False
    end = time.monotonic() + limit_s
    last_flush = time.monotonic()
    while time.monotonic() < end:
        b = src.read(idle_s if seen_any else 5.0, min_packets=min_packets)
        if b is None:
            if seen_any:
                break
            continue
        seen_any = True
        t = time.process_time()
        acc.add(b)
        if time.monotonic() - last_flush >= 1.0:
            out = acc.flush(time.time_ns())
            accounted += int(out.stats["packets"].sum())
            last_flush = time.monotonic()
        acc_cpu += time.process_time() - t
    t = time.process_time()
    accounted += int(acc.flush().stats["packets"].sum())
    acc_cpu += time.process_time() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stats = src.stats()
    src.stop()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"accounted": accounted, "delivered": stats.delivered, "received": stats.received,
            "dropped": stats.dropped, "cpu_s": cpu, "accounting_cpu_s": acc_cpu,
            "peak_rss_mb": r1.ru_maxrss / 1024}


def probe(rates: list[int], seconds: float, min_packets: int, idle_s: float
          ) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures.netns import Topology  # the test fixture builds the hosts

    rows = []
    with Topology(["a", "b"]) as topo:
        link = topo.link("a", "b")
        me = str(Path(__file__).resolve())
        for rate in rates:
            cap = topo.popen("a", [sys.executable, me, "_capture", link.ifname("a"),
                                   str(idle_s), str(min_packets)])
            assert cap.stdout is not None
            if cap.stdout.readline().strip() != "READY":
                raise SystemExit(f"capture did not start: {cap.communicate()[1]}")
            sent = json.loads(topo.run("b", [sys.executable, me, "_send", link.ifname("b"),
                                             str(rate), str(seconds)],
                                       timeout=seconds * 10 + 30).stdout)
            out, err = cap.communicate(timeout=seconds * 10 + 30)
            if cap.returncode != 0:
                raise SystemExit(f"capture failed: {err}")
            got = json.loads(out)
            n = max(got["accounted"], 1)
            row = {"rate": rate, **sent, **got,
                   "lost": sent["sent"] - got["accounted"],
                   "cpu_s_per_M": got["cpu_s"] / n * 1e6,
                   "accounting_cpu_s_per_M": got["accounting_cpu_s"] / n * 1e6}
            rows.append(row)
            print(f"target {rate:>8,}/s  achieved {sent['achieved']:>10,.0f}/s  "
                  f"sent {sent['sent']:>9,}  accounted {got['accounted']:>9,}  "
                  f"kernel drops {got['dropped']:>7,}  "
                  f"CPU {row['cpu_s_per_M']:.2f} s/M (accounting "
                  f"{row['accounting_cpu_s_per_M']:.2f})  peak RSS {got['peak_rss_mb']:.0f} MB",
                  flush=True)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        print(json.dumps(send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_capture":
        print(json.dumps(capture(sys.argv[2], idle_s=float(sys.argv[3]), limit_s=120.0,
                                 min_packets=int(sys.argv[4]))), flush=True)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="100000,200000,300000,400000,500000,600000,800000")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--min-packets", type=int, default=50000,
                   help="LiveSource.read(min_packets=...): batch size the capture waits for")
    p.add_argument("--idle", type=float, default=0.5,
                   help="read timeout; the capture ends after one idle read")
    p.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    a = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("live_probe needs root (network namespaces)")
    rows = probe([int(r) for r in a.rates.split(",")], a.seconds, a.min_packets, a.idle)
    ok = [r for r in rows if r["lost"] == 0 and r["dropped"] == 0]
    # a rate counts when the sender really reached it (within 5 %)
    real = [r for r in ok if r["achieved"] >= 0.95 * r["rate"]]
    best = max(real, key=lambda r: r["rate"]) if real else None
    print(f"highest rate with zero loss: {best['rate']:,} packets/s" if best
          else "no rate without loss")
    if a.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
