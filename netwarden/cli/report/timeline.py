"""``netwarden report timeline``: frames and bytes per calendar step (UTC)."""

from __future__ import annotations

from typing import Any

import click

from netwarden.cli.report.common import common, common_options, run

__all__ = ["command"]


class StepType(click.ParamType):  # type: ignore[type-arg]
    """second|minute|hour|day or a positive number of seconds."""

    name = "STEP"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from netwarden.collector.reports.timeline import parse_step

        try:
            seconds: int = parse_step(str(value))
            return seconds
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(name="timeline")
@click.option("--step", type=StepType(), default="minute", show_default=True,
              help="second, minute, hour, day or N seconds; not shorter than the stored "
                   "interval.")
@common_options
def command(step: int, **kwargs: Any) -> None:
    """Frames and bytes per calendar step (UTC; steps aligned to the epoch).

    A record counts in the step holding its interval start. Every frame counts once, IP
    or not; empty steps are left out.
    """
    opts = common(kwargs)
    run(opts, "timeline", {"step_s": step})
