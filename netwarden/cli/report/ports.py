"""``netwarden report ports``: TCP/UDP ports with the most bytes."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="ports")
@top_option
@common_options
def command(top: int, **kwargs: Any) -> None:
    """TCP/UDP ports with the most bytes, as tcp/N and udp/N.

    Each frame counts once for the source and once for the destination port of its
    outermost TCP or UDP header (once when they are equal); frames without one (non-final
    fragments, non-IP) count for no port.
    """
    opts = common(kwargs)
    run(opts, "ports", {"top": top})
