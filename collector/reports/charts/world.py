"""Bytes per country on a world map (the ``geo`` report), drawn offline.

plotly.js draws ``geo`` subplots from a topojson it fetches from its CDN unless
``window.PlotlyGeoAssets.topojson.world_110m`` already holds it. :func:`geo_assets_script`
is that assignment, with the topojson shipped in ``data/world_110m.json`` (see
``data/README.md``); every page or image holding a map (:func:`needs_world_map`) runs it
before plotly draws. Countries are ISO 3166 alpha-2 in the report and alpha-3 in the map
(``data/countries.json``); rows the map cannot place (``--`` private, ``??`` unknown, a
code without a shape) are summed in a note under the map.

``geo --by asn`` has no country per row to colour, so it gets top-N bars of the ASes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..output import human_bytes
from ..result import ReportResult
from .style import empty, layout
from .top import TopBar, first_of

TOPOJSON_NAME = "world_110m"
_GEO_TRACES = frozenset({"choropleth", "scattergeo"})
_AS_BARS = TopBar("Top autonomous systems (bytes)", first_of("as_name", "asn"))


def _data(name: str) -> str:
    return (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")


@functools.cache
def countries() -> dict[str, tuple[str, str]]:
    """``{alpha-2: (alpha-3, name)}`` for every ISO 3166-1 country."""
    table = json.loads(_data("countries.json"))
    return {str(k): (str(v[0]), str(v[1])) for k, v in table.items()}


@functools.cache
def map_codes() -> frozenset[str]:
    """The alpha-3 codes the shipped map has a shape for."""
    topo = json.loads(_data(f"{TOPOJSON_NAME}.json"))
    return frozenset(str(g["id"]) for g in topo["objects"]["countries"]["geometries"]
                     if g.get("id"))


@functools.cache
def geo_assets_script() -> str:
    """JavaScript giving plotly.js the shipped world topojson (run before drawing)."""
    topo = _data(f"{TOPOJSON_NAME}.json").strip().replace("</", "<\\/")
    return ("(window.PlotlyGeoAssets = window.PlotlyGeoAssets || {topojson: {}});\n"
            "window.PlotlyGeoAssets.topojson = window.PlotlyGeoAssets.topojson || {};\n"
            f"window.PlotlyGeoAssets.topojson.{TOPOJSON_NAME} = {topo};\n")


def needs_world_map(fig: Any) -> bool:
    """Whether ``fig`` draws a geo subplot (and so needs :func:`geo_assets_script`)."""
    return any(getattr(trace, "type", None) in _GEO_TRACES for trace in fig.data)


def geo_figure(result: ReportResult) -> go.Figure:
    """Choropleth of bytes per country (or AS bars for ``--by asn``)."""
    if result.meta.get("by", "country") != "country":
        return _AS_BARS(result)
    title = "Bytes per country of the remote addresses"
    table = countries()
    drawn = map_codes()
    per_country: dict[str, int] = {}
    unplaced: dict[str, int] = {}
    for row in result.rows:
        code = str(row.get("country") or "").upper()
        nbytes = int(row.get("bytes") or 0)
        alpha3 = table.get(code, ("", ""))[0]
        if alpha3 in drawn:
            per_country[alpha3] = per_country.get(alpha3, 0) + nbytes
        else:
            label = code or "?"
            unplaced[label] = unplaced.get(label, 0) + nbytes
    if not per_country and not unplaced:
        return empty(title)
    names = {a3: name for a3, name in table.values()}
    codes = sorted(per_country, key=lambda c: -per_country[c])
    fig = go.Figure(go.Choropleth(
        locations=codes, locationmode="ISO-3", z=[per_country[c] for c in codes],
        text=[f"{names.get(c, c)}: {human_bytes(per_country[c])}" for c in codes],
        hovertemplate="%{text}<extra></extra>", colorscale="YlOrRd", zmin=0,
        zmax=max(per_country.values(), default=1),
        marker={"line": {"color": "#666", "width": 0.5}},
        colorbar={"title": {"text": "bytes"}}))
    fig.update_geos(resolution=110, projection_type="natural earth", showframe=False,
                    fitbounds=False, projection_scale=1, lonaxis_range=[-180, 180],
                    lataxis_range=[-60, 85],
                    showcoastlines=True, coastlinecolor="#999", showland=True,
                    landcolor="#eee", showcountries=True, countrycolor="#ccc",
                    showocean=True, oceancolor="#f4f8fb", showlakes=False)
    if unplaced:
        note = ", ".join(f"{k} {human_bytes(v)}" for k, v in
                         sorted(unplaced.items(), key=lambda kv: -kv[1]))
        fig.add_annotation(text=f"not on the map: {note}", showarrow=False, x=0, y=-0.05,
                           xref="paper", yref="paper", xanchor="left")
    return layout(fig, title, height=560)
