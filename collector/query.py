"""Reports by name with JSON parameters: what the collector's Query RPC runs.

The ``netwarden report`` commands build the same ``(name, params)`` pair whether they
read a store themselves or ask a collector (``--collector``), so both paths run the same
code here. ``params`` is a JSON object::

    {"filters": {"since_ns": 1700000000000000000, "until_ns": null, "hosts": ["web1"]},
     "top": 10, "kind": "tcp", "interval_s": 60}

``filters`` is accepted by every report; ``top`` by conversations, talkers, ports, ttl,
usage (``null``: every pair), transport, geo, processes and apps; ``kind`` by conversations;
``interval_s`` by io; ``step_s`` by timeline; ``by`` (``country``/``asn``) by geo and
(``app``/``name``) by apps. Anything else, or a
value of the wrong type, is a :class:`~netwarden.errors.UsageError` naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from netwarden.collector.reports import (
    ConversationsParams,
    Filters,
    IoParams,
    ProtocolsParams,
    QueryStore,
    ReportResult,
    TopParams,
    conversations,
    io,
    ports,
    protocols,
    talkers,
)
from netwarden.collector.reports.apps import AppsParams, apps
from netwarden.collector.reports.geo import GeoParams, geo
from netwarden.collector.reports.processes import processes
from netwarden.collector.reports.protocol_counts import ProtocolCountsParams, protocol_counts
from netwarden.collector.reports.sizes import SizesParams, sizes
from netwarden.collector.reports.timeline import TimelineParams, timeline
from netwarden.collector.reports.transport import transport
from netwarden.collector.reports.ttl import TtlParams, ttl
from netwarden.collector.reports.usage import usage
from netwarden.errors import UsageError

__all__ = ["REPORTS", "filters_json", "has_records", "result_from_json", "result_json",
           "run_report"]

_Runner = Callable[[QueryStore, Filters, Mapping[str, Any]], ReportResult]


def _conversations(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return conversations(store, ConversationsParams(
        kind=p.get("kind", "ip"), filters=filters, top=p.get("top")))


def _protocols(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return protocols(store, ProtocolsParams(filters=filters))


def _io(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return io(store, IoParams(filters=filters, interval_s=p.get("interval_s")))


def _talkers(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return talkers(store, TopParams(filters=filters, top=p.get("top", 10)))


def _ports(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return ports(store, TopParams(filters=filters, top=p.get("top", 10)))


def _ttl(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return ttl(store, TtlParams(filters=filters, top=p.get("top", 10)))


def _sizes(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return sizes(store, SizesParams(filters=filters))


def _usage(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return usage(store, TopParams(filters=filters, top=p.get("top", 10)))


def _timeline(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return timeline(store, TimelineParams(filters=filters, step_s=p.get("step_s") or 60))


def _transport(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return transport(store, TopParams(filters=filters, top=p.get("top", 10)))


def _geo(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return geo(store, GeoParams(filters=filters, top=p.get("top", 10),
                                by=p.get("by") or "country"))


def _processes(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return processes(store, TopParams(filters=filters, top=p.get("top", 10)))


def _apps(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return apps(store, AppsParams(filters=filters, top=p.get("top", 10),
                                  by=p.get("by") or "app"))


def _protocol_counts(store: QueryStore, filters: Filters, p: Mapping[str, Any]) -> ReportResult:
    return protocol_counts(store, ProtocolCountsParams(filters=filters))


# name -> (runner, accepted keys besides "filters", with their types)
REPORTS: Final[dict[str, tuple[_Runner, dict[str, type]]]] = {
    "conversations": (_conversations, {"kind": str, "top": int}),
    "protocols": (_protocols, {}),
    "io": (_io, {"interval_s": int}),
    "talkers": (_talkers, {"top": int}),
    "ports": (_ports, {"top": int}),
    "ttl": (_ttl, {"top": int}),
    "sizes": (_sizes, {}),
    "usage": (_usage, {"top": int}),
    "timeline": (_timeline, {"step_s": int}),
    "transport": (_transport, {"top": int}),
    "protocol_counts": (_protocol_counts, {}),
    "processes": (_processes, {"top": int}),
    "geo": (_geo, {"top": int, "by": str}),
    "apps": (_apps, {"top": int, "by": str}),
}


def filters_json(filters: Filters) -> dict[str, Any]:
    """``filters`` as the ``params["filters"]`` object."""
    return {"since_ns": filters.since_ns, "until_ns": filters.until_ns,
            "hosts": list(filters.hosts)}


def _int_or_none(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"report parameters: {key}: expected an integer or null, "
                         f"got {value!r}")
    return value


def _filters(value: Any) -> Filters:
    if value is None:
        return Filters()
    if not isinstance(value, Mapping):
        raise UsageError(f"report parameters: filters: expected an object, got {value!r}")
    unknown = sorted(set(value) - {"since_ns", "until_ns", "hosts"})
    if unknown:
        raise UsageError(f"report parameters: filters.{unknown[0]}: unknown key")
    hosts = value.get("hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise UsageError(f"report parameters: filters.hosts: expected a list of host names, "
                         f"got {hosts!r}")
    try:
        return Filters(since_ns=_int_or_none("filters.since_ns", value.get("since_ns")),
                       until_ns=_int_or_none("filters.until_ns", value.get("until_ns")),
                       hosts=tuple(hosts))
    except ValueError as exc:
        raise UsageError(f"--since/--until: {exc}") from None


def run_report(store: QueryStore, name: str, params: Mapping[str, Any]) -> ReportResult:
    """Run report ``name`` with ``params`` (see the module doc) on ``store``."""
    if name not in REPORTS:
        raise UsageError(f"unknown report {name!r}: expected one of {', '.join(REPORTS)}")
    runner, accepted = REPORTS[name]
    if not isinstance(params, Mapping):
        raise UsageError(f"report parameters: expected a JSON object, got {params!r}")
    for key, value in params.items():
        if key == "filters":
            continue
        if key not in accepted:
            raise UsageError(f"report parameters: {key}: unknown key for report {name}")
        want = accepted[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, want)):
            raise UsageError(f"report parameters: {key}: expected {want.__name__}, "
                             f"got {value!r}")
    filters = _filters(params.get("filters"))
    try:
        return runner(store, filters, params)
    except ValueError as exc:  # the params dataclasses check ranges
        raise UsageError(f"report parameters: {exc}") from None


def has_records(store: QueryStore) -> bool:
    """Whether the store holds any flow record (reports of an empty store are refused)."""
    rows = store.query("SELECT count() AS record_count FROM flows")
    return bool(rows) and bool(int(rows[0][0]))


def result_json(result: ReportResult) -> str:
    """The report's JSON text (``ReportResult.to_json``), exact numbers."""
    return json.dumps(result.to_json())


def result_from_json(text: str, columns: list[str]) -> ReportResult:
    """The :class:`ReportResult` of :func:`result_json` text and the column list."""
    data = json.loads(text)
    if not isinstance(data, dict) or not {"report", "filters", "rows"} <= set(data):
        raise ValueError("not a report: expected an object with report, filters and rows")
    report = data.pop("report")
    filters = data.pop("filters")
    rows = data.pop("rows")
    return ReportResult(report=report, filters=filters, rows=rows, columns=list(columns),
                        meta=data)
