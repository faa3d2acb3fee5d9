"""``netwarden report transport``: protocol mix and top ports of the top talkers."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="transport")
@top_option
@common_options
def command(top: int, **kwargs: Any) -> None:
    """Protocol mix, top source port and top destination port of the top talkers.

    Addresses are ranked as in `report talkers`; the mix is bytes per IP protocol of
    the outermost IP header, the ports come from the outermost TCP/UDP header.
    """
    opts = common(kwargs)
    run(opts, "transport", {"top": top})
