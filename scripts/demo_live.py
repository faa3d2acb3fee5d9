"""The live demo (``make demo``): sensors on two hosts, a collector, real traffic, reports.

    .venv/bin/python scripts/demo_live.py [--bulk-mb 8]

Needs root: it builds three private network namespaces (:mod:`netwarden.netns`) and
deletes them at the end, also on Ctrl-C or failure:

* ``server`` runs a web server (HTTP, port 80), a DNS server for ``demo.test`` (port 53)
  and a bulk-upload sink (TCP port 5001), on IPv4 and IPv6;
* ``client`` looks names up, fetches a few pages and files, and uploads a bulk file, over
  IPv4 and then IPv6;
* ``hub`` runs ``netwarden collector serve`` on an embedded (chdb) store in a new
  temporary directory.

``server`` and ``client`` are joined by a veth pair, and each has a link of its own to
``hub``. A ``netwarden sensor run`` on each of the two hosts captures the server-client
link (not the hub link its records travel on) and streams 1 s flow records to the
collector. Once the traffic is done the sensors are stopped (they flush and deliver
everything) and the demo prints ``netwarden report ... --collector`` answers. The store is
kept, so more reports can be run on it afterwards with ``--store``.

The traffic tools (``_servers``, ``_client``) are sub-commands of this script, run inside
the namespaces; they use the standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import http.server
import json
import random
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from netwarden.minidns import (
    DNS_PORT,
    QTYPE_A,
    QTYPE_AAAA,
    QTYPE_NAMES,
    dns_answer,
    dns_resolve,
)
from netwarden.netns import Link, NetnsError, Topology, unavailable_reason

NETWARDEN = Path(sys.executable).with_name("netwarden")
ME = str(Path(__file__).resolve())
ZONE = "demo.test"
WEB_NAME = f"www.{ZONE}"
MISSING_NAME = f"ftp.{ZONE}"
HTTP_PORT = 80
BULK_PORT = 5001
COLLECTOR_PORT = 50051
PAGES = ("/", "/notes.txt", "/download.bin")
START_TIMEOUT_S = 90.0

# ---------------------------------------------------------------------------------------
# the server host: HTTP, DNS and a bulk sink, until SIGTERM


class _DualStackHTTP(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"http: {self.address_string()} {format % args}\n")


class _Sink(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        total = 0
        while data := self.request.recv(1 << 16):
            total += len(data)
        sys.stderr.write(f"bulk: {self.client_address[0]} sent {total} bytes\n")


class _DualStackTCP(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _dns_loop(sockets: list[socket.socket], zone: dict[str, dict[int, list[str]]]) -> None:
    while True:
        ready, _, _ = select.select(sockets, [], [])
        for s in ready:
            query, peer = s.recvfrom(4096)
            reply = dns_answer(query, zone)
            if reply is not None:
                s.sendto(reply, peer)


def serve(www: Path, v4: str, v6: str) -> None:
    """HTTP on port 80, DNS on 53 (``www.demo.test`` is ``v4``/``v6``), a bulk sink on 5001."""
    zone = {WEB_NAME: {QTYPE_A: [v4], QTYPE_AAAA: [v6]}, ZONE: {}}
    web = _DualStackHTTP(("::", HTTP_PORT), functools.partial(_QuietHandler, directory=str(www)))
    sink = _DualStackTCP(("::", BULK_PORT), _Sink)
    dns = []
    for family, addr in ((socket.AF_INET, v4), (socket.AF_INET6, v6)):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((addr, DNS_PORT))
        dns.append(s)
    for target in (web.serve_forever, sink.serve_forever, lambda: _dns_loop(dns, zone)):
        threading.Thread(target=target, daemon=True).start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


# ---------------------------------------------------------------------------------------
# the client host: look up, fetch, upload; prints what it did as JSON


def _fetch_all(addr: str, paths: Sequence[str]) -> dict[str, int]:
    """GET every path, a moment after connecting, as a browser does (and a connection
    that lives long enough for the sensor's process scan to see its socket)."""
    out = {}
    for path in paths:
        conn = http.client.HTTPConnection(addr, HTTP_PORT, timeout=10)
        try:
            conn.connect()
            time.sleep(0.15)
            conn.request("GET", path, headers={"Host": WEB_NAME})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET http://{WEB_NAME}{path}: HTTP {resp.status}")
            out[path] = len(body)
        finally:
            conn.close()
    return out


def _upload(addr: str, nbytes: int) -> int:
    block = random.randbytes(1 << 16)
    with socket.create_connection((addr, BULK_PORT), timeout=20) as s:
        time.sleep(0.2)  # the client prepares its upload
        left = nbytes
        while left > 0:
            left -= s.send(block[:min(left, len(block))])
        s.shutdown(socket.SHUT_WR)
        while s.recv(1 << 16):
            pass
    return nbytes


def client(dns4: str, dns6: str, bulk_bytes: int) -> dict[str, Any]:
    """Over IPv4, then IPv6: resolve www.demo.test, fetch the pages, upload ``bulk_bytes``."""
    out: dict[str, Any] = {}
    for version, dns, qtype in ((4, dns4, QTYPE_A), (6, dns6, QTYPE_AAAA)):
        addrs = dns_resolve(dns, WEB_NAME, qtype)
        if not addrs:
            raise RuntimeError(f"{WEB_NAME} has no {QTYPE_NAMES[qtype]} record")
        missing = dns_resolve(dns, MISSING_NAME, qtype)
        fetched = _fetch_all(addrs[0], PAGES)
        time.sleep(0.4)
        uploaded = _upload(addrs[0], bulk_bytes)
        out[f"ipv{version}"] = {"dns_server": dns, "qtype": QTYPE_NAMES[qtype],
                                "address": addrs[0], "missing": missing,
                                "fetched": fetched, "uploaded": uploaded}
        time.sleep(0.6)
    return out


# ---------------------------------------------------------------------------------------
# the demo


class DemoError(Exception):
    """A step of the demo failed (the message says which, and where its log is)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in text[-lines:])


def wait_log(proc: subprocess.Popen[str], log: Path, needle: str, what: str,
             timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until ``needle`` appears in ``log``; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            if needle in log.read_text(encoding="utf-8", errors="replace"):
                return
        if proc.poll() is not None:
            raise DemoError(f"{what} exited ({proc.returncode}) before it was ready; "
                            f"{log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise DemoError(f"{what} not ready after {timeout_s:.0f} s; {log}:\n{_tail(log)}")
        time.sleep(0.05)


def wait_ready(proc: subprocess.Popen[str], what: str, log: Path) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "READY":
        proc.wait(5)
        raise DemoError(f"{what} did not start; {log}:\n{_tail(log)}")


def stop(proc: subprocess.Popen[str] | None, timeout_s: float) -> int | None:
    """SIGTERM ``proc`` and wait (SIGKILL after ``timeout_s``); its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def write_site(www: Path) -> None:
    www.mkdir()
    (www / "index.html").write_text(
        "<!doctype html><title>demo.test</title>\n<h1>Hello from the server namespace</h1>\n"
        + "".join(f'<p><a href="{p}">{p}</a></p>\n' for p in PAGES[1:]), encoding="utf-8")
    line = "netwarden counts every frame on the wire, to the byte.\n"
    (www / "notes.txt").write_text(line * 600, encoding="utf-8")
    (www / "download.bin").write_bytes(random.Random(3).randbytes(400_000))


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB" if n >= 1000 else f"{n} B"


REPORTS: tuple[tuple[str, str, list[str]], ...] = (
    ("Top talkers",
     "Addresses by bytes sent plus received, as the server's sensor saw them.",
     ["talkers", "--host", "server"]),
    ("Top ports",
     "TCP/UDP ports by bytes: HTTP (80), the bulk upload (5001), DNS (53), and the client's "
     "ephemeral ports.",
     ["ports", "--top", "20", "--host", "server"]),
    ("TCP conversations",
     "One row per connection and per sensor: both hosts saw the same packets, so their "
     "rows agree. (veth hands over segments of up to 64 kB, so a bulk upload of megabytes "
     "is a few hundred frames.)",
     ["conversations", "--kind", "tcp"]),
    ("UDP conversations",
     "The DNS lookups (one conversation per query socket), per sensor.",
     ["conversations", "--kind", "udp"]),
    ("Protocol hierarchy",
     "What the frames carried, as tshark names it (the client's sensor).",
     ["protocols", "--host", "client"]),
    ("Traffic over time",
     "Frames and bytes per second on the server-client link (the server's sensor).",
     ["io", "--interval", "1", "--host", "server"]),
    ("Apps",
     "App labels (the client's sensor): traffic with www.demo.test's addresses is "
     "labelled from the DNS answer they came from (no rule names demo.test, so the app is "
     "the domain; the name server shares the address).",
     ["apps", "--host", "client"]),
    ("Processes",
     "The local process owning each socket, found by each sensor in /proc: the client "
     "and the servers named themselves demo-client and demo-servers.",
     ["processes"]),
)


class Demo:
    """Owns the namespaces, the processes and the temporary directory of one run."""

    def __init__(self, bulk_bytes: int) -> None:
        self.bulk_bytes = bulk_bytes
        self.dir = Path(tempfile.mkdtemp(prefix="netwarden-live-demo."))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.store = self.dir / "store"
        self.page: Path | None = None  # report all --html, once written
        self.topo: Topology | None = None
        self.collector: subprocess.Popen[str] | None = None
        self.sensors: dict[str, subprocess.Popen[str]] = {}
        self.servers: subprocess.Popen[str] | None = None
        self._files: list[IO[str]] = []

    def _start(self, host: str, argv: Sequence[str], log_name: str,
               stdout_pipe: bool = False) -> subprocess.Popen[str]:
        assert self.topo is not None
        log = (self.logs / log_name).open("w", encoding="utf-8")
        self._files.append(log)
        # a session of its own: Ctrl-C reaches only the demo, which stops everything
        return self.topo.popen(host, argv, stdout=subprocess.PIPE if stdout_pipe else log,
                               stderr=log, start_new_session=True)

    def run(self) -> int:
        """The whole demo; 0 when every step and report worked (else DemoError)."""
        t0 = time.monotonic()
        say("netwarden live demo: two hosts with sensors, a collector, real traffic.\n")
        lan, uplinks = self._topology()
        say("[1/4] starting the collector and the two sensors ...")
        self._start_fleet(lan, uplinks)
        say(f"      collector listening on :{COLLECTOR_PORT}, both sensors connected "
            f"({time.monotonic() - t0:.1f} s)")
        say("[2/4] generating traffic between client and server ...")
        self._traffic(lan)
        say("[3/4] stopping the sensors (they flush their last intervals and deliver "
            "them) ...")
        self._stop_sensors()
        say(f"      every record is stored ({time.monotonic() - t0:.1f} s)")
        say("[4/4] reports, asked from the collector (netwarden report ... --collector "
            f"127.0.0.1:{COLLECTOR_PORT}, run inside hub)")
        failed = self._reports()
        code = stop(self.collector, 30.0)
        self.collector = None
        say(f"\nDone in {time.monotonic() - t0:.0f} s (the namespaces are deleted on exit). "
            f"Logs: {self.logs}")
        say(f"The store is kept: netwarden report talkers --store {self.store}")
        if self.page is not None:
            say(f"Every report with its chart, in one page: {self.page}")
        if failed:
            raise DemoError(f"reports failed: {', '.join(failed)}; see "
                            f"{self.logs / 'collector.log'}")
        if code != 0:
            raise DemoError(f"the collector exited {code}; {self.logs / 'collector.log'}:\n"
                            f"{_tail(self.logs / 'collector.log')}")
        return 0

    def _topology(self) -> tuple[Link, dict[str, Link]]:
        """The three hosts; the server-client link and each host's link to hub."""
        topo = self.topo = Topology(["server", "client", "hub"], prefix="nwd-")
        lan = topo.link("server", "client")
        uplinks = {"server": topo.link("hub", "server"), "client": topo.link("hub", "client")}
        say("Three network namespaces (private to this demo, deleted at the end):")
        say(f"  server  {lan.addr('server', 4)}  {lan.addr('server', 6)}  web (HTTP "
            f":{HTTP_PORT}), DNS for {ZONE} (:{DNS_PORT}), bulk sink (:{BULK_PORT})")
        say(f"  client  {lan.addr('client', 4)}  {lan.addr('client', 6)}  looks up, fetches "
            "pages, uploads a file")
        say(f"  hub     {uplinks['server'].addr('hub')}, {uplinks['client'].addr('hub')}  the "
            f"collector, embedded store in {self.store}")
        say("A sensor on server and on client captures their shared link and streams 1 s "
            "flow records to the collector over its own link.\n")
        return lan, uplinks

    def _start_fleet(self, lan: Link, uplinks: dict[str, Link]) -> None:
        """The collector in hub, a sensor in server and client; wait until connected."""
        self.collector = self._start("hub", [
            str(NETWARDEN), "collector", "serve", "--listen", f"0.0.0.0:{COLLECTOR_PORT}",
            "--store", str(self.store)], "collector.log")
        cfg = self.dir / "sensor.toml"
        cfg.write_text("[sensor]\ninterval_s = 1\nflush_delay_s = 0.5\n\n[transport]\n"
                       "backoff_initial_s = 0.2\nbackoff_max_s = 1.0\nstop_timeout_s = 15.0\n",
                       encoding="utf-8")
        for host, uplink in uplinks.items():
            self.sensors[host] = self._start(host, [
                str(NETWARDEN), "sensor", "run", "--config", str(cfg), "--host", host,
                "--interface", lan.ifname(host),
                "--collector", f"{uplink.addr('hub')}:{COLLECTOR_PORT}"], f"sensor-{host}.log")
        wait_log(self.collector, self.logs / "collector.log", "collector listening",
                 "the collector")
        for host, proc in self.sensors.items():
            wait_log(proc, self.logs / f"sensor-{host}.log", "connected to the collector",
                     f"the sensor on {host}")

    def _traffic(self, lan: Link) -> None:
        """The servers in server, the client's run in client; say what it did."""
        assert self.topo is not None
        s4, s6 = lan.addr("server", 4), lan.addr("server", 6)
        www = self.dir / "www"
        write_site(www)
        self.servers = self._start("server", [sys.executable, ME, "_servers", str(www), s4, s6],
                                   "servers.log", stdout_pipe=True)
        wait_ready(self.servers, "the servers", self.logs / "servers.log")
        got = self.topo.run("client", [sys.executable, ME, "_client", s4, s6,
                                       str(self.bulk_bytes)], timeout=120)
        did = json.loads(got.stdout)
        for version in ("ipv4", "ipv6"):
            d = did[version]
            fetched = ", ".join(f"{p} ({_size(n)})" for p, n in d["fetched"].items())
            say(f"      {version}: DNS {d['qtype']} {WEB_NAME} -> {d['address']} (asked "
                f"{d['dns_server']}; {MISSING_NAME}: "
                f"{'no such name' if not d['missing'] else d['missing']}); "
                f"HTTP GET {fetched}; bulk upload {_size(d['uploaded'])} to :{BULK_PORT}")
        time.sleep(1.0)  # let the captures read the last frames

    def _stop_sensors(self) -> None:
        """SIGTERM: each sensor flushes and exits 0 once the collector stored everything."""
        for host, proc in self.sensors.items():
            code = stop(proc, 30.0)
            log = self.logs / f"sensor-{host}.log"
            if code != 0:
                raise DemoError(f"the sensor on {host} exited {code}; {log}:\n{_tail(log)}")

    def _reports(self) -> list[str]:
        """Print every report (run inside hub); the titles of those that failed."""
        assert self.topo is not None
        failed = []
        for title, what, args in REPORTS:
            argv = [str(NETWARDEN), "report", *args, "--collector",
                    f"127.0.0.1:{COLLECTOR_PORT}"]
            say(f"\n== {title} ==  {what}")
            say(f"$ netwarden report {' '.join(args)} --collector 127.0.0.1:{COLLECTOR_PORT}")
            if subprocess.run(self.topo.command("hub", argv), check=False).returncode != 0:
                failed.append(title)
        page = self.dir / "report.html"
        argv = [str(NETWARDEN), "report", "all", "--html", str(page), "--collector",
                f"127.0.0.1:{COLLECTOR_PORT}"]
        if subprocess.run(self.topo.command("hub", argv), check=False,
                          stdout=subprocess.DEVNULL).returncode != 0:
            failed.append("report all --html")
        else:
            self.page = page
        return failed

    def close(self) -> None:
        """Stop every process (gently first) and delete the namespaces."""
        for proc in [*self.sensors.values(), self.servers, self.collector]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3.0  # then close() kills what is left
        for proc in [*self.sensors.values(), self.servers, self.collector]:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
        if self.topo is not None:
            self.topo.close()
        for f in self._files:
            f.close()
        if self.servers is not None and self.servers.stdout is not None:
            self.servers.stdout.close()


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C (so the cleanup runs)."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _name_process(name: str) -> None:
    """The process name (comm) the sensors' process attribution reports."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["_servers"]:
        _name_process("demo-servers")
        serve(Path(args[1]), args[2], args[3])
        return 0
    if args[:1] == ["_client"]:
        _name_process("demo-client")
        print(json.dumps(client(args[1], args[2], int(args[3]))), flush=True)
        return 0
    p = argparse.ArgumentParser(prog="demo_live.py", description=__doc__.splitlines()[0])
    p.add_argument("--bulk-mb", type=float, default=8.0,
                   help="bytes of the bulk upload, per IP version, in MB (default 8)")
    a = p.parse_args(args)
    reason = unavailable_reason()
    if reason is not None:
        print(f"demo: cannot create network namespaces ({reason}). The live demo needs "
              "root: `sudo make demo`; `make demo-offline` analyzes a capture file instead.",
              file=sys.stderr)
        return 1
    if not NETWARDEN.exists() or shutil.which("tshark") is None:
        print("demo: run `make setup` first (the netwarden command or tshark is missing)",
              file=sys.stderr)
        return 1
    demo = Demo(int(a.bulk_mb * 1e6))
    interrupted = False
    try:
        with _interruptible():
            return demo.run()
    except KeyboardInterrupt:
        interrupted = True
        print("\ndemo: interrupted, cleaning up", file=sys.stderr)
        return 130
    except (DemoError, NetnsError, subprocess.SubprocessError, OSError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop cleanup
        demo.close()
        if interrupted:  # nothing worth keeping (a failure keeps its logs)
            shutil.rmtree(demo.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
