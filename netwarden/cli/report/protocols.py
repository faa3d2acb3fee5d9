"""``netwarden report protocols``: protocol hierarchy (tshark -z io,phs)."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


@click.command(name="protocols", short_help="Protocol hierarchy (tshark -z io,phs).")
@common_options
def command(**kwargs: Any) -> None:
    """Protocol hierarchy: frames and bytes per dissection path (tshark -z io,phs).

    A frame counts under every protocol of its path. csv output flattens the tree to
    depth, path, protocol, frames, bytes rows.
    """
    opts = common(kwargs)
    run(opts, "protocols")
