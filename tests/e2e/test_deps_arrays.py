"""Dependencies, --begin, admin holds and job arrays through the installed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import LocalCluster

pytestmark = pytest.mark.e2e


def _line(c: LocalCluster, fmt: str, *ids: str, extra: tuple[str, ...] = ()) -> str:
    r = c.run("gqueue", "-h", "-t", "all", *extra, "-o", fmt, "-j", ",".join(ids))
    assert r.rc == 0, r.err
    return r.out.strip()


def test_dependencies_end_to_end(local_cluster: LocalCluster) -> None:
    c = local_cluster
    up = c.submit("--wrap", "sleep 2")
    ok = c.submit(f"--dependency=afterok:{up}", "--wrap", "true")
    notok = c.submit("-d", f"afternotok:{up}", "--kill-on-invalid-dep=yes", "--wrap", "true")
    keep = c.submit("-d", f"afternotok:{up}", "--wrap", "true")
    assert _line(c, "%i %T %r", str(ok)) == f"{ok} PENDING Dependency"
    show = c.run("gctl", "show", "job", str(ok)).out
    assert f"Reason=Dependency Dependency=afterok:{up}(unfulfilled)" in show
    assert _line(c, "%E", str(ok)) == f"afterok:{up}(unfulfilled)"
    assert c.wait_state(ok, "COMPLETED", timeout=60) == "COMPLETED"
    assert c.wait_state(notok, "CANCELLED", timeout=30) == "CANCELLED"
    c.wait_for(lambda: "DependencyNeverSatisfied" in _line(c, "%r", str(keep)),
               what="DependencyNeverSatisfied")
    show = c.run("gctl", "show", "job", str(keep)).out
    assert f"Dependency=afternotok:{up}(failed)" in show
    # a dependency can be changed (or removed) while the job waits
    assert c.run("gctl", "update", f"JobId={keep}", "Dependency=").rc == 0
    assert c.wait_state(keep, "COMPLETED", timeout=30) == "COMPLETED"


def test_bad_dependency_is_refused(local_cluster: LocalCluster) -> None:
    c = local_cluster
    r = c.run("gsub", "-d", "afterok:abc", "--wrap", "true")
    assert (r.rc, r.err) == (1, "gsub: error: Batch job submission failed: "
                                "Job dependency problem\n")
    r = c.run("gsub", "-d", "afterok:1,afterany:2?afterok:3", "--wrap", "true")
    assert r.rc == 1 and "Job dependency problem" in r.err
    # a job id the controller does not know is lifted, as in SLURM 22.05
    job = c.submit("-d", "afterok:999999", "--wrap", "true")
    assert c.wait_state(job, "COMPLETED", timeout=30) == "COMPLETED"


def test_singleton_and_after(local_cluster: LocalCluster) -> None:
    c = local_cluster
    first = c.submit("-J", "solo", "--wrap", "sleep 2")
    second = c.submit("-J", "solo", "-d", "singleton", "--wrap", "true")
    after = c.submit("-d", f"after:{first}", "--wrap", "true")
    assert c.wait_state(after, "COMPLETED", timeout=30) == "COMPLETED"
    assert c.state_of(second) == "PENDING"
    assert c.wait_state(second, "COMPLETED", timeout=30) == "COMPLETED"


def test_begin_time(local_cluster: LocalCluster) -> None:
    c = local_cluster
    later = c.submit("--begin=now+1hour", "--wrap", "true")
    soon = c.submit("-b", "now+2", "--wrap", "true")
    assert _line(c, "%i %r", str(later)) == f"{later} BeginTime"
    assert c.wait_state(soon, "COMPLETED", timeout=30) == "COMPLETED"
    assert c.state_of(later) == "PENDING"
    assert c.run("gctl", "update", f"JobId={later}", "StartTime=now").rc == 0
    assert c.wait_state(later, "COMPLETED", timeout=30) == "COMPLETED"
    r = c.run("gsub", "--begin=whenever", "--wrap", "true")
    assert (r.rc, r.err) == (1, "gsub: error: Invalid time specification whenever\n")


def test_admin_hold_is_not_released_by_the_user(local_cluster: LocalCluster) -> None:
    c = local_cluster
    conf = Path("/tmp") / f"gsched-e2e-hold-{os.getpid()}.toml"
    shutil.copy(c.state / "gsched.toml", conf)
    conf.chmod(0o644)
    c.open_to_other_users()
    bindir = Path(sys.executable).parent
    env = dict(c.env, GSCHED_CONF=str(conf))
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

    def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*nobody, str(bindir / cmd[0]), *cmd[1:]], capture_output=True,
                              text=True, env=env, cwd="/tmp", timeout=30)

    try:
        p = as_nobody("gsub", "--parsable", "-H", "--begin=now+1hour", "--wrap", "true")
        assert p.returncode == 0, p.stderr
        job = int(p.stdout.strip())
        assert as_nobody("gctl", "release", str(job)).returncode == 0  # own user hold
        # the operator holds it: an admin hold the owner cannot release
        assert c.run("gctl", "hold", str(job)).rc == 0
        assert _line(c, "%r %Q", str(job)) == "JobHeldAdmin 0"
        p = as_nobody("gctl", "release", str(job))
        assert p.returncode == 1 and "Access/permission denied" in p.stderr
        assert _line(c, "%r", str(job)) == "JobHeldAdmin"
        assert c.run("gctl", "release", str(job)).rc == 0
        assert c.run("gctl", "uhold", str(job)).rc == 0
        assert _line(c, "%r", str(job)) == "JobHeldUser"
        assert c.run("gcancel", str(job)).rc == 0
    finally:
        conf.unlink(missing_ok=True)


def test_array_tasks_env_paths_and_accounting(local_cluster: LocalCluster) -> None:
    c = local_cluster
    r = c.run("gsub", "--array=0-4:2,7", "-o", "out/%A/task-%a.txt", "--wrap",
              'echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_JOB_ID '
              '$SLURM_ARRAY_TASK_COUNT $SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_MAX"')
    assert r.rc == 0, r.err
    assert r.out.startswith("Submitted batch job ")
    array = r.out.split()[-1]
    (c.workdir / "out" / array).mkdir(parents=True, exist_ok=True)

    def done() -> bool:
        return len(list((c.workdir / "out" / array).glob("task-*.txt"))) == 4 and all(
            line.endswith("COMPLETED") for line in c.run(
                "gqueue", "-h", "-t", "all", "-o", "%i %T", "-j", array).out.splitlines()
        )

    c.wait_for(done, timeout=60, what="4 array tasks")
    seen = {}
    for task in (0, 2, 4, 7):
        fields = (c.workdir / "out" / array / f"task-{task}.txt").read_text().split()
        assert fields[0] == array and fields[1] == str(task)
        assert fields[3:] == ["4", "0", "7"]
        seen[task] = fields[2]  # SLURM_JOB_ID: the task's own id
    assert len(set(seen.values())) == 4 and array in seen.values()
    lines = c.run("gacct", "-n", "-X", "-j", array, "-o", "JobID,State").out.split()
    assert sorted(w for w in lines if "_" in w) == sorted(f"{array}_{t}" for t in (0, 2, 4, 7))
    assert lines.count("COMPLETED") == 4


def test_array_throttle_cancel_and_show(local_cluster: LocalCluster) -> None:
    c = local_cluster
    array = str(c.submit("--array=0-9%2", "--wrap", "sleep 60"))
    c.wait_for(lambda: len([ln for ln in c.run("gqueue", "-h", "-o", "%i %T", "-j", array)
                            .out.splitlines() if ln.endswith("RUNNING")]) == 2,
               what="2 running tasks")
    out = c.run("gqueue", "-h", "-o", "%i %T %r", "-j", array).out.splitlines()
    assert f"{array}_[2-9%2] PENDING JobArrayTaskLimit" in out, out
    assert f"{array}_0 RUNNING None" in out and f"{array}_1 RUNNING None" in out
    expanded = c.run("gqueue", "-h", "-r", "-o", "%i", "-j", array).out.split()
    assert sorted(expanded, key=lambda x: int(x.split("_")[1])) == [
        f"{array}_{t}" for t in range(10)]
    # an update by the array's id changes every pending task
    assert c.run("gctl", "update", f"JobId={array}", "TimeLimit=5:00").rc == 0
    assert f"{array}_[2-9%2] 5:00" in c.run("gqueue", "-h", "-o", "%i %l", "-j", array).out
    assert c.run("gctl", "update", f"JobId={array}_9", "TimeLimit=4:00").rc == 0
    out = c.run("gqueue", "-h", "-o", "%i %l", "-j", array).out.splitlines()
    assert f"{array}_9 4:00" in out and f"{array}_[2-8%2] 5:00" in out, out
    # cancel two pending tasks and one running one: task 2 takes the freed slot
    r = c.run("gcancel", "-v", f"{array}_[3-4]", f"{array}_0")
    assert r.rc == 0
    for task in (0, 3, 4):
        assert f"gcancel: Terminating job {array}_{task}\n" in r.err, r.err
    c.wait_for(lambda: f"{array}_[5-8%2] PENDING" in c.run(
        "gqueue", "-h", "-o", "%i %T", "-j", array).out.splitlines(), what="remainder 5-8")
    out = c.run("gqueue", "-h", "-o", "%i %T", "-t", "all", "-j", array).out.splitlines()
    for task in (0, 3, 4):
        assert f"{array}_{task} CANCELLED" in out, out
    show = c.run("gctl", "show", "job", f"{array}_3").out
    assert f"ArrayJobId={array} ArrayTaskId=3 " in show and "JobState=CANCELLED" in show
    show = c.run("gctl", "show", "job", f"{array}_1").out
    assert f"ArrayJobId={array} ArrayTaskId=1 " in show and "JobState=RUNNING" in show
    assert c.run("gqueue", "-h", "-o", "%i", "-j", f"{array}_1").out.split() == [f"{array}_1"]
    assert c.run("gqueue", "-h", "-t", "all", "-o", "%i", "-j", f"{array}_[3-4]").out.split() == [
        f"{array}_3", f"{array}_4"]
    # hold the whole remainder, requeue one running task on its own
    c.wait_for(lambda: f"{array}_2 RUNNING" in c.run(
        "gqueue", "-h", "-o", "%i %T", "-j", array).out, what="task 2 running")
    assert c.run("gctl", "requeue", f"{array}_2").rc == 0
    c.wait_for(lambda: f"{array}_2 PENDING" in c.run(
        "gqueue", "-h", "-o", "%i %T", "-j", array).out, what="task 2 requeued")
    assert c.run("gcancel", array).rc == 0
    c.wait_for(lambda: set(c.run("gqueue", "-h", "-t", "all", "-o", "%T", "-j", array)
                           .out.split()) == {"CANCELLED"}, what="every task cancelled")
    out = c.run("gqueue", "-h", "-t", "all", "-o", "%i", "-j", array).out.split()
    assert f"{array}_[6-8%2]" in out or f"{array}_[5-8%2]" in out, out


def test_max_array_size(local_cluster: LocalCluster) -> None:
    c = local_cluster
    r = c.run("gsub", "--array=0-1001", "--wrap", "true")
    assert (r.rc, r.err) == (1, "gsub: error: Batch job submission failed: "
                                "Invalid job array specification\n")


def test_controller_kill9_keeps_arrays_and_dependencies(local_cluster: LocalCluster) -> None:
    import signal
    import time

    from .conftest import restart_controller

    c = local_cluster
    # 8 CPUs per node, 2 nodes: 4-CPU tasks, 2 at a time (throttle), 3 tasks in all
    array = str(c.submit("--array=0-2%2", "-c", "4", "-o", "a-%A_%a.out", "--wrap",
                         "sleep 3; echo $SLURM_ARRAY_TASK_ID"))
    after = c.submit("-d", f"afterok:{array}", "-o", "after.out", "--wrap", "echo after")
    c.wait_for(lambda: c.run("gqueue", "-h", "-t", "R", "-o", "%i", "-j", array)
               .out.count("\n") == 2, what="2 tasks running")
    os.kill(c.pid("controller"), signal.SIGKILL)
    time.sleep(0.5)
    restart_controller(c)
    c.wait_for(lambda: c.run("gctl", "ping").rc == 0, what="controller back")
    out = c.run("gqueue", "-h", "-o", "%i %T %r", "-j", f"{array},{after}").out.splitlines()
    assert f"{after} PENDING Dependency" in out, out
    assert c.wait_state(after, "COMPLETED", timeout=60) == "COMPLETED"
    assert (c.workdir / "after.out").read_text() == "after\n"
    for t in range(3):
        assert (c.workdir / f"a-{array}_{t}.out").read_text() == f"{t}\n"
