"""Chart builders: report results (made here) to plotly figures; and the shipped map data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netwarden.collector.reports import ReportResult
from netwarden.collector.reports.charts import CHARTS, figure_for, has_chart
from netwarden.collector.reports.charts.world import (
    countries,
    geo_assets_script,
    map_codes,
    needs_world_map,
)

FILTERS: dict[str, Any] = {"since": None, "until": None, "hosts": []}


def result(report: str, rows: list[dict[str, Any]], **meta: Any) -> ReportResult:
    return ReportResult(report=report, filters=FILTERS, rows=rows,
                        columns=list(rows[0]) if rows else [], meta=meta)


def test_timeline_is_bytes_area_and_frames_line_over_utc_times() -> None:
    rows = [{"time": "2024-03-01T10:00:00Z", "epoch_s": 1, "frames": 3, "bytes": 300},
            {"time": "2024-03-01T10:01:00Z", "epoch_s": 2, "frames": 5, "bytes": 900}]
    fig = figure_for(result("timeline", rows, step=60))
    nbytes, frames = fig.data
    assert list(nbytes.x) == [r["time"] for r in rows] and list(nbytes.y) == [300, 900]
    assert nbytes.fill == "tozeroy" and list(frames.y) == [3, 5]
    assert frames.yaxis == "y2"
    assert "60 s" in fig.layout.title.text


def test_io_bars_span_their_interval() -> None:
    rows = [{"start": 0, "frames": 2, "bytes": 100}, {"start": 20, "frames": 1, "bytes": 60}]
    fig = figure_for(result("io", rows, interval=10, origin="2024-03-01T10:00:00Z"))
    bars, frames = fig.data
    assert list(bars.x) == [0, 20] and list(bars.width) == [10, 10] and bars.offset == 0
    assert list(frames.x) == [5, 25]


def test_sizes_histogram_pdf_cdf_and_box_from_the_report_figures() -> None:
    box = {"min": 60, "whisker_low": 60, "q1": 60, "median": 70, "q3": 100,
           "whisker_high": 150, "max": 1500, "outliers": 1}
    rows = [{"bucket": "40-79", "count": 3}, {"bucket": "80-159", "count": 2}]
    lengths = [{"frame_len": 60, "count": 2}, {"frame_len": 70, "count": 1},
               {"frame_len": 100, "count": 1}, {"frame_len": 1500, "count": 1}]
    fig = figure_for(result("sizes", rows, box=box, lengths=lengths))
    hist, pdf, cdf, boxplot, extremes = fig.data
    assert list(hist.x) == ["40-79", "80-159"] and list(hist.y) == [3, 2]
    assert sum(pdf.y) == pytest.approx(1.0) and list(pdf.x) == [60, 70, 100, 1500]
    assert list(cdf.y) == pytest.approx([0.4, 0.6, 0.8, 1.0])
    assert (boxplot.q1[0], boxplot.median[0], boxplot.q3[0]) == (60, 70, 100)
    assert (boxplot.lowerfence[0], boxplot.upperfence[0]) == (60, 150)
    assert list(extremes.y) == [60, 1500]
    assert fig.layout.title.text == "Frame lengths: 5 frames"


def test_top_bars_put_the_first_row_on_top() -> None:
    rows = [{"key": "10.0.0.1", "bytes": 900, "frames": 9},
            {"key": "10.0.0.2", "bytes": 100, "frames": 1}]
    (bar,) = figure_for(result("talkers", rows)).data
    assert bar.orientation == "h"
    assert list(bar.y) == ["10.0.0.2", "10.0.0.1"] and list(bar.x) == [100, 900]


def test_transport_bars_stack_the_protocol_mix() -> None:
    rows = [{"key": "a", "bytes": 30, "protocols": {"tcp": 20, "udp": 10}},
            {"key": "b", "bytes": 25, "protocols": {"udp": 25}}]
    fig = figure_for(result("transport", rows))
    assert fig.layout.barmode == "stack"
    parts = {t.name: dict(zip(t.y, t.x, strict=True)) for t in fig.data}
    assert list(parts) == ["udp", "tcp"]  # most bytes overall first
    assert parts == {"udp": {"b": 25, "a": 10}, "tcp": {"b": 0, "a": 20}}


@pytest.mark.parametrize(("report", "row", "label"), [
    ("usage", {"a": "10.0.0.1", "b": "10.0.0.2", "bytes": 5}, "10.0.0.1 ↔ 10.0.0.2"),
    ("apps", {"app": "web", "names": ["example.org"], "bytes": 5}, "web"),  # --by app
    ("apps", {"name": "example.org", "source": "tls", "app": "web", "bytes": 5},
     "example.org (tls)"),  # --by name: one row per name and source
    ("processes", {"process": "curl", "bytes": 5}, "curl"),
    ("ports", {"key": "tcp/443", "bytes": 5}, "tcp/443"),
])
def test_each_ranked_report_names_its_bars(report: str, row: dict[str, Any], label: str
                                           ) -> None:
    (bar,) = figure_for(result(report, [row])).data
    assert list(bar.y) == [label] and list(bar.x) == [5]


def test_apps_by_name_keeps_a_bar_per_name_and_source() -> None:
    rows = [{"name": "v.example", "source": "tls", "app": "video", "frames": 1, "bytes": 1500,
             "packets": 5},
            {"name": "v.example", "source": "dns", "app": "video", "frames": 3, "bytes": 500,
             "packets": 5}]
    (bar,) = figure_for(result("apps", rows)).data
    assert list(bar.y) == ["v.example (dns)", "v.example (tls)"]  # first row drawn on top
    assert list(bar.x) == [500, 1500]


def test_protocol_sunburst_rings_add_up_to_the_tree() -> None:
    tree = [{"protocol": "eth", "frames": 10, "bytes": 1000, "children": [
        {"protocol": "ip", "frames": 8, "bytes": 800, "children": [
            {"protocol": "tcp", "frames": 5, "bytes": 500, "children": []},
            {"protocol": "udp", "frames": 3, "bytes": 350, "children": []}]},  # > parent
        {"protocol": "arp", "frames": 2, "bytes": 120, "children": []}]}]
    (sun,) = figure_for(result("protocols", tree)).data
    assert list(sun.ids) == ["eth", "eth:ip", "eth:ip:tcp", "eth:ip:udp", "eth:arp"]
    assert list(sun.parents) == ["", "eth", "eth:ip", "eth:ip", "eth"]
    assert sun.branchvalues == "remainder"
    assert list(sun.values) == [80, 0, 500, 350, 120]  # own bytes, never negative


def test_protocol_counts_treemap_nests_transport_under_network() -> None:
    rows = [{"network": "ipv4", "transport": "tcp", "frames": 1, "bytes": 70},
            {"network": "ipv4", "transport": "udp", "frames": 1, "bytes": 30},
            {"network": "arp", "transport": "", "frames": 1, "bytes": 60}]
    (tree,) = figure_for(result("protocol_counts", rows)).data
    assert list(tree.ids) == ["ipv4", "ipv4/tcp", "ipv4/udp", "arp"]
    assert list(tree.parents) == ["", "ipv4", "ipv4", ""]
    assert list(tree.values) == [0, 70, 30, 60]


def test_conversation_scatter_is_bytes_each_way_sized_by_total() -> None:
    rows = [{"host": "h", "a": "10.0.0.1", "b": "10.0.0.2", "bytes_a_to_b": 900,
             "bytes_b_to_a": 0, "bytes": 900, "frames": 3},
            {"host": "h", "a": "10.0.0.3", "b": "10.0.0.4", "bytes_a_to_b": 50,
             "bytes_b_to_a": 50, "bytes": 100, "frames": 2}]
    fig = figure_for(result("conversations", rows, kind="ip"))
    (dots,) = fig.data
    assert list(dots.x) == [900, 50] and list(dots.y) == [1, 50]  # 0 B sits at 1 B
    assert dots.marker.size[0] > dots.marker.size[1]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "10.0.0.2 → 10.0.0.1: 0 B" in dots.text[0]


def test_world_map_colours_countries_and_notes_the_unplaced() -> None:
    rows = [{"country": "US", "bytes": 900}, {"country": "DE", "bytes": 300},
            {"country": "--", "bytes": 50}, {"country": "??", "bytes": 7}]
    fig = figure_for(result("geo", rows, by="country"))
    (choro,) = fig.data
    assert choro.type == "choropleth" and choro.locationmode == "ISO-3"
    assert list(choro.locations) == ["USA", "DEU"] and list(choro.z) == [900, 300]
    assert fig.layout.geo.resolution == 110
    assert fig.layout.annotations[0].text == "not on the map: -- 50 B, ?? 7 B"
    assert needs_world_map(fig)


def test_geo_by_asn_is_bars() -> None:
    fig = figure_for(result("geo", [{"as_name": "WIKIMEDIA", "bytes": 10}], by="asn"))
    assert fig.data[0].type == "bar" and list(fig.data[0].y) == ["WIKIMEDIA"]
    assert not needs_world_map(fig)


@pytest.mark.parametrize("report", sorted(CHARTS))
def test_an_empty_result_says_so(report: str) -> None:
    fig = figure_for(result(report, [], by="country"))
    assert "no data selected" in [a.text for a in fig.layout.annotations]


def test_reports_without_a_chart() -> None:
    assert not has_chart("ttl")
    with pytest.raises(KeyError):
        figure_for(result("ttl", [{"key": "x"}]))


def test_shipped_map_has_a_name_for_every_shape() -> None:
    assert countries()["US"] == ("USA", "United States")
    assert countries()["DE"][0] == "DEU"
    alpha3 = {a3 for a3, _ in countries().values()}
    assert len(map_codes()) > 170 and map_codes() <= alpha3


def test_geo_assets_script_hands_plotly_the_topojson() -> None:
    script = geo_assets_script()
    assert script.startswith("(window.PlotlyGeoAssets = window.PlotlyGeoAssets")
    data = script.split("window.PlotlyGeoAssets.topojson.world_110m = ", 1)[1].rstrip(";\n")
    topo = json.loads(data)
    assert set(topo["objects"]) >= {"countries", "land", "ocean", "coastlines"}
    shipped = Path(__file__).parents[1] / "collector/reports/charts/data/world_110m.json"
    assert topo == json.loads(shipped.read_text(encoding="utf-8"))
