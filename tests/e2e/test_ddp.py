"""Real PyTorch DDP (gloo, CPU) under gsched: torchrun, srun-per-task, resume after a node loss.

The cluster runs inside a network namespace made for the test, whose /etc/hosts
(``ip netns exec`` binds /etc/netns/NAME/hosts) resolves the node names, so the
scripts can use ``MASTER_ADDR=$(scontrol show hostnames ... | head -n 1)`` as real
training repositories do.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LocalCluster, start_cluster, stop_cluster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                       reason="torch not installed (pip install '.[test]' installs torch==2.13.0)"),
    pytest.mark.skipif(os.getuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2 for a private network namespace"),
]

TRAIN = Path(__file__).parent / "ddp" / "train.py"


@pytest.fixture
def ddp_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    ns = f"gsddp{os.getpid()}"
    etc = Path("/etc/netns") / ns
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        etc.mkdir(parents=True, exist_ok=True)
        # the node names, and this host's own name (torchrun's c10d rendezvous
        # advertises it), all on the namespace's loopback
        (etc / "hosts").write_text(
            f"127.0.0.1 localhost node1 node2 node3 {socket.gethostname()}\n"
        )
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        c = start_cluster(tmp_path, agents=3, gpus=2, cpus=4,
                          prefix=("ip", "netns", "exec", ns))
        try:
            yield c
        finally:
            stop_cluster(c)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(etc, ignore_errors=True)


def losses(text: str, rank: int = 0) -> list[float]:
    return [float(m) for m in re.findall(rf"rank {rank}/\d+ restart \d+ step \d+ loss (\S+)", text)]


def test_torchrun_two_nodes(ddp_cluster: LocalCluster) -> None:
    c = ddp_cluster
    ckpt = c.workdir / "ckpt-torchrun"
    ckpt.mkdir()
    script = c.workdir / "torchrun.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=ddp --nodes=2 --ntasks-per-node=1 --gres=gpu:2 --exclusive "
        "--output=%x-%j.out\n"
        "MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)\n"
        "srun --kill-on-bad-exit=1 --jobid $SLURM_JOB_ID bash -c 'torchrun --nnodes $SLURM_NNODES "
        "--nproc_per_node 2 --node_rank $SLURM_PROCID --rdzv_backend c10d "
        f"--rdzv_endpoint $MASTER_ADDR:29500 {TRAIN} {ckpt} 12'\n",
    )
    job_id = c.submit(str(script))
    state = c.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=240)
    out = (c.workdir / f"ddp-{job_id}.out").read_text()
    assert state == "COMPLETED", out[-3000:]
    for rank in range(4):
        assert f"rank {rank} done" in out, out[-3000:]
    first, *_, last = losses(out)
    assert last < first, (first, last)
    assert (ckpt / "ckpt.pt").exists()


def test_one_srun_task_per_gpu(ddp_cluster: LocalCluster) -> None:
    c = ddp_cluster
    ckpt = c.workdir / "ckpt-srun"
    ckpt.mkdir()
    script = c.workdir / "pertask.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=pertask --nodes=2 --ntasks-per-node=2 --gpus-per-node=2 "
        "--output=%x-%j.out\n"
        f"srun --gpus-per-task=1 python {TRAIN} {ckpt} 12\n",
    )
    job_id = c.submit(str(script))
    state = c.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=240)
    out = (c.workdir / f"pertask-{job_id}.out").read_text()
    assert state == "COMPLETED", out[-3000:]
    assert all(f"rank {r}/4 restart 0 step 11" in out for r in range(4)), out[-3000:]
    first, *_, last = losses(out)
    assert last < first


def test_resume_after_node_loss(ddp_cluster: LocalCluster) -> None:
    c = ddp_cluster
    ckpt = c.workdir / "ckpt-resume"
    ckpt.mkdir()
    script = c.workdir / "resume.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=resume --nodes=2 --ntasks-per-node=1 --output=%x-%j.out\n"
        'echo "attempt $SLURM_RESTART_COUNT on $SLURM_JOB_NODELIST"\n'
        f"srun --kill-on-bad-exit=1 python {TRAIN} {ckpt} 40 0.25\n",
    )
    started = time.monotonic()
    job_id = c.submit(str(script))
    out_file = c.workdir / f"resume-{job_id}.out"
    c.wait_for(lambda: out_file.exists() and len(losses(out_file.read_text())) >= 6,
               timeout=120, what="training progress")
    nodes = c.run("gqueue", "-h", "-j", str(job_id), "-o", "%N").out.strip()
    victim = c.run("gctl", "show", "hostnames", nodes).out.split()[1]
    os.kill(c.pid(victim), signal.SIGKILL)
    state = c.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL"}, timeout=300)
    wall = time.monotonic() - started
    out = out_file.read_text()
    assert state == "COMPLETED", out[-3000:]
    assert "attempt 1 on" in out and victim not in out.split("attempt 1 on")[1].splitlines()[0]
    resumed = re.search(r"rank 0 resumed at step (\d+)", out)
    assert resumed and int(resumed.group(1)) >= 6, out[-3000:]
    after = out.split("attempt 1 on")[1]
    steps = [int(s) for s in re.findall(r"rank 0/2 restart 1 step (\d+)", after)]
    assert steps[0] == int(resumed.group(1)) and steps[-1] == 39, steps
    print(f"resume test: total wall time {wall:.1f}s")


def test_kill_on_bad_exit_fails_the_job_with_the_task_code(ddp_cluster: LocalCluster) -> None:
    c = ddp_cluster
    ckpt = c.workdir / "ckpt-fail"
    ckpt.mkdir()
    script = c.workdir / "fail.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=fail --nodes=2 --ntasks-per-node=1 --output=%x-%j.out\n"
        f"srun --kill-on-bad-exit=1 python {TRAIN} {ckpt} 200 0.1 1\n",
    )
    job_id = c.submit(str(script))
    c.wait_state(job_id, "RUNNING", timeout=60)
    t0 = time.monotonic()
    state = c.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=120)
    assert state == "FAILED"
    assert time.monotonic() - t0 < 60
    show = c.run("gctl", "show", "job", str(job_id)).out
    assert "ExitCode=3:0" in show, show
