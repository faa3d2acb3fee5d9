"""Conversation tables from stored records (chdb; and 18.16 when marked ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import T0, S, interval_start, load_store

from netwarden.collector.reports import ConversationsParams, Filters, conversations


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def row(host: str, a: str, b: str, fab: int, bab: int, fba: int, bba: int, rel: float,
        dur: float, port_a: int | None = None, port_b: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"host": host, "a": a, "b": b}
    if port_a is not None:
        out.update(port_a=port_a, port_b=port_b)
    out.update(frames_a_to_b=fab, bytes_a_to_b=bab, frames_b_to_a=fba, bytes_b_to_a=bba,
               frames=fab + fba, bytes=bab + bba, rel_start=rel, duration=dur)
    return out


IP_ROWS = [
    row("beta", "10.0.0.1", "10.0.0.2", 5, 5000, 5, 500, 100.0, 1.0),
    # side A is 10.0.0.2, source of frame 2, though frame 3 has the earlier timestamp
    row("alpha", "10.0.0.2", "10.0.0.1", 4, 400, 5, 380, 0.25, 21.75),
    row("alpha", "10.0.0.1", "10.0.0.3", 1, 80, 1, 120, 3.0, 0.1),
    row("alpha", "192.168.1.1", "192.168.1.2", 2, 400, 0, 0, 4.0, 0.5),  # GRE outer header
    row("alpha", "127.0.0.1", "127.0.0.1", 2, 150, 0, 0, 12.0, 0.5),
    row("alpha", "1.1.1.1", "2.2.2.2", 1, 150, 0, 0, 11.0, 0.0),
    row("alpha", "172.16.0.1", "172.16.0.2", 1, 100, 0, 0, 13.0, 0.0),  # IP-in-IP outer,
    row("alpha", "10.0.0.9", "10.0.0.8", 1, 100, 0, 0, 13.0, 0.0),  # then inner: same frame
]
IPV6_ROWS = [
    row("alpha", "2001:db8::1", "2001:db8::2", 2, 400, 0, 0, 4.0, 0.5),  # inside GRE
    # the non-final fragment (1514 bytes) is not tapped: only the reassembling frame
    row("alpha", "2001:db8::10", "2001:db8::20", 1, 600, 0, 0, 5.01, 0.0),
    row("alpha", "2001::a", "2001::b", 1, 150, 0, 0, 11.0, 0.0),  # inside Teredo
]
TCP_ROWS = [
    row("beta", "10.0.0.1", "10.0.0.2", 5, 5000, 5, 500, 100.0, 1.0, 40000, 80),
    row("alpha", "10.0.0.2", "10.0.0.1", 3, 300, 3, 180, 0.25, 10.25, 80, 40000),
    row("alpha", "10.0.0.1", "10.0.0.2", 2, 200, 1, 100, 21.0, 1.0, 40000, 80),  # stream 20
    row("alpha", "2001::a", "2001::b", 1, 150, 0, 0, 11.0, 0.0, 443, 50000),
]
UDP_ROWS = [
    row("alpha", "10.0.0.1", "10.0.0.3", 1, 80, 1, 120, 3.0, 0.1, 5353, 53),
    row("alpha", "2001:db8::1", "2001:db8::2", 2, 400, 0, 0, 4.0, 0.5, 1000, 2000),
    row("alpha", "127.0.0.1", "127.0.0.1", 2, 150, 0, 0, 12.0, 0.5, 7000, 7001),
    row("alpha", "2001:db8::10", "2001:db8::20", 1, 600, 0, 0, 5.01, 0.0, 5000, 6000),
    row("alpha", "1.1.1.1", "2.2.2.2", 1, 150, 0, 0, 11.0, 0.0, 3544, 3544),
]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("ip", IP_ROWS), ("ipv6", IPV6_ROWS), ("tcp", TCP_ROWS), ("udp", UDP_ROWS)],
)
def test_tables_of_every_kind_are_exact_and_in_tshark_order(
        store: Any, kind: str, expected: list[dict[str, Any]]) -> None:
    result = conversations(store, ConversationsParams(kind=kind))  # type: ignore[arg-type]
    assert result.rows == expected
    assert result.report == "conversations"
    assert result.meta["kind"] == kind
    assert result.meta["origin_ns"] == T0


def test_columns_follow_the_truth_files(store: Any) -> None:
    tcp = conversations(store, ConversationsParams(kind="tcp"))
    ip = conversations(store, ConversationsParams(kind="ip"))
    # JSON rows keep the truth files' key order; columns (table, csv) put ports by addresses
    assert list(tcp.rows[0]) == ["host", "a", "b", "port_a", "port_b", "frames_a_to_b",
                                 "bytes_a_to_b", "frames_b_to_a", "bytes_b_to_a", "frames",
                                 "bytes", "rel_start", "duration"]
    assert tcp.columns[:5] == ["host", "a", "port_a", "b", "port_b"]
    assert set(tcp.columns) == set(tcp.rows[0])
    assert list(ip.rows[0]) == ip.columns
    assert "port_a" not in ip.columns


def test_host_filter_keeps_one_host_and_times_count_from_its_first_interval(store: Any) -> None:
    result = conversations(store, ConversationsParams(kind="tcp", filters=Filters(hosts=("beta",))))
    assert result.rows == [
        row("beta", "10.0.0.1", "10.0.0.2", 5, 5000, 5, 500, 0.0, 1.0, 40000, 80)]
    assert result.filters["hosts"] == ["beta"]


def test_time_filter_selects_intervals_by_start(store: Any) -> None:
    f = Filters(since_ns=interval_start(1), until_ns=interval_start(2))
    result = conversations(store, ConversationsParams(kind="tcp", filters=f))
    # only interval 1: frame 10 of stream 2 alone, so its source is side A
    assert result.rows == [
        row("alpha", "10.0.0.1", "10.0.0.2", 1, 60, 0, 0, 0.5, 0.0, 40000, 80),
        row("alpha", "2001::a", "2001::b", 1, 150, 0, 0, 1.0, 0.0, 443, 50000),
    ]
    assert result.meta["origin_ns"] == T0 + 10 * S


def test_since_inside_an_interval_excludes_that_interval(store: Any) -> None:
    f = Filters(since_ns=interval_start(2) - 1)
    starts = {r["rel_start"] for r in conversations(store, ConversationsParams("ip", f)).rows}
    assert starts == {1.0, 80.0}  # interval 2 (alpha) and 10 (beta); origin = interval 2


def test_top_keeps_the_first_rows(store: Any) -> None:
    result = conversations(store, ConversationsParams(kind="udp", top=2))
    assert result.rows == UDP_ROWS[:2]
    assert result.filters["top"] == 2


def test_empty_selection_gives_no_rows_and_no_origin(store: Any) -> None:
    result = conversations(store, ConversationsParams(kind="ip", filters=Filters(hosts=("nope",))))
    assert result.rows == []
    assert result.meta["origin"] is None


def test_bad_params_are_rejected() -> None:
    with pytest.raises(ValueError, match="kind must be one of ip, ipv6, tcp, udp"):
        ConversationsParams(kind="sctp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top must be at least 1"):
        ConversationsParams(top=0)
