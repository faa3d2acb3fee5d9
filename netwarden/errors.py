"""The exceptions netwarden raises on purpose, each with the exit code the CLI uses.

Messages are one line per problem and name the file, key or field at fault, so the CLI can
print them as they are (``netwarden: error: <line>``). A :class:`ConfigError` may carry
several lines, one per problem found.
"""

from __future__ import annotations

from typing import ClassVar


class NetwardenError(Exception):
    """Base of every error netwarden reports to the user without a traceback."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def lines(self) -> list[str]:
        """The message split into the lines the CLI prints (never empty)."""
        return self.message.splitlines() or [type(self).__name__]


class UsageError(NetwardenError):
    """The command line asks for something impossible (bad combination of options)."""

    exit_code: ClassVar[int] = 2


class ConfigError(NetwardenError):
    """The configuration (file or overrides) is invalid; one line per problem."""

    exit_code: ClassVar[int] = 2


class InputError(NetwardenError):
    """An input file is missing, unreadable or not in the expected format."""

    exit_code: ClassVar[int] = 1


class RuntimeFailure(NetwardenError):
    """Something failed while running (a subprocess, the store, the network)."""

    exit_code: ClassVar[int] = 1
