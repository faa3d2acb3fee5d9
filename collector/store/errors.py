"""The one exception type of the store."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation failed. The message is one line naming the target and the cause."""


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an error message (ClickHouse appends stack traces)."""
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
