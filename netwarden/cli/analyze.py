"""``netwarden analyze``: run the sensor pipeline over capture files into a store."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from netwarden.errors import InputError, NetwardenError, RuntimeFailure
from netwarden.logging import get_logger

log = get_logger("netwarden.analyze")


@click.command(name="analyze")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("--store", "target", metavar="DIR|URL",
              help="Where to store: a directory (embedded ClickHouse, chdb) or a "
                   "clickhouse://host:port/db URL.  [default: ./netwarden-data]")
@click.option("--database", help="ClickHouse database.  [default: netwarden]")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False,
                                                          exists=True),
              help="TOML config file ([pipeline] and [store] tables).")
@click.option("--host", help="Host name the records carry.  [default: the file's name]")
@click.option("--interval", "interval_s", type=int,
              help="Flow-record interval in seconds.  [default: 10]")
@click.option("--host-address", "host_addresses", multiple=True, metavar="IP",
              help="An address of the captured host, so records get in/out/local "
                   "directions (repeatable).")
@click.option("--hierarchy/--no-hierarchy", default=None,
              help="Run tshark for the protocol hierarchy.  [default: on]")
@click.option("--apps/--no-apps", "apps", default=True,
              help="Label records with apps (TLS/QUIC server names, DNS answers, "
                   "well-known ports; tshark on flow heads).  [default: on]")
@click.option("--apps-rules", "apps_rules", metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="App rules file (TOML) instead of the default set.")
@click.option("--dump", is_flag=True, help="Print the effective config and exit.")
def command(files: tuple[Path, ...], target: str | None, database: str | None,
            config_path: Path | None, host: str | None, interval_s: int | None,
            host_addresses: tuple[str, ...], hierarchy: bool | None, apps: bool,
            apps_rules: Path | None, dump: bool) -> None:
    """Analyse capture files (pcap, pcapng) into flow records in a store.

    Each file is read as far as it can be: a file cut short or damaged part-way is
    counted up to the damage, with a warning. Intervals are aligned to each file's
    first packet, so `report io` rows line up with tshark's `-z io,stat`. Records get
    app labels from TLS/QUIC server names, DNS answers and well-known ports (see
    `netwarden report apps`) unless --no-apps.

    Exit status: 0 when every file could be read (even partly), 1 when a file could
    not be read at all, 2 for a bad command line or config.
    """
    from netwarden.config import AnalyzeConfig, load_config
    from netwarden.config import dump as dump_config

    cfg = load_config(AnalyzeConfig, config_path, {
        "store.target": target, "store.database": database, "pipeline.host": host,
        "pipeline.interval_s": interval_s,
        "pipeline.host_addresses": list(host_addresses) or None,
        "pipeline.hierarchy": hierarchy,
    })
    if dump:
        click.echo(dump_config(cfg), nl=False)
        return
    rules = None
    if apps:
        from netwarden.sensor.apprules import load_rules

        rules = load_rules(apps_rules)  # a bad rules file fails before any work
    _run(cfg, files, rules)


def _run(cfg: Any, files: tuple[Path, ...], rules: Any = None) -> None:
    from netwarden.collector.store import open_store
    from netwarden.sensor.enrich import Enricher, Enrichers
    from netwarden.sensor.pipeline import FileAnalyzer, PipelineSettings

    p = cfg.pipeline
    settings = PipelineSettings(
        interval_s=p.interval_s, host_addresses=tuple(str(a) for a in p.host_addresses),
        hierarchy=p.hierarchy, hierarchy_max_taps=p.hierarchy_max_taps,
        batch_packets=p.batch_packets)
    failed: list[str] = []
    analyzers: dict[str, FileAnalyzer] = {}

    def analyzer(host: str) -> FileAnalyzer:
        """One analyzer (and labeller: streams are numbered per analyzer) per host."""
        if host not in analyzers:
            stages: list[Enricher] = []
            if rules is not None:
                from netwarden.sensor.apps import AppLabeller

                stages.append(AppLabeller(rules))
            analyzers[host] = FileAnalyzer(host, settings, Enrichers(stages))
        return analyzers[host]
    store = open_store(cfg.store.target, database=cfg.store.database,
                       batch_rows=cfg.store.batch_rows, flush_seconds=cfg.store.flush_seconds)
    # Connecting (and migrating) takes a second or two: do it once tshark dissects the
    # first file (tshark is the long pole), and wait for it when the first batch is ready.
    starting = _Background(store.start)

    def sink(batch: Any) -> None:
        starting.wait()
        store.write(batch)

    def flush() -> None:
        starting.wait()
        store.flush()

    try:
        for path in files:
            host = p.host or path.name
            fa = analyzer(host)
            try:
                with _Progress(path) as progress:
                    res = fa.run(path, sink, progress, accounted=flush,
                                 started=starting.begin)
            except InputError as exc:
                click.echo(f"netwarden: error: {exc.message}", err=True)
                failed.append(str(path))
                continue
            for w in res.warnings:
                click.echo(f"netwarden: warning: {w}", err=True)
            log.debug("analyzed", file=str(path), host=host, packets=res.packets,
                     bytes=res.bytes, records=res.records)
            click.echo(f"{path}: {res.packets} packets, {res.bytes} bytes, "
                       f"{res.records} flow records (host {host})")
    except NetwardenError:
        raise
    except OSError as exc:
        raise RuntimeFailure(f"analyze: {exc}") from exc
    finally:
        for fa in analyzers.values():
            fa.enrichers.close()
        if starting.ok():
            store.stop()
    if failed:
        raise SystemExit(1)


class _Background:
    """Run ``fn`` in a thread; :meth:`wait` re-raises its exception in the caller."""

    def __init__(self, fn: Any) -> None:
        self._exc: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised by wait()
                self._exc = exc

        self._thread = threading.Thread(target=target, name="store-start", daemon=True)

    def begin(self) -> None:
        """Start the work (idempotent)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def wait(self) -> None:
        self.begin()
        self._thread.join()
        if self._exc is not None:
            raise self._exc

    def ok(self) -> bool:
        if self._thread.ident is None:
            return False  # never started: nothing to stop
        self._thread.join()
        return self._exc is None


class _Progress:
    """A progress bar on a terminal; nothing otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TaskProgressColumn(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.path.name, total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)
        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
