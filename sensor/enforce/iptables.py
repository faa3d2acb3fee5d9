"""netwarden's chains in the ``filter`` table: rendering, atomic apply, counters, drift.

Layout (one copy per address family: ``iptables`` for IPv4, ``ip6tables`` for IPv6)::

    INPUT   -j NETWARDEN-IN     one jump each, inserted first, for the configured hooks
    OUTPUT  -j NETWARDEN-OUT
    FORWARD -j NETWARDEN-FWD

    NETWARDEN-IN / -OUT / -FWD  guard lines first (safety.py: -j RETURN), then one
                                entry line per (remote net, local net, protocol) of each
                                rule: ... -m comment --comment "nw:ID" -j NETWARDEN-R-<h>
    NETWARDEN-R-<h>             one chain per rule (<h>: 10 hex digits of its id):
                                its exemptions (-j RETURN), then its action: DROP,
                                REJECT (tcp-reset for TCP), or for a throttle
                                -m hashlimit --hashlimit-above RATEb/s ... -j DROP

Decisions:

* A throttle is one token bucket per rule (``hashlimit`` without ``--hashlimit-mode``;
  per address family), shared by every entry line, hook and remote address of the rule:
  the policy caps the host's traffic, not each peer's. The hashlimit name hashes the rule
  id, rate and burst, so a changed rate gets a fresh bucket.
* Everything is written with ``iptables-restore --noflush`` in one transaction per
  family: declaring a netwarden chain flushes it, so the whole set is replaced
  atomically; chains of other owners and the other rules of the built-in chains are
  never named, except that the jumps are inserted (``-I ... 1``) when missing and
  surplus or edited jumps to netwarden's chains are deleted. netwarden chains no longer
  wanted (a rule gone, a hook unconfigured) are flushed and deleted in the same
  transaction; :func:`restore_text` with nothing desired is the uninstall.
* Expiry is not iptables' business: the enforcer re-applies without the expired rules.
* Drift: after each apply the live chains (``iptables-save``, counters dropped) are kept
  as the expected snapshot; :func:`drift` compares a later snapshot with it.

The pure functions (:func:`render`, :func:`restore_text`, :func:`parse_save`,
:func:`counters`, :func:`snapshot`, :func:`drift`) take and give text; :class:`Tables`
runs the binaries through a runner (the tests run them inside their namespaces).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Final, Literal

from .config import Hook
from .rules import Network, PortRange, Rule
from .safety import Protected, guard_rules

__all__ = ["CHAIN_PREFIX", "HOOK_CHAINS", "Counts", "IptablesError", "Live", "Runner",
           "SavedRule", "Tables", "counters", "drift", "hashlimit_name", "parse_save",
           "render", "restore_text", "rule_chain", "snapshot"]

CHAIN_PREFIX: Final = "NETWARDEN-"
HOOK_CHAINS: Final[dict[Hook, tuple[str, str]]] = {
    "input": ("INPUT", "NETWARDEN-IN"),
    "output": ("OUTPUT", "NETWARDEN-OUT"),
    "forward": ("FORWARD", "NETWARDEN-FWD"),
}
BUILTINS: Final = ("INPUT", "FORWARD", "OUTPUT")
COMMENT_PREFIX: Final = "nw:"
Runner = Callable[[Sequence[str], str | None], subprocess.CompletedProcess[str]]
_COMMENT_RE: Final = re.compile(r'--comment (?:"([^"]*)"|(\S+))')
_COUNTED_RE: Final = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) ?(.*)$")
_TARGET_RE: Final = re.compile(r"(?:^| )-j (\S+)")


class IptablesError(RuntimeError):
    """An iptables command failed; the message names it and has its stderr."""


# ---------------------------------------------------------------- rendering


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def rule_chain(rule_id: str) -> str:
    """The chain of one rule: ``NETWARDEN-R-`` and 10 hex digits of its id."""
    return f"{CHAIN_PREFIX}R-{_digest(rule_id, 10)}"


def hashlimit_name(rule: Rule) -> str:
    """The hashlimit table name of a throttle (15 characters at most)."""
    return "nw" + _digest(f"{rule.id}|{rule.rate}|{rule.burst}", 12)


def _comment(text: str) -> list[str]:
    return ["-m", "comment", "--comment", f'"{COMMENT_PREFIX}{text}"']


def _multiport(ports: Sequence[PortRange]) -> list[str]:
    return ["-m", "multiport", "--ports", ",".join(map(str, ports))]


def _proto(name: str, family: int) -> str:
    return "ipv6-icmp" if name == "icmp" and family == 6 else name


def _rule_lines(rule: Rule, family: int) -> list[str]:
    """The lines of a rule's own chain: exemptions, then its action."""
    tag = rule.id
    lines: list[list[str]] = []
    for net in rule.exempt_cidrs:
        if net.version == family:
            lines.append(["-s", str(net), *_comment(f"{tag}:exempt"), "-j", "RETURN"])
            lines.append(["-d", str(net), *_comment(f"{tag}:exempt"), "-j", "RETURN"])
    if rule.exempt_ports and rule.match.protocol != "icmp":
        for proto in ("tcp", "udp"):
            if rule.match.protocol in ("any", proto):
                lines.append(["-p", proto, *_multiport(rule.exempt_ports),
                              *_comment(f"{tag}:exempt"), "-j", "RETURN"])
    if rule.action == "drop":
        lines.append([*_comment(tag), "-j", "DROP"])
    elif rule.action == "reject":
        unreachable = "icmp-port-unreachable" if family == 4 else "icmp6-port-unreachable"
        if rule.match.protocol in ("tcp", "any"):
            lines.append(["-p", "tcp", *_comment(tag), "-j", "REJECT", "--reject-with",
                          "tcp-reset"])
        if rule.match.protocol != "tcp":
            lines.append([*_comment(tag), "-j", "REJECT", "--reject-with", unreachable])
    else:
        burst = rule.burst or rule.rate
        lines.append(["-m", "hashlimit", "--hashlimit-above", f"{rule.rate}b/s",
                      "--hashlimit-burst", f"{burst}b", "--hashlimit-name",
                      hashlimit_name(rule), *_comment(tag), "-j", "DROP"])
    return [" ".join(x) for x in lines]


def _entry_lines(rule: Rule, family: int, directions: Iterable[Literal["in", "out"]]
                 ) -> list[str]:
    m = rule.match
    remote, local = m.networks(family)
    target = rule_chain(rule.id)
    if m.ports:
        protos = ["tcp", "udp"] if m.protocol == "any" else [m.protocol]
    else:
        protos = [] if m.protocol == "any" else [m.protocol]
    out: list[str] = []
    for direction in directions:
        rflag, lflag = ("-s", "-d") if direction == "in" else ("-d", "-s")
        rnets: Sequence[Network | None] = remote or [None]
        lnets: Sequence[Network | None] = local or [None]
        for r in rnets:
            for loc in lnets:
                for proto in protos or [None]:
                    args: list[str] = []
                    if r is not None:
                        args += [rflag, str(r)]
                    if loc is not None:
                        args += [lflag, str(loc)]
                    if proto is not None:
                        args += ["-p", _proto(proto, family)]
                    if m.ports:
                        args += _multiport(m.ports)
                    line = " ".join([*args, *_comment(rule.id), "-j", target])
                    if line not in out:  # FORWARD: in and out may render the same
                        out.append(line)
    return out


def render(rules: Sequence[Rule], protection: Protected, hooks: Sequence[Hook],
           family: int) -> dict[str, list[str]]:
    """netwarden's chains for one family: chain name -> its lines (``-A`` arguments),
    hook chains first, rules in id order."""
    chains: dict[str, list[str]] = {}
    ordered = sorted((r for r in rules if family in r.match.families()), key=lambda r: r.id)
    for hook in ("input", "output", "forward"):
        if hook not in hooks:
            continue
        _builtin, chain = HOOK_CHAINS[hook]
        lines: list[str] = []
        if hook != "forward":
            direction: Literal["in", "out"] = "in" if hook == "input" else "out"
            for g in guard_rules(protection, family, direction):
                tag = "guard:" + g.what.replace(" ", "_")
                lines.append(" ".join([*g.args, *_comment(tag), "-j", "RETURN"]))
            dirs: list[Literal["in", "out"]] = [direction]
        else:
            dirs = ["in", "out"]
        for rule in ordered:
            wanted = [d for d in dirs if rule.match.direction in (d, "both")]
            lines += _entry_lines(rule, family, wanted)
        chains[chain] = lines
    for rule in ordered:
        chains[rule_chain(rule.id)] = _rule_lines(rule, family)
    return chains


# ---------------------------------------------------------------- iptables-save


@dataclass(frozen=True)
class SavedRule:
    """One rule of ``iptables-save -c``: its chain, its spec after ``-A CHAIN``, counters."""

    chain: str
    spec: str
    packets: int = 0
    bytes: int = 0

    @property
    def comment(self) -> str | None:
        return _comment_of(self.spec)

    @property
    def target(self) -> str | None:
        m = _TARGET_RE.search(self.spec)
        return None if m is None else m.group(1)


@dataclass(frozen=True)
class Live:
    """The ``filter`` table as ``iptables-save`` shows it."""

    chains: tuple[str, ...] = ()
    rules: tuple[SavedRule, ...] = field(default=())

    def ours(self) -> list[str]:
        return [c for c in self.chains if c.startswith(CHAIN_PREFIX)]


def _comment_of(line: str) -> str | None:
    """The ``--comment`` of an iptables line (quoted or not), or None."""
    m = _COMMENT_RE.search(line)
    return None if m is None else (m.group(1) if m.group(1) is not None else m.group(2))


def parse_save(text: str) -> Live:
    """The ``filter`` table of ``iptables-save [-c]`` output (other tables are skipped)."""
    chains: list[str] = []
    rules: list[SavedRule] = []
    table = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if table != "filter" or line == "COMMIT":
            continue
        if line.startswith(":"):
            chains.append(line[1:].split()[0])
            continue
        m = _COUNTED_RE.match(line)
        if m:
            rules.append(SavedRule(m.group(3), m.group(4), int(m.group(1)), int(m.group(2))))
            continue
        if line.startswith("-A "):
            parts = line.split(" ", 2)
            rules.append(SavedRule(parts[1], parts[2] if len(parts) > 2 else ""))
            continue
        raise IptablesError(f"iptables-save output line {n}: cannot read {line!r}")
    return Live(tuple(chains), tuple(rules))


def _jump_rules(live: Live) -> list[SavedRule]:
    """Rules of the built-in chains that jump to a netwarden chain."""
    return [r for r in live.rules if r.chain in BUILTINS
            and (r.target or "").startswith(CHAIN_PREFIX)]


def restore_text(desired: dict[str, list[str]], hooks: Sequence[Hook], live: Live) -> str:
    """The ``iptables-restore --noflush`` input that turns ``live`` into ``desired``.

    ``desired`` empty and ``hooks`` empty: the uninstall (every netwarden chain and jump
    removed). Only netwarden chains and the jumps to them are named.
    """
    out = ["*filter"]
    out += [f":{chain} - [0:0]" for chain in desired]
    stale = [c for c in live.ours() if c not in desired]
    wanted_jumps = {HOOK_CHAINS[h] for h in hooks}
    seen: set[tuple[str, str]] = set()
    for r in _jump_rules(live):
        key = (r.chain, r.target or "")
        if key in wanted_jumps and r.spec == f"-j {r.target}" and key not in seen:
            seen.add(key)
            continue
        out.append(f"-D {r.chain} {r.spec}")
    out += [f"-F {c}" for c in stale]
    out += [f"-X {c}" for c in stale]
    for chain, lines in desired.items():
        out += [f"-A {chain} {line}" for line in lines]
    for builtin, chain in sorted(wanted_jumps - seen):
        out.append(f"-I {builtin} 1 -j {chain}")
    out.append("COMMIT")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- counters and drift


@dataclass
class Counts:
    """Counters of one rule (see ``RuleCounters`` in the proto)."""

    packets: int = 0
    bytes: int = 0
    matched_packets: int = 0
    matched_bytes: int = 0

    def add(self, other: Counts) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.matched_packets += other.matched_packets
        self.matched_bytes += other.matched_bytes


def counters(live: Live) -> dict[str, Counts]:
    """Per rule id: what its action hit (its chain's DROP/REJECT lines) and what matched
    it (its entry lines in the hook chains)."""
    hook_chains = {c for _, c in HOOK_CHAINS.values()}
    out: dict[str, Counts] = {}
    for r in live.rules:
        comment = r.comment
        if not r.chain.startswith(CHAIN_PREFIX) or comment is None:
            continue
        if not comment.startswith(COMMENT_PREFIX) or comment.startswith(f"{COMMENT_PREFIX}guard:"):
            continue
        rid = comment[len(COMMENT_PREFIX):]
        if rid.endswith(":exempt"):
            continue
        c = out.setdefault(rid, Counts())
        if r.chain in hook_chains:
            c.matched_packets += r.packets
            c.matched_bytes += r.bytes
        elif r.target in ("DROP", "REJECT"):
            c.packets += r.packets
            c.bytes += r.bytes
    return out


def snapshot(live: Live) -> list[str]:
    """netwarden's part of ``live`` without counters: its chains, their lines, the jumps."""
    out = [f":{c}" for c in sorted(live.ours())]
    out += [f"-A {r.chain} {r.spec}" for r in live.rules if r.chain.startswith(CHAIN_PREFIX)]
    out += [f"-A {r.chain} {r.spec}" for r in _jump_rules(live)]
    return out


def _label(line: str) -> str:
    text = _comment_of(line)
    if text is None:
        return "(no comment)"
    return text.removeprefix(COMMENT_PREFIX)


def drift(expected: Sequence[str], current: Sequence[str], family: int) -> list[str]:
    """How ``current`` differs from ``expected`` (both :func:`snapshot`), one line each."""
    fam = f"IPv{family}"
    if list(expected) == list(current):
        return []
    out: list[str] = []
    exp_chains = {x[1:] for x in expected if x.startswith(":")}
    cur_chains = {x[1:] for x in current if x.startswith(":")}
    out += [f"{fam}: chain {c} is missing" for c in sorted(exp_chains - cur_chains)]
    out += [f"{fam}: chain {c} is not netwarden's rendering (left over)"
            for c in sorted(cur_chains - exp_chains)]

    def grouped(lines: Sequence[str]) -> dict[tuple[str, str], list[str]]:
        g: dict[tuple[str, str], list[str]] = {}
        for x in lines:
            if x.startswith("-A "):
                chain = x.split(" ", 2)[1]
                target = _TARGET_RE.search(x)
                label = (target.group(1) if target else "?") if chain in BUILTINS else _label(x)
                g.setdefault((chain, label), []).append(x)
        return g

    ge, gc = grouped(expected), grouped(current)
    for key in sorted(set(ge) | set(gc)):
        chain, label = key
        what = (f"{fam}: {chain}: jump to {label}" if chain in BUILTINS
                else f"{fam}: {chain}: rule {label}")
        if chain not in cur_chains and chain not in BUILTINS:
            continue  # reported with the chain
        if key not in gc:
            out.append(f"{what}: missing")
        elif key not in ge:
            out.append(f"{what}: unexpected line(s): {'; '.join(gc[key])[:200]}")
        elif sorted(ge[key]) != sorted(gc[key]):
            out.append(f"{what}: edited")
    if not out:
        out.append(f"{fam}: netwarden's lines are reordered")
    return out


# ---------------------------------------------------------------- running the binaries


def _default_runner(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                          timeout=60)


class Tables:
    """One family's ``filter`` table through ``BINARY-save`` and ``BINARY-restore``."""

    def __init__(self, family: int, binary: str, run: Runner | None = None) -> None:
        self.family = family
        path = PurePath(binary)
        self.save_bin = str(path.with_name(path.name + "-save"))
        self.restore_bin = str(path.with_name(path.name + "-restore"))
        self._run = run or _default_runner

    def _call(self, argv: list[str], stdin: str | None = None) -> str:
        try:
            proc = self._run(argv, stdin)
        except (OSError, subprocess.SubprocessError) as exc:
            raise IptablesError(f"{argv[0]}: {exc}") from None
        if proc.returncode != 0:
            err = " ".join(proc.stderr.split())[:500]
            raise IptablesError(f"{' '.join(argv)}: exit {proc.returncode}: {err}")
        return proc.stdout

    def save(self) -> Live:
        """The live ``filter`` table, with counters."""
        return parse_save(self._call([self.save_bin, "-c", "-t", "filter"]))

    def restore(self, text: str) -> None:
        """Apply ``text`` atomically, leaving every other chain alone (``--noflush``)."""
        self._call([self.restore_bin, "--noflush", "-w", "5"], text)
