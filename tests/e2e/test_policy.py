"""Scheduling policy end to end: accounts/QOS set with gctl, limits, gprio/gshare,
preemption, and fair-share usage surviving a controller restart."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys

from .conftest import LocalCluster, start_cluster, stop_cluster

ME = pwd.getpwuid(os.getuid()).pw_name


def ok(c: LocalCluster, *args: str) -> str:
    r = c.run(*args)
    assert r.rc == 0, (args, r.err)
    return r.out


def reason(c: LocalCluster, job_id: int) -> str:
    return ok(c, "gqueue", "-h", "-j", str(job_id), "-o", "%r").strip()


def test_accounts_qos_limits_priority_and_preemption(local_cluster: LocalCluster) -> None:
    c = local_cluster
    ok(c, "gctl", "create", "qos", "high", "Priority=100", "MaxTRESPerUser=gres/gpu=4",
       "Preempt=normal")
    ok(c, "gctl", "create", "account", "lab", "Fairshare=2")
    ok(c, "gctl", "create", "user", ME, "Account=lab", "DefaultAccount=lab")
    assert "high" in ok(c, "gctl", "show", "qos")

    bad = c.run("gsub", "-q", "nope", "--wrap", "true")
    assert bad.rc == 1
    assert bad.err == "gsub: error: Batch job submission failed: Invalid qos specification\n"
    bad = c.run("gsub", "-A", "elsewhere", "--wrap", "true")
    assert "Invalid account or account/partition combination specified" in bad.err
    bad = c.run("gsub", "-q", "high", "--gres=gpu:4", "-N", "2", "--wrap", "true")
    assert "Job violates accounting/QOS policy" in bad.err

    # MaxTRESPerUser=gres/gpu=4: the third 2-GPU job waits with SLURM's reason
    ids = [c.submit("-q", "high", "--gres=gpu:2", "--wrap", "sleep 60") for _ in range(3)]
    c.wait_state(ids[1], "RUNNING")
    c.wait_for(lambda: reason(c, ids[2]) == "QOSMaxGRESPerUser", what="limit reason")
    show = ok(c, "gctl", "show", "job", str(ids[2]))
    assert "Account=lab QOS=high" in show and "Limit=QOS=high MaxTRESPerUser=gres/gpu=4" in show
    assert re.search(r"PriorityFactors=Age=\d+ FairShare=\d+ JobSize=0 Partition=1000 QOS=1000 "
                     r"Nice=0 Tier=1\n", show)
    prio = ok(c, "gprio", "-l").splitlines()
    assert prio[0].split()[:4] == ["JOBID", "PARTITION", "USER", "ACCOUNT"]
    assert prio[1].split()[0] == str(ids[2]) and prio[1].split()[-2:] == ["high", "1"]
    share = ok(c, "gshare", "-a").splitlines()
    assert share[2].split()[:2] == ["lab", "2"] and share[3].split()[:2] == ["lab", ME]
    # sprio/sshare shims run the same commands
    shims = c.state / "shims"
    subprocess.run([sys.executable, "-m", "gsched.cli.main", "shims", str(shims)], check=True,
                   env=c.env, capture_output=True)
    r = subprocess.run([str(shims / "sprio")], env=c.env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split()[0] == "JOBID"
    ok(c, "gcancel", *map(str, ids))

    # preemption: normal jobs fill the cluster; a high job requeues the younger one
    ok(c, "gctl", "modify", "qos", "high", "set", "MaxTRESPerUser=")
    low = [c.submit("--gres=gpu:4", "--wrap", "sleep 120") for _ in range(2)]
    for j in low:
        c.wait_state(j, "RUNNING")
    urgent = c.submit("-q", "high", "--gres=gpu:4", "--wrap", "sleep 60")
    c.wait_state(urgent, "RUNNING", timeout=60)
    c.wait_state(low[1], "PENDING")
    assert c.state_of(low[0]) == "RUNNING"
    shown = ok(c, "gctl", "show", "job", str(low[1]))
    assert "Restarts=1" in shown and "Ended=preempted" in shown
    ok(c, "gcancel", str(urgent), *map(str, low))


def test_usage_survives_controller_restart(tmp_path: object) -> None:
    c = start_cluster(tmp_path, agents=1)  # type: ignore[arg-type]
    try:
        ok(c, "gctl", "create", "account", "lab")
        ok(c, "gctl", "create", "user", ME, "Account=lab")
        job = c.submit("--gres=gpu:2", "--wrap", "sleep 3")
        c.wait_state(job, "COMPLETED", timeout=60)

        def usage() -> int:
            rows = ok(c, "gshare", "-a", "-P", "-n").splitlines()
            return int(next(r for r in rows if r.startswith("lab|" + ME)).split("|")[4])

        before = usage()
        assert before >= 4  # 2 GPUs x ~3 s in GPU-seconds
    finally:
        stop_cluster(c)
    c = start_cluster(tmp_path, agents=1)  # type: ignore[arg-type]
    try:
        assert usage() == before
        assert re.search(r"\blab\b", ok(c, "gctl", "show", "account"))  # runtime change kept
    finally:
        stop_cluster(c)
