"""The ``report all`` page: every report's table and chart in one self-contained HTML file.

One ``<section id="REPORT">`` per report (its heading, chart ``<div id="chart-REPORT">``
when it has one, its rows as an HTML table, its report-level figures as small tables), a
table of contents linking them, and a header naming the scope (hosts or the fleet, time
range). plotly.js is embedded once in ``<head>`` (and the world topojson when a map is
drawn), so the page works with no network.
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any, Final

from ..output import header, human_bytes, is_identifier
from ..protocols import flatten
from ..result import ReportResult
from .render import figure_div, head_scripts, page

TITLES: Final = {
    "timeline": "Traffic over time", "io": "Frames and bytes per interval",
    "protocols": "Protocol hierarchy", "protocol_counts": "Network and transport protocols",
    "talkers": "Top talkers", "ports": "Top ports", "transport": "Transport mix",
    "conversations": "IP conversations", "usage": "Usage per address pair",
    "sizes": "Packet sizes", "ttl": "TTL and hop limit", "geo": "Countries",
    "apps": "Applications", "processes": "Processes",
}

STYLE: Final = """<style>
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:1em 2em;color:#222}
header h1{margin-bottom:.2em} .scope{color:#444;margin:.2em 0}
nav#toc ol{columns:3;padding-left:1.5em} section.report{border-top:1px solid #ccc;padding:.5em 0 1.5em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f5f7} td.text{text-align:left} .meta{display:flex;flex-wrap:wrap;gap:1.5em}
.meta table caption{text-align:left;font-weight:600} .note{color:#555}
</style>"""


@dataclasses.dataclass(frozen=True)
class Section:
    """One report on the page; ``figure`` is ``None`` for a report without a chart."""

    result: ReportResult
    figure: Any | None = None

    @property
    def id(self) -> str:
        return self.result.report

    @property
    def title(self) -> str:
        return TITLES.get(self.result.report, self.result.report)


def report_page(title: str, scope: list[str], sections: list[Section]) -> str:
    """The complete page."""
    toc = "\n".join(f'<li><a href="#{html.escape(s.id)}">{html.escape(s.title)}</a></li>'
                    for s in sections)
    body = [
        f"<header><h1>{html.escape(title)}</h1>",
        *(f'<p class="scope">{html.escape(line)}</p>' for line in scope),
        "</header>",
        f'<nav id="toc"><h2>Contents</h2><ol>\n{toc}\n</ol></nav>',
        "<main>",
        *(_section(s) for s in sections),
        "</main>",
    ]
    figures = [s.figure for s in sections if s.figure is not None]
    return page(title, STYLE + "\n" + head_scripts(figures), "\n".join(body))


def _section(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.id)}" class="report">',
             f"<h2>{html.escape(section.title)}</h2>"]
    if section.figure is not None:
        parts.append(f'<div class="chart">{figure_div(section.figure, "chart-" + section.id)}'
                     "</div>")
    parts.append(result_table(section.result))
    meta = meta_tables(section.result.meta)
    if meta:
        parts.append(f'<div class="meta">{meta}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def result_table(result: ReportResult) -> str:
    """The rows as an HTML table (the protocol tree flattened, indented by depth)."""
    if result.report == "protocols":
        rows: list[dict[str, Any]] = list(flatten(result.rows))
        columns = list(result.columns)
    else:
        rows, columns = result.rows, list(result.columns)
    if not rows:
        return '<p class="note">No rows for this selection.</p>'
    head = "".join(f"<th>{html.escape(header(result.report, c))}</th>" for c in columns)
    lines = [f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>']
    for row in rows:
        cells = []
        for col in columns:
            text, is_text = cell(col, row.get(col))
            style = ""
            if result.report == "protocols" and col == "protocol":
                style = f' style="padding-left:{8 + 14 * int(row["depth"])}px"'
            cls = ' class="text"' if is_text else ""
            cells.append(f"<td{cls}{style}>{text}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def cell(column: str, value: Any) -> tuple[str, bool]:
    """Escaped cell HTML and whether it is text (left-aligned): bytes humanised with the
    exact count as a tooltip, integers with thousands separators."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return str(value).lower(), True
    if isinstance(value, int):
        if is_identifier(column):
            return str(value), False
        if "bytes" in column:
            return f'<span title="{value:,} B">{html.escape(human_bytes(value))}</span>', False
        return f"{value:,}", False
    if isinstance(value, float):
        return f"{value:.6g}", False
    if isinstance(value, list) and all(_scalar(v) for v in value):
        return html.escape(", ".join(str(v) for v in value)), True
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value)), True
    return html.escape(str(value)), True


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def meta_tables(meta: dict[str, Any]) -> str:
    """Report-level figures as small tables: a dict of values as key/value rows, a dict
    of such dicts as one row each; scalars together in one table; lists are left out."""
    tables = []
    scalars = {k: v for k, v in meta.items() if _scalar(v) and v is not None}
    if scalars:
        tables.append(_pairs("summary", scalars))
    for key, value in meta.items():
        if not isinstance(value, dict) or not value:
            continue
        if all(_scalar(v) for v in value.values()):
            tables.append(_pairs(key, value))
        elif all(isinstance(v, dict) and all(_scalar(x) for x in v.values())
                 for v in value.values()):
            tables.append(_grid(key, value))
        else:
            flat = {k: v for k, v in value.items() if _scalar(v)}
            if flat:
                tables.append(_pairs(key, flat))
    return "\n".join(tables)


def _pairs(caption: str, values: dict[str, Any]) -> str:
    rows = "".join(f'<tr><td class="text">{html.escape(str(k))}</td><td>{cell(str(k), v)[0]}'
                   "</td></tr>" for k, v in values.items())
    return f"<table><caption>{html.escape(caption)}</caption>{rows}</table>"


def _grid(caption: str, values: dict[str, dict[str, Any]]) -> str:
    columns: list[str] = []
    for inner in values.values():
        columns += [c for c in inner if c not in columns]
    head = "<th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join(
        f'<tr><td class="text">{html.escape(str(k))}</td>'
        + "".join(f"<td>{cell(c, inner.get(c))[0]}</td>" for c in columns) + "</tr>"
        for k, inner in values.items())
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{rows}</table>"
