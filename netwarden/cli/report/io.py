"""``netwarden report io``: frames and bytes per time bucket (tshark -z io,stat,N)."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


@click.command(name="io")
@click.option("--interval", type=click.IntRange(min=1), default=None, metavar="N",
              help="Bucket length in seconds; a multiple of the stored interval. "
                   "Default: the stored interval.")
@common_options
def command(interval: int | None, **kwargs: Any) -> None:
    """Frames and bytes per time bucket (tshark -z io,stat,N).

    Buckets start at the earliest selected interval; empty buckets are left out. Every
    frame counts once, IP or not.
    """
    opts = common(kwargs)
    run(opts, "io", {"interval_s": interval})
