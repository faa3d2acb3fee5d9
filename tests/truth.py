"""Compare netwarden's report JSON with tshark's ground truth (``NAME.truth.json``).

The truth files are made by ``../shared/pcaps/make_truth.py`` with tshark 4.0.17. Each
comparison returns a list of human-readable differences (empty when equal), naming the
section, the row and the reason, so a failing test says exactly what differs.

Where the truth itself is not exact, the truth file says so and the comparison follows:
* a conversation row with ``exact: false`` has byte counts taken from tshark's rounded
  printout: ours must print the same way (tshark's ``format_size``);
* a row with ``times_from_tshark_display`` has tshark's printed times (9 decimals for the
  start, 4 for the duration); when the file also records the exact recomputation
  (``mismatches[].times_differ.computed``) that is what ours must equal, otherwise ours
  must print like tshark's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PCAPS = SHARED / "pcaps"
CAPTURE_SUFFIXES = (".pcap", ".pcapng")

CONV_KINDS = ("ip", "ipv6", "tcp", "udp")


def captures() -> list[Path]:
    if not PCAPS.is_dir():
        return []
    return sorted(p for p in PCAPS.iterdir() if p.suffix in CAPTURE_SUFFIXES
                  and (p.parent / (p.name + ".truth.json")).exists())


def load_truth(capture: Path) -> dict[str, Any]:
    with open(capture.parent / (capture.name + ".truth.json")) as fh:
        return json.load(fh)  # type: ignore[no-any-return]


def origin_ns(truth: dict[str, Any]) -> int | None:
    first = truth["totals"]["first_ts"]
    if not first:
        return None
    sec, _, frac = first.partition(".")
    neg = sec.startswith("-")
    v = abs(int(sec)) * 1_000_000_000 + int((frac + "000000000")[:9])
    return -v if neg else v


def format_size(n: int) -> str:
    """tshark 4.0's rounded byte display (as in make_truth.py)."""
    p = 1000
    for div, unit in ((p**4, "TB"), (p**3, "GB"), (p**2, "MB"), (p, "kB")):
        if n // div >= 10:
            return f"{n // div} {unit}"
    return f"{n} bytes"


def _row_key(r: dict[str, Any]) -> str:
    if "port_a" in r and r.get("port_a") is not None:
        return f"{r['a']}:{r['port_a']} <-> {r['b']}:{r['port_b']}"
    return f"{r['a']} <-> {r['b']}"


def compare_conversations(kind: str, truth: dict[str, Any], rows: list[dict[str, Any]]
                          ) -> list[str]:
    section = truth[f"conv_{kind}"]
    want = section["rows"]
    diffs: list[str] = []
    if len(want) != len(rows):
        diffs.append(f"conv_{kind}: {len(rows)} rows, tshark has {len(want)}")
    computed_times: dict[tuple[Any, ...], tuple[str, str]] = {}
    for m in section.get("mismatches", []):
        if isinstance(m, dict) and "times_differ" in m:
            computed_times[tuple(m["row"])] = tuple(m["times_differ"]["computed"])  # type: ignore[assignment]
    for i, (t, o) in enumerate(zip(want, rows, strict=False)):
        where = f"conv_{kind} row {i} ({_row_key(t)})"
        for f in ("a", "b", "port_a", "port_b", "frames_a_to_b", "frames_b_to_a", "frames"):
            if f in t and t[f] != o.get(f):
                diffs.append(f"{where}: {f} is {o.get(f)!r}, tshark says {t[f]!r}")
                break
        else:
            for f, disp in (("bytes_a_to_b", "a_to_b"), ("bytes_b_to_a", "b_to_a"),
                            ("bytes", "total")):
                if t.get("exact", True):
                    if t[f] != o[f]:
                        diffs.append(f"{where}: {f} is {o[f]}, tshark says {t[f]}")
                elif format_size(o[f]) != t["tshark_bytes_display"][disp]:
                    diffs.append(f"{where}: {f} {o[f]} prints as {format_size(o[f])!r}, "
                                 f"tshark printed {t['tshark_bytes_display'][disp]!r}")
            diffs.extend(_compare_times(where, t, o, computed_times))
    return diffs


def _compare_times(where: str, t: dict[str, Any], o: dict[str, Any],
                   computed: dict[tuple[Any, ...], tuple[str, str]]) -> list[str]:
    if not t.get("times_from_tshark_display"):
        if abs(t["rel_start"] - o["rel_start"]) > 5e-10 or \
                abs(t["duration"] - o["duration"]) > 5e-10:
            return [f"{where}: rel_start/duration {o['rel_start']}/{o['duration']}, "
                    f"tshark says {t['rel_start']}/{t['duration']}"]
        return []
    key = (t["a"], t.get("port_a"), t["b"], t.get("port_b"))
    ours = (f"{o['rel_start']:.9f}", f"{o['duration']:.4f}")
    printed = (f"{t['rel_start']:.9f}", f"{t['duration']:.4f}")
    accepted = {printed}
    if key in computed:  # tshark's printout and the exact recomputation disagree
        accepted.add(tuple(computed[key]))  # type: ignore[arg-type]
    if ours not in accepted:
        return [f"{where}: rel_start/duration print as {ours}, expected one of {accepted}"]
    return []


def compare_tree(truth_tree: list[dict[str, Any]], ours: list[dict[str, Any]],
                 path: str = "") -> list[str]:
    diffs: list[str] = []
    if [n["protocol"] for n in truth_tree] != [n["protocol"] for n in ours]:
        diffs.append(f"phs {path or '(root)'}: children "
                     f"{[n['protocol'] for n in ours]}, tshark has "
                     f"{[n['protocol'] for n in truth_tree]}")
        return diffs
    for t, o in zip(truth_tree, ours, strict=True):
        p = f"{path}:{t['protocol']}" if path else t["protocol"]
        if (t["frames"], t["bytes"]) != (o["frames"], o["bytes"]):
            diffs.append(f"phs {p}: frames/bytes {o['frames']}/{o['bytes']}, "
                         f"tshark has {t['frames']}/{t['bytes']}")
        diffs.extend(compare_tree(t["children"], o["children"], p))
    return diffs


def compare_rows(section: str, want: list[dict[str, Any]], got: list[dict[str, Any]],
                 fields: tuple[str, ...]) -> list[str]:
    diffs = []
    if len(want) != len(got):
        diffs.append(f"{section}: {len(got)} rows, tshark has {len(want)}")
    for i, (t, o) in enumerate(zip(want, got, strict=False)):
        tv = tuple(t[f] for f in fields)
        ov = tuple(o.get(f) for f in fields)
        if tv != ov:
            diffs.append(f"{section} row {i}: {dict(zip(fields, ov, strict=True))}, "
                         f"tshark has {dict(zip(fields, tv, strict=True))}")
            if len(diffs) > 5:
                break
    return diffs


def compare_stats(section: str, want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """count/min/max exactly; mean and variance to 1e-9 relative (the truth files compute
    them in floating point, ours come from exact integer sums)."""
    diffs = []
    for f in ("count", "min", "max"):
        if want.get(f) != got.get(f):
            diffs.append(f"{section}: {f} is {got.get(f)!r}, tshark says {want.get(f)!r}")
    for f in ("mean", "variance"):
        w, g = want.get(f), got.get(f)
        if (w is None) != (g is None) or (w is not None and g is not None
                                          and abs(w - g) > 1e-9 * max(1.0, abs(w))):
            diffs.append(f"{section}: {f} is {g!r}, tshark says {w!r}")
    if "histogram" in want and want["histogram"] != got.get("histogram"):
        diffs.append(f"{section}: histogram {got.get('histogram')}, tshark has "
                     f"{want['histogram']}")
    return diffs


def iter_sections() -> Iterator[str]:
    yield from (f"conv_{k}" for k in CONV_KINDS)
    yield from ("phs", "io_stat_10", "top_ips", "top_ports", "totals")
