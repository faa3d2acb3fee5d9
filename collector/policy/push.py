"""Desired enforcement out to the sensors, applied state back: the collector's side of the loop.

:class:`EnforcementPush` sits between the :class:`~.engine.PolicyEngine` and the sensor
streams of :class:`~netwarden.collector.server.CollectorServer`:

* **Desired.** Per host, the wire rules of the engine's last desired state
  (:func:`.rules.enforcement_rules`) in an ``Enforcement`` whose ``version`` rises by one
  each time the host's ruleset changes (a ruleset that did not change keeps its
  message). Versions continue across collector restarts: at start the highest version
  each sensor reported (``enforcement_applied``) is read back, and a sensor reporting a
  higher one moves its host's counter past it.
* **Push.** When a sensor's stream is established its desired state is sent (once the
  engine has evaluated at least once; a host with no rules is only sent the empty
  state when it reports rules in force), and after every engine run each connected
  host whose ruleset differs from the one last sent on its stream gets the new one.
* **Applied.** Every ``AppliedState`` a sensor sends is kept (the last per host, in
  memory) and written to ``enforcement_applied`` (append-only audit). When the applied
  ruleset is not the desired one (a sensor restarted with an old state, a whole
  Enforcement refused, an apply error), the desired state is sent again, at most once
  per :data:`RESEND_S` per host. A sensor whose enforcement is ``off`` is not resent to.
* :meth:`EnforcementPush.status`: per host, the desired and applied version and ruleset,
  for ``policy status``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from netwarden.collector.store.schema import ENFORCEMENT_APPLIED
from netwarden.logging import get_logger
from netwarden.proto import netwarden_pb2 as pb

from .rules import enforcement, enforcement_rules

if TYPE_CHECKING:
    from netwarden.collector.store import Store

    from .engine import PolicyEngine

__all__ = ["RESEND_S", "EnforcementPush"]

log = get_logger("netwarden.collector.policy")

RESEND_S: Final = 5.0
Deliver = Callable[[pb.CollectorMessage], None]


@dataclasses.dataclass
class _Link:
    """One host's open stream: how to send to it, and what was sent on it."""

    deliver: Deliver
    sent_ruleset: str | None = None
    sent_at: float = -1e18


@dataclasses.dataclass(frozen=True)
class _Applied:
    state: pb.AppliedState
    at: float  # epoch seconds received


class EnforcementPush:
    """See the module doc. Thread-safe: streams, readers and the engine call it."""

    def __init__(self, engine: PolicyEngine, store: Store, *,
                 clock: Callable[[], float] = time.time, resend_s: float = RESEND_S) -> None:
        self.engine = engine
        self.store = store
        self.resend_s = resend_s
        self._clock = clock
        self._lock = threading.RLock()
        self._links: dict[str, _Link] = {}
        self._desired: dict[str, pb.Enforcement] = {}
        self._versions: dict[str, int] = {}  # highest version known per host
        self._applied: dict[str, _Applied] = {}
        self.sent = 0  # Enforcement messages delivered since start

    def seed(self) -> None:
        """Continue each host's versions after the highest one stored."""
        rows = self.store.query(
            "SELECT host, max(version) AS v FROM enforcement_applied GROUP BY host")
        with self._lock:
            for host, version in rows:
                h = str(host)
                self._versions[h] = max(self._versions.get(h, 0), int(version))

    # -- streams --------------------------------------------------------------------------

    def connected(self, host: str, deliver: Deliver) -> None:
        """A stream of ``host`` is established: send its desired state."""
        with self._lock:
            self._links[host] = _Link(deliver)
            self._sync(host)

    def disconnected(self, host: str, deliver: Deliver) -> None:
        """The stream that ``deliver`` sends on ended (a newer one may have replaced it)."""
        with self._lock:
            link = self._links.get(host)
            if link is not None and link.deliver == deliver:
                del self._links[host]

    def after_run(self, *_: Any) -> None:
        """The engine evaluated: send every connected host whose ruleset changed."""
        with self._lock:
            for host in sorted(self._links):
                self._sync(host)

    def applied(self, host: str, state: pb.AppliedState) -> None:
        """A sensor reported what it enforces: keep it, audit it, resend if out of sync."""
        now = self._clock()
        with self._lock:
            self._applied[host] = _Applied(state, now)
            if state.version > self._versions.get(host, 0):
                self._versions[host] = state.version
        try:
            self.store.insert(ENFORCEMENT_APPLIED, _row(host, state, now))
        except Exception as exc:  # the audit must not cut the loop
            log.error("applied enforcement state not stored", host=host,
                      error=str(exc).splitlines()[0])
        log.info("sensor enforcement state", host=host, version=state.version,
                 ruleset_id=state.ruleset_id, mode=state.mode, rules=len(state.counters),
                 refused=list(state.refused), drift=list(state.drift), error=state.error)
        with self._lock:
            self._sync(host)

    # -- what is desired ------------------------------------------------------------------

    def desired(self, host: str) -> pb.Enforcement:
        """The host's desired Enforcement now (same message while its ruleset is)."""
        with self._lock:
            now = self._clock()
            rules = enforcement_rules(self.engine.desired_for(host), now,
                                      self.engine.config.evaluate_every_s)
            prev = self._desired.get(host)
            msg = enforcement(rules, 1, int(now * 1e9))
            if prev is not None and prev.ruleset_id == msg.ruleset_id:
                return prev
            version = max(prev.version if prev else 0, self._versions.get(host, 0)) + 1
            msg.version = version
            self._versions[host] = version
            self._desired[host] = msg
            return msg

    def _sync(self, host: str) -> None:
        link = self._links.get(host)
        if link is None or self.engine.state is None:
            return
        msg = self.desired(host)
        applied = self._applied.get(host)
        state = applied.state if applied is not None else None
        in_force = state.ruleset_id if state is not None else ""
        if not msg.rules and in_force in ("", msg.ruleset_id) and \
                link.sent_ruleset in (None, msg.ruleset_id):
            return  # nothing to enforce, nothing in force, nothing sent that would be
        now = self._clock()
        if link.sent_ruleset != msg.ruleset_id:
            why = "changed" if link.sent_ruleset is not None else "connected"
        elif state is not None and state.mode != "off" and \
                (in_force != msg.ruleset_id or state.error) and \
                now - link.sent_at >= self.resend_s:
            why = "out of sync"
        else:
            return
        link.sent_ruleset, link.sent_at = msg.ruleset_id, now
        link.deliver(pb.CollectorMessage(enforcement=msg))
        self.sent += 1
        log.info("enforcement sent", host=host, version=msg.version,
                 ruleset_id=msg.ruleset_id, rules=len(msg.rules), reason=why,
                 applied_ruleset_id=in_force)

    # -- policy status --------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per host (sorted): desired and applied version/ruleset, mode, sync."""
        with self._lock:
            hosts = sorted(set(self._desired) | set(self._applied) | set(self._links))
            out: list[dict[str, Any]] = []
            for host in hosts:
                want = self._desired.get(host)
                got = self._applied.get(host)
                st = got.state if got is not None else None
                want_id = want.ruleset_id if want is not None else ""
                in_sync = st is not None and not st.error and (
                    st.ruleset_id == want_id or (not (want and want.rules)
                                                 and not st.counters))
                out.append({
                    "host": host, "connected": host in self._links,
                    "desired_version": want.version if want else 0,
                    "desired_ruleset": want_id,
                    "desired_rules": len(want.rules) if want else 0,
                    "applied_version": st.version if st else 0,
                    "applied_ruleset": st.ruleset_id if st else "",
                    "mode": st.mode if st else "",
                    "rules_in_force": len(st.counters) if st else 0,
                    "in_sync": bool(in_sync),
                    "refused": list(st.refused) if st else [],
                    "drift": list(st.drift) if st else [],
                    "error": st.error if st else "",
                    "reported_at": round(got.at, 3) if got else None,
                })
            return out


def _row(host: str, state: pb.AppliedState, now: float) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {
        "ts": np.array([int(now)], dtype=np.uint32),
        "host": np.array([host], dtype=object),
        "version": np.array([state.version], dtype=np.uint64),
        "ruleset_id": np.array([state.ruleset_id], dtype=object),
        "mode": np.array([state.mode], dtype=object),
        "rules": np.array([len(state.counters)], dtype=np.uint32),
        "refused": np.array(["\n".join(state.refused)], dtype=object),
        "drift": np.array(["\n".join(state.drift)], dtype=object),
        "error": np.array([state.error], dtype=object),
    }
    return {c.name: cols[c.name] for c in ENFORCEMENT_APPLIED.columns}
