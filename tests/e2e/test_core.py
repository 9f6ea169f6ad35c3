"""One job from gsub through controller and agent to its end, through the installed commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import LocalCluster, restart_controller

pytestmark = pytest.mark.e2e


def write(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def env_of(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_job_runs_to_completed_with_slurm_environment(local_cluster: LocalCluster) -> None:
    c = local_cluster
    script = write(
        c.workdir / "job.sh",
        "#!/bin/bash\n"
        "#SBATCH -J envjob\n"
        "#SBATCH --output=%x-%j.out  # trailing comment\n"
        "#SBATCH --gres=gpu:2 -c 2\n"
        "#SBATCH --ntasks=2\n"
        'echo "args=$1,$2"\n'
        "env | sort > env-$SLURM_JOB_ID.txt\n"
        "scontrol show hostnames > hosts-$SLURM_JOB_ID.txt\n",
    )
    r = c.run("gsub", str(script), "one", "two words", env={"MY_VAR": "kept"})
    assert r.rc == 0, r.err
    assert r.out.startswith("Submitted batch job ")
    job_id = int(r.out.split()[-1])
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}) == "COMPLETED", c.logs()
    out = (c.workdir / f"envjob-{job_id}.out").read_text()
    assert out == "args=one,two words\n"
    env = env_of(c.workdir / f"env-{job_id}.txt")
    node = env["SLURMD_NODENAME"]
    assert env["SLURM_JOB_ID"] == env["SLURM_JOBID"] == str(job_id)
    assert env["SLURM_JOB_NAME"] == "envjob"
    assert env["SLURM_JOB_NODELIST"] == env["SLURM_NODELIST"] == node
    assert env["SLURM_NNODES"] == env["SLURM_JOB_NUM_NODES"] == "1"
    assert env["SLURM_NTASKS"] == "2"
    assert env["SLURM_CPUS_PER_TASK"] == "2"
    assert env["SLURM_CPUS_ON_NODE"] == "4"
    assert env["SLURM_GPUS_ON_NODE"] == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == env["SLURM_JOB_GPUS"] == "0,1"
    assert env["SLURM_SUBMIT_DIR"] == str(c.workdir)
    assert env["SLURM_RESTART_COUNT"] == "0"
    assert env["SLURM_PROCID"] == env["SLURM_LOCALID"] == env["SLURM_NODEID"] == "0"
    assert env["SLURM_JOB_PARTITION"] == "main"
    assert env["GSCHED_JOB_ID"] == str(job_id)
    assert env["MY_VAR"] == "kept"
    assert (c.workdir / f"hosts-{job_id}.txt").read_text() == f"{node}\n"
    acct = c.run("gacct", "-j", str(job_id), "-P", "-n", "-o", "JobID,JobName,State,ExitCode")
    assert acct.rc == 0, acct.err
    assert acct.out.splitlines()[0] == f"{job_id}|envjob|COMPLETED|0:0"


def test_exit_code_and_default_output(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("--wrap", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}) == "FAILED"
    assert (c.workdir / f"slurm-{job_id}.out").read_text() == "to-stdout\nto-stderr\n"
    show = c.run("gctl", "show", "job", str(job_id))
    assert show.rc == 0, show.err
    assert "JobState=FAILED Reason=NonZeroExitCode" in show.out
    assert "ExitCode=3:0" in show.out
    assert f"StdOut={c.workdir}/slurm-{job_id}.out" in show.out


def test_gpus_are_never_shared(local_cluster: LocalCluster) -> None:
    c = local_cluster
    ids = [c.submit("--gres=gpu:3", "-o", "gpu-%j.out", "--wrap",
                    "echo $SLURMD_NODENAME:$CUDA_VISIBLE_DEVICES; sleep 1") for _ in range(3)]
    for job_id in ids:
        c.wait_state(job_id, "COMPLETED", timeout=60)
    seen = [(c.workdir / f"gpu-{i}.out").read_text().strip() for i in ids]
    assert all(s.endswith(":0,1,2") for s in seen), seen


def test_cancel_running_kills_process_tree(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-o", "c.out", "--wrap", "sleep 300 & echo $! > child.pid; wait")
    c.wait_state(job_id, "RUNNING")
    c.wait_for(lambda: (c.workdir / "child.pid").exists() and
               (c.workdir / "child.pid").read_text().strip() != "", what="child pid")
    child = int((c.workdir / "child.pid").read_text())
    assert psutil.pid_exists(child)
    r = c.run("gcancel", str(job_id))
    assert r.rc == 0 and r.out == "" and r.err == ""
    assert c.wait_state(job_id, "CANCELLED") == "CANCELLED"
    c.wait_for(lambda: not psutil.pid_exists(child) or
               psutil.Process(child).status() == psutil.STATUS_ZOMBIE, what="child killed")
    # cancelling again, or a job that never existed, is silent like scancel
    assert c.run("gcancel", str(job_id)).rc == 0
    r = c.run("gcancel", "-v", "999999")
    assert r.rc == 0 and "Invalid job id specified" in r.err


def test_time_limit_ends_in_timeout(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-t", "0:2", "--wrap", "sleep 120")
    assert c.wait_state(job_id, {"TIMEOUT", "FAILED", "COMPLETED"}, timeout=40) == "TIMEOUT"


def test_hold_release_and_queue_views(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-H", "-J", "held", "--wrap", "true")
    r = c.run("gqueue")
    assert r.rc == 0, r.err
    header, *rows = r.out.splitlines()
    assert header == "             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"
    row = next(line for line in rows if line.split()[0] == str(job_id))
    assert row.split()[1:] == ["main", "held", row.split()[3], "PD", "0:00", "1", "(JobHeldUser)"]
    assert c.run("gctl", "release", str(job_id)).rc == 0
    assert c.wait_state(job_id, "COMPLETED") == "COMPLETED"
    r = c.run("gqueue", "-j", "999999")
    assert r.rc == 1 and "Invalid job id specified" in r.err


def test_drain_resume_and_node_views(local_cluster: LocalCluster) -> None:
    c = local_cluster
    r = c.run("gctl", "update", "NodeName=node1", "State=DRAIN", "Reason=maintenance test")
    assert r.rc == 0, r.err
    r = c.run("ginfo", "-N", "-l")
    assert r.rc == 0, r.err
    line = next(ln for ln in r.out.splitlines() if ln.startswith("node1 "))
    assert "drained" in line and "maintenance test" in line
    job_id = c.submit("-w", "node1", "--wrap", "true")
    time.sleep(0.5)
    assert c.state_of(job_id) == "PENDING"
    assert c.run("gctl", "update", "NodeName=node1", "State=RESUME").rc == 0
    assert c.wait_state(job_id, "COMPLETED") == "COMPLETED"


def test_bad_input_is_rejected_and_changes_nothing(local_cluster: LocalCluster) -> None:
    c = local_cluster
    before = c.run("gqueue", "-h", "-t", "all").out
    r = c.run("gsub", "--bogus", "--wrap=true")
    assert r.rc == 255 and "unrecognized option '--bogus'" in r.err
    r = c.run("gsub", "--time=abc", "--wrap=true")
    assert r.rc == 255 and "Invalid --time specification" in r.err
    r = c.run("gsub", "--gres=gpu:99", "--wrap=true")
    assert r.rc == 1
    assert "Batch job submission failed: Requested node configuration is not available" in r.err
    r = c.run("gsub", "-p", "nope", "--wrap=true")
    assert r.rc == 1 and "invalid partition specified: nope" in r.err
    noshebang = write(c.workdir / "noshebang.sh", "echo hi\n")
    r = c.run("gsub", str(noshebang))
    assert r.rc == 1 and "This does not look like a batch script" in r.err
    r = c.run("gsub", "/nonexistent/job.sh")
    assert r.rc == 1 and "Unable to open file /nonexistent/job.sh" in r.err
    r = c.run("gctl", "show", "job", "999999")
    assert r.rc == 1 and "Invalid job id specified" in r.err
    assert "Traceback" not in r.err
    assert c.run("gqueue", "-h", "-t", "all").out == before


def test_unreachable_controller_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "gsched.toml"
    conf.write_text('[controller]\naddress = "127.0.0.1:1"\n')
    env = dict(os.environ, GSCHED_CONF=str(conf), GSCHED_RPC_TIMEOUT="3")
    p = subprocess.run([str(Path(sys.executable).parent / "gqueue")], capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and "unable to contact" in p.stderr, p.stderr
    env["GSCHED_CONF"] = str(tmp_path / "missing.toml")
    p = subprocess.run([str(Path(sys.executable).parent / "gsub"), "--wrap=true"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "not found" in p.stderr


def test_controller_kill9_loses_nothing_and_runs_nothing_twice(local_cluster: LocalCluster) -> None:
    c = local_cluster
    running = c.submit("-o", "run-%j.out", "--wrap",
                       "echo start >> starts-$SLURM_JOB_ID; sleep 4; exit 7")
    held = c.submit("-H", "--wrap", "true")
    c.wait_state(running, "RUNNING")
    os.kill(c.pid("controller"), signal.SIGKILL)
    time.sleep(0.5)
    restart_controller(c)
    c.wait_for(lambda: c.run("gctl", "ping").rc == 0, what="controller back")
    assert c.state_of(held) == "PENDING"
    assert c.wait_state(running, {"FAILED", "COMPLETED"}, timeout=40) == "FAILED"
    show = c.run("gctl", "show", "job", str(running)).out
    assert "ExitCode=7:0" in show
    assert (c.workdir / f"starts-{running}").read_text() == "start\n"
    newer = c.submit("--wrap", "true")
    assert newer > held > running


def test_agent_kill9_job_readopted(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-w", "node1", "--wrap", "echo a >> runs-$SLURM_JOB_ID; sleep 4")
    c.wait_state(job_id, "RUNNING")
    os.kill(c.pid("node1"), signal.SIGKILL)
    time.sleep(0.5)
    log = open(c.state / "node1.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gsched.cli.main", "agent", "--config",
         str(c.state / "gsched.toml"), "--name", "node1", "--cpus", "8", "--mem-mb", "32000"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=c.env,
    )
    log.close()
    (c.state / "node1.pid").write_text(f"{proc.pid}\n")
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=40) == "COMPLETED"
    assert (c.workdir / f"runs-{job_id}").read_text() == "a\n"


def test_down_stops_the_jobs_too(tmp_path: Path) -> None:
    from .conftest import start_cluster, stop_cluster

    c = start_cluster(tmp_path, agents=1)
    try:
        job_id = c.submit("--wrap", "echo $$ > sleeper.pid; exec sleep 120")
        c.wait_state(job_id, "RUNNING")
        c.wait_for(lambda: (c.workdir / "sleeper.pid").exists()
                   and (c.workdir / "sleeper.pid").read_text().strip() != "", what="pid")
        pid = int((c.workdir / "sleeper.pid").read_text())
    finally:
        stop_cluster(c)
    c.wait_for(lambda: not psutil.pid_exists(pid)
               or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=30,
               what="job stopped by gsched down")
