"""What every ``netwarden report`` subcommand shares: options, store opening, output.

The subcommands (one module each in this package) only differ in the report they name and
its parameters, run by :func:`netwarden.collector.query.run_report` on a store, or by a
collector's Query RPC (``--collector``, the same function on the collector's store);
rendering is :mod:`netwarden.collector.reports.output`. Heavy imports (chdb, rich) happen inside the
commands so ``netwarden --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from netwarden.errors import InputError, RuntimeFailure, UsageError

if TYPE_CHECKING:
    from netwarden.collector.reports import Filters, ReportResult
    from netwarden.collector.store import Store

__all__ = [
    "CommonOptions",
    "check_local_store",
    "common",
    "common_options",
    "emit",
    "fetch",
    "fetch_many",
    "filters_of",
    "group_hosts",
    "open_local_store",
    "run",
    "source_options",
    "store_settings",
    "top_option",
]

F = TypeVar("F", bound=Callable[..., Any])

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_TIME_HELP = (
    "ISO 8601 (2024-03-01T10:00:00Z; no offset means UTC), epoch seconds, "
    "or a duration back from now (30m, 2h, 7d)."
)


class TimeType(click.ParamType):  # type: ignore[type-arg]
    """A --since/--until value, converted to nanoseconds since the epoch."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from netwarden.collector.reports.filters import TimeFormatError, parse_time

        try:
            ns: int = parse_time(str(value))
        except TimeFormatError as exc:
            self.fail(str(exc), param, ctx)
        return ns


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """The options every report subcommand takes."""

    store: str | None
    collector: str | None
    database: str | None
    config: Path | None
    since: int | None
    until: int | None
    hosts: tuple[str, ...]
    fmt: str
    output: Path | None
    plot: Path | None = None


def source_options(func: F) -> F:
    """Where the records come from and which: store/collector, time range, hosts."""
    options = [
        click.option("--store", "store", metavar="DIR|URL", default=None,
                     help="Store to read: a chdb data directory or a clickhouse://host:port "
                          "URL. Default: store.target of the config (./netwarden-data)."),
        click.option("--collector", "collector", metavar="HOST:PORT", default=None,
                     help="Ask a running collector instead of opening a store (it reads "
                          "its own store; needed for an embedded store the collector "
                          "holds)."),
        click.option("--database", metavar="NAME", default=None,
                     help="ClickHouse database holding the tables. Default: store.database "
                          "of the config (netwarden)."),
        click.option("--config", "config", type=click.Path(exists=True, dir_okay=False,
                                                            path_type=Path),
                     default=None, help="TOML config file to read the store settings from."),
        click.option("--since", type=TimeType(), default=None,
                     help="Only intervals starting at or after this time. " + _TIME_HELP),
        click.option("--until", type=TimeType(), default=None,
                     help="Only intervals starting before this time. " + _TIME_HELP),
        click.option("--host", "hosts", multiple=True, metavar="NAME",
                     help="Only records of this host (repeat for several; a shell glob "
                          "such as 'web-*' selects every matching host). Default: all."),
        click.option("--group", "groups", multiple=True, metavar="NAME",
                     help="Only records of the hosts of this host group (repeatable), as "
                          "defined in the policy files given with --policies (its host "
                          "names and globs)."),
        click.option("--policies", "policy_files", multiple=True, metavar="FILE",
                     type=click.Path(exists=True, path_type=Path),
                     help="Policy files or directories defining the groups of --group."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def common_options(func: F) -> F:
    """:func:`source_options` and the output options (--format, --output, --plot)."""
    options = [
        click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                     default="table", show_default=True,
                     help="table: for people (bytes humanised); json and csv: exact numbers."),
        click.option("--output", "output", type=click.Path(dir_okay=False, writable=True,
                                                            path_type=Path),
                     default=None, help="Write to FILE instead of standard output."),
        click.option("--plot", "plot", type=click.Path(dir_okay=False, writable=True,
                                                        path_type=Path),
                     default=None, metavar="FILE.html|FILE.png",
                     help="Also draw the report's chart: FILE.html a self-contained "
                          "interactive page (works offline), FILE.png an image (drawn "
                          "by a headless Chromium)."),
    ]
    for option in reversed(options):
        func = option(func)
    return source_options(func)


def common(kwargs: dict[str, Any]) -> CommonOptions:
    """Pop the common options out of a command's ``kwargs`` (output ones may be absent)."""
    plot = kwargs.pop("plot", None)
    if plot is not None:
        from netwarden.collector.reports.charts.render import check_plot_path

        check_plot_path(plot)
    return CommonOptions(
        store=kwargs.pop("store"),
        collector=kwargs.pop("collector"),
        database=kwargs.pop("database"),
        config=kwargs.pop("config"),
        since=kwargs.pop("since"),
        until=kwargs.pop("until"),
        hosts=tuple(kwargs.pop("hosts")) + group_hosts(tuple(kwargs.pop("groups")),
                                                        tuple(kwargs.pop("policy_files"))),
        fmt=kwargs.pop("fmt", "table"),
        output=kwargs.pop("output", None),
        plot=plot,
    )


def group_hosts(groups: tuple[str, ...], policy_files: tuple[Path, ...]) -> tuple[str, ...]:
    """The host names and globs of the named groups of the policy files."""
    if not groups:
        return ()
    if not policy_files:
        raise UsageError("--group needs --policies FILE (the policy files defining groups)")
    from netwarden.policy.load import load_policies

    policies = load_policies(policy_files)
    out: list[str] = []
    for name in groups:
        try:
            group = policies.group(name)
        except KeyError:
            known = ", ".join(g.name for g in policies.groups) or "none"
            raise UsageError(f"--group {name}: no such group in the policy files "
                             f"(groups: {known})") from None
        if not group.hosts:
            raise UsageError(f"--group {name}: the group selects hosts by labels only; "
                             "reports select hosts by name or glob")
        out += group.hosts
    return tuple(out)


def filters_of(opts: CommonOptions) -> Filters:
    from netwarden.collector.reports import Filters

    try:
        return Filters(since_ns=opts.since, until_ns=opts.until, hosts=opts.hosts)
    except ValueError as exc:
        raise UsageError(f"--since/--until: {exc}") from None


def store_settings(opts: CommonOptions) -> tuple[str, str]:
    from netwarden.config import ReportConfig, load_config

    config = load_config(
        ReportConfig, opts.config,
        {"store.target": opts.store, "store.database": opts.database},
    )
    return config.store.target, config.store.database


def check_local_store(target: str) -> None:
    """A directory target must be an existing chdb data directory (never create one)."""
    if _URL.match(target):
        return
    path = Path(target).expanduser()
    if not path.exists():
        raise InputError(f"store not found: {target}: no such directory "
                         "(give --store, or run `netwarden analyze` first)")
    if not path.is_dir():
        raise InputError(f"store {target} is not a directory")
    if not (path / "metadata").is_dir():
        raise InputError(f"store {target} holds no chdb data (no metadata directory)")


def run(opts: CommonOptions, report: str, params: dict[str, Any] | None = None) -> None:
    """Run ``report`` with ``params`` (see :mod:`netwarden.collector.query`; the filters
    come from the common options) on the store or the collector; write the result."""
    emit(opts, fetch(opts, report, params))


def fetch(opts: CommonOptions, report: str, params: dict[str, Any] | None = None
          ) -> ReportResult:
    """The result of ``report`` with ``params`` from the store or the collector."""
    return fetch_many(opts, [(report, params)])[0]


def fetch_many(opts: CommonOptions, requests: list[tuple[str, dict[str, Any] | None]]
               ) -> list[ReportResult]:
    """The results of several ``(report, params)`` (the store is opened once)."""
    if opts.plot is not None:
        from netwarden.collector.reports.charts import has_chart
        from netwarden.collector.reports.charts.render import no_chart_message

        for report, _ in requests:
            if not has_chart(report):
                raise UsageError(no_chart_message(report))
    filters = filters_of(opts)
    from netwarden.collector.query import filters_json

    full = [(report, {**(params or {}), "filters": filters_json(filters)})
            for report, params in requests]
    if opts.collector is not None:
        return [_from_collector(opts, report, p) for report, p in full]
    return _from_store(opts, full)


def emit(opts: CommonOptions, result: ReportResult) -> None:
    """Write ``result`` in ``opts.fmt`` to ``opts.output`` or standard output, and its
    chart to ``opts.plot`` when given."""
    from netwarden.collector.reports.output import write

    if opts.output is None:
        write(result, opts.fmt, sys.stdout)
    else:
        try:
            with opts.output.open("w", encoding="utf-8", newline="") as stream:
                write(result, opts.fmt, stream)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {opts.output}: {exc.strerror}") from None
    if opts.plot is not None:
        from netwarden.collector.reports.charts.render import plot_result

        plot_result(result, opts.plot)


def _from_collector(opts: CommonOptions, report: str, params: dict[str, Any]) -> ReportResult:
    given = [name for name, value in (("--store", opts.store), ("--database", opts.database),
                                      ("--config", opts.config)) if value is not None]
    if given:
        raise UsageError(f"--collector and {'/'.join(given)} are mutually exclusive: the "
                         "collector reads its own store")
    from netwarden.endpoint import split_endpoint

    assert opts.collector is not None
    try:
        split_endpoint(opts.collector)
    except ValueError as exc:
        raise UsageError(f"--collector: {exc}") from None
    from netwarden.collector.client import query_report

    return query_report(opts.collector, report, params)


@contextlib.contextmanager
def open_local_store(target: str, database: str) -> Iterator[Store]:
    """The started store ``target`` (checked with :func:`check_local_store`; never
    migrated), stopped on leaving; store errors, opening or inside, become
    :class:`RuntimeFailure`."""
    check_local_store(target)
    from netwarden.collector.store import StoreError, open_store

    try:
        store = open_store(target, database=database)
        store.start(migrate=False)
    except StoreError as exc:
        raise RuntimeFailure(f"cannot open store {target}: {exc}") from None
    try:
        yield store
    except StoreError as exc:
        raise RuntimeFailure(str(exc)) from None
    finally:
        store.stop()


def _from_store(opts: CommonOptions, requests: list[tuple[str, dict[str, Any]]]
                ) -> list[ReportResult]:
    target, database = store_settings(opts)
    with open_local_store(target, database) as store:
        from netwarden.collector.query import run_report

        _check_not_empty(store, target, database)
        return [run_report(store, report, params) for report, params in requests]


def _check_not_empty(store: Store, target: str, database: str) -> None:
    rows = store.query("SELECT count() AS record_count FROM flows")
    if not rows or not int(rows[0][0]):
        raise InputError(f"store {target} (database {database}) has no flow records "
                         "(run `netwarden analyze` first)")


def top_option(func: F) -> F:
    return click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
                        metavar="N", help="Number of rows.")(func)
