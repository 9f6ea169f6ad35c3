"""Job steps on this node: the tasks ``grun``/``srun`` asks for, with their output.

Each task runs as the job's user in its own process group, with the job step's
environment (SLURM_STEP_*, SLURM_PROCID, PyTorch's RANK/LOCAL_RANK/WORLD_SIZE, ...),
and dies with the agent (PR_SET_PDEATHSIG): a step lives only as long as the
grun that asked for it can hear from it. Output is read from pipes and sent to the
controller, which relays it to grun.

``grun --pty``: task 0 runs on a pseudo-terminal instead, as the leader of a new
session with the terminal as its controlling tty (util-linux ``setsid --ctty``, so no
Python runs between fork and exec). Keyboard input and window size changes arrive as
``StepInput`` messages and are written to the terminal's master side; everything the
task writes comes back as its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import pwd
import shutil
import signal
import struct
import termios
from collections.abc import Callable
from typing import Any

from gsched.protos import gsched_pb2 as pb

__all__ = ["StepRunner", "task_environment"]

logger = logging.getLogger(__name__)
CHUNK = 64 * 1024


def task_environment(msg: pb.StepLaunch, task: pb.StepTask, node_name: str) -> dict[str, str]:
    """The environment of one task: the step's, plus SLURM's and PyTorch's per-task names."""
    env = dict(msg.environment)
    nodes = list(msg.nodes)
    from gsched.common.hostlist import compress

    nodelist = compress(nodes)
    local_size = len(msg.tasks)  # this node's tasks of the step
    gpus = [str(g) for g in msg.gpus]
    if msg.gpus_per_task and gpus:
        start = task.local_rank * msg.gpus_per_task
        gpus = gpus[start : start + msg.gpus_per_task]
    values = {
        "SLURM_STEP_ID": str(msg.step_id),
        "SLURM_STEPID": str(msg.step_id),
        "SLURM_PROCID": str(task.rank),
        "SLURM_LOCALID": str(task.local_rank),
        "SLURM_NODEID": str(task.node_index),
        "SLURM_STEP_NODELIST": nodelist,
        "SLURM_STEP_NUM_NODES": str(len(nodes)),
        "SLURM_STEP_NUM_TASKS": str(msg.ntasks),
        "SLURM_STEP_TASKS_PER_NODE": msg.tasks_per_node,
        "SLURM_TASKS_PER_NODE": msg.tasks_per_node,
        "SLURM_NTASKS": str(msg.ntasks),
        "SLURM_NPROCS": str(msg.ntasks),
        "SLURM_NNODES": str(len(nodes)),
        "SLURM_NODELIST": nodelist,
        "SLURMD_NODENAME": node_name,
        "GSCHED_STEP_ID": str(msg.step_id),
        # PyTorch's names, so torch.distributed works from an srun-per-GPU script
        "RANK": str(task.rank),
        "LOCAL_RANK": str(task.local_rank),
        "WORLD_SIZE": str(msg.ntasks),
        "LOCAL_WORLD_SIZE": str(local_size),
        "NODE_RANK": str(task.node_index),
        "GROUP_RANK": str(task.node_index),
        "MASTER_ADDR": msg.master_addr or env.get("MASTER_ADDR", "127.0.0.1"),
        "MASTER_PORT": str(msg.master_port),
    }
    if msg.cpus_per_task:
        values["SLURM_CPUS_PER_TASK"] = str(msg.cpus_per_task)
    if msg.gpus:
        values["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        values["GPU_DEVICE_ORDINAL"] = ",".join(gpus)
        values["SLURM_STEP_GPUS"] = ",".join(gpus)
    env.update(values)
    return env


# Tasks die with the agent (PR_SET_PDEATHSIG). Set through util-linux's setpriv:
# a preexec_fn would run Python between fork and exec in a process with gRPC's
# threads, which can deadlock or crash the child.
_SETPRIV = shutil.which("setpriv")
_SETSID = shutil.which("setsid")


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    if rows > 0 and cols > 0:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


# In a confined job a task waits at this gate (as the user, before running anything)
# (a line on its stdin) until the agent has moved it into the job's cgroup, so
# none of its children is born outside; the task itself gets /dev/null as stdin.
_GATE = ("/bin/sh", "-c", 'read -r _; exec "$@" </dev/null', "gsched-task")


class _Step:
    def __init__(self) -> None:
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.pty: int | None = None  # master side of task 0's terminal (--pty)


class StepRunner:
    """Runs the tasks of job steps on this node and reports through ``send``."""

    def __init__(self, node_name: str, send: Callable[[pb.AgentMessage], None]) -> None:
        self.node_name = node_name
        self.send = send
        self.steps: dict[tuple[int, int, int], _Step] = {}  # (job, attempt, step)
        # the job attempt's cgroup directory ("" if none); set by the agent
        self.cgroup_of: Callable[[int, int], str] = lambda job_id, attempt: ""

    async def launch(self, msg: pb.StepLaunch) -> None:
        key = (msg.ref.job_id, msg.ref.attempt, msg.step_id)
        if key in self.steps:
            return
        step = self.steps[key] = _Step()
        for task in msg.tasks:
            step.tasks.append(asyncio.create_task(self._run(msg, task, step)))

    async def _run(self, msg: pb.StepLaunch, task: pb.StepTask, step: _Step) -> None:
        env = task_environment(msg, task, self.node_name)
        kw: dict[str, Any] = {}
        if os.geteuid() == 0 and msg.uid != 0:
            try:
                pw = pwd.getpwuid(msg.uid)
                kw = {"user": msg.uid, "group": msg.gid,
                      "extra_groups": os.getgrouplist(pw.pw_name, msg.gid)}
            except KeyError:
                self._exit(msg, task.rank, 1, 0, f"grun: error: unknown uid {msg.uid}")
                return
        elif os.geteuid() not in (0, msg.uid):
            self._exit(msg, task.rank, 1, 0,
                       f"grun: error: agent runs as uid {os.geteuid()}, job as {msg.uid}")
            return
        cwd = msg.cwd if msg.cwd and os.path.isdir(msg.cwd) else "/tmp"
        argv = list(msg.argv)
        cgroup = self.cgroup_of(msg.ref.job_id, msg.ref.attempt)
        stdin: int = asyncio.subprocess.DEVNULL
        use_pty = msg.pty and task.rank == 0 and _SETSID is not None
        if cgroup:
            exe = argv[0]
            found = (os.path.exists(os.path.join(cwd, exe)) if "/" in exe
                     else shutil.which(exe, path=env.get("PATH", "")) is not None)
            if not found:
                self._exit(msg, task.rank, 2, 0, f"grun: error: {self.node_name}: task "
                           f"{task.rank}: {exe}: No such file or directory")
                return
            if not use_pty:  # a terminal's input is the user's: no gate line on it
                argv = [*_GATE, *argv]
                stdin = asyncio.subprocess.PIPE
        if _SETPRIV:
            ident: list[str] = []
            if kw:
                # setpriv takes the job's identity after the fork: the agent's own
                # child (forked from a process with gRPC threads) doing setgroups/
                # setuid before exec died of SIGSEGV in about half the launches
                groups = ",".join(str(g) for g in kw["extra_groups"])
                ident = [f"--reuid={kw['user']}", f"--regid={kw['group']}",
                         f"--groups={groups}" if groups else "--clear-groups"]
                kw = {}
            argv = [_SETPRIV, *ident, "--pdeathsig", "KILL", "--", *argv]
        slave = -1
        if use_pty:
            master, slave = os.openpty()
            os.set_blocking(master, False)
            _set_winsize(slave, msg.rows, msg.cols)
            env.setdefault("TERM", "xterm")
            # a new session whose controlling terminal is stdin (the pty's slave side)
            argv = [str(_SETSID), "--ctty", "--", *argv]
            io: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            io = {"stdin": stdin, "stdout": asyncio.subprocess.PIPE,
                  "stderr": asyncio.subprocess.PIPE, "start_new_session": True}
        try:
            proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, **io, **kw)
        except OSError as exc:
            if use_pty:
                os.close(master)
                os.close(slave)
            msg_text = f"grun: error: {self.node_name}: task {task.rank}: {msg.argv[0]}: {exc.strerror}"
            self._exit(msg, task.rank, 2 if isinstance(exc, FileNotFoundError) else 1, 0, msg_text)
            return
        if use_pty and cgroup:
            # no gate on a terminal: join at once (an interactive shell starts nothing
            # before its first command)
            with contextlib.suppress(OSError), open(
                os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii"
            ) as fh:
                fh.write(str(proc.pid))
        if proc.stdin is not None:
            try:
                with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as fh:
                    fh.write(str(proc.pid))
            except OSError as exc:
                logger.warning("job %d step %d task %d: cannot join cgroup %s: %s",
                               msg.ref.job_id, msg.step_id, task.rank, cgroup, exc.strerror)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(OSError):
                proc.stdin.write(b"go\n")
                proc.stdin.close()
        step.procs[task.rank] = proc
        if use_pty:
            os.close(slave)  # the task holds it; EIO on the master once the task side closes
            step.pty = master
            try:
                await self._pump_pty(msg, task.rank, master)
            finally:
                step.pty = None
                os.close(master)
        else:
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(
                self._pump(msg, task.rank, 1, proc.stdout),
                self._pump(msg, task.rank, 2, proc.stderr),
            )
        rc = await proc.wait()
        # anything the task left behind in its process group goes with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if rc < 0:
            self._exit(msg, task.rank, 0, -rc, "")
        else:
            self._exit(msg, task.rank, rc, 0, "")

    async def _pump(self, msg: pb.StepLaunch, rank: int, stream: int,
                    reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            self.send(pb.AgentMessage(step_output=pb.StepOutput(
                ref=msg.ref, step_id=msg.step_id, rank=rank, stream=stream, data=data)))

    async def _pump_pty(self, msg: pb.StepLaunch, rank: int, master: int) -> None:
        """Relay the terminal's output until every process holding its slave side is gone."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(master, ready.set)
        try:
            while True:
                await ready.wait()
                ready.clear()
                try:
                    data = os.read(master, CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:
                        return  # the slave side is closed: the task and its children are gone
                    raise
                if not data:
                    return
                self.send(pb.AgentMessage(step_output=pb.StepOutput(
                    ref=msg.ref, step_id=msg.step_id, rank=rank, stream=1, data=data)))
        finally:
            loop.remove_reader(master)

    def input(self, msg: pb.StepInput) -> None:
        """Keyboard input or a resize for a --pty step's terminal."""
        step = self.steps.get((msg.ref.job_id, msg.ref.attempt, msg.step_id))
        if step is None or step.pty is None:
            return
        if msg.rows > 0 and msg.cols > 0:
            _set_winsize(step.pty, msg.rows, msg.cols)
            for proc in step.procs.values():  # the terminal's session hears it as SIGWINCH
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGWINCH)
        data = bytes(msg.data)
        if msg.eof:
            data += b"\x04"  # ^D: end of input for a program reading the terminal
        while data:
            try:
                n = os.write(step.pty, data)
            except BlockingIOError:
                break  # the task does not read: drop the rest, as a full terminal buffer would
            except OSError:
                return
            data = data[n:]

    def _exit(self, msg: pb.StepLaunch, rank: int, code: int, sig: int, text: str) -> None:
        self.send(pb.AgentMessage(step_exit=pb.StepTaskExit(
            ref=msg.ref, step_id=msg.step_id, rank=rank, exit_code=code, signal=sig,
            message=text)))

    def signal(self, job_id: int, attempt: int, step_id: int, sig: int) -> None:
        """Signal a step's tasks; ``sig`` 0 means stop: SIGTERM now, SIGKILL 2 s later."""
        step = self.steps.get((job_id, attempt, step_id))
        if step is None:
            return
        for proc in step.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig or signal.SIGTERM)
        if sig == 0:
            asyncio.get_running_loop().call_later(2.0, self._kill_now, step)

    @staticmethod
    def _kill_now(step: _Step) -> None:
        for proc in step.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def kill_job(self, job_id: int, attempt: int) -> None:
        """The job's attempt ended here: its leftover steps go too."""
        for (j, a, s) in list(self.steps):
            if j == job_id and a == attempt:
                self.signal(j, a, s, 0)

    def reap(self) -> None:
        """Forget finished steps."""
        for key, step in list(self.steps.items()):
            if step.tasks and all(t.done() for t in step.tasks):
                del self.steps[key]
