"""The host's own addresses and the watcher that follows them (sensor/hostaddrs.py)."""

from __future__ import annotations

import ipaddress
import json
import selectors
import subprocess
import sys
import time

import pytest
from fixtures.netns import netns_fixture  # noqa: F401  (the netns fixture)

from netwarden.errors import InputError
from netwarden.sensor.hostaddrs import AddressChange, HostAddresses, host_addresses, normalize


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_normalize_strips_zones_and_canonicalizes():
    assert normalize("fe80::0001%eth0") == "fe80::1"
    assert normalize("FD00:0:0::5") == "fd00::5"
    assert normalize("10.0.0.1") == "10.0.0.1"
    with pytest.raises(InputError, match="not an IP address: 'eth0'"):
        normalize("eth0")


def test_watcher_reports_changes_only_when_due():
    current = ["10.0.0.1", "fe80::1%eth0"]
    clock = FakeClock()
    w = HostAddresses(every_s=5, reader=lambda: list(current), clock=clock)
    assert w.addresses == ("10.0.0.1", "fe80::1")
    current.append("192.168.1.9")
    clock.now += 4.9
    assert w.check() is None  # not due yet
    assert w.addresses == ("10.0.0.1", "fe80::1")
    clock.now += 0.2
    assert w.check() == AddressChange(("10.0.0.1", "192.168.1.9", "fe80::1"),
                                      added=("192.168.1.9",), removed=())
    clock.now += 5
    assert w.check() is None  # due, but nothing changed
    current.remove("10.0.0.1")
    current.append("2001:db8::7")
    assert w.check() is None  # read 0 s ago
    change = w.check(force=True)
    assert change is not None
    assert change.added == ("2001:db8::7",) and change.removed == ("10.0.0.1",)
    assert w.addresses == ("192.168.1.9", "2001:db8::7", "fe80::1")  # v4 first, numeric order


def test_extra_addresses_always_count():
    w = HostAddresses(reader=lambda: ["10.0.0.1"], extra=["203.0.113.5"])
    assert w.addresses == ("10.0.0.1", "203.0.113.5")
    with pytest.raises(ValueError, match="every_s"):
        HostAddresses(every_s=0)


def test_host_addresses_of_this_process():
    found = host_addresses()
    assert "127.0.0.1" in found
    assert found == tuple(sorted(set(found), key=lambda a: (ipaddress.ip_address(a).version,
                                                             int(ipaddress.ip_address(a)))))
    assert "127.0.0.1" not in host_addresses(loopback=False)


def test_addresses_inside_a_namespace(netns):
    topo = netns(["a", "b"])
    topo.link("a", "b")
    with topo.enter("a"):
        found = set(host_addresses())
    mine = set(topo.addresses("a"))
    assert mine <= found
    assert all(ipaddress.ip_address(a).is_link_local for a in found - mine)
    assert "10.231.1.2" not in found  # b's address


WATCH = """
import json, sys, time
from netwarden.sensor.hostaddrs import HostAddresses
w = HostAddresses(every_s=0.05)
print(json.dumps(w.addresses), flush=True)
end = time.monotonic() + 20
left = int(sys.argv[1])
while left and time.monotonic() < end:
    change = w.check()
    if change is not None:
        print(json.dumps({"added": change.added, "removed": change.removed}), flush=True)
        left -= 1
    time.sleep(0.01)
"""


def _line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def test_watcher_follows_address_changes_in_a_namespace(netns):
    topo = netns(["a"])
    ns = topo.ns("a")
    proc = topo.popen("a", [sys.executable, "-c", WATCH, "3"])
    first = json.loads(_line(proc))
    assert "127.0.0.1" in first and "10.231.77.7" not in first
    steps = [
        (["addr", "add", "10.231.77.7/32", "dev", "lo"], {"added": ["10.231.77.7"], "removed": []}),
        (["addr", "add", "fd00:231:77::7/128", "dev", "lo", "nodad"],
         {"added": ["fd00:231:77::7"], "removed": []}),
        (["addr", "del", "10.231.77.7/32", "dev", "lo"], {"added": [], "removed": ["10.231.77.7"]}),
    ]
    for cmd, want in steps:
        t0 = time.monotonic()
        subprocess.run(["ip", "-n", ns, *cmd], check=True, timeout=10)
        assert json.loads(_line(proc)) == want
        assert time.monotonic() - t0 < 2
    assert proc.wait(timeout=10) == 0
