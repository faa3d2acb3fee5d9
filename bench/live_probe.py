"""Live capture on a veth pair: the highest rate with zero loss, CPU and memory.

    .venv/bin/python bench/live_probe.py [--rates 100000,200000,...] [--seconds 3]
                                         [--repeat 3] [--sensor-rate 100000] [--json]

Needs root: it builds two network namespaces (:mod:`netwarden.netns`, prefix ``nwb-``) and
deletes them at the end. Two measurements:

**The accounting path, a ladder of rates** (:func:`ladder`). For each rate, lowest first:

* a sender in host ``b`` writes pre-built Ethernet/IPv4/UDP frames (60 bytes, 1024 flows)
  to its veth end through an AF_PACKET socket, paced in 1 ms bursts, for ``--seconds``;
  the destination MAC is not ``a``'s, so ``a``'s kernel drops the frames right after the
  capture tap and only the capture costs CPU;
* a capture process in host ``a`` runs :class:`~netwarden.sensor.live.LiveSource` and the
  :class:`~netwarden.sensor.accountant.Accountant` (flushing every second) the way the
  sensor agent does (reads return what is ready: ``min_packets`` 1), until the frames
  stop, and reports what it accounted, the kernel drops, its CPU seconds (the whole
  process, and the accounting part alone: ``Accountant.add`` and ``flush``) and its peak
  resident memory.

A rate is lossless when the capture accounted every frame sent and the kernel dropped
none; the ladder stops at the first rate with a loss, or that the sender could not reach
(within 5 %: the sender shares the machine's two cores with the capture, so at the top it
may be the limit, which the "achieved" column shows; the rate it did reach then counts,
if nothing was lost). With ``--repeat`` the ladder runs
several times: the figure is the median of the highest lossless rates, and of the
figures at 100 k packets/s.

**The whole sensor** (:func:`whole_sensor`): ``netwarden sensor run`` (default settings:
10 s intervals, protocol dissection with tshark sampling above 20 k packets/s) captures in
``a`` and streams to ``netwarden collector serve`` in ``b``, while ``b`` sends
``--sensor-rate`` frames/s for ``--sensor-seconds``. Its resident memory is sampled every
0.1 s (the sensor process, its tshark children, and both together); its CPU includes its
children; the packets it counted and the kernel drops are read back from the store. It
runs ``--repeat`` times too (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ME = str(Path(__file__).resolve())
NETWARDEN = Path(sys.executable).with_name("netwarden")
FLOWS = 1024
DST_MAC = bytes.fromhex("020000000099")  # nobody's: a's kernel drops after the tap
BPF = "udp dst port 9000"
DEFAULT_RATES = "100000,200000,300000,400000,500000,600000,800000,1000000,1200000,1500000"
COLLECTOR_PORT = 50051


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
    src = LiveSource([ifname], bpf=BPF, buffer_mb=64)
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


def _probe_rate(topo: Any, link: Any, rate: int, seconds: float, min_packets: int,
                idle_s: float) -> dict[str, Any]:
    cap = topo.popen("a", [sys.executable, ME, "_capture", link.ifname("a"), str(idle_s),
                           str(min_packets)])
    assert cap.stdout is not None
    if cap.stdout.readline().strip() != "READY":
        raise SystemExit(f"capture did not start: {cap.communicate()[1]}")
    sent = json.loads(topo.run("b", [sys.executable, ME, "_send", link.ifname("b"), str(rate),
                                     str(seconds)], timeout=seconds * 10 + 30).stdout)
    out, err = cap.communicate(timeout=seconds * 10 + 30)
    if cap.returncode != 0:
        raise SystemExit(f"capture failed: {err}")
    got = json.loads(out)
    n = max(got["accounted"], 1)
    lost = sent["sent"] - got["accounted"]
    return {"rate": rate, **sent, **got, "lost": lost,
            "lossless": lost == 0 and got["dropped"] == 0,
            "reached": sent["achieved"] >= 0.95 * rate,
            "cpu_s_per_M": got["cpu_s"] / n * 1e6,
            "accounting_cpu_s_per_M": got["accounting_cpu_s"] / n * 1e6}


def _row_line(row: dict[str, Any]) -> str:
    return (f"  target {row['rate']:>9,}/s  achieved {row['achieved']:>9,.0f}/s  "
            f"sent {row['sent']:>9,}  accounted {row['accounted']:>9,}  "
            f"kernel drops {row['dropped']:>6,}  CPU {row['cpu_s_per_M']:.2f} s/M "
            f"(accounting {row['accounting_cpu_s_per_M']:.2f})  "
            f"peak RSS {row['peak_rss_mb']:.0f} MB")


def ladder(rates: list[int], seconds: float, *, min_packets: int = 1, idle_s: float = 0.5,
           verbose: bool = True) -> dict[str, Any]:
    """One ladder (see the module doc): every rate's row; ``best``, the highest rate
    captured without loss (the rate really sent when the sender fell short; ``None`` when
    even the first lost packets); ``limit``, what stopped the ladder: ``"loss"``,
    ``"sender"`` or ``"end"``."""
    from netwarden.netns import Topology

    rows: list[dict[str, Any]] = []
    best: int | None = None
    limit = "end"
    with Topology(["a", "b"], prefix="nwb-") as topo:
        link = topo.link("a", "b")
        for rate in sorted(rates):
            row = _probe_rate(topo, link, rate, seconds, min_packets, idle_s)
            rows.append(row)
            if verbose:
                print(_row_line(row), flush=True)
            if not row["lossless"]:
                limit = "loss"
                break
            best = max(best or 0, rate if row["reached"] else int(row["achieved"]))
            if not row["reached"]:
                limit = "sender"
                break
    return {"rows": rows, "best": best, "limit": limit}


def _tree(pid: int) -> tuple[float, float, float]:
    """(RSS of ``pid``, RSS of its descendants, CPU s of it and its children), MB/s."""
    import psutil

    p = psutil.Process(pid)
    own = p.memory_info().rss / 2**20
    kids = 0.0
    kids_cpu = 0.0
    for c in p.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            kids += c.memory_info().rss / 2**20
            t = c.cpu_times()
            kids_cpu += t.user + t.system
    t = p.cpu_times()
    return own, kids, t.user + t.system + t.children_user + t.children_system + kids_cpu


def _wait_log(log: Path, needle: str, proc: subprocess.Popen[str], what: str,
              timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in log.read_text(encoding="utf-8", errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise SystemExit(f"{what} did not start:\n{tail}")
        time.sleep(0.05)


def whole_sensor(rate: int, seconds: float, *, verbose: bool = True) -> dict[str, Any]:
    """``netwarden sensor run`` at ``rate`` frames/s for ``seconds`` (see the module doc)."""
    from netwarden.collector.store import open_store
    from netwarden.netns import Topology

    with tempfile.TemporaryDirectory(prefix="nw-bench-sensor.") as tmp, \
            Topology(["a", "b"], prefix="nwb-") as topo:
        link = topo.link("a", "b")
        logs = Path(tmp)
        store = logs / "store"
        col_log = (logs / "collector.log").open("w")
        sen_log = (logs / "sensor.log").open("w")
        collector = topo.popen("b", [str(NETWARDEN), "collector", "serve", "--listen",
                                     f"{link.addr('b')}:{COLLECTOR_PORT}", "--store",
                                     str(store)], stdout=col_log, stderr=col_log)
        sensor = topo.popen("a", [str(NETWARDEN), "sensor", "run", "--host", "a",
                                  "--interface", link.ifname("a"), "--bpf", BPF,
                                  "--collector", f"{link.addr('b')}:{COLLECTOR_PORT}"],
                            stdout=sen_log, stderr=sen_log)
        _wait_log(logs / "collector.log", "collector listening", collector, "the collector")
        _wait_log(logs / "sensor.log", "connected to the collector", sensor, "the sensor")
        _, _, cpu0 = _tree(sensor.pid)
        sender = topo.popen("b", [sys.executable, ME, "_send", link.ifname("b"), str(rate),
                                  str(seconds)])
        peak_own = peak_kids = peak_all = 0.0
        cpu1 = cpu0
        quiet_until: float | None = None
        while True:  # sample until the sender is done and 2 s more
            own, kids, cpu1 = _tree(sensor.pid)
            peak_own, peak_kids = max(peak_own, own), max(peak_kids, kids)
            peak_all = max(peak_all, own + kids)
            if quiet_until is None and sender.poll() is not None:
                quiet_until = time.monotonic() + 2.0
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
            time.sleep(0.1)
        out, err = sender.communicate()
        if sender.returncode != 0:
            raise SystemExit(f"sender failed: {err}")
        sent = json.loads(out)
        sensor.send_signal(signal.SIGTERM)
        sensor.wait(60)
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
        col_log.close()
        sen_log.close()
        s = open_store(str(store))
        s.start(migrate=False)
        try:
            packets, dropped, not_dissected = (int(v) for v in s.query(
                "SELECT sum(packets), sum(dropped), sum(not_dissected) FROM capture_stats")[0])
        finally:
            s.stop(flush=False)
    n = max(packets, 1)
    row = {"rate": rate, **sent, "stored_packets": packets, "kernel_dropped": dropped,
           "not_dissected": not_dissected, "lost": sent["sent"] - packets,
           "cpu_s": cpu1 - cpu0, "cpu_s_per_M": (cpu1 - cpu0) / n * 1e6,
           "peak_rss_sensor_mb": peak_own, "peak_rss_tshark_mb": peak_kids,
           "peak_rss_total_mb": peak_all}
    if verbose:
        print(f"  whole sensor at {rate:,}/s for {seconds:g} s: sent {sent['sent']:,}, "
              f"stored {packets:,} (kernel drops {dropped:,}, not dissected {not_dissected:,}),"
              f" CPU {row['cpu_s_per_M']:.2f} s/M with tshark, peak RSS {peak_own:.0f} MB "
              f"sensor + {peak_kids:.0f} MB tshark (together {peak_all:.0f} MB)", flush=True)
    return row


def summarise(ladders: list[dict[str, Any]], at: int = 100_000) -> dict[str, Any]:
    """Medians over ladders: highest lossless rate, and the figures of the ``at`` rows."""
    bests = [lad["best"] or 0 for lad in ladders]
    rows = [r for lad in ladders for r in lad["rows"] if r["rate"] == at and r["lossless"]]

    def med(key: str) -> float | None:
        return statistics.median(r[key] for r in rows) if rows else None

    return {"best": statistics.median(bests), "bests": bests,
            "limits": [lad["limit"] for lad in ladders], "at": at,
            "cpu_s_per_M": med("cpu_s_per_M"),
            "accounting_cpu_s_per_M": med("accounting_cpu_s_per_M"),
            "peak_rss_mb": med("peak_rss_mb")}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_send":
        print(json.dumps(send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_capture":
        print(json.dumps(capture(sys.argv[2], idle_s=float(sys.argv[3]), limit_s=120.0,
                                 min_packets=int(sys.argv[4]))), flush=True)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default=DEFAULT_RATES, help="the ladder, packets/s")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per rate")
    p.add_argument("--repeat", type=int, default=1,
                   help="ladders and whole-sensor runs (medians)")
    p.add_argument("--min-packets", type=int, default=1,
                   help="LiveSource.read(min_packets=...); 1 is what the sensor agent does")
    p.add_argument("--sensor-rate", type=int, default=100_000,
                   help="rate of the whole-sensor run; 0 skips it")
    p.add_argument("--sensor-seconds", type=float, default=12.0)
    p.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    a = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("live_probe needs root (network namespaces)")
    rates = [int(r) for r in a.rates.split(",")]
    ladders = []
    for i in range(a.repeat):
        print(f"ladder {i + 1}/{a.repeat}:", flush=True)
        ladders.append(ladder(rates, a.seconds, min_packets=a.min_packets))
    summary = summarise(ladders)
    print(f"highest rate with zero loss: {summary['best']:,.0f} packets/s "
          f"(ladders: {', '.join(f'{b:,}' for b in summary['bests'])}; stopped by: "
          f"{', '.join(summary['limits'])})")
    sensors = [whole_sensor(a.sensor_rate, a.sensor_seconds)
               for _ in range(a.repeat if a.sensor_rate else 0)]
    sensor = {k: statistics.median(r[k] for r in sensors) for k in sensors[0]} \
        if sensors else None
    if sensor is not None and a.repeat > 1:
        print(f"  whole sensor, medians: CPU {sensor['cpu_s_per_M']:.2f} s/M, peak RSS "
              f"{sensor['peak_rss_sensor_mb']:.0f} MB sensor, "
              f"{sensor['peak_rss_total_mb']:.0f} MB with tshark", flush=True)
    if a.json:
        print(json.dumps({"ladders": ladders, "summary": summary, "sensors": sensors,
                          "sensor": sensor}))


if __name__ == "__main__":
    main()
