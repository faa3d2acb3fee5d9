"""Every capture in ../shared/pcaps, analysed into a real store, reports what tshark says.

The whole pipeline runs for real: the pcap reader, the vectorised decoder, tshark for the
protocol hierarchy, tshark on flow heads for the app labels, ClickHouse (embedded chdb, and
a real clickhouse-server 18.16 started by a fixture), and the report queries. Each report's JSON rows are compared with the
matching section of ``NAME.truth.json``; a failure names every file and section that
differs, with the reason (see ``truth.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import truth

from netwarden.collector import reports
from netwarden.collector.reports import ConversationsParams, Filters, IoParams, TopParams
from netwarden.collector.reports.apps import AppsParams, apps
from netwarden.collector.reports.protocols import ProtocolsParams
from netwarden.collector.reports.sizes import SizesParams
from netwarden.collector.reports.ttl import TtlParams
from netwarden.collector.store import Store, open_store
from netwarden.sensor.apprules import load_rules
from netwarden.sensor.apps import AppLabeller
from netwarden.sensor.enrich import Enrichers
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings

CAPTURES = truth.captures()
pytestmark = pytest.mark.skipif(not CAPTURES, reason=f"no captures in {truth.PCAPS}")


class Analysed:
    def __init__(self, store: Store, warnings: dict[str, list[str]]) -> None:
        self.store = store
        self.warnings = warnings


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def analysed(request: pytest.FixtureRequest) -> Iterator[Analysed]:
    """All captures analysed into one fresh database, one host per capture file."""
    if request.param == "chdb":
        target = str(request.getfixturevalue("chdb_path"))
    else:
        target = request.getfixturevalue("clickhouse_server")
    store = open_store(target, database=f"nw_truth_{uuid.uuid4().hex[:10]}")
    store.start()
    warnings: dict[str, list[str]] = {}
    settings = PipelineSettings()
    rules = load_rules()
    try:
        for cap in CAPTURES:
            enrichers = Enrichers([AppLabeller(rules)])
            try:
                res = FileAnalyzer(cap.name, settings, enrichers).run(cap, store.write)
            finally:
                enrichers.close()
            warnings[cap.name] = res.warnings
        store.flush()
        yield Analysed(store, warnings)
    finally:
        try:
            store.drop_database()
        finally:
            store.stop()


def _differences(store: Store, cap: Path) -> list[str]:
    t = truth.load_truth(cap)
    f = Filters(hosts=(cap.name,))
    diffs: list[str] = []
    for kind in truth.CONV_KINDS:
        res = reports.conversations(store, ConversationsParams(kind=kind, filters=f))  # type: ignore[arg-type]
        diffs += truth.compare_conversations(kind, t, res.rows)
    tree = reports.protocols(store, ProtocolsParams(filters=f)).rows
    diffs += truth.compare_tree(t["phs"], tree)
    io = reports.io(store, IoParams(filters=f, interval_s=10)).rows
    diffs += truth.compare_rows("io_stat_10.computed_rows", t["io_stat_10"]["computed_rows"],
                                io, ("start", "frames", "bytes"))
    top = TopParams(filters=f, top=10)
    diffs += truth.compare_rows("top_ips", t["top_ips"], reports.talkers(store, top).rows,
                                ("key", "bytes", "frames"))
    diffs += truth.compare_rows("top_ports", t["top_ports"], reports.ports(store, top).rows,
                                ("key", "bytes", "frames"))
    ttl = reports.ttl(store, TtlParams(filters=f)).meta
    diffs += truth.compare_stats("ttl_ipv4", t["ttl_ipv4"], ttl["ttl_ipv4"])
    diffs += truth.compare_stats("hlim_ipv6", t["hlim_ipv6"], ttl["hlim_ipv6"])
    sz = reports.sizes(store, SizesParams(filters=f)).meta["frame_len"]
    diffs += truth.compare_stats("plen.frame_len", t["plen"]["frame_len"], sz)
    frames = sum(r["frames"] for r in io)
    nbytes = sum(r["bytes"] for r in io)
    if (frames, nbytes) != (t["totals"]["frames"], t["totals"]["bytes"]):
        diffs.append(f"totals: {frames} frames/{nbytes} bytes, tshark has "
                     f"{t['totals']['frames']}/{t['totals']['bytes']}")
    return diffs


def test_every_capture_equals_tshark(analysed: Analysed) -> None:
    """All files, all sections: the failure message lists every difference."""
    failures: dict[str, list[str]] = {}
    for cap in CAPTURES:
        d = _differences(analysed.store, cap)
        if d:
            failures[cap.name] = d
    lines = [f"{name}: {x}" for name, ds in failures.items() for x in ds[:8]]
    assert not failures, (f"{len(failures)} of {len(CAPTURES)} captures differ from tshark:\n"
                          + "\n".join(lines))


def test_damaged_files_are_read_up_to_the_damage(analysed: Analysed) -> None:
    """Cut and corrupt files: the frames before the damage are counted (the truth says
    how many tshark read) and a warning names the file and the problem."""
    expected = {
        "dpkt-truncated_dns_2.pcap": "cut short",
        "suricata-verify-http-mime-truncated_input.pcap": "cut short",
        "suricata-verify-bug-1450-04_tls_DER-incomplete-header.pcap": "damaged or corrupt",
    }
    for name, phrase in expected.items():
        if not (truth.PCAPS / name).exists():
            continue
        ws = analysed.warnings[name]
        assert any(phrase in w and name in w for w in ws), (name, ws)


def test_empty_capture_has_no_rows(analysed: Analysed) -> None:
    f = Filters(hosts=("zeek-empty.pcap",))
    assert reports.io(analysed.store, IoParams(filters=f)).rows == []
    assert reports.talkers(analysed.store, TopParams(filters=f)).rows == []


def _rows(res: Any) -> list[dict[str, Any]]:
    return list(res.rows)


def _app_differences(store: Store, cap: Path) -> list[str]:
    """``report apps --by name`` against the truth's ``tls_sni`` (every name, frames of
    the tls and quic rows together) and ``dns_qry_name`` (the top names' frames and the
    number of distinct names)."""
    t = truth.load_truth(cap)
    rows = apps(store, AppsParams(filters=Filters(hosts=(cap.name,)), top=None,
                                  by="name")).rows
    sni: dict[str, int] = {}
    dns: dict[str, int] = {}
    for r in rows:
        into = dns if r["source"] == "dns" else sni
        into[r["name"]] = into.get(r["name"], 0) + int(r["frames"])
    diffs: list[str] = []
    want_sni = {x["name"]: int(x["frames"]) for x in t["tls_sni"]["names"]}
    for name in sorted(set(want_sni) | set(sni)):
        if sni.get(name) != want_sni.get(name):
            diffs.append(f"tls_sni {name!r}: {sni.get(name, 0)} frames, tshark has "
                         f"{want_sni.get(name, 0)}")
    for x in t["dns_qry_name"]["top"]:
        if dns.get(x["name"]) != x["frames"]:
            diffs.append(f"dns_qry_name {x['name']!r}: {dns.get(x['name'], 0)} frames, "
                         f"tshark has {x['frames']}")
    if len(dns) != t["dns_qry_name"]["distinct"]:
        diffs.append(f"dns_qry_name: {len(dns)} distinct names, tshark has "
                     f"{t['dns_qry_name']['distinct']}")
    return diffs


def test_apps_find_every_server_name_tshark_finds(analysed: Analysed) -> None:
    """Every SNI and DNS query name of every capture, with tshark's frame counts."""
    failures = {cap.name: d for cap in CAPTURES if (d := _app_differences(analysed.store, cap))}
    lines = [f"{name}: {x}" for name, ds in failures.items() for x in ds]
    assert not failures, (f"{len(failures)} of {len(CAPTURES)} captures differ from tshark "
                          "in server names:\n" + "\n".join(lines))
