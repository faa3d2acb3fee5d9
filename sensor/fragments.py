"""IP reassembly, as far as the flow accounting needs it.

tshark reassembles IPv4 and IPv6 datagrams (on by default) and dissects the TCP/UDP
header only in the frame that completes a datagram, with that frame's length. So a
fragmented UDP datagram appears once in ``conv,udp`` and in the port rankings, in its
last-arriving fragment. To count the same way, the decoder hands every fragment here;
when a datagram is complete this module builds it as a plain IP packet (the completing
frame's header, fragment fields cleared, then the whole payload), which the decoder
decodes again at the same layer.

Fragments are rare, so this is plain Python over the few packets that need it. State is
kept across batches, bounded by ``max_pending`` datagrams (oldest dropped first).
"""

from __future__ import annotations

import dataclasses
import struct
from collections import OrderedDict

import numpy as np

from netwarden.sensor.decode import Events


@dataclasses.dataclass
class Reassembled:
    """A completed datagram: which event completed it, and the rebuilt packet."""

    event: int  # index into the fragment events handed to :meth:`Reassembler.add`
    packet: bytes
    version: int


@dataclasses.dataclass
class _Datagram:
    parts: dict[int, bytes] = dataclasses.field(default_factory=dict)
    total: int | None = None


class Reassembler:
    def __init__(self, max_pending: int = 65536) -> None:
        self._pending: OrderedDict[tuple[object, ...], _Datagram] = OrderedDict()
        self._max = max_pending

    def add(self, buf: np.ndarray, end: np.ndarray, ev: Events) -> list[Reassembled]:
        """Feed fragment events (in frame order); return the datagrams they complete.

        ``end`` is the absolute end of each event's captured data in ``buf``.
        """
        done: list[Reassembled] = []
        raw = buf
        for i in range(len(ev)):
            start = int(ev.payload_pos[i])
            want = max(int(ev.payload_len[i]), 0)
            have = max(min(want, int(end[i]) - start), 0)
            if have < want:  # cut by the snaplen: tshark leaves it out of the reassembly
                continue
            # tshark's IPv4 key includes the protocol; IPv6's is addresses and id only
            proto = int(ev.ip_proto[i]) if ev.ip_version[i] == 4 else -1
            key = (int(ev.ip_version[i]), int(ev.src_hi[i]), int(ev.src_lo[i]),
                   int(ev.dst_hi[i]), int(ev.dst_lo[i]), int(ev.frag_id[i]), proto)
            d = self._pending.get(key)
            if d is None:
                d = _Datagram()
                self._pending[key] = d
                if len(self._pending) > self._max:
                    self._pending.popitem(last=False)
            off = int(ev.frag_off[i])
            d.parts[off] = bytes(raw[start:start + have])
            if not ev.frag_more[i]:
                d.total = off + want
            if d.total is None:
                continue
            payload = _contiguous(d.parts, d.total)
            if payload is None:
                continue
            del self._pending[key]
            hdr = bytes(raw[int(ev.hdr_pos[i]):int(ev.hdr_pos[i]) + 40])
            done.append(Reassembled(i, _rebuild(hdr, int(ev.ip_version[i]),
                                                int(ev.ip_proto[i]), payload),
                                    int(ev.ip_version[i])))
        return done


def _contiguous(parts: dict[int, bytes], total: int) -> bytes | None:
    out = bytearray(total)
    covered = 0
    for off in sorted(parts):
        data = parts[off]
        if off > covered:
            return None
        end = off + len(data)
        if end > covered:
            out[off:min(end, total)] = data[: max(0, min(end, total) - off)]
            covered = end
    if covered < total:
        return None
    return bytes(out)


def _rebuild(hdr: bytes, version: int, proto: int, payload: bytes) -> bytes:
    if version == 4:
        h = bytearray(hdr[:20])
        h[0] = 0x45
        struct.pack_into("!H", h, 2, min(20 + len(payload), 0xFFFF))
        struct.pack_into("!H", h, 6, 0)
        h[9] = proto
        return bytes(h) + payload
    h = bytearray(hdr[:40])
    struct.pack_into("!H", h, 4, min(len(payload), 0xFFFF))
    h[6] = proto
    return bytes(h) + payload
