"""Writing charts: a self-contained HTML page (plotly.js embedded) or a PNG.

HTML pages carry plotly.js inline (and, when a figure draws a map, the shipped world
topojson), so they open with no network. PNGs are drawn by kaleido in a headless
Chromium: Debian's ``/usr/bin/chromium`` when present, else ``$BROWSER_PATH`` or a
``chromium``/``google-chrome`` on ``PATH``; kaleido's page gets the local plotly.js, no
MathJax and the same topojson, so nothing is fetched either.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from netwarden.errors import RuntimeFailure, UsageError

from ..result import ReportResult
from .world import geo_assets_script, needs_world_map

SUFFIXES: Final = (".html", ".htm", ".png")
CONFIG: Final = {"displaylogo": False, "responsive": True}
DEBIAN_CHROMIUM: Final = "/usr/bin/chromium"
PNG_TIMEOUT_S: Final = 90
_QUIET_LOGGERS: Final = ("kaleido", "choreographer", "logistro")
_BROWSERS: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def check_plot_path(path: Path) -> None:
    """``--plot`` must name an .html/.htm or .png file (:class:`UsageError` otherwise)."""
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--plot {path}: expected a FILE.html or FILE.png, "
                         f"got suffix {path.suffix or '(none)'!r}")


def figure_div(fig: Any, div_id: str) -> str:
    """The figure as a ``<div>`` and its drawing script (plotly.js not included)."""
    import plotly.io as pio

    div: str = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                           config=dict(CONFIG))
    return div


def head_scripts(figures: Iterable[Any]) -> str:
    """``<script>`` elements: plotly.js, then the world topojson if a figure needs it."""
    from plotly.offline import get_plotlyjs

    parts = [f'<script type="text/javascript">{get_plotlyjs()}</script>']
    if any(needs_world_map(fig) for fig in figures):
        parts.append(f'<script type="text/javascript">{geo_assets_script()}</script>')
    return "\n".join(parts)


def page(title: str, head: str, body: str) -> str:
    """A complete HTML document."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n{head}\n</head>\n<body>\n{body}\n"
            f"</body>\n</html>\n")


def figure_page(fig: Any, title: str) -> str:
    """One figure as a self-contained page."""
    style = "<style>body{font-family:sans-serif;margin:1em}</style>"
    return page(title, style + "\n" + head_scripts([fig]), figure_div(fig, "chart"))


def browser_path() -> str | None:
    """The Chromium kaleido should drive, or ``None`` when there is none."""
    candidates = [DEBIAN_CHROMIUM, os.environ.get("BROWSER_PATH") or ""]
    candidates += [shutil.which(name) or "" for name in _BROWSERS]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def png_bytes(fig: Any, width: int | None = None, height: int | None = None) -> bytes:
    """The figure drawn as a PNG by kaleido in a headless Chromium."""
    browser = browser_path()
    if browser is None:
        raise RuntimeFailure("no Chromium to draw a PNG with: install Debian's chromium "
                             "(apt-get install chromium) or set BROWSER_PATH")
    import kaleido

    for name in _QUIET_LOGGERS:  # their INFO lines would reach netwarden's log output
        logging.getLogger(name).setLevel(logging.WARNING)
    w = width or fig.layout.width or 1200
    h = height or fig.layout.height or 600
    with tempfile.TemporaryDirectory(prefix="netwarden-png-") as tmp:
        others: list[Any] = []
        if needs_world_map(fig):
            script = Path(tmp) / "geo-assets.js"
            script.write_text(geo_assets_script(), encoding="utf-8")
            others.append(str(script))
        generator = kaleido.PageGenerator(mathjax=False, others=others or None)

        async def draw() -> bytes:
            async with kaleido.Kaleido(path=browser, page_generator=generator,
                                       timeout=PNG_TIMEOUT_S) as k:
                data: bytes = await k.calc_fig(fig, opts={"format": "png", "width": w,
                                                          "height": h})
                return data

        try:
            return asyncio.run(draw())
        except Exception as exc:  # kaleido/choreographer raise many kinds
            first = (str(exc).strip().splitlines() or [""])[0]
            raise RuntimeFailure(f"cannot draw the PNG with {browser}: "
                                 f"{type(exc).__name__}: {first}") from None


def write_plot(fig: Any, path: Path, title: str) -> None:
    """Write ``fig`` to ``path``: a page for .html/.htm, an image for .png."""
    check_plot_path(path)
    try:
        if path.suffix.lower() == ".png":
            path.write_bytes(png_bytes(fig))
        else:
            path.write_text(figure_page(fig, title), encoding="utf-8")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {path}: {exc.strerror}") from None


def plot_result(result: ReportResult, path: Path) -> None:
    """Write the chart of ``result`` to ``path`` (:class:`UsageError` if it has none)."""
    from . import figure_for, has_chart

    if not has_chart(result.report):
        raise UsageError(no_chart_message(result.report))
    write_plot(figure_for(result), path, f"netwarden report {result.report}")


def no_chart_message(report: str) -> str:
    from . import chart_names

    return (f"--plot: report {report} has no chart (reports with one: "
            f"{', '.join(chart_names())})")
