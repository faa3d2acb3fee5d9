"""tshark on flow heads: the pcapng it reads, and the names and answers it reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import app_traffic as at
from fixtures.packets import LT_RAW, TSHARK, ethernet, ipv4, needs_tshark, udp

from netwarden.errors import RuntimeFailure
from netwarden.minidns import QTYPE_A, dns_query
from netwarden.sensor.accountant import Accountant, PacketBatch
from netwarden.sensor.flowheads import Heads, HeadSelector
from netwarden.sensor.headnames import (
    FIELDS,
    FrameNames,
    address_key,
    dissect,
    parse_fields,
    write_pcapng,
)
from netwarden.sensor.pcapfile import read_index

SEP, AGG = "\x1e", "\x1f"


def heads_of(path: Path, head_packets: int = 1000) -> Heads:
    """The heads a selector keeps of a capture file."""
    idx = read_index(path)
    sel = HeadSelector(head_packets=head_packets)
    acc = Accountant("h", align="first", observer=sel.observe)
    acc.add(PacketBatch(idx.buf, idx.offset, idx.caplen, idx.wirelen, idx.linktype,
                        idx.ts_ns))
    return sel.take()


def line(**values: str) -> str:
    """One tshark output line with the given fields (dots as underscores) set."""
    return SEP.join(values.get(f.replace(".", "_"), "") for f in FIELDS)


@needs_tshark
def test_names_and_answers_of_the_synthetic_capture(tmp_path: Path) -> None:
    heads = heads_of(at.write_capture(tmp_path / "app.pcap"))
    got = dissect(heads)
    frames = {int(heads.frame_no[f.index]): f for f in got}
    assert sorted(frames) == [1, 2, 6, 31]
    assert frames[1] == FrameNames(0, (), (at.NAME,), ())  # the query: no answers
    assert frames[2].qnames == (at.NAME,)
    assert frames[2].answers == ((address_key(at.SERVER), at.NAME),)
    assert frames[6].sni == (at.NAME,) and frames[6].qnames == ()
    assert frames[31].sni == (at.LATE_NAME,)
    assert int(heads.stream[frames[6].index]) == 3  # the stream's first frame


@needs_tshark
def test_mixed_link_types_are_written_one_interface_each(tmp_path: Path) -> None:
    """An Ethernet DNS query and a raw-IP one in one heads file: tshark reads both."""
    eth = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000, 53, dns_query(1, "a.example",
                                                                           QTYPE_A))))
    raw = ipv4("10.0.0.1", "10.0.0.2", 17, udp(1001, 53, dns_query(2, "b.example", QTYPE_A)))
    data = eth + raw
    heads = Heads(np.frombuffer(data, np.uint8).copy(), np.array([0, len(eth)], np.int64),
                  np.array([len(eth), len(raw)], np.uint32),
                  np.array([len(eth), len(raw) + 100], np.uint32),
                  np.array([1, LT_RAW], np.uint16), np.array([5, 7], np.int64),
                  np.array([10, 11], np.uint64), np.zeros(2, np.int64),
                  np.array([10, 11], np.uint64), np.array([17, 17], np.uint8))
    path = tmp_path / "h.pcapng"
    write_pcapng(heads, str(path))
    assert [(f.index, f.qnames) for f in dissect(heads)] == [(0, ("a.example",)),
                                                           (1, ("b.example",))]
    import subprocess
    out = subprocess.run([TSHARK or "tshark", "-n", "-r", str(path), "-T", "fields",
                          "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.protocols",
                          "-e", "frame.time_epoch"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert [x.split("\t")[:3] for x in out] == [
        [str(len(eth)), str(len(eth)), "eth:ethertype:ip:udp:dns"],
        [str(len(raw) + 100), str(len(raw)), "raw:ip:udp:dns"]]
    assert [x.split("\t")[3] for x in out] == ["0.000000005", "0.000000007"]


def test_parse_counts_every_sni_and_each_question_once() -> None:
    out = "\n".join([
        line(frame_number="1", tls_handshake_extensions_server_name=f"a.example{AGG}a.example"),
        line(frame_number="2", dns_qry_name=f"q.example{AGG}q.example{AGG}r.example",
             dns_flags_response="0"),
        line(frame_number="9", dns_qry_name="out.of.range"),
        "garbage",
        "",
    ])
    assert parse_fields(out, 3) == [FrameNames(0, ("a.example", "a.example"), (), ()),
                                    FrameNames(1, (), ("q.example", "r.example"), ())]


def test_parse_maps_answer_records_of_responses_only() -> None:
    v4, v6 = address_key("192.0.2.7"), address_key("2001:db8::1")
    # one response: question www.example; answers CNAME, A, AAAA; an additional A record
    # (glue for another name) is not an answer
    resp = line(frame_number="1", dns_qry_name="www.example", dns_flags_response="1",
                dns_count_queries="1", dns_count_answers="3", dns_count_auth_rr="0",
                dns_count_add_rr="1",
                dns_resp_name=AGG.join(["www.example", "cdn.example", "cdn.example",
                                        "ns.other"]),
                dns_resp_type=AGG.join(["5", "1", "28", "1"]),
                dns_a=AGG.join(["192.0.2.7", "198.51.100.1"]), dns_aaaa="2001:db8::1")
    # an mDNS announcement: no question, the record's own name
    mdns = line(frame_number="2", dns_flags_response="1", dns_count_queries="0",
                dns_count_answers="1", dns_count_auth_rr="0", dns_count_add_rr="0",
                dns_resp_name="printer.local", dns_resp_type="1", dns_a="192.0.2.9")
    # a query carrying a known answer: ignored
    query = line(frame_number="3", dns_qry_name="x.local", dns_flags_response="0",
                 dns_count_queries="1", dns_count_answers="1", dns_count_auth_rr="0",
                 dns_count_add_rr="0", dns_resp_name="x.local", dns_resp_type="1",
                 dns_a="192.0.2.10")
    # two messages in one frame (DNS over TCP): the second's answer maps to its question
    two = line(frame_number="4", dns_qry_name=f"a.example{AGG}b.example",
               dns_flags_response=f"1{AGG}1", dns_count_queries=f"1{AGG}1",
               dns_count_answers=f"1{AGG}1", dns_count_auth_rr=f"0{AGG}0",
               dns_count_add_rr=f"0{AGG}0", dns_resp_name=f"a.example{AGG}b.example",
               dns_resp_type=f"1{AGG}1", dns_a=f"192.0.2.1{AGG}192.0.2.2")
    # counts promising more records than were dissected (a truncated message)
    cut = line(frame_number="5", dns_qry_name="cut.example", dns_flags_response="1",
               dns_count_queries="1", dns_count_answers="4", dns_count_auth_rr="0",
               dns_count_add_rr="0", dns_resp_name="cut.example", dns_resp_type="1",
               dns_a="192.0.2.3")
    got = {f.index: f.answers for f in parse_fields("\n".join([resp, mdns, query, two, cut]),
                                                    10)}
    assert got[0] == ((v4, "www.example"), (v6, "www.example"))
    assert got[1] == ((address_key("192.0.2.9"), "printer.local"),)
    assert got[2] == ()
    assert got[3] == ((address_key("192.0.2.1"), "a.example"),
                      (address_key("192.0.2.2"), "b.example"))
    assert got[4] == ((address_key("192.0.2.3"), "cut.example"),)


def test_address_key_is_the_stored_form() -> None:
    assert address_key("10.0.0.1") == bytes(10) + b"\xff\xff\x0a\x00\x00\x01"
    # numpy's S16 drops trailing zero bytes: so does the key
    assert address_key("2001:db8::") == b"\x20\x01\x0d\xb8"
    stored = np.array([bytes.fromhex("20010db8" + "00" * 12)], dtype="S16")
    assert stored[0] == address_key("2001:db8::")


def test_missing_tshark_is_one_clear_error(tmp_path: Path) -> None:
    heads = heads_of(at.write_capture(tmp_path / "app.pcap"), head_packets=2)
    with pytest.raises(RuntimeFailure, match="tshark not found: '/nonexistent/tshark'"):
        dissect(heads, tshark="/nonexistent/tshark")
    assert dissect(Heads.empty(), tshark="/nonexistent/tshark") == []  # no packets: no run
