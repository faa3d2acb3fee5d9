"""``netwarden report all --html FILE``: every report, its table and chart, on one page.

Every report registered in :data:`netwarden.collector.query.REPORTS` at run time is run
with the common filters (time range, --host) and --top, so reports added later (apps,
processes, geo...) join the page as soon as they are registered. io runs first: its span
picks the timeline step (the stored interval or the first of minute, 5 min, 15 min,
hour, 6 h, day giving at most 300 steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import click

from netwarden.cli.report.common import (
    CommonOptions,
    common,
    fetch_many,
    source_options,
    top_option,
)
from netwarden.errors import RuntimeFailure

__all__ = ["command", "plan", "scope_lines", "timeline_step"]

# page order; registered reports not listed here follow, by name
ORDER: Final = ("timeline", "io", "protocols", "protocol_counts", "talkers", "ports",
                "transport", "conversations", "usage", "sizes", "ttl", "geo", "apps",
                "processes")
STEPS: Final = (60, 300, 900, 3600, 21600, 86400)
MAX_STEPS: Final = 300


@click.command(name="all")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True,
                                                      path_type=Path),
              required=True, metavar="FILE",
              help="Write the page to FILE (self-contained: opens with no network).")
@top_option
@source_options
def command(html_path: Path, top: int, **kwargs: Any) -> None:
    """Every report on one HTML page: a table of contents, then one section per report
    with its table and chart (interactive; plotly.js embedded, nothing fetched).

    The reports read the records selected by --since/--until/--host (default: the
    whole fleet, all time); top lists keep --top rows.
    """
    opts = common(kwargs)
    from netwarden.collector.query import REPORTS
    from netwarden.collector.reports.charts import figure_for, has_chart
    from netwarden.collector.reports.charts.page import Section, report_page

    names = plan(list(REPORTS))
    io_result = fetch_many(opts, [("io", None)])[0] if "io" in names else None
    step = timeline_step(io_result.rows, io_result.meta.get("interval")) if io_result else 60
    defaults: dict[str, Any] = {"top": top, "kind": "ip", "step_s": step}
    requests: list[tuple[str, dict[str, Any] | None]] = [
        (name, {k: v for k, v in defaults.items() if k in REPORTS[name][1]})
        for name in names if name != "io"]
    results = {name: result for (name, _), result
               in zip(requests, fetch_many(opts, requests), strict=True)}
    if io_result is not None:
        results["io"] = io_result
    sections = [Section(result, figure_for(result) if has_chart(name) else None)
                for name in names if (result := results.get(name)) is not None]
    text = report_page("netwarden report", scope_lines(opts, results), sections)
    try:
        html_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {html_path}: {exc.strerror}") from None
    click.echo(f"wrote {html_path}: {len(sections)} reports "
               f"({', '.join(s.id for s in sections)})")


def plan(registered: list[str]) -> list[str]:
    """The reports to run, in page order."""
    known = [name for name in ORDER if name in registered]
    return known + sorted(name for name in registered if name not in ORDER)


def timeline_step(io_rows: list[dict[str, Any]], interval: int | None) -> int:
    """Seconds per timeline step for the span the io rows cover."""
    base = int(interval or 60)
    span = (max(int(r["start"]) for r in io_rows) + base) if io_rows else base
    for step in (base, *STEPS):
        if step >= base and span / step <= MAX_STEPS:
            return step
    return max(base, STEPS[-1])


def scope_lines(opts: CommonOptions, results: dict[str, Any]) -> list[str]:
    """Header lines: which hosts (or the fleet), which time range, where from."""
    if opts.hosts:
        who = f"Host{'s' if len(opts.hosts) > 1 else ''}: {', '.join(opts.hosts)}"
    else:
        usage = results.get("usage")
        hosts = sorted((usage.meta.get("hosts") or {}) if usage is not None else {})
        who = (f"Fleet: all {len(hosts)} host{'s' if len(hosts) != 1 else ''}"
               + (f" ({', '.join(hosts)})" if hosts else ""))
    from netwarden.collector.reports.filters import iso_from_ns

    since = iso_from_ns(opts.since) if opts.since is not None else "the first record"
    until = iso_from_ns(opts.until) if opts.until is not None else "the last record"
    lines = [who, f"Time range: from {since} to {until}"]
    io = results.get("io")
    if io is not None and io.rows and io.meta.get("origin"):
        span = max(int(r["start"]) for r in io.rows) + int(io.meta.get("interval") or 0)
        lines.append(f"Records from {io.meta['origin']} over {span} s "
                     f"({io.meta.get('interval')} s intervals)")
    source = f"collector {opts.collector}" if opts.collector else f"store {opts.store or '(config)'}"
    lines.append(f"Source: {source}")
    return lines
