"""Job attempts on this node: start them through the wrapper, watch them, report exits.

Every attempt lives in ``<state_dir>/jobs/<job_id>.<attempt>/`` (mode 0755, owned
by the agent's user)::

    launch.json   what the wrapper runs (argv, env, cwd, ids, output files,
                  limits), mode 0600, written before the wrapper starts;
                  ``"batch": false`` marks a placeholder (a non-batch node of a
                  multi-node job: no process until steps exist)
    script        the batch script, mode 0700, owned by the job's user
    fork.claim    created by the wrapper forked by the fork server before it
                  does anything (or by the launcher, to make sure none will)
    wrapper.log   the wrapper's own stdout/stderr (not the job's)
    wrapper.pid   {"pid", "create_time"} of the wrapper (psutil's create_time)
    script.pid    {"pid", "pgid", "create_time"} of the batch script
    kill_reason   why the launcher sent SIGTERM (cancelled, requeue, stale, ...)
    exit.json     {"exit_code", "signal", "reason", "end_time", "message",
                  "start_time"}: the end (written by the wrapper, or by the
                  launcher for launch failures, placeholders and lost wrappers)
    acked         the controller acknowledged the exit; the directory is pruned
                  ``keep_acked_s`` later

The directory is the attempt's identity: :meth:`Launcher.launch` does nothing for
an attempt whose directory exists, finished or not, so an order repeated after a
reconnect or a controller restart never runs a job twice. Exit records stay on
disk and are reported again (:meth:`Launcher.recover`,
:meth:`Launcher.pending_exits`) until :meth:`Launcher.ack`.

Wrappers are forked by the launcher's fork server (``forkserver.py``: one
interpreter, with ``wrap.py`` imported, started by :meth:`Launcher.recover` or
at the first launch, and again if it dies), or,
where it cannot be used, started by path as ``python -I -S wrap.py DIR``; they
look the same either way (command line, session, ``wrapper.pid``). The fork
server writes its errors to ``<state_dir>/forkserver.log``.

Wrappers run in sessions of their own and outlive the agent. A restarted agent
re-adopts the live ones (pid plus creation time, so a reused pid is not mistaken
for one) and records the dead ones that left no ``exit.json`` as ``killed`` /
``wrapper lost``. Exits are noticed through a pidfd on the event loop (polling
with psutil where pidfds are unavailable).

All methods are called from the event loop's thread; :meth:`Launcher.recover`
and :meth:`Launcher.launch` need a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import pwd
import select
import shutil
import signal as _signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from gsched.agent.forkserver import CLAIM
from gsched.agent.wrap import FORWARDED, WARN_SIGNAL, write_json_atomic
from gsched.common.signalspec import parse_signal_option

if TYPE_CHECKING:
    from gsched.agent.cgroups import CgroupTree
    from gsched.protos import gsched_pb2

__all__ = ["ExitRecord", "Launcher", "build_environment"]

logger = logging.getLogger(__name__)

WRAPPER = str(Path(__file__).with_name("wrap.py"))
FORKSERVER = str(Path(__file__).with_name("forkserver.py"))
DEFAULT_KILL_WAIT = 30
_BACKSTOP_S = 30.0  # after kill_wait, SIGKILL a wrapper that has not finished
_PRUNE_EVERY_S = 600.0
_FS_START_TIMEOUT_S = 10.0  # for the fork server to say it is ready
_FS_REPLY_TIMEOUT_S = 20.0  # for a reply (the fork server waits 10 s for its wrapper)
_FS_RETRY_S = 60.0  # after a fork server failed to start, start wrappers by path this long
_FS_CLAIMED_WAIT_S = 30.0  # for wrapper.pid of a forked wrapper whose start was not replied
_FS_ROOM = 64  # bytes reserved in the fork server's command line for its wrappers' ones
_NONE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclasses.dataclass(frozen=True)
class ExitRecord:
    """How one attempt ended, as sent in ``JobExited``."""

    job_id: int
    attempt: int
    exit_code: int
    signal: int
    reason: str
    end_time: float
    message: str = ""

    def to_proto(self) -> gsched_pb2.JobExited:
        """This record as the wire message."""
        from gsched.protos import gsched_pb2

        return gsched_pb2.JobExited(
            ref=gsched_pb2.AttemptRef(job_id=self.job_id, attempt=self.attempt),
            exit_code=self.exit_code,
            signal=self.signal,
            reason=self.reason,
            end_time=self.end_time,
            message=self.message,
        )


# ---------------------------------------------------------------- environment


def _per_node(values: list[int]) -> str:
    """SLURM's run-length form: [2, 2, 1] -> "2(x2),1"."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        parts.append(f"{values[i]}(x{j - i})" if j - i > 1 else str(values[i]))
        i = j
    return ",".join(parts)


def _tasks_per_node(ntasks: int, nnodes: int) -> list[int]:
    base, extra = divmod(ntasks, nnodes)
    return [base + (1 if i < extra else 0) for i in range(nnodes)]


# Job-specific variables an exported environment may carry from an enclosing job
# (a job submitted from inside another one): removed unless this job sets them.
_ARRAY_VARS = (
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
)
_INHERITED_JOB_VARS = (
    "SLURM_NTASKS_PER_NODE",
    "SLURM_CPUS_PER_TASK",
    "SLURM_GPUS",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_GPUS",
    "SLURM_RESTART_COUNT",
    "SLURM_STEP_ID",
    "SLURM_STEPID",
    "SLURM_STEP_NODELIST",
    "SLURM_STEP_NUM_NODES",
    "SLURM_STEP_NUM_TASKS",
    "SLURM_STEP_TASKS_PER_NODE",
    "SLURM_STEP_GPUS",
    "SLURM_TASK_PID",
    "GSCHED_JOB_GPUS",
    "GPU_DEVICE_ORDINAL",
    "ROCR_VISIBLE_DEVICES",
    "ZE_AFFINITY_MASK",
)


def build_environment(
    msg: gsched_pb2.Launch, node_name: str, shim_dir: str | None
) -> dict[str, str]:
    """The environment of a batch script, as SLURM 22.05 builds it, plus ``GSCHED_*``.

    Starts from the submitter's exported environment (``msg.spec.environment``);
    with ``--export=NONE`` from ``HOME``, ``USER``, ``LOGNAME``, ``SHELL`` (from
    the passwd entry of ``msg.uid``) and ``PATH=/usr/local/bin:/usr/bin:/bin``.

    Decisions where SLURM's behaviour depends on its configuration:

    * ``CUDA_VISIBLE_DEVICES``/``GPU_DEVICE_ORDINAL``/``ROCR_VISIBLE_DEVICES``/
      ``ZE_AFFINITY_MASK`` are this node's allocated GPU indices (no device
      cgroup renumbers them). A job without GPUs on this node gets
      ``CUDA_VISIBLE_DEVICES=""`` (CUDA then sees no device), so a value exported
      from the login shell cannot hand it GPUs that belong to other jobs.
    * ``SLURM_NTASKS``/``SLURM_NPROCS`` are always set (``msg.ntasks``, else the
      spec's, else one per node); SLURM omits them without ``-n``.
    * ``SLURM_RESTART_COUNT`` is always set (``0`` on the first attempt), like
      ``GSCHED_RESTART_COUNT``; SLURM sets it only from the first requeue on.
    * ``MASTER_ADDR`` (first node's address) and ``MASTER_PORT`` (``20000 +
      job_id % 20000``) for PyTorch, unless exported by the submitter.

    Args:
        msg: the launch order.
        node_name: this node's name (``SLURMD_NODENAME``).
        shim_dir: directory of the SLURM-named shims to put first on ``PATH``.
    """
    from gsched.common.hostlist import compress

    spec = msg.spec
    job_id = msg.ref.job_id
    attempt = msg.ref.attempt
    mode = spec.export_mode.strip().upper()
    if mode == "NONE" or (mode and not mode.startswith("ALL")):
        try:
            pw = pwd.getpwuid(msg.uid)
            home, user, shell = pw.pw_dir, pw.pw_name, pw.pw_shell or "/bin/sh"
        except KeyError:
            home, user, shell = "/", msg.user or str(msg.uid), "/bin/sh"
        env = {"HOME": home, "USER": user, "LOGNAME": user, "SHELL": shell, "PATH": _NONE_PATH}
        if mode != "NONE":  # --export=A,B=1: only the named variables
            env.update(spec.environment)
    else:
        env = dict(spec.environment)
    for name in _INHERITED_JOB_VARS:
        env.pop(name, None)

    names = [n.node for n in msg.nodes] or [node_name]
    nnodes = len(names)
    index = msg.node_index if 0 <= msg.node_index < len(msg.nodes) else 0
    here = msg.nodes[index] if msg.nodes else None
    gpus_here = ",".join(str(i) for i in here.indices) if here else ""
    ntasks_per_node = spec.ntasks_per_node
    ntasks = msg.ntasks or spec.ntasks or nnodes * max(ntasks_per_node, 1)
    tasks = _tasks_per_node(ntasks, nnodes)
    cpus_per_task = max(spec.cpus_per_task, 1)
    cpus = [n.cpus or tasks[i] * cpus_per_task for i, n in enumerate(msg.nodes)] or [
        tasks[0] * cpus_per_task
    ]
    nodelist = compress(names)

    for name in _ARRAY_VARS:  # never inherited from a submitting array task
        env.pop(name, None)
    set_ = env.__setitem__
    set_("SLURM_JOB_ID", str(job_id))
    set_("SLURM_JOBID", str(job_id))
    if msg.array_job_id:
        # SLURM_JOB_ID is the task's own id; the array's is SLURM_ARRAY_JOB_ID
        set_("SLURM_ARRAY_JOB_ID", str(msg.array_job_id))
        set_("SLURM_ARRAY_TASK_ID", str(msg.array_task_id))
        set_("SLURM_ARRAY_TASK_COUNT", str(msg.array_task_count))
        set_("SLURM_ARRAY_TASK_MIN", str(msg.array_task_min))
        set_("SLURM_ARRAY_TASK_MAX", str(msg.array_task_max))
        set_("SLURM_ARRAY_TASK_STEP", str(msg.array_task_step))
    set_("SLURM_JOB_NAME", spec.name)
    set_("SLURM_JOB_NODELIST", nodelist)
    set_("SLURM_NODELIST", nodelist)
    set_("SLURM_JOB_NUM_NODES", str(nnodes))
    set_("SLURM_NNODES", str(nnodes))
    set_("SLURM_NTASKS", str(ntasks))
    set_("SLURM_NPROCS", str(ntasks))
    if ntasks_per_node > 0:
        set_("SLURM_NTASKS_PER_NODE", str(ntasks_per_node))
    set_("SLURM_TASKS_PER_NODE", _per_node(tasks))
    if spec.cpus_per_task > 0:
        set_("SLURM_CPUS_PER_TASK", str(spec.cpus_per_task))
    set_("SLURM_CPUS_ON_NODE", str(cpus[index]))
    set_("SLURM_JOB_CPUS_PER_NODE", _per_node(cpus))
    if gpus_here:
        set_("SLURM_GPUS_ON_NODE", str(len(here.indices) if here else 0))
        set_("SLURM_JOB_GPUS", gpus_here)
        for name in ("GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
            set_(name, gpus_here)
    set_("CUDA_VISIBLE_DEVICES", gpus_here)
    if spec.gpus > 0:
        set_("SLURM_GPUS", str(spec.gpus))
    set_("SLURM_JOB_PARTITION", msg.partition)
    set_("SLURM_SUBMIT_DIR", spec.submit_dir)
    set_("SLURM_SUBMIT_HOST", spec.submit_host)
    set_("SLURM_PROCID", "0")
    set_("SLURM_LOCALID", "0")
    set_("SLURM_NODEID", str(index))
    set_("SLURMD_NODENAME", node_name)
    set_("SLURM_RESTART_COUNT", str(attempt))
    set_("SLURM_JOB_USER", msg.user)
    set_("SLURM_JOB_UID", str(msg.uid))
    set_("SLURM_JOB_GID", str(msg.gid))
    set_("SLURM_CLUSTER_NAME", msg.cluster_name)
    set_("SLURM_GTIDS", "0")
    set_("SLURM_PRIO_PROCESS", "0")
    set_("SLURM_TOPOLOGY_ADDR", node_name)
    set_("SLURM_TOPOLOGY_ADDR_PATTERN", "node")
    set_("ENVIRONMENT", "BATCH")
    env.setdefault("TMPDIR", "/tmp")
    env.setdefault("MASTER_ADDR", msg.node_addresses.get(names[0]) or names[0])
    env.setdefault("MASTER_PORT", str(20000 + job_id % 20000))

    set_("GSCHED_JOB_ID", str(job_id))
    set_("GSCHED_JOB_NAME", spec.name)
    set_("GSCHED_JOB_NODELIST", nodelist)
    set_("GSCHED_NNODES", str(nnodes))
    set_("GSCHED_NODEID", str(index))
    set_("GSCHED_NTASKS", str(ntasks))
    set_("GSCHED_RESTART_COUNT", str(attempt))
    # this attempt's step credential: grun proves with it that it runs inside the job
    # (never a submitting job's: a job submitted from inside another does not inherit it)
    env.pop("GSCHED_STEP_TOKEN", None)
    if msg.step_token:
        set_("GSCHED_STEP_TOKEN", msg.step_token)
    if msg.last_failure:
        set_("GSCHED_LAST_FAILURE", msg.last_failure)
    if gpus_here:
        set_("GSCHED_JOB_GPUS", gpus_here)
    set_("GSCHED_SUBMIT_DIR", spec.submit_dir)
    set_("GSCHED_NODENAME", node_name)
    set_("GSCHED_CLUSTER_NAME", msg.cluster_name)
    if os.environ.get("GSCHED_CONF"):
        set_("GSCHED_CONF", os.environ["GSCHED_CONF"])
    if msg.controller_address:
        set_("GSCHED_CONTROLLER", msg.controller_address)
    if shim_dir:
        path = env.get("PATH") or _NONE_PATH
        if path.split(":")[0] != shim_dir:
            path = f"{shim_dir}:{path}"
        set_("PATH", path)
    return env


# ---------------------------------------------------------------- attempts


@dataclasses.dataclass
class _Attempt:
    job_id: int
    attempt: int
    dir: Path
    pid: int = 0
    create_time: float = 0.0
    popen: subprocess.Popen[bytes] | None = None  # set when the wrapper is our child
    pidfd: int = -1
    placeholder: bool = False
    kill_wait: float = DEFAULT_KILL_WAIT
    backstop: asyncio.TimerHandle | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.job_id, self.attempt)


class _LaunchFailed(Exception):
    """The attempt cannot start; recorded as ``launch_failed`` with this message."""


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _parse_key(name: str) -> tuple[int, int] | None:
    job, _, attempt = name.partition(".")
    if not (job.isdigit() and attempt.isdigit()):
        return None
    return int(job), int(attempt)


def _same_process(pid: int, create_time: float, attempt_dir: Path | None = None) -> bool:
    """True if ``pid`` is alive and is the process started at ``create_time``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if create_time and abs(proc.create_time() - create_time) > 1.0:
            return False
        if attempt_dir is not None:
            cmd = proc.cmdline()
            if attempt_dir.name not in (os.path.basename(a.rstrip("/")) for a in cmd):
                return False
            if not any(a.endswith("wrap.py") for a in cmd):
                return False
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return True


def _wrapper_env() -> dict[str, str]:
    """The environment wrappers (and the fork server) run with."""
    return {"PATH": os.environ.get("PATH", _NONE_PATH), "LANG": "C.UTF-8"}


def _claim(d: Path) -> bool:
    """Take the attempt from the fork server: True if no forked wrapper has it (or will)."""
    try:
        fd = os.open(d / CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


class _ForkUnsure(Exception):
    """A request reached the fork server, but whether a wrapper started is unknown."""

    def __init__(self, why: str, claimed: bool = False) -> None:
        super().__init__(why)
        self.claimed = claimed  # a forked wrapper took the attempt, then ended unstarted


class _ForkServer:
    """A launcher's fork server (``forkserver.py``): wrappers without a new interpreter each.

    Started by :meth:`prepare` or at the first launch, and again after it dies;
    used from the launch threads, one request at a time. Where it cannot start, wrappers are started
    by path (for :data:`_FS_RETRY_S`, then it is tried again).
    """

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.buf = b""
        self.retry_at = 0.0
        self.closed = False

    def start(self, d: Path) -> tuple[int, float] | None:
        """Have a wrapper forked for attempt directory ``d``; its pid and create_time.

        Returns:
            None if no wrapper was started (start one by path).

        Raises:
            _ForkUnsure: one may have been started.
        """
        with self.lock:
            try:
                return self._start(d)
            finally:
                if self.closed:
                    self._stop()

    def prepare(self) -> None:
        """Start the fork server if it is not running (errors are logged)."""
        try:
            with self.lock:
                try:
                    if not self.closed:
                        self._running()
                finally:
                    if self.closed:
                        self._stop()
        except Exception:
            logger.exception("fork server: could not start it")

    def _start(self, d: Path) -> tuple[int, float] | None:
        if self.closed or not self._running():
            return None
        assert self.proc is not None and self.proc.stdin is not None
        try:
            # One write of one short line: all of it reaches the fork server, or none.
            os.write(self.proc.stdin.fileno(), json.dumps({"dir": str(d)}).encode() + b"\n")
        except OSError as exc:
            logger.warning("fork server gone (%s); starting it again", exc)
            self._stop()
            return None
        reply = self._read(_FS_REPLY_TIMEOUT_S)
        if reply is None or reply.get("dir") != str(d):
            self._stop()
            raise _ForkUnsure(f"no reply from the fork server (got {reply})")
        if reply.get("error") or not reply.get("pid"):
            raise _ForkUnsure(str(reply.get("error")), bool(reply.get("claimed")))
        return int(reply["pid"]), float(reply.get("create_time") or 0.0)

    def _running(self) -> bool:
        """Whether the fork server is up, starting it if need be."""
        if self.proc is not None:
            if self.proc.poll() is None:
                return True
            logger.warning("fork server exited (%s); starting it again", self.proc.returncode)
            self._stop()
        if time.monotonic() < self.retry_at:
            return False
        try:
            with open(self.jobs_dir.parent / "forkserver.log", "ab") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        FORKSERVER,
                        WRAPPER,
                        str(self.jobs_dir),
                        " " * _FS_ROOM,  # room for its wrappers' command lines
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd="/",
                    env=_wrapper_env(),
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            logger.warning("fork server: %s; starting wrappers by path", exc)
            self.retry_at = time.monotonic() + _FS_RETRY_S
            return False
        self.buf = b""
        ready = self._read(_FS_START_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            logger.warning(
                "fork server did not start (%s); starting wrappers by path",
                (ready or {}).get("error", "no word from it"),
            )
            self._stop()
            self.retry_at = time.monotonic() + _FS_RETRY_S
            return False
        logger.info("fork server started, pid %d", self.proc.pid)
        return True

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """The fork server's next line; None at its end, after the timeout or if garbled."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not poller.poll(left * 1000):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=2)  # it exits at the end of its input
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the fork server (now, or when the launch in flight is done)."""
        self.closed = True
        # Whoever holds the lock longer stops it when done (see start and prepare).
        if self.lock.acquire(timeout=1.0):
            try:
                self._stop()
            finally:
                self.lock.release()


class Launcher:
    """Starts, watches, signals and recovers this node's job attempts."""

    #: Notice exits through pidfds when the kernel has them (tests turn this off
    #: to exercise the polling path).
    use_pidfd = hasattr(os, "pidfd_open")
    #: Start wrappers through the fork server (tests turn this off to exercise
    #: starting them by path, which is also the fallback).
    use_forkserver = True

    def __init__(
        self,
        state_dir: Path | str,
        node_name: str,
        shim_dir: str | None,
        on_exit: Callable[[ExitRecord], None],
        *,
        keep_acked_s: float = 6 * 3600,
        poll_interval: float = 0.2,
    ) -> None:
        """Set up the launcher; nothing is started or recovered yet.

        Args:
            state_dir: the agent's state directory; attempts live in its ``jobs/``.
            node_name: this node's name, for the job environment.
            shim_dir: directory of SLURM-named shims put first on jobs' PATH.
            on_exit: called (on the event loop) with each attempt's end; again
                after a restart until :meth:`ack`.
            keep_acked_s: how long an acknowledged attempt's directory is kept.
            poll_interval: seconds between liveness checks when polling.
        """
        self.jobs_dir = Path(state_dir) / "jobs"
        # set by the agent (see gsched.agent.main): 0 disables fencing
        self.fence_file = str(Path(state_dir) / "fence")
        self.fence_after = 0.0
        self.fence_grace = 2.0
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        # The job's user must be able to reach (not list) its script in here.
        self.jobs_dir.chmod(0o755)
        self.node_name = node_name
        self.shim_dir = shim_dir
        self.on_exit = on_exit
        self.keep_acked_s = keep_acked_s
        self.poll_interval = poll_interval
        self._attempts: dict[tuple[int, int], _Attempt] = {}
        self._launching: dict[tuple[int, int], str | None] = {}
        self._poll_task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._forkserver = _ForkServer(self.jobs_dir)
        # Confinement, set by the agent (see gsched.agent.main and agent/cgroups.py).
        self.cgroups: CgroupTree | None = None
        self.gpu_device_path = ""  # "/dev/nvidia{index}": other GPUs' nodes are hidden
        self.gpu_indices: tuple[int, ...] = ()  # this node's GPUs
        self.allow_root_jobs = True

    def _dir(self, job_id: int, attempt: int) -> Path:
        return self.jobs_dir / f"{job_id}.{attempt}"

    # ------------------------------------------------------------ queries

    def cgroup_of(self, job_id: int, attempt: int) -> str:
        """The attempt's cgroup directory while it exists ("" without one)."""
        if self.cgroups is None:
            return ""
        path = self.cgroups.job_path(job_id, attempt)
        return str(path) if path.is_dir() else ""

    def running(self) -> list[tuple[int, int]]:
        """Attempts this node runs now (placeholders included), sorted."""
        return sorted(self._attempts)

    def pending_exits(self) -> list[ExitRecord]:
        """Every recorded exit the controller has not acknowledged yet."""
        out = []
        for d in sorted(self.jobs_dir.iterdir()):
            key = _parse_key(d.name)
            if key is None or key in self._attempts or (d / "acked").exists():
                continue
            rec = self._read_exit(d, key)
            if rec is not None:
                out.append(rec)
        return out

    @staticmethod
    def _read_exit(d: Path, key: tuple[int, int]) -> ExitRecord | None:
        data = _read_json(d / "exit.json")
        if data is None:
            return None
        return ExitRecord(
            job_id=key[0],
            attempt=key[1],
            exit_code=int(data.get("exit_code", 0)),
            signal=int(data.get("signal", 0)),
            reason=str(data.get("reason", "")),
            end_time=float(data.get("end_time", 0.0)),
            message=str(data.get("message", "")),
        )

    # ------------------------------------------------------------ launch

    async def launch(self, msg: gsched_pb2.Launch) -> bool:
        """Start one attempt, unless this node has ever seen it.

        Returns:
            True if the attempt is new here (started, placeholder recorded, or its
            launch failure recorded and reported); False if it already existed
            (running or finished), in which case nothing is done.
        """
        key = (msg.ref.job_id, msg.ref.attempt)
        d = self._dir(*key)
        if key in self._attempts or key in self._launching or d.exists():
            logger.info("job %d attempt %d: already launched here; ignored", *key)
            return False
        self._launching[key] = None
        try:
            result = await asyncio.to_thread(self._start, msg, d)
        finally:
            pending_kill = self._launching.pop(key)
        if result is None:
            return False
        if isinstance(result, ExitRecord):
            self._report(result)
            return True
        self._attempts[key] = result
        if not result.placeholder:
            self._watch(result)
            logger.info("job %d attempt %d: started, wrapper pid %d", *key, result.pid)
        else:
            logger.info("job %d attempt %d: placeholder on non-batch node", *key)
        if pending_kill is not None:
            self.kill(*key, pending_kill)
        return True

    def _start(self, msg: gsched_pb2.Launch, d: Path) -> _Attempt | ExitRecord | None:
        """Create the attempt directory and start the wrapper (runs in a thread)."""
        key = (msg.ref.job_id, msg.ref.attempt)
        try:
            d.mkdir(mode=0o755)
        except FileExistsError:
            return None
        try:
            d.chmod(0o755)
            if not msg.batch:
                write_json_atomic(str(d / "launch.json"), {"job_id": key[0], "batch": False})
                return _Attempt(*key, d, placeholder=True)
            return self._spawn(msg, d)
        except _LaunchFailed as exc:
            return self._record(d, key, 1, 0, "launch_failed", str(exc))
        except Exception as exc:
            # The directory exists now, so this attempt will never be started again:
            # the controller must hear that it failed, whatever went wrong here.
            logger.exception("job %d attempt %d: launch failed", *key)
            return self._record(d, key, 1, 0, "launch_failed", f"agent: {exc}")

    def _identity(self, msg: gsched_pb2.Launch) -> tuple[int, int, list[int], str, Any]:
        """uid, gid, groups, user name and passwd entry the job runs with."""
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwuid(msg.uid)
            except KeyError as exc:
                raise _LaunchFailed(
                    f"user {msg.user or msg.uid} (uid {msg.uid}) not found"
                ) from exc
            gid = msg.gid if msg.gid or msg.uid == 0 else pw.pw_gid
            return msg.uid, gid, os.getgrouplist(pw.pw_name, gid), pw.pw_name, pw
        me = pwd.getpwuid(os.getuid())
        if msg.uid != os.getuid() and msg.user != me.pw_name:
            raise _LaunchFailed(
                f"agent runs as {me.pw_name} (uid {os.getuid()}) and cannot run jobs of "
                f"{msg.user or '?'} (uid {msg.uid})"
            )
        return os.getuid(), os.getgid(), os.getgroups(), me.pw_name, me

    def _confinement(self, msg: gsched_pb2.Launch, d: Path) -> dict[str, Any]:
        """The attempt's cgroup (created, with its limits) and devices to hide, for launch.json."""
        out: dict[str, Any] = {}
        index = msg.node_index if 0 <= msg.node_index < len(msg.nodes) else 0
        here = msg.nodes[index] if msg.nodes else None
        if self.cgroups is not None:
            try:
                path = self.cgroups.create_job(
                    msg.ref.job_id,
                    msg.ref.attempt,
                    here.cpus if here else 0,
                    here.mem_mb if here else 0,
                )
            except OSError as exc:
                raise _LaunchFailed(f"agent: cannot create the job's cgroup: {exc}") from exc
            out["cgroup"] = str(path)
            out["cgroup_home"] = str(self.cgroups.wrappers)
        if self.gpu_device_path and os.geteuid() == 0:
            mine = set(here.indices) if here else set()
            hide = [
                self.gpu_device_path.format(index=i)
                for i in self.gpu_indices
                if i not in mine and os.path.exists(self.gpu_device_path.format(index=i))
            ]
            if hide:
                blocker = d / "nodev"
                fd = os.open(blocker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
                os.close(fd)
                out["hide"] = hide
                out["blocker"] = str(blocker)
        return out

    @staticmethod
    def _drop_cgroup(d: Path) -> None:
        """Kill whatever is left in the attempt's cgroup and remove it."""
        launch = _read_json(d / "launch.json") or {}
        if launch.get("cgroup"):
            from gsched.agent.cgroups import CgroupTree

            if not CgroupTree.remove(Path(str(launch["cgroup"])), wait=1.0):
                logger.warning("%s: cgroup %s still busy", d.name, launch["cgroup"])

    def _spawn(self, msg: gsched_pb2.Launch, d: Path) -> _Attempt:
        spec = msg.spec
        key = (msg.ref.job_id, msg.ref.attempt)
        uid, gid, groups, user, pw = self._identity(msg)
        if uid == 0 and not self.allow_root_jobs:
            raise _LaunchFailed("jobs of root are refused on this node (allow_root_jobs = false)")
        script = d / "script"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o700)
        try:
            os.write(fd, spec.script.encode("utf-8", "surrogateescape"))
            if os.geteuid() == 0:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
        cwd = spec.workdir or spec.submit_dir or pw.pw_dir or "/tmp"
        stdout = msg.stdout_path or os.path.join(cwd, f"slurm-{key[0]}.out")
        kill_wait = msg.kill_wait if msg.kill_wait > 0 else DEFAULT_KILL_WAIT
        launch = {
            "job_id": key[0],
            "attempt": key[1],
            "node_name": self.node_name,
            "batch": True,
            "argv": [str(script), *spec.argv],
            "env": build_environment(msg, self.node_name, self.shim_dir),
            "cwd": cwd,
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "user": user,
            "stdout": stdout,
            "stderr": msg.stderr_path or stdout,
            "stdin": spec.input,
            # SLURM appends to the output of a requeued job unless told otherwise.
            "open_mode": spec.open_mode or ("append" if key[1] > 0 else "truncate"),
            "time_limit": msg.time_limit if msg.time_limit > 0 else -1,
            "kill_wait": kill_wait,
            # Fencing: the wrapper kills the job when the agent has not proven contact
            # with the controller (by touching this file) for fence_after seconds.
            "fence_file": self.fence_file,
            "fence_after": self.fence_after,
            "fence_grace": self.fence_grace,
            "signal": parse_signal_option(spec.extra.get("signal", "")),
            **self._confinement(msg, d),
        }
        # 0600: the job's environment may hold secrets; only the wrapper reads it.
        write_json_atomic(str(d / "launch.json"), launch, mode=0o600)
        if self.use_forkserver:
            forked = self._fork_wrapper(d)
            if forked is not None:
                pid, create_time = forked
                return _Attempt(*key, d, pid=pid, create_time=create_time, kill_wait=kill_wait)
        with open(d / "wrapper.log", "ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", WRAPPER, str(d)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=_wrapper_env(),
                start_new_session=True,
                close_fds=True,
            )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:  # pragma: no cover - our unreaped child
            create_time = 0.0
        write_json_atomic(
            str(d / "wrapper.pid"), {"pid": popen.pid, "create_time": create_time}, durable=False
        )
        return _Attempt(
            *key, d, pid=popen.pid, create_time=create_time, popen=popen, kill_wait=kill_wait
        )

    def _fork_wrapper(self, d: Path) -> tuple[int, float] | None:
        """Start the wrapper through the fork server: its pid and create_time, or None.

        None means no forked wrapper runs (or will run) the attempt: start one by
        path. Where a request's outcome is unknown the attempt is claimed (see
        ``forkserver.py``) so that it runs once.
        """
        try:
            return self._forkserver.start(d)
        except _ForkUnsure as exc:
            if _claim(d):
                logger.warning("%s: fork server failed (%s); wrapper started by path", d, exc)
                return None
            if exc.claimed:
                raise _LaunchFailed(f"agent: {exc}") from exc
        # A forked wrapper has the attempt; it writes wrapper.pid right away.
        deadline = time.monotonic() + _FS_CLAIMED_WAIT_S
        while True:
            info = _read_json(d / "wrapper.pid")
            if info and info.get("pid"):
                return int(info["pid"]), float(info.get("create_time") or 0.0)
            if time.monotonic() > deadline:
                raise _LaunchFailed("agent: a forked wrapper took the attempt but did not start")
            time.sleep(0.01)

    def _record(
        self, d: Path, key: tuple[int, int], exit_code: int, sig: int, reason: str, message: str
    ) -> ExitRecord:
        """Write an exit record on the wrapper's behalf and return it."""
        now = time.time()
        write_json_atomic(
            str(d / "exit.json"),
            {
                "exit_code": exit_code,
                "signal": sig,
                "reason": reason,
                "end_time": now,
                "message": message,
            },
        )
        return ExitRecord(key[0], key[1], exit_code, sig, reason, now, message)

    # ------------------------------------------------------------ watching

    def _watch(self, att: _Attempt) -> None:
        loop = asyncio.get_running_loop()
        if self.use_pidfd:
            try:
                att.pidfd = os.pidfd_open(att.pid)
            except OSError:
                att.pidfd = -1
            # The pidfd pins the process: check it is still the one we mean.
            if att.pidfd >= 0 and att.popen is None and not _same_process(att.pid, att.create_time):
                os.close(att.pidfd)
                att.pidfd = -1
                loop.call_soon(self._ended, att.key)
                return
            if att.pidfd >= 0:
                loop.add_reader(att.pidfd, self._ended, att.key)
                return
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            polled = [a for a in self._attempts.values() if not a.placeholder and a.pidfd < 0]
            if not polled:
                return
            for att in polled:
                if not self._alive(att):
                    self._ended(att.key)
            await asyncio.sleep(self.poll_interval)

    @staticmethod
    def _alive(att: _Attempt) -> bool:
        if att.popen is not None:
            return att.popen.poll() is None
        if _same_process(att.pid, att.create_time):
            return True
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(att.pid, os.WNOHANG)  # a zombie child of an earlier Launcher here
        return False

    def _forget(self, att: _Attempt) -> None:
        self._attempts.pop(att.key, None)
        if att.pidfd >= 0:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(att.pidfd)
            os.close(att.pidfd)
            att.pidfd = -1
        if att.backstop is not None:
            att.backstop.cancel()
            att.backstop = None

    def _ended(self, key: tuple[int, int]) -> None:
        """The wrapper of ``key`` is gone: read (or write) its record and report it."""
        att = self._attempts.get(key)
        if att is None:
            return
        if att.popen is not None:
            att.popen.poll()  # reap our child
        elif att.pidfd >= 0 and hasattr(os, "P_PIDFD"):
            # A forked wrapper whose fork server died first is this process's child
            # where this process is a child subreaper.
            with contextlib.suppress(OSError):
                os.waitid(os.P_PIDFD, att.pidfd, os.WEXITED | os.WNOHANG)
        self._forget(att)
        rec = self._read_exit(att.dir, key)
        if rec is None:
            rec = self._lost(att.dir, key)
        self._drop_cgroup(att.dir)
        self._report(rec)

    @staticmethod
    def _kill_job_group(d: Path) -> None:
        """SIGKILL the script's process group, unless its number may name another group.

        A group's id cannot be reused while the group has members, so: leader
        alive and the same process (creation time) -> ours; no process with that
        pid -> a leaderless remnant or nothing -> ours or harmless; a different
        process with that pid -> the job's group is gone.
        """
        script = _read_json(d / "script.pid")
        if not script or not script.get("pgid"):
            return
        pgid = int(script["pgid"])
        with contextlib.suppress(psutil.NoSuchProcess):
            leader = psutil.Process(pgid)
            started = float(script.get("create_time", 0.0))
            if started and abs(leader.create_time() - started) > 1.0:
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, _signal.SIGKILL)

    @staticmethod
    def _kill_job_cgroup(d: Path) -> None:
        """SIGKILL every process in the attempt's cgroup, if it has one."""
        launch = _read_json(d / "launch.json") or {}
        if launch.get("cgroup"):
            from gsched.agent.cgroups import CgroupTree

            CgroupTree.kill(Path(str(launch["cgroup"])))

    def _lost(self, d: Path, key: tuple[int, int]) -> ExitRecord:
        """A wrapper died without a record: kill what it left, record ``wrapper lost``."""
        self._kill_job_group(d)
        self._kill_job_cgroup(d)
        reason = self._kill_reason(d) or "killed"
        logger.warning("job %d attempt %d: wrapper lost", *key)
        return self._record(d, key, 0, 0, reason, "wrapper lost")

    @staticmethod
    def _kill_reason(d: Path) -> str:
        try:
            return (d / "kill_reason").read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _report(self, rec: ExitRecord) -> None:
        logger.info(
            "job %d attempt %d: ended %d:%d reason=%r %s",
            rec.job_id,
            rec.attempt,
            rec.exit_code,
            rec.signal,
            rec.reason,
            rec.message,
        )
        try:
            self.on_exit(rec)
        except Exception:
            # The record stays on disk and is re-reported; a faulty callback must
            # not stop the launcher from watching the other attempts.
            logger.exception("job %d attempt %d: on_exit failed", rec.job_id, rec.attempt)

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[tuple[int, int]]:
        """Pick up where a previous agent left off; returns the attempts running now.

        Unacknowledged exits are reported (again) through ``on_exit``; live
        wrappers are re-adopted and watched; wrappers that died without a record
        are reported as ``killed`` / ``wrapper lost``. Starts the fork server (in
        the background), so that the first launch need not wait for it. Call from
        a coroutine.
        """
        loop = asyncio.get_running_loop()  # fail early: adopted wrappers are watched on it
        if self.use_forkserver:
            loop.run_in_executor(None, self._forkserver.prepare)
        for d in sorted(self.jobs_dir.iterdir()):
            key = _parse_key(d.name)
            if key is None or not d.is_dir() or key in self._attempts or key in self._launching:
                continue
            rec = self._read_exit(d, key)
            if rec is not None:
                if not (d / "acked").exists():
                    self._report(rec)
                continue
            launch = _read_json(d / "launch.json")
            if launch is None:
                self._report(
                    self._record(
                        d, key, 1, 0, "launch_failed", "agent stopped before the job started"
                    )
                )
                continue
            if launch.get("batch") is False:
                self._attempts[key] = _Attempt(*key, d, placeholder=True)
                continue
            att = self._find_wrapper(d, key)
            if att is not None:
                att.kill_wait = float(launch.get("kill_wait", DEFAULT_KILL_WAIT))
                self._attempts[key] = att
                self._watch(att)
                logger.info("job %d attempt %d: re-adopted wrapper pid %d", *key, att.pid)
                continue
            rec = self._read_exit(d, key)  # it may have finished just now
            self._report(rec if rec is not None else self._lost(d, key))
        self._maybe_prune()
        return self.running()

    @staticmethod
    def _find_wrapper(d: Path, key: tuple[int, int]) -> _Attempt | None:
        info = _read_json(d / "wrapper.pid")
        if info is not None:
            pid, ctime = int(info.get("pid", 0)), float(info.get("create_time", 0.0))
            if pid > 0 and _same_process(pid, ctime, d):
                return _Attempt(*key, d, pid=pid, create_time=ctime)
            return None
        # No pid file: the previous agent stopped between spawning the wrapper and
        # the wrapper's first write. Look for it by its command line.
        for proc in psutil.process_iter(["cmdline", "create_time"]):
            cmd = proc.info.get("cmdline") or []
            if str(d) in cmd and any(arg.endswith("wrap.py") for arg in cmd):
                return _Attempt(*key, d, pid=proc.pid, create_time=proc.info["create_time"])
        return None

    # ------------------------------------------------------------ control

    def _signal_wrapper(self, att: _Attempt, sig: int) -> bool:
        try:
            if att.popen is not None:
                att.popen.send_signal(sig)  # no-op once reaped: never a stranger's pid
            elif att.pidfd >= 0:
                _signal.pidfd_send_signal(att.pidfd, sig)
            elif _same_process(att.pid, att.create_time):
                os.kill(att.pid, sig)
            else:
                return False
        except ProcessLookupError:
            return False
        return True

    def kill(self, job_id: int, attempt: int, reason: str) -> None:
        """Stop an attempt: SIGTERM to its processes, SIGKILL after kill_wait.

        ``reason`` (cancelled, requeue, stale, node_fail, ...) ends up in the exit
        record. An attempt that is not running here (unknown, or already ended)
        is left alone and nothing is reported.
        """
        key = (job_id, attempt)
        if key in self._launching:
            self._launching[key] = reason  # applied as soon as the launch finishes
            return
        att = self._attempts.get(key)
        if att is None:
            logger.info(
                "job %d attempt %d: kill (%s) for an attempt not running here", *key, reason
            )
            return
        if att.placeholder:
            self._forget(att)
            self._report(self._record(att.dir, key, 0, 0, reason, ""))
            return
        if not (att.dir / "kill_reason").exists():  # the first reason given wins
            (att.dir / "kill_reason").write_text(reason + "\n", encoding="utf-8")
        logger.info("job %d attempt %d: kill (%s)", *key, reason)
        self._signal_wrapper(att, _signal.SIGTERM)
        if att.backstop is None:
            att.backstop = asyncio.get_running_loop().call_later(
                att.kill_wait + _BACKSTOP_S, self._backstop, key
            )

    def _backstop(self, key: tuple[int, int]) -> None:
        """The wrapper did not finish a kill in time: SIGKILL it and its job."""
        att = self._attempts.get(key)
        if att is None:
            return
        att.backstop = None
        logger.warning("job %d attempt %d: wrapper ignored the kill; SIGKILL", *key)
        self._signal_wrapper(att, _signal.SIGKILL)
        self._kill_job_group(att.dir)
        self._kill_job_cgroup(att.dir)

    def signal(self, job_id: int, attempt: int, signum: int, batch_only: bool = False) -> bool:
        """Send ``signum`` to an attempt's processes (or only its batch script).

        Signals the wrapper relays (:data:`gsched.agent.wrap.FORWARDED`) go
        through it; SIGTERM, SIGKILL, SIGSTOP and ``batch_only`` requests go
        straight to the script's process group (or the script alone), since the
        wrapper treats SIGTERM as a cancel and cannot catch the others.

        Returns:
            True if the signal was delivered.
        """
        att = self._attempts.get((job_id, attempt))
        if att is None or att.placeholder:
            return False
        if signum in FORWARDED and not batch_only:
            return self._signal_wrapper(att, signum)
        script = _read_json(att.dir / "script.pid")
        if not script or not self._alive(att):
            return False
        pid = int(script.get("pid", 0))
        try:
            # Only while the script is the live wrapper's (unreaped) child are its
            # pid and group id surely still the job's.
            if psutil.Process(pid).ppid() != att.pid:
                return False
            if batch_only:
                os.kill(pid, signum)
            else:
                os.killpg(int(script.get("pgid", pid)), signum)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            return False
        cgroup = "" if batch_only else self.cgroup_of(job_id, attempt)
        if cgroup:  # also the job's processes that left its process group
            from gsched.agent.cgroups import CgroupTree

            pgid = int(script.get("pgid", pid))
            for other in CgroupTree.procs(Path(cgroup)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(other) != pgid:  # the group had it already
                        os.kill(other, signum)
        return True

    def warn(self, job_id: int, attempt: int) -> bool:
        """Have the wrapper deliver the job's own ``--signal`` now (before a forced stop).

        Returns:
            True if the wrapper was signalled.
        """
        att = self._attempts.get((job_id, attempt))
        if att is None or att.placeholder:
            return False
        return self._signal_wrapper(att, WARN_SIGNAL)

    def ack(self, job_id: int, attempt: int) -> None:
        """The controller has the attempt's exit: stop re-reporting it."""
        d = self._dir(job_id, attempt)
        if (job_id, attempt) in self._attempts:
            logger.warning("job %d attempt %d: ack for a running attempt ignored", job_id, attempt)
            return
        if (d / "exit.json").exists():
            (d / "acked").touch()
        self._maybe_prune()

    def _maybe_prune(self) -> None:
        now = time.time()
        if now - self._last_prune < _PRUNE_EVERY_S:
            return
        self._last_prune = now
        for d in self.jobs_dir.iterdir():
            try:
                acked = (d / "acked").stat().st_mtime
            except OSError:
                continue
            if now - acked > self.keep_acked_s:
                shutil.rmtree(d, ignore_errors=True)

    def close(self) -> None:
        """Stop watching (the jobs keep running; a new Launcher re-adopts them)."""
        for att in list(self._attempts.values()):
            self._forget(att)
        self._forkserver.close()
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
