"""The launcher and the job wrapper, with real processes and real signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from gsched.agent import launcher as launcher_mod
from gsched.agent.launcher import ExitRecord, Launcher, build_environment
from gsched.protos import gsched_pb2 as pb

pytestmark = pytest.mark.timeout(60)


_state_dirs: list[Path] = []


@pytest.fixture(autouse=True, params=["forkserver", "path"])
def start_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with wrappers forked by the fork server, and started by path."""
    monkeypatch.setattr(Launcher, "use_forkserver", request.param == "forkserver")
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_leftover_jobs() -> Iterator[None]:
    """A failing test must not leave its wrappers and jobs running for minutes."""
    yield
    for state in _state_dirs:
        for pidfile in state.glob("jobs/*/wrapper.pid"):
            try:
                proc = psutil.Process(json.loads(pidfile.read_text())["pid"])
                if str(pidfile.parent) not in proc.cmdline():
                    continue
                proc.kill()
            except (OSError, ValueError, KeyError, psutil.Error):
                continue
            Launcher._kill_job_group(pidfile.parent)
    _state_dirs.clear()


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(pred: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``pred`` until it is truthy (generous timeout: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def make_launch(
    tmp: Path,
    script: str,
    job_id: int = 1,
    attempt: int = 0,
    *,
    out: str | None = None,
    err: str = "",
    open_mode: str = "",
    time_limit: int = -1,
    kill_wait: int = 1,
    batch: bool = True,
    uid: int | None = None,
    workdir: str | None = None,
) -> pb.Launch:
    uid = os.getuid() if uid is None else uid
    pw = pwd.getpwuid(uid)
    return pb.Launch(
        ref=pb.AttemptRef(job_id=job_id, attempt=attempt),
        spec=pb.JobSpec(
            name="test",
            script="#!/bin/sh\n" + script,
            workdir=str(tmp) if workdir is None else workdir,
            submit_dir=str(tmp),
            submit_host="login1",
            environment={"PATH": "/usr/bin:/bin", "HOME": pw.pw_dir},
            export_mode="ALL",
            open_mode=open_mode,
        ),
        user=pw.pw_name,
        uid=uid,
        gid=pw.pw_gid,
        nodes=[pb.NodeGpus(node="node1", indices=[], cpus=1)],
        node_index=0,
        partition="main",
        time_limit=time_limit,
        stdout_path=out if out is not None else str(tmp / f"job{job_id}.out"),
        stderr_path=err,
        cluster_name="test",
        ntasks=1,
        kill_wait=kill_wait,
        batch=batch,
    )


class Harness:
    def __init__(self, tmp: Path, state: Path | None = None) -> None:
        self.tmp = tmp
        self.state = state or tmp / "state"
        _state_dirs.append(self.state)
        self.exits: list[ExitRecord] = []
        self.launcher = Launcher(self.state, "node1", None, self.exits.append)

    async def finish(self, msg: pb.Launch, timeout: float = 20) -> ExitRecord:
        assert await self.launcher.launch(msg)
        return await self.exit_of(msg.ref.job_id, msg.ref.attempt, timeout)

    async def exit_of(self, job_id: int, attempt: int = 0, timeout: float = 20) -> ExitRecord:
        def found() -> ExitRecord | None:
            for rec in self.exits:
                if (rec.job_id, rec.attempt) == (job_id, attempt):
                    return rec
            return None

        return await until(found, timeout, f"exit of job {job_id}.{attempt}")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- exit status


def test_exit_code_and_output(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        rec = await h.finish(make_launch(tmp_path, "echo out; echo err >&2; exit 3"))
        assert (rec.exit_code, rec.signal, rec.reason, rec.message) == (3, 0, "", "")
        assert rec.end_time > 0
        assert (tmp_path / "job1.out").read_text() == "out\nerr\n"
        assert h.launcher.running() == []

    run(main())


def test_killed_by_signal_recorded_as_slurm_does(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        rec = await h.finish(make_launch(tmp_path, "kill -9 $$"))
        assert (rec.exit_code, rec.signal) == (0, 9)

    run(main())


def test_separate_stderr_and_append_mode(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        out, err = str(tmp_path / "o.txt"), str(tmp_path / "e.txt")
        Path(out).write_text("old\n")
        await h.finish(make_launch(tmp_path, "echo one; echo bad >&2", 1, out=out, err=err))
        assert Path(out).read_text() == "one\n"  # truncated
        assert Path(err).read_text() == "bad\n"
        await h.finish(make_launch(tmp_path, "echo two", 2, out=out, open_mode="append"))
        assert Path(out).read_text() == "one\ntwo\n"
        # A requeued attempt appends by default, as SLURM does.
        await h.finish(make_launch(tmp_path, "echo three", 2, 1, out=out))
        assert Path(out).read_text() == "one\ntwo\nthree\n"

    run(main())


def test_submitters_umask_applies_to_output_and_script(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        msg = make_launch(tmp_path, f"touch {tmp_path}/made")
        msg.spec.environment["SLURM_UMASK"] = "0077"
        await h.finish(msg)
        assert (tmp_path / "job1.out").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "made").stat().st_mode & 0o777 == 0o600

    run(main())


def test_environment_reaches_the_script(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        msg = make_launch(tmp_path, 'echo "$SLURM_JOB_ID $SLURM_RESTART_COUNT $PWD"', 42, 2)
        await h.finish(msg)
        assert (tmp_path / "job42.out").read_text() == f"42 2 {tmp_path}\n"

    run(main())


# ---------------------------------------------------------------- launch problems


def test_unopenable_output_is_a_launch_failure(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        rec = await h.finish(make_launch(tmp_path, "true", out=str(tmp_path / "no/such/out")))
        assert rec.reason == "launch_failed"
        assert rec.exit_code != 0
        assert "could not open stdout file" in rec.message
        assert "No such file or directory" in rec.message

    run(main())


def test_missing_workdir_falls_back_to_tmp(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        rec = await h.finish(make_launch(tmp_path, "pwd", workdir=str(tmp_path / "gone")))
        assert rec.exit_code == 0
        text = (tmp_path / "job1.out").read_text()
        assert f"couldn't chdir to `{tmp_path / 'gone'}'" in text
        assert text.endswith("going to /tmp instead\n/tmp\n")

    run(main())


def test_non_root_agent_refuses_another_users_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    monkeypatch.setattr(os, "geteuid", lambda: nobody.pw_uid)
    monkeypatch.setattr(os, "getuid", lambda: nobody.pw_uid)

    async def main() -> None:
        h = Harness(tmp_path)
        rec = await h.finish(make_launch(tmp_path, "true", uid=0))
        assert rec.reason == "launch_failed"
        assert "cannot run jobs of root (uid 0)" in rec.message
        assert not (tmp_path / "job1.out").exists()

    run(main())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_agent_runs_job_as_the_user() -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    # tmp_path's parents are private to root; the user must reach script and output.
    base = Path(tempfile.mkdtemp(prefix="gsched-launcher-"))
    try:
        base.chmod(0o755)
        outdir = base / "out"
        outdir.mkdir()
        outdir.chmod(0o777)

        async def main() -> None:
            h = Harness(outdir, state=base / "state")
            msg = make_launch(outdir, "id -u; id -g", uid=nobody.pw_uid)
            rec = await h.finish(msg)
            assert (rec.exit_code, rec.reason) == (0, ""), rec
            out = outdir / "job1.out"
            assert out.read_text() == f"{nobody.pw_uid}\n{nobody.pw_gid}\n"
            assert out.stat().st_uid == nobody.pw_uid
            assert (base / "state/jobs/1.0/script").stat().st_uid == nobody.pw_uid
            assert (base / "state/jobs/1.0/exit.json").stat().st_uid == 0

        run(main())
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- signals, cancel, limits


def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        pids = tmp_path / "pids"
        script = (
            f"sleep 300 & echo $! > {pids}.tmp; echo $$ >> {pids}.tmp; mv {pids}.tmp {pids}; wait"
        )
        msg = make_launch(tmp_path, script, kill_wait=5)
        assert await h.launcher.launch(msg)
        await until(pids.exists, what="the job's pids")
        child, shell = (int(p) for p in pids.read_text().split())
        h.launcher.kill(1, 0, "cancelled")
        rec = await h.exit_of(1)
        assert (rec.exit_code, rec.signal, rec.reason) == (0, signal.SIGTERM, "cancelled")
        assert gone(child) and gone(shell)
        assert "CANCELLED AT" in (tmp_path / "job1.out").read_text()
        h.launcher.kill(1, 0, "cancelled")  # ended: nothing happens, nothing reported
        await asyncio.sleep(0.1)
        assert len(h.exits) == 1

    run(main())


def test_orphan_that_left_the_group_is_killed_at_exit(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        pidfile = tmp_path / "escaped"
        script = f"setsid sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 300' &\n"
        script += f"while [ ! -s {pidfile} ]; do sleep 0.02; done\nexit 0\n"
        rec = await h.finish(make_launch(tmp_path, script))
        assert rec.exit_code == 0
        assert gone(int(pidfile.read_text()))

    run(main())


def test_time_limit_terms_then_kills(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        started = time.monotonic()
        msg = make_launch(
            tmp_path, "trap 'echo term' TERM; while :; do sleep 0.05; done", time_limit=1
        )
        rec = await h.finish(msg)
        elapsed = time.monotonic() - started
        assert (rec.exit_code, rec.signal, rec.reason) == (0, signal.SIGKILL, "timeout")
        assert 1.9 <= elapsed < 15
        text = (tmp_path / "job1.out").read_text()
        assert "DUE TO TIME LIMIT ***" in text
        assert "term" in text

    run(main())


def test_signal_is_forwarded_and_batch_only(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        ready = tmp_path / "ready"
        script = f"trap 'echo usr1; exit 7' USR1; touch {ready}; while :; do sleep 0.05; done"
        assert await h.launcher.launch(make_launch(tmp_path, script))
        await until(ready.exists, what="the trap")
        assert h.launcher.signal(1, 0, signal.SIGUSR1)
        rec = await h.exit_of(1)
        assert (rec.exit_code, rec.signal, rec.reason) == (7, 0, "")
        assert "usr1" in (tmp_path / "job1.out").read_text()
        assert not h.launcher.signal(1, 0, signal.SIGUSR1)  # ended
        assert not h.launcher.signal(9, 0, signal.SIGUSR1)  # unknown

        ready2 = tmp_path / "ready2"
        assert await h.launcher.launch(make_launch(tmp_path, f"touch {ready2}; sleep 300", 2))
        pidfile = tmp_path / "state/jobs/2.0/script.pid"
        await until(lambda: ready2.exists() and pidfile.exists(), what="job 2")
        assert h.launcher.signal(2, 0, signal.SIGKILL, batch_only=True)
        rec = await h.exit_of(2)
        assert (rec.exit_code, rec.signal) == (0, 9)

    run(main())


def test_fencing_kills_jobs_once_contact_is_old(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        h.launcher.fence_after = 1.0
        h.launcher.fence_grace = 0.5
        fence = Path(h.launcher.fence_file)
        fence.touch()
        release = tmp_path / "release"
        script = f"while [ ! -e {release} ]; do sleep 0.02; done; exit 3"
        assert await h.launcher.launch(make_launch(tmp_path, script, 1))
        assert await h.launcher.launch(make_launch(tmp_path, "exec sleep 300", 2))
        for _ in range(12):  # the agent proves contact for 2.4 s: nothing is fenced
            os.utime(fence)
            last = time.monotonic()
            await asyncio.sleep(0.2)
        assert h.exits == []
        release.touch()  # and contact is lost
        rec = await h.exit_of(1)
        assert (rec.exit_code, rec.signal, rec.reason) == (3, 0, "")
        rec = await h.exit_of(2)
        assert (rec.exit_code, rec.signal, rec.reason) == (0, signal.SIGTERM, "fenced")
        assert 0.8 < time.monotonic() - last < 10
        assert "LOST CONTACT WITH THE CONTROLLER" in (tmp_path / "job2.out").read_text()

    run(main())


# ---------------------------------------------------------------- idempotence, recovery


def test_same_attempt_launched_once(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        count = tmp_path / "count"
        msg = make_launch(tmp_path, f"echo run >> {count}")
        results = await asyncio.gather(h.launcher.launch(msg), h.launcher.launch(msg))
        assert sorted(results) == [False, True]
        await h.exit_of(1)
        assert not await h.launcher.launch(msg)  # finished, not acked
        h.launcher.ack(1, 0)
        assert not await h.launcher.launch(msg)  # acked
        assert not await Harness(tmp_path).launcher.launch(msg)  # another agent life
        await asyncio.sleep(0.2)
        assert count.read_text() == "run\n"
        assert len(h.exits) == 1

    run(main())


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_agent_restart_readopts_running_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    monkeypatch.setattr(Launcher, "use_pidfd", pidfd and hasattr(os, "pidfd_open"))

    async def main() -> None:
        first = Harness(tmp_path)
        assert first.launcher.recover() == []
        release = tmp_path / "release"
        script = f"while [ ! -e {release} ]; do sleep 0.05; done; exit 4"
        assert await first.launcher.launch(make_launch(tmp_path, script, 5))
        first.launcher.close()  # the agent goes away; the job does not
        del first.launcher

        second = Harness(tmp_path)
        assert second.launcher.recover() == [(5, 0)]
        assert second.launcher.running() == [(5, 0)]
        release.touch()
        rec = await second.exit_of(5)
        assert (rec.exit_code, rec.signal, rec.reason) == (4, 0, "")
        assert first.exits == []
        assert second.launcher.running() == []

    run(main())


def test_exits_are_reported_again_until_acked(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        await h.finish(make_launch(tmp_path, "exit 2", 3))
        assert [r.exit_code for r in h.launcher.pending_exits()] == [2]

        again = Harness(tmp_path)
        assert again.launcher.recover() == []
        assert [(r.job_id, r.exit_code) for r in again.exits] == [(3, 2)]
        assert again.exits[0] == h.exits[0]

        again.launcher.ack(3, 0)
        assert again.launcher.pending_exits() == []
        third = Harness(tmp_path)
        assert third.launcher.recover() == []
        assert third.exits == []

    run(main())


def test_lost_wrapper_is_reported_and_its_job_killed(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        ready = tmp_path / "ready"
        assert await h.launcher.launch(make_launch(tmp_path, f"touch {ready}; exec sleep 300"))
        d = tmp_path / "state/jobs/1.0"
        await until(lambda: ready.exists() and (d / "script.pid").exists(), what="the job")
        wrapper = int(json.loads((d / "wrapper.pid").read_text())["pid"])
        script = int(json.loads((d / "script.pid").read_text())["pid"])
        os.kill(wrapper, signal.SIGKILL)
        rec = await h.exit_of(1)
        assert (rec.reason, rec.message) == ("killed", "wrapper lost")
        await until(lambda: gone(script), what="the orphaned script to die")

    run(main())


def test_wrapper_lost_while_agent_was_down(tmp_path: Path) -> None:
    async def main() -> None:
        first = Harness(tmp_path)
        ready = tmp_path / "ready"
        assert await first.launcher.launch(make_launch(tmp_path, f"touch {ready}; exec sleep 300"))
        d = tmp_path / "state/jobs/1.0"
        await until(lambda: ready.exists() and (d / "script.pid").exists(), what="the job")
        first.launcher.close()
        (d / "kill_reason").write_text("node_fail\n")
        wrapper = int(json.loads((d / "wrapper.pid").read_text())["pid"])
        script = int(json.loads((d / "script.pid").read_text())["pid"])
        os.kill(wrapper, signal.SIGKILL)
        await until(lambda: gone(wrapper), what="the wrapper to die")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(wrapper, 0)  # this process's child; a real agent would be gone

        second = Harness(tmp_path)
        assert second.launcher.recover() == []
        assert [(r.reason, r.message) for r in second.exits] == [("node_fail", "wrapper lost")]
        await until(lambda: gone(script), what="the orphaned script to die")

    run(main())


# ---------------------------------------------------------------- fork server

forked_only = pytest.mark.parametrize("start_mode", ["forkserver"], indirect=True)


def _fds(pid: int) -> dict[int, str]:
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return out


@forked_only
def test_forked_wrapper_looks_like_one_started_by_path(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        release = tmp_path / "release"
        script = f"while [ ! -e {release} ]; do sleep 0.02; done; exit 5"
        assert await h.launcher.launch(make_launch(tmp_path, script))
        d = tmp_path / "state/jobs/1.0"
        info = json.loads((d / "wrapper.pid").read_text())
        wrapper = psutil.Process(info["pid"])
        assert abs(wrapper.create_time() - info["create_time"]) < 1.0
        assert wrapper.cmdline()[:5] == [sys.executable, "-I", "-S", launcher_mod.WRAPPER, str(d)]
        assert all(not a.strip() for a in wrapper.cmdline()[5:])  # at most one of blanks
        assert os.getsid(wrapper.pid) == os.getpgid(wrapper.pid) == wrapper.pid
        server = h.launcher._forkserver.proc
        assert server is not None
        assert wrapper.ppid() == server.pid != os.getpid()
        fds = _fds(wrapper.pid)
        assert fds[0] == os.devnull
        assert fds[1] == fds[2] == str(d / "wrapper.log")
        server_pipes = {_fds(server.pid)[0], _fds(server.pid)[1]}
        assert not server_pipes & set(fds.values())
        assert (d / "fork.claim").exists()
        release.touch()
        rec = await h.exit_of(1)
        assert (rec.exit_code, rec.signal, rec.reason) == (5, 0, "")

    run(main())


@forked_only
def test_wrappers_outlive_the_fork_server(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        release = tmp_path / "release"
        script = f"while [ ! -e {release} ]; do sleep 0.02; done; exit 6"
        assert await h.launcher.launch(make_launch(tmp_path, script, 1))
        server = h.launcher._forkserver.proc
        assert server is not None
        wrapper = json.loads((tmp_path / "state/jobs/1.0/wrapper.pid").read_text())["pid"]
        server.kill()
        await until(lambda: gone(server.pid), what="the fork server to die")
        assert not gone(wrapper)
        # The next launch starts another fork server.
        rec = await h.finish(make_launch(tmp_path, "exit 2", 2))
        assert rec.exit_code == 2
        assert h.launcher._forkserver.proc is not None
        assert h.launcher._forkserver.proc.pid != server.pid
        assert not gone(wrapper) and psutil.Process(wrapper).ppid() != server.pid
        release.touch()
        rec = await h.exit_of(1)
        assert (rec.exit_code, rec.reason) == (6, "")

    run(main())


@forked_only
def test_fork_server_that_cannot_start_leaves_wrappers_started_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launcher_mod, "FORKSERVER", str(tmp_path / "missing.py"))

    async def main() -> None:
        h = Harness(tmp_path)
        for job in (1, 2):
            rec = await h.finish(make_launch(tmp_path, "echo ran", job))
            assert (rec.exit_code, rec.reason) == (0, "")
            assert (tmp_path / f"job{job}.out").read_text() == "ran\n"
            assert not (tmp_path / f"state/jobs/{job}.0/fork.claim").exists()
        assert h.launcher._forkserver.proc is None
        assert h.launcher._forkserver.retry_at > time.monotonic()  # not tried for each job

    run(main())


@forked_only
@pytest.mark.parametrize("forked", [True, False], ids=["forked", "not-forked"])
def test_fork_start_with_unknown_outcome_runs_the_attempt_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: bool
) -> None:
    """The reply is lost: the attempt runs once, forked or started by path."""
    real = launcher_mod._ForkServer._start

    def lost_reply(self: Any, d: Path) -> Any:
        if forked:
            real(self, d)
        raise launcher_mod._ForkUnsure("reply lost (test)")

    monkeypatch.setattr(launcher_mod._ForkServer, "_start", lost_reply)

    async def main() -> None:
        h = Harness(tmp_path)
        count = tmp_path / "count"
        rec = await h.finish(make_launch(tmp_path, f"echo run >> {count}"))
        assert (rec.exit_code, rec.reason) == (0, "")
        d = tmp_path / "state/jobs/1.0"
        if not forked:
            # A fork server's wrapper that comes late finds the attempt taken.
            monkeypatch.setattr(launcher_mod._ForkServer, "_start", real)
            with pytest.raises(launcher_mod._ForkUnsure, match="claimed already"):
                await asyncio.to_thread(h.launcher._forkserver.start, d)
        await asyncio.sleep(0.2)
        assert count.read_text() == "run\n"
        assert len(h.exits) == 1

    run(main())


_TREE = """
import os, subprocess, sys, time
from gsched.agent.wrap import Wrapper
tree = subprocess.Popen(["sh", "-c", "sleep 30 & setsid sh -c 'sleep 30 & wait' & sleep 30 & wait"])
w = Wrapper("/nonexistent")
deadline = time.monotonic() + 10
while len(w.descendants_from_proc()) < 5 and time.monotonic() < deadline:
    time.sleep(0.02)
walked, scanned = sorted(w.descendants()), sorted(w.descendants_from_proc())
for pid in scanned:
    os.kill(pid, 9)
print(walked == scanned, len(walked), tree.pid in walked)
"""


@forked_only
def test_descendants_through_children_lists_match_a_proc_scan() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _TREE], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["True", "5", "True"], out


# ---------------------------------------------------------------- placeholders


def test_non_batch_node_keeps_a_placeholder_until_killed(tmp_path: Path) -> None:
    async def main() -> None:
        h = Harness(tmp_path)
        assert await h.launcher.launch(make_launch(tmp_path, "exit 1", 8, batch=False))
        assert h.launcher.running() == [(8, 0)]
        assert not h.launcher.signal(8, 0, signal.SIGUSR1)
        assert Harness(tmp_path).launcher.recover() == [(8, 0)]  # survives a restart
        h.launcher.kill(8, 0, "cancelled")
        rec = await h.exit_of(8)
        assert (rec.exit_code, rec.signal, rec.reason) == (0, 0, "cancelled")
        assert h.launcher.running() == []
        assert not (tmp_path / "job8.out").exists()

    run(main())


# ---------------------------------------------------------------- environment


def test_build_environment_two_gpus_node_zero_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSCHED_CONF", "/etc/gsched/test.toml")
    msg = pb.Launch(
        ref=pb.AttemptRef(job_id=1234, attempt=0),
        spec=pb.JobSpec(
            name="train",
            environment={
                "PATH": "/usr/bin:/bin",
                "HOME": "/home/alice",
                "CUDA_VISIBLE_DEVICES": "7",
                "SLURM_CPUS_PER_TASK": "99",
                "MY_VAR": "x",
            },
            export_mode="ALL",
            submit_dir="/home/alice/proj",
            submit_host="login1",
            gpus_per_node=2,
            ntasks_per_node=2,
        ),
        user="alice",
        uid=1000,
        gid=1000,
        nodes=[
            pb.NodeGpus(node="node1", indices=[2, 3], cpus=4),
            pb.NodeGpus(node="node2", indices=[0, 1], cpus=4),
        ],
        node_index=0,
        partition="gpu",
        cluster_name="lab",
        ntasks=4,
        node_addresses={"node1": "10.0.0.1", "node2": "10.0.0.2"},
        controller_address="ctl:6817",
        batch=True,
    )
    env = build_environment(msg, "node1", "/var/lib/gsched/shims")
    assert env == {
        "PATH": "/var/lib/gsched/shims:/usr/bin:/bin",
        "HOME": "/home/alice",
        "MY_VAR": "x",
        "CUDA_VISIBLE_DEVICES": "2,3",
        "GPU_DEVICE_ORDINAL": "2,3",
        "ROCR_VISIBLE_DEVICES": "2,3",
        "ZE_AFFINITY_MASK": "2,3",
        "ENVIRONMENT": "BATCH",
        "TMPDIR": "/tmp",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": str(20000 + 1234),
        "SLURMD_NODENAME": "node1",
        "SLURM_CLUSTER_NAME": "lab",
        "SLURM_CPUS_ON_NODE": "4",
        "SLURM_GPUS_ON_NODE": "2",
        "SLURM_GTIDS": "0",
        "SLURM_JOBID": "1234",
        "SLURM_JOB_CPUS_PER_NODE": "4(x2)",
        "SLURM_JOB_GID": "1000",
        "SLURM_JOB_GPUS": "2,3",
        "SLURM_JOB_ID": "1234",
        "SLURM_JOB_NAME": "train",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_JOB_PARTITION": "gpu",
        "SLURM_JOB_UID": "1000",
        "SLURM_JOB_USER": "alice",
        "SLURM_LOCALID": "0",
        "SLURM_NNODES": "2",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "node[1-2]",
        "SLURM_NPROCS": "4",
        "SLURM_NTASKS": "4",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_PRIO_PROCESS": "0",
        "SLURM_PROCID": "0",
        "SLURM_RESTART_COUNT": "0",
        "SLURM_SUBMIT_DIR": "/home/alice/proj",
        "SLURM_SUBMIT_HOST": "login1",
        "SLURM_TASKS_PER_NODE": "2(x2)",
        "SLURM_TOPOLOGY_ADDR": "node1",
        "SLURM_TOPOLOGY_ADDR_PATTERN": "node",
        "GSCHED_CLUSTER_NAME": "lab",
        "GSCHED_CONF": "/etc/gsched/test.toml",
        "GSCHED_CONTROLLER": "ctl:6817",
        "GSCHED_JOB_GPUS": "2,3",
        "GSCHED_JOB_ID": "1234",
        "GSCHED_JOB_NAME": "train",
        "GSCHED_JOB_NODELIST": "node[1-2]",
        "GSCHED_NNODES": "2",
        "GSCHED_NODEID": "0",
        "GSCHED_NODENAME": "node1",
        "GSCHED_NTASKS": "4",
        "GSCHED_RESTART_COUNT": "0",
        "GSCHED_SUBMIT_DIR": "/home/alice/proj",
    }


def test_build_environment_no_gpus_export_none_requeued(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GSCHED_CONF", raising=False)
    root = pwd.getpwuid(0)
    msg = pb.Launch(
        ref=pb.AttemptRef(job_id=7, attempt=2),
        spec=pb.JobSpec(
            name="cpu",
            environment={"CUDA_VISIBLE_DEVICES": "0", "SECRET": "s"},
            export_mode="NONE",
            cpus_per_task=3,
            gpus=0,
        ),
        user="root",
        uid=0,
        gid=0,
        nodes=[pb.NodeGpus(node="node2", cpus=3)],
        cluster_name="lab",
        batch=True,
    )
    env = build_environment(msg, "node2", None)
    assert "SECRET" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "GPU_DEVICE_ORDINAL" not in env and "SLURM_JOB_GPUS" not in env
    assert (env["HOME"], env["USER"], env["LOGNAME"], env["SHELL"]) == (
        root.pw_dir,
        "root",
        "root",
        root.pw_shell,
    )
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["SLURM_RESTART_COUNT"] == env["GSCHED_RESTART_COUNT"] == "2"
    assert env["SLURM_CPUS_PER_TASK"] == "3"
    assert env["SLURM_CPUS_ON_NODE"] == "3"
    assert (env["SLURM_NTASKS"], env["SLURM_TASKS_PER_NODE"]) == ("1", "1")
    assert env["SLURM_JOB_NODELIST"] == "node2"
    assert "SLURM_NTASKS_PER_NODE" not in env and "SLURM_GPUS" not in env
    assert "GSCHED_CONF" not in env and "GSCHED_CONTROLLER" not in env
