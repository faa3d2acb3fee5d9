"""Process attribution at the sensor: /proc socket tables, owners, matching, the enricher.

Pure-logic parts run on literal /proc text and a table fed by a fake reader; the real
parts open TCP and UDP sockets in this process and must find them with this pid and
name.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from netwarden.config import load_config
from netwarden.errors import ConfigError
from netwarden.sensor.agent import SensorAgent
from netwarden.sensor.config import SensorConfig
from netwarden.sensor.enrich import PacketView
from netwarden.sensor.processes import RETRY_S, ProcessEnricher, SocketTable
from netwarden.sensor.records import (
    FLOW_COLUMNS,
    STAT_COLUMNS,
    Columns,
    Direction,
    FlowBatch,
    empty,
)
from netwarden.sensor.sockets import (
    TCP,
    TCP_LISTEN,
    UDP,
    V4_ANY,
    V6_ANY,
    Owner,
    Socket,
    SocketFileError,
    find_owners,
    parse_proc_net,
    read_sockets,
)

S = 1_000_000_000
IN, OUT, LOCAL, OTHER = Direction.IN, Direction.OUT, Direction.LOCAL, Direction.OTHER


def a16(text: str) -> bytes:
    """The records' 16-byte form of an address."""
    ip = ipaddress.ip_address(text)
    return ipaddress.IPv6Address(f"::ffff:{ip}").packed if ip.version == 4 else ip.packed


def hex4(text: str) -> str:
    """An IPv4 address as /proc/net prints it (a host-order 32-bit word)."""
    return f"{int.from_bytes(ipaddress.IPv4Address(text).packed, sys.byteorder):08X}"


def hex6(text: str) -> str:
    raw = ipaddress.IPv6Address(text).packed
    return "".join(f"{int.from_bytes(raw[i:i + 4], sys.byteorder):08X}" for i in range(0, 16, 4))


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  " \
         "timeout inode\n"


def line(n: int, local: str, remote: str, state: int, inode: int) -> str:
    return (f"   {n}: {local} {remote} {state:02X} 00000000:00000000 00:00000000 00000000  "
            f"   0        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


# -- /proc/net parsing -----------------------------------------------------------------------


def test_parse_ipv4_table() -> None:
    text = HEADER + line(0, f"{hex4('0.0.0.0')}:0050", f"{hex4('0.0.0.0')}:0000", 0x0A, 111) \
        + line(1, f"{hex4('10.1.2.3')}:9C40", f"{hex4('10.9.8.7')}:01BB", 0x01, 222) \
        + line(2, f"{hex4('10.1.2.3')}:9C41", f"{hex4('10.9.8.7')}:01BB", 0x06, 0)  # TIME_WAIT
    got = parse_proc_net(text, "tcp")
    assert got == [
        Socket(TCP, V4_ANY, 80, V4_ANY, 0, TCP_LISTEN, 111),
        Socket(TCP, a16("10.1.2.3"), 40000, a16("10.9.8.7"), 443, 1, 222),
    ]


def test_parse_ipv6_table_with_mapped_addresses() -> None:
    text = HEADER + line(0, f"{hex6('::')}:0035", f"{hex6('::')}:0000", 0x07, 7) \
        + line(1, f"{hex6('::ffff:10.0.0.1')}:1F90", f"{hex6('::ffff:10.0.0.2')}:C350", 1, 8) \
        + line(2, f"{hex6('fd00::1')}:1F91", f"{hex6('fd00::2')}:C351", 1, 9)
    got = parse_proc_net(text, "udp6")
    assert got == [
        Socket(UDP, V6_ANY, 53, V6_ANY, 0, 7, 7),
        Socket(UDP, a16("10.0.0.1"), 8080, a16("10.0.0.2"), 50000, 1, 8),  # same as IPv4
        Socket(UDP, a16("fd00::1"), 8081, a16("fd00::2"), 50001, 1, 9),
    ]


def test_a_bad_line_names_file_and_line() -> None:
    text = HEADER + line(0, f"{hex4('10.0.0.1')}:0050", f"{hex4('0.0.0.0')}:0000", 0x0A, 5) \
        + "   1: 0100007F 00000000:0000 0A\n"
    with pytest.raises(SocketFileError) as info:
        parse_proc_net(text, "tcp", "/x/tcp")
    assert str(info.value) == "/x/tcp: line 3: expected at least 10 fields, got 4"
    bad = HEADER + line(0, "0100007:0050", f"{hex4('0.0.0.0')}:0000", 0x0A, 5)
    with pytest.raises(SocketFileError, match=r"^/proc/net/tcp: line 2: expected 8 hex digits"):
        parse_proc_net(bad, "tcp")


# -- real sockets of this process ----------------------------------------------------------


@pytest.fixture
def own_sockets() -> Iterator[dict[str, socket.socket]]:
    """A TCP listener, a TCP connection to it (both ends), a bound UDP socket and a
    connected IPv6 UDP socket, on loopback."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.connect(("::1", 9))
    made = {"listener": lst, "client": cli, "server": srv, "udp": udp, "udp6": udp6}
    try:
        yield made
    finally:
        for s in made.values():
            s.close()


def my_comm() -> str:
    return Path("/proc/self/comm").read_text().rstrip("\n")


def test_real_sockets_are_found_with_this_pid_and_name(
        own_sockets: dict[str, socket.socket]) -> None:
    listed = read_sockets()
    by_inode = {s.inode: s for s in listed}
    inodes = {name: os.fstat(s.fileno()).st_ino for name, s in own_sockets.items()}
    assert set(inodes.values()) <= set(by_inode), "a socket of this process is not listed"
    lport = own_sockets["listener"].getsockname()[1]
    cport = own_sockets["client"].getsockname()[1]
    assert by_inode[inodes["listener"]] == Socket(TCP, a16("127.0.0.1"), lport, V4_ANY, 0,
                                                  TCP_LISTEN, inodes["listener"])
    assert by_inode[inodes["client"]].remote == a16("127.0.0.1")
    assert (by_inode[inodes["client"]].lport, by_inode[inodes["client"]].rport) == (cport, lport)
    assert (by_inode[inodes["server"]].lport, by_inode[inodes["server"]].rport) == (lport, cport)
    assert by_inode[inodes["udp"]].proto == UDP
    assert by_inode[inodes["udp6"]].remote == a16("::1")
    assert by_inode[inodes["udp6"]].rport == 9

    owners = find_owners(set(inodes.values()))
    me = Owner(os.getpid(), my_comm())
    assert owners == {i: me for i in inodes.values()}
    assert find_owners({2**40}) == {}  # nobody holds it: the whole walk, nothing found


def test_table_matches_real_sockets(own_sockets: dict[str, socket.socket]) -> None:
    table = SocketTable(retain_s=60)
    table.refresh()
    lo = a16("127.0.0.1")
    lport = own_sockets["listener"].getsockname()[1]
    cport = own_sockets["client"].getsockname()[1]
    uport = own_sockets["udp"].getsockname()[1]
    for local, remote in (((lo, cport), (lo, lport)), ((lo, lport), (lo, cport)),
                          ((lo, uport), (a16("10.9.9.9"), 53))):
        proto = UDP if local[1] == uport else TCP
        e = table.lookup(proto, local[0], local[1], remote[0], remote[1])
        assert e is not None and e.owner == Owner(os.getpid(), my_comm())
    assert table.stats.walks == 1
    table.refresh()
    assert table.stats.walks == 1  # nothing new: /proc/[pid]/fd is not read again
    assert (UDP << 16 | uport) in table.ports.tolist()


# -- the table over time (fake reader) -------------------------------------------------------


class FakeKernel:
    """A socket list, owners and a clock the test changes."""

    def __init__(self) -> None:
        self.sockets: list[Socket] = []
        self.owners: dict[int, Owner] = {}
        self.now = 1000 * S
        self.asked: list[set[int]] = []

    def table(self, retain_s: float = 10.0) -> SocketTable:
        return SocketTable(retain_s=retain_s, reader=lambda: list(self.sockets),
                           owners=self.find, clock=lambda: self.now)

    def find(self, wanted: set[int]) -> dict[int, Owner]:
        self.asked.append(set(wanted))
        return {i: self.owners[i] for i in wanted if i in self.owners}


def sock(proto: int, local: str | bytes, lport: int, remote: str | bytes = V4_ANY,
         rport: int = 0, *, inode: int, state: int = 1) -> Socket:
    la = local if isinstance(local, bytes) else a16(local)
    ra = remote if isinstance(remote, bytes) else a16(remote)
    return Socket(proto, la, lport, ra, rport, state, inode)


def test_retention_and_unowned_inodes() -> None:
    k = FakeKernel()
    k.sockets = [sock(UDP, V4_ANY, 5000, inode=1), sock(UDP, V4_ANY, 5001, inode=2)]
    k.owners = {1: Owner(10, "alpha")}  # 2: a kernel socket nobody holds
    table = k.table(retain_s=10)
    table.refresh()
    k.now += 1 * S
    table.refresh()
    assert k.asked == [{1, 2}]  # inode 2 is not searched for again
    k.sockets = []  # the socket closed
    k.now += 9 * S
    table.refresh()
    e = table.lookup(UDP, a16("10.0.0.1"), 5000, a16("10.0.0.2"), 53)
    assert e is not None and e.owner == Owner(10, "alpha")  # still remembered
    assert table.ports.tolist() == []  # but no longer listed
    k.now += 2 * S  # more than retain_s after it was last listed
    table.refresh()
    assert table.lookup(UDP, a16("10.0.0.1"), 5000, a16("10.0.0.2"), 53) is None
    assert table.entries() == []


def test_lookup_order_exact_bound_wildcards() -> None:
    k = FakeKernel()
    k.sockets = [
        sock(TCP, "10.0.0.1", 80, V4_ANY, 0, inode=1, state=TCP_LISTEN),
        sock(TCP, "10.0.0.1", 80, "10.0.0.9", 40000, inode=2),
        sock(UDP, V4_ANY, 53, inode=3),
        sock(UDP, V6_ANY, 53, inode=4),
        sock(UDP, V6_ANY, 123, inode=5),
        sock(UDP, "10.0.0.1", 123, inode=6),
    ]
    k.owners = {1: Owner(1, "nginx"), 2: Owner(2, "nginx-worker"), 3: Owner(3, "dns4"),
                4: Owner(4, "dns6"), 5: Owner(5, "ntp6"), 6: Owner(6, "ntp4")}
    table = k.table()
    table.refresh()

    def who(proto: int, local: str, lport: int, remote: str, rport: int) -> str | None:
        e = table.lookup(proto, a16(local), lport, a16(remote), rport)
        return None if e is None else e.owner.comm

    assert who(TCP, "10.0.0.1", 80, "10.0.0.9", 40000) == "nginx-worker"  # exact
    assert who(TCP, "10.0.0.1", 80, "10.0.0.8", 40001) in {"nginx", "nginx-worker"}
    assert who(TCP, "10.0.0.2", 80, "10.0.0.8", 40001) is None  # another local address
    assert who(UDP, "10.0.0.1", 53, "10.0.0.8", 5353) == "dns4"  # 0.0.0.0 before ::
    assert who(UDP, "fd00::1", 53, "fd00::8", 5353) == "dns6"  # :: only for IPv6
    assert who(UDP, "10.0.0.1", 123, "10.0.0.8", 123) == "ntp4"  # bound address first
    assert who(UDP, "10.0.0.3", 123, "10.0.0.8", 123) == "ntp6"  # :: takes IPv4 too
    assert who(UDP, "10.0.0.1", 9999, "10.0.0.8", 123) is None
    assert who(TCP, "10.0.0.1", 53, "10.0.0.8", 5353) is None  # protocols apart


def test_port_reuse_picks_the_socket_closest_in_time() -> None:
    k = FakeKernel()
    k.owners = {1: Owner(100, "first"), 2: Owner(200, "second")}
    table = k.table(retain_s=60)
    t_first = k.now
    k.sockets = [sock(UDP, V4_ANY, 7000, inode=1)]
    table.refresh()
    k.now += 5 * S
    table.refresh()  # inode 1 listed from t_first to t_first + 5 s
    k.sockets = []
    k.now += 3 * S
    table.refresh()
    k.sockets = [sock(UDP, V4_ANY, 7000, inode=2)]  # the port again, another process
    table.refresh()  # inode 2 first listed at t_first + 8 s
    args = (UDP, a16("10.0.0.1"), 7000, a16("10.0.0.2"), 9)
    near_first = table.lookup(*args, t_first + 6 * S, t_first + 6 * S)
    near_second = table.lookup(*args, t_first + 7_900_000_000, t_first + 7_950_000_000)
    assert near_first is not None and near_first.owner.comm == "first"
    assert near_second is not None and near_second.owner.comm == "second"


# -- the enricher ------------------------------------------------------------------------------


def flows(rows: list[dict[str, object]]) -> Columns:
    out = empty(FLOW_COLUMNS, len(rows))
    for i, r in enumerate(rows):
        for k, v in r.items():
            out[k][i] = v
    return out


def rec(start_s: int, direction: int, proto: int, src: str, sport: int, dst: str, dport: int,
        nbytes: int, layer: int = 0) -> dict[str, object]:
    return {"start_ns": start_s * S, "direction": int(direction), "ip_proto": proto,
            "ip_version": 6 if ":" in src else 4, "src_ip": a16(src), "dst_ip": a16(dst),
            "src_port": sport, "dst_port": dport, "bytes": nbytes, "packets": 1,
            "layer": layer, "first_seen": start_s * S, "last_seen": start_s * S}


def test_enrich_labels_records_and_counts_attributed_bytes() -> None:
    k = FakeKernel()
    k.sockets = [sock(UDP, V4_ANY, 5000, inode=1), sock(TCP, "10.0.0.1", 80, inode=2,
                                                        state=TCP_LISTEN),
                 sock(UDP, "127.0.0.1", 7001, inode=3)]
    k.owners = {1: Owner(11, "alpha"), 2: Owner(22, "web"), 3: Owner(33, "sink")}
    table = k.table()
    table.refresh()
    enricher = ProcessEnricher(table, start=False)
    batch = FlowBatch.empty("h", 10)
    batch.flows = flows([
        rec(0, OUT, UDP, "10.0.0.1", 5000, "10.0.0.2", 53, 100),  # alpha sends
        rec(0, IN, UDP, "10.0.0.2", 53, "10.0.0.1", 5000, 200),  # alpha receives
        rec(0, IN, TCP, "10.0.0.9", 40000, "10.0.0.1", 80, 300),  # to the listener
        rec(0, OUT, TCP, "10.0.0.1", 80, "10.0.0.9", 40000, 400),
        rec(0, IN, UDP, "10.0.0.2", 53, "10.0.0.1", 5999, 50),  # nobody: unattributed
        rec(0, LOCAL, UDP, "127.0.0.1", 6000, "127.0.0.1", 7001, 70),  # only dst known
        rec(0, OTHER, UDP, "10.0.0.7", 5000, "10.0.0.8", 53, 999),  # not this host's
        rec(0, OUT, UDP, "10.0.0.1", 5000, "10.0.0.2", 53, 100, layer=1),  # inner header
        rec(10, OUT, UDP, "10.0.0.1", 5000, "10.0.0.2", 53, 1000),  # next interval
        rec(20, IN, UDP, "10.0.0.2", 53, "10.0.0.1", 5999, 5),  # interval without stats
    ])
    batch.stats = empty(STAT_COLUMNS, 3)
    batch.stats["start_ns"][:] = [0, 0, 10 * S]  # two rows for interval 0
    batch.stats["local_bytes"][:] = 7
    enricher.enrich(batch)
    assert batch.flows["process"].tolist() == ["alpha", "alpha", "web", "web", "", "sink", "",
                                               "alpha", "alpha", ""]
    assert batch.flows["pid"].tolist() == [11, 11, 22, 22, 0, 33, 0, 11, 11, 0]
    st = batch.stats
    assert st["start_ns"].tolist() == [0, 0, 10 * S, 20 * S]
    assert st["local_bytes"].tolist() == [1120, 0, 1000, 5]  # layer 0, in/out/local only
    assert st["process_bytes"].tolist() == [1070, 0, 1000, 0]
    assert st["packets"].tolist()[3] == 0  # the added row counts no frame


def view(ports: list[tuple[int, int, int, int]]) -> PacketView:
    """A PacketView of one event per (direction, proto, src port, dst port)."""
    n = len(ports)
    z = np.zeros(n, np.int64)
    u16 = np.zeros(n, np.uint16)
    d, p, sp, dp = (np.array([x[i] for x in ports]) for i in range(4))
    return PacketView(buf=np.zeros(0, np.uint8), offset=z, caplen=z.astype(np.uint32),
                      wirelen=z.astype(np.uint32), linktype=u16, ts_ns=z,
                      frame_no=z.astype(np.uint64), row=np.arange(n), layer=np.zeros(n, np.uint8),
                      stream=z.astype(np.uint64), ip_proto=p.astype(np.uint8),
                      src_port=sp.astype(np.uint16), dst_port=dp.astype(np.uint16),
                      src_hi=z.astype(np.uint64), src_lo=z.astype(np.uint64),
                      dst_hi=z.astype(np.uint64), dst_lo=z.astype(np.uint64),
                      direction=d.astype(np.uint8), start_ns=z)


def test_an_unknown_local_port_triggers_a_scan_that_finds_a_short_lived_socket() -> None:
    enricher = ProcessEnricher(scan_interval_s=60.0, retain_s=30.0)  # no periodic scan soon
    try:
        scans = enricher.table.stats.scans
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        enricher.observe(view([(OUT, UDP, port, 53), (OTHER, UDP, 1, 2)]))
        deadline = time.monotonic() + 5
        while enricher.table.stats.scans == scans and time.monotonic() < deadline:
            time.sleep(0.005)
        s.close()  # short-lived: gone before the records are labelled
        assert enricher.asked == 1
        enricher.observe(view([(OUT, UDP, port, 53)]))
        assert enricher.asked == 1  # asked for this port less than RETRY_S ago
        e = enricher.table.lookup(UDP, a16("127.0.0.1"), port, a16("127.0.0.1"), 53)
        assert e is not None and e.owner == Owner(os.getpid(), my_comm())
        enricher.table.refresh()  # the socket is no longer listed, but still remembered
        assert (UDP << 16 | port) not in enricher.table.ports.tolist()
        assert enricher.table.lookup(UDP, a16("127.0.0.1"), port, a16("127.0.0.1"), 53) == e
    finally:
        enricher.close()
    assert RETRY_S >= 0.5


def test_known_ports_and_other_traffic_ask_for_nothing() -> None:
    k = FakeKernel()
    k.sockets = [sock(TCP, "10.0.0.1", 22, inode=1, state=TCP_LISTEN)]
    k.owners = {1: Owner(1, "sshd")}
    table = k.table()
    table.refresh()
    enricher = ProcessEnricher(table, start=False)
    enricher.observe(view([(IN, TCP, 50000, 22), (OTHER, UDP, 1, 2), (IN, 1, 0, 0)]))
    assert enricher.asked == 0
    enricher.observe(view([(LOCAL, TCP, 22, 50001)]))  # local: both ends are this host's
    assert enricher.asked == 1


# -- configuration -------------------------------------------------------------------------


def test_processes_section_is_strict_and_builds_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "sensor.toml"
    path.write_text("[processes]\nscan_interval_s = 1.5\nretain_s = 30\n")
    cfg = load_config(SensorConfig, path, {})
    assert (cfg.processes.enabled, cfg.processes.scan_interval_s, cfg.processes.retain_s) == \
        (True, 1.5, 30.0)
    path.write_text("[processes]\nscan_every = 1\n")
    with pytest.raises(ConfigError, match=r"processes\.scan_every"):
        load_config(SensorConfig, path, {})
    path.write_text("[processes]\nscan_interval_s = 0\n")
    with pytest.raises(ConfigError, match=r"processes\.scan_interval_s"):
        load_config(SensorConfig, path, {})

    cfg = load_config(SensorConfig, None, {"sensor.interval_s": 60, "processes.retain_s": 5})
    stages = SensorAgent(cfg, source=None)._build_enrichers().stages
    try:
        (stage,) = [s for s in stages if isinstance(s, ProcessEnricher)]
        assert stage.table.retain_ns == 121 * S  # at least two intervals + flush delay
    finally:
        for s in stages:
            s.close()
    off = load_config(SensorConfig, None, {"processes.enabled": False})
    stages = SensorAgent(off, source=None)._build_enrichers().stages
    assert not [s for s in stages if isinstance(s, ProcessEnricher)]
    for s in stages:
        s.close()
