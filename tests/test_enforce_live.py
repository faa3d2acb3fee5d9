"""The enforcer on real iptables, inside namespaces made by the tests (never the host's).

Two hosts ``a`` and ``b`` joined by a veth pair; the enforcer runs every iptables command
of host ``a`` through ``ip netns exec``; traffic is measured at the receiving end.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fixtures.netns import TRAFFIC, Topology, netns_fixture  # noqa: F401

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce import EnforceConfig, Enforcer, ruleset_id

COLLECTOR_PORT = 50051
S = 10**9


@pytest.fixture(name="pair")
def pair_fixture(netns: Callable[..., Topology]) -> Iterator[Topology]:
    topo = netns(["a", "b"])
    topo.link("a", "b")
    yield topo


def runner(topo: Topology, host: str = "a") -> Callable[[Sequence[str], str | None],
                                                        subprocess.CompletedProcess[str]]:
    def run(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(topo.command(host, list(argv)), input=stdin,
                              capture_output=True, text=True, timeout=30)
    return run


def enforcer(topo: Topology, state: Path, mode: str = "on", host: str = "a",
             **kw: object) -> Enforcer:
    """An enforcer of ``host`` whose collector is the other host."""
    cfg = EnforceConfig(mode=mode, state_file=str(state),  # type: ignore[arg-type]
                        hooks=["input", "output"], reconcile_s=60.0)
    other = topo.links[0].addr("b" if host == "a" else "a")
    return Enforcer(cfg, [f"{other}:{COLLECTOR_PORT}"], run=runner(topo, host),
                    **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def running(e: Enforcer) -> Iterator[pb.AppliedState]:
    """``e`` started (its state after start given); stopped and uninstalled after."""
    try:
        yield e.start()
    finally:
        e.stop()
        e.uninstall()


def rule(rid: str, action: int = pb.ACTION_BLOCK_DROP, *, direction: int = pb.DIRECTION_OUT,
         protocol: int = pb.PROTOCOL_ANY, ports: Sequence[int] = (),
         remote: Sequence[str] = (), ttl_s: float = 120.0, **kw: object) -> pb.Rule:
    return pb.Rule(id=rid, policy="test", action=action,  # type: ignore[arg-type]
                   expires_ns=time.time_ns() + int(ttl_s * S),
                   match=pb.Match(direction=direction, protocol=protocol,  # type: ignore[arg-type]
                                  remote_cidrs=list(remote),
                                  ports=[pb.PortRange(low=p, high=p) for p in ports]),
                   **kw)  # type: ignore[arg-type]


def enforcement(version: int, *rules: pb.Rule) -> pb.Enforcement:
    return pb.Enforcement(version=version, ruleset_id=ruleset_id(rules), rules=rules,
                          issued_ns=time.time_ns())


def udp_arrives(topo: Topology, port: int, count: int = 5, *, v6: bool = False,
                wait_s: float = 0.3) -> int:
    """Datagrams sent by a that b receives on ``port`` (sockets opened in the namespaces)."""
    link = topo.links[0]
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    dst = link.addr("b", 6 if v6 else 4)
    with topo.enter("b"):
        rx = socket.socket(fam, socket.SOCK_DGRAM)
    with topo.enter("a"):
        tx = socket.socket(fam, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind((dst, port))
        for _ in range(count):
            with contextlib.suppress(PermissionError):  # dropped in OUTPUT: EPERM
                tx.sendto(b"x" * 100, (dst, port))
        rx.settimeout(wait_s)
        got = 0
        try:
            while got < count:
                rx.recv(2048)
                got += 1
        except TimeoutError:
            pass
    return got


def tcp_works(topo: Topology, client: str, server: str, port: int) -> bool:
    """A TCP connection from ``client`` to ``server``:``port`` moves 100 kB."""
    link = topo.links[0]
    srv = topo.traffic_popen(server, "tcp-server", link.addr(server), str(port),
                             "--timeout", "5")
    assert srv.stdout is not None and srv.stdout.readline().strip() == "READY"
    sent = topo.run(client, [*_traffic(), "tcp-send", link.addr(server), str(port),
                             "--bytes", "100000", "--timeout", "3"], check=False)
    out, _ = srv.communicate(timeout=10)
    return sent.returncode == 0 and json.loads(out.splitlines()[-1])["received"] == 100000


def _traffic() -> list[str]:
    return [sys.executable, str(TRAFFIC)]


def save(topo: Topology, binary: str = "iptables") -> str:
    """``iptables-save`` of host a without counters and timestamps."""
    out = topo.run("a", [f"{binary}-save"]).stdout
    return "\n".join(x for x in out.splitlines() if not x.startswith("#"))


def chain_lines(text: str, chain: str) -> list[str]:
    return [x for x in text.splitlines() if x.startswith(f"-A {chain} ")]


def test_block_lockout_protection_counters_and_clean_uninstall(
        pair: Topology, tmp_path: Path) -> None:
    topo = pair
    # someone else's rules, which netwarden must never touch
    for binary in ("iptables", "ip6tables"):
        topo.run("a", [binary, "-A", "INPUT", "-p", "udp", "--dport", "7777", "-j", "ACCEPT"])
        topo.run("a", [binary, "-N", "FOREIGN"])
        topo.run("a", [binary, "-A", "FOREIGN", "-p", "tcp", "--dport", "80", "-j", "ACCEPT"])
    before = {b: save(topo, b) for b in ("iptables", "ip6tables")}
    e = enforcer(topo, tmp_path / "state.json")
    with running(e):
        assert udp_arrives(topo, 9000) == 5
        st = e.apply(enforcement(1, rule("udp9000", protocol=pb.PROTOCOL_UDP, ports=[9000])))
        assert (st.version, st.mode, st.error, list(st.refused)) == (1, "on", "", [])
        assert udp_arrives(topo, 9000) == 0
        assert udp_arrives(topo, 9000, v6=True) == 0
        assert udp_arrives(topo, 9001) == 5          # other ports pass
        # others' rules are byte-identical; INPUT only gained the jump, first
        for binary in ("iptables", "ip6tables"):
            now = save(topo, binary)
            assert chain_lines(now, "FOREIGN") == chain_lines(before[binary], "FOREIGN")
            assert chain_lines(now, "INPUT") == [
                "-A INPUT -j NETWARDEN-IN", *chain_lines(before[binary], "INPUT")]

        # block everything, both ways: the collector link and SSH still pass
        st = e.apply(enforcement(2, rule("all", direction=pb.DIRECTION_BOTH)))
        assert st.version == 2 and not st.refused
        assert udp_arrives(topo, 9001) == 0
        assert tcp_works(topo, "a", "b", COLLECTOR_PORT)   # sensor -> its collector
        assert tcp_works(topo, "b", "a", 22)               # management: SSH into the sensor
        assert not tcp_works(topo, "a", "b", 8080)         # anything else: blocked
        counts = {c.rule_id: c for c in e.reconcile().counters}
        assert counts["all"].packets >= 5 and counts["all"].bytes > 500
        assert counts["all"].matched_packets >= counts["all"].packets
        assert udp_arrives(topo, 9001) == 0
        again = {c.rule_id: c for c in e.reconcile().counters}
        assert again["all"].packets >= counts["all"].packets + 5

        # a rule only hitting management access is refused, with its reason
        st = e.apply(enforcement(3, rule("ssh", protocol=pb.PROTOCOL_TCP, ports=[22],
                                         direction=pb.DIRECTION_IN)))
        assert list(st.refused) == [
            "ssh: matches only management access (tcp 22), which is never touched"]
    assert {b: save(topo, b) for b in ("iptables", "ip6tables")} == before


def test_throttle_caps_a_udp_flood(pair: Topology, tmp_path: Path) -> None:
    topo = pair
    rate, size, pps, count = 200_000, 1000, 1500, 4500   # 1.5 MB/s offered for 3 s
    e = enforcer(topo, tmp_path / "state.json", host="b")   # throttles what b receives
    with running(e):
        e.apply(enforcement(1, rule("cap", pb.ACTION_THROTTLE, protocol=pb.PROTOCOL_UDP,
                                    direction=pb.DIRECTION_IN, ports=[9100, 9101],
                                    rate_bytes_per_s=rate)))
        dst = topo.links[0].addr("b")
        recv = topo.traffic_popen("b", "udp-recv", dst, "9100", "--count", str(count),
                                  "--timeout", "5")
        assert recv.stdout is not None and recv.stdout.readline().strip() == "READY"
        # hashlimit starts with a full bucket (about burst + one second's worth):
        # drain it with 1 s of flood to another port of the rule, then measure
        topo.traffic("a", "udp-send", dst, "9101", "--count", str(pps), "--size", str(size),
                     "--rate", str(pps))
        t0 = time.monotonic()
        topo.traffic("a", "udp-send", dst, "9100", "--count", str(count), "--size", str(size),
                     "--rate", str(pps))
        elapsed = time.monotonic() - t0
        got = json.loads(recv.communicate(timeout=10)[0].splitlines()[-1])
        # hashlimit counts IP packets: payload + 8 (UDP) + 20 (IPv4)
        measured = got["received"] * (size + 28) / elapsed
        print(f"throttle {rate} B/s: {got['received']} of {count} datagrams in "
              f"{elapsed:.2f} s -> {measured:.0f} B/s ({measured / rate - 1:+.1%})")
        assert abs(measured / rate - 1) <= 0.25
        counts = {c.rule_id: c for c in e.reconcile().counters}
        # every datagram matched; those not received on 9100 were dropped (plus most of
        # the warm-up's)
        assert counts["cap"].matched_packets == pps + count
        assert count - got["received"] < counts["cap"].packets < pps + count - got["received"]


def test_drift_is_detected_and_repaired(pair: Topology, tmp_path: Path) -> None:
    topo = pair
    e = enforcer(topo, tmp_path / "state.json")
    with running(e):
        e.apply(enforcement(1, rule("udp9000", protocol=pb.PROTOCOL_UDP, ports=[9000])))
        assert e.reconcile().drift == []
        entry = next(x for x in chain_lines(save(topo), "NETWARDEN-OUT") if "nw:udp9000" in x)
        topo.run("a", ["iptables", *shlex.split(entry.replace("-A ", "-D ", 1))])
        assert udp_arrives(topo, 9000) == 5                   # the hand edit took effect
        st = e.reconcile()
        assert list(st.drift) == ["IPv4: NETWARDEN-OUT: rule udp9000: missing"]
        assert udp_arrives(topo, 9000) == 0                   # repaired
        # a line added by hand, a rule edited, the jump removed: all repaired at once
        topo.run("a", ["iptables", "-I", "NETWARDEN-OUT", "1", "-j", "ACCEPT"])
        topo.run("a", ["ip6tables", "-D", "OUTPUT", "-j", "NETWARDEN-OUT"])
        st = e.reconcile()
        assert sorted(st.drift) == [
            "IPv4: NETWARDEN-OUT: rule (no comment): unexpected line(s): "
            "-A NETWARDEN-OUT -j ACCEPT",
            "IPv6: OUTPUT: jump to NETWARDEN-OUT: missing"]
        assert e.reconcile().drift == []
        assert udp_arrives(topo, 9000) == 0 and udp_arrives(topo, 9000, v6=True) == 0
        # left over after a restart: a stale netwarden chain
        topo.run("a", ["iptables", "-N", "NETWARDEN-R-0000000000"])
        assert e.reconcile().drift[0] == (
            "IPv4: chain NETWARDEN-R-0000000000 is not netwarden's rendering (left over)")
        assert "NETWARDEN-R-0000000000" not in save(topo)


def test_expiry_lifts_the_rule_on_time(pair: Topology, tmp_path: Path) -> None:
    topo = pair
    changes: list[tuple[float, pb.AppliedState]] = []
    e = enforcer(topo, tmp_path / "state.json",
                 on_change=lambda st: changes.append((time.time(), st)))
    with running(e):
        r = rule("short", protocol=pb.PROTOCOL_UDP, ports=[9000], ttl_s=2.0)
        e.apply(enforcement(1, r, rule("long", protocol=pb.PROTOCOL_UDP, ports=[9001])))
        assert udp_arrives(topo, 9000) == 0
        deadline = r.expires_ns / S
        while time.time() < deadline + 2 and not any(st.expired for _, st in changes):
            time.sleep(0.05)
        lifted_at, st = next((t, s) for t, s in changes if s.expired)
        print(f"expiry: lifted {lifted_at - deadline:+.3f} s after expires_ns")
        assert 0 <= lifted_at - deadline < 0.5
        assert list(st.expired) == ["short"] and [c.rule_id for c in st.counters] == ["long"]
        assert udp_arrives(topo, 9000) == 5
        assert udp_arrives(topo, 9001) == 0


def test_restart_restores_enforcement_without_the_collector(
        pair: Topology, tmp_path: Path) -> None:
    topo = pair
    state = tmp_path / "enforce" / "state.json"
    first = enforcer(topo, state)
    first.start()
    gone = rule("gone", protocol=pb.PROTOCOL_UDP, ports=[9001], ttl_s=1.0)
    first.apply(enforcement(7, rule("kept", protocol=pb.PROTOCOL_UDP, ports=[9000]), gone))
    first.stop()
    first.uninstall()                                  # as after a reboot: tables empty
    assert udp_arrives(topo, 9000) == 5
    time.sleep(max(0.0, gone.expires_ns / S - time.time()) + 0.1)
    with running(enforcer(topo, state)) as st:
        assert (st.version, [c.rule_id for c in st.counters]) == (7, ["kept"])
        assert list(st.expired) == ["gone"] and not st.refused
        assert udp_arrives(topo, 9000) == 0
        assert udp_arrives(topo, 9001) == 5


def test_dry_run_applies_nothing_and_off_removes_leftovers(
        pair: Topology, tmp_path: Path) -> None:
    topo = pair
    topo.run("a", ["iptables", "-A", "INPUT", "-p", "udp", "--dport", "7777", "-j", "ACCEPT"])
    before = save(topo)
    dry = enforcer(topo, tmp_path / "dry.json", mode="dry-run")
    dry.start()
    st = dry.apply(enforcement(1, rule("all", direction=pb.DIRECTION_BOTH)))
    dry.stop()
    assert st.mode == "dry-run" and st.error == ""
    assert save(topo) == before and udp_arrives(topo, 9000) == 5
    assert "-A NETWARDEN-OUT -m comment --comment \"nw:all\"" in dry.rendered[4]
    on = enforcer(topo, tmp_path / "on.json")
    on.start()
    on.apply(enforcement(1, rule("all", direction=pb.DIRECTION_BOTH)))
    on.stop()
    assert udp_arrives(topo, 9000) == 0
    off = enforcer(topo, tmp_path / "on.json", mode="off")
    off.start()
    off.stop()
    assert save(topo) == before and udp_arrives(topo, 9000) == 5


def test_apply_latency_of_100_rules(pair: Topology, tmp_path: Path) -> None:
    topo = pair
    e = enforcer(topo, tmp_path / "state.json")
    with running(e):
        rules = [rule(f"r{i:03d}", protocol=pb.PROTOCOL_UDP, ports=[20000 + i],
                      remote=[f"198.51.{i}.0/24", f"2001:db8:{i:x}::/48"])
                 for i in range(100)]
        t0 = time.monotonic()
        st = e.apply(enforcement(1, *rules))
        first = time.monotonic() - t0
        rules[0] = rule("r000", protocol=pb.PROTOCOL_UDP, ports=[30000])
        t0 = time.monotonic()
        e.apply(enforcement(2, *rules))
        second = time.monotonic() - t0
        t0 = time.monotonic()
        assert e.reconcile().drift == []
        check = time.monotonic() - t0
        print(f"100 rules x 2 families: apply {first:.2f} s, re-apply {second:.2f} s, "
              f"drift check {check:.2f} s")
        assert st.error == "" and len(st.counters) == 100
        assert len(chain_lines(save(topo), "NETWARDEN-OUT")) == 100 + 3  # + guards
        assert first < 10 and second < 10
