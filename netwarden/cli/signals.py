"""Stopping long-running commands (``collector serve``, ``sensor run``) on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from netwarden.logging import get_logger

__all__ = ["stop_on_signals"]

log = get_logger("netwarden.cli")


class stop_on_signals:
    """Set ``event`` on SIGTERM/SIGINT inside the block; the old handlers come back after.

    Must be entered in the main thread (Python runs signal handlers there).
    """

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        self.event.set()

    def __enter__(self) -> stop_on_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
