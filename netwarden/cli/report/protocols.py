"""``netwarden report protocols``: protocol hierarchy (tshark -z io,phs)."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


@click.command(name="protocols", short_help="Protocol hierarchy (tshark -z io,phs).")
@click.option("--flat", is_flag=True, default=False,
              help="Instead of the tree: frames, bytes and unique source addresses per "
                   "network/transport protocol (from the flow records).")
@common_options
def command(flat: bool, **kwargs: Any) -> None:
    """Protocol hierarchy: frames and bytes per dissection path (tshark -z io,phs).

    A frame counts under every protocol of its path. csv output flattens the tree to
    depth, path, protocol, frames, bytes rows. --flat lists network, transport, frames,
    bytes and unique sources per protocol of the outermost IP header (ethertype for
    non-IP frames).
    """
    opts = common(kwargs)
    run(opts, "protocol_counts" if flat else "protocols")
