"""The app rules file: strict loading, name → app, port fallback, the shipped default."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from netwarden.errors import ConfigError
from netwarden.sensor.apprules import default_rules_path, load_rules, registrable_domain

RULES = """
[[app]]
name = "video"
match = ["*.video.example", "video.example"]

[[app]]
name = "catchall"
match = ["*.example"]

[ports]
53 = "dns"
"udp/443" = "quic"
"tcp/443" = "https"
8080 = "http-alt"
"""


def rules_file(tmp_path: Path, text: str = RULES) -> Path:
    p = tmp_path / "apps.toml"
    p.write_text(text)
    return p


def test_first_matching_rule_wins_case_insensitive(tmp_path: Path) -> None:
    r = load_rules(rules_file(tmp_path))
    assert r.app_for_name("cdn.video.example") == "video"
    assert r.app_for_name("A.B.VIDEO.Example.") == "video"  # case, deeper, trailing dot
    assert r.app_for_name("video.example") == "video"
    assert r.app_for_name("other.example") == "catchall"  # second rule
    assert r.app_for_name("example") == "example"  # no rule: the name itself


def test_unmatched_names_get_their_registrable_domain(tmp_path: Path) -> None:
    r = load_rules(rules_file(tmp_path))
    assert r.app_for_name("www.ynet.co.il") == "ynet.co.il"
    assert r.app_for_name("static.cdn.shop.com") == "shop.com"
    assert r.app_for_name("BRWC0CB383D1F42") == "brwc0cb383d1f42"


@pytest.mark.parametrize(("name", "domain"), [
    ("www.example.com", "example.com"),
    ("example.com", "example.com"),
    ("a.b.c.example.org.", "example.org"),
    ("news.bbc.co.uk", "bbc.co.uk"),
    ("shop.example.com.au", "example.com.au"),
    ("x.y.ne.jp", "y.ne.jp"),
    ("cdn.example.co", "example.co"),  # "co" as the top level: two labels
    ("a.b.io", "b.io"),
    ("localhost", "localhost"),
])
def test_registrable_domain_heuristic(name: str, domain: str) -> None:
    assert registrable_domain(name) == domain


def test_ports_specific_protocol_beats_either_and_lower_port_wins(tmp_path: Path) -> None:
    r = load_rules(rules_file(tmp_path))
    assert r.app_for_ports(17, 51000, 443) == "quic"
    assert r.app_for_ports(6, 443, 51000) == "https"
    assert r.app_for_ports(6, 53, 8080) == "dns"  # both labelled: the lower port
    assert r.app_for_ports(17, 8080, 40000) == "http-alt"  # "N": either protocol
    assert r.app_for_ports(6, 40000, 40001) == ""
    assert r.app_for_ports(1, 0, 0) == ""
    assert r.app_for_ports(1, 53, 0) == ""  # only TCP and UDP have port labels


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    bad = rules_file(tmp_path, """
[[app]]
name = "ok"
match = ["*.ok.example"]

[[app]]
nme = "typo"
match = []

[[app]]
name = "bad pattern"
match = ["a b.example"]

[ports]
http = "x"
70000 = "y"

[extra]
x = 1
""")
    with pytest.raises(ConfigError) as exc:
        load_rules(bad)
    lines = exc.value.message.splitlines()
    text = "\n".join(lines)
    assert all(line.startswith(f"{bad}: ") for line in lines), text
    assert f"{bad}: app[1].nme: unknown key" in lines
    assert f"{bad}: app[1].name: required key missing" in lines
    assert any(line.startswith(f"{bad}: app[1].match: ") for line in lines), text
    assert any(line.startswith(f"{bad}: app[2].name: ") for line in lines), text
    assert any(line.startswith(f"{bad}: app[2].match: ") and "'a b.example'" in line
               for line in lines), text
    assert any(line.startswith(f"{bad}: ports: ") and "'http'" in line and "'70000'" in line
               for line in lines), text
    assert f"{bad}: extra: unknown key" in lines


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = rules_file(tmp_path, '[[app]]\nname = "x"\nmatch = [\n')
    with pytest.raises(ConfigError, match=rf"^{bad}:\d+(:\d+)?: TOML syntax error"):
        load_rules(bad)


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: cannot read config"):
        load_rules(tmp_path / "nothere.toml")


def test_default_rules_load_and_label_popular_services() -> None:
    r = load_rules()
    assert r.source == str(default_rules_path())
    assert {a.name for a in r.rules.app} >= {"youtube", "netflix", "google", "facebook",
                                             "microsoft", "apple", "amazon", "spotify",
                                             "github"}
    expect = {
        "r4---sn-4g5e6nsz.googlevideo.com": "youtube", "www.youtube.com": "youtube",
        "i.ytimg.com": "youtube", "ios.nccp.netflix.com": "netflix",
        "occ-0-1-2.1.nflxso.net": "netflix", "www.google.de": "google",
        "fonts.gstatic.com": "google", "static.xx.fbcdn.net": "facebook",
        "nav.smartscreen.microsoft.com": "microsoft", "xp.apple.com": "apple",
        "images-na.ssl-images-amazon.com": "amazon", "www.scdn.co": "spotify",
        "github.githubassets.com": "github", "1.1.168.192.in-addr.arpa": "reverse-dns",
        "Cats Claws._daap._tcp.local": "mdns",
    }
    assert {n: r.app_for_name(n) for n in expect} == expect
    assert r.app_for_ports(17, 53, 40000) == "dns"
    assert r.app_for_ports(6, 40000, 22) == "ssh"
    assert r.app_for_ports(17, 40000, 123) == "ntp"


def test_default_rules_file_is_valid_toml_and_packaged() -> None:
    path = default_rules_path()
    assert path.is_file()
    tomllib.loads(path.read_text())
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "data/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["netwarden.sensor"]


def test_rules_load_in_a_fresh_interpreter() -> None:
    """The default file is found through the package, not the working directory."""
    out = subprocess.run(
        [sys.executable, "-c", "from netwarden.sensor.apprules import load_rules; "
         "print(load_rules().app_for_name('www.youtube.com'))"],
        capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "youtube"
