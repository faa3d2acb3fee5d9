"""Read pcap and pcapng files into packet index arrays.

The reader never copies packet data: it memory-maps the file and returns, for every
packet, where its data starts, how much was captured, its original length, its link
type and its timestamp in nanoseconds. The vectorised decoder then reads header
fields straight out of the mapped buffer.

Damaged files are read as far as possible, the way tshark reads them: a record cut
short at the end of the file, or a record header with an impossible length, ends the
read with a warning that names the file and the packet number; everything before it
is kept. A file that is not a capture at all raises :class:`NotACapture`.
"""

from __future__ import annotations

import dataclasses
import mmap
import struct
from array import array
from pathlib import Path

import numpy as np

from netwarden.errors import InputError

# Largest packet tshark (wiretap) accepts in a file before calling it corrupt.
MAX_PACKET = 262144

_PCAP_MAGIC = {
    # magic (as read little-endian) -> (endian, ns resolution, record header size)
    0xA1B2C3D4: ("<", False, 16),
    0xD4C3B2A1: (">", False, 16),
    0xA1B23C4D: ("<", True, 16),
    0x4D3CB2A1: (">", True, 16),
    0xA1B2CD34: ("<", False, 24),  # Kuznetzov's modified pcap
    0x34CDB2A1: (">", False, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A


class NotACapture(InputError):
    """The file is neither pcap nor pcapng."""


@dataclasses.dataclass
class PacketIndex:
    """Where every packet of a capture lies in ``buf``, plus its metadata."""

    path: Path
    buf: np.ndarray  # uint8 view of the whole file
    offset: np.ndarray  # int64: start of each packet's data in buf
    caplen: np.ndarray  # uint32: captured bytes
    wirelen: np.ndarray  # uint32: original length (frame.len)
    linktype: np.ndarray  # uint16: link-layer header type (LINKTYPE_*)
    ts_ns: np.ndarray  # int64: timestamp, ns since the epoch
    warnings: list[str]
    format: str  # "pcap" or "pcapng"

    def __len__(self) -> int:
        return len(self.offset)


def read_index(path: Path) -> PacketIndex:
    """Index every readable packet of a pcap/pcapng file."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size == 0:
                raise NotACapture(f"{path}: empty file, not a pcap or pcapng capture")
            # MAP_POPULATE: fault the pages in up front (far cheaper than one by one)
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            mm = mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    buf = np.frombuffer(mm, dtype=np.uint8)
    if size < 4:
        raise NotACapture(f"{path}: too short to be a capture ({size} bytes)")
    (magic,) = struct.unpack_from("<I", mm, 0)
    if magic in _PCAP_MAGIC:
        return _read_pcap(path, mm, buf, magic)
    if magic == _PCAPNG_SHB:
        return _read_pcapng(path, mm, buf)
    head = bytes(mm[:2])
    hint = " (gzip-compressed: gunzip it first)" if head == b"\x1f\x8b" else ""
    raise NotACapture(f"{path}: not a pcap or pcapng capture (magic {magic:#010x}){hint}")


def _read_pcap(path: Path, mm: mmap.mmap, buf: np.ndarray, magic: int) -> PacketIndex:
    endian, nanos, rec = _PCAP_MAGIC[magic]
    size = len(mm)
    warnings: list[str] = []
    if size < 24:
        raise NotACapture(f"{path}: pcap file header cut short ({size} of 24 bytes)")
    linktype = struct.unpack_from(endian + "I", mm, 20)[0] & 0x0FFFFFFF
    # Walk the records: the only per-packet Python work is following the lengths.
    offsets = array("q")
    append = offsets.append
    unpack = struct.Struct(endian + "I").unpack_from
    off = 24
    limit = size - rec
    n = 0
    while off <= limit:
        incl = unpack(mm, off + 8)[0]
        if incl > MAX_PACKET:
            warnings.append(
                f"{path.name}: packet {n + 1}: record claims {incl} captured bytes "
                f"(more than {MAX_PACKET}): the file appears to be damaged or corrupt; "
                f"read {n} packets before it")
            break
        if off + rec + incl > size:
            warnings.append(
                f"{path.name}: packet {n + 1}: the file appears to have been cut short "
                f"in the middle of a packet; read {n} packets before it")
            break
        append(off)
        off += rec + incl
        n += 1
    else:
        if off != size:
            warnings.append(
                f"{path.name}: packet {n + 1}: the file appears to have been cut short "
                f"in the middle of a packet header; read {n} packets before it")
    rec_off = np.frombuffer(offsets, dtype=np.int64) if n else np.zeros(0, np.int64)
    words = _gather_u32(buf, rec_off, 4, endian)
    sec = words[0].astype(np.int64)
    frac = words[1].astype(np.int64)
    ts = sec * 1_000_000_000 + (frac if nanos else frac * 1000)
    return PacketIndex(
        path=path, buf=buf, offset=rec_off + rec, caplen=words[2], wirelen=words[3],
        linktype=np.full(n, linktype, dtype=np.uint16), ts_ns=ts, warnings=warnings,
        format="pcap")


def _gather_u32(buf: np.ndarray, offs: np.ndarray, count: int, endian: str) -> list[np.ndarray]:
    """Read ``count`` consecutive 32-bit words at each offset (one gather for all)."""
    out = [np.empty(len(offs), np.uint32) for _ in range(count)]
    span = np.arange(4 * count)
    dt = np.dtype(endian + "u4")
    step = 1 << 16  # chunks keep the index matrix in cache
    for lo in range(0, len(offs), step):
        raw = buf[offs[lo:lo + step, None] + span]
        words = raw.view(dt).reshape(-1, count)
        for i in range(count):
            out[i][lo:lo + step] = words[:, i]
    return out


def _tsresol_to_ns(ticks: int, resol: int) -> int:
    if resol & 0x80:
        return int((ticks * 1_000_000_000) >> (resol & 0x7F))
    exp = int(resol)
    if exp <= 9:
        return int(ticks * 10 ** (9 - exp))
    return int(ticks // 10 ** (exp - 9))


def _read_pcapng(path: Path, mm: mmap.mmap, buf: np.ndarray) -> PacketIndex:
    size = len(mm)
    warnings: list[str] = []
    offsets = array("q")
    caplens = array("I")
    wirelens = array("I")
    links = array("H")
    stamps: list[int] = []
    endian = "<"
    ifaces: list[tuple[int, int, int, int]] = []  # (linktype, snaplen, tsresol, tsoffset)
    off = 0
    n = 0
    while off < size:
        if off + 12 > size:
            warnings.append(f"{path.name}: block at byte {off}: the file appears to have been "
                            f"cut short in the middle of a block; read {n} packets before it")
            break
        btype = struct.unpack_from(endian + "I", mm, off)[0]
        if btype == _PCAPNG_SHB:
            bom = bytes(mm[off + 8:off + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                if off == 0:
                    raise NotACapture(f"{path}: pcapng section header has a bad byte-order magic")
                warnings.append(f"{path.name}: byte {off}: bad section header; "
                                f"read {n} packets before it")
                break
            ifaces = []
        blen = struct.unpack_from(endian + "I", mm, off + 4)[0]
        if blen < 12 or blen % 4 or off + blen > size:
            what = ("cut short in the middle of a block" if off + blen > size and blen >= 12
                    else "damaged or corrupt (bad block length)")
            warnings.append(f"{path.name}: block at byte {off}: the file appears to have been "
                            f"{what}; read {n} packets before it")
            break
        body = off + 8
        if btype == 1:  # interface description
            lt, _res, snap = struct.unpack_from(endian + "HHI", mm, body)
            tsresol, tsoffset = 6, 0
            p = body + 8
            end = off + blen - 4
            while p + 4 <= end:
                code, olen = struct.unpack_from(endian + "HH", mm, p)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    tsresol = mm[p + 4]
                elif code == 14 and olen >= 8:
                    tsoffset = struct.unpack_from(endian + "q", mm, p + 4)[0]
                p += 4 + ((olen + 3) & ~3)
            ifaces.append((lt, snap, tsresol, tsoffset))
        elif btype in (6, 2):  # enhanced packet / obsolete packet block
            if btype == 6:
                iface, hi, lo, cap, orig = struct.unpack_from(endian + "IIIII", mm, body)
            else:
                iface, _drops, hi, lo, cap, orig = struct.unpack_from(endian + "HHIIII", mm, body)
            data = body + 20
            if iface >= len(ifaces):
                warnings.append(f"{path.name}: packet {n + 1}: unknown interface {iface}; "
                                f"read {n} packets before it")
                break
            if cap > MAX_PACKET or data + cap > off + blen - 4:
                warnings.append(f"{path.name}: packet {n + 1}: captured length {cap} does not "
                                f"fit its block: the file appears to be damaged or corrupt; "
                                f"read {n} packets before it")
                break
            lt, _snap, tsresol, tsoffset = ifaces[iface]
            offsets.append(data)
            caplens.append(cap)
            wirelens.append(orig)
            links.append(lt)
            stamps.append(_tsresol_to_ns((hi << 32) | lo, tsresol) + tsoffset * 1_000_000_000)
            n += 1
        elif btype == 3:  # simple packet block: interface 0
            if not ifaces:
                warnings.append(f"{path.name}: packet {n + 1}: simple packet before any "
                                f"interface; read {n} packets before it")
                break
            lt, snap, _r, _o = ifaces[0]
            orig = struct.unpack_from(endian + "I", mm, body)[0]
            cap = min(orig, snap) if snap else orig
            cap = min(cap, blen - 16)
            offsets.append(body + 4)
            caplens.append(cap)
            wirelens.append(orig)
            links.append(lt)
            stamps.append(0)
            n += 1
        off += blen
    return PacketIndex(
        path=path, buf=buf,
        offset=np.frombuffer(offsets, dtype=np.int64).copy() if n else np.zeros(0, np.int64),
        caplen=np.frombuffer(caplens, dtype=np.uint32).copy() if n else np.zeros(0, np.uint32),
        wirelen=np.frombuffer(wirelens, dtype=np.uint32).copy() if n else np.zeros(0, np.uint32),
        linktype=np.frombuffer(links, dtype=np.uint16).copy() if n else np.zeros(0, np.uint16),
        ts_ns=np.array(stamps, dtype=np.int64), warnings=warnings, format="pcapng")
