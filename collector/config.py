"""Configuration of ``netwarden collector serve``: the ``[collector]`` and ``[store]`` tables.

Strict like every netwarden config (see :mod:`netwarden.config`): unknown keys, wrong
types and out-of-range values are errors naming the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from netwarden.config import ConfigModel, StoreConfig
from netwarden.endpoint import DEFAULT_COLLECTOR, check_listen

__all__ = ["DEFAULT_LISTEN", "CollectorConfig", "CollectorSection"]

DEFAULT_LISTEN = DEFAULT_COLLECTOR
MIB = 1024 * 1024


class CollectorSection(ConfigModel):
    """The gRPC server sensors stream to and reports query."""

    listen: Annotated[str, AfterValidator(check_listen)] = Field(
        default=DEFAULT_LISTEN,
        description="address the gRPC server listens on, HOST:PORT ([::]:50051 for every "
                    "IPv6 and IPv4 address; port 0 picks a free one)")
    max_streams: int = Field(
        default=64, ge=1, le=4096,
        description="most sensor streams served at once (each holds a thread); more are "
                    "refused and retry")
    max_message_bytes: int = Field(
        default=64 * MIB, ge=MIB, le=2047 * MIB,
        description="largest gRPC message accepted, bytes (a batch of 100k flow records "
                    "is about 12 MiB)")
    queue_batches: int = Field(
        default=256, ge=1,
        description="batches received but not yet stored before streams are slowed down")
    group_rows: int = Field(
        default=200_000, gt=0,
        description="most flow rows stored in one insert when batches of several sensors "
                    "are waiting")
    stop_timeout_s: float = Field(
        default=10.0, ge=0,
        description="on stop, seconds given to store the batches already received")


class CollectorConfig(ConfigModel):
    """Configuration of ``netwarden collector serve``."""

    collector: CollectorSection = Field(default_factory=CollectorSection)
    store: StoreConfig = Field(default_factory=StoreConfig)
