"""``netwarden export``: stream flow records out of a store as CSV, JSON Lines or Parquet."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from netwarden.cli.report.common import (
    CommonOptions,
    TimeType,
    filters_of,
    open_local_store,
    store_settings,
)
from netwarden.errors import RuntimeFailure, UsageError

__all__ = ["command"]


@click.command(name="export")
@click.option("--store", "store", metavar="DIR|URL", default=None,
              help="Store to read: a chdb data directory or a clickhouse://host:port URL. "
                   "Default: store.target of the config (./netwarden-data).")
@click.option("--database", metavar="NAME", default=None,
              help="ClickHouse database holding the tables. Default: store.database of "
                   "the config (netwarden).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              default=None, help="TOML config file to read the store settings from.")
@click.option("--since", type=TimeType(), default=None,
              help="Only intervals starting at or after this time.")
@click.option("--until", type=TimeType(), default=None,
              help="Only intervals starting before this time.")
@click.option("--host", "hosts", multiple=True, metavar="NAME",
              help="Only records of this host (repeat for several). Default: all.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]),
              default="csv", show_default=True,
              help="csv (with a header), json (JSON Lines) or parquet (needs --output).")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write to FILE instead of standard output.")
@click.option("--anonymize", "key", metavar="KEY", default=None,
              help="Replace every address, prefix-preserving (Crypto-PAn style), keyed by "
                   "KEY: the same KEY gives the same mapping.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Records read from the store per chunk.")
def command(**kwargs: Any) -> None:
    """Stream the flow records of a time range and hosts out of a store."""
    opts = CommonOptions(store=kwargs["store"], collector=None, database=kwargs["database"],
                         config=kwargs["config"], since=kwargs["since"],
                         until=kwargs["until"], hosts=tuple(kwargs["hosts"]),
                         fmt=kwargs["fmt"], output=kwargs["output"])
    key: str | None = kwargs["key"]
    if opts.fmt == "parquet" and opts.output is None:
        raise UsageError("--format parquet needs --output FILE (it is not a stream format)")
    if key is not None and not key:
        raise UsageError("--anonymize: the key is empty")
    filters = filters_of(opts)
    with open_local_store(*store_settings(opts)) as store:
        from netwarden.collector.anonymize import PrefixAnonymizer
        from netwarden.collector.export import export

        anonymizer = PrefixAnonymizer(key) if key is not None else None
        if opts.output is None:
            export(store, filters, opts.fmt, sys.stdout, chunk_rows=kwargs["chunk_rows"],
                   anonymizer=anonymizer)
            return
        try:
            stream: IO[Any] = (opts.output.open("wb") if opts.fmt == "parquet" else
                               opts.output.open("w", encoding="utf-8", newline=""))
            with stream:
                export(store, filters, opts.fmt, stream, chunk_rows=kwargs["chunk_rows"],
                       anonymizer=anonymizer)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {opts.output}: {exc.strerror}") from None
