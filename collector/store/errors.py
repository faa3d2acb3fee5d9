"""The one exception type of the store."""

from __future__ import annotations

from netwarden.errors import RuntimeFailure


class StoreError(RuntimeFailure):
    """A store operation failed. The message is one line naming the target and the cause.

    A :class:`~netwarden.errors.RuntimeFailure`, so the CLI prints it as one line, exit 1.
    """


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an error message (ClickHouse appends stack traces)."""
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
