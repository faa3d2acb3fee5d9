"""The io report from stored records (chdb; and 18.16 when marked ``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.report_flows import T0, interval_start, load_store

from netwarden.collector.reports import Filters, IoParams, io
from netwarden.collector.reports.filters import iso_from_ns
from netwarden.errors import UsageError


@pytest.fixture(scope="module", params=["chdb", pytest.param("server", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, request.param)


def rows(*triples: tuple[int, int, int]) -> list[dict[str, int]]:
    return [{"start": s, "frames": f, "bytes": b} for s, f, b in triples]


def test_default_interval_is_the_stored_one_and_counts_every_layer0_record(store: Any) -> None:
    result = io(store, IoParams())
    # interval 0: ARP and the IPv6 fragment count; the GRE inner record (layer 1) does not
    assert result.rows == rows((0, 12, 3176), (10, 5, 460), (20, 3, 300), (100, 10, 5500))
    assert result.meta["interval"] == 10
    assert result.meta["origin_ns"] == T0
    assert result.meta["origin"] == iso_from_ns(T0)
    assert result.to_json()["interval"] == 10


def test_wider_buckets_sum_whole_intervals_and_skip_empty_ones(store: Any) -> None:
    assert io(store, IoParams(interval_s=20)).rows == rows((0, 17, 3636), (20, 3, 300),
                                                           (100, 10, 5500))
    assert io(store, IoParams(interval_s=100)).rows == rows((0, 20, 3936), (100, 10, 5500))


def test_an_interval_not_multiple_of_the_stored_one_is_a_usage_error(store: Any) -> None:
    with pytest.raises(UsageError, match=r"--interval 15 is not a multiple of the stored "
                                         r"interval \(10 s\): try 10 or a multiple of it"):
        io(store, IoParams(interval_s=15))


def test_host_filter(store: Any) -> None:
    assert io(store, IoParams(filters=Filters(hosts=("alpha",)))).rows == rows(
        (0, 12, 3176), (10, 5, 460), (20, 3, 300))
    beta = io(store, IoParams(filters=Filters(hosts=("beta",))))
    assert beta.rows == rows((0, 10, 5500))
    assert beta.meta["origin_ns"] == interval_start(10)


def test_time_filter_moves_the_origin(store: Any) -> None:
    f = Filters(since_ns=interval_start(1), until_ns=interval_start(3))
    result = io(store, IoParams(filters=f))
    assert result.rows == rows((0, 5, 460), (10, 3, 300))
    assert result.meta["origin_ns"] == interval_start(1)
    assert result.filters == {"since": iso_from_ns(interval_start(1)),
                              "until": iso_from_ns(interval_start(3)), "hosts": []}


def test_empty_selection(store: Any) -> None:
    result = io(store, IoParams(filters=Filters(since_ns=interval_start(11))))
    assert result.rows == []
    assert result.meta["origin"] is None


def test_default_bucket_of_mixed_interval_lengths_is_their_lcm() -> None:
    from netwarden.collector.reports.selection import common_interval

    assert common_interval([10]) == 10
    assert common_interval([10, 15]) == 30
    assert common_interval([]) == 0
