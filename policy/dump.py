"""Writing a :class:`PolicySet` back as a policy file, every default spelled out.

:func:`dump_policies` gives YAML that :func:`~netwarden.policy.load.load_policies` reads
to an equal :class:`PolicySet`: quantities are written exactly in the largest unit that
fits (``10 GiB``, ``2 Mbit/s``, ``30d``), every key of every policy is present (``what``
always as a list) and group references are kept, so the dump shows what the collector
will enforce.
"""

from __future__ import annotations

from typing import Any

import yaml

from .model import (
    WEEKDAYS,
    Exemptions,
    HostGroup,
    Match,
    Period,
    Policy,
    PolicySet,
    PortRange,
    Tier,
)
from .units import format_bytes, format_duration, format_percent, format_rate

__all__ = ["dump_policies", "group_document", "policy_document"]


class _Flow(list[Any]):
    """A list of scalars, written on one line (``[udp]``)."""


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key; short lists of scalars on one line."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def dump_policies(policies: PolicySet) -> str:
    """The whole set as one YAML document (``groups`` then ``policies``)."""
    doc: dict[str, Any] = {}
    if policies.groups:
        doc["groups"] = {g.name: group_document(g) for g in policies.groups}
    if policies.policies:
        doc["policies"] = {p.name: policy_document(p) for p in policies.policies}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)


def group_document(g: HostGroup) -> dict[str, Any]:
    """One group as plain data."""
    out: dict[str, Any] = {}
    if g.description:
        out["description"] = g.description
    if g.hosts:
        out["hosts"] = _Flow(g.hosts)
    if g.labels:
        out["labels"] = dict(g.labels)
    return out


def policy_document(p: Policy) -> dict[str, Any]:
    """One policy as plain data with every default filled in."""
    out: dict[str, Any] = {}
    if p.description:
        out["description"] = p.description
    who: dict[str, Any] = {}
    if p.who.fleet:
        who["fleet"] = True
    if p.who.hosts:
        who["hosts"] = _Flow(p.who.hosts)
    if p.who.labels:
        who["labels"] = dict(p.who.labels)
    if p.who.groups:
        who["groups"] = _Flow(p.who.groups)
    out["who"] = who
    out["what"] = [_match(m) for m in p.what]
    out["quota"] = format_bytes(p.quota)
    out["scope"] = p.scope
    out["period"] = _period(p.period)
    out["tiers"] = [_tier(t) for t in p.tiers]
    out["exempt"] = _exempt(p.exempt)
    return out


def _match(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"direction": m.direction}
    for key in ("dst", "src", "remote"):
        nets = getattr(m, key)
        if nets:
            out[key] = [str(n) for n in nets]
    if m.ports:
        out["ports"] = _Flow(_port(p) for p in m.ports)
    out["protocols"] = _Flow(m.protocols)
    if m.apps:
        out["apps"] = _Flow(m.apps)
    return out


def _port(p: PortRange) -> int | str:
    return int(p.low) if p.low == p.high else str(p)


def _period(p: Period) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": p.kind}
    if p.time_zone is not None:
        out["time_zone"] = p.time_zone
    if p.kind == "monthly":
        out["reset_day"] = p.reset_day
    if p.kind == "weekly" and p.reset_weekday is not None:
        out["reset_weekday"] = WEEKDAYS[p.reset_weekday]
    if p.window is not None:
        out["window"] = format_duration(p.window)
    if p.length is not None:
        out["length"] = format_duration(p.length)
    return out


def _tier(t: Tier) -> dict[str, Any]:
    out: dict[str, Any] = {"at": format_percent(t.at), "action": t.action}
    if t.rate is not None:
        out["rate"] = format_rate(t.rate)
    if t.mode is not None:
        out["mode"] = t.mode
    return out


def _exempt(e: Exemptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.networks:
        out["networks"] = [str(n) for n in e.networks]
    if e.ports:
        out["ports"] = _Flow(_port(p) for p in e.ports)
    return out
