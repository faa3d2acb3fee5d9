"""Which flow records a policy counts and which hosts it selects (pure, numpy)."""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from netwarden.collector.policy.match import (
    match_mask,
    network_mask,
    policy_mask,
    selected_hosts,
    split_addresses,
)
from netwarden.policy.model import (
    Exemptions,
    HostGroup,
    Match,
    Policy,
    PolicySet,
    PortRange,
    Selector,
)
from netwarden.sensor.records import FLOW_COLUMNS, empty


def addr(text: str) -> bytes:
    ip = ipaddress.ip_address(text)
    return (ipaddress.IPv6Address("::ffff:" + text) if ip.version == 4 else ip).packed


def records(*rows: dict[str, Any]) -> dict[str, np.ndarray]:
    cols = empty(FLOW_COLUMNS, len(rows))
    for i, row in enumerate(rows):
        for key, value in row.items():
            cols[key][i] = addr(value) if key in ("src_ip", "dst_ip") else value
    return cols


def rec(src: str, dst: str, direction: int, proto: int = 6, sport: int = 40000,
        dport: int = 443, app: str = "", layer: int = 0, nbytes: int = 100) -> dict[str, Any]:
    return {"src_ip": src, "dst_ip": dst, "direction": direction, "ip_proto": proto,
            "src_port": sport, "dst_port": dport, "app": app, "layer": layer,
            "bytes": nbytes, "packets": 1}


def nets(*texts: str) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


def test_network_mask_v4_v6_and_prefix_edges() -> None:
    values = np.array([addr(a) for a in ("10.1.2.3", "10.255.255.255", "11.0.0.0",
                                         "2a00:1450::1", "2a00:1451::", "::a01:203")],
                      dtype="S16")
    hi, lo = split_addresses(values)
    assert network_mask(hi, lo, nets("10.0.0.0/8")).tolist() == \
        [True, True, False, False, False, False]  # ::10.1.2.3 (not mapped) is not IPv4
    assert network_mask(hi, lo, nets("2a00:1450::/32")).tolist() == \
        [False, False, False, True, False, False]
    assert network_mask(hi, lo, nets("10.1.2.3/32", "11.0.0.0/31")).tolist() == \
        [True, False, True, False, False, False]
    assert network_mask(hi, lo, nets("::/0")).all()
    # the mapped form written as an IPv6 network is the same as the IPv4 one
    assert network_mask(hi, lo, nets("::ffff:10.0.0.0/104")).tolist() == \
        network_mask(hi, lo, nets("10.0.0.0/8")).tolist()


def test_direction_remote_ports_protocols() -> None:
    cols = records(
        rec("192.168.1.5", "142.250.1.1", 2),                          # 0 out to google
        rec("142.250.1.1", "192.168.1.5", 1, sport=443, dport=40000),  # 1 in from google
        rec("192.168.1.5", "1.1.1.1", 2, proto=17, dport=53),          # 2 out udp dns
        rec("192.168.1.5", "142.250.1.1", 3),                          # 3 local
        rec("142.250.1.1", "8.8.8.8", 0),                              # 4 other
        rec("192.168.1.5", "142.250.1.1", 2, proto=1, sport=0, dport=0),  # 5 icmp
        rec("2001:db8::1", "2a00:1450::5", 2, proto=58, sport=0, dport=0),  # 6 icmpv6
    )
    assert match_mask(cols, Match(direction="out")).tolist() == \
        [True, False, True, False, False, True, True]
    assert match_mask(cols, Match(direction="in")).tolist() == \
        [False, True, False, False, False, False, False]
    assert match_mask(cols, Match()).tolist() == [True, True, True, False, True, True, True]
    remote = match_mask(cols, Match(remote=nets("142.250.0.0/15")))
    assert remote.tolist() == [True, True, False, False, True, True, False]
    dst = match_mask(cols, Match(dst=nets("142.250.0.0/15")))
    assert dst.tolist() == [True, False, False, False, False, True, False]
    ports = match_mask(cols, Match(ports=(PortRange(443, 443),)))
    assert ports.tolist() == [True, True, False, False, True, False, False]
    assert match_mask(cols, Match(ports=(PortRange(50, 60),))).tolist() == \
        [False, False, True, False, False, False, False]
    assert match_mask(cols, Match(protocols=("icmp",))).tolist() == \
        [False, False, False, False, False, True, True]
    assert match_mask(cols, Match(protocols=("udp", "tcp"))).tolist() == \
        [True, True, True, False, True, False, False]


def test_apps_exemptions_layers_and_any_match() -> None:
    cols = records(
        rec("10.0.0.2", "142.250.1.1", 2, app="youtube"),                  # 0
        rec("10.0.0.2", "9.9.9.9", 2, proto=17, dport=443),                # 1 quic elsewhere
        rec("10.0.0.2", "142.250.1.1", 2, proto=17, dport=443),            # 2 quic google
        rec("10.0.0.2", "142.250.1.1", 2, app="youtube", layer=1),         # 3 inner layer
        rec("10.0.0.2", "192.168.10.4", 2, app="youtube"),                 # 4 exempt network
        rec("10.0.0.2", "142.250.1.2", 2, proto=17, sport=53, dport=443),  # 5 exempt port
        rec("10.0.0.2", "142.250.1.1", 2, app="netflix"),                  # 6
    )
    policy = Policy(
        name="yt", who=Selector(fleet=True), quota=100,
        what=(Match(apps=("youtube",)),
              Match(protocols=("udp",), ports=(PortRange(443, 443),),
                    remote=nets("142.250.0.0/15"))),
        exempt=Exemptions(networks=nets("192.168.10.0/24"), ports=(PortRange(53, 53),)))
    assert policy_mask(cols, policy).tolist() == [True, False, True, False, False, False,
                                                  False]


def test_selected_hosts_globs_groups_labels() -> None:
    group = HostGroup("office", hosts=("desk-*", "laptop-01"))
    build = HostGroup("build", labels=(("role", "build"),))
    ps = PolicySet(groups=(group, build))
    hosts = ["desk-1", "desk-22", "laptop-01", "laptop-02", "ci-1", "web"]

    def who(**kw: Any) -> Policy:
        return Policy(name="p", who=Selector(**kw), quota=1)

    assert selected_hosts(who(fleet=True), ps, hosts) == sorted(hosts)
    assert selected_hosts(who(groups=("office",)), ps, hosts) == \
        ["desk-1", "desk-22", "laptop-01"]
    assert selected_hosts(who(hosts=("laptop-0[2]", "web")), ps, hosts) == ["laptop-02", "web"]
    # without a labels map, labels select nothing
    assert selected_hosts(who(groups=("build",)), ps, hosts) == []
    assert selected_hosts(who(labels=(("role", "build"),)), ps, hosts) == []
    labels = {"ci-1": {"role": "build", "site": "x"}, "web": {"role": "web"}}
    assert selected_hosts(who(groups=("build",)), ps, hosts, labels) == ["ci-1"]
    assert selected_hosts(who(labels=(("role", "build"), ("site", "x"))), ps, hosts,
                          labels) == ["ci-1"]
    assert selected_hosts(who(labels=(("role", "build"), ("site", "y"))), ps, hosts,
                          labels) == []
