"""Failure handling with real processes: lost agents, frozen agents, GPU faults.

Every job here writes ``<attempt> <time>`` lines to a progress file while it runs;
the tests check that two attempts of one job never ran at the same time.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import LocalCluster

pytestmark = pytest.mark.e2e

PROGRESS = (
    "#!/bin/bash\n"
    "#SBATCH -o %j.out --open-mode=append\n"
    'echo "attempt=$SLURM_RESTART_COUNT last=${GSCHED_LAST_FAILURE:-none} node=$SLURMD_NODENAME"\n'
    "for i in $(seq 1 {ticks}); do\n"
    '  echo "$SLURM_RESTART_COUNT $(date +%s.%N)" >> progress-$SLURM_JOB_ID\n'
    "  sleep 0.2\n"
    "done\n"
)


def submit_progress(c: LocalCluster, ticks: int, *args: str) -> int:
    script = c.workdir / f"progress-{ticks}.sh"
    script.write_text(PROGRESS.replace("{ticks}", str(ticks)))
    return c.submit(*args, str(script))


def attempts(c: LocalCluster, job_id: int) -> dict[int, tuple[float, float]]:
    """attempt -> (first, last) progress timestamp."""
    spans: dict[int, tuple[float, float]] = {}
    for line in (c.workdir / f"progress-{job_id}").read_text().splitlines():
        a, t = line.split()
        lo, hi = spans.get(int(a), (float("inf"), 0.0))
        spans[int(a)] = (min(lo, float(t)), max(hi, float(t)))
    return spans


def assert_never_overlapped(spans: dict[int, tuple[float, float]]) -> None:
    ordered = [spans[a] for a in sorted(spans)]
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert end < start, f"attempts overlapped: {spans}"


def node_of(c: LocalCluster, job_id: int) -> str:
    return c.run("gqueue", "-h", "-j", str(job_id), "-o", "%N").out.strip()


def node_state(c: LocalCluster, node: str) -> str:
    return c.run("ginfo", "-h", "-N", "-n", node, "-o", "%T %E").out.strip()


def test_lost_agent_job_requeued_elsewhere_and_fenced(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = submit_progress(c, 100)
    c.wait_state(job_id, "RUNNING")
    node = node_of(c, job_id)
    c.wait_for(lambda: (c.workdir / f"progress-{job_id}").exists(), what="progress")
    killed = time.monotonic()
    os.kill(c.pid(node), signal.SIGKILL)  # the host "loses power": the agent is gone
    c.wait_for(lambda: node_of(c, job_id) not in ("", node) and c.state_of(job_id) == "RUNNING",
               timeout=40, what="job running again elsewhere")
    elapsed = time.monotonic() - killed
    assert elapsed < 20, f"running again after {elapsed:.1f}s"
    assert "down" in node_state(c, node) and "Not responding" in node_state(c, node)
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=60) == "COMPLETED"
    out = (c.workdir / f"{job_id}.out").read_text()
    assert "attempt=1 last=node_lost" in out, out
    spans = attempts(c, job_id)
    assert set(spans) == {0, 1}
    assert_never_overlapped(spans)
    show = c.run("gctl", "show", "job", str(job_id)).out
    assert "Restarts=1" in show
    assert "LastFailure=node_lost" in show
    assert f"Attempt=0 NodeList={node} " in show and "Ended=node_lost" in show
    assert "Attempt=1 " in show and "Ended=COMPLETED" in show
    acct = c.run("gacct", "-j", str(job_id), "-P", "-n", "-o", "JobID,State,Restarts")
    assert acct.out.splitlines()[0] == f"{job_id}|COMPLETED|1", acct.out
    dup = c.run("gacct", "-D", "-j", str(job_id), "-P", "-n", "-o", "JobID,State,Restarts,NodeList")
    lines = dup.out.splitlines()
    assert lines[0] == f"{job_id}|NODE_FAIL|0|{node}", dup.out
    assert lines[1].startswith(f"{job_id}|COMPLETED|1|") and not lines[1].endswith(node), dup.out
    nf = c.run("gacct", "-D", "-s", "NF", "-j", str(job_id), "-P", "-n", "-o", "JobID,State")
    assert nf.out == f"{job_id}|NODE_FAIL\n", nf.out


def test_no_requeue_job_ends_node_fail(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = submit_progress(c, 200, "--no-requeue")
    c.wait_state(job_id, "RUNNING")
    node = node_of(c, job_id)
    os.kill(c.pid(node), signal.SIGKILL)
    assert c.wait_state(job_id, {"NODE_FAIL", "PENDING", "COMPLETED"}, timeout=40) == "NODE_FAIL"


def test_frozen_agent_is_fenced_then_returns_to_service(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = submit_progress(c, 100)
    c.wait_state(job_id, "RUNNING")
    node = node_of(c, job_id)
    pid = c.pid(node)
    os.kill(pid, signal.SIGSTOP)  # a partition: the stream stays open but says nothing
    try:
        c.wait_for(lambda: "*" in c.run("ginfo", "-h", "-N", "-n", node, "-o", "%t").out,
                   timeout=15, what="node suspect")
        c.wait_for(lambda: node_of(c, job_id) not in ("", node) and
                   c.state_of(job_id) == "RUNNING", timeout=40, what="requeued elsewhere")
    finally:
        os.kill(pid, signal.SIGCONT)
    c.wait_for(lambda: node_state(c, node).startswith(("idle", "mixed")), timeout=30,
               what="node back in service")
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=60) == "COMPLETED"
    spans = attempts(c, job_id)
    assert set(spans) == {0, 1}
    assert_never_overlapped(spans)


def test_gpu_xid_requeues_job_and_drains_node(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = submit_progress(c, 60, "--gres=gpu:2")
    c.wait_state(job_id, "RUNNING")
    node = node_of(c, job_id)
    show = c.run("gctl", "show", "job", "-d", str(job_id)).out
    assert show
    faults = c.state / f"agent-{node}" / "fake-gpu-faults.json"
    faults.write_text(json.dumps({"1": "xid 79"}))
    c.wait_for(lambda: node_of(c, job_id) not in ("", node) and
               c.state_of(job_id) == "RUNNING", timeout=30, what="requeued off the bad GPU")
    state = node_state(c, node)
    assert state.startswith("drain") and "xid 79" in state, state
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=60) == "COMPLETED"
    out = (c.workdir / f"{job_id}.out").read_text()
    assert "attempt=1 last=gpu_xid_79" in out, out
    assert_never_overlapped(attempts(c, job_id))
    # the operator resets the GPU, clears the fault and resumes the node
    faults.write_text("{}")
    assert c.run("gctl", "update", f"NodeName={node}", "State=RESUME").rc == 0


def test_signal_before_time_limit(local_cluster: LocalCluster) -> None:
    c = local_cluster
    script = c.workdir / "ckpt.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH -t 0:6 --signal=B:USR1@4 -o ckpt.out\n"
        "trap 'echo checkpoint; exit 0' USR1\n"
        "for i in $(seq 1 100); do sleep 0.1; done\n"
    )
    job_id = c.submit(str(script))
    assert c.wait_state(job_id, {"COMPLETED", "TIMEOUT", "FAILED"}, timeout=30) == "COMPLETED"
    assert (c.workdir / "ckpt.out").read_text() == "checkpoint\n"


def test_requeuehold(local_cluster: LocalCluster) -> None:
    c = local_cluster
    job_id = submit_progress(c, 300)
    c.wait_state(job_id, "RUNNING")
    assert c.run("gctl", "requeuehold", str(job_id)).rc == 0
    c.wait_for(lambda: c.run("gqueue", "-h", "-j", str(job_id), "-o", "%T %r").out.split()
               == ["PENDING", "JobHeldUser"], timeout=30, what="held after requeue")
    assert c.run("gcancel", str(job_id)).rc == 0
    assert c.wait_state(job_id, "CANCELLED")
    assert Path(c.workdir / f"progress-{job_id}").exists()


def test_requeue_exit_restarts_with_the_reason_then_completes(local_cluster: LocalCluster) -> None:
    c = local_cluster
    script = c.workdir / "retry.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH -o retry.out --open-mode=append --requeue-exit=75,99\n"
        'echo "attempt=$SLURM_RESTART_COUNT last=${GSCHED_LAST_FAILURE:-none}"\n'
        '[ "$SLURM_RESTART_COUNT" -lt 2 ] && exit 75\n'
        "exit 0\n"
    )
    job_id = c.submit(str(script))
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=40) == "COMPLETED"
    assert (c.workdir / "retry.out").read_text().splitlines() == [
        "attempt=0 last=none", "attempt=1 last=exit_75", "attempt=2 last=exit_75",
    ]
    dup = c.run("gacct", "-X", "-D", "-j", str(job_id), "-P", "-n", "-o", "State,Restarts")
    assert dup.out.splitlines() == ["REQUEUED|0", "REQUEUED|1", "COMPLETED|2"], dup.out
    # a bad list is refused at submit, as sbatch refuses a bad option value
    bad = c.run("gsub", "--requeue-exit=x", "--wrap", "true")
    assert bad.rc != 0 and "Invalid --requeue-exit specification" in bad.err


def test_hot_gpu_warns_with_signal_then_requeues(local_cluster: LocalCluster) -> None:
    c = local_cluster
    script = c.workdir / "hot.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --gres=gpu:4 -o hot.out --open-mode=append --signal=B:USR1@30\n"
        'echo "attempt=$SLURM_RESTART_COUNT last=${GSCHED_LAST_FAILURE:-none}"\n'
        '[ "$SLURM_RESTART_COUNT" -gt 0 ] && exit 0\n'
        "trap 'echo checkpoint at $(date +%s.%N) > ckpt-$SLURM_RESTART_COUNT; exit 0' USR1\n"
        "for i in $(seq 1 600); do sleep 0.1; done\n"
    )
    job_id = c.submit(str(script))
    c.wait_state(job_id, "RUNNING")
    node = node_of(c, job_id)
    faults = c.state / f"agent-{node}" / "fake-gpu-faults.json"
    hot_at = time.time()
    faults.write_text(json.dumps({"2": "temperature 97C > 90C"}))
    c.wait_for(lambda: (c.workdir / "ckpt-0").exists(), timeout=20, what="checkpoint on USR1")
    assert c.wait_state(job_id, {"COMPLETED", "FAILED"}, timeout=60) == "COMPLETED"
    warned_after = float((c.workdir / "ckpt-0").read_text().split()[-1]) - hot_at
    assert warned_after < 10, warned_after  # warned at once, not at the 30 s deadline
    assert (c.workdir / "hot.out").read_text().splitlines() == [
        "attempt=0 last=none", "attempt=1 last=gpu_temperature",
    ]
    faults.write_text("{}")
