"""Configuration of ``netwarden collector serve``: the ``[collector]`` and ``[store]`` tables.

Strict like every netwarden config (see :mod:`netwarden.config`): unknown keys, wrong
types and out-of-range values are errors naming the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from netwarden.config import ConfigModel, StoreConfig
from netwarden.endpoint import DEFAULT_COLLECTOR, check_listen

__all__ = ["DEFAULT_LISTEN", "CollectorConfig", "CollectorSection", "PolicySection"]

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


def _check_webhook_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, not {url!r}")
    return url


class PolicySection(ConfigModel):
    """Data-plan policies the collector evaluates (see :mod:`netwarden.collector.policy`)."""

    files: list[str] = Field(
        default_factory=list,
        description="policy files or directories (their *.yaml and *.yml); none: no "
                    "policy is evaluated")
    evaluate_every_s: float = Field(
        default=10.0, ge=1, le=86_400,
        description="seconds between two evaluations (default: the sensors' interval)")
    webhook_url: Annotated[str | None, AfterValidator(_check_webhook_url)] = Field(
        default=None,
        description="URL alerts are POSTed to as JSON when a tier is crossed; unset: none")
    webhook_attempts: int = Field(
        default=5, ge=1, le=50, description="tries per alert before the webhook gives up")
    webhook_backoff_s: float = Field(
        default=1.0, gt=0, le=3600,
        description="wait after the first failed try; doubled after each (up to 60 s)")
    backfill: bool = Field(
        default=True,
        description="at start, compute the usage of policies new to the store over their "
                    "current period from the stored flow records")
    labels: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="labels of hosts, {host = {key = value}}, for label selectors "
                    "(sensors do not report labels)")


class CollectorConfig(ConfigModel):
    """Configuration of ``netwarden collector serve``."""

    collector: CollectorSection = Field(default_factory=CollectorSection)
    store: StoreConfig = Field(default_factory=StoreConfig)
    policy: PolicySection = Field(default_factory=PolicySection)
