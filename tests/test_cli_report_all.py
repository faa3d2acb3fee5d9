"""``netwarden report all --html FILE``: a real capture analysed into a real store, the page
written by the real CLI, loaded in Debian's headless Chromium over the DevTools protocol."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.browser import chromium, load_page
from fixtures.cli import NETWARDEN, analyzed_capture, run

from netwarden.cli.report.all import plan, timeline_step
from netwarden.collector.query import REPORTS
from netwarden.collector.reports.charts import has_chart

CAPTURE = "zeek-wikipedia.pcap"
HOST = CAPTURE  # analyze names the host after the file

needs_chromium = pytest.mark.skipif(chromium() is None, reason="no chromium (scripts/setup.sh "
                                                                "--server installs it)")

# every section there, every chart drawn by plotly (its SVG root inside the div)
READY = ("Array.from(document.querySelectorAll('div.plotly-graph-div'))"
         ".every(d => d.querySelector('.main-svg'))")
PROBE = """({
  sections: Array.from(document.querySelectorAll('section.report')).map(s => ({
    id: s.id,
    charts: s.querySelectorAll('div.plotly-graph-div').length,
    drawn: Array.from(s.querySelectorAll('div.plotly-graph-div'))
      .filter(d => d.querySelector('.plot-container .main-svg')).length,
    tableRows: s.querySelectorAll('table.rows tbody tr').length,
    countries: s.querySelectorAll('path.choroplethlocation').length,
  })),
  toc: Array.from(document.querySelectorAll('nav#toc a')).map(a => a.getAttribute('href')),
  title: document.querySelector('h1').textContent,
  scope: Array.from(document.querySelectorAll('p.scope')).map(p => p.textContent),
})"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analyzed_capture(CAPTURE, tmp_path_factory.mktemp("all") / "store")


@pytest.fixture(scope="module")
def page(store: Path) -> Path:
    out = store.parent / "page.html"
    r = run("report", "all", "--html", str(out), "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {out}: ")
    return out


@needs_chromium
def test_page_loads_without_console_errors_and_shows_every_section(
        page: Path, tmp_path: Path) -> None:
    loaded = load_page(page.as_uri(), ready_js=READY, probe_js=PROBE)
    assert loaded.errors() == []
    sections = {s["id"]: s for s in loaded.probe["sections"]}
    assert list(sections) == plan(list(REPORTS))  # every registered report, in page order
    assert loaded.probe["toc"] == [f"#{name}" for name in sections]
    for name, s in sections.items():
        if has_chart(name):
            assert (s["charts"], s["drawn"]) == (1, 1), s
        else:
            assert s["charts"] == 0, s
    assert sections["talkers"]["tableRows"] == 10
    assert sections["protocols"]["tableRows"] > 5  # the flattened tree
    assert sections["ttl"]["tableRows"] > 0  # a report without a chart still has its table
    if "geo" in sections:  # Wikimedia's addresses: countries coloured on the offline map
        assert sections["geo"]["countries"] >= 1
    shot = tmp_path / "report_all.png"
    shot.write_bytes(loaded.screenshot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 100_000


@needs_chromium
def test_page_fetches_nothing_from_the_network(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    tags = re.findall(r"<script[^>]*>", text)
    assert tags and not [t for t in tags if "src" in t]  # every script is inline
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", markup)
    assert text.count("plotly.js v") == 1  # embedded once for all the charts
    # the browser's proxy refuses every connection: any fetch would fail loudly
    loaded = load_page(page.as_uri(), ready_js=READY, probe_js="null")
    assert loaded.requests == [page.as_uri()]
    assert loaded.errors() == []


def test_scope_header_names_the_host_and_time_range(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "host.html"
    r = run("report", "all", "--html", str(out), "--store", str(store), "--host", HOST,
            "--top", "3", "--since", "2000-01-01T00:00:00Z")
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert f'<p class="scope">Host: {HOST}</p>' in text
    assert "Time range: from 2000-01-01T00:00:00" in text
    talkers = text.split('<section id="talkers"', 1)[1].split("</section>", 1)[0]
    assert talkers.count("<tr><td") == 3


def test_fleet_scope_lists_the_hosts(page: Path) -> None:
    assert f'<p class="scope">Fleet: all 1 host ({HOST})</p>' in page.read_text(encoding="utf-8")


def test_html_is_required(store: Path) -> None:
    r = run("report", "all", "--store", str(store))
    assert r.returncode == 2
    assert "--html" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def collector(store: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([str(NETWARDEN), "--log-level", "warning", "collector", "serve",
                             "--listen", f"127.0.0.1:{port}", "--store", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "collector did not listen"
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_collector_page_has_the_same_sections_and_tables(
        page: Path, collector: str, tmp_path: Path) -> None:
    out = tmp_path / "remote.html"
    r = run("report", "all", "--html", str(out), "--collector", collector)
    assert r.returncode == 0, r.stderr

    def tables(text: str) -> list[str]:
        return re.findall(r'<section id="[^"]+" class="report">.*?<table class="rows">.*?'
                          r"</table>", text, flags=re.S)

    remote, local = out.read_text(encoding="utf-8"), page.read_text(encoding="utf-8")
    assert tables(remote) == tables(local)
    assert f"Source: collector {collector}" in remote


def test_plan_keeps_page_order_and_adds_unknown_reports_by_name() -> None:
    assert plan(["usage", "zeta", "timeline", "alpha", "io"]) == [
        "timeline", "io", "usage", "alpha", "zeta"]


@pytest.mark.parametrize(("span_s", "interval", "step"), [
    (30, 10, 10), (3000, 10, 10), (3010, 10, 60), (86400, 10, 300), (10 * 86400, 10, 3600),
    (400 * 86400, 10, 86400)])
def test_timeline_step_keeps_at_most_300_steps_up_to_days(span_s: int, interval: int, step: int) -> None:
    rows = [{"start": span_s - interval}]
    assert timeline_step(rows, interval) == step
