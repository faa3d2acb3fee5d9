"""Export of real analysed captures from a chdb store: formats, sums, anonymisation, CLI."""

from __future__ import annotations

import csv
import io
import ipaddress
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from netwarden.cli.main import cli, main
from netwarden.collector.anonymize import PrefixAnonymizer
from netwarden.collector.export import EXPORT_COLUMNS, export
from netwarden.collector.reports import Filters
from netwarden.collector.store import Store, open_store
from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings

PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps"
CAPTURES = ("zeek-wikipedia.pcap", "tcpdump-icmpv6.pcap")
pytestmark = pytest.mark.skipif(not all((PCAPS / c).exists() for c in CAPTURES),
                                reason=f"captures missing in {PCAPS}")


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[Store]:
    s = open_store(str(chdb_path), database=f"nw_export_{uuid.uuid4().hex[:10]}")
    s.start()
    try:
        for name in CAPTURES:
            FileAnalyzer(name, PipelineSettings()).run(PCAPS / name, s.write)
        s.flush()
        yield s
    finally:
        try:
            s.drop_database()
        finally:
            s.stop()


def _totals(store: Store, where: str = "1") -> tuple[int, int]:
    rows, total = store.query(f"SELECT count(), sum(bytes) FROM flows WHERE {where}")[0]
    return int(rows), int(total)


def _addresses(store: Store) -> set[str]:
    rows = store.query("SELECT DISTINCT replaceRegexpOne(IPv6NumToString(a), '^::ffff:', '') "
                       "FROM (SELECT arrayJoin([src_ip, dst_ip]) AS a FROM flows) "
                       "WHERE a != toFixedString(repeat(char(0), 16), 16)")
    return {str(r[0]) for r in rows}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_and_json_match_the_store(store: Store) -> None:
    count, total = _totals(store)
    assert count > 10
    out = io.StringIO()
    stats = export(store, Filters(), "csv", out, chunk_rows=7)
    rows = _csv_rows(out.getvalue())
    assert stats.chunks > 1
    assert len(rows) == count == stats.rows
    assert sum(int(r["bytes"]) for r in rows) == total == stats.bytes
    assert tuple(rows[0]) == EXPORT_COLUMNS
    texts = {r["src_ip"] for r in rows} | {r["dst_ip"] for r in rows}
    assert texts - {""} == _addresses(store)
    assert any(isinstance(ipaddress.ip_address(t), ipaddress.IPv4Address) for t in texts if t)
    assert any(isinstance(ipaddress.ip_address(t), ipaddress.IPv6Address) for t in texts if t)

    out = io.StringIO()
    export(store, Filters(hosts=(CAPTURES[1],)), "json", out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    count1, total1 = _totals(store, f"host = '{CAPTURES[1]}'")
    assert len(lines) == count1 and sum(r["bytes"] for r in lines) == total1
    assert {r["host"] for r in lines} == {CAPTURES[1]}
    assert all(isinstance(r["start_ns"], int) and isinstance(r["first_seen"], int)
               for r in lines)


def test_parquet_matches_the_store(store: Store, tmp_path: Path) -> None:
    count, total = _totals(store)
    path = tmp_path / "flows.parquet"
    with path.open("wb") as f:
        export(store, Filters(), "parquet", f, chunk_rows=5)
    table = pq.read_table(path)
    assert table.num_rows == count
    assert sum(table.column("bytes").to_pylist()) == total
    assert table.schema.field("start_ns").type == "int64"
    assert tuple(table.column_names) == EXPORT_COLUMNS


def test_anonymized_export_hides_addresses_and_keeps_subnets(store: Store) -> None:
    originals = _addresses(store)
    out = io.StringIO()
    anon = PrefixAnonymizer("export key")
    export(store, Filters(), "csv", out, anonymizer=anon)
    text = out.getvalue()
    rows = _csv_rows(text)
    fields: set[str] = set()
    for r in rows:
        fields.update(r.values())
    leaked = sorted(a for a in originals if a in fields or f",{a}," in text)
    assert not leaked, f"original addresses in the output: {leaked}"
    assert len(rows) == _totals(store)[0]

    plain = _csv_rows(_export_csv(store))
    mapping: dict[str, str] = {}
    for p, a in zip(plain, rows, strict=True):
        for col in ("src_ip", "dst_ip"):
            assert mapping.setdefault(p[col], a[col]) == a[col]  # consistent
    assert len(set(mapping.values())) == len(mapping)  # injective
    pairs = [(ipaddress.ip_address(orig), ipaddress.ip_address(new))
             for orig, new in mapping.items() if orig]
    assert all(orig.version == new.version for orig, new in pairs)
    shared: list[int] = []
    for (p1, a1), (p2, a2) in itertools.pairwise(pairs):
        if p1.version != p2.version:
            continue
        bits = 32 if p1.version == 4 else 128
        same = bits - (int(p1) ^ int(p2)).bit_length()
        assert bits - (int(a1) ^ int(a2)).bit_length() == same
        shared.append(same)
    assert max(shared) >= 8  # the captures do hold addresses of one subnet


def _export_csv(store: Store) -> str:
    out = io.StringIO()
    export(store, Filters(), "csv", out)
    return out.getvalue()


def test_cli_export(store: Store, chdb_path: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    base = ["export", "--store", str(chdb_path), "--database", store.database]
    assert main([*base, "--format", "parquet"]) == 2
    assert "--output" in capsys.readouterr().err
    out = tmp_path / "x.jsonl"
    assert main([*base, "--format", "json", "--output", str(out), "--host", CAPTURES[0],
                 "--anonymize", "k1"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == _totals(store, f"host = '{CAPTURES[0]}'")[0]
    text = out.read_text()
    assert not [a for a in _addresses(store) if f'"{a}"' in text]
    assert main([*base, "--format", "csv"]) == 0
    assert len(_csv_rows(capsys.readouterr().out)) == _totals(store)[0]
    assert main([*base, "--database", "nw_nothing_here", "--format", "csv"]) == 1
    result = CliRunner().invoke(cli, [*base, "--format", "xml"])
    assert result.exit_code == 2
