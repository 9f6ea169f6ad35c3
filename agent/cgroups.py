"""cgroup v2 confinement of job attempts (the agent's side).

Layout, under the cgroup2 mount (``/sys/fs/cgroup`` on a unified host, or
``/sys/fs/cgroup/unified`` on a hybrid one) and the configured root
(``[agent] cgroup_root``, default ``gsched``)::

    <mount>/<root>/<node>/                 controllers enabled for the children
    <mount>/<root>/<node>/wrappers/        job wrappers (no limits)
    <mount>/<root>/<node>/job_<id>_<att>/  the attempt's script, everything it
                                           starts, and its grun tasks

One subtree per agent (``<node>``), so several agents on one host never share
a cgroup. The launcher creates a job's cgroup and writes its limits before the
wrapper starts; the wrapper (``wrap.py``, standard library only) joins it just
long enough to start the script, so the script is born inside, then moves itself
to ``wrappers/``; at the end it kills the cgroup (``cgroup.kill``, or SIGKILL to
every pid in ``cgroup.procs``), reads ``memory.events`` (an ``oom_kill`` makes the
attempt ``OUT_OF_MEMORY``) and removes it.

Limits (each only where its controller is available in the mount):

* ``memory.max`` from the memory allocated on this node (``--mem``, or
  ``--mem-per-cpu`` times the node's CPUs); ``memory.swap.max`` 0 so the limit is
  not dodged through swap.
* ``cpu.max`` from the CPUs allocated on this node (a quota of that many CPUs per
  period). gsched does not assign particular cores, so no ``cpuset``.

Process tracking (``cgroup.procs``, ``cgroup.kill``, ``cgroup.events``) needs no
controller: it works wherever the agent (as root) can create cgroups in a
cgroup2 mount, even when the resource controllers are bound to cgroup v1.

:meth:`CgroupTree.setup` reports what it could do as a short text that the agent
logs at start and sends to the controller (``ginfo -o %k``):
``cgroup2:memory,cpu`` (the controllers in use), ``cgroup2:track`` (tracking,
no limits), or ``none (<why>)`` (no cgroups: process groups only); the agent
adds ``+devns`` after the first word when it hides other jobs' GPU nodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

__all__ = ["WANTED", "CgroupTree", "find_mount"]

logger = logging.getLogger(__name__)

WANTED = ("memory", "cpu", "pids")
_PERIOD_US = 100_000


def find_mount(mounts: str = "/proc/self/mounts") -> str | None:
    """The cgroup2 mount point to use (the first listed), or None."""
    try:
        with open(mounts, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return parts[1].replace("\\040", " ")
    return None


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError:
        return ""


class CgroupTree:
    """This agent's subtree of a cgroup2 hierarchy."""

    def __init__(self, mount: str, root: str, node: str, controllers: tuple[str, ...]) -> None:
        self.mount = Path(mount)
        self.root = self.mount / root.strip("/")
        self.base = self.root / node
        self.controllers = controllers

    def release(self) -> None:
        """Remove this agent's subtree, up to the configured root, where it is empty."""
        for d in (self.wrappers, self.base, *self.base.relative_to(self.root).parents):
            path = d if d.is_absolute() else self.root / d
            try:
                path.rmdir()
            except OSError:
                return

    # ------------------------------------------------------------ setup

    @classmethod
    def setup(
        cls, root: str, node: str, mount: str | None = None, *, enabled: bool = True
    ) -> tuple[CgroupTree | None, str]:
        """Create this agent's subtree; returns it (or None) and what confinement it gives."""
        if not enabled:
            return None, "none (cgroups disabled in the configuration)"
        if os.geteuid() != 0:
            return None, "none (the agent does not run as root)"
        mount = mount or find_mount()
        if mount is None:
            return None, "none (no cgroup2 filesystem mounted)"
        available = set(_read(Path(mount) / "cgroup.controllers").split())
        wanted = tuple(c for c in WANTED if c in available)
        tree = cls(mount, root, node, ())
        try:
            tree.base.mkdir(parents=True, exist_ok=True)
            (tree.base / "wrappers").mkdir(exist_ok=True)
        except OSError as exc:
            return None, f"none (cannot create {tree.base}: {exc.strerror})"
        tree.controllers = tree._enable(wanted)
        what = ",".join(tree.controllers) if tree.controllers else "track"
        return tree, f"cgroup2:{what}"

    def _enable(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """Enable ``wanted`` in every subtree_control from the mount down to ``base``."""
        chain = [self.mount]
        for part in self.base.relative_to(self.mount).parts:
            chain.append(chain[-1] / part)
        got = []
        for ctl in wanted:
            ok = True
            for d in chain:
                if ctl in _read(d / "cgroup.subtree_control").split():
                    continue
                try:
                    _write(d / "cgroup.subtree_control", f"+{ctl}")
                except OSError as exc:
                    logger.warning("cgroup: cannot enable %s in %s: %s", ctl, d, exc.strerror)
                    ok = False
                    break
            if ok:
                got.append(ctl)
        return tuple(got)

    # ------------------------------------------------------------ jobs

    @property
    def wrappers(self) -> Path:
        return self.base / "wrappers"

    def job_path(self, job_id: int, attempt: int) -> Path:
        return self.base / f"job_{job_id}_{attempt}"

    def create_job(self, job_id: int, attempt: int, cpus: int, mem_mb: int) -> Path:
        """Create the attempt's cgroup with its limits (0: no limit of that kind)."""
        path = self.job_path(job_id, attempt)
        path.mkdir(exist_ok=True)
        if "memory" in self.controllers and mem_mb > 0:
            _write(path / "memory.max", str(mem_mb * 1024 * 1024))
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
        if "cpu" in self.controllers and cpus > 0:
            _write(path / "cpu.max", f"{cpus * _PERIOD_US} {_PERIOD_US}")
        return path

    @staticmethod
    def procs(path: Path) -> list[int]:
        """The pids in a cgroup (empty if it does not exist)."""
        return [int(p) for p in _read(path / "cgroup.procs").split()]

    @staticmethod
    def kill(path: Path) -> None:
        """SIGKILL every process in the cgroup (new forks included)."""
        if not path.is_dir():
            return
        try:
            _write(path / "cgroup.kill", "1")
            return
        except OSError:
            pass  # kernels before 5.14: kill pid by pid until none is left
        for _ in range(100):
            pids = CgroupTree.procs(path)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    @staticmethod
    def oom_kills(path: Path) -> int:
        """How many processes of the cgroup the kernel killed for memory."""
        for line in _read(path / "memory.events").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    @staticmethod
    def remove(path: Path, wait: float = 5.0) -> bool:
        """Kill what is left and remove the cgroup; False if it is still busy."""
        deadline = time.monotonic() + wait
        while path.is_dir():
            CgroupTree.kill(path)
            try:
                path.rmdir()
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
        return True
