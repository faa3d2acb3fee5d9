"""The ``policy_usage`` rollup: bytes each policy counts, per host and minute.

(Per host and *bucket*, really: a minute, except for a fixed period whose length is not a
whole number of minutes (a ``{kind: fixed, length: 30s}`` policy): its bucket is the
greatest common divisor of the length and 60 s (:func:`bucket_s`), so every window
boundary is a bucket boundary and a window's usage is exact. The slow path below works
per minute for every policy.)

**At ingest** (fast path): :class:`UsageRollup` is the collector's hook after a group of
sensor batches is stored (:class:`~netwarden.collector.ingest.Ingest` ``on_stored``). For
every policy it takes the layer-0 records the policy counts (:func:`.match.policy_mask`),
sums their frame bytes and packets per minute (``ts`` = interval start, rounded down to
the minute) and inserts one row per (policy, definition, host, minute) into the
``policy_usage`` SummingMergeTree; views roll them up per UTC hour and UTC day
(``policy_usage_1h``, ``policy_usage_1d``). Evaluation sums a period as whole days, whole
hours at its edges and the remaining minutes (:func:`read_usages`, one query for every
policy): a few thousand rows, a few milliseconds, at any history length. A period that
starts at a local midnight which is not a UTC hour (Asia/Kolkata, +05:30) reads its first
minutes up to the hour from ``policy_usage``.

The rows are inserted *after* the batches' ledger rows, so a sensor resending a batch
after a collector crash never counts it twice; a crash in between loses that group's
usage (an undercount: a quota is never reached early). A failed ``policy_usage`` insert
is logged and the batches stay stored (they are acknowledged).

``definition`` is a digest of the policy's ``what`` and ``exempt`` (:func:`definition_id`):
editing what a policy counts starts new rows, and the old ones are simply not read.

**Slow path**: policies loaded after the traffic was stored. :func:`backfill` recomputes
a policy's rows for a time range from raw ``flows`` (first pre-aggregated per minute in
ClickHouse, :func:`read_minute_flows`), and ``policy simulate`` replays the same minute
records. The collector backfills, at start, each policy whose definition has no rows
yet, over its current period (``[policy] backfill``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from netwarden.collector.store.schema import POLICY_USAGE, POLICY_USAGE_1D, POLICY_USAGE_1H
from netwarden.collector.store.sql import quote
from netwarden.logging import get_logger
from netwarden.policy.model import Policy
from netwarden.sensor.records import FlowBatch, nrows

from .match import exempt_dict, match_dict, policy_mask

if TYPE_CHECKING:
    from netwarden.collector.store import Store

__all__ = ["MINUTE_FLOW_COLUMNS", "UsageRollup", "backfill", "bucket_s", "definition_id",
           "flow_usage",
           "has_usage",
           "known_hosts", "read_minute_flows", "read_usage", "read_usages", "split_range",
           "usage_columns"]

log = get_logger("netwarden.collector.policy")

NS_PER_S = 1_000_000_000
MINUTE = 60
Columns = dict[str, np.ndarray]

# What the slow path reads from ``flows``, pre-aggregated per minute.
MINUTE_FLOW_COLUMNS = ("host", "minute", "direction", "ip_proto", "src_ip", "dst_ip",
                       "src_port", "dst_port", "app", "bytes", "packets")


@functools.lru_cache(maxsize=1024)
def definition_id(policy: Policy) -> str:
    """A digest of what ``policy`` counts (its matches and exemptions): 16 hex digits
    (cached: the ingest hook asks for every policy of every stored batch)."""
    text = json.dumps({"what": sorted((match_dict(m) for m in policy.what),
                                      key=lambda d: json.dumps(d, sort_keys=True)),
                       "exempt": exempt_dict(policy.exempt)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bucket_s(policy: Policy) -> int:
    """Seconds per ``policy_usage`` row of ``policy`` (see the module doc)."""
    length = policy.period.length
    if policy.period.kind == "fixed" and length is not None:
        return math.gcd(int(length.total_seconds()), MINUTE)
    return MINUTE


def _minute_sums(minutes: np.ndarray, nbytes: np.ndarray, packets: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys, inverse = np.unique(minutes, return_inverse=True)
    b = np.zeros(len(keys), dtype=np.uint64)
    p = np.zeros(len(keys), dtype=np.uint64)
    np.add.at(b, inverse, nbytes.astype(np.uint64, copy=False))
    np.add.at(p, inverse, packets.astype(np.uint64, copy=False))
    return keys.astype(np.uint32), b, p


def usage_columns(policies: Sequence[Policy], host: str, flows: Mapping[str, np.ndarray],
                  minutes: np.ndarray | None = None) -> Columns:
    """``policy_usage`` rows of one host's flow records (``minutes``: epoch second of
    each record's minute; when not given, each policy's bucket (:func:`bucket_s`) of
    ``start_ns``)."""
    parts: list[Columns] = []
    n = len(np.asarray(flows["layer"]))
    if n and policies:
        start_s = np.asarray(flows["start_ns"]) // NS_PER_S if minutes is None else None
        nbytes, packets = np.asarray(flows["bytes"]), np.asarray(flows["packets"])
        for policy in policies:
            mask = policy_mask(flows, policy)
            if not mask.any():
                continue
            if start_s is not None:
                size = bucket_s(policy)
                buckets = (start_s - start_s % size).astype(np.uint32)
            else:
                assert minutes is not None
                buckets = minutes
            ts, b, p = _minute_sums(buckets[mask], nbytes[mask], packets[mask])
            k = len(ts)
            parts.append({"policy": np.full(k, policy.name, dtype=object),
                          "definition": np.full(k, definition_id(policy), dtype=object),
                          "host": np.full(k, host, dtype=object),
                          "ts": ts, "bytes": b, "packets": p})
    if not parts:
        return {c.name: np.zeros(0, dtype=c.dtype) for c in POLICY_USAGE.columns}
    return {c.name: np.concatenate([part[c.name] for part in parts])
            for c in POLICY_USAGE.columns}


class UsageRollup:
    """The ingest hook: ``policy_usage`` rows for every group of stored batches."""

    def __init__(self, store: Store, policies: Sequence[Policy]) -> None:
        self.store = store
        self._policies = tuple(policies)
        self._lock = threading.Lock()
        self.rows = 0  # rows inserted since start
        self.failures = 0

    @property
    def policies(self) -> tuple[Policy, ...]:
        with self._lock:
            return self._policies

    def replace(self, policies: Sequence[Policy]) -> None:
        """Count for ``policies`` from the next stored batch on."""
        with self._lock:
            self._policies = tuple(policies)

    def __call__(self, stored: Sequence[tuple[str, FlowBatch]]) -> None:
        """Insert the usage rows of ``stored`` ((host, batch) pairs); never raises."""
        policies = self.policies
        if not policies:
            return
        try:
            parts = [usage_columns(policies, host, batch.flows)
                     for host, batch in stored if nrows(batch.flows)]
            parts = [p for p in parts if len(p["ts"])]
            if not parts:
                return
            cols = {c.name: np.concatenate([p[c.name] for p in parts])
                    for c in POLICY_USAGE.columns}
            self.store.insert(POLICY_USAGE, cols)
            self.rows += len(cols["ts"])
        except Exception as exc:  # the batches are stored; their usage is lost, say so
            self.failures += 1
            log.error("policy usage rows could not be stored", error=str(exc).splitlines()[0],
                      hosts=sorted({h for h, _ in stored}))


HOUR = 3_600
DAY = 86_400
# (table, bucket seconds) from coarsest to finest; the buckets are UTC (epoch-aligned).
TIERS: tuple[tuple[str, int], ...] = (
    (POLICY_USAGE_1D.name, DAY), (POLICY_USAGE_1H.name, HOUR), (POLICY_USAGE.name, 1))
Ranges = dict[str, list[tuple[int, int]]]


def split_range(lo: int, hi: int) -> Ranges:
    """``[lo, hi)`` as whole UTC days, whole hours at the edges and the rest: table name →
    half-open ranges of ``ts`` to sum in it (rows of a coarser table cover exactly the
    finer rows whose ``ts`` falls in their bucket, so the sums are those of the finest
    table over ``[lo, hi)``)."""
    out: Ranges = {name: [] for name, _ in TIERS}

    def cut(a: int, b: int, level: int) -> None:
        if a >= b:
            return
        name, size = TIERS[level]
        if size == 1:
            out[name].append((a, b))
            return
        first, last = -(-a // size) * size, b // size * size
        if first >= last:
            cut(a, b, level + 1)
            return
        out[name].append((first, last))
        cut(a, first, level + 1)
        cut(last, b, level + 1)

    cut(int(lo), int(hi), 0)
    return out


def read_usages(store: Store, periods: Sequence[tuple[Policy, int, int]], *,
                rollups: bool = True) -> dict[str, dict[str, int]]:
    """Bytes each policy counted per host in its ``[start_s, end_s)`` (``start_s`` rounded
    down to the policy's bucket, :func:`bucket_s`): policy name → host → bytes (hosts
    with no bytes left out). One query for every policy: whole UTC days from
    ``policy_usage_1d``, whole hours from ``policy_usage_1h``, the rest from
    ``policy_usage`` (:func:`split_range`); ``rollups=False`` sums ``policy_usage`` only
    (a store created before the rollups and opened without migrating)."""
    where: dict[str, list[str]] = {name: [] for name, _ in TIERS}
    for policy, start_s, end_s in periods:
        digest = definition_id(policy)
        lo, hi = _floor(start_s, bucket_s(policy)), int(end_s)
        ranges = split_range(lo, hi) if rollups else {POLICY_USAGE.name: [(lo, hi)]}
        for table, spans in ranges.items():
            if spans:
                when = " OR ".join(f"(ts >= toDateTime({a}) AND ts < toDateTime({b}))"
                                   for a, b in spans)
                where[table].append(f"(policy = {quote(policy.name)} AND definition = "
                                    f"{quote(digest)} AND ({when}))")
    # policy names are unique, and each one's condition names its definition
    selects = [f"SELECT policy, host, sum(bytes) AS b FROM {table}"
               f" WHERE {' OR '.join(conds)} GROUP BY policy, host"
               for table, conds in where.items() if conds]
    out: dict[str, dict[str, int]] = {policy.name: {} for policy, _, _ in periods}
    if not selects:
        return out
    for name, host, b in store.query(" UNION ALL ".join(selects)):
        per_host = out.get(str(name))
        if per_host is not None and int(b):
            per_host[str(host)] = per_host.get(str(host), 0) + int(b)
    return out


def read_usage(store: Store, policy: Policy, start_s: int, end_s: int) -> dict[str, int]:
    """Bytes ``policy`` counted per host in ``[start_s, end_s)`` (see :func:`read_usages`)."""
    return read_usages(store, [(policy, start_s, end_s)])[policy.name]


def has_usage(store: Store, policy: Policy) -> bool:
    """Whether ``policy_usage`` holds any row of ``policy``'s current definition."""
    rows = store.query(
        f"SELECT count() AS n FROM policy_usage WHERE policy = {quote(policy.name)}"
        f" AND definition = {quote(definition_id(policy))}")
    return bool(rows and int(rows[0][0]))


def known_hosts(store: Store, usage_table: str = POLICY_USAGE_1D.name) -> list[str]:
    """Every host the store knows: sensors in the batch ledger, hosts with policy usage
    (read from ``usage_table``: by default the daily rollup, which has every host of
    ``policy_usage`` in far fewer rows)."""
    rows = store.query("SELECT DISTINCT host FROM sensor_batches UNION ALL "
                       f"SELECT DISTINCT host FROM {usage_table}")
    return sorted({str(r[0]) for r in rows})


def _floor(ts: int, size: int = MINUTE) -> int:
    return int(ts) - int(ts) % size


def read_minute_flows(store: Store, start_s: int, end_s: int,
                      hosts: Iterable[str] = ()) -> Columns:
    """Layer-0 ``flows`` records in ``[start_s, end_s)``, summed per minute and flow key
    (the slow path; see the module doc). Columns: :data:`MINUTE_FLOW_COLUMNS`, plus
    ``layer`` (all 0)."""
    where = ["layer = 0", f"ts >= toDateTime({int(start_s)})",
             f"ts < toDateTime({int(end_s)})"]
    wanted = sorted(set(hosts))
    if wanted:
        where.append(f"host IN ({', '.join(quote(h) for h in wanted)})")
    rows = store.query(
        "SELECT host, toUInt32(toStartOfMinute(ts)) AS minute, direction, ip_proto, src_ip,"
        " dst_ip, src_port, dst_port, app, sum(bytes) AS b, sum(packets) AS p FROM flows"
        f" WHERE {' AND '.join(where)}"
        " GROUP BY host, minute, direction, ip_proto, src_ip, dst_ip, src_port, dst_port, app"
        " ORDER BY host, minute")
    n = len(rows)
    cols: Columns = {
        "host": np.array([r[0] for r in rows], dtype=object),
        "minute": np.array([r[1] for r in rows], dtype=np.uint32),
        "direction": np.array([r[2] for r in rows], dtype=np.uint8),
        "ip_proto": np.array([r[3] for r in rows], dtype=np.uint8),
        "src_ip": np.array([bytes(r[4]) for r in rows], dtype="S16"),
        "dst_ip": np.array([bytes(r[5]) for r in rows], dtype="S16"),
        "src_port": np.array([r[6] for r in rows], dtype=np.uint16),
        "dst_port": np.array([r[7] for r in rows], dtype=np.uint16),
        "app": np.array([r[8] for r in rows], dtype=object),
        "bytes": np.array([r[9] for r in rows], dtype=np.uint64),
        "packets": np.array([r[10] for r in rows], dtype=np.uint64),
        "layer": np.zeros(n, dtype=np.uint8),
    }
    if n == 0:
        cols["src_ip"] = np.zeros(0, dtype="S16")
        cols["dst_ip"] = np.zeros(0, dtype="S16")
    return cols


def _minute_usage(store: Store, policies: Sequence[Policy], start_s: int, end_s: int
                  ) -> Iterator[tuple[str, Columns]]:
    """``policy_usage`` rows of ``policies`` computed from raw ``flows`` in
    ``[start_s, end_s)``, per host (the slow path), read a day at a time so the Python
    rows stay bounded."""
    lo = _floor(start_s)
    while lo < end_s:
        hi = min(end_s, lo + DAY)
        cols = read_minute_flows(store, lo, hi)
        for host in sorted(set(cols["host"].tolist())):
            sel = cols["host"] == host
            part = {k: v[sel] for k, v in cols.items()}
            rows = usage_columns(policies, host, part, part["minute"])
            if len(rows["ts"]):
                yield host, rows
        lo = hi


def backfill(store: Store, policies: Sequence[Policy], start_s: int, end_s: int) -> int:
    """Compute ``policies``' ``policy_usage`` rows for ``[start_s, end_s)`` from raw
    ``flows`` and insert them; return the rows inserted. Run it only for a range the
    ingest hook has not counted for these policies (rows would add up)."""
    total = 0
    for _, rows in _minute_usage(store, policies, start_s, end_s):
        store.insert(POLICY_USAGE, rows)
        total += len(rows["ts"])
    return total


def flow_usage(store: Store, policy: Policy, start_s: int, end_s: int
               ) -> dict[str, dict[int, int]]:
    """Bytes ``policy`` counts per host and minute in ``[start_s, end_s)``, computed from
    raw ``flows`` (the slow path: policies the store has no usage rows for)."""
    out: dict[str, dict[int, int]] = {}
    for host, rows in _minute_usage(store, [policy], start_s, end_s):
        per_minute = out.setdefault(host, {})
        for ts, b in zip(rows["ts"].tolist(), rows["bytes"].tolist(), strict=True):
            per_minute[int(ts)] = per_minute.get(int(ts), 0) + int(b)
    return out
