"""Typed, strict configuration: TOML files validated by pydantic models.

Every command has one model (:class:`AnalyzeConfig`, :class:`ReportConfig`, ...) built
from sections (:class:`PipelineConfig`, :class:`StoreConfig`, ...). A config file holds
one TOML table per section; every key is optional and unknown keys are errors::

    [pipeline]
    interval_s = 10

    [store]
    target = "./netwarden-data"

:func:`load_config` reads the file, lays command-line overrides on top and validates the
result, reporting every problem at once, one line each (``FILE: key.path: message``).
:func:`dump` renders an effective config back to TOML, defaults included.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, ValidationError
from pydantic_core import PydanticCustomError

from netwarden.errors import ConfigError

__all__ = [
    "AnalyzeConfig",
    "ConfigModel",
    "PipelineConfig",
    "ReportConfig",
    "StoreConfig",
    "distinct",
    "dump",
    "load_config",
]

# Label used for problems found in overrides rather than in the file.
OVERRIDES_SOURCE = "command line"


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


def distinct(what: str) -> Callable[[list[Any]], list[Any]]:
    """A list check for ``AfterValidator``: no item twice, else the error
    ``<what> is listed twice: [items]`` (``what``: e.g. ``"an interface"``)."""

    def check(value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("duplicate", what + " is listed twice: {items}",
                                      {"items": value})
        return value

    return check


class StoreConfig(ConfigModel):
    """Where flow records are stored and how they are written."""

    target: str = Field(
        default="./netwarden-data",
        min_length=1,
        description="directory of the embedded (chdb) store, or a clickhouse:// URL",
    )
    database: str = Field(
        default="netwarden",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="ClickHouse database holding netwarden's tables",
    )
    batch_rows: int = Field(default=100_000, gt=0, description="rows buffered before an insert")
    flush_seconds: float = Field(
        default=5.0, gt=0, description="longest time rows wait in the buffer before an insert"
    )
    retention_days: int = Field(
        default=0, ge=0, description="days of records kept; 0 keeps them forever"
    )


class PipelineConfig(ConfigModel):
    """How packets become per-interval flow records."""

    interval_s: int = Field(
        default=10, ge=1, le=3600, description="length of one aggregation interval, seconds"
    )
    host: str | None = Field(
        default=None,
        min_length=1,
        description="host name recorded with the flows; unset: the capture file's name",
    )
    host_addresses: list[IPvAnyAddress] = Field(
        default_factory=list,
        description="the host's own addresses, which decide direction in/out/local",
    )
    hierarchy: bool = Field(default=True, description="run tshark for the protocol hierarchy")
    hierarchy_max_taps: int = Field(
        default=16, ge=1, le=256, description="most tshark taps used for the protocol hierarchy"
    )
    batch_packets: int = Field(default=65536, gt=0, description="packets decoded per batch")


class AnalyzeConfig(ConfigModel):
    """Configuration of ``netwarden analyze``."""

    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)


class ReportConfig(ConfigModel):
    """Configuration of ``netwarden report ...``."""

    store: StoreConfig = Field(default_factory=StoreConfig)


M = TypeVar("M", bound=BaseModel)


def load_config(
    model_cls: type[M],
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> M:
    """Build ``model_cls`` from the TOML file ``path`` (optional) and ``overrides``.

    ``overrides`` are laid over the file's values. Keys are dotted paths
    (``{"store.target": "/x"}``) or nested mappings (``{"store": {"target": "/x"}}``);
    a ``None`` value means "not given" and is skipped, so unset CLI options can be passed
    as they are.

    Raises :class:`ConfigError` listing every problem, one line each:
    ``FILE: key.path: message`` (problems in overrides name ``command line`` instead of
    the file; TOML syntax errors name ``FILE:LINE:COLUMN``).
    """
    source = str(path) if path is not None else OVERRIDES_SOURCE
    data: dict[str, Any] = _read_toml(path) if path is not None else {}

    override_tree = _expand_overrides(overrides or {})
    _merge(data, override_tree)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            origin = OVERRIDES_SOURCE if _covers(override_tree, loc) else source
            lines.append(f"{origin}: {_loc_text(loc) or '(top level)'}: {_message(err)}")
        raise ConfigError("\n".join(lines)) from None


def dump(model: BaseModel) -> str:
    """The config ``model`` as TOML text, every key included, descriptions as comments.

    Unset optional keys (``None``) are written as comments, since TOML has no null.
    ``load_config(type(model), file_with_this_text)`` gives back an equal model.
    """
    out: list[str] = []
    _dump_table(model, [], out)
    return "\n".join(out).strip("\n") + "\n"


# --- reading -------------------------------------------------------------------------

_TOML_POS = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_END = re.compile(r"^(?P<msg>.*?)\s*\(at end of document\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_line(path, str(exc), text)) from None


def _toml_error_line(path: Path, message: str, text: str) -> str:
    match = _TOML_POS.match(message)
    if match:
        where = f"{path}:{match['line']}:{match['col']}"
        return f"{where}: TOML syntax error: {match['msg']}"
    match = _TOML_END.match(message)
    if match:
        last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
        return f"{path}:{max(last_line, 1)}: TOML syntax error: {match['msg']} (at end of file)"
    return f"{path}: TOML syntax error: {message}"


def _expand_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to nested dicts, dropping ``None`` values."""
    tree: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = _expand_overrides(value)
            if not value:
                continue
        parts = key.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{OVERRIDES_SOURCE}: {key}: conflicts with {part} = {child!r}")
            node = child
        _merge(node, {parts[-1]: value})
    return tree


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Lay ``top`` over ``base`` in place; tables merge key by key, other values replace."""
    for key, value in top.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _covers(tree: Mapping[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` (or a table above it) came from ``tree``."""
    node: Any = tree
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, Mapping):
            return True
    return True


def _loc_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key missing"
    return str(err["msg"])


# --- writing -------------------------------------------------------------------------


def _dump_table(model: BaseModel, prefix: list[str], out: list[str]) -> None:
    fields = type(model).model_fields
    values = model.model_dump(mode="json")
    doc = (type(model).__doc__ or "").strip().splitlines()
    if out:
        out.append("")
    if doc:
        out.append(f"# {doc[0].replace('``', '')}")
    if prefix:
        out.append(f"[{'.'.join(_toml_key(p) for p in prefix)}]")
    tables: list[str] = []
    for name, info in fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            tables.append(name)
            continue
        if info.description:
            out.append(f"# {info.description}")
        if values[name] is None:
            out.append(f"# {_toml_key(name)} = (unset)")
        else:
            out.append(f"{_toml_key(name)} = {_toml_value(values[name])}")
    for name in tables:
        _dump_table(getattr(model, name), [*prefix, name], out)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are a subset of TOML basic-string escapes.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
