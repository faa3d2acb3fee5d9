"""Server names in flow heads, by tshark: TLS/QUIC SNI, DNS questions and answers.

:func:`dissect` writes the packets of a :class:`~netwarden.sensor.flowheads.Heads` to a
pcapng file in a private temporary directory (one interface per link type, nanosecond
timestamps), runs ``tshark -T fields`` on it once and maps every frame tshark reports back
to its index in the heads (so to its capture-wide frame number, interval and stream).

Why ``tshark -T fields`` and not pyshark: both run the same tshark dissectors, but pyshark
parses tshark's PDML (XML) packet by packet in Python. On
``../shared/pcaps/pcapplusplus-tls2.pcap`` (7451 frames, 323 with an SNI) pyshark's
``FileCapture`` with the same display filter takes 1.47 s, ``tshark -T fields`` 0.30 s;
and ``-E occurrence=a`` gives every occurrence of a field, which the counts need.

What is read, counted as tshark's fields are (``tests/test_truth.py`` compares them with
the truth files):

* ``tls.handshake.extensions_server_name``: every occurrence (TLS ClientHello, and the
  ClientHello in a QUIC Initial, which tshark 4.0 decrypts);
* ``dns.qry.name``: each distinct name once per frame (DNS, mDNS, LLMNR);
* the A/AAAA records of a DNS response's answer section: address → the message's first
  question name (the name the client asked for, not the CNAME target), or the record's
  own name when the message has no question (mDNS announcements).

tshark runs with a private, empty configuration (defaults: reassembly and heuristics on),
``-n``, ``LC_ALL=C``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import subprocess
import tempfile
from typing import Final

import numpy as np

from netwarden.errors import RuntimeFailure
from netwarden.sensor.flowheads import Heads
from netwarden.sensor.hierarchy import FAST_PREFS, tshark_env, tshark_missing
from netwarden.sensor.pcapngwriter import SHB, enhanced_packets, idb

__all__ = ["FrameNames", "address_key", "dissect", "write_pcapng"]

DISPLAY_FILTER: Final = "tls.handshake.extensions_server_name || dns.qry.name || dns.a || dns.aaaa"
FIELDS: Final = (
    "frame.number",
    "tls.handshake.extensions_server_name",
    "dns.qry.name",
    "dns.flags.response",
    "dns.count.queries",
    "dns.count.answers",
    "dns.count.auth_rr",
    "dns.count.add_rr",
    "dns.resp.name",
    "dns.resp.type",
    "dns.a",
    "dns.aaaa",
)
_SEP: Final = "\x1e"  # between fields
_AGG: Final = "\x1f"  # between occurrences of one field
_TYPE_A: Final = 1
_TYPE_AAAA: Final = 28


@dataclasses.dataclass(frozen=True)
class FrameNames:
    """What one dissected frame says, ``index`` being its position in the heads."""

    index: int
    sni: tuple[str, ...] = ()  # every occurrence
    qnames: tuple[str, ...] = ()  # distinct, first-seen order
    answers: tuple[tuple[bytes, str], ...] = ()  # (address_key, name) per A/AAAA answer


def address_key(text: str) -> bytes:
    """An address as the store's 16-byte form (IPv4 mapped into IPv6), trailing zero bytes
    removed as numpy's ``S16`` strings hold them."""
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        ip = ipaddress.IPv6Address(f"::ffff:{ip}")
    return ip.packed.rstrip(b"\x00")


def write_pcapng(heads: Heads, path: str) -> None:
    """Write the heads as a pcapng file (one interface per link type)."""
    links = np.unique(heads.linktype)
    iface = np.searchsorted(links, heads.linktype).astype(np.uint32)
    blocks = enhanced_packets(heads.buf, heads.offset, heads.caplen, heads.wirelen,
                              heads.ts_ns, iface)
    with open(path, "wb") as f:
        f.write(SHB)
        for lt in links.tolist():
            f.write(idb(int(lt)))
        f.write(blocks.data)


def dissect(heads: Heads, *, tshark: str = "tshark", timeout_s: float = 120.0,
            tmp_dir: str | None = None) -> list[FrameNames]:
    """Run tshark over ``heads``; the frames that carry a name, in capture order.

    Raises :class:`~netwarden.errors.RuntimeFailure` when tshark is missing, fails or
    takes longer than ``timeout_s``.
    """
    if len(heads) == 0:
        return []
    work = tempfile.mkdtemp(prefix="netwarden-apps-", dir=tmp_dir)
    try:
        path = os.path.join(work, "heads.pcapng")
        write_pcapng(heads, path)
        env = tshark_env(work)
        cmd = [tshark, "-n", "-r", path, "-Y", DISPLAY_FILTER, "-T", "fields",
               "-E", f"separator={_SEP}", "-E", f"aggregator={_AGG}", "-E", "occurrence=a",
               "-E", "quote=n"]
        for pref in FAST_PREFS:
            cmd += ["-o", pref]
        for f in FIELDS:
            cmd += ["-e", f]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  env=env, timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise tshark_missing(tshark) from None
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"app dissection: tshark took longer than {timeout_s} s "
                                 f"for {len(heads)} packets") from None
        stdout = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0 and not stdout:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeFailure(f"app dissection: tshark exited with {proc.returncode}: "
                                 f"{err[-1] if err else 'no message'}")
        return parse_fields(stdout, len(heads))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _values(text: str) -> list[str]:
    return text.split(_AGG) if text else []


def _ints(text: str) -> list[int]:
    out = []
    for v in _values(text):
        try:
            out.append(int(v, 0))
        except ValueError:
            out.append(0)
    return out


def parse_fields(stdout: str, n: int) -> list[FrameNames]:
    """Parse the output of the tshark command of :func:`dissect` (``n`` frames written)."""
    out: list[FrameNames] = []
    width = len(FIELDS)
    for line in stdout.split("\n"):  # not splitlines(): it splits at \x1e too
        p = line.split(_SEP)
        if len(p) < width:
            p += [""] * (width - len(p))
        try:
            index = int(p[0]) - 1
        except ValueError:
            continue
        if not 0 <= index < n:
            continue
        sni = tuple(_values(p[1]))
        qnames = tuple(dict.fromkeys(_values(p[2])))
        answers = _answers(p) if "1" in _values(p[3]) or "True" in _values(p[3]) else ()
        if sni or qnames or answers:
            out.append(FrameNames(index, sni, qnames, answers))
    return out


def _answers(p: list[str]) -> tuple[tuple[bytes, str], ...]:
    """(address, name) of every A/AAAA record in the answer sections of the frame's
    DNS responses (one frame may carry several messages: their fields follow in order)."""
    queries, answers = _ints(p[4]), _ints(p[5])
    auth, add = _ints(p[6]), _ints(p[7])
    flags = _values(p[3])
    qnames, rnames, rtypes = _values(p[2]), _values(p[8]), _ints(p[9])
    a, aaaa = _values(p[10]), _values(p[11])
    out: list[tuple[bytes, str]] = []
    iq = ir = ia = i6 = 0
    for m in range(len(answers)):
        nq = queries[m] if m < len(queries) else 0
        question = qnames[iq] if nq and iq < len(qnames) else ""
        iq += nq
        nrr = answers[m] + (auth[m] if m < len(auth) else 0) + (add[m] if m < len(add) else 0)
        response = m < len(flags) and flags[m] in ("1", "True")
        for k in range(nrr):
            if ir >= len(rtypes):
                break
            t = rtypes[ir]
            owner = rnames[ir] if ir < len(rnames) else ""
            addr = None
            if t == _TYPE_A and ia < len(a):
                addr = a[ia]
                ia += 1
            elif t == _TYPE_AAAA and i6 < len(aaaa):
                addr = aaaa[i6]
                i6 += 1
            ir += 1
            name = question or owner
            if addr is None or k >= answers[m] or not response or not name:
                continue
            try:
                out.append((address_key(addr), name))
            except ValueError:
                continue
    return tuple(out)
