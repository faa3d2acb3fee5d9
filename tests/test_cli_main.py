from __future__ import annotations

import importlib.metadata
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The installed console script of the venv running the tests (.venv/bin/netwarden).
NETWARDEN = Path(sys.executable).parent / "netwarden"

# Adds throw-away commands to the real root group, then runs the real main().
HARNESS = """
import signal, sys, time
import click
signal.signal(signal.SIGINT, signal.default_int_handler)
from netwarden.cli.main import cli, main
from netwarden.errors import ConfigError, InputError

@cli.command("bad-config")
def bad_config() -> None:
    raise ConfigError("a.toml: store.batch_rows: too small\\na.toml: pipeline.x: unknown key")

@cli.command("bad-input")
def bad_input() -> None:
    raise InputError("trace.pcap: not a capture file")

@cli.command("crash")
def crash() -> None:
    raise KeyError("missing")

@cli.command("wait")
def wait() -> None:
    print("ready", flush=True)
    time.sleep(60)

sys.exit(main())
"""


def netwarden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NETWARDEN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HARNESS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_help_lists_commands() -> None:
    proc = netwarden("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: netwarden ")
    commands = proc.stdout.split("Commands:")[1].split()
    assert "analyze" in commands
    assert "report" in commands
    assert "--log-level" in proc.stdout and "--log-json" in proc.stdout


def test_version() -> None:
    proc = netwarden("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"netwarden {importlib.metadata.version('netwarden')}\n"


def test_unknown_option_exits_2() -> None:
    proc = netwarden("--no-such-option")
    assert proc.returncode == 2
    assert "No such option: --no-such-option" in proc.stderr or "'--no-such-option'" in proc.stderr


def test_unknown_command_exits_2() -> None:
    proc = netwarden("frobnicate")
    assert proc.returncode == 2
    assert "frobnicate" in proc.stderr


def test_bad_log_level_exits_2() -> None:
    proc = netwarden("--log-level", "loud", "analyze")
    assert proc.returncode == 2
    assert "--log-level" in proc.stderr


def test_config_error_prints_each_line_and_exits_2() -> None:
    proc = harness("bad-config")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "netwarden: error: a.toml: store.batch_rows: too small",
        "netwarden: error: a.toml: pipeline.x: unknown key",
    ]
    assert proc.stdout == ""


def test_input_error_exits_1() -> None:
    proc = harness("bad-input")
    assert proc.returncode == 1
    assert proc.stderr == "netwarden: error: trace.pcap: not a capture file\n"


def test_unexpected_exception_is_one_line_without_traceback() -> None:
    proc = harness("crash")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("netwarden: error: unexpected KeyError: 'missing'")
    assert "Traceback" not in proc.stderr


def test_unexpected_exception_traceback_at_debug_level() -> None:
    proc = harness("--log-level", "debug", "crash")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "netwarden: error: unexpected KeyError: 'missing'"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, "wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
