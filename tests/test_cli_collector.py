"""``netwarden collector serve``: config checks, and the real thing in a subprocess with a
sensor subprocess, ``report --collector`` and SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from fixtures.clickhouse_server import free_port
from fixtures.collector import PCAPS, truth

from netwarden.cli.main import main
from netwarden.collector.config import CollectorConfig, CollectorSection
from netwarden.config import StoreConfig, load_config

REPO = Path(__file__).resolve().parents[1]
NETWARDEN = Path(sys.executable).with_name("netwarden")
EXAMPLE = REPO / "deploy" / "collector.example.toml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dump_shows_the_effective_config(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    code, out, _ = run(capsys, "collector", "serve", "--listen", "[::]:6000", "--store",
                       "/var/lib/nw", "--dump")
    assert code == 0
    data = tomllib.loads(out)
    assert data["collector"]["listen"] == "[::]:6000"
    assert data["store"]["target"] == "/var/lib/nw"
    assert data["collector"]["max_message_bytes"] == 64 * 1024 * 1024
    (tmp_path / "c.toml").write_text(out)
    assert load_config(CollectorConfig, tmp_path / "c.toml") == load_config(
        CollectorConfig, None, {"collector.listen": "[::]:6000", "store.target": "/var/lib/nw"})


def test_check_accepts_a_valid_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text('[collector]\nlisten = "0.0.0.0:7000"\nmax_streams = 8\n')
    code, out, err = run(capsys, "collector", "serve", "--config", str(cfg), "--check")
    assert (code, err) == (0, "")
    assert out == f"{cfg}: collector configuration is valid\n"


@pytest.mark.parametrize(("text", "args", "lines"), [
    ('[collector]\nlisten = "nowhere"\n', [],
     ["{file}: collector.listen: 'nowhere' is not HOST:PORT (an IPv6 address goes in "
      "brackets: [::1]:50051)"]),
    ('[collector]\nmax_streams = 0\nlissen = "x:1"\n', [],
     ["{file}: collector.max_streams: Input should be greater than or equal to 1",
      "{file}: collector.lissen: unknown key"]),
    ("", ["--listen", "127.0.0.1:99999"],
     ["command line: collector.listen: '127.0.0.1:99999': port 99999 is out of range"]),
])
def test_check_refuses_a_bad_config_with_exit_2(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, text: str, args: list[str],
                                                lines: list[str]) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(text)
    code, out, err = run(capsys, "collector", "serve", "--config", str(cfg), *args, "--check")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"netwarden: error: {line.format(file=cfg)}" for line in lines]


def test_example_config_loads_and_mentions_every_key() -> None:
    cfg = load_config(CollectorConfig, EXAMPLE)
    assert cfg == CollectorConfig()
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in (CollectorSection, StoreConfig):
        for name in section.model_fields:
            assert re.search(rf"^(# )?{name} = ", text, re.M), f"example lacks {name}"


def test_report_collector_and_store_are_mutually_exclusive(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "report", "talkers", "--collector", "127.0.0.1:1",
                       "--store", "/tmp/x")
    assert code == 2
    assert err == ("netwarden: error: --collector and --store are mutually exclusive: the "
                   "collector reads its own store\n")
    code, _, err = run(capsys, "report", "talkers", "--collector", "no-port")
    assert code == 2 and "--collector: 'no-port' is not HOST:PORT" in err


def test_report_collector_unreachable_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, _, err = run(capsys, "report", "io", "--collector", f"127.0.0.1:{port}")
    assert code == 1
    assert err.startswith(f"netwarden: error: cannot reach the collector at 127.0.0.1:{port}")


def wait_port(port: int, proc: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"collector exited with {proc.returncode}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout_s} s")


def test_serve_sensor_report_and_sigterm(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    store = tmp_path / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    collector = subprocess.Popen(
        [str(NETWARDEN), "--log-json", "collector", "serve", "--listen", address, "--store",
         str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_port(port, collector)
        sensor = subprocess.run(
            [str(NETWARDEN), "--log-json", "sensor", "run", "--collector", address, "--host",
             "wiki", "--interval", "1", "--replay", str(PCAPS / "zeek-wikipedia.pcap")],
            capture_output=True, text=True, timeout=60, env=env)
        assert sensor.returncode == 0, sensor.stderr

        code, out, err = run(capsys, "report", "io", "--collector", address, "--format", "json")
        assert code == 0, err
        remote = json.loads(out)
        frames, nbytes = truth("zeek-wikipedia.pcap")
        assert sum(r["frames"] for r in remote["rows"]) == frames
        assert sum(r["bytes"] for r in remote["rows"]) == nbytes
        assert remote["filters"]["hosts"] == []

        collector.send_signal(signal.SIGTERM)
        assert collector.wait(timeout=20) == 0
        events = [json.loads(line)["event"] for line in collector.stderr.read().splitlines()
                  if line.startswith("{")] if collector.stderr else []
        assert "sensor connected" in events and events[-1] == "collector stopped"
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()

    # the embedded store the collector held gives the same answer read directly
    local = subprocess.run([str(NETWARDEN), "report", "io", "--store", str(store), "--format",
                            "json"], capture_output=True, text=True, timeout=60)
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == remote
