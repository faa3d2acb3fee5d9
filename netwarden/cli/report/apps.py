"""``netwarden report apps``: bytes per app label, or per server name."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run, top_option

__all__ = ["command"]


@click.command(name="apps")
@click.option("--by", "by", type=click.Choice(["app", "name"]), default="app",
              show_default=True,
              help="Rows per app label, or per server name and the source it was seen in.")
@top_option
@common_options
def command(by: str, top: int, **kwargs: Any) -> None:
    """Bytes, packets and conversations per app (most bytes first).

    Sensors label every record with an app from, in order: the TLS or QUIC server name
    (SNI) of its connection, the DNS name its remote address was resolved from, a
    well-known port. Names map to apps by the rules file (`netwarden analyze
    --apps-rules`, sensor `[apps] rules_file`); a name no rule matches is labelled with
    its domain. Rows list the label sources seen and the names with most bytes.

    With --by name: a row per server name and source (tls, quic, dns) with the frames
    that carried the name (SNI occurrences; DNS queries once per frame, as tshark's
    dns.qry.name) and the bytes and packets of the records labelled with it.
    """
    opts = common(kwargs)
    run(opts, "apps", {"top": top, "by": by})
