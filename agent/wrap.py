"""gsched job wrapper: runs one attempt of a batch script and records how it ended.

The agent's launcher starts it as ``python -I -S /path/to/wrap.py ATTEMPT_DIR``,
in a session of its own, so it outlives the agent; a restarted agent finds it
again through ``wrapper.pid``. It is run by file path and imports only the
standard library, so it starts fast and cannot be broken by the agent's package.
Usually it is not started by path but forked, with this module already imported,
by the launcher's fork server (``forkserver.py``), which makes it look the same
(own session, command line, ``wrapper.pid``) and saves the interpreter's
start-up for every job.

Files in ATTEMPT_DIR:

* ``launch.json`` (read): ``argv`` (``argv[0]`` the script), ``env``, ``cwd``,
  ``uid``, ``gid``, ``groups``, ``user``, ``stdout``, ``stderr``, ``stdin``,
  ``open_mode`` (``truncate``/``append``), ``time_limit`` (seconds, <= 0 none),
  ``kill_wait`` (seconds), ``job_id``, ``node_name``.
* ``launch.json`` may also name ``cgroup`` (the attempt's cgroup v2 directory,
  created by the agent with its limits), ``cgroup_home`` (where the wrapper
  itself lives) and ``hide`` (device nodes the job must not open) with
  ``blocker`` (an empty root-owned mode-000 file bind-mounted over each of them
  in a mount namespace of the wrapper's own, which the script inherits).
* ``wrapper.pid`` (written first): ``{"pid": P, "create_time": T}``.
* ``script.pid`` (written once the script runs): ``{"pid": P, "pgid": P,
  "create_time": T}``.
* ``kill_reason`` (read): written by the launcher before it sends SIGTERM.
* ``exit.json`` (written last, atomically): ``{"exit_code", "signal", "reason",
  "end_time", "message", "start_time"}``; exit 3 is ``3, 0``, death by signal 9
  is ``0, 9``, as SLURM records them.

Behaviour, as slurmstepd's:

* When started as root for another uid it keeps its own root identity (so the
  user can neither kill it nor forge its records) but takes the user's ids
  while it enters the working directory and opens the output files, so they are
  created as the user; the script itself runs with the user's uid, gid and
  groups. A working directory that cannot be entered is replaced by /tmp with a
  note on the job's stderr; an output file that cannot be opened is a launch
  failure (``reason: launch_failed``).
* The script runs in a new session (its own process group). SIGHUP, SIGINT,
  SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGWINCH, SIGURG, SIGTSTP,
  SIGTTIN and SIGTTOU sent to the wrapper are passed on to that group.
* SIGTERM to the wrapper cancels: SIGCONT and SIGTERM to the group, SIGKILL to
  the group and every descendant after ``kill_wait``; the reason is the content
  of ``kill_reason`` (``killed`` without one). At the time limit it does the same
  with reason ``timeout``.
* With a cgroup, the script is started inside it (the wrapper joins it for the
  fork, then moves to ``cgroup_home``); signals and the final SIGKILL also go to
  every process in it (``cgroup.kill``), so nothing escapes by double-forking
  or leaving the session; an ``oom_kill`` in its ``memory.events`` records the
  reason ``oom`` (OUT_OF_MEMORY), unless the job was cancelled or timed out.
* The script's own exit status is what is recorded; whatever it leaves behind
  (its process group, and, as the wrapper is a child subreaper, every orphaned
  descendant even after ``setsid``) is killed with SIGKILL before ``exit.json``
  is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

FORWARDED = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
    signal.SIGCONT,
    signal.SIGWINCH,
    signal.SIGURG,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)
# From the agent: deliver the job's --signal now, ahead of a stop the controller
# ordered (a GPU fault that allows a checkpoint, a preemption), as before a time limit.
WARN_SIGNAL = signal.SIGRTMIN + 3
_PR_SET_CHILD_SUBREAPER = 36
_CANCEL_NOTES = {
    "timeout": " DUE TO TIME LIMIT",
    "requeue": " DUE TO JOB REQUEUE",
    "preempted": " DUE TO PREEMPTION",
    "node_fail": " DUE TO NODE FAILURE",
    "fenced": " DUE TO LOST CONTACT WITH THE CONTROLLER",
}
_LEFTOVER_WAIT = 10.0  # seconds to wait for SIGKILLed leftovers before giving up

_pending: list[int] = []
_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def _on_signal(signum: int, frame: Any) -> None:
    _pending.append(signum)


class LaunchError(Exception):
    """The script could not be started; the message says why."""


def write_json_atomic(
    path: str, data: dict[str, Any], mode: int = 0o644, *, durable: bool = True
) -> None:
    """Write JSON so readers see the old file or the whole new one, even after a crash.

    ``durable=False`` skips the fsyncs: readers still never see a partial file,
    but a machine crash may lose it. For files that describe live processes
    (``wrapper.pid``, ``script.pid``), which mean nothing after a reboot.
    """
    directory = os.path.dirname(path) or "."
    # The pid in the name keeps two writers (launcher and wrapper) apart.
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, json.dumps(data, sort_keys=True).encode() + b"\n")
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat fields after the command name (field 3, ``state``, is [0])."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read()
    return data[data.rindex(b")") + 2 :].decode().split()


def create_time(pid: int | str = "self") -> float:
    """A process's start time in epoch seconds, computed as psutil does."""
    ticks = int(_stat_fields(pid)[19])
    # Read every time, as psutil does: the boot time moves when the clock is set.
    with open("/proc/stat", "rb") as fh:
        btime = next(float(line.split()[1]) for line in fh if line.startswith(b"btime"))
    return ticks / os.sysconf("SC_CLK_TCK") + btime


def children(pid: int) -> list[int] | None:
    """The children of ``pid`` (of all its threads); None if the kernel cannot say.

    Reads ``/proc/PID/task/TID/children`` (CONFIG_PROC_CHILDREN); a process that
    is gone has no children.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    except OSError:
        return None
    found: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                found.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread (or the process) has just exited
            return None  # no children files in this kernel
        except OSError:
            return None
    return found


_prctl: Any = None


def warm_up() -> None:
    """Load, once, what each wrapper would otherwise load (in a process that forks them)."""
    global _prctl
    if _prctl is None:
        import ctypes

        _prctl = ctypes.CDLL(None).prctl


def _set_subreaper() -> bool:
    """Make orphaned descendants our children (so none escapes the final kill)."""
    try:
        warm_up()
        return int(_prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def _as_user(switch: bool, uid: int, gid: int, groups: list[int]) -> Iterator[None]:
    """Take the user's effective ids for the block (root keeps its real/saved ids)."""
    if not switch:
        yield
        return
    saved = os.getgroups()
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved)


def _cg_write(cgroup: str, name: str, text: str) -> None:
    with open(os.path.join(cgroup, name), "w", encoding="ascii") as fh:
        fh.write(text)


def _cg_procs(cgroup: str) -> list[int]:
    try:
        with open(os.path.join(cgroup, "cgroup.procs"), encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _cg_oom_kills(cgroup: str) -> int:
    try:
        with open(os.path.join(cgroup, "memory.events"), encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
    except OSError:
        pass
    return 0


def hide_devices(paths: list[str], blocker: str) -> None:
    """Enter a mount namespace of our own where ``paths`` are ``blocker`` (mode 000).

    Raises:
        OSError: the namespace or a mount could not be made.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    # Our mounts must not propagate back to the host's namespace.
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --make-rprivate /: {os.strerror(err)}")
    for path in paths:
        if libc.mount(blocker.encode(), path.encode(), None, _MS_BIND, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"bind mount over {path}: {os.strerror(err)}")


class Wrapper:
    """One attempt: spawn, supervise, clean up, record."""

    def __init__(self, attempt_dir: str) -> None:
        self.dir = os.path.abspath(attempt_dir)
        self.pid_info: dict[str, Any] | None = None  # what wrapper.pid says, once set up
        self.launch: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid = 0
        self.status: int | None = None
        self.reason = ""
        self.message = ""
        self.err_fd = -1
        self.cancelling = False
        self.kill_at: float | None = None
        self.start_time = time.time()
        self.wake_r = -1
        self.subreaper = False
        self.cgroup = ""

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Write ``wrapper.pid`` (how the agent finds this wrapper again), take the signals."""
        info = {"pid": os.getpid(), "create_time": create_time()}
        write_json_atomic(self.path("wrapper.pid"), info, durable=False)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in (*FORWARDED, signal.SIGTERM, signal.SIGCHLD, WARN_SIGNAL):
            signal.signal(sig, _on_signal)
        self.subreaper = _set_subreaper()
        self.pid_info = info

    def spawn(self) -> None:
        """Start the script as the user; raises LaunchError with the reason."""
        try:
            with open(self.path("launch.json"), encoding="utf-8") as fh:
                self.launch = json.load(fh)
            argv = [str(a) for a in self.launch["argv"]]
            env = {str(k): str(v) for k, v in self.launch.get("env", {}).items()}
            uid = int(self.launch["uid"])
            gid = int(self.launch["gid"])
            groups = [int(g) for g in self.launch.get("groups") or [gid]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LaunchError(f"bad launch.json: {exc}") from exc
        switch = os.geteuid() == 0 and uid != 0
        if os.geteuid() != 0 and uid != os.getuid():
            raise LaunchError(f"wrapper runs as uid {os.getuid()} and cannot run jobs of uid {uid}")
        cwd = str(self.launch.get("cwd") or "/")
        note = ""
        umask: int | None = None
        with contextlib.suppress(ValueError):
            umask = int(env.get("SLURM_UMASK", ""), 8)
        old_umask = os.umask(umask) if umask is not None else None
        with _as_user(switch, uid, gid, groups):
            try:
                os.chdir(cwd)
            except OSError as exc:
                note = f"gsched: error: couldn't chdir to `{cwd}': {exc.strerror}: going to /tmp instead\n"
                cwd = "/tmp"
            try:
                fds = self.open_files(cwd)
            finally:
                os.chdir("/")
                if old_umask is not None:
                    os.umask(old_umask)
        out_fd, self.err_fd, in_fd = fds
        if note:
            self.note(note)
        self.confine()
        extra: dict[str, Any] = {}
        if switch:
            extra = {"user": uid, "group": gid, "extra_groups": groups}
        if umask is not None:
            extra["umask"] = umask
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=in_fd,
                stdout=out_fd,
                stderr=self.err_fd,
                cwd=cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                **extra,
            )
        except OSError as exc:
            text = f"execve(): {argv[0]}: {exc.strerror or exc}"
            self.note(f"gsched: error: {text}\n")
            raise LaunchError(text) from exc
        finally:
            for fd in {out_fd, in_fd}:
                if fd != self.err_fd:
                    os.close(fd)
            self.leave_cgroup()
        self.pgid = self.proc.pid
        try:
            started = create_time(self.pgid)
        except (OSError, ValueError):
            started = 0.0  # not expected: an unreaped child keeps its /proc entry
        write_json_atomic(
            self.path("script.pid"),
            {"pid": self.proc.pid, "pgid": self.pgid, "create_time": started},
            durable=False,
        )

    def confine(self) -> None:
        """Hide other jobs' devices and join the attempt's cgroup (before the fork)."""
        hide = [str(p) for p in self.launch.get("hide") or []]
        if hide:
            try:
                hide_devices(hide, str(self.launch.get("blocker") or ""))
            except OSError as exc:
                raise LaunchError(f"could not hide other jobs' GPUs: {exc.strerror}") from exc
        cgroup = str(self.launch.get("cgroup") or "")
        if cgroup:
            try:
                _cg_write(cgroup, "cgroup.procs", str(os.getpid()))
            except OSError as exc:
                raise LaunchError(f"could not join cgroup {cgroup}: {exc.strerror}") from exc
            self.cgroup = cgroup

    def leave_cgroup(self) -> None:
        """Move the wrapper out of the job's cgroup, to ``cgroup_home``."""
        home = str(self.launch.get("cgroup_home") or "")
        if self.cgroup and home:
            try:
                _cg_write(home, "cgroup.procs", str(os.getpid()))
            except OSError as exc:
                # Still inside: cgroup.kill would take the wrapper too, so use pids.
                self.note(f"gsched: warning: wrapper stays in the job's cgroup: {exc.strerror}\n")
                self.launch["cgroup_home"] = ""

    def cgroup_pids(self) -> list[int]:
        me = os.getpid()
        return [p for p in _cg_procs(self.cgroup) if p != me] if self.cgroup else []

    def open_files(self, cwd: str) -> tuple[int, int, int]:
        """Open stdout, stderr and stdin as the current effective user."""
        mode = os.O_APPEND if self.launch.get("open_mode") == "append" else os.O_TRUNC
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | mode
        stdout = os.path.join(cwd, str(self.launch.get("stdout") or "/dev/null"))
        stderr = os.path.join(cwd, str(self.launch.get("stderr") or stdout))
        stdin = os.path.join(cwd, str(self.launch.get("stdin") or "/dev/null"))
        opened: list[int] = []
        try:
            for what, path in (("stdout", stdout), ("stderr", stderr)):
                if what == "stderr" and stderr == stdout:
                    opened.append(opened[0])
                    continue
                try:
                    opened.append(os.open(path, flags, 0o644))
                except OSError as exc:
                    raise LaunchError(f"could not open {what} file {path}: {exc.strerror}") from exc
            try:
                opened.append(os.open(stdin, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as exc:
                raise LaunchError(f"could not open stdin file {stdin}: {exc.strerror}") from exc
        except LaunchError:
            for fd in set(opened):
                os.close(fd)
            raise
        return opened[0], opened[1], opened[2]

    def note(self, text: str) -> None:
        """Write a line to the job's stderr file (best effort)."""
        if self.err_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.err_fd, text.encode(errors="replace"))

    # ------------------------------------------------------------ supervise

    def fenced(self) -> bool:
        """Whether the agent has lost contact with the controller for too long.

        The agent sets the fence file's mtime to the send time of the last heartbeat
        the controller acknowledged; the controller declares the node down only
        ``node_timeout`` after it last heard from it, which is later than this fires.
        """
        left = self.fence_left()
        return left is not None and left < 0

    def fence_left(self) -> float | None:
        """Seconds until :meth:`fenced` becomes true (negative: it is); None: no fencing.

        The agent only ever moves the fence file's mtime forward, so it cannot
        become true any sooner.
        """
        after = float(self.launch.get("fence_after") or 0)
        path = self.launch.get("fence_file")
        if after <= 0 or not path:
            return None
        try:
            last = os.stat(path).st_mtime
        except OSError:
            last = self.start_time
        # Not max(last, start_time): a wrapper started from an order that waited while
        # the agent was cut off must not get a fresh fence_after of its own.
        return last + after - time.time()

    def supervise(self) -> None:
        limit = float(self.launch.get("time_limit") or 0)
        deadline = time.monotonic() + limit if limit > 0 else None
        fencing = float(self.launch.get("fence_after") or 0) > 0
        warn = self.launch.get("signal") or None
        warn_at = None
        if warn and deadline is not None:
            warn_at = max(time.monotonic(), deadline - float(warn.get("before", 60)))
        while self.status is None:
            self.handle_signals()
            self.reap()
            if self.status is not None:
                break
            now = time.monotonic()
            if deadline is not None and not self.cancelling and now >= deadline:
                self.cancel("timeout")
            if warn_at is not None and now >= warn_at and not self.cancelling:
                warn_at = None
                self.send_warning(int(warn["signal"]), bool(warn.get("batch_only")))
            fence_left = self.fence_left() if fencing and not self.cancelling else None
            if fence_left is not None and fence_left < 0:
                fence_left = None
                self.cancel("fenced")
                grace = float(self.launch.get("fence_grace") or 0)
                self.kill_at = min(self.kill_at or now + grace, now + grace)
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_all(signal.SIGKILL)
                self.kill_at = None
            waits = [5.0]
            if fence_left is not None:
                # Not before fencing may fire (rather than polling the fence file).
                waits.append(max(fence_left, 0.01))
            if deadline is not None and not self.cancelling:
                waits.append(deadline - now)
            if warn_at is not None:
                waits.append(warn_at - now)
            if self.kill_at is not None:
                waits.append(self.kill_at - now)
            self.wait(max(0.0, min(waits)))

    def wait(self, timeout: float) -> None:
        """Sleep until a signal arrives (SIGCHLD included) or the timeout passes."""
        select.select([self.wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 4096):
                pass

    def handle_signals(self) -> None:
        while _pending:
            sig = _pending.pop(0)
            if sig == signal.SIGCHLD:
                continue
            if sig == WARN_SIGNAL:
                warn = self.launch.get("signal")
                if warn and self.status is None and not self.cancelling:
                    self.send_warning(int(warn["signal"]), bool(warn.get("batch_only")))
                continue
            if sig == signal.SIGTERM:
                if not self.cancelling:
                    self.cancel(self.read_kill_reason())
            elif self.status is None:
                self.signal_group(sig)

    def read_kill_reason(self) -> str:
        try:
            with open(self.path("kill_reason"), encoding="utf-8") as fh:
                return fh.read().strip() or "killed"
        except OSError:
            return "killed"

    def cancel(self, reason: str) -> None:
        """SIGCONT+SIGTERM to the group now, SIGKILL to everything after kill_wait."""
        self.cancelling = True
        self.reason = reason
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.note(
            f"gsched: error: *** JOB {self.launch.get('job_id', '?')} ON "
            f"{self.launch.get('node_name', '?')} CANCELLED AT {stamp}"
            f"{_CANCEL_NOTES.get(reason, '')} ***\n"
        )
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGTERM)
        self.kill_at = time.monotonic() + max(0.0, float(self.launch.get("kill_wait", 30)))

    def group_is_ours(self) -> bool:
        """Whether ``pgid`` surely still names the job's group.

        While the script (the group leader) is unreaped its pid cannot be reused.
        Once it is reaped the number could in theory name a new group; a
        subreaper then finds every leftover among its descendants instead.
        """
        return bool(self.pgid) and (self.status is None or not self.subreaper)

    def send_warning(self, sig: int, batch_only: bool) -> None:
        """--signal: warn the job before its time limit so it can checkpoint."""
        if batch_only:
            if self.proc is not None and self.status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, sig)
        else:
            # SLURM sends it to the job's steps, not the batch shell: every process
            # below the script (grun forwards it to the step's tasks on every node)
            script = self.proc.pid if self.proc is not None else -1
            for pid in self.descendants():
                if pid != script:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)

    def signal_group(self, sig: int) -> None:
        grouped = self.group_is_ours()
        if grouped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)
        for pid in self.cgroup_pids():  # those that left the group, and their children
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if not grouped or os.getpgid(pid) != self.pgid:  # not signalled twice
                    os.kill(pid, sig)

    def reap(self) -> bool:
        """Collect every exited child; True if any child remains."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if self.proc is not None and pid == self.proc.pid and self.status is None:
                self.status = status
                self.proc.returncode = os.waitstatus_to_exitcode(status)

    def descendants(self) -> list[int]:
        """Every live process below the wrapper.

        Walks down from the wrapper through the kernel's lists of children, so
        its cost grows with the number of descendants (none, once a job that
        left nothing behind is reaped), not with the number of processes on
        the machine; without those lists, from every process's parent in /proc.
        """
        found: list[int] = []
        seen = {os.getpid()}
        todo = [os.getpid()]
        while todo:
            below = children(todo.pop())
            if below is None:
                return self.descendants_from_proc()
            below = [pid for pid in below if pid not in seen]  # a pid reused meanwhile
            seen.update(below)
            found.extend(below)
            todo.extend(below)
        return found

    def descendants_from_proc(self) -> list[int]:
        """Every live process below the wrapper, from the parent of each in /proc."""
        kids: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                fields = _stat_fields(name)
            except (OSError, ValueError):
                continue
            kids.setdefault(int(fields[1]), []).append(int(name))
        found: list[int] = []
        todo = [os.getpid()]
        while todo:
            for child in kids.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and self.cgroup and self.launch.get("cgroup_home"):
            with contextlib.suppress(OSError):
                _cg_write(self.cgroup, "cgroup.kill", "1")
        self.signal_group(sig)
        for pid in self.descendants():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def group_alive(self) -> bool:
        if not self.group_is_ours():
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def clean_up(self) -> None:
        """SIGKILL whatever the script left behind and wait until it is gone."""
        give_up = time.monotonic() + _LEFTOVER_WAIT
        while True:
            self.kill_all(signal.SIGKILL)
            children = self.reap()
            if not children and not self.group_alive() and not self.cgroup_pids():
                return
            if time.monotonic() > give_up:
                left = self.descendants()
                self.message = (self.message + " " if self.message else "") + (
                    f"processes survived SIGKILL: {left or 'group ' + str(self.pgid)}"
                )
                return
            time.sleep(0.02)

    def check_oom(self) -> None:
        """An OOM kill in the job's cgroup ends it OUT_OF_MEMORY (unless cancelled)."""
        if not self.cgroup or self.reason:
            return
        kills = _cg_oom_kills(self.cgroup)
        if kills:
            self.reason = "oom"
            self.message = (self.message + " " if self.message else "") + (
                f"{kills} process(es) killed by the OOM killer (memory limit)"
            )
            self.note(
                f"gsched: error: Detected {kills} oom-kill event(s) in StepId="
                f"{self.launch.get('job_id', '?')}.batch. Some of your processes may have "
                "been killed by the cgroup out-of-memory handler.\n"
            )

    # ------------------------------------------------------------ record

    def record(self, exit_code: int, sig: int) -> None:
        write_json_atomic(
            self.path("exit.json"),
            {
                "exit_code": exit_code,
                "signal": sig,
                "reason": self.reason,
                "end_time": time.time(),
                "message": self.message,
                "start_time": self.start_time,
            },
        )

    def run(self) -> int:
        if self.pid_info is None:
            self.setup()
        try:
            self.spawn()
        except LaunchError as exc:
            self.reason = "launch_failed"
            self.message = str(exc)
            self.record(1, 0)
            return 0
        try:
            self.supervise()
        except BaseException as exc:
            # The record must be written whatever broke here, or the job would be lost.
            self.reason = self.reason or "killed"
            self.message = f"wrapper error: {exc!r}"
            self.clean_up()
            self.record(0, signal.SIGKILL)
            raise
        self.clean_up()
        self.check_oom()
        if self.cgroup:
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)  # empty now; the agent removes it otherwise
        status = self.status if self.status is not None else 0
        if os.WIFSIGNALED(status):
            self.record(0, os.WTERMSIG(status))
        else:
            self.record(os.WEXITSTATUS(status), 0)
        return 0


def main(argv: list[str]) -> int:
    """Entry point: ``wrap.py ATTEMPT_DIR``."""
    if len(argv) != 2:
        print("usage: wrap.py ATTEMPT_DIR", file=sys.stderr)
        return 2
    return Wrapper(argv[1]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
