"""The CLI surface against a real local cluster: filters, requeue, shims, users, JSON views."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import LocalCluster

pytestmark = pytest.mark.e2e


def test_requeue_from_inside_the_job_via_shims(local_cluster: LocalCluster) -> None:
    c = local_cluster
    script = c.workdir / "rq.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH -o rq-%j.out --open-mode=append\n"
        'echo "attempt $SLURM_RESTART_COUNT"\n'
        'if [ "$SLURM_RESTART_COUNT" = 0 ]; then scontrol requeue $SLURM_JOB_ID; sleep 60; fi\n'
        "child=$(sbatch --parsable --wrap=true)\n"
        'echo "child=$child"\n'
    )
    job_id = c.submit(str(script))
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=60) == "COMPLETED"
    lines = (c.workdir / f"rq-{job_id}.out").read_text().splitlines()
    # like slurmstepd, the killed attempt leaves a "*** JOB ... DUE TO JOB REQUEUE ***" line
    assert any("DUE TO JOB REQUEUE" in ln for ln in lines), lines
    lines = [ln for ln in lines if "***" not in ln]
    assert lines[:2] == ["attempt 0", "attempt 1"], lines
    child = int(lines[2].split("=")[1])
    assert child > job_id
    show = c.run("gctl", "show", "job", str(job_id)).out
    assert "Restarts=1" in show


def test_cancel_filters_and_signal(local_cluster: LocalCluster) -> None:
    c = local_cluster
    a = c.submit("-H", "-J", "alpha", "--wrap", "true")
    b = c.submit("-H", "-J", "beta", "--wrap", "true")
    assert c.run("gcancel", "-n", "alpha").rc == 0
    assert c.wait_state(a, "CANCELLED") and c.state_of(b) == "PENDING"
    r = c.run("gcancel", "-t", "PENDING", "-u", os.environ.get("USER", "root"))
    assert r.rc == 0, r.err
    assert c.wait_state(b, "CANCELLED")
    sig = c.submit("-o", "sig.out", "--wrap",
                   "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done")
    c.wait_state(sig, "RUNNING")
    import time

    time.sleep(0.5)  # let the shell install its trap
    assert c.run("gcancel", "-s", "USR1", str(sig)).rc == 0
    assert c.wait_state(sig, {"COMPLETED", "FAILED", "CANCELLED"}) == "COMPLETED"
    assert "got-usr1" in (c.workdir / "sig.out").read_text()
    r = c.run("gcancel")
    assert r.rc == 1 and "No job identification provided" in r.err


def test_export_none_and_chdir(local_cluster: LocalCluster) -> None:
    c = local_cluster
    sub = c.workdir / "sub"
    sub.mkdir()
    job_id = c.submit("--export=NONE", "-D", str(sub), "-o", "e.out", "--wrap",
                      'echo "v=${SECRET_VAR:-unset} pwd=$(pwd)"', env={"SECRET_VAR": "x"})
    c.wait_state(job_id, "COMPLETED")
    assert (sub / "e.out").read_text() == f"v=unset pwd={sub}\n"
    job_id = c.submit("--export=ALL,EXTRA=1", "-o", "f.out", "--wrap",
                      'echo "$SECRET_VAR $EXTRA"', env={"SECRET_VAR": "x"})
    c.wait_state(job_id, "COMPLETED")
    assert (c.workdir / "f.out").read_text() == "x 1\n"


def test_json_views_and_invalid_state(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-H", "-J", "js", "--wrap", "true")
    doc = json.loads(c.run("gqueue", "--json").out)
    job = next(j for j in doc["jobs"] if j["job_id"] == job_id)
    assert job["name"] == "js" and "PENDING" in json.dumps(job["job_state"])
    nodes = json.loads(c.run("ginfo", "--json").out)
    assert {n["name"] for n in nodes["sinfo"][0]["nodes"]["nodes"]} if "sinfo" in nodes else nodes
    r = c.run("gqueue", "-t", "bogus")
    assert r.rc == 1 and "Invalid job state specified" in r.err
    r = c.run("gqueue", "-o", "%.6i %j %T %R", "-h", "-j", str(job_id))
    assert r.out.split() == [str(job_id), "js", "PENDING", "(JobHeldUser)"]
    r = c.run("gqueue", "-h", env={"SQUEUE_FORMAT": "%i|%j"}, )
    assert f"{job_id}|js" in r.out.splitlines()


def test_update_pending_job(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = c.submit("-H", "--wrap", "true")
    assert c.run("gctl", "update", f"JobId={job_id}", "TimeLimit=1:00:00", "Name=renamed").rc == 0
    show = c.run("gctl", "show", "job", str(job_id)).out
    assert "TimeLimit=01:00:00" in show and "JobName=renamed" in show
    r = c.run("gctl", "update", f"JobId={job_id}", "Partition=nope")
    assert r.rc == 1 and "Invalid partition name specified" in r.err


def test_hostnames_and_shims_command(local_cluster: LocalCluster, tmp_path: Path) -> None:
    c = local_cluster
    r = c.run("gctl", "show", "hostnames", "node[1-3],gpu7")
    assert r.out == "node1\nnode2\nnode3\ngpu7\n"
    r = c.run("gctl", "show", "hostnames", env={"SLURM_JOB_NODELIST": "n[01-02]"})
    assert r.out == "n01\nn02\n"
    shim_dir = tmp_path / "shims"
    r = c.run("gsched", "shims", str(shim_dir))
    assert r.rc == 0
    for name in ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "sacct"):
        assert os.access(shim_dir / name, os.X_OK)
    r = subprocess.run([str(shim_dir / "sbatch"), "--bogus"], capture_output=True, text=True,
                       env=c.env, timeout=30)
    assert r.returncode == 255 and r.stderr.startswith("sbatch: unrecognized option '--bogus'")


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to act as another user")
def test_other_user_cannot_touch_my_job(local_cluster: LocalCluster, tmp_path: Path) -> None:
    c = local_cluster
    job_id = c.submit("-H", "--wrap", "true")
    conf = Path("/tmp") / f"gsched-e2e-{os.getpid()}.toml"
    shutil.copy(c.state / "gsched.toml", conf)
    conf.chmod(0o644)
    c.open_to_other_users()
    try:
        env = dict(c.env, GSCHED_CONF=str(conf))
        bindir = Path(sys.executable).parent
        base = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        for cmd in (["gcancel", str(job_id)], ["gctl", "release", str(job_id)],
                    ["gctl", "requeue", str(job_id)]):
            p = subprocess.run([*base, str(bindir / cmd[0]), *cmd[1:]], capture_output=True,
                               text=True, env=env, cwd="/tmp", timeout=30)
            assert p.returncode == 1, (cmd, p.stdout, p.stderr)
            assert "Access/permission denied" in p.stderr, p.stderr
        p = subprocess.run([*base, str(bindir / "gqueue"), "-h", "-o", "%i %T"],
                           capture_output=True, text=True, env=env, cwd="/tmp", timeout=30)
        assert f"{job_id} PENDING" in p.stdout  # everyone sees the queue, like SLURM
        assert c.state_of(job_id) == "PENDING"
        r = c.run("gctl", "show", "job", str(job_id))
        assert "JobHeldUser" in r.out
    finally:
        conf.unlink(missing_ok=True)


def test_grpc_and_local_socket_transports_agree(local_cluster: LocalCluster) -> None:
    """The CLI uses the controller's Unix socket on its host and gRPC elsewhere."""
    c = local_cluster
    assert (c.state / "controller.sock").exists()
    grpc_env = {"GSCHED_TRANSPORT": "grpc"}
    a = c.submit("-H", "-J", "via-grpc", "--wrap", "true", env=grpc_env)
    b = c.submit("-H", "-J", "via-sock", "--wrap", "true")
    fmt = ["-h", "-o", "%i %j %T %r", "-j", f"{a},{b}"]
    assert c.run("gqueue", *fmt, env=grpc_env).out == c.run("gqueue", *fmt).out
    r = c.run("gctl", "show", "job", "999999", env=grpc_env)
    assert r.rc == 1 and "Invalid job id specified" in r.err
    assert c.run("gcancel", str(a), str(b), env=grpc_env).rc == 0
    assert c.wait_state(a, "CANCELLED") and c.wait_state(b, "CANCELLED")


def test_agent_without_the_cluster_key_is_refused(local_cluster: LocalCluster, tmp_path: Path) -> None:
    c = local_cluster
    assert (c.state / "cluster.key").stat().st_mode & 0o777 == 0o600
    wrong = tmp_path / "wrong.key"
    wrong.write_text("00" * 32 + "\n")
    conf = tmp_path / "intruder.toml"
    text = (c.state / "gsched.toml").read_text().replace(
        "[controller]\n", f'[controller]\nkey_file = "{wrong}"\n')
    conf.write_text(text)
    log = tmp_path / "intruder.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gsched.cli.main", "agent", "--config", str(conf),
             "--name", "intruder", "--state-dir", str(tmp_path / "intruder")],
            stdout=fh, stderr=fh, env=c.env)
    try:
        c.wait_for(lambda: "wrong cluster key" in (c.state / "controller.log").read_text(),
                   timeout=20, what="refusal logged")
        assert "intruder" not in c.run("ginfo", "-N", "-h", "-o", "%N").out
    finally:
        proc.kill()
        proc.wait()


def test_expected_start_of_a_blocked_job(local_cluster: LocalCluster) -> None:
    """gqueue --start and gctl show job give the backfill plan's start and nodes."""
    c = local_cluster
    big = c.submit("-N2", "--gres=gpu:4", "-t", "10", "--wrap", "sleep 300")
    c.wait_state(big, "RUNNING")
    started = time.time()
    waiting = c.submit("-N2", "--gres=gpu:4", "-t", "5", "--wrap", "true")

    def planned() -> list[str]:
        return c.run("gqueue", "--start", "-h", "-j", str(waiting), "-o", "%i %S %Y").out.split()

    c.wait_for(lambda: len(planned()) == 3 and planned()[1] != "N/A", timeout=20,
               what="a planned start")
    job_id, start, nodes = planned()
    assert job_id == str(waiting) and nodes == "node[1-2]"
    when = time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%S"))
    assert started + 560 < when < started + 640, (start, started)  # when `big` hits its limit
    show = c.run("gctl", "show", "job", str(waiting)).out
    assert f"StartTime={start} " in show and "JobState=PENDING" in show
    assert "RunTime=00:00:00" in show
    assert c.run("gcancel", str(big), str(waiting)).rc == 0
