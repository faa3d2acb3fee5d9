"""The committed generated code equals what the pinned grpcio-tools makes of the contract."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from netwarden.proto import generate

REPO = Path(__file__).resolve().parents[1]
PROTO_DIR = REPO / "proto"


def test_pinned_tools_installed_and_declared() -> None:
    assert metadata.version("grpcio-tools") == generate.PINNED_TOOLS
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    dev = pyproject["dependency-groups"]["dev"]
    assert f"grpcio-tools=={generate.PINNED_TOOLS}" in dev


def test_generated_code_is_current(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(generate.OUTPUTS)
    stale = [p.name for p in written
             if p.read_bytes() != (PROTO_DIR / p.name).read_bytes()]
    assert not stale, (f"proto/{', proto/'.join(stale)} differ from what {PROTO_DIR}/"
                       "netwarden.proto generates: run `.venv/bin/python proto/generate.py`")


def test_drift_is_detected(tmp_path: Path) -> None:
    """An edited contract generates different code (so the check above can fail)."""
    edited = tmp_path / "netwarden.proto"
    text = generate.PROTO.read_text(encoding="utf-8")
    edited.write_text(text.replace("message Ack {\n  uint64 seq = 1;\n}",
                                   "message Ack {\n  uint64 seq = 1;\n  bool extra = 2;\n}"),
                      encoding="utf-8")
    out = tmp_path / "out"
    generate.generate(out, edited)
    assert (out / "netwarden_pb2.py").read_bytes() != (PROTO_DIR / "netwarden_pb2.py").read_bytes()


def test_grpc_module_imports_the_installed_package() -> None:
    text = (PROTO_DIR / "netwarden_pb2_grpc.py").read_text(encoding="utf-8")
    assert re.search(r"^from netwarden\.proto import netwarden_pb2 as ", text, re.M)
    from netwarden.proto import netwarden_pb2, netwarden_pb2_grpc

    assert netwarden_pb2.DESCRIPTOR.package == "netwarden.v1"
    assert hasattr(netwarden_pb2_grpc, "CollectorStub")


def test_other_tools_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "tools_version", lambda: "1.2.3")
    with pytest.raises(generate.GenerateError, match=r"grpcio-tools 1\.85\.1 is required"):
        generate.check_tools()


def test_proto_dir_holds_only_contract_and_generated_code() -> None:
    names = {p.name for p in PROTO_DIR.iterdir() if p.name != "__pycache__"}
    assert names == {"__init__.py", "netwarden.proto", "generate.py", *generate.OUTPUTS}
