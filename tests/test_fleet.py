"""The live fleet end to end (issue 3): real capture, real gRPC, real ClickHouse, no mocks.

Three hosts (network namespaces) ``h1``, ``h2`` and ``c``, joined by veth links h1-c, h2-c
and h1-h2. ``h1`` and ``h2`` run ``netwarden sensor run``, each capturing only its own end
of the h1-h2 link, and stream to ``netwarden collector serve`` in ``c`` over their own
links (so the collector traffic is not in the data). Known UDP and TCP traffic, IPv4 and
IPv6, crosses h1-h2; the reports, asked of the collector from inside ``c``
(``netwarden report ... --collector``), must show exactly those frames and bytes, per host
and in total: UDP against what was sent, TCP against a tcpdump of the same link read by
tshark. Also: the collector killed (SIGKILL) and restarted while the sensors run, and a
sensor started before its collector; nothing lost, nothing counted twice.

Completion is decided by a marker: one datagram sent after all the traffic. A sensor
sends its intervals in order and the collector acknowledges them in order, so once a
host's marker is in the reports, everything that host captured before it is too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fixtures.clickhouse_server import SERVER_BINARY, ClickHouseServer
from fixtures.netns import (
    Link,
    Topology,
    netns_fixture,  # noqa: F401  (the netns fixture)
)
from fixtures.procs import Proc, events, start_netwarden, tail, wait_until, write_sensor_config

NETWARDEN = Path(sys.executable).with_name("netwarden")
PORT = 50551  # the collector's port inside c (a namespace of its own: nothing else there)
QUERY = f"127.0.0.1:{PORT}"
INTERVAL_S = 1
DATABASE = "nw_fleet"
ETH, UDP_HEADER = 14, 8
IP_HEADER = {4: 20, 6: 40}
OUT, IN = 2, 1  # netwarden.sensor.records.Direction
MARKER = (45999, 9999, 32)  # source port, destination port, payload: h1 -> h2, IPv4

# (host, side A address, port A, side B address, port B)
Key = tuple[str, str, int, str, int]
# (frames A->B, bytes A->B, frames B->A, bytes B->A)
Counts = tuple[int, int, int, int]
Table = dict[Key, Counts]


def frame_len(version: int, payload: int) -> int:
    """frame.len of a UDP datagram with ``payload`` bytes on Ethernet."""
    return ETH + IP_HEADER[version] + UDP_HEADER + payload


class Fleet:
    """The three hosts, their links, and the netwarden processes running on them."""

    def __init__(self, topo: Topology, tmp: Path, store: str) -> None:
        self.topo = topo
        self.tmp = tmp
        self.store = store
        self.uplink: dict[str, Link] = {"h1": topo.link("h1", "c"), "h2": topo.link("h2", "c")}
        self.link = topo.link("h1", "h2")  # the monitored link
        self.collectors: list[Proc] = []
        self.sensors: dict[str, Proc] = {}

    def addr(self, host: str, version: int) -> str:
        """``host``'s address on the monitored link."""
        return self.link.addr(host, version)

    def _popen(self, host: str, name: str, argv: Sequence[str]) -> Proc:
        return start_netwarden(self.topo, host, name, argv, self.tmp)

    @property
    def collector(self) -> Proc:
        return self.collectors[-1]

    def start_collector(self) -> Proc:
        """``collector serve`` in c on every address, port PORT; waits until it listens."""
        p = self._popen("c", f"collector-{len(self.collectors) + 1}", [
            "collector", "serve", "--listen", f"0.0.0.0:{PORT}", "--store", self.store,
            "--database", DATABASE])
        self.collectors.append(p)
        p.wait_event("collector listening", timeout_s=60)
        return p

    def start_sensor(self, host: str) -> Proc:
        """``sensor run`` in ``host`` on its end of the monitored link (1 s intervals)."""
        config = write_sensor_config(self.tmp / f"sensor-{host}.toml", host,
                                     self.link.ifname(host),
                                     f"{self.uplink[host].addr('c')}:{PORT}")
        p = self._popen(host, f"sensor-{host}", ["sensor", "run", "--config", str(config)])
        self.sensors[host] = p
        return p

    def wait_connected(self, hosts: Sequence[str], timeout_s: float = 30.0) -> None:
        """Until the current collector has logged a stream of each host."""
        for host in hosts:
            self.collector.wait_event("sensor connected", host=host, timeout_s=timeout_s)

    def logs(self) -> str:
        return "\n".join(tail(p.log) for p in [*self.collectors, *self.sensors.values()])

    # -- reports ---------------------------------------------------------------------------

    def reports(self, queries: Sequence[tuple[str, str | None]]) -> list[Table]:
        """``report conversations --kind K [--host H]`` from inside c, run at once."""
        procs = []
        for kind, host in queries:
            argv = [str(NETWARDEN), "report", "conversations", "--kind", kind, "--collector",
                    QUERY, "--format", "json", *(["--host", host] if host else [])]
            procs.append(self.topo.popen("c", argv))
        out = []
        for (kind, host), proc in zip(queries, procs, strict=True):
            stdout, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 0, \
                f"report conversations --kind {kind} --host {host}: {stderr}\n{self.logs()}"
            out.append(table(json.loads(stdout)["rows"]))
        return out

    def wait_udp(self, hosts: Sequence[str], ports: tuple[int, int] = MARKER[:2],
                 timeout_s: float = 40.0) -> None:
        """Until the UDP conversation on ``ports`` (port A, port B; the marker's by default)
        is in the collector's reports for every host of ``hosts``."""
        last = ""

        def arrived() -> bool:
            nonlocal last
            proc = self.topo.run("c", [str(NETWARDEN), "report", "conversations", "--kind",
                                       "udp", "--collector", QUERY, "--format", "json"],
                                 check=False)
            if proc.returncode != 0:
                last = proc.stderr.strip()
                return False
            rows = json.loads(proc.stdout)["rows"]
            seen = {r["host"] for r in rows if (r["port_a"], r["port_b"]) == ports}
            last = f"seen for {sorted(seen)}"
            return set(hosts) <= seen

        wait_until(arrived, timeout_s, f"UDP {ports} of {', '.join(hosts)} in the reports",
                   lambda: f"last: {last}\n{self.logs()}")

    def stored_directions(self) -> list[tuple[str, str, str, int, int]]:
        """(host, src, dst, direction, packets) of every TCP/UDP record, read from the store
        directly (the collector must have stopped when the store is embedded)."""
        code = (
            "import json, sys\n"
            "from netwarden.collector.store import open_store\n"
            "from netwarden.collector.reports.selection import text_address\n"
            "store = open_store(sys.argv[1], database=sys.argv[2])\n"
            "store.start(migrate=False)\n"
            "try:\n"
            "    rows = store.query(\n"
            "        f'SELECT host, {text_address(\"src_ip\")} AS s, '\n"
            "        f'{text_address(\"dst_ip\")} AS d, direction, sum(packets) AS p '\n"
            "        'FROM flows WHERE layer = 0 AND ip_proto IN (6, 17) '\n"
            "        'GROUP BY host, s, d, direction ORDER BY host, s, d, direction')\n"
            "finally:\n"
            "    store.stop(flush=False)\n"
            "print(json.dumps([[str(h), str(s), str(d), int(r), int(p)] "
            "for h, s, d, r, p in rows]))\n")
        out = self.topo.python("c", code, self.store, DATABASE, timeout=60)
        return [(str(h), str(s), str(d), int(r), int(n))
                for h, s, d, r, n in json.loads(out.stdout)]


def table(rows: list[dict[str, Any]]) -> Table:
    """A report's TCP/UDP conversation rows as a :data:`Table`."""
    out: Table = {}
    for r in rows:
        key = (r["host"], r["a"], int(r["port_a"]), r["b"], int(r["port_b"]))
        assert key not in out, f"conversation {key} listed twice"
        out[key] = (int(r["frames_a_to_b"]), int(r["bytes_a_to_b"]), int(r["frames_b_to_a"]),
                    int(r["bytes_b_to_a"]))
    return out


def for_host(t: Table, host: str) -> Table:
    """``t`` (host-less keys: host "") as host ``host``'s rows."""
    return {(host, *k[1:]): v for k, v in t.items()}


def assert_table(want: Table, got: Table, what: str) -> None:
    """Equal tables, or a message naming every conversation that differs."""
    if want == got:
        return
    lines = [f"{what}: {len(got)} conversations, expected {len(want)}"]
    for key in sorted(set(want) | set(got)):
        w, g = want.get(key), got.get(key)
        if w != g:
            lines.append(f"  {key}: expected {w or 'no row'}, got {g or 'no row'} "
                         "(frames A->B, bytes A->B, frames B->A, bytes B->A)")
    raise AssertionError("\n".join(lines))


# -- traffic -------------------------------------------------------------------------------


@dataclasses.dataclass
class Udp:
    """Datagrams from ``src`` to ``dst`` (their monitored-link addresses), a receiver
    counting them at ``dst``."""

    src: str
    dst: str
    version: int
    sport: int
    dport: int
    count: int
    size: int
    rate: float = 0.0
    _procs: tuple[subprocess.Popen[str], subprocess.Popen[str]] | None = dataclasses.field(
        default=None, repr=False)

    def start(self, fleet: Fleet) -> Udp:
        dst = fleet.addr(self.dst, self.version)
        recv = fleet.topo.traffic_popen(self.dst, "udp-recv", dst, str(self.dport), "--count",
                                        str(self.count), "--timeout", "30")
        assert recv.stdout is not None and recv.stdout.readline().strip() == "READY"
        send = fleet.topo.traffic_popen(self.src, "udp-send", dst, str(self.dport), "--count",
                                        str(self.count), "--size", str(self.size),
                                        "--src-port", str(self.sport), "--rate", str(self.rate))
        self._procs = (recv, send)
        return self

    def join(self) -> None:
        assert self._procs is not None
        recv, send = self._procs
        _, err = send.communicate(timeout=60)
        assert send.returncode == 0, f"udp-send {self}: {err}"
        out, err = recv.communicate(timeout=60)
        got = json.loads(out.splitlines()[-1]) if out.strip() else err
        assert got == {"received": self.count, "bytes": self.count * self.size}, \
            f"{self}: the receiver got {got}"

    def run(self, fleet: Fleet) -> Udp:
        self.start(fleet)
        self.join()
        return self

    @property
    def frames(self) -> int:
        return self.count

    @property
    def frame_bytes(self) -> int:
        return self.count * frame_len(self.version, self.size)


def udp_conversation(fleet: Fleet, first: Udp, reply: Udp | None = None) -> Table:
    """The conversation ``first`` (and ``reply``, the other way on the same ports) make, as
    tshark's conv,udp counts it (side A sent first), host-less."""
    key = ("", fleet.addr(first.src, first.version), first.sport,
           fleet.addr(first.dst, first.version), first.dport)
    back = (reply.frames, reply.frame_bytes) if reply is not None else (0, 0)
    return {key: (first.frames, first.frame_bytes, *back)}


def send_marker(fleet: Fleet) -> Table:
    sport, dport, size = MARKER
    return udp_conversation(fleet, Udp("h1", "h2", 4, sport, dport, 1, size).run(fleet))


def tcp_transfer(fleet: Fleet, client: str, server: str, version: int, port: int,
                 nbytes: int) -> tuple[str, int]:
    """``nbytes`` from ``client`` to ``server``'s ``port``; (client address, client port)."""
    dst = fleet.addr(server, version)
    srv = fleet.topo.traffic_popen(server, "tcp-server", dst, str(port), "--timeout", "30")
    assert srv.stdout is not None and srv.stdout.readline().strip() == "READY"
    sent = json.loads(fleet.topo.traffic(client, "tcp-send", dst, str(port), "--bytes",
                                         str(nbytes), "--timeout", "30").stdout)
    out, err = srv.communicate(timeout=60)
    got = json.loads(out.splitlines()[-1]) if out.strip() else {}
    assert got.get("received") == nbytes, f"tcp-server got {out or 'nothing'}: {err}"
    return fleet.addr(client, version), int(sent["src_port"])


class Tcpdump:
    """``tcpdump -w`` inside a host: the independent record of what crossed the link."""

    def __init__(self, topo: Topology, host: str, ifname: str, path: Path) -> None:
        self.path = path
        self.proc = topo.popen(host, ["tcpdump", "-i", ifname, "-w", str(path), "-U", "-n",
                                      "-Z", "root", "-B", "8192", "--immediate-mode"],
                               stdout=subprocess.DEVNULL)
        assert self.proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 15
        while "listening" not in line and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
        assert "listening" in line, f"tcpdump did not start: {line!r}"

    def stop(self) -> Path:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        assert "\n0 packets dropped by kernel" in f"\n{err}", f"tcpdump dropped packets: {err}"
        return self.path


def tshark_table(pcap: Path, kind: str) -> Table:
    """tshark's conv,``kind`` of a capture (host-less): per stream, side A is the source of
    its first frame."""
    fields = ["ip.src", "ipv6.src", f"{kind}.srcport", "ip.dst", "ipv6.dst",
              f"{kind}.dstport", "frame.len", f"{kind}.stream"]
    proc = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", f"{kind} && !icmp && !icmpv6", "-T", "fields",
         "-E", "separator=/t", *[x for f in fields for x in ("-e", f)]],
        capture_output=True, text=True, timeout=60, check=True)
    streams: dict[str, tuple[tuple[str, int, str, int], list[int]]] = {}
    for line in proc.stdout.splitlines():
        src4, src6, sport, dst4, dst6, dport, length, stream = line.split("\t")
        ends = (src4 or src6, int(sport), dst4 or dst6, int(dport))
        if stream not in streams:
            streams[stream] = (ends, [0, 0, 0, 0])
        first, counts = streams[stream]
        i = 0 if ends == first else 2
        counts[i] += 1
        counts[i + 1] += int(length)
    return {("", *ends): (c[0], c[1], c[2], c[3]) for ends, c in streams.values()}


# -- fixtures ------------------------------------------------------------------------------


@contextlib.contextmanager
def store_in_c(kind: str, topo: Topology, tmp: Path) -> Iterator[str]:
    """The store target the collector in c uses: a chdb directory, or the URL of a
    clickhouse-server 18.16 running inside c (listening on c's 127.0.0.1)."""
    if kind == "chdb":
        yield str(tmp / "store")
        return
    if not os.access(SERVER_BINARY, os.X_OK):
        pytest.skip(f"clickhouse-server binary not found ({SERVER_BINARY})")
    server = ClickHouseServer(tmp / "clickhouse-server")
    with topo.enter("c"):
        server.start()
    try:
        yield server.url
    finally:
        with topo.enter("c"):
            server.stop()


@pytest.fixture
def hosts(netns: Callable[..., Topology]) -> Topology:
    return netns(["h1", "h2", "c"])


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chdb", pytest.param("server", marks=pytest.mark.server)])
def test_reports_show_exactly_the_traffic_per_host_and_in_total(
        hosts: Topology, tmp_path: Path, kind: str) -> None:
    with store_in_c(kind, hosts, tmp_path) as store:
        fleet = Fleet(hosts, tmp_path, store)
        fleet.start_collector()
        for h in ("h1", "h2"):
            fleet.start_sensor(h)
        fleet.wait_connected(["h1", "h2"])
        dump = Tcpdump(hosts, "h1", fleet.link.ifname("h1"), tmp_path / "h1-h2.pcap")

        udp: Table = {}
        for version, (h1_port, h2_port) in ((4, (40004, 9004)), (6, (40006, 9006))):
            there = Udp("h1", "h2", version, h1_port, h2_port, 50 - version, 100 * version)
            back = Udp("h2", "h1", version, h2_port, h1_port, 20 + version, 1000 + version)
            udp |= udp_conversation(fleet, there.run(fleet), back.run(fleet))
        client4 = tcp_transfer(fleet, "h1", "h2", 4, 9104, 300_000)
        client6 = tcp_transfer(fleet, "h2", "h1", 6, 9106, 200_000)
        udp |= send_marker(fleet)
        fleet.wait_udp(["h1", "h2"])
        pcap = dump.stop()

        # the link carried exactly the datagrams sent (tests the traffic, not netwarden)
        assert_table(udp, tshark_table(pcap, "udp"), "tcpdump's UDP conversations")
        tcp = tshark_table(pcap, "tcp")
        assert sorted(k[1:3] for k in tcp) == sorted([client4, client6]), \
            f"tcpdump's TCP conversations: {tcp}"  # side A: the client, h1 (v4), h2 (v6)

        got = fleet.reports([("udp", "h1"), ("udp", "h2"), ("udp", None),
                             ("tcp", "h1"), ("tcp", "h2"), ("tcp", None)])
        for i, (proto, want) in enumerate((("UDP", udp), ("TCP", tcp))):
            per_host = {h: for_host(want, h) for h in ("h1", "h2")}
            assert_table(per_host["h1"], got[3 * i], f"{proto} conversations of --host h1")
            assert_table(per_host["h2"], got[3 * i + 1], f"{proto} conversations of --host h2")
            assert_table(per_host["h1"] | per_host["h2"], got[3 * i + 2],
                         f"{proto} conversations of the fleet (no --host)")

        for h in ("h1", "h2"):
            assert fleet.sensors[h].terminate() == 0, tail(fleet.sensors[h].log)
        assert fleet.collector.terminate() == 0, tail(fleet.collector.log)
        check_directions(fleet, expected_packets=sum(c[0] + c[2] for c in (udp | tcp).values()))


def check_directions(fleet: Fleet, expected_packets: int) -> None:
    """Every TCP/UDP record is ``out`` on the host that sent it and ``in`` on the other."""
    mine = {h: set(fleet.topo.addresses(h)) for h in ("h1", "h2")}
    wrong = []
    packets = {"h1": 0, "h2": 0}
    for host, src, dst, direction, n in fleet.stored_directions():
        want = OUT if src in mine[host] else IN if dst in mine[host] else 0
        if direction != want:
            wrong.append(f"{host}: {src} -> {dst}: direction {direction}, expected {want} "
                         f"({n} packets)")
        packets[host] += n
    assert not wrong, "records with the wrong direction:\n" + "\n".join(wrong)
    assert packets == {"h1": expected_packets, "h2": expected_packets}


def connections(sensor: Proc) -> list[dict[str, Any]]:
    """The sensor's "connected to the collector" records (stored_seq, held, ...)."""
    return [e for e in events(sensor.log) if e.get("event") == "connected to the collector"]


def sleep_until_phase(phase_s: float) -> None:
    """Sleep until ``phase_s`` seconds into the next interval."""
    now = time.time()
    time.sleep((now // INTERVAL_S + 1) * INTERVAL_S + phase_s - now)


def test_collector_killed_and_restarted_while_sensors_run(hosts: Topology,
                                                         tmp_path: Path) -> None:
    fleet = Fleet(hosts, tmp_path, str(tmp_path / "store"))
    first = fleet.start_collector()
    for h in ("h1", "h2"):
        fleet.start_sensor(h)
    fleet.wait_connected(["h1", "h2"])

    # a steady stream through all three phases: its intervals are stored, lost in flight,
    # held while the collector is down and resent
    steady = Udp("h1", "h2", 6, 41000, 9100, 1000, 120, rate=100.0).start(fleet)
    before = Udp("h1", "h2", 4, 41001, 9101, 80, 200).run(fleet)
    fleet.wait_udp(["h1", "h2"], (before.sport, before.dport))  # stored by the first collector
    sleep_until_phase(0.55)  # just after the sensors flushed an interval: batches in flight
    first.proc.kill()  # SIGKILL: nothing flushed, nothing acknowledged any more
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    down = Udp("h2", "h1", 4, 41002, 9102, 90, 300).run(fleet)
    for h in ("h1", "h2"):  # the sensors noticed and hold what they count
        fleet.sensors[h].wait_event("collector stream failed", timeout_s=15)
    time.sleep(1.5)  # at least one more interval closes while the collector is down
    fleet.start_collector()
    fleet.wait_connected(["h1", "h2"])
    after = Udp("h1", "h2", 6, 41003, 9103, 70, 400).run(fleet)
    steady.join()
    marker = send_marker(fleet)
    fleet.wait_udp(["h1", "h2"])

    want = marker.copy()
    for flow in (steady, before, down, after):
        want |= udp_conversation(fleet, flow)
    h1, h2, fleet_rows = fleet.reports([("udp", "h1"), ("udp", "h2"), ("udp", None)])
    assert_table(for_host(want, "h1"), h1, "UDP conversations of h1 across the restart")
    assert_table(for_host(want, "h2"), h2, "UDP conversations of h2 across the restart")
    assert_table(for_host(want, "h1") | for_host(want, "h2"), fleet_rows,
                 "UDP conversations of the fleet across the restart")
    for h in ("h1", "h2"):
        # the new collector found what the first one stored, and the sensor held batches
        seen = [(c["stored_seq"], c["held"]) for c in connections(fleet.sensors[h])]
        assert len(seen) == 2 and seen[0] == (0, 0) and min(seen[1]) > 0, \
            f"{h}: connections (stored_seq, held): {seen}\n{tail(fleet.sensors[h].log)}"


def test_sensor_started_before_the_collector_delivers_once_it_is_up(
        hosts: Topology, tmp_path: Path) -> None:
    fleet = Fleet(hosts, tmp_path, str(tmp_path / "store"))
    sensor = fleet.start_sensor("h1")
    sensor.wait_event("sensor started")
    early = Udp("h1", "h2", 4, 42001, 9201, 60, 250).run(fleet)
    sensor.wait_event("collector stream failed", n=2, timeout_s=15)
    time.sleep(1.5)  # the interval of ``early`` closes and waits in the outbox
    fleet.start_collector()
    fleet.wait_connected(["h1"])
    late = Udp("h2", "h1", 6, 42002, 9202, 40, 500).run(fleet)
    marker = send_marker(fleet)
    fleet.wait_udp(["h1"])

    want = for_host(udp_conversation(fleet, early) | udp_conversation(fleet, late) | marker,
                    "h1")
    (got,) = fleet.reports([("udp", None)])
    assert_table(want, got, "UDP conversations of a sensor that started first")
    seen = [(c["stored_seq"], c["held"]) for c in connections(sensor)]
    assert len(seen) == 1 and seen[0][0] == 0 and seen[0][1] > 0, \
        f"connections (stored_seq, held): {seen}\n{tail(sensor.log)}"
