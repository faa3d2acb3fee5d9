from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog

from netwarden.errors import UsageError
from netwarden.logging import configure_logging, debug_enabled, get_logger

SCRIPT = """
import logging
from netwarden.logging import configure_logging, get_logger
configure_logging({args})
log = get_logger("netwarden.test", host="h1")
log.debug("hidden detail")
log.info("flushed", rows=1200, table="flows")
logging.getLogger("some.library").warning("disk %s%% full", 93)
print("stdout stays clean")
"""


def run_script(args: str) -> subprocess.CompletedProcess[str]:
    # stderr is a pipe here, never a terminal.
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_json_lines_on_stderr_when_not_a_tty() -> None:
    proc = run_script("")
    assert proc.stdout == "stdout stays clean\n"
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert len(records) == 2  # the debug record is filtered at the default level

    ours, lib = records
    assert ours["event"] == "flushed"
    assert ours["level"] == "info"
    assert ours["logger"] == "netwarden.test"
    assert ours["rows"] == 1200
    assert ours["table"] == "flows"
    assert ours["host"] == "h1"
    assert datetime.fromisoformat(ours["timestamp"].replace("Z", "+00:00")).tzinfo is not None

    # Standard-library records come out in the same shape.
    assert lib["event"] == "disk 93% full"
    assert lib["level"] == "warning"
    assert lib["logger"] == "some.library"
    assert "timestamp" in lib


def test_debug_level_emits_debug_records() -> None:
    proc = run_script('"debug"')
    events = [json.loads(line)["event"] for line in proc.stderr.splitlines()]
    assert events == ["hidden detail", "flushed", "disk 93% full"]


def test_console_format_when_json_is_off() -> None:
    proc = run_script("json=False")
    lines = proc.stderr.splitlines()
    assert len(lines) == 2
    assert "flushed" in lines[0] and "rows=1200" in lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_in_process_reconfigure_does_not_duplicate(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    configure_logging("warning", json=True)
    assert not debug_enabled()
    log = get_logger("netwarden.x")
    log.info("too low")
    log.warning("kept", n=1)
    err = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in err] == ["kept"]

    configure_logging("debug", json=True)
    assert debug_enabled()


def test_unknown_level_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--log-level: unknown level 'loud'"):
        configure_logging("loud")
