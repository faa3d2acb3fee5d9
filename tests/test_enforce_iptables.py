"""iptables rendering (golden), iptables-save parsing, counters, drift and the restore
transaction. Pure: no iptables runs here (tests/test_enforce_live.py runs the real ones
inside namespaces)."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence

import pytest

from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.enforce.iptables import (
    IptablesError,
    Live,
    Tables,
    counters,
    drift,
    hashlimit_name,
    parse_save,
    render,
    restore_text,
    rule_chain,
    snapshot,
)
from netwarden.sensor.enforce.rules import Rule, rule_from_proto
from netwarden.sensor.enforce.safety import Protected

NOW = 10**18
EXP = NOW + 10**12


def make(rule_id: str, action: int, match: pb.Match, **kw: object) -> Rule:
    return rule_from_proto(pb.Rule(id=rule_id, action=action, expires_ns=EXP,  # type: ignore[arg-type]
                                   match=match, **kw), NOW)  # type: ignore[arg-type]


RULES = [
    make("block-udp", pb.ACTION_BLOCK_DROP, pb.Match(
        direction=pb.DIRECTION_OUT, remote_cidrs=["203.0.113.0/24", "2001:db8::/32"],
        ports=[pb.PortRange(low=9000, high=9010)])),
    make("cap", pb.ACTION_THROTTLE, pb.Match(direction=pb.DIRECTION_BOTH, protocol=pb.PROTOCOL_UDP),
         rate_bytes_per_s=200000, exempt_cidrs=["10.9.0.0/16"]),
    make("rej", pb.ACTION_BLOCK_REJECT, pb.Match(
        direction=pb.DIRECTION_IN, protocol=pb.PROTOCOL_ICMP, local_cidrs=["10.0.0.0/8"])),
]
PROTECTED = Protected(collectors=((ipaddress.ip_address("192.0.2.10"), 50051),))

GOLDEN_V4_IN_OUT = """\
*filter
:NETWARDEN-IN - [0:0]
:NETWARDEN-OUT - [0:0]
:NETWARDEN-R-f01330ed07 - [0:0]
:NETWARDEN-R-45e84635bc - [0:0]
:NETWARDEN-R-bac5c8d4a5 - [0:0]
-A NETWARDEN-IN -i lo -m comment --comment "nw:guard:loopback" -j RETURN
-A NETWARDEN-IN -p tcp -m tcp --dport 22 -m comment --comment "nw:guard:management_tcp_22" -j RETURN
-A NETWARDEN-IN -s 192.0.2.10/32 -p tcp -m tcp --sport 50051 -m comment --comment "nw:guard:collector_192.0.2.10_50051" -j RETURN
-A NETWARDEN-IN -p udp -m comment --comment "nw:cap" -j NETWARDEN-R-45e84635bc
-A NETWARDEN-IN -d 10.0.0.0/8 -p icmp -m comment --comment "nw:rej" -j NETWARDEN-R-bac5c8d4a5
-A NETWARDEN-OUT -o lo -m comment --comment "nw:guard:loopback" -j RETURN
-A NETWARDEN-OUT -p tcp -m tcp --sport 22 -m comment --comment "nw:guard:management_tcp_22" -j RETURN
-A NETWARDEN-OUT -d 192.0.2.10/32 -p tcp -m tcp --dport 50051 -m comment --comment "nw:guard:collector_192.0.2.10_50051" -j RETURN
-A NETWARDEN-OUT -d 203.0.113.0/24 -p tcp -m multiport --ports 9000:9010 -m comment --comment "nw:block-udp" -j NETWARDEN-R-f01330ed07
-A NETWARDEN-OUT -d 203.0.113.0/24 -p udp -m multiport --ports 9000:9010 -m comment --comment "nw:block-udp" -j NETWARDEN-R-f01330ed07
-A NETWARDEN-OUT -p udp -m comment --comment "nw:cap" -j NETWARDEN-R-45e84635bc
-A NETWARDEN-R-f01330ed07 -m comment --comment "nw:block-udp" -j DROP
-A NETWARDEN-R-45e84635bc -s 10.9.0.0/16 -m comment --comment "nw:cap:exempt" -j RETURN
-A NETWARDEN-R-45e84635bc -d 10.9.0.0/16 -m comment --comment "nw:cap:exempt" -j RETURN
-A NETWARDEN-R-45e84635bc -m hashlimit --hashlimit-above 200000b/s --hashlimit-burst 200000b --hashlimit-name nw050e42fb2312 -m comment --comment "nw:cap" -j DROP
-A NETWARDEN-R-bac5c8d4a5 -m comment --comment "nw:rej" -j REJECT --reject-with icmp-port-unreachable
-I INPUT 1 -j NETWARDEN-IN
-I OUTPUT 1 -j NETWARDEN-OUT
COMMIT
"""

GOLDEN_V6_FORWARD = """\
*filter
:NETWARDEN-FWD - [0:0]
:NETWARDEN-R-f01330ed07 - [0:0]
:NETWARDEN-R-45e84635bc - [0:0]
-A NETWARDEN-FWD -d 2001:db8::/32 -p tcp -m multiport --ports 9000:9010 -m comment --comment "nw:block-udp" -j NETWARDEN-R-f01330ed07
-A NETWARDEN-FWD -d 2001:db8::/32 -p udp -m multiport --ports 9000:9010 -m comment --comment "nw:block-udp" -j NETWARDEN-R-f01330ed07
-A NETWARDEN-FWD -p udp -m comment --comment "nw:cap" -j NETWARDEN-R-45e84635bc
-A NETWARDEN-R-f01330ed07 -m comment --comment "nw:block-udp" -j DROP
-A NETWARDEN-R-45e84635bc -m hashlimit --hashlimit-above 200000b/s --hashlimit-burst 200000b --hashlimit-name nw050e42fb2312 -m comment --comment "nw:cap" -j DROP
-I FORWARD 1 -j NETWARDEN-FWD
COMMIT
"""


def test_render_golden_ipv4_input_output() -> None:
    text = restore_text(render(RULES, PROTECTED, ["input", "output"], 4), ["input", "output"],
                        Live())
    assert text == GOLDEN_V4_IN_OUT


def test_render_golden_ipv6_forward() -> None:
    # forward: both directions of each rule, identical lines once; no guards; a rule whose
    # networks have no IPv6 part (rej) is not in the IPv6 table at all
    text = restore_text(render(RULES, PROTECTED, ["forward"], 6), ["forward"], Live())
    assert text == GOLDEN_V6_FORWARD


def test_names_fit_iptables_limits_and_change_with_the_rate() -> None:
    cap = RULES[1]
    assert len(rule_chain("x" * 64)) <= 28
    assert len(hashlimit_name(cap)) <= 15
    faster = make("cap", pb.ACTION_THROTTLE, pb.Match(direction=pb.DIRECTION_BOTH),
                  rate_bytes_per_s=400000)
    assert hashlimit_name(faster) != hashlimit_name(cap)
    assert rule_chain("cap") == rule_chain("cap") != rule_chain("cap2")


def test_reject_tcp_and_any() -> None:
    any_rule = make("r", pb.ACTION_BLOCK_REJECT, pb.Match(direction=pb.DIRECTION_IN))
    lines = render([any_rule], Protected(management_ports=(), loopback=False), ["input"], 6)
    assert lines[rule_chain("r")] == [
        '-p tcp -m comment --comment "nw:r" -j REJECT --reject-with tcp-reset',
        '-m comment --comment "nw:r" -j REJECT --reject-with icmp6-port-unreachable']
    assert lines["NETWARDEN-IN"] == [f'-m comment --comment "nw:r" -j {rule_chain("r")}']


SAVED = """\
# Generated by iptables-save v1.8.9 (nf_tables) on Wed Dec  2 17:03:47 2026
*nat
:PREROUTING ACCEPT [0:0]
[5:300] -A PREROUTING -j ACCEPT
COMMIT
*filter
:INPUT ACCEPT [10:1000]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:FOREIGN - [0:0]
:NETWARDEN-IN - [0:0]
:NETWARDEN-OUT - [0:0]
:NETWARDEN-R-aaaaaaaaaa - [0:0]
:NETWARDEN-R-bbbbbbbbbb - [0:0]
[7:700] -A INPUT -j NETWARDEN-IN
[1:60] -A INPUT -s 10.9.9.9/32 -j ACCEPT
[0:0] -A OUTPUT -j NETWARDEN-OUT
[0:0] -A OUTPUT -j NETWARDEN-OUT
[0:0] -A FOREIGN -p tcp -m tcp --dport 80 -j ACCEPT
[2:120] -A NETWARDEN-IN -p tcp -m tcp --dport 22 -m comment --comment "nw:guard:management_tcp_22" -j RETURN
[5:580] -A NETWARDEN-IN -p udp -m comment --comment "nw:cap" -j NETWARDEN-R-aaaaaaaaaa
[3:300] -A NETWARDEN-OUT -p udp -m comment --comment nw:cap -j NETWARDEN-R-aaaaaaaaaa
[4:400] -A NETWARDEN-OUT -d 203.0.113.0/24 -m comment --comment "nw:blk" -j NETWARDEN-R-bbbbbbbbbb
[1:100] -A NETWARDEN-R-aaaaaaaaaa -s 10.9.0.0/16 -m comment --comment "nw:cap:exempt" -j RETURN
[6:660] -A NETWARDEN-R-aaaaaaaaaa -m hashlimit --hashlimit-above 195kb/s --hashlimit-burst 195kb --hashlimit-name nwx -m comment --comment "nw:cap" -j DROP
[4:400] -A NETWARDEN-R-bbbbbbbbbb -m comment --comment "nw:blk" -j DROP
COMMIT
"""


def test_parse_save_reads_the_filter_table_with_counters() -> None:
    live = parse_save(SAVED)
    assert live.chains[:4] == ("INPUT", "FORWARD", "OUTPUT", "FOREIGN")
    assert live.ours() == ["NETWARDEN-IN", "NETWARDEN-OUT", "NETWARDEN-R-aaaaaaaaaa",
                           "NETWARDEN-R-bbbbbbbbbb"]
    assert all(r.chain != "PREROUTING" for r in live.rules)
    first = live.rules[0]
    assert (first.chain, first.spec, first.packets, first.bytes) == (
        "INPUT", "-j NETWARDEN-IN", 7, 700)
    assert live.rules[7].comment == "nw:cap"  # unquoted comments (legacy) read too
    assert parse_save("*filter\n-A INPUT -j DROP\nCOMMIT\n").rules[0].target == "DROP"
    with pytest.raises(IptablesError, match="line 2: cannot read 'garbage'"):
        parse_save("*filter\ngarbage\n")


def test_counters_per_rule_id() -> None:
    c = counters(parse_save(SAVED))
    assert set(c) == {"cap", "blk"}  # guards and exemptions are not rules
    assert (c["cap"].packets, c["cap"].bytes) == (6, 660)
    assert (c["cap"].matched_packets, c["cap"].matched_bytes) == (8, 880)
    assert (c["blk"].packets, c["blk"].matched_packets) == (4, 4)


def test_restore_text_repairs_jumps_and_removes_stale_chains() -> None:
    live = parse_save(SAVED + "")
    desired = {"NETWARDEN-IN": ["-j DROP"], "NETWARDEN-R-aaaaaaaaaa": ["-j DROP"]}
    text = restore_text(desired, ["input"], live)
    assert text.splitlines() == [
        "*filter",
        ":NETWARDEN-IN - [0:0]",
        ":NETWARDEN-R-aaaaaaaaaa - [0:0]",
        "-D OUTPUT -j NETWARDEN-OUT",           # output no longer hooked: both jumps go
        "-D OUTPUT -j NETWARDEN-OUT",
        "-F NETWARDEN-OUT",
        "-F NETWARDEN-R-bbbbbbbbbb",
        "-X NETWARDEN-OUT",
        "-X NETWARDEN-R-bbbbbbbbbb",
        "-A NETWARDEN-IN -j DROP",
        "-A NETWARDEN-R-aaaaaaaaaa -j DROP",
        "COMMIT",
    ]  # the INPUT jump exists: not inserted again; FOREIGN and INPUT's own rule untouched
    uninstall = restore_text({}, [], live).splitlines()
    assert "-D INPUT -j NETWARDEN-IN" in uninstall
    assert not any("FOREIGN" in x or "10.9.9.9" in x for x in uninstall)
    assert [x for x in uninstall if x.startswith("-X")] == [
        f"-X {c}" for c in live.ours()]


def test_edited_jump_is_replaced() -> None:
    live = parse_save("*filter\n:INPUT ACCEPT [0:0]\n:NETWARDEN-IN - [0:0]\n"
                      "-A INPUT -i eth0 -j NETWARDEN-IN\nCOMMIT\n")
    lines = restore_text({"NETWARDEN-IN": []}, ["input"], live).splitlines()
    assert "-D INPUT -i eth0 -j NETWARDEN-IN" in lines
    assert "-I INPUT 1 -j NETWARDEN-IN" in lines


def test_drift_names_missing_extra_and_edited_lines() -> None:
    expected = snapshot(parse_save(SAVED))
    assert drift(expected, expected, 4) == []
    gone = SAVED.replace('[4:400] -A NETWARDEN-OUT -d 203.0.113.0/24 -m comment --comment '
                         '"nw:blk" -j NETWARDEN-R-bbbbbbbbbb\n', "")
    assert drift(expected, snapshot(parse_save(gone)), 4) == [
        "IPv4: NETWARDEN-OUT: rule blk: missing"]
    edited = SAVED.replace("203.0.113.0/24", "203.0.113.0/25")
    assert drift(expected, snapshot(parse_save(edited)), 6) == [
        "IPv6: NETWARDEN-OUT: rule blk: edited"]
    extra = SAVED.replace("COMMIT\n", "[0:0] -A NETWARDEN-IN -j ACCEPT\nCOMMIT\n", 2)
    assert drift(expected, snapshot(parse_save(extra)), 4) == [
        "IPv4: NETWARDEN-IN: rule (no comment): unexpected line(s): "
        "-A NETWARDEN-IN -j ACCEPT"]
    nojump = SAVED.replace("[7:700] -A INPUT -j NETWARDEN-IN\n", "")
    assert drift(expected, snapshot(parse_save(nojump)), 4) == [
        "IPv4: INPUT: jump to NETWARDEN-IN: missing"]
    assert drift(expected, [], 4)[0] == "IPv4: chain NETWARDEN-IN is missing"
    # counters alone are no drift
    assert drift(expected, snapshot(parse_save(SAVED.replace("[6:660]", "[9:990]"))), 4) == []


def test_tables_run_save_and_restore_beside_the_binary() -> None:
    calls: list[tuple[list[str], str | None]] = []

    def run(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        calls.append((list(argv), stdin))
        if argv[0].endswith("restore") and stdin == "bad":
            return subprocess.CompletedProcess(list(argv), 2, "", "line 3 failed\n")
        return subprocess.CompletedProcess(list(argv), 0, "*filter\nCOMMIT\n", "")

    t = Tables(6, "/usr/sbin/ip6tables-legacy", run)
    assert t.save() == Live()
    t.restore("*filter\nCOMMIT\n")
    assert [c[0] for c in calls] == [
        ["/usr/sbin/ip6tables-legacy-save", "-c", "-t", "filter"],
        ["/usr/sbin/ip6tables-legacy-restore", "--noflush", "-w", "5"]]
    with pytest.raises(IptablesError, match=r"ip6tables-legacy-restore --noflush -w 5: exit 2: "
                                            r"line 3 failed"):
        t.restore("bad")
