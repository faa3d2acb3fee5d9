"""``netwarden report ttl``: TTL / hop-limit statistics, overall and per source address."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="ttl")
@top_option
@common_options
def command(top: int, **kwargs: Any) -> None:
    """TTL (IPv4) and hop-limit (IPv6) min, max, mean and population variance.

    Overall (ttl_ipv4, hlim_ipv6 in JSON) and per source address (rows, most frames
    first). Each frame counts once, with its outermost IPv4 and IPv6 header.
    """
    opts = common(kwargs)
    run(opts, "ttl", {"top": top})
