"""TCP and UDP stream numbering, the way tshark's ``tcp.stream`` / ``udp.stream`` work.

A stream is named by the frame number of its first packet (both directions share it).
UDP: one stream per address/port 4-tuple. TCP: the same, except that a SYN (without ACK)
whose sequence number differs from the base sequence number already seen in its
direction starts a new stream on the same 4-tuple (tshark's "port numbers reused").

The work is vectorised: only the packets that can change a stream's state (the first
packet of each direction after each SYN, and the SYNs themselves) go through a Python
loop; every other packet inherits the stream of the packet before it on its 4-tuple.
"""

from __future__ import annotations

import numpy as np

from netwarden.sensor.decode import IPPROTO_TCP, Events
from netwarden.sensor.grouping import sort_groups

_SYN = 0x02
_ACK = 0x10
_MASK32 = 0xFFFFFFFF


class StreamTracker:
    """Keeps stream state across batches (one tracker per capture source)."""

    def __init__(self) -> None:
        # key -> [stream id, base set (dir 0), base (dir 0), base set (dir 1), base (dir 1)]
        self._state: dict[bytes, list[int]] = {}

    def __len__(self) -> int:
        return len(self._state)

    def assign(self, ev: Events, frame_no: np.ndarray) -> np.ndarray:
        """Stream id per event (0 where the event has no TCP/UDP ports).

        ``frame_no`` is the capture-wide frame number of each event's packet; events
        must be in frame order.
        """
        out = np.zeros(len(ev), np.uint64)
        sel = np.flatnonzero(ev.has_ports)
        if len(sel) == 0:
            return out
        proto = ev.ip_proto[sel].astype(np.uint64)
        s_hi, s_lo, d_hi, d_lo = ev.src_hi[sel], ev.src_lo[sel], ev.dst_hi[sel], ev.dst_lo[sel]
        sp = ev.src_port[sel].astype(np.uint64)
        dp = ev.dst_port[sel].astype(np.uint64)
        # canonical endpoint order: (addr, port) smaller first; dir = 1 if swapped
        swap = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sp > dp))))
        a_hi = np.where(swap, d_hi, s_hi)
        a_lo = np.where(swap, d_lo, s_lo)
        b_hi = np.where(swap, s_hi, d_hi)
        b_lo = np.where(swap, s_lo, d_lo)
        a_p = np.where(swap, dp, sp)
        b_p = np.where(swap, sp, dp)
        keys = np.stack([proto, a_hi, a_lo, a_p, b_hi, b_lo, b_p], axis=1)
        n = len(sel)
        # order by (4-tuple, position); a 4-tuple's events are then contiguous
        order, new_group = sort_groups([proto, a_hi, a_lo, a_p, b_hi, b_lo, b_p])
        flags = ev.tcp_flags[sel]
        is_tcp = ev.ip_proto[sel] == IPPROTO_TCP
        syn = is_tcp & ((flags & (_SYN | _ACK)) == _SYN)
        direction = swap.astype(np.int64)
        # segments restart at every SYN of the 4-tuple; the first event of each
        # direction in each segment may set a base sequence number
        syn_sorted = syn[order]
        seg = np.cumsum(syn_sorted | new_group)
        _, first_idx = np.unique(seg * 2 + direction[order], return_index=True)
        cand_sorted = syn_sorted | new_group
        cand_sorted[first_idx] = True
        cand = np.zeros(n, bool)
        cand[order] = cand_sorted
        # walk the candidates in frame order
        cidx = np.flatnonzero(cand)
        stream = np.zeros(n, np.uint64)
        width = keys.shape[1] * 8
        raw = np.ascontiguousarray(keys[cidx]).tobytes()
        c_syn = syn[cidx].tolist()
        c_tcp = is_tcp[cidx].tolist()
        c_dir = direction[cidx].tolist()
        c_seq = ev.tcp_seq[sel][cidx].tolist()
        c_fno = frame_no[sel][cidx].tolist()
        out_c = [0] * len(cidx)
        state = self._state
        for j in range(len(cidx)):
            key = raw[j * width:(j + 1) * width]
            st = state.get(key)
            if st is None:
                st = [c_fno[j], 0, 0, 0, 0]
                state[key] = st
            if c_tcp[j]:
                d = c_dir[j]
                s = c_seq[j]
                if c_syn[j] and st[1 + 2 * d] and s != st[2 + 2 * d]:
                    st = [c_fno[j], 0, 0, 0, 0]
                    state[key] = st
                if not st[1 + 2 * d]:
                    st[1 + 2 * d] = 1
                    st[2 + 2 * d] = s if c_syn[j] else (s - 1) & _MASK32
            out_c[j] = st[0]
        stream[cidx] = out_c
        # forward-fill within each 4-tuple (its first event is always a candidate)
        s_sorted = stream[order]
        c_sorted = cand[order]
        last = np.where(c_sorted, np.arange(n), 0)
        np.maximum.accumulate(last, out=last)
        stream[order] = s_sorted[last]
        out[sel] = stream
        return out
