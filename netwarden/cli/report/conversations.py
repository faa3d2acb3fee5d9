"""``netwarden report conversations``: conversation tables (tshark -z conv,KIND)."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


@click.command(name="conversations",
                 short_help="Conversations per address pair or TCP/UDP stream (conv,KIND).")
@click.option("--kind", type=click.Choice(["ip", "ipv6", "tcp", "udp"]), default="ip",
              show_default=True,
              help="Table: ip/ipv6 (address pairs) or tcp/udp (one row per stream).")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N",
              help="Keep only the first N rows. Default: all.")
@common_options
def command(kind: str, top: int | None, **kwargs: Any) -> None:
    """Conversations between address pairs (ip, ipv6) or endpoints (tcp, udp).

    Like tshark -z conv,KIND: side A is the source of the conversation's first packet;
    rows are ordered by frames, most first. Tunnelled packets count in the outer and in
    every inner conversation. With several hosts, rows stay per host.
    """
    opts = common(kwargs)
    run(opts, "conversations", {"kind": kind, "top": top})
