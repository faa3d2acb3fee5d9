"""Rendering report results as JSON, CSV and tables (hand-made results, no store)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from netwarden.collector.reports.output import human_bytes, render, write
from netwarden.collector.reports.result import ReportResult

FILTERS = {"since": None, "until": None, "hosts": []}


def conv_result() -> ReportResult:
    return ReportResult(
        report="conversations",
        filters=dict(FILTERS, top=None),
        rows=[
            {"host": "h1", "a": "10.0.0.1", "port_a": 40000, "b": "10.0.0.2", "port_b": 80,
             "frames_a_to_b": 3, "bytes_a_to_b": 12_345, "frames_b_to_a": 1,
             "bytes_b_to_a": 60, "frames": 4, "bytes": 12_405, "rel_start": 0.25,
             "duration": 10.123456789},
        ],
        columns=["host", "a", "port_a", "b", "port_b", "frames_a_to_b", "bytes_a_to_b",
                 "frames_b_to_a", "bytes_b_to_a", "frames", "bytes", "rel_start", "duration"],
        meta={"kind": "tcp", "origin": "2024-03-01T10:00:00Z", "origin_ns": 1},
    )


def tree_result() -> ReportResult:
    leaf = {"protocol": "tcp", "frames": 2, "bytes": 200, "children": []}
    return ReportResult(
        report="protocols", filters=FILTERS,
        rows=[{"protocol": "eth", "frames": 3, "bytes": 242, "children": [
            {"protocol": "arp", "frames": 1, "bytes": 42, "children": []},
            {"protocol": "ip", "frames": 2, "bytes": 200, "children": [leaf]},
        ]}],
        columns=["protocol", "frames", "bytes"],
    )


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1 kB"), (1536, "1.54 kB"), (12_405, "12.4 kB"),
     (468_123, "468 kB"), (5_500_000, "5.5 MB"), (3 * 10**12, "3 TB"), (7 * 10**18, "7000 PB")],
)
def test_human_bytes_uses_powers_of_1000(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_json_is_the_report_object_with_meta_and_exact_rows() -> None:
    obj = json.loads(render(conv_result(), "json"))
    assert list(obj) == ["report", "filters", "kind", "origin", "origin_ns", "rows"]
    assert obj["report"] == "conversations"
    assert obj["kind"] == "tcp"
    assert obj["rows"][0]["bytes_a_to_b"] == 12_345
    assert obj["rows"][0]["duration"] == 10.123456789


def test_csv_has_a_header_and_exact_values_in_column_order() -> None:
    lines = list(csv.reader(io.StringIO(render(conv_result(), "csv"))))
    assert lines[0] == conv_result().columns
    assert lines[1] == ["h1", "10.0.0.1", "40000", "10.0.0.2", "80", "3", "12345", "1", "60",
                        "4", "12405", "0.25", "10.123456789"]
    assert len(lines) == 2


def test_csv_flattens_the_protocol_tree_in_tree_order() -> None:
    text = render(tree_result(), "csv")
    assert text == (
        "depth,path,protocol,frames,bytes\n"
        "0,eth,eth,3,242\n"
        "1,eth:arp,arp,1,42\n"
        "1,eth:ip,ip,2,200\n"
        "2,eth:ip:tcp,tcp,2,200\n"
    )


def test_table_humanises_bytes_and_hides_a_single_host() -> None:
    text = render(conv_result(), "table")
    assert "TCP conversations" in text
    assert "12.3 kB" in text  # bytes A→B
    assert "12.4 kB" in text  # total
    assert "40000" in text and "40,000" not in text  # ports are not numbers to group
    assert "10.123457" in text
    assert "Host" not in text  # one host: named below the table instead
    assert "host h1" in text
    assert "origin 2024-03-01T10:00:00Z" in text


def test_table_shows_the_host_column_with_several_hosts() -> None:
    result = conv_result()
    result.rows.append(dict(result.rows[0], host="h2"))
    text = render(result, "table")
    assert "Host" in text and "h2" in text


def test_table_indents_the_protocol_tree() -> None:
    lines = render(tree_result(), "table").splitlines()
    assert any("│ eth " in ln for ln in lines)
    assert any("│   ip " in ln for ln in lines)
    assert any("│     tcp " in ln for ln in lines)
    assert "3 frames" in lines[-1]


def test_table_of_an_empty_result_says_so() -> None:
    result = ReportResult(report="talkers", filters=dict(FILTERS, top=10), rows=[],
                          columns=["key", "bytes", "frames"])
    text = render(result, "table")
    assert "Top talkers" in text
    assert "0 rows" in text


def test_write_to_a_file_stream_does_not_wrap_wide_tables(tmp_path: object) -> None:
    result = conv_result()
    result.rows[0]["a"] = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"
    buf = io.StringIO()
    write(result, "table", buf)
    assert "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff" in buf.getvalue()


def test_render_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(conv_result(), "xml")  # type: ignore[arg-type]
