"""The grun step channel takes only processes of the job (GSCHED_STEP_TOKEN).

Real controller and agent (root), jobs of a real unprivileged user (setpriv), an
operator by group; grun and srun as installed commands (tests/e2e/secutil.py).
"""

from __future__ import annotations

import sqlite3
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from gsched.protos import gsched_pb2 as pb

from .secutil import OPERATOR, OPS_GROUP, SecCluster, ensure_user, need_root_users, sec_cluster

pytestmark = pytest.mark.e2e

USER = "nobody"


def _wait_file(path: Path, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = path.read_text() if path.exists() else ""
        if text in body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{path} has no {text!r}: {body!r}")


def _state(c: SecCluster, job: int) -> str:
    return c.run("gqueue", "-h", "-j", str(job), "-o", "%T").out.strip()


def _wait_running(c: SecCluster, job: int, restarts: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        show = c.run("gctl", "show", "job", str(job)).out
        if "JobState=RUNNING" in show and f"Restarts={restarts}" in show:
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job} not running (restart {restarts}):\n{show}\n{c.log()}")


def test_only_processes_of_the_job_start_steps() -> None:
    need_root_users()
    ensure_user(OPERATOR, OPS_GROUP)
    with sec_cluster(controller=f'operators = ["%{OPS_GROUP}"]') as c:
        work = c.workdir(USER)
        body = 'echo "$GSCHED_STEP_TOKEN" > tok.$SLURM_RESTART_COUNT; sleep 300'
        job = c.submit("-o", "out-%j.txt", "--wrap", body, user=USER)
        token0 = _wait_file(work / "tok.0", "\n").strip()
        assert len(token0) == 64, token0

        # the same user, outside the job (no SLURM_*/GSCHED_* variables): refused
        r = c.run("grun", "--jobid", str(job), "echo", "outside", user=USER)
        assert r.rc == 1, r
        assert f"grun: error: not inside job {job}: run grun from the job's batch script " \
               "or an allocation" in r.err, r.err
        assert "outside" not in r.out
        r = c.run("grun", "--jobid", str(job), "true", user=USER, GSCHED_STEP_TOKEN="0" * 64)
        assert r.rc == 1 and f"not inside job {job}" in r.err, r
        r = c.run("grun", "--jobid", str(job), "true", user=USER, GSCHED_TRANSPORT="grpc")
        assert r.rc == 1 and f"not inside job {job}" in r.err, r
        assert f"denied RunStep job {job} to uid 65534 ({USER})" in c.log()
        # with the job's token (as the job's own processes have it): allowed
        r = c.run("grun", "--jobid", str(job), "echo", "with-token", user=USER,
                  GSCHED_STEP_TOKEN=token0)
        assert r.rc == 0 and r.out.strip() == "with-token", r
        # operators (by group) and root need no token
        r = c.run("grun", "--jobid", str(job), "echo", "op-ok", user=OPERATOR)
        assert r.rc == 0 and r.out.strip() == "op-ok", r
        r = c.run("grun", "--jobid", str(job), "echo", "root-ok")
        assert r.rc == 0 and r.out.strip() == "root-ok", r

        # the token is no one's business: not in gctl show job, not in the logs
        show = c.run("gctl", "show", "job", str(job), user=USER).out
        assert "JobState=RUNNING" in show and token0 not in show
        assert token0 not in c.run("gctl", "show", "job", str(job)).out
        assert token0 not in c.log() and token0 not in c.log("node1")

        # a requeued job's new attempt has a new token; the old one no longer works
        r = c.run("gctl", "requeue", str(job))
        assert r.rc == 0, r
        _wait_running(c, job, 1, timeout=60)
        token1 = _wait_file(work / "tok.1", "\n").strip()
        assert len(token1) == 64 and token1 != token0
        r = c.run("grun", "--jobid", str(job), "true", user=USER, GSCHED_STEP_TOKEN=token0)
        assert r.rc == 1 and f"not inside job {job}" in r.err, r
        r = c.run("grun", "--jobid", str(job), "echo", "new-ok", user=USER,
                  GSCHED_STEP_TOKEN=token1)
        assert r.rc == 0 and r.out.strip() == "new-ok", r
        # one job's token opens no other job of the same user
        # (submitted from "inside" job: the submitting job's token is not stored with it)
        other = c.submit("--wrap", "sleep 300", user=USER, GSCHED_STEP_TOKEN=token1)
        _wait_running(c, other, 0)
        with sqlite3.connect(c.state / "gsched.db") as db:
            (blob,) = db.execute("SELECT spec FROM jobs WHERE job_id = ?", (other,)).fetchone()
        stored = pb.JobSpec.FromString(blob).environment
        assert stored.get("USER") == USER and "GSCHED_STEP_TOKEN" not in stored
        r = c.run("grun", "--jobid", str(other), "true", user=USER, GSCHED_STEP_TOKEN=token1)
        assert r.rc == 1 and f"not inside job {other}" in r.err, r
        assert c.run("gcancel", str(job), str(other), user=USER).rc == 0
        assert token0 not in c.log() and token1 not in c.log()


def _user_grun(work: Path) -> str:
    """A directory with ``grun`` for a job user who cannot run this virtualenv's Python.

    Where the virtualenv's interpreter lies under a private directory (/root/.pyenv),
    a job's processes cannot exec it. The same gsched code then runs under the
    system's Python of the same minor version, with the virtualenv's packages.
    """
    site = sysconfig.get_paths()["purelib"]
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    system = Path("/usr/bin") / ver
    if not system.exists():
        pytest.skip(f"{USER} cannot run this virtualenv's Python, and there is no {system}")
    d = work / "bin"
    d.mkdir(exist_ok=True)
    grun = d / "grun"
    grun.write_text(f"#!/bin/sh\nPYTHONPATH={site} exec {system} -c "
                    "'from gsched.cli.grun import main; main()' \"$@\"\n")
    grun.chmod(0o755)
    return str(d)


def test_grun_inside_a_users_job_nested_in_a_step_and_in_an_allocation() -> None:
    need_root_users()
    with sec_cluster() as c:
        work = c.workdir(USER)
        body = ("grun -n1 echo inner-ok; "
                "grun -n1 bash -c 'grun -n1 echo nested-ok'; "
                "echo done-all")
        job = c.submit("-o", "out-%j.txt", "--wrap", body, user=USER)
        text = _wait_file(work / f"out-{job}.txt", "done-all")
        extra: dict[str, str] = {}
        if "Permission denied" in text and "inner-ok" not in text:
            # the job cannot exec the virtualenv's python (see _user_grun)
            extra["PATH"] = f"{_user_grun(work)}:{c.env()['PATH']}"
            job = c.submit("-o", "out-%j.txt", "--wrap", body, user=USER, **extra)
            text = _wait_file(work / f"out-{job}.txt", "done-all")
        assert "inner-ok" in text and "nested-ok" in text, text
        assert "not inside job" not in text and "rror" not in text, text
        # and nested in a step of an allocation grun made outside a job
        r = c.run("grun", "-n1", "bash", "-c", "grun -n1 echo nested-in-allocation", user=USER,
                  **extra)
        assert r.rc == 0 and r.out.strip() == "nested-in-allocation", r


def test_grun_outside_a_job_runs_steps_in_its_own_allocation() -> None:
    need_root_users()
    with sec_cluster() as c:
        # the allocation's token reaches the step (so a grun nested in it works)
        r = c.run("grun", "-n1", "bash", "-c", 'echo "${#GSCHED_STEP_TOKEN}"', user=USER)
        assert r.rc == 0 and r.out.strip() == "64", r
        r = c.run("grun", "-n1", "echo", "alloc-ok", user=USER, GSCHED_TRANSPORT="grpc")
        assert r.rc == 0 and r.out.strip() == "alloc-ok", r
        deadline = time.monotonic() + 30
        while c.run("gqueue", "-h").out.strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.run("gqueue", "-h").out.strip() == ""
