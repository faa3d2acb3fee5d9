"""``netwarden sensor run``: config checks and dumps, replays, SIGTERM in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fixtures.clickhouse_server import free_port
from fixtures.collector import PCAPS, CollectorFactory, host_totals, wait_for
from fixtures.netns import netns_fixture  # noqa: F401  (the netns fixture)

from netwarden.cli.main import main
from netwarden.config import load_config
from netwarden.sensor.config import (
    AppsSection,
    CaptureSection,
    DissectionSection,
    ProcessesSection,
    SensorConfig,
    SensorSection,
    TransportSection,
)
from netwarden.sensor.enforce.config import EnforceConfig

REPO = Path(__file__).resolve().parents[1]
NETWARDEN = Path(sys.executable).with_name("netwarden")
EXAMPLE = REPO / "deploy" / "sensor.example.toml"
WIKI = PCAPS / "zeek-wikipedia.pcap"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dump_fills_in_the_host_name_and_applies_options(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sensor", "run", "--dump")
    assert code == 0
    assert tomllib.loads(out)["sensor"]["host"] == socket.gethostname()
    code, out, _ = run(capsys, "sensor", "run", "--host", "web-1", "--interface", "eth0",
                       "--interface", "eth1", "--bpf", "tcp port 443", "--collector",
                       "[2001:db8::1]:50051", "--interval", "30", "--dump")
    data = tomllib.loads(out)
    assert data["sensor"] == {**data["sensor"], "host": "web-1", "interval_s": 30}
    assert data["capture"]["interfaces"] == ["eth0", "eth1"]
    assert data["capture"]["bpf"] == "tcp port 443"
    assert data["transport"]["collector"] == "[2001:db8::1]:50051"
    assert data["transport"]["buffer_bytes"] == 256 * 1024 * 1024


def test_check_accepts_the_example_and_a_small_config(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    code, out, err = run(capsys, "sensor", "run", "--config", str(EXAMPLE), "--check")
    assert (code, err) == (0, "")
    assert out == f"{EXAMPLE}: sensor configuration is valid\n"
    cfg = tmp_path / "s.toml"
    cfg.write_text('[capture]\ninterfaces = ["eth0"]\n[transport]\nbuffer_bytes = 1048576\n')
    assert run(capsys, "sensor", "run", "--config", str(cfg), "--check")[0] == 0


@pytest.mark.parametrize(("text", "args", "lines"), [
    ('[transport]\ncollector = "collector.example"\n', [],
     ["{file}: transport.collector: 'collector.example' is not HOST:PORT (an IPv6 address "
      "goes in brackets: [::1]:50051)"]),
    ('[capture]\ninterfaces = []\n[sensor]\ninterval_s = "10"\n', [],
     ["{file}: sensor.interval_s: Input should be a valid integer",
      "{file}: capture.interfaces: List should have at least 1 item after validation, not 0"]),
    ('[transport]\nbuffer_bytes = 10\n[sniff]\n', [],
     ["{file}: transport.buffer_bytes: Input should be greater than or equal to 1048576",
      "{file}: sniff: unknown key"]),
    ("", ["--interface", "lo", "--interface", "lo"],
     ["command line: capture.interfaces: an interface is listed twice: ['lo', 'lo']"]),
    ("", ["--host", ""], ["command line: sensor.host: String should have at least 1 character"]),
])
def test_check_refuses_a_bad_config_with_exit_2(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, text: str, args: list[str],
                                                lines: list[str]) -> None:
    cfg = tmp_path / "sensor.toml"
    cfg.write_text(text)
    code, out, err = run(capsys, "sensor", "run", "--config", str(cfg), *args, "--check")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"netwarden: error: {line.format(file=cfg)}" for line in lines]


def test_example_config_mentions_every_key() -> None:
    cfg = load_config(SensorConfig, EXAMPLE)
    assert cfg == SensorConfig()
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in (SensorSection, CaptureSection, DissectionSection, ProcessesSection,
                    AppsSection, TransportSection, EnforceConfig):
        for name in section.model_fields:
            assert re.search(rf"^(# )?{name} = ", text, re.M), f"example lacks {name}"


def test_replay_without_a_collector_exits_1_after_the_stop_timeout(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text("[sensor]\ninterval_s = 1\nflush_delay_s = 0.0\n"
                   "[transport]\nstop_timeout_s = 0.5\nbackoff_initial_s = 0.1\n")
    address = f"127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "sensor", "run", "--config", str(cfg), "--collector", address,
                       "--replay", str(WIKI))
    assert code == 1
    assert err.splitlines()[-1] == (f"netwarden: error: {WIKI}: not every batch reached the "
                                    f"collector at {address}")


def test_replay_into_a_collector_in_process(capsys: pytest.CaptureFixture[str],
                                            collector_factory: CollectorFactory) -> None:
    server = collector_factory()
    code, _, err = run(capsys, "sensor", "run", "--collector", server.address, "--host", "r",
                       "--interval", "1", "--replay", str(WIKI))
    assert code == 0, err
    assert server.store is not None
    assert host_totals(server.store) == {"r": (136, 25260)}


def test_sigterm_flushes_and_delivers_what_was_counted(collector_factory: CollectorFactory
                                                       ) -> None:
    server = collector_factory()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # paced at half speed the capture takes 13 s: SIGTERM arrives in the middle
    proc = subprocess.Popen(
        [str(NETWARDEN), "--log-json", "sensor", "run", "--collector", server.address,
         "--host", "slow", "--interval", "1", "--replay", str(WIKI), "--replay-speed", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.store is not None
        store = server.store
        wait_for(lambda: store.stored_seq("slow") >= 1, timeout_s=30, what="a first batch")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    records = [json.loads(line) for line in proc.stderr.read().splitlines()
               if line.startswith("{")]
    stopped = next(r for r in records if r["event"] == "sensor stopped")
    assert 0 < stopped["packets"] < 136  # stopped part-way...
    assert host_totals(store)["slow"][0] == stopped["packets"]  # ...and every one delivered
    assert stopped["dropped_batches"] == 0


def test_uninstall_removes_the_chains_and_the_state_file_in_a_namespace(
        netns: Any, tmp_path: Path) -> None:
    """``sensor uninstall`` run inside a test namespace: netwarden's chains and jumps go,
    a rule of someone else stays, and the state file is deleted."""
    topo = netns(["a", "b"])
    link = topo.link("a", "b")
    state = tmp_path / "enforce.json"
    config = tmp_path / "sensor.toml"
    config.write_text(f'[enforce]\nmode = "on"\nstate_file = "{state}"\n')
    foreign = ["iptables", "-A", "INPUT", "-p", "udp", "--dport", "7777", "-j", "ACCEPT"]
    topo.run("a", foreign)
    before = topo.run("a", ["iptables-save"]).stdout
    code = (
        "import sys, time\n"
        "from netwarden.proto import netwarden_pb2 as pb\n"
        "from netwarden.sensor.enforce import EnforceConfig, Enforcer, ruleset_id\n"
        "cfg = EnforceConfig(mode='on', state_file=sys.argv[1])\n"
        "rule = pb.Rule(id='r1', policy='p', action=pb.ACTION_BLOCK_DROP,\n"
        "               expires_ns=time.time_ns() + 600 * 10**9,\n"
        "               match=pb.Match(direction=pb.DIRECTION_OUT, remote_cidrs=[sys.argv[2]]))\n"
        "e = Enforcer(cfg, [])\n"
        "e.start()\n"
        "s = e.apply(pb.Enforcement(version=1, ruleset_id=ruleset_id([rule]), rules=[rule]))\n"
        "assert not s.error and not s.refused, s\n"
        "e.stop()\n")
    topo.python("a", code, str(state), f"{link.addr('b')}/32")
    applied = topo.run("a", ["iptables-save"]).stdout
    assert "NETWARDEN" in applied and state.exists()
    out = topo.run("a", [str(NETWARDEN), "sensor", "uninstall", "--config", str(config)])
    assert "removed netwarden's iptables chains" in out.stdout
    after = topo.run("a", ["iptables-save"]).stdout
    assert "NETWARDEN" not in after and "--dport 7777" in after
    strip = [ln for ln in before.splitlines() if not ln.startswith("#")]
    assert [ln for ln in after.splitlines() if not ln.startswith("#")] == strip
    assert not state.exists()
