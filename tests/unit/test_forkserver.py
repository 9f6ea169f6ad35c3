"""The fork server (agent/forkserver.py) driven directly: protocol, claims, wrappers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from gsched.agent import launcher

pytestmark = pytest.mark.timeout(60)


class Server:
    def __init__(self, jobs: Path, room: int = 64) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                launcher.FORKSERVER,
                launcher.WRAPPER,
                str(jobs),
                " " * room,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd="/",
        )
        self.ready = self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        reply = json.loads(self.proc.stdout.readline())
        assert isinstance(reply, dict)
        return reply

    def send(self, line: bytes) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()
        return self.read()

    def ask(self, d: Path) -> dict[str, Any]:
        return self.send(json.dumps({"dir": str(d)}).encode())

    def close(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        code = self.proc.wait(10)
        self.proc.stdout.close()
        return code


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "jobs"
    path.mkdir()
    yield path
    for pidfile in path.glob("*/wrapper.pid"):  # a failed test leaves no job running
        try:
            proc = psutil.Process(json.loads(pidfile.read_text())["pid"])
            if str(pidfile.parent) in proc.cmdline():
                proc.kill()
        except (OSError, ValueError, KeyError, psutil.Error):
            continue


@pytest.fixture
def server(jobs: Path) -> Iterator[Server]:
    srv = Server(jobs)
    yield srv
    if srv.proc.poll() is None:
        srv.close()


def attempt(jobs: Path, script: str, name: str = "1.0") -> Path:
    d = jobs / name
    d.mkdir()
    (d / "script").write_text("#!/bin/sh\n" + script)
    (d / "script").chmod(0o700)
    launch = {
        "argv": [str(d / "script")],
        "env": {"PATH": "/usr/bin:/bin"},
        "cwd": str(jobs.parent),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "stdout": str(jobs.parent / f"{name}.out"),
        "time_limit": -1,
        "kill_wait": 1,
        "job_id": 1,
        "node_name": "node1",
    }
    (d / "launch.json").write_text(json.dumps(launch))
    return d


def until(pred: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def exit_record(d: Path) -> dict[str, Any]:
    until(lambda: (d / "exit.json").exists(), what=f"{d.name}/exit.json")
    data = json.loads((d / "exit.json").read_text())
    assert isinstance(data, dict)
    return data


def test_starts_a_wrapper_and_reports_it(jobs: Path, server: Server) -> None:
    assert server.ready == {"ready": True, "pid": server.proc.pid}
    d = attempt(jobs, "echo hello; exit 3")
    reply = server.ask(d)
    assert reply["dir"] == str(d) and "error" not in reply, reply
    info = json.loads((d / "wrapper.pid").read_text())
    assert (reply["pid"], reply["create_time"]) == (info["pid"], info["create_time"])
    rec = exit_record(d)
    assert (rec["exit_code"], rec["signal"], rec["reason"]) == (3, 0, "")
    assert (jobs.parent / "1.0.out").read_text() == "hello\n"


def test_wrapper_keeps_running_when_the_server_exits(jobs: Path, server: Server) -> None:
    release = jobs.parent / "release"
    d = attempt(jobs, f"while [ ! -e {release} ]; do sleep 0.02; done; exit 4")
    pid = server.ask(d)["pid"]
    assert server.close() == 0  # the end of its input: the agent is gone
    wrapper = psutil.Process(pid)
    assert wrapper.status() != psutil.STATUS_ZOMBIE
    assert wrapper.ppid() != server.proc.pid
    release.touch()
    assert exit_record(d)["exit_code"] == 4


def test_an_attempt_claimed_already_is_not_started(jobs: Path, server: Server) -> None:
    ran = jobs.parent / "ran"
    d = attempt(jobs, f"touch {ran}")
    (d / "fork.claim").touch()  # the launcher gave up on the fork server and took it
    reply = server.ask(d)
    assert "claimed already" in reply["error"] and not reply.get("claimed")
    time.sleep(0.3)
    assert not (d / "wrapper.pid").exists() and not ran.exists()


def test_a_wrapper_that_fails_after_its_claim_says_so(jobs: Path, server: Server) -> None:
    ran = jobs.parent / "ran"
    d = attempt(jobs, f"touch {ran}")
    (d / "wrapper.log").mkdir()  # cannot be opened for writing
    reply = server.ask(d)
    assert reply["claimed"] is True and "wrapper" in reply["error"], reply
    time.sleep(0.3)
    assert not ran.exists() and not (d / "exit.json").exists()


def test_bad_requests_are_answered_and_the_server_goes_on(jobs: Path, server: Server) -> None:
    assert "bad request" in server.send(b"not json")["error"]
    elsewhere = jobs.parent / "1.0"
    elsewhere.mkdir()
    assert "not an attempt directory" in server.ask(elsewhere)["error"]
    long = attempt(jobs, "true", "1." + "0" * 200)  # no room for its command line
    assert "no room" in server.ask(long)["error"]
    assert not (long / "fork.claim").exists()
    d = attempt(jobs, "exit 0")
    assert server.ask(d)["pid"] > 0
    assert exit_record(d)["exit_code"] == 0


def test_room_for_command_lines_is_checked_at_start(jobs: Path) -> None:
    srv = Server(jobs, room=0)
    try:
        assert srv.ready["ready"] is True
        d = attempt(jobs, "exit 0", "12345678901234567890.1")
        assert srv.ask(d)["pid"] > 0  # the fork server's own path leaves room enough
        assert exit_record(d)["exit_code"] == 0
    finally:
        srv.close()
