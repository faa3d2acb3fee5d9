"""netwarden.minidns: the demo's and the live tests' DNS server and client."""

from __future__ import annotations

from netwarden import minidns


def test_dns_answers_a_aaaa_and_nxdomain() -> None:
    zone = {"www.minidns.test": {minidns.QTYPE_A: ["10.0.0.7"], minidns.QTYPE_AAAA: ["fd00::7"]},
            "minidns.test": {}}
    a = minidns.dns_answer(minidns.dns_query(0x1234, "WWW.minidns.test", minidns.QTYPE_A), zone)
    assert a[:2] == b"\x12\x34"
    assert a[3] & 0x0F == 0  # NOERROR
    assert minidns.dns_addresses(a) == ["10.0.0.7"]
    aaaa = minidns.dns_answer(minidns.dns_query(7, "www.minidns.test", minidns.QTYPE_AAAA), zone)
    assert minidns.dns_addresses(aaaa) == ["fd00::7"]
    missing = minidns.dns_answer(minidns.dns_query(8, "ftp.minidns.test", minidns.QTYPE_A), zone)
    assert missing[3] & 0x0F == 3  # NXDOMAIN
    assert minidns.dns_addresses(missing) == []
    empty = minidns.dns_answer(minidns.dns_query(9, "minidns.test", minidns.QTYPE_A), zone)
    assert empty[3] & 0x0F == 0 and minidns.dns_addresses(empty) == []


def test_dns_ignores_garbage_and_replies() -> None:
    zone: dict[str, dict[int, list[str]]] = {}
    assert minidns.dns_answer(b"\x00\x01", zone) is None
    reply = minidns.dns_answer(minidns.dns_query(1, "x.test", minidns.QTYPE_A), zone)
    assert minidns.dns_answer(reply, zone) is None  # a response is not answered
