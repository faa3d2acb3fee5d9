"""App labels on a live sensor, end to end: a DNS lookup, then TLS, in namespaces.

Two hosts joined by a veth link: ``a`` runs the sensor (capturing its end of the link) and
the collector (on loopback, so its traffic is not in the data); ``b`` runs a name server
(on its IPv6 address) that says ``video.nwtest.example`` is b's IPv4 address, a TLS server
on port 443 and a plain TCP server on port 8443 (same address). A client in ``a`` looks the
name up, fetches over TLS with that name as SNI, then over plain TCP. The rules file maps
``*.nwtest.example`` to the app ``nwvideo``.

``report apps`` must show ``nwvideo`` with exactly the bytes of both TCP connections, as
tshark reads them from a tcpdump capture of the same link; ``report apps --by name`` must
say the TLS connection's label came from its SNI and the plain one's from the DNS answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.netns import (
    Topology,
    netns_fixture,  # noqa: F401  (the netns fixture)
)
from fixtures.procs import Proc, start_netwarden, tail, wait_until, write_sensor_config

NETWARDEN = Path(sys.executable).with_name("netwarden")
NAME = "video.nwtest.example"
APP = "nwvideo"
PORT = 50561  # the collector, on a's loopback
QUERY = f"127.0.0.1:{PORT}"
TLS_BYTES = 300_000
PLAIN_BYTES = 120_000
MARKER_PORT = 45998

SERVER = r"""
import socket, ssl, sys, threading
from netwarden.minidns import DNS_PORT, QTYPE_A, dns_answer
v4, v6, cert, key, tls_bytes, plain_bytes = sys.argv[1:7]
zone = {sys.argv[7]: {QTYPE_A: [v4]}}
dns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
dns.bind((v6, DNS_PORT))
def answer():
    while True:
        q, peer = dns.recvfrom(4096)
        r = dns_answer(q, zone)
        if r is not None:
            dns.sendto(r, peer)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
def serve(port, n, tls):
    s = socket.create_server((v4, port))
    while True:
        c, _ = s.accept()
        if tls:
            c = ctx.wrap_socket(c, server_side=True)
        c.sendall(bytes(n))
        if tls:
            c = c.unwrap()
        c.shutdown(socket.SHUT_WR)
        while c.recv(4096):
            pass
        c.close()
for t in (answer, lambda: serve(443, int(tls_bytes), True),
          lambda: serve(8443, int(plain_bytes), False)):
    threading.Thread(target=t, daemon=True).start()
print("READY", flush=True)
sys.stdin.read()
"""

CLIENT = r"""
import json, socket, ssl, sys
from netwarden.minidns import QTYPE_A, dns_resolve
dns_server, name, marker_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
addr = dns_resolve(dns_server, name, QTYPE_A)[0]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
got = {}
with socket.create_connection((addr, 443)) as raw:
    with ctx.wrap_socket(raw, server_hostname=name) as s:
        n = 0
        while True:
            try:
                b = s.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not b:
                break
            n += len(b)
        got["tls"] = n
with socket.create_connection((addr, 8443)) as s:
    n = 0
    while b := s.recv(65536):
        n += len(b)
    got["plain"] = n
with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u:  # not to the app's address
    u.sendto(b"marker", (dns_server, marker_port))
print(json.dumps({"address": addr, **got}))
"""


def _report(topo: Topology, *args: str) -> dict[str, Any]:
    proc = topo.run("a", [str(NETWARDEN), "report", *args, "--collector", QUERY,
                          "--format", "json"], check=False, timeout=60)
    assert proc.returncode == 0, f"report {' '.join(args)}: {proc.stderr}"
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def _client_hello_names(pcap: Path) -> list[str]:
    """The SNI of every ClientHello in ``pcap``, read by tshark from the link capture
    (independent of the sensor's own pass over its copied flow heads)."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "tls.handshake.type == 1",
                          "-T", "fields", "-e", "tls.handshake.extensions_server_name"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def _frame_bytes(pcap: Path, display_filter: str) -> int:
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
                          "-e", "frame.len"], capture_output=True, text=True, check=True)
    return sum(int(x) for x in out.stdout.split())


@pytest.fixture
def hosts(netns: Any, tmp_path: Path) -> Iterator[tuple[Topology, dict[str, str]]]:
    topo: Topology = netns(["a", "b"])
    link = topo.link("a", "b")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", f"/CN={NAME}", "-days", "2"],
                   check=True, capture_output=True)
    server = topo.popen("b", [sys.executable, "-c", SERVER, link.addr("b", 4),
                              link.addr("b", 6), str(cert), str(key), str(TLS_BYTES),
                              str(PLAIN_BYTES), NAME],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
    assert server.stdout is not None and server.stdout.readline().strip() == "READY"
    info = {"ifname": link.ifname("a"), "b4": link.addr("b", 4), "b6": link.addr("b", 6)}
    try:
        yield topo, info
    finally:
        server.kill()
        server.wait(timeout=10)


def _start(topo: Topology, tmp: Path, name: str, argv: list[str]) -> Proc:
    return start_netwarden(topo, "a", name, argv, tmp)


def test_dns_then_tls_is_labelled_with_the_rules_app(
        hosts: tuple[Topology, dict[str, str]], tmp_path: Path) -> None:
    topo, info = hosts
    rules = tmp_path / "apps.toml"
    rules.write_text(f'[[app]]\nname = "{APP}"\nmatch = ["*.nwtest.example"]\n')
    # a loaded CI machine may take more than the default second to dissect the heads
    config = write_sensor_config(tmp_path / "sensor.toml", "a", info["ifname"], QUERY,
                                 extra=f'[apps]\nrules_file = "{rules}"\nmax_wait_s = 10.0\n')
    pcap = tmp_path / "link.pcap"
    collector = _start(topo, tmp_path, "collector", [
        "collector", "serve", "--listen", QUERY, "--store", str(tmp_path / "store"),
        "--database", "nw_apps"])
    procs = [collector]
    dump = topo.popen("a", ["tcpdump", "-i", info["ifname"], "-w", str(pcap), "-U",
                            "-s", "0", "tcp"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE)
    try:
        collector.wait_event("collector listening", timeout_s=60)
        sensor = _start(topo, tmp_path, "sensor", ["sensor", "run", "--config", str(config)])
        procs.append(sensor)
        collector.wait_event("sensor connected", host="a", timeout_s=60)
        time.sleep(0.5)  # tcpdump is capturing by now
        client = topo.python("a", CLIENT, info["b6"], NAME, str(MARKER_PORT), timeout=60)
        got = json.loads(client.stdout.strip().splitlines()[-1])
        assert got == {"address": info["b4"], "tls": TLS_BYTES, "plain": PLAIN_BYTES}

        def marker_stored() -> bool:
            try:
                rows = _report(topo, "conversations", "--kind", "udp")["rows"]
            except AssertionError:  # nothing stored yet
                return False
            return any(r["port_b"] == MARKER_PORT or r["port_a"] == MARKER_PORT
                       for r in rows)

        wait_until(marker_stored, 40, "the marker datagram in the reports",
                   lambda: "\n".join(tail(p.log) for p in procs))
        apps = {r["app"]: r for r in _report(topo, "apps")["rows"]}
        names = _report(topo, "apps", "--by", "name")["rows"]
    finally:
        dump.terminate()
        dump.wait(timeout=10)
        for p in reversed(procs):
            p.terminate()

    assert _client_hello_names(pcap) == [NAME]
    tls_bytes = _frame_bytes(pcap, "tcp.port == 443")
    plain_bytes = _frame_bytes(pcap, "tcp.port == 8443")
    assert tls_bytes > TLS_BYTES and plain_bytes > PLAIN_BYTES
    assert APP in apps, f"no {APP} row in report apps: {sorted(apps)}"
    assert int(apps[APP]["bytes"]) == tls_bytes + plain_bytes, apps[APP]
    by_source = {(r["name"], r["source"]): r for r in names if r["name"] == NAME}
    assert set(by_source) >= {(NAME, "tls"), (NAME, "dns")}, names
    assert int(by_source[(NAME, "tls")]["bytes"]) == tls_bytes
    assert int(by_source[(NAME, "dns")]["bytes"]) == plain_bytes
