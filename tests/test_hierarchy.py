"""Protocol hierarchy per time slice, against the real tshark and the shared captures."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netwarden.errors import InputError, RuntimeFailure
from netwarden.sensor.hierarchy import (
    ORDER_SLICE_SHIFT,
    ChainRow,
    HierarchyResult,
    HierarchyRun,
    as_printed,
    chain_columns,
    phs_chain_rows,
    run_hierarchy,
    slices_for,
    start_hierarchy,
    tree_from_chains,
)
from netwarden.sensor.records import CHAIN_COLUMNS, nrows

PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
S = 1_000_000_000

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
needs_pcaps = pytest.mark.skipif(not PCAPS.is_dir(), reason=f"{PCAPS} missing")


def captures() -> list[Path]:
    return sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def truth_phs(path: Path) -> list[dict[str, Any]]:
    phs: list[dict[str, Any]] = json.loads(path.with_name(path.name + ".truth.json").read_text())[
        "phs"
    ]
    return phs


def first_difference(want: list[dict[str, Any]], got: list[dict[str, Any]], at: str = "") -> str:
    """Where two trees first differ ("" when equal)."""
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else None
        g = got[i] if i < len(got) else None
        if w is None or g is None:
            return f"{at or 'top'} child #{i}: want {_brief(w)}, got {_brief(g)}"
        here = f"{at}:{w['protocol']}" if at else w["protocol"]
        if (w["protocol"], w["frames"], w["bytes"]) != (g["protocol"], g["frames"], g["bytes"]):
            return f"{at or 'top'} child #{i}: want {_brief(w)}, got {_brief(g)}"
        sub = first_difference(w["children"], g["children"], here)
        if sub:
            return sub
    return ""


def _brief(n: dict[str, Any] | None) -> str:
    return "nothing" if n is None else f"{n['protocol']} frames:{n['frames']} bytes:{n['bytes']}"


def frame_times(path: Path) -> list[int]:
    """frame.time_relative of every frame, exact ns (test-only second tshark pass)."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_relative"],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        check=False,
    ).stdout
    times = []
    for s in out.split():
        neg = s.startswith("-")
        whole, _, frac = s.lstrip("-").partition(".")
        v = int(whole) * S + int((frac + "000000000")[:9])
        times.append(-v if neg else v)
    return times


def interval_starts(times: Sequence[int], interval_ns: int) -> list[int]:
    """Starts of the non-empty intervals; negative times go to the first interval."""
    return sorted({max(t, 0) // interval_ns * interval_ns for t in times})


# ---------------------------------------------------------------------------------------
# slices_for


def test_slices_cover_every_time_exactly_once() -> None:
    starts = [0, 10 * S, 20 * S, 3600 * S, 3610 * S]  # gap of empty intervals in between
    slices = slices_for(starts, max_taps=3)
    assert [(s.index, s.start_ns, s.end_ns) for s in slices] == [
        (0, 0, 10 * S),
        (1, 10 * S, 3600 * S),  # extends over the empty intervals up to the next slice
        (2, 3600 * S, None),
    ]
    assert [s.interval_starts for s in slices] == [(0,), (10 * S, 20 * S), (3600 * S, 3610 * S)]
    probes = [-5 * S, -1, 0, 10 * S - 1, 10 * S, 1000 * S, 3600 * S - 1, 3600 * S, 10**20]
    for t in probes:
        assert sum(s.contains(t) for s in slices) == 1, t
    assert slices[0].contains(-5 * S)  # earlier than the first frame: first slice
    assert slices[2].contains(10**20)  # last slice is open-ended


def test_slices_are_capped_and_balanced() -> None:
    starts = [i * 10 * S for i in range(100)]
    slices = slices_for(starts, max_taps=16)
    assert len(slices) == 16
    assert [s.index for s in slices] == list(range(16))
    sizes = [len(s.interval_starts) for s in slices]
    assert sum(sizes) == 100 and max(sizes) - min(sizes) <= 1
    assert [t for s in slices for t in s.interval_starts] == starts
    for a, b in itertools.pairwise(slices):
        assert a.end_ns == b.start_ns == b.interval_starts[0]
    # fewer intervals than taps: one slice per interval, not per elapsed interval
    sparse = slices_for([0, 1800 * S, 3590 * S], max_taps=16)
    assert [s.interval_starts for s in sparse] == [(0,), (1800 * S,), (3590 * S,)]


def test_slice_filters_render_exact_nanoseconds() -> None:
    a, b, c, d = slices_for([0, 20 * S, 20 * S + 1, 1_700_000_000 * S + 123_456_789])
    assert a.display_filter == "frame.time_relative < 20.000000000"
    assert b.display_filter == (
        "frame.time_relative >= 20.000000000 && frame.time_relative < 20.000000001"
    )
    assert c.display_filter == (
        "frame.time_relative >= 20.000000001 && frame.time_relative < 1700000000.123456789"
    )
    assert d.display_filter == "frame.time_relative >= 1700000000.123456789"
    assert slices_for([0, 999])[1].display_filter == "frame.time_relative >= 0.000000999"


def test_single_or_no_interval_is_one_unbounded_slice() -> None:
    for starts in ([0], [], [0, 10 * S]):
        slices = slices_for(starts, max_taps=1 if starts else 16)
        assert len(slices) == 1
        assert slices[0].display_filter == ""
        assert slices[0].contains(-S) and slices[0].contains(10**15)


@pytest.mark.parametrize(
    ("starts", "max_taps", "message"),
    [
        ([5, 10], 16, "must start at 0"),
        ([0, 20, 10], 16, "strictly increasing"),
        ([0, 10, 10], 16, "strictly increasing"),
        ([0, 10], 0, "max_taps"),
    ],
)
def test_slices_for_rejects_bad_input(starts: list[int], max_taps: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slices_for(starts, max_taps)


def test_slices_for_accepts_numpy_ints() -> None:
    slices = slices_for(np.array([0, 10 * S, 30 * S], dtype=np.int64), 2)
    assert [(s.start_ns, s.end_ns) for s in slices] == [(0, 10 * S), (10 * S, None)]
    assert type(slices[1].start_ns) is int


# ---------------------------------------------------------------------------------------
# tree_from_chains and the io,phs parser (pure logic)


def test_tree_from_chains_sums_and_orders_by_first_seen() -> None:
    base = ORDER_SLICE_SHIFT
    rows = [
        # slice 1 saw arp first, then ip:udp
        ("eth:arp", 2, 120, base + 1),
        ("eth:ip:udp:dns", 3, 300, base + 3),
        # slice 0 saw ip:tcp, then ip:udp
        ("eth:ip:tcp", 4, 400, 2),
        ("eth:ip:udp:dns", 1, 100, 4),
        ("eth:ip", 1, 60, 1),  # a frame whose chain ends at ip
    ]
    tree = tree_from_chains(rows)
    assert tree == [
        {
            "protocol": "eth",
            "frames": 11,
            "bytes": 980,
            "children": [
                {
                    "protocol": "ip",
                    "frames": 9,
                    "bytes": 860,
                    "children": [
                        {"protocol": "tcp", "frames": 4, "bytes": 400, "children": []},
                        {
                            "protocol": "udp",
                            "frames": 4,
                            "bytes": 400,
                            "children": [
                                {"protocol": "dns", "frames": 4, "bytes": 400, "children": []}
                            ],
                        },
                    ],
                },
                # arp is first in slice 1 but slice 0 (ip) was seen earlier
                {"protocol": "arp", "frames": 2, "bytes": 120, "children": []},
            ],
        }
    ]
    # slice 1 alone: arp comes first
    only1 = tree_from_chains([r for r in rows if r[3] >= base])
    assert [n["protocol"] for n in only1[0]["children"]] == ["arp", "ip"]


def test_tree_from_chains_takes_store_rows() -> None:
    # what `report protocols` reads: path, sum(frames), sum(bytes), min(order), numpy typed
    rows = [
        ("sll:ipv6:udp", np.uint64(5), np.uint64(500), np.uint64(7)),
        ("sll:ip:tcp", np.uint64(1), np.uint64(60), np.uint64(3)),
    ]
    tree = tree_from_chains(rows)
    assert [n["protocol"] for n in tree[0]["children"]] == ["ip", "ipv6"]
    assert tree[0]["frames"] == 6 and type(tree[0]["frames"]) is int
    assert tree_from_chains([]) == []
    with pytest.raises(ValueError, match="empty path"):
        tree_from_chains([("", 1, 1, 0)])


def test_chain_rows_round_trip_a_printed_section() -> None:
    body = """
eth                                      frames:10 bytes:1000
  ip                                     frames:8 bytes:900
    tcp                                  frames:6 bytes:700
      tcp.segments                       frames:1 bytes:300
        http                             frames:1 bytes:300
      http                               frames:2 bytes:200
    udp                                  frames:2 bytes:200
  arp                                    frames:2 bytes:100
""".splitlines()
    rows = phs_chain_rows(body, base=5)
    assert all(isinstance(r, ChainRow) for r in rows)
    assert {r.path: (r.frames, r.bytes, r.order) for r in rows} == {
        "eth:ip:tcp": (3, 200, 7),
        "eth:ip:tcp:tcp.segments:http": (1, 300, 9),
        "eth:ip:tcp:http": (2, 200, 10),
        "eth:ip:udp": (2, 200, 11),
        "eth:arp": (2, 100, 12),
    }  # eth and ip have no frames of their own: no row
    tree = tree_from_chains(rows)
    assert tree[0]["frames"] == 10 and tree[0]["children"][0]["frames"] == 8
    assert [n["protocol"] for n in tree[0]["children"][0]["children"][0]["children"]] == [
        "tcp.segments",
        "http",
    ]


def _deep_section(depth: int) -> tuple[list[str], list[dict[str, Any]]]:
    """A chain x0:x1:...:x{depth-1} plus a sibling 'y' of the deepest node, as tshark prints it.

    The deepest node (1 frame, 50 bytes) cannot hold y (1 frame, 150 bytes): the counts
    say y is its sibling.
    """
    counts = [(2, 200)] * (depth - 1) + [(1, 50)]
    lines = []
    for d, (f, b) in enumerate(counts):
        name = f"x{d}" if d <= 16 else f"...x{d}"
        lines.append(f"{'  ' * min(d, 16) + name:<40} frames:{f} bytes:{b}")
    leaf = "  " * min(depth - 1, 16) + ("...y" if depth - 1 > 16 else "y")
    lines.append(f"{leaf:<40} frames:1 bytes:150")
    tree: list[dict[str, Any]] = []
    level = tree
    for d, (f, b) in enumerate(counts):
        node: dict[str, Any] = {"protocol": f"x{d}", "frames": f, "bytes": b, "children": []}
        level.append(node)
        if d < depth - 1:
            level = node["children"]
    level.append({"protocol": "y", "frames": 1, "bytes": 150, "children": []})
    return lines, tree


def test_truncated_indentation_is_resolved() -> None:
    # tshark prints nodes deeper than 16 levels as 32 spaces + '...' + name
    lines, want = _deep_section(20)
    assert lines[17].startswith(" " * 32 + "...x17 ")
    assert lines[-1].startswith(" " * 32 + "...y ")
    got = tree_from_chains(phs_chain_rows(lines))
    assert got == want
    # and as_printed() gives back the shape a line-by-line reading of tshark's text has
    printed = as_printed(got)
    level = printed
    for _ in range(16):
        level = level[0]["children"]
    assert [n["protocol"] for n in level] == ["x16", "...x17", "...x18", "...x19", "...y"]
    assert all(n["children"] == [] for n in level)
    shallow_lines, shallow = _deep_section(10)
    assert as_printed(tree_from_chains(phs_chain_rows(shallow_lines))) == shallow


def test_truncated_indentation_prefers_the_parent_the_counts_allow() -> None:
    lines = [f"{'  ' * d + f'p{d}':<40} frames:3 bytes:400" for d in range(17)]
    lines += [
        f"{' ' * 32 + '...a':<40} frames:2 bytes:200",  # child of p16 (nothing else possible)
        f"{' ' * 32 + '...b':<40} frames:1 bytes:100",  # fits under a: child of a
        f"{' ' * 32 + '...c':<40} frames:1 bytes:150",  # fits neither b nor a: under p16
    ]
    tree = tree_from_chains(phs_chain_rows(lines))
    node = tree[0]
    for _ in range(16):
        node = node["children"][0]
    assert node["protocol"] == "p16"
    assert [n["protocol"] for n in node["children"]] == ["a", "c"]
    assert node["children"][0]["children"][0]["protocol"] == "b"


# ---------------------------------------------------------------------------------------
# against tshark


@needs_tshark
@needs_pcaps
def test_every_capture_matches_truth_with_one_slice() -> None:
    files = captures()
    assert len(files) >= 40
    results: dict[Path, HierarchyResult | Exception] = {}
    pending = list(files)
    running: list[tuple[Path, HierarchyRun]] = []
    while pending or running:
        while pending and len(running) < 2:  # two tshark runs at a time (two cores)
            p = pending.pop(0)
            running.append((p, start_hierarchy(p, slices_for([0]))))
        p, run = running.pop(0)
        try:
            results[p] = run.result()
        except Exception as e:
            results[p] = e
    problems = []
    for p in files:
        r = results[p]
        if isinstance(r, Exception):
            problems.append(f"{p.name}: {r}")
            continue
        want = truth_phs(p)
        got = tree_from_chains(r.rows())
        if got != want:
            problems.append(f"{p.name}: {first_difference(want, got)}")
        elif r.frames != sum(n["frames"] for n in want):
            problems.append(f"{p.name}: frames counted {r.frames}")
    assert not problems, "\n".join(problems)


# (file, interval lengths in ns); the finer intervals give short captures several slices
SLICED = [
    ("zeek-ticks-dns-1hr.pcap", [10 * S]),
    ("zeek-echo-connections.pcap", [10 * S, S // 10]),
    ("pcapplusplus-example.pcap", [10 * S, S]),
    ("chrissanders-http_espn.pcapng", [10 * S, S // 10]),
    ("zeek-dns-edns-ecs.pcap", [10 * S]),  # timestamps years apart
    ("tcpdump-timestamp_invalid_nano.pcap", [10 * S, 1]),
    ("pcapplusplus-tls2.pcap", [S]),  # timestamps out of order
    # 16 levels deep: in a filtered run tshark prints the deepest level as '...http2'
    ("suricata-verify-dns-over-http2-limit_input.pcap", [20_000]),
]


@needs_tshark
@needs_pcaps
@pytest.mark.parametrize(("name", "intervals"), SLICED, ids=[n for n, _ in SLICED])
def test_sliced_run_adds_up_to_truth(name: str, intervals: list[int]) -> None:
    path = PCAPS / name
    want = truth_phs(path)
    times = frame_times(path)
    counts = []
    for interval in intervals:
        slices = slices_for(interval_starts(times, interval), max_taps=16)
        counts.append(len(slices))
        r = run_hierarchy(path, slices)
        got = tree_from_chains(r.rows())
        assert got == want, f"{name} ({interval} ns): {first_difference(want, got)}"
        per_slice = [sum(1 for t in times if s.slice.contains(t)) for s in r.slices]
        assert [s.frames for s in r.slices] == per_slice
        assert [s.slice for s in r.slices] == slices
        assert r.returncode == 0 and r.warning is None
        for s in r.slices:  # order keys stay inside their slice's range
            assert all(row.order // ORDER_SLICE_SHIFT == s.slice.index for row in s.rows)
    assert counts[-1] > 1, f"{name}: no run with several slices ({counts})"


@needs_tshark
@needs_pcaps
def test_slice_boundaries_are_exact_to_the_nanosecond() -> None:
    # frames at relative 0, 0.127521774 and 0.127609669 s
    path = PCAPS / "tcpdump-tcp-handshake-nano.pcap"
    r = run_hierarchy(path, slices_for([0, 127_521_774, 127_609_669]))
    assert [s.frames for s in r.slices] == [1, 1, 1]
    r = run_hierarchy(path, slices_for([0, 127_521_775, 127_609_670]))
    assert [s.frames for s in r.slices] == [2, 1, 0]  # an empty slice gives no rows
    assert r.slices[2].rows == ()
    assert tree_from_chains(r.rows()) == truth_phs(path)


@needs_tshark
@needs_pcaps
@pytest.mark.parametrize(
    "name", ["suricata-verify-http-mime-truncated_input.pcap", "dpkt-truncated_dns_2.pcap"]
)
def test_cut_file_gives_rows_and_a_warning(name: str) -> None:
    path = PCAPS / name
    r = run_hierarchy(path, slices_for([0]))
    assert r.returncode == 2
    assert r.warning is not None and "cut short" in r.warning and name in r.warning
    assert "Running as user" not in r.stderr
    assert r.rows() and r.frames > 0
    assert tree_from_chains(r.rows()) == truth_phs(path)


@needs_tshark
@needs_pcaps
def test_non_capture_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"SOURCES\.md.*isn't a capture file") as e:
        run_hierarchy(PCAPS / "SOURCES.md", slices_for([0]))
    assert len(e.value.lines()) == 1
    with pytest.raises(InputError, match="no such capture file"):
        run_hierarchy(tmp_path / "nope.pcap", slices_for([0]))


@needs_pcaps
def test_missing_tshark_is_named() -> None:
    with pytest.raises(RuntimeFailure, match="tshark not found: '/nonexistent/tshark-4'"):
        run_hierarchy(PCAPS / "zeek-5-pings.pcap", slices_for([0]), tshark="/nonexistent/tshark-4")


@needs_tshark
@needs_pcaps
def test_runs_in_the_background_and_ignores_user_preferences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefs = tmp_path / "wireshark"
    prefs.mkdir()
    (prefs / "disabled_protos").write_text("http\ndns\n")  # would change the tree
    monkeypatch.setenv("WIRESHARK_CONFIG_DIR", str(prefs))
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    path = PCAPS / "zeek-wikipedia.pcap"
    with start_hierarchy(path, slices_for([0, 5 * S, 9 * S])) as run:
        assert not run.done()  # returned while tshark is still dissecting
        workdir = Path(run._workdir)
        assert workdir.is_dir()
        r = run.result()
    assert not workdir.exists()  # private config dir and output removed
    assert run.result() is r
    assert tree_from_chains(r.rows()) == truth_phs(path)
    assert r.frames == 136


@needs_tshark
@needs_pcaps
def test_chain_columns_match_the_store_contract() -> None:
    path = PCAPS / "zeek-ticks-dns-1hr.pcap"
    times = frame_times(path)
    r = run_hierarchy(path, slices_for(interval_starts(times, 600 * S), max_taps=16))
    base = 1_300_000_000 * S
    cols = chain_columns(r, base)
    assert list(cols) == list(CHAIN_COLUMNS)
    assert all(cols[k].dtype == np.dtype(v) for k, v in CHAIN_COLUMNS.items())
    assert nrows(cols) == len(r.rows())
    assert set(cols["start_ns"].tolist()) == {base + s.slice.start_ns for s in r.slices if s.rows}
    rows = list(zip(cols["path"], cols["frames"], cols["bytes"], cols["order"], strict=True))
    assert tree_from_chains(rows) == truth_phs(path)
