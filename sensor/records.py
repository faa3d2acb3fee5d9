"""The sensor's output: per-interval flow records and their companions, as columns.

A :class:`FlowBatch` is what one sensor emits for a set of intervals. Every table is a
dict of equal-length numpy arrays (columnar, so the store can insert it without a
per-row loop). The same shapes travel over gRPC (issue 3) and into ClickHouse.

Flow records are *unidirectional*: one record per (interval, layer, source, destination,
ports, protocol, stream). Counting rules follow tshark's conversation taps:

* ``layer`` is the depth of the IP header the record describes: 0 is the outermost IP
  header of the frame (or the frame itself when it carries no IP at all), 1 the first
  tunnelled header, and so on. Totals, io rows, talkers and ports read ``layer = 0``;
  conversation tables read every layer, because tshark adds a tunnelled frame to the
  outer and to every inner conversation.
* ``tap`` says which conversation tables the record feeds: bit ``TAP_IP`` for
  ``conv,ip``/``conv,ipv6``, bit ``TAP_L4`` for ``conv,tcp``/``conv,udp``. A non-final
  IPv6 fragment has neither (tshark taps only the reassembling frame); a non-final IPv4
  fragment has ``TAP_IP`` only; the frame that completes reassembly has both.
  ``TAP_OUTER_L4`` marks the record whose TCP/UDP header is the outermost one of its
  frames, which is what the port rankings credit; ``TAP_FIRST_V4``/``TAP_FIRST_V6`` mark
  the frame's outermost IPv4/IPv6 header, whose TTL/hop limit the TTL statistics take
  (tshark's first ``ip.ttl``/``ipv6.hlim`` of the frame). ``tap`` is part of the key.
* ``stream`` identifies a TCP/UDP conversation the way ``tcp.stream``/``udp.stream`` do:
  the frame number of its first packet, shared by both directions. 0 when no L4 tap.
* ``first_frame`` is the capture-wide number (1-based) of the record's first packet, so
  reports can name side A of a conversation as tshark does (source of the first packet)
  even when timestamps go backwards.
* ``direction`` is relative to the sensor's host: see :class:`Direction`.
* Bytes are frame lengths (``frame.len``: the original length on the wire, link-layer
  header included), never captured or IP lengths.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

TAP_IP: Final = 1  # feeds conv,ip / conv,ipv6
TAP_L4: Final = 2  # feeds conv,tcp / conv,udp
TAP_OUTER_L4: Final = 4  # this L4 header is the frame's outermost TCP/UDP header (port rankings)
TAP_FIRST_V4: Final = 8  # this is the frame's outermost IPv4 header (TTL statistics)
TAP_FIRST_V6: Final = 16  # this is the frame's outermost IPv6 header (hop-limit statistics)


class Direction(enum.IntEnum):
    """Direction of a record relative to the sensor's host."""

    OTHER = 0  # neither address is the host's (or the host's addresses are unknown)
    IN = 1  # destination is the host
    OUT = 2  # source is the host
    LOCAL = 3  # both are the host


# name -> numpy dtype, in store column order. Addresses are 16 bytes, IPv4 mapped
# into IPv6 (::ffff:a.b.c.d); a non-IP record has all-zero addresses.
FLOW_COLUMNS: Final[Mapping[str, npt.DTypeLike]] = {
    "start_ns": np.int64,  # interval start, ns since the epoch
    "ip_version": np.uint8,  # 0 (not IP), 4, 6
    "src_ip": "S16",
    "dst_ip": "S16",
    "src_port": np.uint16,
    "dst_port": np.uint16,
    "ip_proto": np.uint8,
    "ethertype": np.uint16,  # link-layer type of the frame's payload (0x0800, 0x0806, ...)
    "direction": np.uint8,
    "layer": np.uint8,
    "tap": np.uint8,
    "stream": np.uint64,
    "first_frame": np.uint64,
    "packets": np.uint64,
    "bytes": np.uint64,
    "first_seen": np.int64,  # ns since the epoch
    "last_seen": np.int64,
    "ttl_min": np.uint8,  # TTL / hop limit of this record's IP header
    "ttl_max": np.uint8,
    "ttl_sum": np.uint64,
    "ttl_sq": np.uint64,  # sum of squares
    "tcp_flags": np.uint16,  # OR of the flags seen
    # enrichment (see sensor/enrich.py): filled after accounting, "" / 0 when unknown
    "app": object,  # app label, from the rules file (e.g. "youtube"), the name or the port
    "app_name": object,  # the server name the label came from (SNI or DNS answer)
    "app_source": object,  # where the label came from: "tls", "quic", "dns", "port" or ""
    "process": object,  # owning local process (comm name), live sensors only
    "pid": np.uint32,
}

# Protocol hierarchy: frames whose top-level dissection chain is exactly ``path``
# ("eth:ip:tcp:http", tshark's io,phs names, the "frame" root left out). A node of
# tshark's tree counts every frame whose chain starts with the node's path, so these
# rows rebuild the tree exactly for any set of intervals.
CHAIN_COLUMNS: Final[Mapping[str, npt.DTypeLike]] = {
    "start_ns": np.int64,
    "path": object,
    "frames": np.uint64,
    "bytes": np.uint64,
    # tshark lists siblings in the order they were first seen. ``order`` is a sort key
    # for that: a node sorts by the smallest ``order`` among the rows below it.
    "order": np.uint64,
}

# Packet sizes: exact frame-length histogram per interval and direction.
SIZE_COLUMNS: Final[Mapping[str, npt.DTypeLike]] = {
    "start_ns": np.int64,
    "direction": np.uint8,
    "frame_len": np.uint32,
    "packets": np.uint64,
}

# Capture statistics per interval.
STAT_COLUMNS: Final[Mapping[str, npt.DTypeLike]] = {
    "start_ns": np.int64,
    "packets": np.uint64,  # frames read
    "bytes": np.uint64,
    "dropped": np.uint64,  # kernel drops (live) / unreadable records (files)
    "not_dissected": np.uint64,  # frames the hierarchy pass did not see
    "source": object,  # file name or interface
    # process attribution (live): bytes of the interval's outermost-layer records that
    # involve this host (direction in/out/local), and the part of them a local process
    # was found for. Per interval, carried on the interval's first statistics row.
    "local_bytes": np.uint64,
    "process_bytes": np.uint64,
}

# Names seen by the app dissection (sensor/enrich.py), per interval: TLS/QUIC server
# names (ClientHello SNI, counted per occurrence as tshark's
# ``tls.handshake.extensions_server_name``) and DNS query names (once per frame that
# asks, as ``dns.qry.name``).
NAME_COLUMNS: Final[Mapping[str, npt.DTypeLike]] = {
    "start_ns": np.int64,
    "source": object,  # "tls", "quic" or "dns"
    "name": object,
    "frames": np.uint64,
}

Columns = dict[str, np.ndarray]


def empty(spec: Mapping[str, npt.DTypeLike], n: int = 0) -> Columns:
    """An all-zero table of ``n`` rows with the columns of ``spec``."""
    out: Columns = {}
    for name, dt in spec.items():
        if dt is object:
            out[name] = np.full(n, "", dtype=object)
        else:
            out[name] = np.zeros(n, dtype=dt)
    return out


def concat(spec: Mapping[str, npt.DTypeLike], parts: list[Columns]) -> Columns:
    """Concatenate tables of the same spec."""
    if not parts:
        return empty(spec)
    return {name: np.concatenate([p[name] for p in parts]) for name in spec}


def nrows(table: Columns) -> int:
    for v in table.values():
        return len(v)
    return 0


@dataclasses.dataclass
class FlowBatch:
    """Everything a sensor emits for a span of intervals."""

    host: str
    interval_s: int
    flows: Columns
    chains: Columns
    sizes: Columns
    stats: Columns
    names: Columns = dataclasses.field(default_factory=lambda: empty(NAME_COLUMNS))

    @classmethod
    def empty(cls, host: str, interval_s: int) -> FlowBatch:
        return cls(host, interval_s, empty(FLOW_COLUMNS), empty(CHAIN_COLUMNS),
                   empty(SIZE_COLUMNS), empty(STAT_COLUMNS), empty(NAME_COLUMNS))
