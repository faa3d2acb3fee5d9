"""Loading policy files: the valid examples, and broken ones rejected at FILE:LINE."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from netwarden.errors import ConfigError
from netwarden.policy.load import PolicyError, check_policies, load_policies
from netwarden.policy.model import Match, Period, PortRange, Selector, Tier

EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "policies"

# A valid policy to vary: each broken example changes one thing.
GOOD = """\
policies:
  video:
    who:
      fleet: true
    what:
      protocols: [udp]
      ports: [443]
    quota: 10 GiB
    period:
      kind: monthly
      reset_day: 1
      time_zone: Europe/Berlin
    tiers:
      - at: 80 %
        action: alert
      - at: 100 %
        action: block
"""


def write(tmp: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp / name).write_text(textwrap.dedent(text))
    return list(files)


def problems_of(tmp: Path, files: dict[str, str]) -> list[str]:
    _, problems = check_policies(write(tmp, files))
    return [str(p) for p in problems]


def vary(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


BROKEN: list[tuple[str, dict[str, str], list[str]]] = [
    ("unknown key",
     {"a.yaml": vary("    quota: 10 GiB\n", "    quota: 10 GiB\n    colour: red\n")},
     ["a.yaml:9: policies.video.colour: unknown key"]),
    ("misspelt key gets a suggestion",
     {"a.yaml": vary("    tiers:", "    tier:")},
     ["a.yaml:13: policies.video.tier: unknown key; did you mean 'tiers'?"]),
    ("bad unit",
     {"a.yaml": vary("10 GiB", "10 Gb")},
     ["a.yaml:8: policies.video.quota: unknown byte unit 'Gb' "
      "(use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"]),
    ("bad CIDR",
     {"a.yaml": vary("      ports: [443]\n", "      ports: [443]\n      dst: [10.0.0.300/8]\n")},
     ["a.yaml:8: policies.video.what.dst[0]: '10.0.0.300/8' is not a network "
      "(write it like 192.0.2.0/24 or 2001:db8::/32)"]),
    ("host bits set",
     {"a.yaml": vary("      ports: [443]\n",
                     "      ports: [443]\n      remote:\n        - 10.0.0.0/8\n"
                     "        - 2001:db8::1/32\n")},
     ["a.yaml:10: policies.video.what.remote[1]: '2001:db8::1/32' has host bits set "
      "(the network is 2001:db8::/32)"]),
    ("impossible reset day",
     {"a.yaml": vary("reset_day: 1", "reset_day: 31")},
     ["a.yaml:11: policies.video.period.reset_day: day 31 does not exist in every month; "
      "use 1-28 or 'last'"]),
    ("reset day not a day",
     {"a.yaml": vary("reset_day: 1", "reset_day: 0")},
     ["a.yaml:11: policies.video.period.reset_day: day 0 is not a day of the month; "
      "use 1-28 or 'last'"]),
    ("unknown time zone",
     {"a.yaml": vary("Europe/Berlin", "Europe/Berln")},
     ["a.yaml:12: policies.video.period.time_zone: unknown time zone 'Europe/Berln'; "
      "did you mean 'Europe/Berlin'?"]),
    ("reset key for another kind of period",
     {"a.yaml": vary("reset_day: 1", "reset_weekday: monday")},
     ["a.yaml:11: policies.video.period.reset_weekday: only for weekly periods"]),
    ("rolling period without a window",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "      kind: rolling\n")},
     ["a.yaml:10: policies.video.period: a rolling period needs a window (like 30d)"]),
    ("rolling period as a kind alone",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "").replace("period:\n", "period: rolling\n")},
     ["a.yaml:9: policies.video.period: a rolling period needs a window: write "
      "{kind: rolling, window: 30d}"]),
    ("rolling window has no time zone",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n",
                     "      kind: rolling\n      window: 30d\n")},
     ["a.yaml:12: policies.video.period.time_zone: a rolling window has no time zone"]),
    ("window too long",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "      kind: rolling\n      window: 400d\n")},
     ["a.yaml:11: policies.video.period.window: a window must be from 1m to 366d"]),
    ("fixed period without a length",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "      kind: fixed\n")},
     ["a.yaml:10: policies.video.period: a fixed period needs a length (like 1h)"]),
    ("fixed period shorter than 10 s",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "      kind: fixed\n      length: 5s\n")},
     ["a.yaml:11: policies.video.period.length: a fixed period's length must be whole "
      "seconds from 10s to 366d"]),
    ("fixed period has no time zone",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n",
                     "      kind: fixed\n      length: 30s\n")},
     ["a.yaml:12: policies.video.period.time_zone: a fixed period has no time zone "
      "(epoch-aligned, absolute time)"]),
    ("length on a rolling period",
     {"a.yaml": vary("      kind: monthly\n      reset_day: 1\n      time_zone: Europe/Berlin\n",
                     "      kind: rolling\n      window: 1d\n      length: 1h\n")},
     ["a.yaml:12: policies.video.period.length: only for fixed periods"]),
    ("tiers out of order",
     {"a.yaml": vary("at: 80 %", "at: 120 %").replace("action: block", "action: alert")},
     ["a.yaml:16: policies.video.tiers[1]: thresholds must rise: 100 % is not above 120 % "
      "(policies.video.tiers[0])"]),
    ("duplicate threshold",
     {"a.yaml": vary("at: 80 %", "at: 100 %").replace("action: block", "action: alert")},
     ["a.yaml:16: policies.video.tiers[1]: thresholds must rise: 100 % is not above 100 % "
      "(policies.video.tiers[0])"]),
    ("throttle without rate",
     {"a.yaml": vary("action: block", "action: throttle")},
     ["a.yaml:16: policies.video.tiers[1]: a throttle needs a rate (like '2 Mbit/s')"]),
    ("rate on a block",
     {"a.yaml": vary("action: block", "action: block\n        rate: 1 Mbit/s")},
     ["a.yaml:18: policies.video.tiers[1].rate: only a throttle has a rate"]),
    ("mode on an alert",
     {"a.yaml": vary("action: alert", "action: alert\n        mode: reject")},
     ["a.yaml:16: policies.video.tiers[0].mode: only a block has a mode"]),
    ("bad rate unit",
     {"a.yaml": vary("action: block", "action: throttle\n        rate: 1 Mbps")},
     ["a.yaml:18: policies.video.tiers[1].rate: '1 Mbps' is not a rate (use bit/s, kbit/s, "
      "Mbit/s, Gbit/s, Tbit/s, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)"]),
    ("nothing after a block",
     {"a.yaml": GOOD + "      - at: 150 %\n        action: alert\n"},
     ["a.yaml:18: policies.video.tiers[2]: nothing can follow the block at 100 % "
      "(policies.video.tiers[1])"]),
    ("a later throttle must be slower",
     {"a.yaml": vary("      - at: 80 %\n        action: alert\n      - at: 100 %\n"
                     "        action: block\n",
                     "      - at: 80 %\n        action: throttle\n        rate: 2 Mbit/s\n"
                     "      - at: 100 %\n        action: throttle\n        rate: 5 Mbit/s\n")},
     ["a.yaml:17: policies.video.tiers[1]: a later throttle must be slower: 5 Mbit/s is not "
      "below 2 Mbit/s (policies.video.tiers[0])"]),
    ("threshold as a bare number",
     {"a.yaml": vary("at: 80 %", "at: 80")},
     ["a.yaml:14: policies.video.tiers[0].at: expected a percentage like '80 %', "
      "got an integer"]),
    ("bad block mode",
     {"a.yaml": vary("action: block", "action: block\n        mode: drop-all")},
     ["a.yaml:18: policies.video.tiers[1].mode: 'drop-all' is not one of: drop, reject"]),
    ("duplicate policy names across two files",
     {"a.yaml": GOOD, "b.yaml": "\n" + GOOD},
     ["b.yaml:3: policies.video: policy 'video' is already defined at a.yaml:2"]),
    ("names differing in case overlap",
     {"a.yaml": GOOD, "b.yaml": GOOD.replace("  video:", "  Video:")},
     ["b.yaml:2: policies.Video: policy 'Video' overlaps policy 'video' defined at "
      "a.yaml:2 (names are compared ignoring case)"]),
    ("duplicate group across files",
     {"a.yaml": "groups:\n  web: {hosts: [web-*]}\n",
      "b.yaml": "groups:\n  db: {hosts: [db-1]}\n  web: {labels: {role: web}}\n"},
     ["b.yaml:3: groups.web: group 'web' is already defined at a.yaml:2"]),
    ("unknown group",
     {"a.yaml": "groups:\n  office: {hosts: [desk-*]}\n",
      "b.yaml": vary("      fleet: true", "      groups: [ofice]")},
     ["b.yaml:4: policies.video.who.groups[0]: unknown group 'ofice'; "
      "did you mean 'office'?"]),
    ("duplicate key",
     {"a.yaml": vary("    quota: 10 GiB\n", "    quota: 10 GiB\n    quota: 20 GiB\n")},
     ["a.yaml:9: policies.video.quota: duplicate key (first at line 8)"]),
    ("wrong type",
     {"a.yaml": vary("fleet: true", "fleet: 'yes'")},
     ["a.yaml:4: policies.video.who.fleet: expected true or false, got a string"]),
    ("list where a mapping belongs",
     {"a.yaml": vary("    who:\n      fleet: true\n", "    who: [web-1]\n")},
     ["a.yaml:3: policies.video.who: expected a mapping or 'fleet', got a list"]),
    ("label value not a string",
     {"a.yaml": vary("fleet: true", "labels: {tier: 1}")},
     ["a.yaml:4: policies.video.who.labels.tier: expected a string, got an integer "
      "(quote it)"]),
    ("negative quota",
     {"a.yaml": vary("10 GiB", "-10 GiB")},
     ["a.yaml:8: policies.video.quota: '-10 GiB' is negative"]),
    ("zero quota",
     {"a.yaml": vary("10 GiB", "0")},
     ["a.yaml:8: policies.video.quota: must be more than 0 bytes"]),
    ("missing quota",
     {"a.yaml": vary("    quota: 10 GiB\n", "")},
     ["a.yaml:3: policies.video: missing key 'quota'"]),
    ("empty selector",
     {"a.yaml": vary("    who:\n      fleet: true\n", "    who: {}\n")},
     ["a.yaml:3: policies.video.who: selects no hosts: give fleet: true, hosts, labels "
      "or groups"]),
    ("fleet and hosts together",
     {"a.yaml": vary("fleet: true", "fleet: true\n      hosts: [web-1]")},
     ["a.yaml:4: policies.video.who.fleet: fleet: true already selects every host; "
      "drop hosts, labels and groups"]),
    ("empty group",
     {"a.yaml": "groups:\n  web:\n    description: nobody\n"},
     ["a.yaml:3: groups.web: a group needs hosts or labels"]),
    ("ports with ICMP only",
     {"a.yaml": vary("protocols: [udp]", "protocols: [icmp]")},
     ["a.yaml:7: policies.video.what.ports: ports need protocol tcp, udp or any "
      "(ICMP has no ports)"]),
    ("port out of range and backwards range",
     {"a.yaml": vary("ports: [443]", "ports: [70000, 9000-8000]")},
     ["a.yaml:7: policies.video.what.ports[0]: port 70000 is out of range (1-65535)",
      "a.yaml:7: policies.video.what.ports[1]: port range 9000-8000 runs backwards"]),
    ("unknown protocol",
     {"a.yaml": vary("protocols: [udp]", "protocols: [quic]")},
     ["a.yaml:6: policies.video.what.protocols[0]: 'quic' is not one of: tcp, udp, icmp, "
      "any"]),
    ("app label in capitals",
     {"a.yaml": vary("ports: [443]", "apps: [YouTube]")},
     ["a.yaml:7: policies.video.what.apps[0]: 'YouTube' is not an app label (lower-case "
      "letters, digits, '.', '_', '-')"]),
    ("bad policy name",
     {"a.yaml": GOOD.replace("  video:", "  my video:")},
     ["a.yaml:2: policies.my video: 'my video' is not a valid policy name (letters, digits, "
      "'_', '.', '-', starting with a letter or digit, at most 64)"]),
    ("unknown top-level key",
     {"a.yaml": GOOD + "policy: {}\n"},
     ["a.yaml:18: policy: unknown key; did you mean 'policies'?"]),
    ("invalid YAML",
     {"a.yaml": "policies:\n  video: {who: fleet\n"},
     ["a.yaml:3: invalid YAML: while parsing a flow mapping expected ',' or '}', but got "
      "'<stream end>'"]),
    ("empty file",
     {"a.yaml": "# nothing yet\n"},
     ["a.yaml: empty file: expected 'groups' and/or 'policies'"]),
    ("empty policies",
     {"a.yaml": "groups:\n  web: {hosts: [web-*]}\npolicies: {}\n"},
     ["a.yaml:3: policies: must not be empty"]),
    ("not a mapping at the top",
     {"a.yaml": "- video\n"},
     ["a.yaml:1: expected a mapping, got a list"]),
    ("Python object tag",
     {"a.yaml": vary("10 GiB", "!!python/object:os.system x")},
     ["a.yaml:8: policies.video.quota: cannot read value: could not determine a "
      "constructor for the tag 'tag:yaml.org,2002:python/object:os.system'"]),
]


@pytest.mark.parametrize(("files", "expected"), [(f, e) for _, f, e in BROKEN],
                         ids=[name for name, _, _ in BROKEN])
def test_broken_policy_files_are_rejected_at_file_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str],
        expected: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert problems_of(tmp_path, files) == expected
    with pytest.raises(PolicyError) as err:
        load_policies(list(files))
    assert isinstance(err.value, ConfigError) and err.value.exit_code == 2
    assert err.value.lines() == expected


def test_the_good_policy_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policies = load_policies(write(tmp_path, {"a.yaml": GOOD}))
    (video,) = policies.policies
    assert video.who == Selector(fleet=True)
    assert video.what == (Match(protocols=("udp",), ports=(PortRange(443, 443),)),)
    assert video.quota == 10 * 2**30
    assert video.scope == "per_host"
    assert video.period == Period(kind="monthly", reset_day=1, time_zone="Europe/Berlin")
    assert video.tiers == (Tier(at=80.0, action="alert"),
                           Tier(at=100.0, action="block", mode="drop"))
    assert str(video.source) == "a.yaml:2"


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = """\
        groups:
          office:
            hosts: [a, a]
        policies:
          p1:
            who: {groups: [ofice]}
            quota: 10 Gb
            what:
              dst: [10.0.0.1/8]
              protocols: [udp, any]
            period: {kind: monthly, reset_day: 31, time_zone: Mars/Olympus, window: 3d}
            tiers:
              - {at: 100 %, action: throttle}
              - {at: 80, action: nope}
            scope: shared
          p2:
            who: {}
            quota: -5 GB
        """
    assert problems_of(tmp_path, {"bad.yaml": bad}) == [
        "bad.yaml:3: groups.office.hosts[1]: 'a' is listed twice",
        "bad.yaml:6: policies.p1.who.groups[0]: unknown group 'ofice'; did you mean 'office'?",
        "bad.yaml:7: policies.p1.quota: unknown byte unit 'Gb' "
        "(use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)",
        "bad.yaml:9: policies.p1.what.dst[0]: '10.0.0.1/8' has host bits set "
        "(the network is 10.0.0.0/8)",
        "bad.yaml:10: policies.p1.what.protocols: 'any' already includes every protocol",
        "bad.yaml:11: policies.p1.period.reset_day: day 31 does not exist in every month; "
        "use 1-28 or 'last'",
        "bad.yaml:11: policies.p1.period.time_zone: unknown time zone 'Mars/Olympus'",
        "bad.yaml:11: policies.p1.period.window: only for rolling periods",
        "bad.yaml:13: policies.p1.tiers[0]: a throttle needs a rate (like '2 Mbit/s')",
        "bad.yaml:14: policies.p1.tiers[1].at: expected a percentage like '80 %', "
        "got an integer",
        "bad.yaml:14: policies.p1.tiers[1].action: 'nope' is not one of: alert, throttle, "
        "block",
        "bad.yaml:15: policies.p1.scope: 'shared' is not one of: per_host, pooled",
        "bad.yaml:17: policies.p2.who: selects no hosts: give fleet: true, hosts, labels "
        "or groups",
        "bad.yaml:18: policies.p2.quota: '-5 GB' is negative",
    ]


def test_problems_sort_by_file_as_given_then_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.yaml": vary("10 GiB", "10 Gb"), "b.yaml": vary("reset_day: 1",
                                                                        "reset_day: 30")})
    _, problems = check_policies(["b.yaml", "a.yaml"])
    assert [(p.file, p.line) for p in problems] == [("b.yaml", 11), ("a.yaml", 8)]


def test_missing_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _, problems = check_policies(["nope.yaml"])
    assert [str(p) for p in problems] == ["nope.yaml: cannot read (No such file or directory)"]


def test_groups_and_policies_merge_across_files(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "groups.yaml": "groups:\n  office:\n    hosts: [desk-*]\n    labels: {site: hq}\n",
        "office.yaml": vary("fleet: true", "groups: [office]").replace("video", "office"),
        "video.yaml": GOOD,
    })
    policies = load_policies([tmp_path])  # a directory: its YAML files in name order
    assert [p.name for p in policies.policies] == ["office", "video"]
    assert policies.group("office").hosts == ("desk-*",)
    assert policies.group("office").labels == (("site", "hq"),)
    assert policies.policy("office").who.groups == ("office",)
    assert policies.files == tuple(str(tmp_path / n)
                                   for n in ("groups.yaml", "office.yaml", "video.yaml"))


def test_defaults_are_filled_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.yaml": "policies:\n  all:\n    who: fleet\n    quota: 100 GB\n"})
    (p,) = load_policies(["a.yaml"]).policies
    assert p.what == (Match(direction="both", protocols=("any",)),)
    assert p.scope == "per_host"
    assert p.period == Period(kind="monthly", time_zone="UTC", reset_day=1)
    assert p.tiers == (Tier(at=100.0, action="alert"),)
    assert p.exempt.networks == () and p.exempt.ports == ()


def test_period_shorthands_and_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = "policies:\n"
    for name, period in [("d", "daily"), ("w", "{kind: weekly, reset_weekday: friday}"),
                         ("m", "{kind: monthly, reset_day: last, time_zone: Asia/Tokyo}"),
                         ("r", "{kind: rolling, window: 1d 12h}"),
                         ("f", "{kind: fixed, length: 30s}")]:
        text += f"  {name}:\n    who: fleet\n    quota: 1 GB\n    period: {period}\n"
    write(tmp_path, {"a.yaml": text})
    got = {p.name: p.period for p in load_policies(["a.yaml"]).policies}
    assert got == {
        "d": Period(kind="daily", time_zone="UTC", reset_day=None),
        "w": Period(kind="weekly", time_zone="UTC", reset_day=None, reset_weekday=4),
        "m": Period(kind="monthly", time_zone="Asia/Tokyo", reset_day="last"),
        "r": Period(kind="rolling", time_zone=None, reset_day=None,
                    window=timedelta(days=1, hours=12)),
        "f": Period(kind="fixed", time_zone=None, reset_day=None,
                    length=timedelta(seconds=30)),
    }


def test_yaml_anchors_can_share_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = """\
        policies:
          a:
            who: {hosts: [web-1]}
            what: {remote: &google [142.250.0.0/15, 2a00:1450::/32]}
            quota: 1 GB
          b:
            who: {hosts: [web-2]}
            exempt: {networks: *google}
            quota: 1 GB
        """
    policies = load_policies(write(tmp_path, {"a.yaml": text}))
    nets = (ipaddress.ip_network("142.250.0.0/15"), ipaddress.ip_network("2a00:1450::/32"))
    assert policies.policy("a").what[0].remote == nets
    assert policies.policy("b").exempt.networks == nets


def test_the_shipped_examples_load_as_documented() -> None:
    policies = load_policies([EXAMPLES])
    yt = policies.policy("youtube-quic")
    assert yt.quota == 10 * 2**30 and yt.scope == "per_host"
    assert yt.period == Period(kind="monthly", reset_day=1, time_zone="Europe/Berlin")
    assert yt.tiers[-1] == Tier(at=100.0, action="block", mode="drop")
    assert yt.what[0].apps == ("youtube",)
    assert yt.what[1].protocols == ("udp",) and yt.what[1].ports == (PortRange(443, 443),)
    assert ipaddress.ip_network("2a00:1450::/32") in yt.what[1].remote
    office = policies.policy("office-uplink")
    assert office.scope == "pooled" and office.who.groups == ("office", "build-servers")
    assert [(t.at, t.action) for t in office.tiers] == [
        (80.0, "alert"), (100.0, "throttle"), (120.0, "block")]
    assert office.tiers[1].rate == 2_500_000  # 20 Mbit/s


def test_the_readme_examples_load(tmp_path: Path) -> None:
    readme = (EXAMPLES.parents[1] / "README.md").read_text()
    section = readme.split("## Data-plan policies")[1].split("\n## ")[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    paths = []
    for i, block in enumerate(blocks):
        paths.append(tmp_path / f"readme{i}.yaml")
        paths[-1].write_text(block)
    policies = load_policies(paths)
    assert [p.name for p in policies.policies] == ["youtube-quic", "office-uplink"]
    assert policies.policy("youtube-quic").quota == 10 * 2**30
    assert policies.policy("office-uplink").tiers[2] == Tier(at=120.0, action="block",
                                                              mode="reject")
