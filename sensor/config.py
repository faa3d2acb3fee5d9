"""Configuration of ``netwarden sensor run``: ``[sensor]``, ``[capture]``, ``[dissection]``,
``[processes]``, ``[apps]`` and ``[transport]`` tables.

Strict like every netwarden config (see :mod:`netwarden.config`). ``sensor.host`` unset
means the system's host name; :func:`effective` fills it in, so ``--dump`` shows the
name the records will carry.
"""

from __future__ import annotations

import socket
from typing import Annotated

from pydantic import AfterValidator, Field, IPvAnyAddress, field_validator
from pydantic_core import PydanticCustomError

from netwarden.config import ConfigModel, distinct
from netwarden.endpoint import DEFAULT_COLLECTOR, check_endpoint
from netwarden.sensor.enforce.config import EnforceConfig

__all__ = ["AppsSection", "CaptureSection", "DissectionSection", "ProcessesSection", "SensorConfig",
           "SensorSection", "TransportSection", "effective"]

MIB = 1024 * 1024
MAX_SNAPLEN = 262144


class SensorSection(ConfigModel):
    """Who the sensor is and how it aggregates."""

    host: str | None = Field(
        default=None, min_length=1,
        description="host name the records carry (the sensor's identity at the collector); "
                    "unset: the system's host name")
    interval_s: int = Field(
        default=10, ge=1, le=3600,
        description="length of one aggregation interval, seconds (aligned to the epoch)")
    host_addresses: list[IPvAnyAddress] = Field(
        default_factory=list,
        description="addresses counted as the host's besides those of its interfaces "
                    "(read every few seconds), e.g. a NAT address")
    flush_delay_s: float = Field(
        default=1.0, ge=0, le=60,
        description="seconds after an interval ends before its records are sent (late "
                    "packets still in the capture buffer)")


class CaptureSection(ConfigModel):
    """What is captured."""

    interfaces: Annotated[list[Annotated[str, Field(min_length=1)]],
                          AfterValidator(distinct("an interface"))] = Field(
        default_factory=lambda: ["any"], min_length=1,
        description="interfaces to capture on (\"any\": every interface, Linux)")
    bpf: str = Field(default="", description="BPF filter (tcpdump syntax); empty: everything")
    snaplen: int = Field(
        default=MAX_SNAPLEN, ge=64, le=MAX_SNAPLEN,
        description="bytes kept per packet; below the maximum libpcap reads packets one "
                    "by one (slower)")
    buffer_mb: int = Field(default=32, ge=1, le=4096,
                           description="kernel capture buffer per interface, MiB")
    promisc: bool = Field(default=False, description="put the interfaces in promiscuous mode")


class DissectionSection(ConfigModel):
    """Protocol-hierarchy dissection of live packets."""

    enabled: bool = Field(default=True, description="dissect packets for the protocol "
                                                    "hierarchy")
    max_packets_per_s: float = Field(
        default=5_000.0, ge=0,
        description="above this rate the dissector samples (counts stay exact); 0: no limit")


class ProcessesSection(ConfigModel):
    """Process attribution: the local process of each record (see
    :mod:`netwarden.sensor.processes`)."""

    enabled: bool = Field(default=True, description="label records with the local process "
                                                    "(comm name and pid) owning the socket")
    scan_interval_s: float = Field(
        default=0.5, ge=0.05, le=60,
        description="seconds between two reads of the socket table (also read at once when "
                    "a packet of an unknown local port is seen)")
    retain_s: float = Field(
        default=60.0, ge=1, le=3600,
        description="seconds a closed socket is remembered (records are labelled when "
                    "their interval is sent; at least two intervals plus flush_delay_s "
                    "are kept whatever this says)")


class AppsSection(ConfigModel):
    """App labels from TLS/QUIC server names, DNS answers and well-known ports."""

    enabled: bool = Field(default=True, description="label records with apps (tshark "
                                                    "dissects the first packets of flows)")
    rules_file: str | None = Field(
        default=None, min_length=1,
        description="app rules file (TOML, see netwarden/sensor/data/apps.toml); unset: "
                    "the default rules")
    head_packets: int = Field(
        default=8, ge=1, le=1000,
        description="packets dissected at the start of every TCP/UDP stream (DNS: all)")
    max_wait_s: float = Field(
        default=1.0, ge=0, le=60,
        description="longest wait of a flush for the dissection of the packets before it; "
                    "names found later label later records")

    @field_validator("rules_file")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        import os

        if value is not None and not os.path.isfile(value):
            raise PydanticCustomError("no_file", "no such file: {path}", {"path": value})
        return value


class TransportSection(ConfigModel):
    """How batches reach the collector."""

    collector: Annotated[str, AfterValidator(check_endpoint)] = Field(
        default=DEFAULT_COLLECTOR, description="the collector's gRPC address, HOST:PORT")
    buffer_bytes: int = Field(
        default=256 * MIB, ge=MIB,
        description="most bytes of unacknowledged batches held while the collector is "
                    "unreachable; beyond it the oldest are dropped and counted")
    max_batch_rows: int = Field(
        default=100_000, ge=1000,
        description="most rows per table in one message; bigger batches are split")
    max_message_bytes: int = Field(
        default=64 * MIB, ge=MIB, le=2047 * MIB, description="largest gRPC message, bytes")
    backoff_initial_s: float = Field(
        default=0.5, gt=0, description="first wait before reconnecting, seconds")
    backoff_max_s: float = Field(
        default=30.0, gt=0, description="longest wait between reconnection attempts, seconds")
    stop_timeout_s: float = Field(
        default=5.0, ge=0,
        description="on stop, seconds spent sending what is still unacknowledged")


class SensorConfig(ConfigModel):
    """Configuration of ``netwarden sensor run``."""

    sensor: SensorSection = Field(default_factory=SensorSection)
    capture: CaptureSection = Field(default_factory=CaptureSection)
    dissection: DissectionSection = Field(default_factory=DissectionSection)
    processes: ProcessesSection = Field(default_factory=ProcessesSection)
    apps: AppsSection = Field(default_factory=AppsSection)
    transport: TransportSection = Field(default_factory=TransportSection)
    enforce: EnforceConfig = Field(default_factory=EnforceConfig)


def effective(config: SensorConfig) -> SensorConfig:
    """``config`` with the defaults that depend on the machine filled in (the host name)."""
    if config.sensor.host is not None:
        return config
    host = socket.gethostname() or "localhost"
    return config.model_copy(update={"sensor": config.sensor.model_copy(update={"host": host})})
