"""Writing charts: ``netwarden report ... --plot FILE.html|FILE.png`` on a real store (real
CLI, Debian's chromium drawing the PNGs through kaleido), and the render helpers."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from fixtures.cli import analyzed_capture, run

from netwarden.collector.query import REPORTS
from netwarden.collector.reports.charts import render
from netwarden.errors import RuntimeFailure, UsageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_chromium = pytest.mark.skipif(render.browser_path() is None, reason="no chromium")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyzed_capture("zeek-wikipedia.pcap", tmp_path_factory.mktemp("plot") / "store")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.mark.parametrize(("args", "marker"), [
    (["talkers"], "141.142.220.118"),
    (["protocols"], '"type":"sunburst"'),
    (["sizes"], '"type":"box"'),
    (["conversations", "--kind", "tcp"], '"type":"scatter"'),
    (["protocols", "--flat"], '"type":"treemap"'),
])
def test_plot_html_is_a_self_contained_page_and_stdout_keeps_the_table(
        store: Path, tmp_path: Path, args: list[str], marker: str) -> None:
    out = tmp_path / "chart.html"
    r = run("report", *args, "--store", str(store), "--plot", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()  # the report itself still goes to stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "plotly.js v" in text
    assert marker in text
    assert not re.search(r"<script[^>]*\bsrc=", text)  # no script from a CDN (or anywhere)
    assert "https://cdn" not in re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)


@needs_chromium
@pytest.mark.parametrize(("report", "size"), [("talkers", (1200, 400)),
                                              ("sizes", (1350, 460))])
def test_plot_png_is_drawn_by_chromium(store: Path, tmp_path: Path, report: str,
                                       size: tuple[int, int]) -> None:
    out = tmp_path / f"{report}.png"
    r = run("report", report, "--store", str(store), "--format", "json", "--plot", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{")
    data = out.read_bytes()
    assert png_size(data) == size
    assert len(data) > 10_000  # a drawn chart, not a blank image


@needs_chromium
def test_world_map_png_is_drawn_offline(store: Path, tmp_path: Path) -> None:
    if "geo" not in REPORTS:
        pytest.skip("geo report not registered")
    out = tmp_path / "geo.png"
    r = run("report", "geo", "--store", str(store), "--plot", str(out))
    assert r.returncode == 0, r.stderr
    assert png_size(out.read_bytes()) == (1200, 560)
    assert out.stat().st_size > 30_000  # countries drawn (the topojson was found)


def test_a_report_without_a_chart_is_a_usage_error(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ttl.html"
    r = run("report", "ttl", "--store", str(store), "--plot", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith("netwarden: error: --plot: report ttl has no chart")
    assert not out.exists()


def test_an_unknown_plot_suffix_is_a_usage_error(store: Path, tmp_path: Path) -> None:
    r = run("report", "talkers", "--store", str(store), "--plot", str(tmp_path / "x.pdf"))
    assert r.returncode == 2
    assert "expected a FILE.html or FILE.png" in r.stderr


def test_no_browser_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import plotly.graph_objects as go

    monkeypatch.setattr(render, "DEBIAN_CHROMIUM", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert render.browser_path() is None
    with pytest.raises(RuntimeFailure) as err:
        render.png_bytes(go.Figure())
    assert err.value.message.startswith("no Chromium to draw a PNG with: install Debian's")
    assert len(err.value.lines()) == 1


def test_debian_chromium_is_preferred() -> None:
    if not Path(render.DEBIAN_CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium")
    assert render.browser_path() == render.DEBIAN_CHROMIUM


def test_check_plot_path() -> None:
    render.check_plot_path(Path("a.HTML"))
    render.check_plot_path(Path("a.png"))
    with pytest.raises(UsageError, match="got suffix '\\(none\\)'"):
        render.check_plot_path(Path("chart"))
