"""``netwarden policy``: data-plan policies.

``policy check FILE... [--dump]`` checks files; ``policy status`` shows, per policy and
scope, usage against quota on a store or a collector; ``policy simulate FILE --since 30d``
replays stored history through policies (see :mod:`netwarden.collector.policy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from netwarden.cli.report.common import TimeType, open_local_store

if TYPE_CHECKING:
    from netwarden.collector.config import CollectorConfig
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
    lines = [_table([HEADERS, *(_row(p) for p in policies.policies)])]
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
    if p.kind == "fixed" and p.length is not None:
        return f"fixed {format_duration(p.length)} (epoch-aligned)"
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


_STORE_HELP = ("Store to read: a chdb data directory or a clickhouse://host:port URL. "
               "Default: store.target of the config (./netwarden-data).")


def _store_options(func: Any) -> Any:
    options = [
        click.option("--store", "store", metavar="DIR|URL", default=None, help=_STORE_HELP),
        click.option("--database", metavar="NAME", default=None,
                     help="ClickHouse database. Default: store.database of the config."),
        click.option("--config", "config", default=None,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Collector TOML config: its [store] and [policy] settings."),
        click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                     default="table", show_default=True,
                     help="table: for people (bytes humanised); json: exact numbers."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@command.command(name="status")
@_store_options
@click.option("--collector", "collector", metavar="HOST:PORT", default=None,
              help="Ask a running collector: it evaluates its own policy files.")
@click.option("--policies", "policy_files", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path),
              help="Policy file or directory (repeat for several). Default: [policy] "
                   "files of --config.")
def status(store: str | None, database: str | None, config: Path | None, fmt: str,
           collector: str | None, policy_files: tuple[Path, ...]) -> None:
    """Per policy and scope: usage, quota, percent, current tier, period end, hosts.

    Usage comes from the policy_usage rollup the collector writes at ingest; a policy
    the store has no usage rows for is evaluated from the raw flow records (slower).
    Then, per host, the enforcement state: with --collector what it wants and what each
    sensor applied; with a store what each sensor last reported applying.
    """
    from netwarden.errors import UsageError

    if collector is not None:
        given = [name for name, value in (("--store", store), ("--database", database),
                                          ("--config", config),
                                          ("--policies", policy_files or None))
                 if value is not None]
        if given:
            raise UsageError(f"--collector and {'/'.join(given)} are mutually exclusive: "
                             "the collector evaluates its own policies on its own store")
        from netwarden.collector.client import query_report
        from netwarden.collector.policy.status import POLICY_STATUS

        _emit_status(query_report(collector, POLICY_STATUS, {}).to_json(), fmt)
        return
    from datetime import UTC, datetime

    from netwarden.collector.policy.status import applied_state, status_result, store_state

    cfg, policies = _config_and_policies(store, database, config, policy_files)
    with open_local_store(cfg.store.target, cfg.store.database) as opened:
        state, sources = store_state(opened, policies, datetime.now(UTC),
                                     labels=cfg.policy.labels)
        result = status_result(state, sources)
        result.meta["applied"] = applied_state(opened)
    _emit_status(result.to_json(), fmt)


@command.command(name="simulate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--since", "since", required=True, metavar="TIME",
              type=TimeType(),
              help="Replay from this time: a duration back from now (30d), ISO 8601 or "
                   "epoch seconds.")
@click.option("--until", "until", default=None, metavar="TIME", type=TimeType(),
              help="Replay up to this time. Default: now.")
@click.option("--policy", "only", default=None, metavar="NAME",
              help="Only this policy of FILE. Default: every policy in it.")
@_store_options
def simulate(file: Path, since: int, until: int | None, only: str | None,
             store: str | None, database: str | None, config: Path | None,
             fmt: str) -> None:
    """Replay stored history through the policies of FILE; enforce nothing.

    Prints when each tier would have fired and for whom (the minute the threshold would
    have been reached, the scope and its hosts, usage and percent).
    """
    import json
    import time

    from netwarden.collector.policy.simulate import simulate as run_simulation
    from netwarden.errors import UsageError

    cfg, policies = _config_and_policies(store, database, config, (file,))
    chosen = [p for p in policies.policies if only is None or p.name == only]
    if not chosen:
        raise UsageError(f"--policy: no policy {only!r} in {file}")
    since_s = since // 1_000_000_000
    until_s = (until // 1_000_000_000) if until is not None else int(time.time())
    if until_s <= since_s:
        raise UsageError("--until must be after --since")
    crossings = []
    with open_local_store(cfg.store.target, cfg.store.database) as opened:
        for policy in chosen:
            crossings += run_simulation(opened, policy, policies, since_s, until_s,
                                        labels=cfg.policy.labels)
    crossings.sort()
    if fmt == "json":
        click.echo(json.dumps({"since": since_s, "until": until_s,
                               "policies": [p.name for p in chosen],
                               "crossings": [c.to_json() for c in crossings]}, indent=2))
        return
    from netwarden.collector.reports.output import human_bytes

    rows = [("AT (UTC)", "POLICY", "SCOPE", "HOSTS", "USAGE", "PERCENT", "TIER")]
    for c in crossings:
        rows.append((c.to_json()["at_iso"], c.policy, c.scope, ",".join(c.hosts),
                     human_bytes(c.usage), f"{c.percent:.1f}%",
                     f"{c.tier}: {c.threshold:g}% {c.action}"))
    click.echo(_table(rows))
    click.echo(f"{_count(len(crossings), 'tier crossing', 'tier crossings')} for "
               f"{_count(len(chosen), 'policy', 'policies')}; nothing was enforced")


def _config_and_policies(store: str | None, database: str | None, config: Path | None,
                         files: tuple[Path, ...]) -> tuple[CollectorConfig, PolicySet]:
    from netwarden.collector.config import CollectorConfig
    from netwarden.config import load_config
    from netwarden.errors import UsageError
    from netwarden.policy import load_policies

    cfg = load_config(CollectorConfig, config,
                      {"store.target": store, "store.database": database})
    paths = list(files) or [Path(f) for f in cfg.policy.files]
    if not paths:
        raise UsageError("no policy files: give --policies FILE or a --config whose [policy] "
                         "files lists some")
    return cfg, load_policies(paths)


def _emit_status(data: dict[str, Any], fmt: str) -> None:
    import json

    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    from netwarden.collector.reports.output import human_bytes

    rows = [("POLICY", "SCOPE", "USAGE", "QUOTA", "PERCENT", "TIER", "PERIOD END", "HOSTS")]
    for r in data["rows"]:
        rows.append((r["policy"], r["scope"], human_bytes(int(r["usage"])),
                     human_bytes(int(r["quota"])), f"{float(r['percent']):.1f}%", r["tier"],
                     r["period_end"], ",".join(r["hosts"])))
    click.echo(_table(rows))
    click.echo(f"{_count(len(data['rows']), 'scope', 'scopes')} at {data.get('at', '?')}")
    hosts = data.get("enforcement")
    if hosts:  # from a collector: what each sensor was sent and reports in force
        hrows: list[tuple[str, ...]] = [
            ("HOST", "DESIRED", "APPLIED", "RULESET (APPLIED)", "MODE", "RULES", "STATE")]
        for h in hosts:
            state = "in sync" if h["in_sync"] else "out of sync"
            if h["error"]:
                state += f": {h['error']}"
            elif h["refused"]:
                state += f", {_count(len(h['refused']), 'rule', 'rules')} refused"
            hrows.append((h["host"] + ("" if h["connected"] else " (gone)"),
                         f"v{h['desired_version']} {h['desired_ruleset'][:12]}",
                         f"v{h['applied_version']}", h["applied_ruleset"][:12] or "-",
                         h["mode"] or "-", str(h["rules_in_force"]), state))
        click.echo("")
        click.echo(_table(hrows))
    applied = data.get("applied")
    if applied:  # from a store: what each sensor last reported in force
        arows: list[tuple[str, ...]] = [
            ("HOST", "APPLIED", "RULESET", "MODE", "RULES", "STATE", "REPORTED")]
        for h in applied:
            state = "error: " + h["error"] if h["error"] else "ok"
            if h["refused"]:
                state += f", {_count(len(h['refused']), 'rule', 'rules')} refused"
            if h["drift"]:
                state += f", {_count(len(h['drift']), 'drift', 'drifts')}"
            arows.append((h["host"], f"v{h['applied_version']}",
                          h["applied_ruleset"][:12] or "-", h["mode"] or "-",
                          str(h["rules_in_force"]), state, h["reported_at"]))
        click.echo("")
        click.echo(_table(arows))


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
                     .rstrip() for r in rows)
