"""``netwarden report``: one subcommand per module of this package."""

from __future__ import annotations

import click

from netwarden.cli.report import all as all_reports
from netwarden.cli.report import (
    apps,
    conversations,
    geo,
    io,
    ports,
    processes,
    protocols,
    sizes,
    talkers,
    timeline,
    transport,
    ttl,
    usage,
)

__all__ = ["command"]


@click.group(name="report")
def command() -> None:
    """Answer questions from the stored flow records.

    Every report reads the records whose interval starts in [--since, --until) of the
    hosts given with --host (default: everything), and counts like tshark's statistics
    of the same frames. Times in the output are seconds after the earliest selected
    interval start (the capture's first frame for an analysed file).

    \b
    Examples:
      netwarden report conversations --kind tcp --top 20
      netwarden report io --interval 60 --since 2h --format csv
      netwarden report talkers --host web1 --format json --output top.json
      netwarden report geo --by asn --top 20
      netwarden report apps --by name --top 20
    """


for _module in (conversations, protocols, io, talkers, ports, ttl, sizes, usage, timeline,
                transport, geo, processes, apps):
    command.add_command(_module.command)
command.add_command(all_reports.command)
