"""``netwarden policy``: data-plan policy files (``policy check FILE... [--dump]``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from netwarden.policy.model import Match, Period, Policy, PolicySet, Selector, Tier

HEADERS = ("POLICY", "WHO", "WHAT", "QUOTA", "SCOPE", "PERIOD", "TIERS")


@click.group(name="policy")
def command() -> None:
    """Data-plan policy files: quotas, periods and actions per host or group."""


@command.command(name="check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dump", is_flag=True,
              help="Print the effective policies as YAML, every default filled in.")
def check(files: tuple[Path, ...], dump: bool) -> None:
    """Check policy files and print a summary (or, with --dump, the policies).

    FILEs are YAML; a directory means its *.yaml and *.yml files. Prints a summary of the policies when every file is valid. Otherwise prints every
    problem, one line each (FILE:LINE: key.path: message), and exits 2.
    """
    from netwarden.policy import dump_policies, load_policies

    policies = load_policies(files)
    if dump:
        click.echo(dump_policies(policies), nl=False)
        return
    click.echo(summary(policies))


def summary(policies: PolicySet) -> str:
    """A table of the policies, one line each, and a count line."""
    rows = [HEADERS, *(_row(p) for p in policies.policies)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    n_files, n_groups, n_policies = (
        len(policies.files), len(policies.groups), len(policies.policies))
    lines.append(f"{_count(n_policies, 'policy', 'policies')} and "
                 f"{_count(n_groups, 'group', 'groups')} in "
                 f"{_count(n_files, 'file', 'files')}: valid")
    return "\n".join(lines)


def _row(p: Policy) -> tuple[str, ...]:
    from netwarden.policy.units import format_bytes

    return (p.name, _who(p.who), " | ".join(_what(m) for m in p.what), format_bytes(p.quota),
            p.scope, _period(p.period), ", ".join(_tier(t) for t in p.tiers))


def _who(s: Selector) -> str:
    if s.fleet:
        return "fleet"
    parts: list[str] = []
    if s.groups:
        parts.append("groups " + ",".join(s.groups))
    if s.hosts:
        parts.append("hosts " + ",".join(s.hosts))
    if s.labels:
        parts.append("labels " + ",".join(f"{k}={v}" for k, v in s.labels))
    return "; ".join(parts)


def _what(m: Match) -> str:
    if m.everything:
        return "all"
    parts: list[str] = []
    if m.direction != "both":
        parts.append(m.direction)
    if m.protocols != ("any",):
        parts.append("/".join(m.protocols))
    if m.ports:
        parts.append("port " + ",".join(str(p) for p in m.ports))
    for key in ("dst", "src", "remote"):
        nets = getattr(m, key)
        if nets:
            parts.append(f"{key} {_count(len(nets), 'network', 'networks')}")
    if m.apps:
        parts.append("app " + ",".join(m.apps))
    return " ".join(parts) or "all"


def _period(p: Period) -> str:
    from netwarden.policy.model import WEEKDAYS
    from netwarden.policy.units import format_duration

    if p.kind == "rolling" and p.window is not None:
        return f"rolling {format_duration(p.window)}"
    if p.kind == "weekly" and p.reset_weekday is not None:
        text = f"weekly from {WEEKDAYS[p.reset_weekday]}"
    elif p.kind == "monthly":
        text = "monthly from the last day" if p.reset_day == "last" \
            else f"monthly from day {p.reset_day}"
    else:
        text = p.kind
    return f"{text} {p.time_zone}"


def _tier(t: Tier) -> str:
    from netwarden.policy.units import format_percent, format_rate

    text = f"{format_percent(t.at).replace(' ', '')} {t.action}"
    if t.rate is not None:
        text += f" {format_rate(t.rate)}"
    if t.mode is not None and t.mode != "drop":
        text += f" ({t.mode})"
    return text


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
