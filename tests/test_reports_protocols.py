"""The protocol hierarchy from stored chain rows (chdb; and 18.16 when marked ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import interval_start, load_store

from netwarden.collector.reports import Filters, ProtocolsParams, protocols


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def node(protocol: str, frames: int, nbytes: int, *children: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": protocol, "frames": frames, "bytes": nbytes, "children": list(children)}


ALPHA = [
    node("eth", 20, 3936,
         node("arp", 1, 42),
         node("ip", 17, 1780,
              node("tcp", 9, 780),
              node("udp", 5, 500,
                   node("dns", 2, 200),
                   node("teredo", 1, 150, node("ipv6", 1, 150, node("tcp", 1, 150))),
                   node("data", 2, 150)),
              node("gre", 2, 400,
                   node("ipv6", 2, 400, node("udp", 2, 400, node("data", 2, 400)))),
              node("ip", 1, 100, node("icmp", 1, 100))),
         node("ipv6", 2, 2114,
              node("ipv6.fraghdr", 1, 1514),
              node("udp", 1, 600, node("data", 1, 600)))),
]


def test_tree_of_one_host_sums_intervals_in_first_seen_order(store: Any) -> None:
    result = protocols(store, ProtocolsParams(Filters(hosts=("alpha",))))
    assert result.rows == ALPHA
    assert result.report == "protocols"


def test_several_hosts_sum(store: Any) -> None:
    tree = protocols(store, ProtocolsParams()).rows
    assert [(n["protocol"], n["frames"], n["bytes"]) for n in tree] == [("eth", 30, 9436)]
    ip = next(n for n in tree[0]["children"] if n["protocol"] == "ip")
    assert (ip["frames"], ip["bytes"]) == (27, 7280)
    assert ip["children"][0] == node("tcp", 19, 6280)


def test_time_filter(store: Any) -> None:
    f = Filters(since_ns=interval_start(1), until_ns=interval_start(2))
    assert protocols(store, ProtocolsParams(f)).rows == [
        node("eth", 5, 460,
             node("ip", 5, 460,
                  node("tcp", 1, 60),
                  node("udp", 3, 300,
                       node("teredo", 1, 150, node("ipv6", 1, 150, node("tcp", 1, 150))),
                       node("data", 2, 150)),
                  node("ip", 1, 100, node("icmp", 1, 100)))),
    ]


def test_empty_selection_is_an_empty_tree(store: Any) -> None:
    assert protocols(store, ProtocolsParams(Filters(hosts=("nope",)))).rows == []
