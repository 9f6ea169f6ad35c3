"""SLURM-named commands (sbatch, squeue, ...) that run the gsched equivalents.

The agent puts a directory of these first on every job's PATH, and
``gsched shims DIR`` installs the same on a login node. Each shim sets
``GSCHED_PROG`` so error messages carry the SLURM name the script used.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SHIMS", "install_shims", "prog_name"]

SHIMS = {
    "sbatch": "gsub",
    "squeue": "gqueue",
    "scancel": "gcancel",
    "scontrol": "gctl",
    "sinfo": "ginfo",
    "sacct": "gacct",
    "srun": "grun",
    "sprio": "gprio",
    "sshare": "gshare",
}


def prog_name(default: str) -> str:
    """The name to print in messages: the SLURM name when run through a shim."""
    return os.environ.pop("GSCHED_PROG", "") or default


def install_shims(directory: str | os.PathLike[str], bindir: str | None = None) -> list[str]:
    """Write one executable shim per SLURM command into ``directory``; return their paths."""
    bindir = bindir or os.path.dirname(os.path.abspath(sys.argv[0]))
    if not os.path.exists(os.path.join(bindir, "gsub")):
        bindir = os.path.dirname(sys.executable)
    import pathlib

    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for slurm, ours in SHIMS.items():
        target = os.path.join(bindir, ours)
        path = out / slurm
        tmp = out / f".{slurm}.tmp"
        tmp.write_text(f'#!/bin/sh\nGSCHED_PROG={slurm} exec "{target}" "$@"\n')
        tmp.chmod(0o755)
        tmp.replace(path)
        written.append(str(path))
    return written
