"""Build the NVML stub library (``nvml_stub.c``) for tests.

Tests point ``LD_LIBRARY_PATH`` at the directory this returns and run the real
``pynvml`` in a subprocess (pynvml keeps the first library it loaded for the life
of the process, so each scenario needs its own interpreter).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

__all__ = ["SOURCE", "build_stub"]

SOURCE = pathlib.Path(__file__).with_name("nvml_stub.c")


def build_stub(tmp_dir: str | os.PathLike[str], *, events: bool = True) -> pathlib.Path:
    """Compile the stub into ``tmp_dir/libnvidia-ml.so.1``.

    Args:
        tmp_dir: directory to build in (created if missing).
        events: include the XID event functions; without them pynvml raises
            ``NVMLError_FunctionNotFound`` when the backend subscribes.

    Returns:
        The directory holding ``libnvidia-ml.so.1`` (for ``LD_LIBRARY_PATH``).

    Raises:
        FileNotFoundError: gcc is not installed.
        subprocess.CalledProcessError: the stub did not compile.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise FileNotFoundError("gcc not found")
    out_dir = pathlib.Path(tmp_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "libnvidia-ml.so.1"
    cmd = [gcc, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(target), str(SOURCE)]
    if not events:
        cmd.insert(1, "-DSTUB_NO_EVENTS")
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out_dir
