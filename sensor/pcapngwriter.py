"""Writing packets as pcapng blocks, for tshark to read (native byte order, ns timestamps).

Shared by the flow-head name dissection (sensor/headnames.py, one file per batch of heads)
and the live protocol hierarchy (sensor/livedissect.py, one file per interval, appended
to): a file is :data:`SHB`, an :func:`idb` per link type, then :func:`enhanced_packets`
blocks naming those interfaces by their order.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np

__all__ = ["SHB", "enhanced_packets", "idb"]

# section header block, no options
SHB: Final = struct.pack("=IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)


def idb(linktype: int) -> bytes:
    """An interface description block for ``linktype`` with if_tsresol = 9 (ns)."""
    return struct.pack("=IIHHI" "HHB3x" "HH" "I", 1, 32, linktype, 0, 262144,
                       9, 1, 9, 0, 0, 32)


def enhanced_packets(buf: np.ndarray, offset: np.ndarray, caplen: np.ndarray,
                     wirelen: np.ndarray, ts_ns: np.ndarray, iface: np.ndarray) -> np.ndarray:
    """The enhanced packet blocks (uint8) of the packets at ``offset`` in ``buf``, one
    per element of the equally long metadata arrays (``iface``: interface ids)."""
    cap = caplen.astype(np.int64)
    blen = 32 + cap + ((-cap) & 3)
    starts = np.zeros(len(cap), np.int64)
    np.cumsum(blen[:-1], out=starts[1:])
    out = np.zeros(int(blen.sum()), np.uint8)
    words = out.view(np.uint32)  # every block is a multiple of 4 bytes long
    w = starts // 4
    ts = ts_ns.astype(np.uint64)
    words[w] = 6  # enhanced packet block
    words[w + 1] = blen
    words[w + 2] = iface
    words[w + 3] = ts >> np.uint64(32)
    words[w + 4] = ts & np.uint64(0xFFFFFFFF)
    words[w + 5] = cap
    words[w + 6] = wirelen
    words[(starts + blen) // 4 - 1] = blen
    dst = out.data
    src = np.ascontiguousarray(buf, dtype=np.uint8).data
    for s, o, c in zip((starts + 28).tolist(), offset.tolist(), cap.tolist(), strict=True):
        dst[s:s + c] = src[o:o + c]
    return out
