"""Charts of reports: one plotly figure per report where a picture helps.

:data:`CHARTS` maps a report name (as in :data:`netwarden.collector.query.REPORTS`) to a
builder ``(ReportResult) -> plotly Figure``; a report with no entry has no chart. One small
module per kind of chart:

* :mod:`.timeseries` — timeline (area over calendar steps) and io (bars per interval);
* :mod:`.sizes` — packet-size histogram, PDF/CDF and box plot;
* :mod:`.top` — top-N bars (:class:`~.top.TopBar`: one entry per ranked report);
* :mod:`.protocols` — protocol hierarchy sunburst, ``--flat`` counts treemap;
* :mod:`.conversations` — address-pair scatter, bytes A→B against B→A, sized by total;
* :mod:`.world` — bytes per country on a world map, drawn from data shipped in
  ``data/`` (nothing fetched at run time).

:mod:`.render` writes one figure as a self-contained HTML page (plotly.js embedded) or a
PNG (kaleido driving a headless Chromium); :mod:`.page` assembles the ``report all`` page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..result import ReportResult
from .conversations import conversations_figure
from .protocols import protocol_counts_figure, protocols_figure
from .sizes import sizes_figure
from .timeseries import io_figure, timeline_figure
from .top import TopBar, fields, first_of
from .world import geo_figure

__all__ = ["CHARTS", "Builder", "chart_names", "figure_for", "has_chart"]

Builder = Callable[[ReportResult], Any]


def app_label(row: dict[str, Any]) -> str:
    """An ``apps`` bar: the app label, or with ``--by name`` the server name and where it
    was seen (one name can have a row per source)."""
    if "name" in row:
        return f"{row['name']} ({row.get('source') or '?'})"
    return str(row.get("app") or "(none)")

CHARTS: Final[dict[str, Builder]] = {
    "timeline": timeline_figure,
    "io": io_figure,
    "sizes": sizes_figure,
    "talkers": TopBar("Top talkers (bytes per address)", first_of("key")),
    "ports": TopBar("Top ports (bytes per port)", first_of("key")),
    "transport": TopBar("Transport mix of the top talkers", first_of("key"),
                        stack="protocols"),
    "usage": TopBar("Usage per address pair", fields("a", "b", sep=" ↔ ")),
    "apps": TopBar("Top applications", app_label),
    "processes": TopBar("Top processes", first_of("process")),
    "protocols": protocols_figure,
    "protocol_counts": protocol_counts_figure,
    "conversations": conversations_figure,
    "geo": geo_figure,
}


def has_chart(report: str) -> bool:
    """Whether report ``report`` has a chart."""
    return report in CHARTS


def chart_names() -> list[str]:
    """Reports with a chart, sorted."""
    return sorted(CHARTS)


def figure_for(result: ReportResult) -> Any:
    """The plotly figure of ``result`` (``KeyError`` when its report has no chart)."""
    return CHARTS[result.report](result)
