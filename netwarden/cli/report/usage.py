"""``netwarden report usage``: accumulated bytes per IP pair, per host and in total."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from netwarden.cli.report.common import common, common_options, emit, fetch, top_option
from netwarden.errors import RuntimeFailure

__all__ = ["command"]


@click.command(name="usage")
@top_option
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help='Also write the JSON usage log {"pairs": {"a <-> b": bytes}, "hosts": '
                   '{...}, "total": N} of every pair to FILE.')
@common_options
def command(top: int, write_path: Path | None, **kwargs: Any) -> None:
    """Accumulated bytes and frames per IP pair, per sensor host and in total.

    A pair is the two addresses of a frame's outermost IP header, both directions
    together (and each apart). Host and total count every frame, IP or not.
    """
    opts = common(kwargs)
    from netwarden.collector.reports.usage import usage_log

    if write_path is None:
        emit(opts, fetch(opts, "usage", {"top": top}))
        return
    result = fetch(opts, "usage", {"top": None})
    log = usage_log(result)
    try:
        write_path.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {write_path}: {exc.strerror}") from None
    shown = dataclasses.replace(result, rows=result.rows[:top],
                                filters={**result.filters, "top": top})
    emit(opts, shown)
