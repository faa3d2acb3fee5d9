"""``netwarden report sizes``: the packet-size distribution."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


@click.command(name="sizes")
@common_options
def command(**kwargs: Any) -> None:
    """Frame-length distribution: count, min, max, mean, population variance, tshark's
    plen histogram (rows), percentiles and box-plot figures (JSON).

    Exact for any time range: the store keeps every frame length per interval.
    """
    opts = common(kwargs)
    run(opts, "sizes", {})
