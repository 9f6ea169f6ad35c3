"""Regenerate gsched_pb2*.py from gsched.proto.

Run with the project's virtualenv: ``python protos/regen.py``. The generated files
are committed; ``tests/unit/test_protos_fresh.py`` fails when they are stale.
Tool versions are pinned in pyproject.toml (grpcio-tools == grpcio).
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
GENERATED = ("gsched_pb2.py", "gsched_pb2.pyi", "gsched_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> None:
    """Write the generated modules for protos/gsched.proto into out_dir."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-Igsched/protos={HERE}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            "gsched/protos/gsched.proto",
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for name in GENERATED:
            shutil.copy(pathlib.Path(tmp, "gsched", "protos", name), out_dir / name)


if __name__ == "__main__":
    generate(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
