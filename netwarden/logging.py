"""Logging: structlog on top of the standard library, one handler on stderr.

Call :func:`configure_logging` once at startup (the CLI does). Output is JSON lines when
stderr is not a terminal (services, CI, pipes) and a readable console format on a terminal.
Records from the standard :mod:`logging` module (libraries) go through the same
processors, so both kinds of record look alike.

Every JSON record has ``event``, ``level``, ``logger`` and ``timestamp`` (ISO 8601, UTC),
plus the key/value pairs passed to the call::

    log = get_logger(__name__)
    log.info("flushed", rows=1200, table="flows")
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final

import structlog
import structlog.tracebacks

from netwarden.errors import UsageError

__all__ = ["LEVELS", "configure_logging", "debug_enabled", "get_logger"]

LEVELS: Final[dict[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (test captures)."""

    def emit(self, record: logging.LogRecord) -> None:
        # plain assignment: setStream() would flush the previous stream, which a test
        # capture may have closed already
        self.stream = sys.stderr
        super().emit(record)


_handler: _StderrHandler | None = None


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Route structlog and standard logging to stderr at ``level``.

    ``json=None`` picks JSON lines when stderr is not a terminal, console output otherwise.
    Calling it again replaces the previous setup.
    """
    global _handler
    try:
        numeric = LEVELS[level.lower()]
    except KeyError:
        choices = ", ".join(LEVELS)
        raise UsageError(f"--log-level: unknown level {level!r} (choose from {choices})") from None
    if json is None:
        json = not _stderr_is_tty()

    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    final: list[structlog.typing.Processor]
    if json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        final = [structlog.processors.ExceptionRenderer(tracebacks), renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_stderr_is_tty())
        final = [renderer]

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric)
    _handler = handler
    # Libraries that log what we already report as one-line errors (connection failures):
    # their records only show at debug level.
    for noisy in _NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(numeric if numeric <= logging.DEBUG
                                          else logging.ERROR)


_NOISY_LIBRARIES = ("clickhouse_driver",)


def get_logger(name: str, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use ``__name__``), bound to ``initial`` values."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger


def debug_enabled() -> bool:
    """Whether debug records are emitted (the CLI shows tracebacks only then)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
