"""The enforcer: keeps the collector's desired blocks and throttles applied on this host.

::

    enforcer = Enforcer(config, collectors=["collector.example:50051"])
    enforcer.start()                       # restores the saved state, starts the timer
    state = enforcer.apply(enforcement)    # an Enforcement from the stream -> AppliedState
    ...                                    # send state back to the collector
    enforcer.stop()                        # rules stay applied (enforced across restarts)
    enforcer.uninstall()                   # only for a clean uninstall: chains removed

* ``apply`` validates (:mod:`.rules`), refuses rules that could only hit protected
  traffic (:mod:`.safety`), saves the desired state (:mod:`.state`) and, in mode ``on``,
  writes both address families atomically (:mod:`.iptables`). A bad Enforcement as a
  whole (version 0, wrong ruleset_id) leaves the previous state in force.
* A timer thread lifts each rule at its expiry and checks for drift every
  ``reconcile_s``; both are also callable directly (:meth:`expire`, :meth:`reconcile`).
  Each returns the new :class:`AppliedState` and, when given, calls ``on_change`` with
  it (the agent sends it to the collector).
* Modes: ``off`` applies nothing and removes netwarden's chains at start; ``dry-run``
  logs what it would write (:attr:`Enforcer.rendered`) and touches nothing; ``on``.
* Counters survive re-applies (carried over before each write), not a restart.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb

from .config import EnforceConfig, Hook
from .iptables import (
    Counts,
    IptablesError,
    Live,
    Runner,
    Tables,
    counters,
    drift,
    render,
    restore_text,
    snapshot,
)
from .rules import Desired, Refusal, Rule, RuleError, parse_enforcement
from .safety import Address, Protected, Resolver, only_protected, protected
from .state import StateError, load_state, save_state

__all__ = ["Enforcer"]

log = get_logger("netwarden.sensor.enforce")
FAMILIES: Final = (4, 6)


class Enforcer:
    """See the module docstring. Thread-safe; the constructor does nothing."""

    def __init__(self, config: EnforceConfig, collectors: Sequence[str] = (), *,
                 run: Runner | None = None, clock: Callable[[], int] = time.time_ns,
                 resolver: Resolver = socket.getaddrinfo,
                 on_change: Callable[[pb.AppliedState], None] | None = None) -> None:
        self.config = config
        self.collectors = tuple(collectors)
        self._run = run
        self._clock = clock
        self._resolver = resolver
        self._on_change = on_change
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._tables: dict[int, Tables] = {}
        self._protection = Protected()
        self._desired: Desired | None = None
        self._active: tuple[Rule, ...] = ()
        self._unsafe: tuple[Refusal, ...] = ()
        self._expired: list[str] = []
        self._drift: list[str] = []
        self._error = ""
        self._applied_ns = 0
        self._expected: dict[int, list[str]] = {}
        self._carry: dict[str, Counts] = {}
        self._counts: dict[str, Counts] = {}
        #: dry-run and on: the iptables-restore input last rendered, per family
        self.rendered: dict[int, str] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> pb.AppliedState:
        """Resolve the protected endpoints, restore the saved state and start the timer."""
        with self._lock:
            self._tables = self._make_tables()
            saved = None
            try:
                saved = load_state(self.config.state_file)
            except StateError as exc:
                log.warning("enforcement state not restored", error=str(exc))
            self._protection = self._protect(saved.collectors if saved else ())
            if self.config.mode == "off":
                self._remove_leftovers()
            if saved is not None and saved.enforcement.version:
                try:
                    self._accept(saved.enforcement, restored=True)
                except RuleError as exc:
                    log.warning("enforcement state not restored", error=str(exc))
            state = self.state()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="enforcer", daemon=True)
        self._thread.start()
        log.info("enforcer started", mode=self.config.mode, rules=len(self._active),
                 version=state.version)
        return state

    def stop(self) -> None:
        """Stop the timer; the rules stay applied (a restarted sensor restores them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def uninstall(self) -> None:
        """Remove netwarden's chains and jumps from both families (clean uninstall)."""
        with self._lock:
            for table in (self._tables or self._make_tables()).values():
                live = table.save()
                if live.ours():
                    table.restore(restore_text({}, [], live))
            self._expected = {}

    # ------------------------------------------------------------------ the API

    def apply(self, desired: pb.Enforcement) -> pb.AppliedState:
        """Make ``desired`` the state in force; the resulting :class:`AppliedState`."""
        with self._lock:
            try:
                self._accept(desired, restored=False)
            except RuleError as exc:
                log.warning("enforcement refused", version=desired.version, error=str(exc))
                self._error = str(exc)
            return self._changed()

    def reconcile(self) -> pb.AppliedState:
        """Compare netwarden's live chains with what was applied; repair any drift."""
        with self._lock:
            if self.config.mode != "on" or not self._tables:
                return self.state()
            found: list[str] = []
            lives: dict[int, Live] = {}
            try:
                for fam, table in self._tables.items():
                    lives[fam] = table.save()
                    found += drift(self._expected.get(fam, []), snapshot(lives[fam]), fam)
            except IptablesError as exc:
                self._error = str(exc)
                return self._changed()
            self._drift = found
            if found:
                log.warning("enforcement drift repaired", drift=found)
                self._write()
                return self._changed()
            self._read_counts(lives)
            return self.state()

    def expire(self, now_ns: int | None = None) -> pb.AppliedState:
        """Lift the rules whose expiry is at or before ``now_ns`` (default: now)."""
        now = self._clock() if now_ns is None else now_ns
        with self._lock:
            gone = [r for r in self._active if r.expires_ns <= now]
            if not gone:
                return self.state()
            self._active = tuple(r for r in self._active if r.expires_ns > now)
            self._expired += [r.id for r in gone]
            log.info("enforcement rules expired", rules=[r.id for r in gone])
            self._write()
            return self._changed()

    def state(self) -> pb.AppliedState:
        """What is in force now (counters as last read)."""
        with self._lock:
            d = self._desired
            refused = [str(r) for r in (*(d.refused if d else ()), *self._unsafe)]
            out = pb.AppliedState(
                version=d.version if d else 0, ruleset_id=d.ruleset_id if d else "",
                mode=self.config.mode, refused=refused, applied_ns=self._applied_ns,
                drift=self._drift, expired=self._expired, error=self._error)
            for rule in self._active:
                c = self._counts.get(rule.id, Counts())
                out.counters.append(pb.RuleCounters(
                    rule_id=rule.id, packets=c.packets, bytes=c.bytes,
                    matched_packets=c.matched_packets, matched_bytes=c.matched_bytes))
            return out

    @property
    def active(self) -> tuple[Rule, ...]:
        """The rules in force (valid, safe, not expired)."""
        return self._active

    # ------------------------------------------------------------------ internals

    def _make_tables(self) -> dict[int, Tables]:
        return {4: Tables(4, self.config.iptables, self._run),
                6: Tables(6, self.config.ip6tables, self._run)}

    def _protect(self, known: Sequence[tuple[Address, int]] = ()) -> Protected:
        return protected(self.config, self.collectors, known, resolver=self._resolver)

    def _accept(self, msg: pb.Enforcement, *, restored: bool) -> None:
        now = self._clock()
        desired = parse_enforcement(msg, now)
        # restored: rules that expired while the sensor was down are dropped, not refused
        gone = [r.id for r in msg.rules if r.expires_ns <= now] if restored else []
        if gone:
            desired = dataclasses.replace(desired, refused=tuple(
                x for x in desired.refused if x.rule_id not in gone))
        self._expired = gone
        self._desired = desired
        self._protection = self._protect(self._protection.collectors)
        unsafe: list[Refusal] = []
        active: list[Rule] = []
        for rule in desired.rules:
            reason = only_protected(rule, self._protection)
            if reason is None:
                active.append(rule)
            else:
                unsafe.append(Refusal(rule.id, reason))
        self._unsafe = tuple(unsafe)
        self._active = tuple(active)
        self._drift = []
        for r in (*desired.refused, *unsafe):
            log.warning("enforcement rule refused", rule=r.rule_id, reason=r.reason)
        if not restored:
            try:
                save_state(self.config.state_file, msg, self._protection.collectors, now)
            except OSError as exc:
                log.warning("enforcement state not saved", file=self.config.state_file,
                            error=str(exc))
        self._write()
        self._wake.set()

    def _hooks(self, rules: Sequence[Rule], fam: int) -> list[Hook]:
        return list(self.config.hooks) if any(fam in r.match.families() for r in rules) else []

    def _write(self) -> None:
        """Render the active rules and, in mode on, apply them (both families)."""
        self._error = ""
        if self.config.mode == "off":
            return
        texts: dict[int, str] = {}
        errors: list[str] = []
        lives: dict[int, Live] = {}  # after the write, for the counters
        for fam in FAMILIES:
            hooks = self._hooks(self._active, fam)
            chains = render(self._active, self._protection, hooks, fam) if hooks else {}
            if self.config.mode == "dry-run":
                texts[fam] = restore_text(chains, hooks, Live())
                for line in texts[fam].splitlines():
                    log.info("dry-run: would apply", family=fam, line=line)
                continue
            table = self._tables[fam]
            try:
                live = table.save()
                if not chains and not live.ours():
                    self._expected[fam] = []
                    lives[fam] = live
                    continue
                texts[fam] = restore_text(chains, hooks, live)
                table.restore(texts[fam])
                self._carry_counts(live)  # reset by the write (a failed one changes nothing)
                lives[fam] = table.save()
                self._expected[fam] = snapshot(lives[fam])
            except IptablesError as exc:
                errors.append(f"IPv{fam}: {exc}")
        self.rendered = texts
        self._error = "; ".join(errors)
        if errors:
            log.error("enforcement not applied", error=self._error)
        self._applied_ns = self._clock()
        active = {r.id for r in self._active}
        self._carry = {k: v for k, v in self._carry.items() if k in active}
        if self.config.mode == "on":
            self._read_counts(lives)

    def _carry_counts(self, live: Live) -> None:
        for rid, c in counters(live).items():
            self._carry.setdefault(rid, Counts()).add(c)

    def _read_counts(self, lives: dict[int, Live]) -> None:
        """Counters: those carried over plus those of ``lives`` (a family missing there,
        its write having failed, is read again)."""
        total: dict[str, Counts] = {}
        for rid, c in self._carry.items():
            total.setdefault(rid, Counts()).add(c)
        for fam, table in self._tables.items():
            live = lives.get(fam)
            if live is None:
                try:
                    live = table.save()
                except IptablesError:
                    continue
            for rid, c in counters(live).items():
                total.setdefault(rid, Counts()).add(c)
        self._counts = total

    def _remove_leftovers(self) -> None:
        for fam, table in self._tables.items():
            try:
                live = table.save()
                if live.ours():
                    table.restore(restore_text({}, [], live))
                    log.info("enforcement mode off: netwarden's chains removed", family=fam)
            except IptablesError as exc:
                log.warning("cannot check for netwarden's chains", family=fam, error=str(exc))

    def _changed(self) -> pb.AppliedState:
        state = self.state()
        if self._on_change is not None:
            try:
                self._on_change(state)
            except Exception as exc:  # the agent's callback must not stop enforcement
                log.warning("enforcement state callback failed", error=str(exc))
        return state

    def _loop(self) -> None:
        next_reconcile = time.monotonic() + self.config.reconcile_s
        while not self._stop.is_set():
            with self._lock:
                expiries = [r.expires_ns for r in self._active]
            wait = next_reconcile - time.monotonic()
            if expiries:
                wait = min(wait, (min(expiries) - self._clock()) / 1e9)
            self._wake.wait(timeout=max(0.0, wait))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.expire()
            except Exception as exc:
                log.warning("enforcement expiry failed", error=str(exc))
            if time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + self.config.reconcile_s
                try:
                    self.reconcile()
                except Exception as exc:
                    log.warning("enforcement reconcile failed", error=str(exc))
