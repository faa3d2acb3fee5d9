"""The pcap/pcapng reader on hand-built files, checked against the real tshark where cheap."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fixtures.packets import (
    ET_IPV6,
    LT_ETHERNET,
    LT_NULL,
    LT_RAW,
    LT_SLL,
    LT_SLL2,
    TSHARK,
    UDP,
    Frame,
    Interface,
    cut,
    ethernet,
    ipv4,
    ipv6,
    needs_tshark,
    null,
    pcap_bytes,
    pcapng_bytes,
    sll,
    sll2,
    tshark_fields,
    udp,
    write_pcap,
    write_pcapng,
)

from netwarden.errors import InputError
from netwarden.sensor.pcapfile import MAX_PACKET, NotACapture, read_index

T0 = 1_700_000_000_123_456_789  # ns, with a sub-microsecond part
A, B = "192.0.2.1", "198.51.100.2"


def _packet(i: int) -> bytes:
    return ethernet(ipv4(A, B, UDP, udp(1000 + i, 53, b"q" * (10 + i))))


def _records(n: int = 3) -> list[Frame]:
    return [Frame(_packet(i), T0 + i * 1_000_001_001) for i in range(n)]


def _data(idx: object, i: int) -> bytes:
    buf, off, cap = idx.buf, int(idx.offset[i]), int(idx.caplen[i])  # type: ignore[attr-defined]
    return bytes(buf[off:off + cap])


def _tshark_rc_and_stderr(path: Path) -> tuple[int, str, int]:
    assert TSHARK is not None
    res = subprocess.run([TSHARK, "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60, check=False)
    return res.returncode, res.stderr, len(res.stdout.splitlines())


# --------------------------------------------------------------------------- pcap


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nanos: bool) -> None:
    recs = _records()
    recs[1] = cut(recs[1].data, 40, recs[1].ts_ns)  # snaplen-truncated: caplen < len
    path = write_pcap(tmp_path / "x.pcap", recs, LT_SLL, endian=endian, nanos=nanos)
    idx = read_index(path)
    assert idx.format == "pcap" and idx.warnings == [] and len(idx) == 3
    want_ts = [r.ts_ns if nanos else r.ts_ns // 1000 * 1000 for r in recs]
    assert idx.ts_ns.tolist() == want_ts
    assert idx.caplen.tolist() == [len(r.data) for r in recs]
    assert idx.wirelen.tolist() == [r.orig for r in recs]
    assert idx.caplen[1] == 40 < idx.wirelen[1]
    assert idx.linktype.tolist() == [LT_SLL] * 3
    assert [_data(idx, i) for i in range(3)] == [r.data for r in recs]
    assert idx.ts_ns.dtype == np.int64 and idx.offset.dtype == np.int64


@needs_tshark
@pytest.mark.parametrize(("endian", "nanos"), [(">", True), ("<", False)])
def test_pcap_times_and_lengths_equal_tsharks(tmp_path: Path, endian: str, nanos: bool) -> None:
    recs = _records()
    recs[2] = cut(recs[2].data, 30, recs[2].ts_ns)
    path = write_pcap(tmp_path / "x.pcap", recs, endian=endian, nanos=nanos)
    idx = read_index(path)
    rows = tshark_fields(path, ["frame.time_epoch", "frame.len", "frame.cap_len"])
    assert len(rows) == len(idx)
    for i, (epoch, flen, clen) in enumerate(rows):
        sec, _, frac = epoch.partition(".")
        assert int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")) == idx.ts_ns[i]
        assert (int(flen), int(clen)) == (idx.wirelen[i], idx.caplen[i])


def test_modified_pcap_magic_has_24_byte_record_headers(tmp_path: Path) -> None:
    data = _packet(0)
    head = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, LT_ETHERNET)
    rec = struct.pack("<IIII", 5, 6, len(data), len(data)) + b"\0" * 8 + data
    path = tmp_path / "kuznetzov.pcap"
    path.write_bytes(head + rec + rec)
    idx = read_index(path)
    assert len(idx) == 2 and idx.warnings == []
    assert _data(idx, 1) == data and idx.ts_ns[0] == 5_000_006_000


def test_empty_but_valid_pcap_has_no_packets(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "empty.pcap", [])
    idx = read_index(path)
    assert len(idx) == 0 and idx.warnings == []
    assert idx.ts_ns.dtype == np.int64 and idx.caplen.dtype == np.uint32
    assert idx.linktype.dtype == np.uint16


def test_file_cut_mid_record_keeps_the_packets_before_it(tmp_path: Path) -> None:
    raw = pcap_bytes(_records())
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[:-5])
    idx = read_index(path)
    assert len(idx) == 2
    assert [_data(idx, i) for i in range(2)] == [_packet(0), _packet(1)]
    (w,) = idx.warnings
    assert "cut.pcap" in w and "packet 3" in w and "cut short" in w and "\n" not in w


def test_file_cut_mid_record_header(tmp_path: Path) -> None:
    raw = pcap_bytes(_records(2))
    path = tmp_path / "cuthdr.pcap"
    path.write_bytes(raw + b"\x01\x02\x03\x04\x05\x06\x07")  # 7 of 16 header bytes
    idx = read_index(path)
    assert len(idx) == 2
    (w,) = idx.warnings
    assert "cuthdr.pcap" in w and "packet 3" in w and "cut short" in w


def test_absurd_record_length_is_damaged_or_corrupt(tmp_path: Path) -> None:
    raw = pcap_bytes(_records(2))
    bad = struct.pack("<IIII", 1, 2, MAX_PACKET + 1, MAX_PACKET + 1) + b"\0" * 64
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(raw + bad)
    idx = read_index(path)
    assert len(idx) == 2
    (w,) = idx.warnings
    assert "corrupt.pcap" in w and "damaged or corrupt" in w and str(MAX_PACKET + 1) in w


def test_largest_allowed_record_length_is_read(tmp_path: Path) -> None:
    big = Frame(b"\0" * MAX_PACKET, T0)
    path = write_pcap(tmp_path / "big.pcap", [big, *_records(1)])
    idx = read_index(path)
    assert len(idx) == 2 and idx.warnings == [] and idx.caplen[0] == MAX_PACKET


@needs_tshark
def test_damage_is_where_tshark_stops_too(tmp_path: Path) -> None:
    cut_file = tmp_path / "cut.pcap"
    cut_file.write_bytes(pcap_bytes(_records())[:-5])
    # wiretap guesses the pcap variant from the first records: keep the damage past them
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(pcap_bytes(_records(5))
                        + struct.pack("<IIII", 1, 2, MAX_PACKET + 1, 60) + b"\x55" * 64)
    for path, phrase, n in ((cut_file, "cut short", 2), (corrupt, "damaged or corrupt", 5)):
        rc, err, frames = _tshark_rc_and_stderr(path)
        assert rc == 2 and phrase in err
        idx = read_index(path)
        assert frames == len(idx) == n
        assert phrase in idx.warnings[0]


# --------------------------------------------------------------------------- not a capture


def test_text_file_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a capture\n")
    with pytest.raises(NotACapture) as exc:
        read_index(path)
    msg = str(exc.value)
    assert str(path) in msg and "not a pcap or pcapng" in msg and "\n" not in msg
    assert isinstance(exc.value, InputError)


def test_gzip_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(pcap_bytes(_records())))
    with pytest.raises(NotACapture, match="gzip"):
        read_index(path)


@pytest.mark.parametrize("content", [b"", b"\xd4\xc3"])
def test_empty_and_tiny_files_are_not_captures(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tiny.pcap"
    path.write_bytes(content)
    with pytest.raises(NotACapture, match=r"tiny\.pcap"):
        read_index(path)


def test_pcap_magic_with_a_cut_file_header(tmp_path: Path) -> None:
    path = tmp_path / "head.pcap"
    path.write_bytes(pcap_bytes([])[:20])
    with pytest.raises(NotACapture, match=r"head\.pcap.*cut short"):
        read_index(path)


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.pcap"
    with pytest.raises(InputError, match=r"absent\.pcap"):
        read_index(path)


# --------------------------------------------------------------------------- pcapng

_IFACES = [
    Interface(LT_ETHERNET),  # default resolution: microseconds
    Interface(LT_RAW, tsresol=9),  # 10^-9
    Interface(LT_SLL, tsresol=0x80 | 20),  # 2^-20
    Interface(LT_NULL, tsresol=3),  # milliseconds
    Interface(LT_SLL2, tsresol=0x80 | 10, tsoffset_s=1000),  # 2^-10, with a time offset
]


def _ng_records() -> list[Frame]:
    inner4 = ipv4(A, B, UDP, udp(5, 6, b"ng"))
    inner6 = ipv6("2001:db8::1", "2001:db8::2", UDP, udp(7, 8, b"six"))
    s = 1_700_000_000 * 1_000_000_000
    return [
        Frame(ethernet(inner4), s + 123_456_000, iface=0),
        Frame(inner6, s + 987_654_321, iface=1),
        Frame(sll(inner4), s + 500_000_000, iface=2),  # 2^19 ticks of 2^-20 s
        Frame(null(inner6, 30), s + 250_000_000, iface=3),
        Frame(sll2(inner6, ET_IPV6), s + 750_000_000, iface=4),  # 768 ticks of 2^-10 s
        Frame(ethernet(inner4), s + 1_000_001_000, iface=0),
    ]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_link_types_and_resolutions(tmp_path: Path, endian: str) -> None:
    recs = _ng_records()
    path = write_pcapng(tmp_path / "multi.pcapng", _IFACES, recs, endian=endian)
    idx = read_index(path)
    assert idx.format == "pcapng" and idx.warnings == [] and len(idx) == len(recs)
    assert idx.linktype.tolist() == [_IFACES[r.iface].linktype for r in recs]
    assert idx.ts_ns.tolist() == [r.ts_ns for r in recs]  # all exactly representable
    assert [_data(idx, i) for i in range(len(recs))] == [r.data for r in recs]
    assert idx.wirelen.tolist() == [len(r.data) for r in recs]


def test_pcapng_binary_resolution_rounds_down(tmp_path: Path) -> None:
    # 1 tick of 2^-30 s is 0.93 ns: the reader floors, as tshark does
    itf = Interface(LT_RAW, tsresol=0x80 | 30)
    raw = pcapng_bytes([itf], [])
    raw += _epb(0, ipv4(A, B, UDP, udp(1, 2)), (1 << 30) + 3)
    path = tmp_path / "bin.pcapng"
    path.write_bytes(raw)
    idx = read_index(path)
    assert idx.ts_ns.tolist() == [1_000_000_000 + 2]  # 3 * 10^9 / 2^30 = 2.79 ns


@needs_tshark
def test_pcapng_times_and_link_types_equal_tsharks(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "multi.pcapng", _IFACES, _ng_records())
    idx = read_index(path)
    rows = tshark_fields(path, ["frame.time_epoch", "frame.interface_id", "frame.len",
                                "ip.src", "ipv6.src"])
    assert len(rows) == len(idx)
    for i, (epoch, iface, flen, v4, v6) in enumerate(rows):
        sec, _, frac = epoch.partition(".")
        assert int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")) == idx.ts_ns[i], i
        assert _IFACES[int(iface)].linktype == idx.linktype[i]
        assert int(flen) == idx.wirelen[i]
        assert v4 or v6  # tshark found the IP header behind every link type


def _epb(iface: int, data: bytes, ticks: int = 0, *, caplen: int | None = None) -> bytes:
    cap = len(data) if caplen is None else caplen
    body = struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, cap, len(data)) + data
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def test_pcapng_packet_of_unknown_interface_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "iface.pcapng"
    path.write_bytes(pcapng_bytes(_IFACES[:2], _ng_records()[:2]) + _epb(7, _packet(0))
                     + _epb(0, _packet(1)))
    idx = read_index(path)
    assert len(idx) == 2
    (w,) = idx.warnings
    assert "iface.pcapng" in w and "packet 3" in w and "unknown interface 7" in w


def test_pcapng_new_section_resets_the_interfaces(tmp_path: Path) -> None:
    first = pcapng_bytes(_IFACES, _ng_records())
    second = pcapng_bytes([Interface(LT_RAW)], [Frame(ipv4(A, B, UDP, udp(1, 2)), T0)])
    path = tmp_path / "sections.pcapng"
    path.write_bytes(first + second)
    idx = read_index(path)
    assert len(idx) == len(_ng_records()) + 1 and idx.warnings == []
    assert idx.linktype[-1] == LT_RAW and idx.ts_ns[-1] == T0 // 1000 * 1000


def test_pcapng_block_cut_short(tmp_path: Path) -> None:
    raw = pcapng_bytes(_IFACES, _ng_records())
    path = tmp_path / "cut.pcapng"
    path.write_bytes(raw[:-10])
    idx = read_index(path)
    assert len(idx) == len(_ng_records()) - 1
    (w,) = idx.warnings
    assert "cut.pcapng" in w and "cut short" in w


def test_pcapng_bad_block_length_is_damaged(tmp_path: Path) -> None:
    raw = pcapng_bytes(_IFACES[:1], [Frame(_packet(0), T0)])
    path = tmp_path / "badlen.pcapng"
    path.write_bytes(raw + struct.pack("<II", 6, 13) + b"\0" * 16)
    idx = read_index(path)
    assert len(idx) == 1
    (w,) = idx.warnings
    assert "badlen.pcapng" in w and "damaged or corrupt" in w


def test_pcapng_captured_length_beyond_its_block_is_damaged(tmp_path: Path) -> None:
    raw = pcapng_bytes(_IFACES[:1], [Frame(_packet(0), T0)])
    path = tmp_path / "caplen.pcapng"
    path.write_bytes(raw + _epb(0, _packet(1), caplen=len(_packet(1)) + 100))
    idx = read_index(path)
    assert len(idx) == 1
    (w,) = idx.warnings
    assert "packet 2" in w and "damaged or corrupt" in w


def test_pcapng_without_packets(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "none.pcapng", _IFACES, [])
    idx = read_index(path)
    assert len(idx) == 0 and idx.warnings == [] and idx.format == "pcapng"


def test_pcapng_bad_byte_order_magic_is_not_a_capture(tmp_path: Path) -> None:
    raw = bytearray(pcapng_bytes(_IFACES[:1], []))
    raw[8:12] = b"\0\0\0\0"
    path = tmp_path / "bom.pcapng"
    path.write_bytes(bytes(raw))
    with pytest.raises(NotACapture, match=r"bom\.pcapng.*byte-order"):
        read_index(path)


def test_pcapng_simple_packet_block_uses_interface_zero(tmp_path: Path) -> None:
    data = _packet(3)
    itf = Interface(LT_ETHERNET, snaplen=40)
    body = struct.pack("<I", len(data)) + data[:40]
    spb = struct.pack("<II", 3, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    path = tmp_path / "spb.pcapng"
    path.write_bytes(pcapng_bytes([itf], []) + spb)
    idx = read_index(path)
    assert len(idx) == 1 and idx.warnings == []
    assert (idx.caplen[0], idx.wirelen[0], idx.linktype[0]) == (40, len(data), LT_ETHERNET)
    assert _data(idx, 0) == data[:40]
