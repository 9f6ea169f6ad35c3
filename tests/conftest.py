"""Fixtures shared by unit and end-to-end tests: a private munged.

munged runs with its own key, socket, pid, log and seed files in a temp dir (as
root: it checks its key file's owner) and is stopped by PID afterwards. Tests that
need it skip with a clear message only when munged is not installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@dataclasses.dataclass
class Munged:
    dir: Path
    socket: str
    proc_pid: int


@contextlib.contextmanager
def munged() -> Iterator[Munged]:
    """A private munged (own key, socket, pid, log and seed files) for one test."""
    exe = shutil.which("munged") or ("/usr/sbin/munged" if Path("/usr/sbin/munged").exists()
                                     else None)
    if exe is None:
        pytest.skip("munged is not installed (apt-get install munge; .ci/run does)")
    if os.getuid() != 0:
        pytest.skip("munged needs root here (it checks its key file's owner)")
    d = Path(tempfile.mkdtemp(prefix="gsched-munge-"))
    d.chmod(0o755)  # other users must reach the socket
    key = d / "munge.key"
    subprocess.run(["dd", "if=/dev/urandom", f"of={key}", "bs=1024", "count=1"], check=True,
                   capture_output=True)
    key.chmod(0o600)
    sock = d / "munge.socket"
    pidfile = d / "munged.pid"
    p = subprocess.run([exe, "--force", f"--key-file={key}", f"--socket={sock}",
                        f"--pid-file={pidfile}", f"--log-file={d / 'munged.log'}",
                        f"--seed-file={d / 'munged.seed'}"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while not (sock.exists() and pidfile.exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = int(pidfile.read_text().split()[0])
    try:
        yield Munged(d, str(sock), pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def munge_daemon() -> Iterator[Munged]:
    """One private munged for a test module."""
    with munged() as m:
        yield m


@pytest.fixture
def start_munged() -> Callable[[], Any]:
    """``with start_munged() as m:`` a private munged (m.socket, m.proc_pid)."""
    return munged
