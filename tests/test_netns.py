"""The network-namespace test fixture and the traffic tool (tests/fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fixtures.netns import (
    PREFIX,
    Topology,
    _ip,
    clean_stale,
    netns_fixture,  # noqa: F401  (the netns fixture)
    require_netns,
)


def _namespaces() -> set[str]:
    out = _ip("netns", "list", check=False).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.split()}


def test_link_carries_udp_and_tcp_both_ip_versions(netns):
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    for version in (4, 6):
        sink = topo.traffic_popen("a", "udp-recv", link.addr("a", version), "9000",
                                  "--count", "50", "--timeout", "10")
        assert sink.stdout is not None
        assert sink.stdout.readline().strip() == "READY"
        sent = json.loads(topo.traffic("b", "udp-send", link.addr("a", version), "9000",
                                       "--count", "50", "--size", "300").stdout)
        out, _ = sink.communicate(timeout=15)
        assert sent == {"sent": 50, "bytes": 15000, "src_port": sent["src_port"]}
        assert json.loads(out) == {"received": 50, "bytes": 15000}

        server = topo.traffic_popen("a", "tcp-server", link.addr("a", version), "9001",
                                    "--timeout", "10")
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "READY"
        topo.traffic("b", "tcp-send", link.addr("a", version), "9001", "--bytes", "1000003")
        out, _ = server.communicate(timeout=15)
        assert json.loads(out)["received"] == 1000003


def test_hosts_are_isolated_and_addressed(netns):
    topo = netns(["a", "b", "c"])
    ab = topo.link("a", "b")
    out = topo.run("a", ["ip", "-o", "addr", "show", "dev", ab.ifname("a")]).stdout
    assert "10.231.1.1/24" in out and "fd00:231:1::1/64" in out
    # c has no link: only its loopback
    links = topo.run("c", ["ip", "-o", "link"]).stdout.splitlines()
    assert [ln.split(":")[1].strip() for ln in links] == ["lo"]
    assert "UP" in links[0] or "UNKNOWN" in links[0]
    # nothing was created in the test process's own namespace
    assert ab.ifname("a") not in _ip("-o", "link").stdout
    assert set(topo.addresses("b")) == {"127.0.0.1", "::1", "10.231.1.2", "fd00:231:1::2"}


def test_lan_joins_every_host(netns):
    topo = netns(["a", "b", "c"])
    lan = topo.lan()
    for version in (4, 6):
        sink = topo.traffic_popen("c", "udp-recv", lan.addr("c", version), "9000",
                                  "--count", "20", "--timeout", "10")
        assert sink.stdout is not None
        assert sink.stdout.readline().strip() == "READY"
        topo.traffic("a", "udp-send", lan.addr("c", version), "9000", "--count", "10",
                     "--size", "100")
        topo.traffic("b", "udp-send", lan.addr("c", version), "9000", "--count", "10",
                     "--size", "100")
        out, _ = sink.communicate(timeout=15)
        assert json.loads(out)["received"] == 20


def test_close_removes_namespaces_and_kills_processes():
    require_netns()
    topo = Topology(["a", "b"])
    names = {topo.ns("a"), topo.ns("b")}
    assert names <= _namespaces()
    sleeper = topo.popen("a", [sys.executable, "-c", "import time; time.sleep(60)"])
    stray = subprocess.Popen(topo.command("b", ["sleep", "60"]))  # not tracked by topo
    topo.close()
    assert not names & _namespaces()
    assert sleeper.poll() is not None
    assert stray.wait(timeout=5) != 0
    topo.close()  # idempotent


def test_close_on_failure_inside_with():
    require_netns()
    with pytest.raises(ZeroDivisionError), Topology(["a"]) as topo:
        name = topo.ns("a")
        assert name in _namespaces()
        1 / 0  # noqa: B018
    assert name not in _namespaces()


def test_stale_namespaces_of_dead_processes_are_cleaned():
    require_netns()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = f"{PREFIX}{int(dead.stdout)}-abcdef-a"
    mine = f"{PREFIX}{os.getpid()}-abcdef-a"
    _ip("netns", "add", stale)
    _ip("netns", "add", mine)
    try:
        removed = clean_stale()
        assert stale in removed
        assert stale not in _namespaces()
        assert mine in _namespaces()  # a live process's namespace is left alone
    finally:
        _ip("netns", "del", stale, check=False)
        _ip("netns", "del", mine, check=False)


def test_bad_host_names_are_refused():
    with pytest.raises(ValueError, match="host name"):
        Topology(["A-very-long-name"])
    with pytest.raises(ValueError, match="repeat"):
        Topology(["a", "a"])


def test_prefix_names_the_namespaces_and_scopes_clean_stale():
    require_netns()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale_other = f"nwq-{int(dead.stdout)}-abcdef-a"
    _ip("netns", "add", stale_other)
    try:
        with Topology(["a"], prefix="nwq-") as topo:  # cleans nwq- leftovers of the dead
            assert topo.ns("a").startswith(f"nwq-{os.getpid()}-")
            assert topo.ns("a") in _namespaces()
            assert stale_other not in _namespaces()
        assert topo.ns("a") not in _namespaces()
        _ip("netns", "add", stale_other)
        assert stale_other not in clean_stale()  # the default prefix leaves it alone
        assert stale_other in _namespaces()
    finally:
        _ip("netns", "del", stale_other, check=False)
    with pytest.raises(ValueError, match="prefix"):
        Topology(["a"], prefix="Bad")
