"""``netwarden sensor run``: capture on this host and stream flow records to a collector;
``netwarden sensor uninstall``: remove what enforcement left on the host."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from netwarden.cli.signals import stop_on_signals
from netwarden.errors import RuntimeFailure

__all__ = ["command"]


@click.group(name="sensor")
def command() -> None:
    """The sensor: captures on a host, counts per interval, streams to the collector."""


@command.command(name="run")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False,
                                                          exists=True),
              help="TOML config file ([sensor], [capture], [dissection], [transport]).")
@click.option("--collector", metavar="HOST:PORT",
              help="The collector's address.  [default: 127.0.0.1:50051]")
@click.option("--interface", "interfaces", multiple=True, metavar="NAME",
              help="Interface to capture on (repeatable; \"any\": all).  [default: any]")
@click.option("--bpf", metavar="FILTER", help="BPF filter (tcpdump syntax).")
@click.option("--host", help="Host name the records carry.  [default: the system's]")
@click.option("--interval", "interval_s", type=int,
              help="Flow-record interval in seconds.  [default: 10]")
@click.option("--replay", "replay", type=click.Path(path_type=Path, dir_okay=False,
                                                     exists=True),
              help="Read packets from this capture file instead of interfaces (tests, "
                   "demos); exit once it is sent.")
@click.option("--replay-speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --replay: pace packets at this multiple of the capture's speed, "
                   "timestamps moved to now.  [default: all at once, file timestamps]")
@click.option("--check", is_flag=True, help="Validate the configuration and exit (0 valid, "
                                            "2 invalid).")
@click.option("--dump", is_flag=True, help="Print the effective configuration and exit.")
def run(config_path: Path | None, collector: str | None, interfaces: tuple[str, ...],
        bpf: str | None, host: str | None, interval_s: int | None, replay: Path | None,
        replay_speed: float | None, check: bool, dump: bool) -> None:
    """Capture, count and stream to the collector until SIGTERM or SIGINT.

    Records go to the collector as they are made; while it is unreachable the sensor
    keeps counting and holds them (transport.buffer_bytes, 256 MiB by default; when that
    fills the oldest are dropped and counted) and reconnects with backoff. On
    SIGTERM/SIGINT it flushes every interval and sends what it holds for up to
    transport.stop_timeout_s seconds before exiting.
    """
    from netwarden.config import dump as dump_config
    from netwarden.config import load_config
    from netwarden.sensor.config import SensorConfig, effective

    cfg = effective(load_config(SensorConfig, config_path, {
        "transport.collector": collector, "capture.interfaces": list(interfaces) or None,
        "capture.bpf": bpf, "sensor.host": host, "sensor.interval_s": interval_s,
    }))
    if dump:
        click.echo(dump_config(cfg), nl=False)
        return
    if check:
        click.echo(f"{config_path or 'defaults'}: sensor configuration is valid")
        return
    _run(cfg, replay, replay_speed)


def _run(cfg: Any, replay: Path | None, speed: float | None) -> None:
    from netwarden.sensor.agent import SensorAgent

    source: Any
    if replay is not None:
        from netwarden.sensor.replay import ReplaySource

        source = ReplaySource(replay, speed=speed, retime=speed is not None)
        name = replay.name
        # replayed packets are not this host's sockets: no process attribution
        cfg = cfg.model_copy(update={
            "processes": cfg.processes.model_copy(update={"enabled": False})})
    else:
        from netwarden.sensor.live import LiveSource

        c = cfg.capture
        source = LiveSource(c.interfaces, bpf=c.bpf, snaplen=c.snaplen, buffer_mb=c.buffer_mb,
                            promisc=c.promisc)
        name = None
    agent = SensorAgent(cfg, source, source_name=name)
    stop = threading.Event()
    with stop_on_signals(stop):
        agent.start()
        try:
            while not stop.wait(0.25):
                if agent.wait(0) or (replay is not None and source.done):
                    break
        finally:
            delivered = agent.stop()
    if agent.error is not None:
        raise RuntimeFailure(f"capture failed: {agent.error}")
    if replay is not None and not delivered:
        raise RuntimeFailure(f"{replay}: not every batch reached the collector at "
                             f"{cfg.transport.collector}")


@command.command(name="uninstall")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False,
                                                          exists=True),
              help="The sensor's TOML config file (its [enforce] section).")
@click.option("--keep-state", is_flag=True,
              help="Keep the enforcement state file (by default it is deleted, so a later "
                   "sensor start does not restore the rules).")
def uninstall(config_path: Path | None, keep_state: bool) -> None:
    """Remove netwarden's iptables chains and their jumps (IPv4 and IPv6), and the
    enforcement state file. Rules outside netwarden's chains are never touched."""
    from netwarden.config import load_config
    from netwarden.sensor.config import SensorConfig
    from netwarden.sensor.enforce.enforcer import Enforcer
    from netwarden.sensor.enforce.iptables import IptablesError

    cfg = load_config(SensorConfig, config_path, {})
    try:
        Enforcer(cfg.enforce).uninstall()
    except (IptablesError, OSError) as exc:
        raise RuntimeFailure(f"cannot remove netwarden's chains: {exc}") from None
    click.echo("removed netwarden's iptables chains (IPv4 and IPv6)")
    state = Path(cfg.enforce.state_file)
    if not keep_state and state.exists():
        state.unlink()
        click.echo(f"removed {state}")
