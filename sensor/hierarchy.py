"""Protocol hierarchy per time slice, from one tshark run.

tshark's ``-z io,phs`` tree must be reproduced exactly, so tshark itself dissects the
capture. netwarden keeps the tree per interval, which ``io,phs`` cannot do on its own, so
one tshark run carries several ``io,phs`` taps, each with a display filter selecting a time
slice (``frame.time_relative >= A && frame.time_relative < B``). Being a single pass, TCP/IP
reassembly is unaffected and the slice trees add up to the whole-file tree exactly.

Each slice tree is stored as *chain rows*: for every node, the frames and bytes of the
frames whose top-level dissection chain ends exactly at that node (node count minus the sum
of its children), keyed by the full path (``"eth:ip:tcp:http"``). tshark counts a frame
under every protocol of its chain, so the rows of any set of slices rebuild the tree
(:func:`tree_from_chains`). ``order`` reproduces tshark's sibling order (first seen first):
``slice index * 2**24 + pre-order index of the node in that slice's tree``; a node sorts by
the smallest ``order`` among the rows below it. This is exact when timestamps grow with
the frame number; when a later-timestamped frame comes first in the file and brings a
protocol no earlier slice has, siblings from different slices may come out in slice order
instead of file order (counts stay exact).

Usage::

    run = start_hierarchy(path, slices_for(interval_starts))  # tshark runs in the background
    ...                                                       # the numpy pass runs here
    result = run.result()
"""

from __future__ import annotations

import dataclasses
import operator
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NamedTuple

import numpy as np

from netwarden.errors import InputError, RuntimeFailure

from .records import CHAIN_COLUMNS, Columns

ORDER_SLICE_SHIFT: Final = 1 << 24  # nodes per slice tree the order key leaves room for
_NS_PER_S: Final = 1_000_000_000
_HEADER: Final = "Protocol Hierarchy Statistics"
_NODE_RE: Final = re.compile(r"^( *)(\S+)\s+frames:(\d+)\s+bytes:(\d+)\s*$")
_ROOT_LINE: Final = 'Running as user "root"'
_DRAW_DEPTH: Final = 16  # tshark draws at most this many indentation levels


@dataclasses.dataclass(frozen=True)
class Slice:
    """Frames with ``start_ns <= frame.time_relative < end_ns`` (ns relative to the first frame).

    The first slice (``index == 0``) has no lower bound: it also takes frames timestamped
    before the first frame. ``end_ns`` is ``None`` for the last slice (no upper bound).
    ``interval_starts`` are the (non-empty) intervals the slice covers.
    """

    index: int
    start_ns: int
    end_ns: int | None
    interval_starts: tuple[int, ...]

    @property
    def display_filter(self) -> str:
        """tshark display filter selecting the slice; ``""`` for an unbounded slice."""
        parts = []
        if self.index > 0:
            parts.append(f"frame.time_relative >= {_seconds(self.start_ns)}")
        if self.end_ns is not None:
            parts.append(f"frame.time_relative < {_seconds(self.end_ns)}")
        return " && ".join(parts)

    def contains(self, rel_ns: int) -> bool:
        """Whether a frame at ``rel_ns`` (relative to the first frame) falls in this slice."""
        if self.index > 0 and rel_ns < self.start_ns:
            return False
        return self.end_ns is None or rel_ns < self.end_ns


class ChainRow(NamedTuple):
    """Frames whose top-level dissection chain is exactly ``path``."""

    path: str  # "eth:ip:tcp:http", tshark's io,phs names
    frames: int
    bytes: int
    order: int  # sibling sort key, see the module docstring


@dataclasses.dataclass(frozen=True)
class SliceRows:
    """The chain rows of one slice, and the frames/bytes tshark counted in it."""

    slice: Slice
    frames: int
    bytes: int
    rows: tuple[ChainRow, ...]


@dataclasses.dataclass(frozen=True)
class HierarchyResult:
    """Outcome of one tshark run: chain rows per slice, exit status and stderr."""

    path: Path
    slices: tuple[SliceRows, ...]
    returncode: int
    stderr: str  # without tshark's 'Running as user "root"' line

    @property
    def frames(self) -> int:
        """Frames the hierarchy pass counted (all slices)."""
        return sum(s.frames for s in self.slices)

    @property
    def warning(self) -> str | None:
        """tshark's complaint when it read only part of the file (cut/corrupt), else None."""
        if self.returncode == 0 and not self.stderr:
            return None
        text = self.stderr.splitlines()[0] if self.stderr else "no message"
        return f"{self.path}: tshark exited with status {self.returncode}: {text}"

    def rows(self) -> list[ChainRow]:
        """Chain rows of every slice, in slice order."""
        return [r for s in self.slices for r in s.rows]


# ---------------------------------------------------------------------------------------
# slices


def slices_for(interval_starts_rel_ns: Sequence[int], max_taps: int = 16) -> list[Slice]:
    """Group consecutive non-empty intervals into at most ``max_taps`` slices.

    ``interval_starts_rel_ns`` are the starts of the intervals holding frames, in ns
    relative to the first frame, strictly increasing, the first one 0. Slices are
    contiguous: each one ends where the next begins (gaps of empty intervals included),
    the first is open below and the last open above, so every frame is in exactly one.
    No intervals (an empty capture) gives one unbounded slice.
    """
    if max_taps < 1:
        raise ValueError(f"max_taps must be at least 1, got {max_taps}")
    starts = [operator.index(s) for s in interval_starts_rel_ns]
    if not starts:
        return [Slice(0, 0, None, ())]
    if starts[0] != 0:
        raise ValueError(f"interval_starts_rel_ns must start at 0, got {starts[0]}")
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            raise ValueError(
                f"interval_starts_rel_ns must be strictly increasing: "
                f"[{i - 1}]={starts[i - 1]} >= [{i}]={starts[i]}"
            )
    n = len(starts)
    k = min(n, max_taps)
    bounds = [i * n // k for i in range(k + 1)]  # balanced split of n intervals into k groups
    out = []
    for i in range(k):
        lo, hi = bounds[i], bounds[i + 1]
        end = starts[hi] if hi < n else None
        out.append(Slice(i, starts[lo], end, tuple(starts[lo:hi])))
    return out


def _seconds(ns: int) -> str:
    """Exact decimal seconds with 9 fractional digits (display-filter literal)."""
    sign = "-" if ns < 0 else ""
    s, frac = divmod(abs(ns), _NS_PER_S)
    return f"{sign}{s}.{frac:09d}"


# ---------------------------------------------------------------------------------------
# running tshark


def tshark_env(workdir: str) -> dict[str, str]:
    """The environment every tshark run of netwarden gets: a private, empty profile in
    ``workdir`` (the user's preferences never change the output), C locale, UTC."""
    config_dir = os.path.join(workdir, "wireshark")
    os.makedirs(config_dir, exist_ok=True)
    env = dict(os.environ)
    env.update({"WIRESHARK_CONFIG_DIR": config_dir, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
    return env


def tshark_missing(tshark: str) -> RuntimeFailure:
    """The one-line error for a tshark that cannot be found."""
    return RuntimeFailure(f"tshark not found: {tshark!r} (install tshark or give its path)")


class HierarchyRun:
    """A tshark hierarchy run in progress; :meth:`result` waits for it and parses."""

    def __init__(self, path: Path, slices: Sequence[Slice], tshark: str) -> None:
        self.path = path
        self.slices = tuple(slices)
        self.command = _command(tshark, path, self.slices)
        self._workdir = tempfile.mkdtemp(prefix="netwarden-phs-")
        self._result: HierarchyResult | None = None
        env = tshark_env(self._workdir)
        try:
            with (
                open(os.path.join(self._workdir, "stdout"), "wb") as out,
                open(os.path.join(self._workdir, "stderr"), "wb") as err,
            ):
                self._proc: subprocess.Popen[bytes] = subprocess.Popen(
                    self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
                )
        except FileNotFoundError:
            self._cleanup()
            raise tshark_missing(tshark) from None
        except OSError as e:
            self._cleanup()
            raise RuntimeFailure(f"cannot run tshark {tshark!r}: {e.strerror}") from None

    def done(self) -> bool:
        """Whether tshark has exited."""
        return self._proc.poll() is not None

    def result(self, timeout: float | None = None) -> HierarchyResult:
        """Wait for tshark (at most ``timeout`` s, then kill it) and parse its output."""
        if self._result is not None:
            return self._result
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise RuntimeFailure(
                f"{self.path}: tshark protocol hierarchy took longer than {timeout} s"
            ) from None
        try:
            with open(os.path.join(self._workdir, "stdout"), "rb") as f:
                stdout = f.read().decode("utf-8", "replace")
            with open(os.path.join(self._workdir, "stderr"), "rb") as f:
                stderr = f.read().decode("utf-8", "replace")
        finally:
            self._cleanup()
        self._result = _result(self.path, self.slices, self._proc.returncode, stdout, stderr)
        return self._result

    def close(self) -> None:
        """Kill tshark if it still runs and remove the temporary files."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> HierarchyRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_hierarchy(
    path: str | os.PathLike[str], slices: Sequence[Slice], *, tshark: str = "tshark"
) -> HierarchyRun:
    """Start tshark on ``path`` with one ``io,phs`` tap per slice; returns at once."""
    p = Path(path)
    if not slices:
        raise ValueError("slices is empty: pass slices_for(...) (at least one slice)")
    if not p.is_file():
        raise InputError(f"{p}: no such capture file")
    return HierarchyRun(p, slices, tshark)


def run_hierarchy(
    path: str | os.PathLike[str], slices: Sequence[Slice], *, tshark: str = "tshark"
) -> HierarchyResult:
    """Run tshark on ``path`` with one ``io,phs`` tap per slice and wait for the result."""
    with start_hierarchy(path, slices, tshark=tshark) as run:
        return run.result()


# Preferences that only decorate the tree (item labels, TCP timing and bytes-in-flight
# analysis fields inside the TCP subtree): they never change which protocols sit at the top
# level, so the hierarchy is the same with them off (checked on every capture in
# ../shared/pcaps against tshark's default run by tests/test_hierarchy.py), and tshark is
# about 10 % faster. Sequence analysis stays on: turning it off changes reassembly.
FAST_PREFS: Final = (
    "tcp.track_bytes_in_flight:FALSE",
    "tcp.calculate_timestamps:FALSE",
    "ip.summary_in_tree:FALSE",
    "ipv6.summary_in_tree:FALSE",
    "tcp.summary_in_tree:FALSE",
    "udp.summary_in_tree:FALSE",
)


def _command(tshark: str, path: Path, slices: Sequence[Slice]) -> list[str]:
    cmd = [tshark, "-n", "-q", "-r", os.path.abspath(path)]  # never read as an option
    for pref in FAST_PREFS:
        cmd += ["-o", pref]
    if len(slices) == 1:
        return [*cmd, "-z", "io,phs"]
    for s in slices:
        cmd += ["-z", f"io,phs,{s.display_filter}"]
    return cmd


# ---------------------------------------------------------------------------------------
# parsing


@dataclasses.dataclass
class _Node:
    protocol: str
    frames: int
    bytes: int
    children: list[_Node]
    free_frames: int = 0  # frames not yet claimed by children (while parsing)
    free_bytes: int = 0


def _result(
    path: Path, slices: Sequence[Slice], returncode: int, stdout: str, stderr: str
) -> HierarchyResult:
    err = "\n".join(ln for ln in stderr.splitlines() if _ROOT_LINE not in ln).strip()
    if returncode < 0:
        raise RuntimeFailure(f"{path}: tshark was killed by signal {-returncode}")
    sections = _sections(stdout, path)
    if not sections:
        first = err.splitlines()[0] if err else f"tshark exited with status {returncode}"
        raise InputError(f"{path}: tshark printed no protocol hierarchy: {first}")
    single = len(slices) == 1
    out = []
    for s in slices:
        key = "" if single else s.display_filter
        if key not in sections:
            raise RuntimeFailure(f"{path}: tshark printed no protocol hierarchy for filter {key!r}")
        roots = sections[key]
        if key and len(roots) == 1 and roots[0].protocol == "frame":
            # a filter on frame.* fields makes the frame protocol show up as the root
            frames, nbytes = roots[0].frames, roots[0].bytes
            roots = roots[0].children
        else:
            frames, nbytes = sum(r.frames for r in roots), sum(r.bytes for r in roots)
        rows = _chain_rows(roots, s.index * ORDER_SLICE_SHIFT)
        out.append(SliceRows(s, frames, nbytes, tuple(rows)))
    return HierarchyResult(path, tuple(out), returncode, err)


def _sections(stdout: str, path: Path) -> dict[str, list[_Node]]:
    """Filter text -> tree, for each "Protocol Hierarchy Statistics" section."""
    lines = stdout.splitlines()
    out: dict[str, list[_Node]] = {}
    i = 0
    while i < len(lines):
        if not lines[i].startswith(_HEADER):
            i += 1
            continue
        i += 1
        key = ""
        if i < len(lines) and lines[i].startswith("Filter:"):
            key = lines[i][len("Filter:") :].strip()
            i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("====="):
            body.append(lines[i])
            i += 1
        out[key] = _parse_phs_lines(body, where=f"{path} (filter {key!r})")
    return out


def _parse_phs_lines(lines: Iterable[str], where: str = "io,phs") -> list[_Node]:
    """Parse the node lines of one io,phs section into a tree.

    tshark indents two spaces per level but stops at 16 levels: deeper nodes are printed
    as 32 spaces + ``"..."`` + name, whatever their depth. Such a node is placed under the
    deepest open node (from the previous line up to depth 16) that has no child of that
    name and enough uncounted frames and bytes left for it; this is exact whenever only
    one placement is consistent with the counts.
    """
    roots: list[_Node] = []
    stack: list[_Node] = []  # stack[d] = open node at depth d
    for line in lines:
        m = _NODE_RE.match(line)
        if not m:
            continue
        indent, name = m.group(1), m.group(2)
        node = _Node(name, int(m.group(3)), int(m.group(4)), [])
        node.free_frames, node.free_bytes = node.frames, node.bytes
        if len(indent) == 2 * _DRAW_DEPTH and name.startswith("...") and len(name) > 3:
            node.protocol = name[3:]
            depth = _deep_parent(stack, node, where) + 1
        else:
            depth = len(indent) // 2
            if len(indent) % 2 or depth > len(stack):
                raise RuntimeFailure(f"{where}: unexpected indentation in line {line.strip()!r}")
        del stack[depth:]
        siblings = stack[-1].children if stack else roots
        if stack:
            stack[-1].free_frames -= node.frames
            stack[-1].free_bytes -= node.bytes
        siblings.append(node)
        stack.append(node)
    return roots


def _deep_parent(stack: list[_Node], node: _Node, where: str) -> int:
    """Depth of the parent of a node tshark printed as ``"..."`` + name."""
    if len(stack) <= _DRAW_DEPTH:
        raise RuntimeFailure(f"{where}: '...{node.protocol}' does not follow a node at depth 16")
    for d in range(len(stack) - 1, _DRAW_DEPTH - 1, -1):
        parent = stack[d]
        if (
            parent.free_frames >= node.frames
            and parent.free_bytes >= node.bytes
            and all(c.protocol != node.protocol for c in parent.children)
        ):
            return d
    raise RuntimeFailure(f"{where}: no place in the tree fits '...{node.protocol}'")


def phs_chain_rows(lines: Iterable[str], base: int = 0) -> list[ChainRow]:
    """Chain rows of one io,phs section body (the node lines), ``order`` from ``base``."""
    return _chain_rows(_parse_phs_lines(lines), base)


def _chain_rows(roots: list[_Node], base: int) -> list[ChainRow]:
    """Chain rows of a tree, ``order`` = ``base`` + pre-order index."""
    rows: list[ChainRow] = []
    todo: list[tuple[_Node, str]] = [(r, "") for r in reversed(roots)]
    index = 0
    while todo:
        node, prefix = todo.pop()
        path = f"{prefix}:{node.protocol}" if prefix else node.protocol
        if index >= ORDER_SLICE_SHIFT:
            raise RuntimeFailure(f"protocol hierarchy has more than {ORDER_SLICE_SHIFT} nodes")
        frames = node.frames - sum(c.frames for c in node.children)
        nbytes = node.bytes - sum(c.bytes for c in node.children)
        if frames < 0 or nbytes < 0:
            raise RuntimeFailure(f"protocol hierarchy node {path!r} counts less than its children")
        if frames:
            rows.append(ChainRow(path, frames, nbytes, base + index))
        index += 1
        todo.extend((c, path) for c in reversed(node.children))
    return rows


# ---------------------------------------------------------------------------------------
# rebuilding the tree


@dataclasses.dataclass
class _Trie:
    frames: int = 0
    bytes: int = 0
    order: int | None = None
    children: dict[str, _Trie] = dataclasses.field(default_factory=dict)

    def tree(self) -> list[dict[str, Any]]:
        kids = sorted(self.children.items(), key=lambda kv: (kv[1].order, kv[0]))
        return [
            {"protocol": name, "frames": t.frames, "bytes": t.bytes, "children": t.tree()}
            for name, t in kids
        ]


def tree_from_chains(rows: Iterable[tuple[str, int, int, int]]) -> list[dict[str, Any]]:
    """Rebuild tshark's tree ``[{protocol, frames, bytes, children}]`` from chain rows.

    ``rows`` are ``(path, frames, bytes, order)`` tuples from any set of slices (for
    example ``path, sum(frames), sum(bytes), min(order)`` from the store); rows with the
    same path add up. A node counts every row at or below it; siblings are ordered by the
    smallest ``order`` below them (ties by name).
    """
    root = _Trie()
    for path, frames, nbytes, order in rows:
        if not path:
            raise ValueError("chain row with an empty path")
        node = root
        for name in path.split(":"):
            node = node.children.setdefault(name, _Trie())
            node.frames += int(frames)
            node.bytes += int(nbytes)
            node.order = int(order) if node.order is None else min(node.order, int(order))
    return root.tree()


def as_printed(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tree as tshark prints it and a line-by-line reading gives it back.

    tshark draws at most 16 indentation levels: a node deeper than that is printed as
    ``"..." + protocol`` at depth 16, so it reads as a sibling following its depth-16
    ancestor. Trees no deeper than 16 levels come back unchanged.
    """

    def walk(nodes: list[dict[str, Any]], depth: int, out: list[dict[str, Any]]) -> None:
        for n in nodes:
            if depth <= _DRAW_DEPTH:
                copy = {**n, "children": []}
                out.append(copy)
                walk(n["children"], depth + 1, out if depth == _DRAW_DEPTH else copy["children"])
            else:
                out.append({**n, "protocol": "..." + n["protocol"], "children": []})
                walk(n["children"], depth + 1, out)

    result: list[dict[str, Any]] = []
    walk(tree, 0, result)
    return result


def chain_columns(result: HierarchyResult, base_ns: int) -> Columns:
    """The result as a :data:`CHAIN_COLUMNS` table; a slice's rows get ``start_ns =
    base_ns + slice.start_ns`` (``base_ns``: absolute start of the interval at relative 0)."""
    rows = [(base_ns + s.slice.start_ns, r) for s in result.slices for r in s.rows]
    return {
        "start_ns": np.array([t for t, _ in rows], dtype=CHAIN_COLUMNS["start_ns"]),
        "path": np.array([r.path for _, r in rows] or [], dtype=object),
        "frames": np.array([r.frames for _, r in rows], dtype=CHAIN_COLUMNS["frames"]),
        "bytes": np.array([r.bytes for _, r in rows], dtype=CHAIN_COLUMNS["bytes"]),
        "order": np.array([r.order for _, r in rows], dtype=CHAIN_COLUMNS["order"]),
    }
