"""``netwarden report talkers``: addresses with the most bytes."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="talkers")
@top_option
@common_options
def command(top: int, **kwargs: Any) -> None:
    """Addresses with the most bytes.

    Each frame counts once for the source and once for the destination address of its
    outermost IP header (once when they are equal). Ties: more frames first, then address.
    """
    opts = common(kwargs)
    run(opts, "talkers", {"top": top})
