"""``netwarden report processes``: bytes per local process, as the live sensors attributed."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="processes")
@top_option
@common_options
def command(top: int, **kwargs: Any) -> None:
    """Bytes, frames and conversations per local process name (most bytes first).

    A live sensor labels the TCP/UDP traffic of its host with the process owning the
    local socket (comm name and pid); bytes in are received, bytes out sent, bytes local
    between two sockets of the host. The summary says what share of the host's own
    bytes got a process. Capture files analysed offline carry no process.
    """
    opts = common(kwargs)
    run(opts, "processes", {"top": top})
