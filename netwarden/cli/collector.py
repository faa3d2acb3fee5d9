"""``netwarden collector serve``: the gRPC server sensors stream to."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from netwarden.cli.signals import stop_on_signals

__all__ = ["command"]


@click.group(name="collector")
def command() -> None:
    """The collector: stores what sensors send, answers reports."""


@command.command(name="serve")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False,
                                                          exists=True),
              help="TOML config file ([collector] and [store] tables).")
@click.option("--listen", metavar="HOST:PORT",
              help="Address to listen on.  [default: 127.0.0.1:50051]")
@click.option("--store", "target", metavar="DIR|URL",
              help="Where to store: a directory (embedded ClickHouse, chdb) or a "
                   "clickhouse://host:port/db URL.  [default: ./netwarden-data]")
@click.option("--database", help="ClickHouse database.  [default: netwarden]")
@click.option("--check", is_flag=True, help="Validate the configuration and exit (0 valid, "
                                            "2 invalid).")
@click.option("--dump", is_flag=True, help="Print the effective configuration and exit.")
def serve(config_path: Path | None, listen: str | None, target: str | None,
          database: str | None, check: bool, dump: bool) -> None:
    """Serve sensors and reports until SIGTERM or SIGINT.

    Sensors stream flow records (`netwarden sensor run`); the collector stores them,
    each batch exactly once, and answers `netwarden report ... --collector HOST:PORT`.
    On SIGTERM/SIGINT it stops accepting, stores what it received and exits 0.
    """
    from netwarden.collector.config import CollectorConfig
    from netwarden.config import dump as dump_config
    from netwarden.config import load_config

    cfg = load_config(CollectorConfig, config_path, {
        "collector.listen": listen, "store.target": target, "store.database": database,
    })
    if dump:
        click.echo(dump_config(cfg), nl=False)
        return
    if check:
        click.echo(f"{config_path or 'defaults'}: collector configuration is valid")
        return
    _serve(cfg)


def _serve(cfg: Any) -> None:
    from netwarden.collector.server import CollectorServer

    server = CollectorServer(cfg)
    stop = threading.Event()
    with stop_on_signals(stop):
        server.start()
        click.echo(f"collector listening on {server.address}", err=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()

