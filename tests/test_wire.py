"""The wire codec: FlowBatch <-> protobuf, and every malformed message refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from netwarden.collector.store.bench import synthetic_batch
from netwarden.errors import InputError
from netwarden.proto import netwarden_pb2 as pb
from netwarden.sensor.records import (
    CHAIN_COLUMNS,
    FLOW_COLUMNS,
    NAME_COLUMNS,
    SIZE_COLUMNS,
    STAT_COLUMNS,
    FlowBatch,
    empty,
)
from netwarden.sensor.wire import (
    TABLES,
    WireError,
    batch_span,
    decode_batch,
    encode_batch,
    split_batch,
    wire_dtype,
)

T0 = 1_300_000_000 * 10**9


def sample(n: int = 50, seed: int = 1) -> FlowBatch:
    b = synthetic_batch(n, host="web-1", start_s=1_300_000_000, intervals=3, interval_s=10,
                        seed=seed)
    b.flows["app"][::2] = "http"
    b.flows["app"][1] = "dns ünïcode"
    return b


def assert_same(a: FlowBatch, b: FlowBatch) -> None:
    assert (a.host, a.interval_s) == (b.host, b.interval_s)
    for table, spec in TABLES:
        ta, tb = getattr(a, table), getattr(b, table)
        assert list(ta) == list(tb) == list(spec)
        for name, dt in spec.items():
            assert tb[name].dtype == (np.dtype(object) if dt is object else np.dtype(dt)), name
            assert ta[name].tolist() == tb[name].tolist(), f"{table}.{name}"


def wire_round_trip(batch: FlowBatch, seq: int) -> tuple[FlowBatch, int]:
    data = encode_batch(batch, seq).SerializeToString()
    return decode_batch(pb.FlowBatch.FromString(data))


def test_round_trip_every_table_and_dtype() -> None:
    b = sample()
    out, seq = wire_round_trip(b, 7)
    assert seq == 7
    assert_same(b, out)


def test_round_trip_empty_batch() -> None:
    b = FlowBatch.empty("h", 10)
    out, seq = wire_round_trip(b, 1)
    assert seq == 1
    assert_same(b, out)
    msg = encode_batch(b, 1)
    assert (msg.first_start_ns, msg.last_start_ns) == (0, 0)


def test_addresses_keep_trailing_zero_bytes() -> None:
    b = FlowBatch.empty("h", 10)
    b.flows = empty(FLOW_COLUMNS, 2)
    b.flows["src_ip"] = np.array([b"\x20\x01" + b"\x00" * 14, bytes(16)], dtype="S16")
    b.flows["start_ns"][:] = T0
    out, _ = wire_round_trip(b, 1)
    assert out.flows["src_ip"].tobytes() == b.flows["src_ip"].tobytes()


def test_columns_are_raw_little_endian_and_strings_a_dictionary() -> None:
    b = sample(10)
    msg = encode_batch(b, 3)
    cols = {c.name: c for c in msg.flows.columns}
    assert cols["bytes"].dtype == "<u8"
    assert cols["bytes"].data == b.flows["bytes"].astype("<u8").tobytes()
    assert cols["src_ip"].dtype == "|S16" and len(cols["src_ip"].data) == 16 * 10
    assert cols["app"].dtype == "str"
    assert sorted(cols["app"].strings) == sorted(set(b.flows["app"].tolist()))
    assert len(cols["app"].data) == 4 * 10
    assert msg.first_start_ns == T0 and msg.last_start_ns == T0 + 20 * 10**9
    assert msg.flows.rows == 10


def test_encode_accepts_safe_casts_and_big_endian() -> None:
    b = sample(5)
    b.flows["bytes"] = b.flows["bytes"].astype(">u8")
    b.sizes["frame_len"] = b.sizes["frame_len"].astype(np.uint16)  # fits in the declared u4
    out, _ = wire_round_trip(b, 1)
    assert out.flows["bytes"].tolist() == b.flows["bytes"].tolist()
    assert out.sizes["frame_len"].dtype == np.uint32


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.flows.__setitem__("bytes", b.flows["bytes"].astype(np.float64)),
     r"^flows\.bytes: dtype <f8, expected <u8$"),
    (lambda b: b.flows.__setitem__("packets", b.flows["packets"][:-1]),
     r"^flows\.packets: 4 values, expected 5"),
    (lambda b: b.stats.pop("source"), r"^stats\.source: column missing$"),
    (lambda b: b.sizes.__setitem__("extra", b.sizes["packets"]), r"^sizes: unknown column"),
    (lambda b: b.flows.__setitem__("app", np.array([1, 2, 3, 4, 5], dtype=object)),
     r"^flows\.app: value 1 is not a string$"),
])
def test_encode_refuses_tables_that_break_the_contract(
        change: Callable[[FlowBatch], object], message: str) -> None:
    b = sample(5)
    change(b)
    with pytest.raises(WireError, match=message):
        encode_batch(b, 1)


def good() -> pb.FlowBatch:
    return encode_batch(sample(6), 4)


def col(msg: pb.FlowBatch, table: str, name: str) -> pb.Column:
    return next(c for c in getattr(msg, table).columns if c.name == name)


def drop_col(msg: pb.FlowBatch, table: str, name: str) -> None:
    t = getattr(msg, table)
    keep = [c for c in t.columns if c.name != name]
    del t.columns[:]
    t.columns.extend(keep)


# (what is broken, how, the one line expected)
MALFORMED: list[tuple[str, Callable[[pb.FlowBatch], object], str]] = [
    ("seq zero", lambda m: setattr(m, "seq", 0), r"^FlowBatch: seq must be > 0$"),
    ("no host", lambda m: setattr(m, "host", ""), r"^FlowBatch 4: host is empty$"),
    ("interval zero", lambda m: setattr(m, "interval_s", 0),
     r"^FlowBatch 4: interval_s must be > 0$"),
    ("table missing", lambda m: m.ClearField("stats"), r"^FlowBatch 4: stats: table missing$"),
    ("unknown column", lambda m: m.flows.columns.add(name="evil", dtype="<u8"),
     r"^FlowBatch 4: flows: unknown column 'evil'$"),
    ("column twice", lambda m: m.sizes.columns.append(col(m, "sizes", "packets")),
     r"^FlowBatch 4: sizes\.packets: column sent twice$"),
    ("column missing", lambda m: drop_col(m, "flows", "ttl_sq"),
     r"^FlowBatch 4: flows\.ttl_sq: column missing$"),
    ("wrong dtype", lambda m: setattr(col(m, "flows", "bytes"), "dtype", "<i8"),
     r"^FlowBatch 4: flows\.bytes: dtype '<i8', expected '<u8'$"),
    ("big endian", lambda m: setattr(col(m, "flows", "bytes"), "dtype", ">u8"),
     r"^FlowBatch 4: flows\.bytes: dtype '>u8', expected '<u8'$"),
    ("short address", lambda m: setattr(col(m, "flows", "src_ip"), "dtype", "|S4"),
     r"^FlowBatch 4: flows\.src_ip: dtype '\|S4', expected '\|S16'$"),
    ("ragged bytes", lambda m: setattr(col(m, "flows", "bytes"), "data",
                                       col(m, "flows", "bytes").data[:-3]),
     r"^FlowBatch 4: flows\.bytes: 45 bytes is not a multiple of the 8-byte item size$"),
    ("unequal lengths", lambda m: setattr(col(m, "flows", "bytes"), "data",
                                          col(m, "flows", "bytes").data[:-8]),
     r"^FlowBatch 4: flows\.bytes: 5 rows, table says 6$"),
    ("rows lie", lambda m: setattr(m.stats, "rows", 99),
     r"^FlowBatch 4: stats\.start_ns: \d+ rows, table says 99$"),
    ("string index out of range", lambda m: setattr(
        col(m, "flows", "app"), "data", np.full(6, 9, "<u4").tobytes()),
     r"^FlowBatch 4: flows\.app: string index 9 out of range \(\d strings\)$"),
    ("strings on a number", lambda m: col(m, "sizes", "packets").strings.append("x"),
     r"^FlowBatch 4: sizes\.packets: strings given for a <u8 column$"),
    ("string as numbers", lambda m: setattr(col(m, "stats", "source"), "dtype", "<u4"),
     r"^FlowBatch 4: stats\.source: dtype '<u4', expected 'str'$"),
    ("span lies", lambda m: setattr(m, "last_start_ns", m.first_start_ns),
     r"^FlowBatch 4: interval starts \d+\.\.\d+ lie outside first_start_ns\.\.last_start_ns"),
]


@pytest.mark.parametrize(("what", "breaks", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_decode_refuses_malformed_messages(what: str, breaks: Callable[[pb.FlowBatch], object],
                                           message: str) -> None:
    msg = good()
    breaks(msg)
    with pytest.raises(WireError, match=message) as info:
        decode_batch(pb.FlowBatch.FromString(msg.SerializeToString()))
    assert "\n" not in info.value.message
    assert isinstance(info.value, InputError)


def test_decoded_numbers_are_read_only_views() -> None:
    out, _ = decode_batch(good())
    with pytest.raises(ValueError):
        out.flows["bytes"][0] = 1


def test_wire_dtypes_follow_records_py() -> None:
    assert wire_dtype(np.uint8) == "|u1"
    assert wire_dtype(np.int64) == "<i8"
    assert wire_dtype("S16") == "|S16"
    assert wire_dtype(object) == "str"
    assert [t for t, _ in TABLES] == ["flows", "chains", "sizes", "stats", "names"]
    assert [s for _, s in TABLES] == [FLOW_COLUMNS, CHAIN_COLUMNS, SIZE_COLUMNS, STAT_COLUMNS,
                                      NAME_COLUMNS]


def test_split_batch_keeps_every_row_in_order() -> None:
    b = sample(250)
    pieces = split_batch(b, 100)
    assert [len(p.flows["bytes"]) for p in pieces] == [100, 100, 50]
    for table, spec in TABLES:
        for name in spec:
            joined = np.concatenate([getattr(p, table)[name] for p in pieces])
            assert joined.tolist() == getattr(b, table)[name].tolist()
    assert split_batch(b, 1000) == [b]
    assert batch_span(pieces[0])[0] >= batch_span(b)[0]
