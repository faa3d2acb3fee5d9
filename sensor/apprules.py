"""The app rules file: server names and well-known ports → app labels.

A TOML file, strict like every netwarden config (unknown keys are errors, every problem is
reported at once, one line each: ``FILE: key.path: message``)::

    [[app]]
    name = "youtube"
    match = ["*.youtube.com", "youtube.com", "*.googlevideo.com", "*.ytimg.com"]

    [ports]
    53 = "dns"
    443 = "https"
    "udp/443" = "quic"

* ``[[app]]`` rules are tried in file order; the first whose ``match`` has a pattern that
  fits the name gives the app. Patterns are shell-style globs, case-insensitive, matched
  against the whole name (trailing dot removed): ``*`` matches any run of characters,
  dots included, so ``*.youtube.com`` matches ``www.youtube.com`` and ``a.b.youtube.com``
  but not ``youtube.com`` itself (list it too).
* A name no rule matches gets its **registrable domain** as app (:func:`registrable_domain`):
  the last two labels (``www.example.com`` → ``example.com``), or the last three when the
  top-level label is a two-letter country code and the second-to-last one is a short
  public second level such as ``co``, ``com``, ``net``, ``org``, ``ac``, ``gov``
  (``www.bbc.co.uk`` → ``bbc.co.uk``, ``a.b.com.au`` → ``b.com.au``). A heuristic, not
  the public suffix list: add a rule where it guesses wrong.
* ``[ports]`` names the fallback label of a record with no server name: key ``"N"`` for
  TCP and UDP port N, ``"tcp/N"`` or ``"udp/N"`` for one protocol only (preferred over
  ``"N"``). The lower port of a record's two that has a label wins.

The default rules ship with netwarden (``netwarden/sensor/data/apps.toml``,
:func:`default_rules_path`); a rules file given instead replaces them whole (start from a
copy of the default).
"""

from __future__ import annotations

import fnmatch
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

import numpy as np
from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from netwarden.config import ConfigModel, load_config
from netwarden.sensor.decode import IPPROTO_TCP as TCP
from netwarden.sensor.decode import IPPROTO_UDP as UDP

__all__ = ["AppRule", "AppRules", "RulesFile", "default_rules_path", "load_rules",
           "registrable_domain"]

_PATTERN = re.compile(r"^[A-Za-z0-9_*?.\-]+$")
_APP_NAME = re.compile(r"^[A-Za-z0-9_.+\-]+$")
_PORT_KEY = re.compile(r"^(?:(tcp|udp)/)?(\d{1,5})$")
# second-level labels that are public under a country code (co.uk, com.au, ne.jp...)
_PUBLIC_SECOND: Final = frozenset({
    "ac", "co", "com", "edu", "gob", "gov", "go", "govt", "ltd", "me", "mil", "ne", "net",
    "nic", "nom", "or", "org", "plc", "sch",
})
_MAX_CACHE: Final = 65536

def _label(value: str) -> str:
    if not _APP_NAME.match(value):
        raise PydanticCustomError(
            "label", "{label}: an app label may only hold letters, digits, '.', '_', '+' "
            "and '-'", {"label": repr(value)})
    return value


AppLabel = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_label)]


class AppRule(ConfigModel):
    """One ``[[app]]`` rule: the app a name gets when one of the patterns fits it."""

    name: AppLabel = Field(description="the app label, e.g. youtube")
    match: list[str] = Field(min_length=1, description="glob patterns of server names")

    @field_validator("match")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for i, p in enumerate(value):
            if not _PATTERN.match(p):
                raise PydanticCustomError(
                    "pattern", "pattern {index} ({pattern}) may only hold letters, digits, "
                    "'.', '-', '_', '*' and '?'", {"index": i, "pattern": repr(p)})
        return [p.lower().rstrip(".") for p in value]


class RulesFile(ConfigModel):
    """An app rules file: ``[[app]]`` rules and the ``[ports]`` fallback."""

    app: list[AppRule] = Field(default_factory=list, description="name rules, first match wins")
    ports: dict[str, AppLabel] = Field(
        default_factory=dict,
        description='port → label: "443", "tcp/443" or "udp/443"')

    @field_validator("ports")
    @classmethod
    def _port_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _port_key(k)]
        if bad:
            raise PydanticCustomError(
                "port_key", "{keys}: keys are port numbers 1-65535, optionally prefixed "
                "by tcp/ or udp/", {"keys": ", ".join(repr(k) for k in bad)})
        return value


def _port_key(key: str) -> tuple[int, int] | None:
    """``(ip_proto or 0, port)`` of a ``[ports]`` key, None when malformed."""
    m = _PORT_KEY.match(key)
    if not m or not 1 <= int(m[2]) <= 65535:
        return None
    proto = {"tcp": TCP, "udp": UDP}.get(m[1] or "", 0)
    return proto, int(m[2])


def registrable_domain(name: str) -> str:
    """The name's registrable domain by the heuristic of the module doc (lower case)."""
    labels = [x for x in name.lower().rstrip(".").split(".") if x]
    if len(labels) <= 2:
        return ".".join(labels)
    if len(labels[-1]) == 2 and labels[-2] in _PUBLIC_SECOND:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


class AppRules:
    """Compiled rules: :meth:`app_for_name` and :meth:`port_labels`."""

    def __init__(self, rules: RulesFile, source: str = "") -> None:
        self.source = source
        self.rules = rules
        self._compiled = [
            (r.name, re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in r.match)))
            for r in rules.app
        ]
        self._cache: dict[str, str] = {}
        # per IP protocol (TCP, UDP) an index into the label list for every port (0: none);
        # "N" (either protocol) first, so "tcp/N" and "udp/N" override it
        self._port_labels = [""]
        self._port_index = {TCP: np.zeros(65536, np.int32), UDP: np.zeros(65536, np.int32)}
        ports: list[tuple[tuple[int, int], str]] = []
        for key, label in rules.ports.items():
            pk = _port_key(key)
            assert pk is not None  # validated
            ports.append((pk, label))
        for (proto, port), label in sorted(ports, key=lambda kv: kv[0][0] != 0):
            if label not in self._port_labels:
                self._port_labels.append(label)
            for p in (TCP, UDP) if proto == 0 else (proto,):
                self._port_index[p][port] = self._port_labels.index(label)
        self._port_label_array = np.array(self._port_labels, dtype=object)

    def app_for_name(self, name: str) -> str:
        """The app of a server name: first matching rule, else the registrable domain."""
        key = name.lower().rstrip(".")
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        app = next((a for a, rx in self._compiled if rx.match(key)), None)
        if app is None:
            app = registrable_domain(key) or key
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[key] = app
        return app

    def port_labels(self, ip_proto: np.ndarray, src_port: np.ndarray,
                    dst_port: np.ndarray) -> np.ndarray:
        """Per record (equally long arrays) the label of the lower labelled port of the
        two (object array, ``""`` when neither has one or the protocol is not TCP/UDP)."""
        sp, dp = src_port.astype(np.int64), dst_port.astype(np.int64)
        lo, hi = np.minimum(sp, dp), np.maximum(sp, dp)
        idx = np.zeros(len(sp), np.int32)
        for p, table in self._port_index.items():
            m = ip_proto == p
            if not m.any():
                continue
            a, b = table[lo[m]], table[hi[m]]
            idx[m] = np.where(a != 0, a, b)
        out: np.ndarray = self._port_label_array[idx]
        return out

    def app_for_ports(self, ip_proto: int, src_port: int, dst_port: int) -> str:
        """:meth:`port_labels` of one record."""
        return str(self.port_labels(np.array([ip_proto]), np.array([src_port]),
                                    np.array([dst_port]))[0])


def default_rules_path() -> Path:
    """The rules file shipped with netwarden."""
    return Path(str(resources.files("netwarden.sensor").joinpath("data", "apps.toml")))


def load_rules(path: Path | None = None) -> AppRules:
    """Read and check a rules file (default: :func:`default_rules_path`).

    Raises :class:`~netwarden.errors.ConfigError` naming the file and every bad key.
    """
    p = path if path is not None else default_rules_path()
    return AppRules(load_config(RulesFile, p), source=str(p))
