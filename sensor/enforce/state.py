"""The enforcer's state file: the last desired state, to enforce again after a restart.

JSON, written atomically (temporary file in the same directory, fsync, rename)::

    {"format": 1, "saved_ns": ..., "enforcement": {...Enforcement as proto JSON...},
     "collectors": [["192.0.2.1", 50051], ...]}

``collectors`` are the collector addresses resolved before, kept protected when the
name no longer resolves after a restart. A damaged file is reported in one line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from netwarden.proto import netwarden_pb2 as pb

from .safety import Address

__all__ = ["FORMAT", "SavedState", "StateError", "load_state", "save_state"]

FORMAT: Final = 1


class StateError(ValueError):
    """The state file cannot be used (one line naming the file)."""


@dataclass(frozen=True)
class SavedState:
    enforcement: pb.Enforcement
    collectors: tuple[tuple[Address, int], ...]
    saved_ns: int


def save_state(path: str | Path, enforcement: pb.Enforcement,
               collectors: tuple[tuple[Address, int], ...], now_ns: int) -> None:
    """Write the state file atomically (the directory is made when missing)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": FORMAT, "saved_ns": now_ns,
        "enforcement": MessageToDict(enforcement, preserving_proto_field_name=True),
        "collectors": [[str(a), p] for a, p in collectors],
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_state(path: str | Path) -> SavedState | None:
    """The saved state, or None when there is no file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{p}: line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"{p}: not a netwarden enforcement state (format {FORMAT})")
    try:
        msg = ParseDict(doc.get("enforcement", {}), pb.Enforcement())
        collectors = tuple((ipaddress.ip_address(a), int(port))
                           for a, port in doc.get("collectors", []))
        saved = int(doc.get("saved_ns", 0))
    except (ParseError, ValueError, TypeError) as exc:
        raise StateError(f"{p}: {' '.join(str(exc).split())}") from None
    return SavedState(msg, collectors, saved)
