"""Regenerate the Python code of ``proto/netwarden.proto`` with the pinned grpcio-tools.

Run ``.venv/bin/python proto/generate.py`` after editing the ``.proto`` file; it writes
``netwarden_pb2.py``, ``netwarden_pb2.pyi`` and ``netwarden_pb2_grpc.py`` beside it.
``tests/test_proto.py`` regenerates into a temporary directory and fails when the
committed files differ, so the generated code never goes stale.

The ``.proto`` file is compiled from a temporary tree where it sits at
``netwarden/proto/netwarden.proto``: the generated gRPC module then imports
``from netwarden.proto import netwarden_pb2``, which is where the package installs it.
Only grpcio-tools ``PINNED_TOOLS`` is accepted, since another version writes other code.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PINNED_TOOLS = "1.85.1"
HERE = Path(__file__).resolve().parent
PROTO = HERE / "netwarden.proto"
PACKAGE_PATH = Path("netwarden") / "proto"
OUTPUTS = ("netwarden_pb2.py", "netwarden_pb2.pyi", "netwarden_pb2_grpc.py")


class GenerateError(Exception):
    """The code could not be generated (wrong grpcio-tools, protoc error)."""


def tools_version() -> str | None:
    """The installed grpcio-tools version, or None when it is not installed."""
    try:
        return metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        return None


def check_tools() -> None:
    """Refuse any grpcio-tools but the pinned one."""
    found = tools_version()
    if found != PINNED_TOOLS:
        have = "not installed" if found is None else f"version {found} is installed"
        raise GenerateError(f"grpcio-tools {PINNED_TOOLS} is required ({have}); "
                            "run `uv sync` (it is in the dev dependency group)")


def generate(out_dir: Path, proto: Path = PROTO) -> list[Path]:
    """Compile ``proto`` into ``out_dir``; return the files written (``OUTPUTS``)."""
    check_tools()
    from grpc_tools import protoc  # dev dependency: imported only when generating

    include = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="netwarden-proto-") as tmp:
        root = Path(tmp)
        src = root / "src" / PACKAGE_PATH / proto.name
        src.parent.mkdir(parents=True)
        shutil.copyfile(proto, src)
        build = root / "build"
        build.mkdir()
        args = [
            "grpc_tools.protoc",
            f"-I{root / 'src'}",
            f"-I{include}",
            f"--python_out={build}",
            f"--pyi_out={build}",
            f"--grpc_python_out={build}",
            str(PACKAGE_PATH / proto.name),
        ]
        status = protoc.main(args)
        if status != 0:
            raise GenerateError(f"protoc failed on {proto} (exit status {status})")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in OUTPUTS:
            made = build / PACKAGE_PATH / name
            if not made.is_file():
                raise GenerateError(f"protoc did not write {name}")
            target = out_dir / name
            shutil.copyfile(made, target)
            written.append(target)
    return written


def main() -> int:
    try:
        for path in generate(HERE):
            print(f"wrote {path}")
    except GenerateError as exc:
        print(f"generate.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
