"""The ``netwarden`` command: root group, subcommand registration and error reporting.

Each subcommand lives in its own module of :mod:`netwarden.cli` and exposes a module-level
``command`` (a :class:`click.Command` or :class:`click.Group`); :data:`SUBCOMMANDS` lists
those modules and :func:`register` adds them to the root group. Keep heavy imports
(numpy, chdb, ...) inside the command functions so ``netwarden --help`` stays fast.

:func:`main` turns errors into exit codes: :class:`~netwarden.errors.NetwardenError`
prints ``netwarden: error: <line>`` for each line of its message and exits with its
``exit_code`` (2 for usage/config, 1 otherwise); click's usage errors exit 2;
Ctrl-C exits 130; any other exception prints one line and exits 1 (with the traceback at
``--log-level debug``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

import click

from netwarden.cli import analyze, collector, export, policy, report, sensor
from netwarden.errors import NetwardenError
from netwarden.logging import LEVELS, configure_logging, debug_enabled

__all__ = ["SUBCOMMANDS", "cli", "main", "register"]

PROG = "netwarden"
EXIT_INTERRUPTED = 130


@click.group(name=PROG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netwarden", prog_name=PROG, message="%(prog)s %(version)s")
@click.option(
    "--log-level",
    type=click.Choice(list(LEVELS), case_sensitive=False),
    default="info",
    show_default=True,
    help="Least severe log records written to stderr.",
)
@click.option(
    "--log-json/--no-log-json",
    default=None,
    help="Log JSON lines (default: when stderr is not a terminal).",
)
def cli(log_level: str, log_json: bool | None) -> None:
    """Know, and cap, what a fleet of Linux hosts sends and receives."""
    configure_logging(log_level, json=log_json)


# Modules defining one subcommand each, as ``command``.
SUBCOMMANDS: tuple[ModuleType, ...] = (analyze, report, collector, sensor, export, policy)


def register(group: click.Group, modules: Sequence[ModuleType]) -> None:
    """Add each module's ``command`` to ``group``."""
    for module in modules:
        command = getattr(module, "command", None)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module.__name__}: no click command named 'command'")
        group.add_command(command)


register(cli, SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``netwarden`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except NetwardenError as exc:
        for line in exc.lines():
            click.echo(f"{PROG}: error: {line}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        # click turns Ctrl-C (and EOF on a prompt) into Abort when not standalone.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        click.echo(f"{PROG}: aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo(err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``netwarden report ... | head``): stop quietly.
        _silence_stdout()
        return 1
    except SystemExit as exc:
        return _exit_code(exc.code)
    except Exception as exc:
        if debug_enabled():
            traceback.print_exc(file=sys.stderr)
        click.echo(f"{PROG}: error: {_describe_unexpected(exc)}", err=True)
        return 1
    # click returns the code of ``ctx.exit(code)`` (``--help``, ``--version``: 0), or the
    # command's return value: an int is taken as the exit code, anything else means 0.
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _describe_unexpected(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"unexpected {type(exc).__name__}"
    if lines:
        text += f": {lines[0]}"
    if not debug_enabled():
        text += " (--log-level debug shows the traceback)"
    return text


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    click.echo(str(code), err=True)
    return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
