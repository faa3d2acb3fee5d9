"""Evaluation: scopes, tiers, periods and the canonical, versioned desired state (pure)."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

from netwarden.collector.policy.evaluate import POOLED, evaluate
from netwarden.policy import model as pm

GIB = 1 << 30
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TIERS = (pm.Tier(80.0, "alert"), pm.Tier(100.0, "throttle", rate=125_000),
         pm.Tier(120.0, "block", mode="reject"))


def office() -> pm.PolicySet:
    pooled = pm.Policy(
        name="office", who=pm.Selector(groups=("office",)), quota=10 * GIB,
        what=(pm.Match(direction="out"),), scope="pooled", tiers=TIERS,
        exempt=pm.Exemptions(networks=(ipaddress.ip_network("192.168.10.0/24"),),
                             ports=(pm.PortRange(53, 53),)))
    per_host = pm.Policy(
        name="guest", who=pm.Selector(hosts=("guest-*",)), quota=2 * GIB,
        period=pm.Period(kind="daily", time_zone="Europe/London", reset_day=None),
        tiers=(pm.Tier(100.0, "block"),))
    return pm.PolicySet(groups=(pm.HostGroup("office", hosts=("desk-*",)),),
                        policies=(pooled, per_host))


def test_pooled_scope_shares_the_quota_and_every_host_gets_the_rule() -> None:
    usage = {"office": {"desk-1": 6 * GIB, "desk-2": 5 * GIB, "guest-1": 99 * GIB}}
    state = evaluate(office(), usage, ["desk-1", "desk-2", "guest-1"], NOW)
    pooled = [s for s in state.scopes if s.policy == "office"]
    assert len(pooled) == 1
    s = pooled[0]
    assert (s.scope, s.hosts, s.usage, s.percent) == (POOLED, ("desk-1", "desk-2"), 11 * GIB,
                                                      110.0)
    assert (s.tier, s.action, s.rate, s.threshold) == (2, "throttle", 125_000, 100.0)
    assert s.period_end == int(datetime(2026, 4, 1, tzinfo=UTC).timestamp())
    for host in ("desk-1", "desk-2"):
        (rule,) = state.for_host(host).rules
        assert (rule.policy, rule.action, rule.rate, rule.expires) == \
            ("office", "throttle", 125_000, s.period_end)
        assert rule.matches[0].direction == "out"
        assert rule.exempt_networks == ("192.168.10.0/24",) and rule.exempt_ports == ((53, 53),)
    assert state.for_host("desk-1").version == state.for_host("desk-2").version
    # guest-1 is not in the office group: its office usage does not count
    assert state.for_host("guest-1").rules == ()


def test_per_host_scopes_tiers_and_alert_only() -> None:
    usage = {"guest": {"guest-1": 2 * GIB, "guest-2": 2 * GIB - 1},
             "office": {"desk-1": 8 * GIB}}
    state = evaluate(office(), usage, ["guest-1", "guest-2", "desk-1"], NOW)
    by = {(s.policy, s.scope): s for s in state.scopes}
    assert by["guest", "guest-1"].tier == 1 and by["guest", "guest-1"].action == "block"
    assert by["guest", "guest-1"].mode == "drop"
    assert by["guest", "guest-2"].tier == 0 and by["guest", "guest-2"].action == "none"
    assert state.for_host("guest-1").rules[0].mode == "drop"
    assert state.for_host("guest-2").rules == ()
    # 80 %: an alert tier makes no rule
    assert by["office", POOLED].tier == 1 and by["office", POOLED].action == "alert"
    assert state.for_host("desk-1").rules == ()
    # a daily London period ends at the next local midnight (UTC+0 in March before DST)
    assert by["guest", "guest-1"].period_end == int(datetime(2026, 3, 16, tzinfo=UTC)
                                                     .timestamp())


def test_period_boundaries_follow_the_clock() -> None:
    ps = office()
    # BST: London midnight is 23:00 UTC the day before
    summer = datetime(2026, 7, 1, 22, 59, 59, tzinfo=UTC)
    after = summer + timedelta(seconds=1)
    s1 = {s.scope: s for s in evaluate(ps, {}, ["guest-1"], summer).scopes}["guest-1"]
    s2 = {s.scope: s for s in evaluate(ps, {}, ["guest-1"], after).scopes}["guest-1"]
    assert s1.period_end == int(after.timestamp())
    assert s2.period_start == int(after.timestamp())
    assert s2.period_end == int((after + timedelta(days=1)).timestamp())
    rolling = pm.Policy(name="r", who=pm.Selector(fleet=True), quota=100,
                     period=pm.Period(kind="rolling", time_zone=None, reset_day=None,
                                   window=timedelta(days=7)),
                     tiers=(pm.Tier(50.0, "block"),))
    state = evaluate(pm.PolicySet(policies=(rolling,)), {"r": {"h": 50}}, ["h"], NOW)
    (s,) = state.scopes
    assert s.period_end is None
    assert s.period_start == int((NOW - timedelta(days=7)).timestamp())
    assert state.for_host("h").rules[0].expires is None


def test_same_input_in_any_order_gives_the_same_version() -> None:
    nets = [ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(20)]
    ports = [pm.PortRange(p, p) for p in (443, 80, 8080, 53)]

    def policyset(seed: int) -> tuple[pm.PolicySet, dict[str, dict[str, int]], list[str]]:
        rng = random.Random(seed)
        shuffled_nets, shuffled_ports = nets[:], ports[:]
        rng.shuffle(shuffled_nets)
        rng.shuffle(shuffled_ports)
        a = pm.Policy(name="a", who=pm.Selector(fleet=True), quota=100,
                   what=(pm.Match(remote=tuple(shuffled_nets)), pm.Match(ports=tuple(shuffled_ports))),
                   tiers=(pm.Tier(10.0, "block"),))
        b = pm.Policy(name="b", who=pm.Selector(fleet=True), quota=100, scope="pooled",
                   tiers=(pm.Tier(10.0, "throttle", rate=1000),))
        pols = [a, b]
        rng.shuffle(pols)
        hosts = [f"h{i}" for i in range(30)]
        rng.shuffle(hosts)
        usage = {"a": {h: 50 for h in hosts}, "b": {h: 5 for h in hosts}}
        return pm.PolicySet(policies=tuple(pols)), usage, hosts

    states = [evaluate(*policyset(seed), NOW) for seed in range(5)]
    versions = [{h: st.version for h, st in s.hosts.items()} for s in states]
    assert all(v == versions[0] for v in versions)
    assert all(s.scopes == states[0].scopes for s in states)
    # both policies act on h0: two rules, in canonical (policy) order
    assert [r.policy for r in states[0].for_host("h0").rules] == ["a", "b"]
    # a different usage that changes enforcement changes the version
    ps, usage, hosts = policyset(0)
    usage["a"]["h0"] = 1
    changed = evaluate(ps, usage, hosts, NOW)
    assert changed.for_host("h0").version != versions[0]["h0"]
    assert changed.for_host("h1").version == versions[0]["h1"]


def test_apps_resolve_to_remote_addresses_seen() -> None:
    yt = pm.Policy(name="yt", who=pm.Selector(fleet=True), quota=100,
                what=(pm.Match(apps=("youtube",)),
                      pm.Match(apps=("youtube",), remote=(ipaddress.ip_network("142.250.0.0/15"),)),
                      pm.Match(apps=("tiktok",))),
                tiers=(pm.Tier(100.0, "block"),))
    seen = {"youtube": ["142.250.1.1", "2a00:1450::1", "8.8.8.8"]}
    state = evaluate(pm.PolicySet(policies=(yt,)), {"yt": {"h": 100}}, ["h"], NOW,
                     app_addresses=seen)
    (rule,) = state.for_host("h").rules
    remotes = sorted(m.remote for m in rule.matches)
    assert remotes == [("142.250.1.1/32",), ("142.250.1.1/32", "2a00:1450::1/128",
                                             "8.8.8.8/32")]
    assert rule.unresolved_apps == ("tiktok",)
