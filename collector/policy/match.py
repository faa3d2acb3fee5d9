"""Which flow records a policy counts, and which hosts it selects.

Records are the store's flow columns (``sensor/records.py`` FLOW_COLUMNS): numpy arrays,
addresses 16 bytes with IPv4 mapped into IPv6. Every test here is vectorised.

Counting rules (the same at ingest, in the backfill and in ``policy simulate``):

* only ``layer = 0`` records (the outermost IP header) count, their ``bytes`` being
  frame bytes, as everywhere else in netwarden;
* ``direction`` (a :class:`~netwarden.policy.model.Match` field): ``in`` is direction 1,
  ``out`` direction 2, ``both`` anything but 3 (*local*: both ends are the host's own
  addresses, which is no data use). Records of direction 0 (*other*: the sensor did not
  know its host's addresses, e.g. an analysed capture) count for ``both`` only;
* ``remote`` is the source of received and the destination of sent records; for
  direction 0 either end may be the remote one, so either may match;
* ``ports`` match the source or the destination port, of TCP and UDP records only;
* ``icmp`` is IP protocol 1 or 58 (ICMPv6);
* ``apps`` compares the record's ``app`` label;
* a policy counts a record when any of its matches accepts it and no exemption applies
  (exempt networks: either address; exempt ports: either port, TCP and UDP only).

Hosts (:func:`selected_hosts`): names and shell globs (``fnmatchcase``), groups, and
labels. Sensors do not report labels yet, so a label selector matches nothing unless the
collector is given a host → labels map (``[policy] labels``).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from netwarden.policy.model import Exemptions, Match, Network, Policy, PolicySet, PortRange

__all__ = ["HostLabels", "exempt_dict", "exempt_mask", "match_dict", "match_mask", "network_mask", "policy_mask", "port_mask",
           "selected_hosts", "split_addresses"]

HostLabels = Mapping[str, Mapping[str, str]]

IN, OUT, LOCAL = 1, 2, 3
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
_PROTOS: dict[str, tuple[int, ...]] = {"tcp": (TCP,), "udp": (UDP,), "icmp": (ICMP, ICMP6)}
_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, the high 64 bits are 0, the low start with ffff

BoolArray = npt.NDArray[np.bool_]
Cols = Mapping[str, np.ndarray]


def split_addresses(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """16-byte addresses as two big-endian ``uint64`` arrays: high and low halves."""
    arr = np.ascontiguousarray(np.asarray(values, dtype="S16"))
    pairs = arr.view(">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def _net128(net: Network) -> tuple[int, int]:
    """(first address as a 128-bit int, prefix length) in the mapped IPv6 space."""
    if isinstance(net, ipaddress.IPv4Network):
        return _MAPPED | int(net.network_address), 96 + net.prefixlen
    return int(net.network_address), net.prefixlen


def network_mask(hi: np.ndarray, lo: np.ndarray, networks: Sequence[Network]) -> BoolArray:
    """True where the address (``split_addresses`` halves) lies in one of ``networks``."""
    out = np.zeros(len(hi), dtype=bool)
    all_ones = (1 << 64) - 1
    for net in networks:
        first, plen = _net128(net)
        net_hi, net_lo = first >> 64, first & all_ones
        mask_hi = all_ones ^ ((1 << (64 - min(plen, 64))) - 1) if plen else 0
        mask_lo = all_ones ^ ((1 << (128 - plen)) - 1) if plen > 64 else 0
        hit = (hi & np.uint64(mask_hi)) == np.uint64(net_hi & mask_hi)
        if mask_lo:
            hit &= (lo & np.uint64(mask_lo)) == np.uint64(net_lo & mask_lo)
        out |= hit
    return out


def port_mask(cols: Cols, ranges: Sequence[PortRange]) -> BoolArray:
    """True for TCP/UDP records whose source or destination port is in one of ``ranges``."""
    proto = np.asarray(cols["ip_proto"])
    sport = np.asarray(cols["src_port"])
    dport = np.asarray(cols["dst_port"])
    hit = np.zeros(len(proto), dtype=bool)
    for r in ranges:
        hit |= ((sport >= r.low) & (sport <= r.high)) | ((dport >= r.low) & (dport <= r.high))
    out: BoolArray = hit & ((proto == TCP) | (proto == UDP))
    return out


class _Addresses:
    """The split addresses of a column set, computed once."""

    def __init__(self, cols: Cols) -> None:
        self.src = split_addresses(cols["src_ip"])
        self.dst = split_addresses(cols["dst_ip"])

    def src_in(self, nets: Sequence[Network]) -> BoolArray:
        return network_mask(*self.src, nets)

    def dst_in(self, nets: Sequence[Network]) -> BoolArray:
        return network_mask(*self.dst, nets)


def match_mask(cols: Cols, match: Match, addresses: _Addresses | None = None) -> BoolArray:
    """True for the records ``match`` accepts (layer and exemptions not applied)."""
    direction = np.asarray(cols["direction"])
    n = len(direction)
    hit = np.ones(n, dtype=bool)
    if match.direction == "in":
        hit &= direction == IN
    elif match.direction == "out":
        hit &= direction == OUT
    else:
        hit &= direction != LOCAL
    if "any" not in match.protocols:
        proto = np.asarray(cols["ip_proto"])
        wanted = [p for name in match.protocols for p in _PROTOS[name]]
        hit &= np.isin(proto, np.array(wanted, dtype=proto.dtype))
    if match.ports:
        hit &= port_mask(cols, match.ports)
    if match.apps:
        app = np.asarray(cols["app"], dtype=object)
        hit &= np.isin(app, np.array(list(match.apps), dtype=object))
    if match.dst or match.src or match.remote:
        addr = addresses or _Addresses(cols)
        if match.dst:
            hit &= addr.dst_in(match.dst)
        if match.src:
            hit &= addr.src_in(match.src)
        if match.remote:
            src_in, dst_in = addr.src_in(match.remote), addr.dst_in(match.remote)
            hit &= np.where(direction == IN, src_in,
                            np.where(direction == OUT, dst_in, src_in | dst_in))
    return hit


def exempt_mask(cols: Cols, exempt: Exemptions, addresses: _Addresses | None = None
                ) -> BoolArray:
    """True for records an exemption covers."""
    n = len(np.asarray(cols["direction"]))
    out = np.zeros(n, dtype=bool)
    if exempt.networks:
        addr = addresses or _Addresses(cols)
        out |= addr.src_in(exempt.networks) | addr.dst_in(exempt.networks)
    if exempt.ports:
        out |= port_mask(cols, exempt.ports)
    return out


def policy_mask(cols: Cols, policy: Policy) -> BoolArray:
    """True for the records ``policy`` counts: layer 0, any match, no exemption."""
    layer = np.asarray(cols["layer"])
    hit: BoolArray = np.asarray(layer == 0, dtype=bool)
    if not hit.any():
        return hit
    needs_addresses = bool(policy.exempt.networks) or any(
        m.dst or m.src or m.remote for m in policy.what)
    addresses = _Addresses(cols) if needs_addresses else None
    any_match = np.zeros(len(layer), dtype=bool)
    for match in policy.what:
        any_match |= match_mask(cols, match, addresses)
    out: BoolArray = hit & any_match & ~exempt_mask(cols, policy.exempt, addresses)
    return out


def selected_hosts(policy: Policy, policies: PolicySet, hosts: Iterable[str],
                   labels: HostLabels | None = None) -> list[str]:
    """The hosts among ``hosts`` that ``policy`` applies to, sorted."""
    labels = labels or {}
    who = policy.who
    out: set[str] = set()
    groups = [policies.group(g) for g in who.groups]
    for host in hosts:
        if who.fleet:
            out.add(host)
            continue
        own = labels.get(host, {})
        if any(fnmatch.fnmatchcase(host, pattern) for pattern in who.hosts) or \
                (who.labels and all(own.get(k) == v for k, v in who.labels)):
            out.add(host)
            continue
        for group in groups:
            if any(fnmatch.fnmatchcase(host, p) for p in group.hosts) or \
                    (group.labels and all(own.get(k) == v for k, v in group.labels)):
                out.add(host)
                break
    return sorted(out)


def _nets(nets: Sequence[Network]) -> list[str]:
    return sorted({str(n) for n in nets})


def _ports(ports: Sequence[PortRange]) -> list[list[int]]:
    return [[low, high] for low, high in sorted({(p.low, p.high) for p in ports})]


def match_dict(match: Match) -> dict[str, object]:
    """A canonical, JSON-ready form of ``match`` (sorted, duplicates removed)."""
    return {"direction": match.direction, "protocols": sorted(set(match.protocols)),
            "ports": _ports(match.ports), "dst": _nets(match.dst), "src": _nets(match.src),
            "remote": _nets(match.remote), "apps": sorted(set(match.apps))}


def exempt_dict(exempt: Exemptions) -> dict[str, object]:
    """A canonical, JSON-ready form of ``exempt``."""
    return {"networks": _nets(exempt.networks), "ports": _ports(exempt.ports)}
