"""``netwarden report geo``: bytes per country or per AS of the remote addresses."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="geo")
@click.option("--by", "by", type=click.Choice(["country", "asn"]), default="country",
              show_default=True, help="Group the remote addresses by country or by AS.")
@top_option
@common_options
def command(by: str, top: int, **kwargs: Any) -> None:
    """Bytes, frames and addresses per country (or AS) of the remote addresses.

    The remote address of a frame's outermost IP header is the source of an incoming
    frame, the destination of an outgoing one, and otherwise the destination when it is
    public, else the source. Countries and ASes come from the data geoip2fast ships
    (nothing is fetched); "--" / "private" is a private or reserved address, "??" /
    "unknown" a public one the data does not place.
    """
    opts = common(kwargs)
    run(opts, "geo", {"top": top, "by": by})
