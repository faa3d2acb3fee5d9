"""The app labeller: label precedence and name counts (pure logic), then for real: tshark
on a synthetic capture, on real captures, with a slow tshark (live waits), and a sensor
agent replaying a capture into a collector."""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import truth
from fixtures import app_traffic as at
from fixtures.collector import PCAPS, CollectorFactory, wait_for
from fixtures.packets import TSHARK, needs_tshark

from netwarden.errors import ConfigError
from netwarden.sensor.agent import SensorAgent
from netwarden.sensor.apprules import AppRules, RulesFile, load_rules
from netwarden.sensor.apps import AppLabeller, LabelTables
from netwarden.sensor.config import SensorConfig
from netwarden.sensor.enrich import Enrichers
from netwarden.sensor.flowheads import Heads
from netwarden.sensor.headnames import FrameNames, address_key
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings
from netwarden.sensor.records import FLOW_COLUMNS, Direction, FlowBatch, empty
from netwarden.sensor.replay import ReplaySource

S = 1_000_000_000
IN, OUT, OTHER, LOCAL = (int(d) for d in (Direction.IN, Direction.OUT, Direction.OTHER,
                                          Direction.LOCAL))


def rules(tmp_path: Path | None = None) -> AppRules:
    model = RulesFile.model_validate({
        "app": [{"name": "nwvideo", "match": ["*.nwtest.example"]}],
        "ports": {"22": "ssh", "tcp/443": "https", "udp/443": "quic", "53": "dns"}})
    return AppRules(model)


def fake_heads(rows: list[tuple[int, int, int, int]]) -> Heads:
    """Heads of (stream, ip_proto, start_ns, ts_ns) packets (no bytes)."""
    n = len(rows)
    col = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    z = np.zeros(n, np.int64)
    return Heads(np.zeros(0, np.uint8), z, z.astype(np.uint32), z.astype(np.uint32),
                 z.astype(np.uint16), np.array(col[3], np.int64),
                 np.arange(1, n + 1, dtype=np.uint64), np.array(col[2], np.int64),
                 np.array(col[0], np.uint64), np.array(col[1], np.uint8))


def flows(recs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = empty(FLOW_COLUMNS, len(recs))
    for i, r in enumerate(recs):
        for k, v in r.items():
            out[k][i] = address_key(v) if k in ("src_ip", "dst_ip") else v
    return out


def rec(src: str, dst: str, direction: int, *, stream: int = 0, proto: int = 6,
        sport: int = 40000, dport: int = 40001, last: int = 0) -> dict[str, Any]:
    return {"src_ip": src, "dst_ip": dst, "direction": direction, "stream": stream,
            "ip_proto": proto, "src_port": sport, "dst_port": dport, "packets": 1,
            "bytes": 100, "last_seen": last}


def labels(f: dict[str, np.ndarray]) -> list[tuple[str, str, str]]:
    return list(zip(f["app"].tolist(), f["app_name"].tolist(), f["app_source"].tolist(),
                    strict=True))


# ---------------------------------------------------------------------- pure logic


def test_sni_beats_dns_beats_port_and_names_map_through_the_rules() -> None:
    t = LabelTables(rules())
    heads = fake_heads([(7, 6, 0, 10), (9, 17, 0, 11), (0, 17, 0, 12)])
    t.learn(heads, [FrameNames(0, sni=("video.nwtest.example",)),
                    FrameNames(1, sni=("q.other.example",)),
                    FrameNames(2, qnames=("dns.nwtest.example",),
                               answers=((address_key("192.0.2.80"), "dns.nwtest.example"),
                                        (address_key("192.0.2.81"), "www.shop.co.uk")))])
    f = flows([
        rec("10.0.0.1", "192.0.2.80", OUT, stream=7, dport=443),  # SNI wins over DNS
        rec("192.0.2.80", "10.0.0.1", IN, stream=7, sport=443),  # both directions
        rec("10.0.0.1", "192.0.2.99", OUT, stream=9, proto=17, dport=443),  # QUIC SNI
        rec("10.0.0.1", "192.0.2.80", OUT, stream=8, dport=8443),  # remote resolved
        rec("10.0.0.1", "192.0.2.81", OUT, stream=10),  # no rule: registrable domain
        rec("10.0.0.1", "192.0.2.99", OUT, stream=11, dport=22),  # port
        rec("10.0.0.1", "192.0.2.99", OUT, stream=12, sport=443, dport=22),  # lower port
        rec("10.0.0.1", "192.0.2.99", OUT, stream=13),  # nothing
        rec("10.0.0.1", "192.0.2.99", OUT, proto=1, sport=0, dport=0),  # ICMP: nothing
    ])
    t.label(f)
    assert labels(f) == [
        ("nwvideo", "video.nwtest.example", "tls"),
        ("nwvideo", "video.nwtest.example", "tls"),
        ("other.example", "q.other.example", "quic"),
        ("nwvideo", "dns.nwtest.example", "dns"),
        ("shop.co.uk", "www.shop.co.uk", "dns"),
        ("ssh", "", "port"),
        ("ssh", "", "port"),
        ("", "", ""),
        ("", "", ""),
    ]


def test_port_labels_prefer_the_protocol_specific_key() -> None:
    t = LabelTables(AppRules(RulesFile.model_validate(
        {"ports": {"443": "web", "udp/443": "quic", "tcp/9": "discard"}})))
    f = flows([rec("10.0.0.1", "192.0.2.1", OUT, proto=6, dport=443),
               rec("10.0.0.1", "192.0.2.1", OUT, proto=17, dport=443),
               rec("10.0.0.1", "192.0.2.1", OUT, proto=17, sport=9, dport=443),
               rec("10.0.0.1", "192.0.2.1", OUT, proto=6, sport=9, dport=443)])
    t.label(f)
    assert [x[0] for x in labels(f)] == ["web", "quic", "quic", "discard"]


def test_dns_name_of_the_remote_side_by_direction() -> None:
    t = LabelTables(rules())
    t.learn(fake_heads([(0, 17, 0, 0)]), [FrameNames(0, answers=(
        (address_key("192.0.2.1"), "one.example"), (address_key("192.0.2.2"), "two.example"),
        (address_key("2001:db8::"), "six.example")))])
    f = flows([
        rec("192.0.2.1", "192.0.2.2", IN),  # in: the source is remote
        rec("192.0.2.1", "192.0.2.2", OUT),  # out: the destination
        rec("192.0.2.1", "192.0.2.2", OTHER),  # other: destination first
        rec("192.0.2.1", "192.0.2.3", OTHER),  # ...then the source
        rec("192.0.2.1", "192.0.2.3", LOCAL),
        rec("192.0.2.1", "192.0.2.3", OUT),  # out: only the destination counts
        rec("10.0.0.1", "2001:db8::", OUT),  # a key with trailing zero bytes
    ])
    t.label(f)
    assert [x[1] for x in labels(f)] == ["one.example", "two.example", "two.example",
                                         "one.example", "one.example", "", "six.example"]


def test_dns_answers_expire_by_packet_time() -> None:
    t = LabelTables(rules(), dns_ttl_s=60)
    t.learn(fake_heads([(0, 17, 0, 100 * S)]),
            [FrameNames(0, answers=((address_key("192.0.2.1"), "a.example"),))])
    f = flows([rec("10.0.0.1", "192.0.2.1", OUT, last=150 * S),
               rec("10.0.0.1", "192.0.2.1", OUT, last=161 * S)])
    t.label(f)
    assert [x[2] for x in labels(f)] == ["dns", ""]


def test_names_rows_count_frames_per_interval_and_source() -> None:
    t = LabelTables(rules())
    heads = fake_heads([(1, 6, 0, 0), (1, 6, 0, 1), (2, 17, 10 * S, 2), (0, 17, 10 * S, 3)])
    t.learn(heads, [FrameNames(0, sni=("a.example", "a.example")),
                    FrameNames(1, sni=("a.example",)),
                    FrameNames(2, sni=("a.example",)),
                    FrameNames(3, qnames=("a.example", "b.example"))])
    got = t.take_names()
    assert list(zip(got["start_ns"].tolist(), got["source"].tolist(), got["name"].tolist(),
                    got["frames"].tolist(), strict=True)) == [
        (0, "tls", "a.example", 3),
        (10 * S, "dns", "a.example", 1), (10 * S, "dns", "b.example", 1),
        (10 * S, "quic", "a.example", 1)]
    assert got["frames"].dtype == np.uint64
    assert len(t.take_names()["name"]) == 0  # handed out once


def test_a_later_name_labels_later_records_only() -> None:
    t = LabelTables(rules())
    early = flows([rec("10.0.0.1", "192.0.2.5", OUT, stream=4, dport=443)])
    t.label(early)
    t.learn(fake_heads([(4, 6, 0, 0)]), [FrameNames(0, sni=("v.nwtest.example",))])
    late = flows([rec("10.0.0.1", "192.0.2.5", OUT, stream=4, dport=443)])
    t.label(late)
    assert labels(early) == [("https", "", "port")]
    assert labels(late) == [("nwvideo", "v.nwtest.example", "tls")]


def test_bounded_tables_forget_the_oldest() -> None:
    t = LabelTables(rules(), max_streams=2, max_addresses=1)
    t.learn(fake_heads([(s, 6, 0, 0) for s in (1, 2, 3)] + [(0, 17, 0, 0)]),
            [FrameNames(0, sni=("one.example",)), FrameNames(1, sni=("two.example",)),
             FrameNames(2, sni=("three.example",)),
             FrameNames(3, answers=((address_key("192.0.2.1"), "x.example"),
                                    (address_key("192.0.2.2"), "y.example")))])
    f = flows([rec("10.0.0.1", "192.0.2.9", OUT, stream=s) for s in (1, 2, 3)]
              + [rec("10.0.0.1", "192.0.2.1", OUT), rec("10.0.0.1", "192.0.2.2", OUT)])
    t.label(f)
    assert [x[1] for x in labels(f)] == ["", "two.example", "three.example", "",
                                         "y.example"]


# ---------------------------------------------------------------------- with tshark


def analyse(path: Path, labeller: AppLabeller) -> list[FlowBatch]:
    out: list[FlowBatch] = []
    try:
        FileAnalyzer(path.name, PipelineSettings(hierarchy=False),
                     Enrichers([labeller])).run(path, out.append)
    finally:
        labeller.close()
    return out


def name_counts(batches: list[FlowBatch]) -> collections.Counter[tuple[str, str]]:
    c: collections.Counter[tuple[str, str]] = collections.Counter()
    for b in batches:
        for s, n, f in zip(b.names["source"], b.names["name"], b.names["frames"], strict=True):
            c[(str(s), str(n))] += int(f)
    return c


def label_by_port(batches: list[FlowBatch]) -> dict[int, set[tuple[str, str, str]]]:
    """{server port: {(app, app_name, app_source)}} over every record."""
    out: dict[int, set[tuple[str, str, str]]] = collections.defaultdict(set)
    for b in batches:
        f = b.flows
        for i in range(len(f["packets"])):
            port = min(int(f["src_port"][i]), int(f["dst_port"][i]))
            out[port].add((f["app"][i], f["app_name"][i], f["app_source"][i]))
    return dict(out)


@needs_tshark
def test_offline_labels_of_the_synthetic_capture(tmp_path: Path) -> None:
    lab = AppLabeller(rules(), head_packets=8)
    batches = analyse(at.write_capture(tmp_path / "app.pcap"), lab)
    assert name_counts(batches) == {("dns", at.NAME): 2, ("tls", at.NAME): 1}
    assert label_by_port(batches) == {
        53: {("dns", "", "port")},
        443: {("nwvideo", at.NAME, "tls"),  # the SNI stream
              ("https", "", "port")},  # its ClientHello was packet 12: past the head
        8443: {("nwvideo", at.NAME, "dns")},
        22: {("ssh", "", "port")},
        40004: {("", "", "")},
    }
    assert lab.failures == 0 and lab.dissected == lab.heads.kept


@needs_tshark
def test_a_longer_head_finds_the_late_client_hello(tmp_path: Path) -> None:
    lab = AppLabeller(rules(), head_packets=12)
    batches = analyse(at.write_capture(tmp_path / "app.pcap"), lab)
    assert name_counts(batches)[("tls", at.LATE_NAME)] == 1
    assert ("nwvideo", at.LATE_NAME, "tls") in label_by_port(batches)[443]


@needs_tshark
@pytest.mark.parametrize(("capture", "expect"), [
    ("zeek-chromium-115.0.5790.110-google-de-fragmented.pcap",
     {("quic", "www.google.de"): 1}),  # QUIC Initial split over two datagrams
    ("zeek-pppoe-over-qinq.pcap", {("tls", "xp.apple.com"): 1}),
])
def test_real_captures_quic_and_tls(capture: str, expect: dict[tuple[str, str], int]) -> None:
    path = truth.PCAPS / capture
    if not path.exists():
        pytest.skip(f"no {path}")
    batches = analyse(path, AppLabeller(load_rules()))
    assert name_counts(batches) == expect
    (source, name), = expect
    labelled = {(a, n, s) for b in batches
                for a, n, s in zip(b.flows["app"], b.flows["app_name"], b.flows["app_source"],
                                   strict=True) if s == source}
    assert labelled == {(load_rules().app_for_name(name), name, source)}


def slow_tshark(tmp_path: Path, delay_s: float) -> str:
    script = tmp_path / "slow-tshark"
    script.write_text(f"#!/bin/sh\nsleep {delay_s}\nexec {TSHARK} \"$@\"\n")
    script.chmod(0o755)
    return str(script)


@needs_tshark
def test_live_waits_a_bounded_time_and_labels_later_batches(tmp_path: Path) -> None:
    """With tshark slower than max_wait_s, enrich returns in time without the names; the
    next batch gets them (labels and names rows); while two runs wait, heads are dropped."""
    idx_path = at.write_capture(tmp_path / "app.pcap")
    lab = AppLabeller(rules(), max_wait_s=0.3, max_queued=2,
                      tshark=slow_tshark(tmp_path, 1.5))
    from netwarden.sensor.accountant import Accountant, PacketBatch
    from netwarden.sensor.pcapfile import read_index

    idx = read_index(idx_path)
    acc = Accountant("h", align="first", observer=lab.observe)
    try:
        acc.add(PacketBatch(idx.buf, idx.offset, idx.caplen, idx.wirelen, idx.linktype,
                            idx.ts_ns))
        first = acc.flush(None)
        t0 = time.monotonic()
        lab.enrich(first)
        assert time.monotonic() - t0 < 1.2
        assert len(first.names["name"]) == 0
        assert set(first.flows["app_source"].tolist()) <= {"port", ""}
        # same traffic again (new streams, same server): after the dissection finished
        acc.add(PacketBatch(idx.buf, idx.offset, idx.caplen, idx.wirelen, idx.linktype,
                            idx.ts_ns + 20 * S))
        wait_for(lambda: not lab._queue or lab._queue[0][1].done(), 10, "the dissection")
        second = acc.flush(None)
        lab.enrich(second)
        assert name_counts([second]) == {("dns", at.NAME): 2, ("tls", at.NAME): 1}
        srcs = collections.Counter(second.flows["app_source"].tolist())
        assert srcs["dns"] > 0  # the first run's DNS answer labels the 8443 stream
        # two runs in flight (the second batch's heads, and a third): a fourth is dropped
        kept = 0
        for k in (3, 4):
            kept = lab.heads.kept
            acc.add(PacketBatch(idx.buf, idx.offset, idx.caplen, idx.wirelen, idx.linktype,
                                idx.ts_ns + k * 20 * S))
            lab.enrich(acc.flush(None))
        assert lab.dropped == lab.heads.kept - kept > 0
    finally:
        lab.close()


# ---------------------------------------------------------------------- live sensor


def apps_config(host: str, collector: str, **apps: Any) -> SensorConfig:
    return SensorConfig.model_validate({
        "sensor": {"host": host, "interval_s": 1, "flush_delay_s": 0.0},
        "transport": {"collector": collector, "backoff_initial_s": 0.1,
                      "backoff_max_s": 0.3, "stop_timeout_s": 10.0},
        "dissection": {"enabled": False},
        "processes": {"enabled": False},
        "apps": apps,
    })


def test_apps_section_is_strict(tmp_path: Path) -> None:
    from netwarden.config import load_config

    cfg = tmp_path / "sensor.toml"
    cfg.write_text('[apps]\nenabled = true\nhead_packets = 0\nrules = "x"\n'
                   f'rules_file = "{tmp_path / "none.toml"}"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(SensorConfig, cfg)
    lines = exc.value.message.splitlines()
    assert f"{cfg}: apps.rules: unknown key" in lines
    assert any(x.startswith(f"{cfg}: apps.head_packets: ") for x in lines), lines
    assert f"{cfg}: apps.rules_file: no such file: {tmp_path / 'none.toml'}" in lines
    default = SensorConfig().apps
    assert (default.enabled, default.rules_file, default.head_packets) == (True, None, 8)


@needs_tshark
def test_sensor_agent_labels_a_replayed_capture(collector_factory: CollectorFactory,
                                                tmp_path: Path) -> None:
    """A sensor replaying ndpi-netflix.pcap (TLS and DNS) stores the names tshark finds in
    the file, frame for frame, and labels its records."""
    cap = PCAPS / "ndpi-netflix.pcap"
    if not cap.exists():
        pytest.skip(f"no {cap}")
    server = collector_factory("chdb")
    custom = tmp_path / "apps.toml"
    custom.write_text('[[app]]\nname = "nf"\nmatch = ["*.netflix.com"]\n'
                      '[ports]\n80 = "web"\n')
    source = ReplaySource(cap)
    agent = SensorAgent(apps_config("nf", server.address, rules_file=str(custom),
                                    max_wait_s=30.0), source, source_name=cap.name)
    agent.start()
    try:
        wait_for(lambda: source.done, what="the replay")
    finally:
        assert agent.stop()
    store = server.store
    assert store is not None
    got = {(str(s), str(n)): int(f) for s, n, f in store.query(
        "SELECT source, name, sum(frames) FROM app_names WHERE host = 'nf' "
        "GROUP BY source, name")}
    t = truth.load_truth(cap)
    sni = {x["name"]: x["frames"] for x in t["tls_sni"]["names"]}
    assert {n: f for (s, n), f in got.items() if s in ("tls", "quic")} == sni
    dns = {n: f for (s, n), f in got.items() if s == "dns"}
    assert len(dns) == t["dns_qry_name"]["distinct"]
    assert all(dns.get(x["name"]) == x["frames"] for x in t["dns_qry_name"]["top"])
    apps = {(str(a), str(s)): int(b) for a, s, b in store.query(
        "SELECT app, app_source, sum(bytes) FROM flows WHERE host = 'nf' AND layer = 0 "
        "GROUP BY app, app_source")}
    assert apps[("nf", "tls")] > 0 and apps[("nf", "dns")] > 0 and apps[("web", "port")] > 0
    assert os.path.isfile(custom)
