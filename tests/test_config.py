from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from netwarden.config import (
    AnalyzeConfig,
    PipelineConfig,
    ReportConfig,
    StoreConfig,
    dump,
    load_config,
)
from netwarden.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "netwarden.example.toml"


def write(tmp_path: Path, text: str, name: str = "netwarden.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_lines(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(excinfo.value).splitlines()


def test_defaults_without_file() -> None:
    cfg = load_config(AnalyzeConfig, None, {})
    assert cfg.pipeline.interval_s == 10
    assert cfg.pipeline.host is None
    assert cfg.pipeline.host_addresses == []
    assert cfg.pipeline.hierarchy is True
    assert cfg.pipeline.hierarchy_max_taps == 16
    assert cfg.pipeline.batch_packets == 65536
    assert cfg.store.target == "./netwarden-data"
    assert cfg.store.database == "netwarden"
    assert cfg.store.batch_rows == 100_000
    assert cfg.store.flush_seconds == 5.0
    assert cfg.store.retention_days == 0


def test_file_values_and_missing_keys_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[pipeline]\ninterval_s = 60\nhost_addresses = ["10.0.0.2", "fe80::1"]\n'
        '[store]\ntarget = "clickhouse://db:9000"\nflush_seconds = 2\n',
    )
    cfg = load_config(AnalyzeConfig, path, {})
    assert cfg.pipeline.interval_s == 60
    assert cfg.pipeline.host_addresses == [
        ipaddress.ip_address("10.0.0.2"),
        ipaddress.ip_address("fe80::1"),
    ]
    assert cfg.store.target == "clickhouse://db:9000"
    assert cfg.store.flush_seconds == 2.0  # a TOML integer is a fine float
    assert cfg.store.batch_rows == 100_000
    assert cfg.pipeline.hierarchy is True


def test_unknown_key_at_nested_path(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\nintervall = 5\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    assert error_lines(excinfo) == [f"{path}: pipeline.intervall: unknown key"]
    assert excinfo.value.exit_code == 2


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[stroe]\ntarget = 'x'\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    assert error_lines(excinfo) == [f"{path}: stroe: unknown key"]


def test_report_config_has_no_pipeline_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\ninterval_s = 5\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(ReportConfig, path, {})
    assert error_lines(excinfo) == [f"{path}: pipeline: unknown key"]


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[pipeline]\ninterval_s = 0\nhierarchy_max_taps = 257\ncolour = 'red'\n"
        "[store]\nbatch_rows = 0\nretention_days = -1\n",
    )
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    assert sorted(error_lines(excinfo)) == sorted(
        [
            f"{path}: pipeline.interval_s: Input should be greater than or equal to 1",
            f"{path}: pipeline.hierarchy_max_taps: Input should be less than or equal to 256",
            f"{path}: pipeline.colour: unknown key",
            f"{path}: store.batch_rows: Input should be greater than 0",
            f"{path}: store.retention_days: Input should be greater than or equal to 0",
        ]
    )


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ('[pipeline]\ninterval_s = "10"\n', "pipeline.interval_s: Input should be a valid integer"),
        ("[pipeline]\nhierarchy = 1\n", "pipeline.hierarchy: Input should be a valid boolean"),
        (
            "[store]\nflush_seconds = 'soon'\n",
            "store.flush_seconds: Input should be a valid number",
        ),
        ("[store]\ntarget = 7\n", "store.target: Input should be a valid string"),
        ("store = 5\n", "store: Input should be a valid dictionary or instance of StoreConfig"),
    ],
)
def test_bad_type_is_not_coerced(tmp_path: Path, toml: str, line: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    assert error_lines(excinfo) == [f"{path}: {line}"]


def test_bad_address_names_the_list_index(tmp_path: Path) -> None:
    path = write(tmp_path, '[pipeline]\nhost_addresses = ["10.0.0.1", "10.0.0.300"]\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    (line,) = error_lines(excinfo)
    assert line.startswith(f"{path}: pipeline.host_addresses[1]: ")
    assert "IPv4 or IPv6 address" in line


def test_database_name_must_be_an_identifier(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\ndatabase = "net; DROP"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(ReportConfig, path, {})
    (line,) = error_lines(excinfo)
    assert line.startswith(f"{path}: store.database: String should match pattern")


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\ninterval_s = 10\nhost = oops\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    lines = error_lines(excinfo)
    assert len(lines) == 1
    assert re.match(rf"^{re.escape(str(path))}:3:\d+: TOML syntax error: ", lines[0]), lines[0]


def test_toml_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\ntarget = "x"\ndatabase = \n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    (line,) = error_lines(excinfo)
    assert line.startswith(f"{path}:3:"), line
    assert "TOML syntax error" in line


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {})
    assert error_lines(excinfo) == [f"{path}: cannot read config: No such file or directory"]


def test_overrides_dotted_and_nested_win_over_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[store]\ntarget = 'from-file'\nbatch_rows = 10\n[pipeline]\nhost = 'a'\n"
    )
    cfg = load_config(
        AnalyzeConfig,
        path,
        {"store.target": "/from/cli", "pipeline": {"interval_s": 30, "host": None}},
    )
    assert cfg.store.target == "/from/cli"
    assert cfg.store.batch_rows == 10  # the rest of the table is kept
    assert cfg.pipeline.interval_s == 30
    assert cfg.pipeline.host == "a"  # None means "option not given"


def test_override_errors_name_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[store]\nbatch_rows = -3\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(AnalyzeConfig, path, {"pipeline.interval_s": 0, "pipeline.nope": 1})
    assert sorted(error_lines(excinfo)) == sorted(
        [
            f"{path}: store.batch_rows: Input should be greater than 0",
            "command line: pipeline.interval_s: Input should be greater than or equal to 1",
            "command line: pipeline.nope: unknown key",
        ]
    )


def test_dump_round_trips_through_load(tmp_path: Path) -> None:
    cfg = AnalyzeConfig(
        pipeline=PipelineConfig(
            interval_s=60,
            host='web "1"\\east',
            host_addresses=[ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::7")],
            hierarchy=False,
            hierarchy_max_taps=3,
            batch_packets=1024,
        ),
        store=StoreConfig(
            target="clickhouse://user@db:9000",
            database="nw_test",
            batch_rows=5,
            flush_seconds=0.25,
            retention_days=30,
        ),
    )
    text = dump(cfg)
    loaded = load_config(AnalyzeConfig, write(tmp_path, text), {})
    assert loaded == cfg


def test_dump_of_defaults_lists_every_key_and_round_trips(tmp_path: Path) -> None:
    cfg = AnalyzeConfig()
    text = dump(cfg)
    assert "[pipeline]" in text and "[store]" in text
    for section in (PipelineConfig, StoreConfig):
        for name in section.model_fields:
            assert re.search(rf"^(# )?{name} = ", text, re.M), name
    assert "# host = (unset)" in text
    assert load_config(AnalyzeConfig, write(tmp_path, text), {}) == cfg


def test_example_config_loads_and_mentions_every_key() -> None:
    cfg = load_config(AnalyzeConfig, EXAMPLE, {})
    assert isinstance(cfg, AnalyzeConfig)
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in (PipelineConfig, StoreConfig):
        for name in section.model_fields:
            assert re.search(rf"^(# )?{name} = ", text, re.M), f"example lacks {name}"
