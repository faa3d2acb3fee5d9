"""pcapng blocks written for tshark, read back by the capture reader (sensor/pcapfile.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netwarden.sensor.pcapfile import read_index
from netwarden.sensor.pcapngwriter import SHB, enhanced_packets, idb


def test_blocks_read_back_with_their_metadata(tmp_path: Path) -> None:
    # three packets in one buffer, not in buffer order, lengths 5, 4 and 1 (padding 3, 0, 3)
    buf = np.frombuffer(b"xxABCDEyyWXYZzQ", dtype=np.uint8)
    offset = np.array([9, 2, 14], np.int64)
    caplen = np.array([4, 5, 1], np.uint32)
    wirelen = np.array([60, 5, 1500], np.uint32)
    ts_ns = np.array([1_700_000_000_123_456_789, 1_700_000_001_000_000_001, 5], np.int64)
    iface = np.array([0, 1, 0], np.uint32)
    blocks = enhanced_packets(buf, offset, caplen, wirelen, ts_ns, iface)
    assert len(blocks) == (32 + 4) + (32 + 8) + (32 + 4)
    path = tmp_path / "out.pcapng"
    path.write_bytes(SHB + idb(1) + idb(101) + blocks.tobytes())

    index = read_index(path)
    assert index.format == "pcapng" and index.warnings == []
    assert [bytes(index.buf[o:o + c]) for o, c in zip(index.offset.tolist(),
                                                       index.caplen.tolist(), strict=True)] \
        == [b"WXYZ", b"ABCDE", b"Q"]
    assert index.wirelen.tolist() == [60, 5, 1500]
    assert index.ts_ns.tolist() == ts_ns.tolist()
    assert index.linktype.tolist() == [1, 101, 1]


def test_no_packets_no_blocks() -> None:
    none = np.zeros(0, np.int64)
    assert len(enhanced_packets(np.zeros(0, np.uint8), none, none, none, none, none)) == 0
