"""``netwarden policy check`` as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from netwarden.policy import dump_policies, load_policies

NETWARDEN = Path(sys.executable).with_name("netwarden")
EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "policies"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NETWARDEN), "--log-level", "warning", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_valid_examples_prints_a_summary() -> None:
    r = run("policy", "check", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["POLICY", "WHO", "WHAT", "QUOTA", "SCOPE", "PERIOD", "TIERS"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == {"office-uplink", "guest-daily", "ci-rolling", "youtube-quic"}
    yt = rows["youtube-quic"]
    for part in ("fleet", "app youtube | udp port 443 remote 6 networks", "10 GiB",
                 "per_host", "monthly from day 1 Europe/Berlin", "80% alert, 100% block"):
        assert part in yt
    assert "80% alert, 100% throttle 20 Mbit/s, 120% block (reject)" in rows["office-uplink"]
    assert "pooled" in rows["office-uplink"]
    assert lines[-1] == "4 policies and 2 groups in 2 files: valid"


def test_check_errors_exit_2_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "policies:\n  p:\n    who: {hosts: [web-1]}\n    quota: 5 Gigs\n"
        "    period: {kind: monthly, reset_day: 30}\n")
    (tmp_path / "b.yaml").write_text(
        "policies:\n  p:\n    who: {groups: [nobody]}\n    quota: 1 GB\n")
    r = run("policy", "check", "a.yaml", "b.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "netwarden: error: a.yaml:4: policies.p.quota: unknown byte unit 'Gigs' "
        "(use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)",
        "netwarden: error: a.yaml:5: policies.p.period.reset_day: day 30 does not exist in "
        "every month; use 1-28 or 'last'",
        "netwarden: error: b.yaml:3: policies.p.who.groups[0]: unknown group 'nobody'",
    ]


def test_check_missing_file_exits_2(tmp_path: Path) -> None:
    r = run("policy", "check", "gone.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "netwarden: error: gone.yaml: cannot read (No such file or directory)"]


def test_check_needs_a_file() -> None:
    r = run("policy", "check")
    assert r.returncode == 2
    assert "Missing argument 'FILES...'" in r.stderr


def test_dump_round_trips(tmp_path: Path) -> None:
    r = run("policy", "check", "--dump", str(EXAMPLES))
    assert r.returncode == 0, r.stderr
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(r.stdout)
    original = load_policies([EXAMPLES])
    again = load_policies([dumped])
    assert again == original
    assert [p.name for p in again.policies] == [p.name for p in original.policies]
    # The dump is a fixed point, and it spells out the defaults.
    assert dump_policies(again) == r.stdout
    guest = r.stdout.split("  guest-daily:\n")[1].split("\n  ci-rolling:")[0]
    assert "    scope: per_host\n" in guest
    assert "      - direction: both\n        protocols: [any]\n" in guest
    r2 = run("policy", "check", str(dumped))
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.splitlines()[-1] == "4 policies and 2 groups in 1 file: valid"


def test_dump_of_invalid_files_prints_nothing_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("policies:\n  p:\n    who: fleet\n    quota: 0\n")
    r = run("policy", "check", "--dump", "a.yaml", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "netwarden: error: a.yaml:4: policies.p.quota: must be more than 0 bytes"]
