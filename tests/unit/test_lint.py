"""The tree stays ruff-clean (the project's lint gate runs with the tests)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_ruff_clean() -> None:
    ruff = pathlib.Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff not installed")
    p = subprocess.run([exe, "check", "--no-cache", str(ROOT)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stdout[-4000:]
