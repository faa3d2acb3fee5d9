"""The ``[enforce]`` section of the sensor's config: whether and how rules are applied.

Strict like every netwarden config section (:class:`netwarden.config.ConfigModel`)::

    [enforce]
    mode = "on"                      # off (default) | dry-run | on
    hooks = ["input", "output"]      # built-in chains that jump to netwarden's chains
    management_ports = [22]          # TCP ports of management access, never blocked
    management_cidrs = ["10.0.0.0/24"]
    state_file = "/var/lib/netwarden/enforce.json"
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from netwarden.config import ConfigModel, distinct

__all__ = ["DEFAULT_STATE_FILE", "EnforceConfig", "Hook", "Mode"]

Mode = Literal["off", "dry-run", "on"]
Hook = Literal["input", "output", "forward"]
DEFAULT_STATE_FILE = "/var/lib/netwarden/enforce.json"
DEFAULT_HOOKS: tuple[Hook, ...] = ("input", "output")


def _strict_cidr(text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "{problem}", {"problem": str(exc)}) from None
    return str(net)


class EnforceConfig(ConfigModel):
    """How the sensor applies the collector's blocks and throttles (iptables)."""

    mode: Mode = Field(
        default="off",
        description="off: no enforcement, iptables is never run (`netwarden sensor "
                    "uninstall` removes netwarden's chains); dry-run: log what would be "
                    "applied; on: apply")
    hooks: Annotated[list[Hook], AfterValidator(distinct("a hook"))] = Field(
        default_factory=lambda: list(DEFAULT_HOOKS), min_length=1,
        description="built-in chains hooked to netwarden's (input: NETWARDEN-IN, output: "
                    "NETWARDEN-OUT, forward: NETWARDEN-FWD)")
    management_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [22],
        description="TCP ports of this host's management access (SSH): never blocked")
    management_cidrs: list[Annotated[str, AfterValidator(_strict_cidr)]] = Field(
        default_factory=list,
        description="networks whose traffic with this host is never blocked nor throttled")
    exempt_loopback: bool = Field(
        default=True, description="never act on loopback traffic (interface lo)")
    state_file: str = Field(
        default=DEFAULT_STATE_FILE, min_length=1,
        description="where the last desired state is kept (JSON) to enforce again after "
                    "a restart without the collector")
    reconcile_s: float = Field(
        default=30.0, ge=1, le=3600,
        description="seconds between two drift checks of netwarden's chains")
    iptables: str = Field(default="iptables", min_length=1,
                          description="iptables binary (its -save/-restore are found beside)")
    ip6tables: str = Field(default="ip6tables", min_length=1,
                           description="ip6tables binary (its -save/-restore likewise)")
