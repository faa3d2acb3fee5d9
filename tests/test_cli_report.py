"""``netwarden report ...``: output formats, options and exit codes, on a real store."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.report_flows import T0, S, interval_start, load_store

from netwarden.cli.main import main
from netwarden.collector.reports import ConversationsParams, TopParams, conversations, talkers


@pytest.fixture(scope="module")
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "chdb")


@pytest.fixture
def base(store: Any, chdb_path: Path) -> list[str]:
    """``--store``/``--database`` options naming the loaded store."""
    return ["--store", str(chdb_path), "--database", store.database]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seconds(ns: int) -> str:
    return f"{ns // S}.{ns % S:09d}"


def test_conversations_json_is_the_report_object(
        store: Any, base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "report", "conversations", "--kind", "tcp", *base,
                         "--format", "json")
    assert (code, err) == (0, "")
    obj = json.loads(out)
    assert obj["report"] == "conversations"
    assert obj["kind"] == "tcp"
    assert obj["origin_ns"] == T0
    assert obj["filters"] == {"since": None, "until": None, "hosts": [], "top": None}
    assert obj["rows"] == conversations(store, ConversationsParams(kind="tcp")).rows
    assert [(r["host"], r["a"], r["port_a"], r["frames"]) for r in obj["rows"]] == [
        ("beta", "10.0.0.1", 40000, 10), ("alpha", "10.0.0.2", 80, 6),
        ("alpha", "10.0.0.1", 40000, 3), ("alpha", "2001::a", 443, 1)]


def test_conversations_top_and_host(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "conversations", "--kind", "ip", "--host", "alpha",
                       "--top", "2", *base, "--format", "json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [(r["a"], r["b"], r["frames"], r["bytes"]) for r in rows] == [
        ("10.0.0.2", "10.0.0.1", 9, 780), ("10.0.0.1", "10.0.0.3", 2, 200)]


def test_io_csv_with_interval_and_host(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "io", "--interval", "20", "--host", "alpha", *base,
                       "--format", "csv")
    assert code == 0
    assert out == "start,frames,bytes\n0,17,3636\n20,3,300\n"


def test_io_time_range_in_epoch_seconds_and_iso(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    since, until = seconds(interval_start(1)), seconds(interval_start(3))
    code, out, _ = run(capsys, "report", "io", "--since", since, "--until", until, *base,
                       "--format", "json")
    assert code == 0
    obj = json.loads(out)
    assert obj["rows"] == [{"start": 0, "frames": 5, "bytes": 460},
                           {"start": 10, "frames": 3, "bytes": 300}]
    assert obj["interval"] == 10
    assert obj["origin_ns"] == interval_start(1)
    code, out2, _ = run(capsys, "report", "io", "--since", obj["filters"]["since"],
                        "--until", obj["filters"]["until"], *base, "--format", "json")
    assert code == 0
    assert json.loads(out2) == obj


def test_relative_since_after_the_data_selects_nothing(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # the records lie about a day back
    code, out, _ = run(capsys, "report", "talkers", "--since", "2h", *base, "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"] == []
    code, out, _ = run(capsys, "report", "talkers", "--since", "3d", *base, "--format", "json")
    assert len(json.loads(out)["rows"]) == 10


def test_talkers_table_is_humanised(base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "talkers", *base)
    assert code == 0
    assert "Top talkers" in out
    assert "Address" in out
    assert "10.0.0.1" in out and "6.48 kB" in out
    assert "172.16.0.1" not in out  # 11th: beyond the default top 10
    assert out.rstrip().splitlines()[-1] == "10 rows"


def test_ports_to_an_output_file(base: list[str], capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path) -> None:
    target = tmp_path / "ports.csv"
    code, out, _ = run(capsys, "report", "ports", "--top", "3", *base, "--format", "csv",
                       "--output", str(target))
    assert (code, out) == (0, "")
    assert list(csv.reader(io.StringIO(target.read_text()))) == [
        ["key", "bytes", "frames"], ["tcp/40000", "6280", "19"], ["tcp/80", "6280", "19"],
        ["udp/5000", "600", "1"]]


def test_protocols_csv_is_the_flattened_tree(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "protocols", "--host", "alpha", *base, "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == ["depth,path,protocol,frames,bytes", "0,eth,eth,20,3936",
                         "1,eth:arp,arp,1,42", "1,eth:ip,ip,17,1780"]
    assert "5,eth:ip:udp:teredo:ipv6:tcp,tcp,1,150" in lines


def test_protocols_json_rows_are_the_tree(
        base: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "protocols", "--host", "beta", *base, "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"] == [
        {"protocol": "eth", "frames": 10, "bytes": 5500, "children": [
            {"protocol": "ip", "frames": 10, "bytes": 5500, "children": [
                {"protocol": "tcp", "frames": 10, "bytes": 5500, "children": []}]}]}]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conversations", "--kind", "sctp"], "'sctp' is not one of"),
        (["talkers", "--top", "0"], "--top"),
        (["io", "--interval", "0"], "--interval"),
        (["io", "--since", "yesterday"], "not an ISO 8601 time"),
        (["io", "--format", "xml"], "--format"),
        (["io", "--since", "1h", "--until", "2h"], "empty time range"),
        (["io", "--interval", "15"], "--interval 15 is not a multiple of the stored interval"),
    ],
)
def test_bad_options_exit_2(base: list[str], capsys: pytest.CaptureFixture[str],
                            argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "report", *argv, *base)
    assert code == 2
    assert out == ""
    assert message in err


def test_a_missing_store_exits_1_with_one_line(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    code, out, err = run(capsys, "report", "talkers", "--store", str(tmp_path / "nope"))
    assert out == ""
    assert code == 1
    assert err == f"netwarden: error: store not found: {tmp_path / 'nope'}: no such directory " \
                  "(give --store, or run `netwarden analyze` first)\n"
    assert not (tmp_path / "nope").exists()


def test_a_directory_without_chdb_data_exits_1(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    code, _, err = run(capsys, "report", "io", "--store", str(tmp_path))
    assert code == 1
    assert "holds no chdb data" in err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_database_exits_1_and_is_not_created(
        store: Any, chdb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = f"nw_empty_{uuid.uuid4().hex[:10]}"
    try:
        code, out, err = run(capsys, "report", "ports", "--store", str(chdb_path),
                             "--database", database)
        created = store.query(f"SELECT count() FROM system.databases WHERE name = '{database}'")
    finally:
        store.execute(f"DROP DATABASE IF EXISTS {database}")
    assert (code, out) == (1, "")
    assert err.startswith("netwarden: error: cannot open store ")
    assert f"database '{database}' has no netwarden tables" in err
    assert err.count("\n") == 1
    assert created == [(0,)]


def test_store_default_comes_from_the_config_file(
        store: Any, chdb_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "netwarden.toml"
    config.write_text(f'[store]\ntarget = "{chdb_path}"\ndatabase = "{store.database}"\n')
    code, out, _ = run(capsys, "report", "talkers", "--config", str(config), "--top", "1",
                       "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"] == [{"key": "10.0.0.1", "bytes": 6480, "frames": 21}]


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--help")
    assert code == 0
    for name in ("conversations", "protocols", "io", "talkers", "ports"):
        assert name in out
    code, out, _ = run(capsys, "report", "io", "--help")
    assert code == 0
    for option in ("--interval", "--store", "--database", "--since", "--until", "--host",
                   "--format", "--output", "30m, 2h, 7d"):
        assert option in out


@pytest.fixture(scope="module")
def server_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from load_store(request, "server")


@pytest.mark.server
def test_the_command_on_a_server_in_a_subprocess(server_store: Any,
                                                 clickhouse_server: str) -> None:
    netwarden = Path(sys.executable).with_name("netwarden")
    proc = subprocess.run(
        [str(netwarden), "report", "talkers", "--store", clickhouse_server, "--database",
         server_store.database, "--format", "json", "--top", "4"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, NO_COLOR="1"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == talkers(server_store, TopParams(top=4)).rows
    assert [r["key"] for r in json.loads(proc.stdout)["rows"]] == [
        "10.0.0.1", "10.0.0.2", "2001:db8::10", "2001:db8::20"]


def _talkers(capsys: pytest.CaptureFixture[str], base: list[str], *args: str
             ) -> tuple[int, str, str]:
    return run(capsys, "report", "talkers", "--top", "50", *base, "--format", "json", *args)


def test_host_globs_and_groups_select_hosts(
        base: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    every = json.loads(_talkers(capsys, base)[1])["rows"]
    alpha = json.loads(_talkers(capsys, base, "--host", "alpha")[1])["rows"]
    beta = json.loads(_talkers(capsys, base, "--host", "beta")[1])["rows"]
    assert alpha != every and beta != every
    assert json.loads(_talkers(capsys, base, "--host", "al*")[1])["rows"] == alpha
    assert json.loads(_talkers(capsys, base, "--host", "?et[a-c]")[1])["rows"] == beta
    assert json.loads(_talkers(capsys, base, "--host", "*a")[1])["rows"] == every
    policies = tmp_path / "groups.yaml"
    policies.write_text("groups:\n  greek-a:\n    hosts: [al*]\n  tagged:\n"
                        "    labels: {rack: r1}\n")
    code, out, err = _talkers(capsys, base, "--group", "greek-a", "--policies", str(policies))
    assert (code, err) == (0, "") and json.loads(out)["rows"] == alpha
    assert json.loads(out)["filters"]["hosts"] == ["al*"]
    code, _, err = _talkers(capsys, base, "--group", "nope", "--policies", str(policies))
    assert code == 2 and "--group nope: no such group in the policy files (groups: greek-a, " \
        "tagged)" in err
    code, _, err = _talkers(capsys, base, "--group", "tagged", "--policies", str(policies))
    assert code == 2 and "selects hosts by labels only" in err
    code, _, err = _talkers(capsys, base, "--group", "greek-a")
    assert code == 2 and "--group needs --policies FILE" in err
