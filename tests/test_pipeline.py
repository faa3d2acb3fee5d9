"""FileAnalyzer end to end on hand-built captures (the hierarchy pass is off: it has its
own tests): intervals, frame numbering across files, batching, directions, statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.packets import (
    ACK,
    ET_ARP,
    ET_IPV6,
    SYN,
    TCP,
    UDP,
    Frame,
    cut,
    ethernet,
    flow_conversations,
    ipv4,
    ipv6,
    mapped,
    needs_tshark,
    pcap_bytes,
    tcp,
    tshark_conversations,
    udp,
    write_pcap,
)

from netwarden.sensor.pipeline import FileAnalyzer, FileResult, PipelineSettings, address_pairs
from netwarden.sensor.records import (
    FLOW_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    Columns,
    Direction,
    FlowBatch,
    concat,
)

S = 1_000_000_000
T0 = 1_700_000_003 * S + 500_000_000  # off the 10 s grid on purpose
HOST4, HOST6 = "192.0.2.10", "2001:db8::10"
PEER4, PEER6 = "198.51.100.7", "2001:db8::99"


def _udp(src: str, dst: str, sport: int = 5000, dport: int = 53, size: int = 10) -> bytes:
    if ":" in src:
        return ethernet(ipv6(src, dst, UDP, udp(sport, dport, b"u" * size)), ET_IPV6)
    return ethernet(ipv4(src, dst, UDP, udp(sport, dport, b"u" * size)))


def _run(path: Path, analyzer: FileAnalyzer | None = None, **settings: Any
         ) -> tuple[list[FlowBatch], FileResult]:
    a = analyzer or FileAnalyzer("h1", PipelineSettings(hierarchy=False, **settings))
    got: list[FlowBatch] = []
    res: FileResult = a.run(path, got.append)
    return got, res


def _flows(batches: list[FlowBatch]) -> Columns:
    return concat(FLOW_COLUMNS, [b.flows for b in batches])


def _sizes(batches: list[FlowBatch]) -> Columns:
    return concat(SIZE_COLUMNS, [b.sizes for b in batches])


def _per_interval(table: Columns, col: str = "packets", where: np.ndarray | None = None
                  ) -> dict[int, int]:
    out: dict[int, int] = {}
    sel = np.ones(len(table[col]), bool) if where is None else where
    for s, v in zip(table["start_ns"][sel].tolist(), table[col][sel].tolist(), strict=True):
        out[s - T0] = out.get(s - T0, 0) + v
    return out


def test_intervals_are_aligned_to_the_first_frame(tmp_path: Path) -> None:
    offsets = [0, 9 * S + 999_999_999, 10 * S, 25 * S, -3 * S, 61 * S]
    recs = [Frame(_udp(PEER4, HOST4, size=i), T0 + off) for i, off in enumerate(offsets)]
    path = write_pcap(tmp_path / "iv.pcap", recs, nanos=True)
    batches, res = _run(path)
    (last,) = [b for b in batches if len(b.stats["packets"])]
    # a frame timestamped before the first one falls in interval 0, as in tshark
    assert _per_interval(last.stats) == {0: 3, 10 * S: 1, 20 * S: 1, 60 * S: 1}
    flows = _flows(batches)
    layer0 = flows["layer"] == 0
    assert _per_interval(flows, where=layer0) == {0: 3, 10 * S: 1, 20 * S: 1, 60 * S: 1}
    first = flows["start_ns"] == T0
    assert flows["first_seen"][first].min() == T0 - 3 * S
    assert flows["last_seen"][first].max() == T0 + 9 * S + 999_999_999
    assert _per_interval(_sizes(batches)) == {0: 3, 10 * S: 1, 20 * S: 1, 60 * S: 1}
    assert res.packets == 6


def test_interval_length_is_a_setting(tmp_path: Path) -> None:
    recs = [Frame(_udp(PEER4, HOST4), T0 + k * 30 * S) for k in range(5)]
    path = write_pcap(tmp_path / "iv60.pcap", recs)
    batches, _ = _run(path, interval_s=60)
    stats = batches[-1].stats
    assert _per_interval(stats) == {0: 2, 60 * S: 2, 120 * S: 1}
    assert all(b.interval_s == 60 and b.host == "h1" for b in batches)


def test_statistics_per_interval(tmp_path: Path) -> None:
    big = _udp(PEER4, HOST4, size=1000)
    recs = [Frame(_udp(PEER4, HOST4), T0), cut(big, 100, T0 + S), Frame(big, T0 + 11 * S)]
    path = write_pcap(tmp_path / "stats.pcap", recs)
    batches, res = _run(path)
    st = batches[-1].stats
    assert list(st) == list(STAT_COLUMNS)
    assert _per_interval(st) == {0: 2, 10 * S: 1}
    # bytes are frame lengths on the wire, also for snaplen-cut frames
    assert _per_interval(st, "bytes") == {0: len(recs[0].data) + len(big), 10 * S: len(big)}
    assert st["dropped"].tolist() == [0, 0]
    assert st["not_dissected"].tolist() == st["packets"].tolist()  # hierarchy pass is off
    assert st["source"].tolist() == ["stats.pcap"] * 2
    assert res.bytes == len(recs[0].data) + 2 * len(big)


def _connection(client_port: int, t: int, server: str = PEER4) -> list[Frame]:
    return [Frame(ethernet(ipv4(HOST4, server, TCP, tcp(client_port, 80, flags=SYN, seq=1))), t),
            Frame(ethernet(ipv4(server, HOST4, TCP, tcp(80, client_port, flags=SYN | ACK,
                                                         seq=7, ack=2))), t + 1000),
            Frame(ethernet(ipv4(HOST4, server, TCP, tcp(client_port, 80, flags=ACK, seq=2,
                                                         ack=8))), t + 2000)]


def test_frames_are_numbered_across_files_of_one_analyzer(tmp_path: Path) -> None:
    one = write_pcap(tmp_path / "one.pcap", _connection(1000, T0))
    two = write_pcap(tmp_path / "two.pcap", _connection(1000, T0 + 100 * S))
    analyzer = FileAnalyzer("h1", PipelineSettings(hierarchy=False))
    first, _ = _run(one, analyzer)
    second, _ = _run(two, analyzer)
    f1, f2 = _flows(first), _flows(second)
    assert sorted(f1["first_frame"].tolist()) == [1, 2]
    assert sorted(f2["first_frame"].tolist()) == [4, 5]
    # the same 4-tuple in the second file is another stream, named by its frame number
    assert set(f1["stream"].tolist()) == {1} and set(f2["stream"].tolist()) == {4}
    fresh, _ = _run(two)
    assert sorted(_flows(fresh)["first_frame"].tolist()) == [1, 2]


def test_a_damaged_file_reports_its_warning_and_counts_what_was_read(tmp_path: Path) -> None:
    raw = pcap_bytes(_connection(1000, T0))
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[:-7])
    analyzer = FileAnalyzer("h1", PipelineSettings(hierarchy=False))
    batches, res = _run(path, analyzer)
    assert res.packets == 2 and len(res.warnings) == 1
    assert "cut.pcap" in res.warnings[0]
    assert int(_flows(batches)["packets"].sum()) == 2
    # the next file continues after the frames actually read
    nxt, _ = _run(write_pcap(tmp_path / "next.pcap", _connection(2000, T0)), analyzer)
    assert int(_flows(nxt)["first_frame"].min()) == 3


def test_an_empty_capture_emits_nothing(tmp_path: Path) -> None:
    batches, res = _run(write_pcap(tmp_path / "empty.pcap", []))
    assert batches == []
    assert (res.packets, res.bytes, res.records, res.warnings) == (0, 0, 0, [])


def _busy(n_intervals: int = 40) -> list[Frame]:
    """Per 10 s interval: a new TCP connection, UDP both ways, an ARP and an IPv6 frame."""
    recs: list[Frame] = []
    for k in range(n_intervals):
        t = T0 + k * 10 * S
        recs += _connection(20000 + k, t)
        recs += [Frame(_udp(HOST4, PEER4, 5000, 53), t + 5000),
                 Frame(_udp(PEER4, HOST4, 53, 5000, size=80), t + 6000),
                 Frame(ethernet(b"\0" * 28, ET_ARP), t + 7000),
                 Frame(_udp(HOST6, PEER6, 6000 + k % 3, 123), t + 8000)]
    return recs


def _rows(flows: Columns) -> list[tuple[object, ...]]:
    return sorted(tuple(v.tolist() if hasattr(v, "tolist") else v for v in
                        (flows[c][i] for c in FLOW_COLUMNS)) for i in range(len(flows["packets"])))


def test_records_are_emitted_in_batches_and_sum_to_the_totals(tmp_path: Path) -> None:
    recs = _busy()
    path = write_pcap(tmp_path / "busy.pcap", recs)
    progress: list[tuple[int, int]] = []
    small = FileAnalyzer("h1", PipelineSettings(hierarchy=False, batch_packets=4))
    batches: list[FlowBatch] = []
    res = small.run(path, batches.append, lambda done, total: progress.append((done, total)))
    with_flows = [b for b in batches if len(b.flows["packets"])]
    assert len(with_flows) > 3  # records left before the end of the file
    # only the last batch carries the statistics and the sizes
    assert [len(b.stats["packets"]) > 0 for b in batches] == [False] * (len(batches) - 1) + [True]
    flows = _flows(batches)
    assert res.records == len(flows["packets"])
    layer0 = flows["layer"] == 0
    assert int(flows["packets"][layer0].sum()) == len(recs)
    assert int(flows["bytes"][layer0].sum()) == sum(len(r.data) for r in recs)
    # an interval is emitted once, complete: the same records as in one batch
    whole, _ = _run(path)
    assert _rows(flows) == _rows(_flows(whole))
    sizes = concat(SIZE_COLUMNS, [b.sizes for b in batches])
    assert int(sizes["packets"].sum()) == len(recs)
    assert progress[-1] == (len(recs), len(recs)) and len(progress) == -(-len(recs) // 4)


def _sums(flows: Columns) -> dict[tuple[int, ...], tuple[int, int, int, int]]:
    keys = ("start_ns", "src_port", "dst_port", "ip_proto", "layer", "tap", "stream")
    out: dict[tuple[int, ...], tuple[int, int, int, int]] = {}
    for i in range(len(flows["packets"])):
        k = tuple(int(flows[c][i]) for c in keys)
        p, b, lo, hi = out.get(k, (0, 0, 2**63, -(2**63)))
        out[k] = (p + int(flows["packets"][i]), b + int(flows["bytes"][i]),
                  min(lo, int(flows["first_seen"][i])), max(hi, int(flows["last_seen"][i])))
    return out


def test_a_late_frame_after_its_interval_was_emitted_still_counts(tmp_path: Path) -> None:
    recs = _busy(20)
    late = Frame(_udp(HOST4, PEER4, 5000, 53), T0 + 2 * S)  # back in interval 0
    path = write_pcap(tmp_path / "late.pcap", [*recs, late])
    small, res = _run(path, batch_packets=4)
    whole, _ = _run(path)
    flows = _flows(small)
    # interval 0 was emitted long before the late frame: its record comes in two parts
    assert len(flows["packets"]) > len(_flows(whole)["packets"])
    assert _sums(flows) == _sums(_flows(whole))
    assert res.packets == len(recs) + 1


@needs_tshark
def test_batched_conversations_equal_tsharks(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "busy.pcap", _busy(12))
    batches, _ = _run(path, batch_packets=5)
    flows = _flows(batches)
    for kind in ("tcp", "udp", "ipv6"):
        assert flow_conversations(flows, kind) == tshark_conversations(path, kind), kind


def test_host_addresses_give_directions(tmp_path: Path) -> None:
    recs = [Frame(d, T0 + i) for i, d in enumerate([
        _udp(PEER4, HOST4),  # in
        _udp(HOST4, PEER4),  # out
        _udp(HOST4, HOST4),  # local
        _udp(PEER4, "203.0.113.5"),  # other
        _udp(PEER6, HOST6),  # in, v6
        _udp(HOST6, PEER6),  # out, v6
        ethernet(b"\0" * 28, ET_ARP),  # not IP: other
    ])]
    path = write_pcap(tmp_path / "dir.pcap", recs)
    batches, _ = _run(path, host_addresses=(HOST4, HOST6))
    flows = _flows(batches)
    by_first = {int(f): int(d) for f, d in zip(flows["first_frame"], flows["direction"],
                                               strict=True)}
    assert by_first == {1: Direction.IN, 2: Direction.OUT, 3: Direction.LOCAL,
                        4: Direction.OTHER, 5: Direction.IN, 6: Direction.OUT,
                        7: Direction.OTHER}
    # the size histogram is split by direction too (one frame length here except ARP's)
    sizes = _sizes(batches)
    got: dict[int, int] = {}
    for d, p in zip(sizes["direction"].tolist(), sizes["packets"].tolist(), strict=True):
        got[d] = got.get(d, 0) + p
    assert got == {Direction.IN: 2, Direction.OUT: 2, Direction.LOCAL: 1, Direction.OTHER: 2}
    unknown, _ = _run(path)
    assert set(_flows(unknown)["direction"].tolist()) == {Direction.OTHER}


def test_tunnelled_frames_have_a_record_per_layer_and_count_once(tmp_path: Path) -> None:
    inner = ipv4("10.0.0.1", "10.0.0.2", UDP, udp(1, 2, b"in"))
    frame = ethernet(ipv4(PEER4, HOST4, 4, inner))
    path = write_pcap(tmp_path / "tun.pcap", [Frame(frame, T0), Frame(frame, T0 + 1)])
    batches, _ = _run(path, host_addresses=(HOST4,))
    flows = _flows(batches)
    assert sorted(zip(flows["layer"].tolist(), flows["packets"].tolist(),
                      flows["direction"].tolist(), strict=True)) == [
        (0, 2, Direction.IN), (1, 2, Direction.OTHER)]
    assert int(flows["bytes"].sum()) == 4 * len(frame)
    assert int(_sizes(batches)["packets"].sum()) == 2  # sizes count frames, layer 0


def test_address_pairs_map_ipv4_into_ipv6() -> None:
    assert address_pairs([HOST4, HOST6]) == [mapped(HOST4), mapped(HOST6)]
    assert address_pairs(["::ffff:192.0.2.10"]) == [mapped(HOST4)]
    with pytest.raises(ValueError):
        address_pairs(["not-an-address"])
