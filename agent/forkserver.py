"""gsched fork server: starts job wrappers by forking one warm interpreter.

Starting ``python -I -S wrap.py ATTEMPT_DIR`` for every job costs tens of
milliseconds of CPU in interpreter start-up and imports. The agent's launcher
instead starts this program once, as
``python -I -S forkserver.py WRAP_PY JOBS_DIR ROOM``; it imports ``WRAP_PY``
once and, for each attempt, forks a wrapper that looks and behaves like one
started by path:

* it calls ``setsid()``: it leads a session and process group of its own;
* it is the fork server's child (which reaps it) as a wrapper started by path is
  the agent's; the fork server exits with the agent (at the end of its input),
  and then its wrappers are reparented to init (or the nearest child
  subreaper), as those started by path are when the agent exits;
* its command line is rewritten, in the memory the kernel shows as
  ``/proc/PID/cmdline``, to ``python -I -S WRAP_PY ATTEMPT_DIR`` (and one
  argument of blanks where the old one was longer; ``ROOM`` is such an
  argument, which only reserves the space), so a restarted agent re-adopts it
  by pid, start time and command line, and ``gsched down`` finds it;
* stdin is /dev/null, stdout and stderr go to ``ATTEMPT_DIR/wrapper.log``, and
  it keeps no other descriptor of the fork server;
* it writes ``wrapper.pid`` and takes its signals before it is reported, then
  runs the wrapper and exits with its status.

Protocol, one JSON object a line: the fork server first writes
``{"ready": true, "pid": P}`` (or ``{"ready": false, "error": ...}`` and
exits). Then for each request ``{"dir": ATTEMPT_DIR}`` on stdin it writes one
reply on stdout: ``{"dir", "pid", "create_time"}`` once the wrapper has written
``wrapper.pid``, or ``{"dir", "error"}``, with ``"claimed": true`` where a
wrapper took the attempt but ended before running anything. It exits at the end
of stdin (the agent is gone); the wrappers stay.

Exactly once: a forked wrapper creates ``ATTEMPT_DIR/fork.claim`` exclusively
before it does anything for the attempt, and gives up if the file exists. A
launcher that gets no reply, or an error, claims the attempt itself: if it gets
the claim, no forked wrapper will ever run the attempt (so it may start one by
path); if not, a forked wrapper has it.

Standard library only; single-threaded (it forks).
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import select
import signal
import sys
import time
import traceback
from types import ModuleType
from typing import Any, NoReturn

CLAIM = "fork.claim"
_REPORT_TIMEOUT_S = 10.0  # for a forked wrapper to write wrapper.pid and report


def _send(fd: int, obj: dict[str, Any]) -> None:
    data = json.dumps(obj).encode() + b"\n"
    while data:
        data = data[os.write(fd, data) :]


def load_wrap(path: str) -> ModuleType:
    """Import ``wrap.py`` from its path (``-I`` leaves the agent's package out of reach)."""
    spec = importlib.util.spec_from_file_location("wrap", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wrap"] = module
    spec.loader.exec_module(module)
    return module


class Title:
    """This process's command line, as the kernel shows it: rewritable in place."""

    def __init__(self) -> None:
        with open("/proc/self/stat", "rb") as fh:
            data = fh.read()
        fields = data[data.rindex(b")") + 2 :].split()
        self.start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
        self.size = end - self.start
        with open("/proc/self/cmdline", "rb") as fh:
            shown = fh.read()
        if self.size <= 0 or ctypes.string_at(self.start, self.size) != shown:
            raise OSError("the command line is not where /proc/self/stat says")
        args = shown.rstrip(b"\0").split(b"\0")
        # What came before the script's path: the interpreter and its options.
        self.prefix = args[: len(args) - len(sys.argv)]

    def for_wrapper(self, wrap_path: str, attempt_dir: str) -> bytes | None:
        """``python -I -S WRAP_PY ATTEMPT_DIR`` to fill the space; None if it does not fit.

        What is left over becomes one more argument, of blanks.
        """
        text = b"\0".join([*self.prefix, os.fsencode(wrap_path), os.fsencode(attempt_dir)])
        text += b"\0"
        spare = self.size - len(text)
        if spare < 0:
            return None
        return text + b" " * (spare - 1) + b"\0" if spare else text

    def set(self, text: bytes) -> None:
        ctypes.memmove(self.start, text, self.size)


def _read_report(fd: int, timeout: float) -> bytes:
    """What a wrapper reported: everything until the pipe's end or the timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk


def _reap(signum: int, frame: Any) -> None:
    """SIGCHLD: collect the wrappers that ended."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


class Server:
    """The request loop (in the fork server) and the start of a wrapper (in its child)."""

    def __init__(self, wrap: ModuleType, wrap_path: str, jobs_dir: str, title: Title) -> None:
        self.wrap = wrap
        self.wrap_path = wrap_path
        self.jobs_dir = jobs_dir
        self.title = title

    def serve(self) -> int:
        signal.signal(signal.SIGCHLD, _reap)
        _send(1, {"ready": True, "pid": os.getpid()})
        buf = b""
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                return 0
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    try:
                        _send(1, self.start(line))
                    except BrokenPipeError:
                        return 0

    def start(self, line: bytes) -> dict[str, Any]:
        """Fork a wrapper for the attempt a request names; the reply."""
        try:
            attempt_dir = str(json.loads(line)["dir"])
        except (ValueError, KeyError, TypeError) as exc:
            return {"dir": None, "error": f"bad request: {exc!r}"}
        reply: dict[str, Any] = {"dir": attempt_dir}
        if os.path.dirname(attempt_dir) != self.jobs_dir:
            return {**reply, "error": f"not an attempt directory in {self.jobs_dir}"}
        title = self.title.for_wrapper(self.wrap_path, attempt_dir)
        if title is None:
            return {**reply, "error": "no room for the wrapper's command line"}
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(r)
            os.close(w)
            return {**reply, "error": f"fork: {exc}"}
        if pid == 0:
            os.close(r)
            self.wrapper(attempt_dir, title, w)
        os.close(w)
        try:
            data = _read_report(r, _REPORT_TIMEOUT_S)
        finally:
            os.close(r)
        try:
            report = json.loads(data)
        except ValueError:
            return {**reply, "error": f"the wrapper did not report (got {data[:200]!r})"}
        return {**reply, **report}

    def wrapper(self, attempt_dir: str, title: bytes, report: int) -> NoReturn:
        """In the child: become the attempt's wrapper; never returns."""
        code = 1
        claimed = False
        try:
            os.setsid()
            self.title.set(title)
            sys.argv = [self.wrap_path, attempt_dir]
            try:
                fd = os.open(
                    os.path.join(attempt_dir, CLAIM),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                    0o644,
                )
            except FileExistsError:
                _send(report, {"error": "the attempt was claimed already"})
                os._exit(1)
            claimed = True
            os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            log = os.open(
                os.path.join(attempt_dir, "wrapper.log"),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                0o666,
            )
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(null)
            os.close(log)
            os.closerange(3, report)
            os.closerange(report + 1, max(report + 1, os.sysconf("SC_OPEN_MAX")))
            wrapper = self.wrap.Wrapper(attempt_dir)
            wrapper.setup()  # wrapper.pid, and signals are its own before it is reported
            try:
                _send(report, wrapper.pid_info or {})
            except OSError:
                pass  # the fork server is gone; the launcher finds wrapper.pid
            os.close(report)
            report = -1
            code = wrapper.run()
        except BaseException as exc:
            if report >= 0:
                # Not started: the launcher records it (or, unclaimed, starts it by path).
                try:
                    _send(report, {"error": f"wrapper: {exc!r}", "claimed": claimed})
                except OSError:
                    pass
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


def main(argv: list[str]) -> int:
    """Entry point: ``forkserver.py WRAP_PY JOBS_DIR ROOM``."""
    if len(argv) != 4:
        print("usage: forkserver.py WRAP_PY JOBS_DIR ROOM", file=sys.stderr)
        return 2
    try:
        wrap = load_wrap(argv[1])
        wrap.warm_up()
        title = Title()
    except Exception as exc:
        traceback.print_exc()
        _send(1, {"ready": False, "error": f"{exc!r}"})
        return 1
    gc.freeze()  # forked wrappers need not scan (and copy) the server's objects
    return Server(wrap, argv[1], argv[2], title).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
