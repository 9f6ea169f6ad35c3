"""Job steps (grun / srun) across a multi-node allocation, with real processes."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LocalCluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = start_cluster(tmp_path_factory.mktemp("steps"), agents=3, gpus=4)
    try:
        yield c
    finally:
        stop_cluster(c)


def run_batch(c: LocalCluster, body: str, directives: str, name: str) -> tuple[str, int]:
    script = c.workdir / f"{name}.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH -o {name}-%j.out {directives}\n{body}")
    job_id = c.submit(str(script))
    state = c.wait_state(job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, timeout=60)
    return (c.workdir / f"{name}-{job_id}.out").read_text() + f"[{state}]", job_id


def test_srun_environment_and_layout(three_nodes: LocalCluster) -> None:
    c = three_nodes
    out, _ = run_batch(
        c,
        "srun -l bash -c 'echo $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $NODE_RANK "
        "$SLURM_PROCID $SLURM_LOCALID $SLURM_NODEID $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES "
        "$SLURM_STEP_ID $SLURM_STEP_NUM_TASKS $SLURM_STEP_NUM_NODES $SLURM_STEP_TASKS_PER_NODE "
        "$SLURM_STEP_NODELIST $MASTER_ADDR' | sort\n",
        "-N2 --ntasks-per-node=2 --gpus-per-node=2",
        "env",
    )
    lines = [ln for ln in out.splitlines() if ln[:1].isdigit()]
    assert len(lines) == 4, out
    nodes = [ln.split()[9] for ln in lines]
    assert nodes[0] == nodes[1] != nodes[2] == nodes[3]
    first = lines[0].split()
    assert first[1:9] == ["0", "0", "4", "2", "0", "0", "0", "0"]
    third = lines[2].split()
    assert third[1:9] == ["2", "0", "4", "2", "1", "2", "0", "1"]
    for ln in lines:
        f = ln.split()
        assert f[10] == "0,1" and f[11] == "0" and f[12] == "4" and f[13] == "2"
        assert f[14] == "2(x2)" and f[16] == "127.0.0.1"
    assert out.endswith("[COMPLETED]")


def test_step_exit_codes_gpu_binding_and_parallel_steps(three_nodes: LocalCluster) -> None:
    c = three_nodes
    body = (
        "set -o pipefail\n"
        "srun -n2 bash -c 'exit $((SLURM_PROCID + 2))'; echo \"rc=$?\"\n"
        "srun --gpus-per-task=1 -n2 -N1 bash -c 'echo gpu=$CUDA_VISIBLE_DEVICES' | sort\n"
        "hosts=($(scontrol show hostnames))\n"
        "srun -N1 -w ${hosts[0]} bash -c 'sleep 1; echo a=$SLURMD_NODENAME' &\n"
        "srun -N1 -w ${hosts[1]} bash -c 'sleep 1; echo b=$SLURMD_NODENAME' &\n"
        "wait\n"
        "srun -N1 false | tee /dev/null; echo \"pipe=$?\"\n"
        "srun -n1 bash -c 'kill -9 $$'; echo \"sig=$?\"\n"
    )
    start = time.monotonic()
    out, job_id = run_batch(c, body, "-N2 --ntasks-per-node=2 --gpus-per-node=2", "codes")
    assert "rc=3" in out
    assert "gpu=0\ngpu=1\n" in out
    assert "a=" in out and "b=" in out
    assert "pipe=1" in out
    assert "sig=137" in out
    assert time.monotonic() - start < 30
    # every step is in the accounting, as sacct shows them: JOBID.batch then JOBID.STEPID
    acct = c.run("gacct", "-j", str(job_id), "-P", "-n", "-o", "JobID,JobName,State,ExitCode,NTasks")
    rows = [ln.split("|") for ln in acct.out.splitlines()]
    assert [r[0] for r in rows] == [str(job_id), f"{job_id}.batch"] + [
        f"{job_id}.{i}" for i in range(6)
    ], acct.out
    steps = {r[0].split(".")[1]: r[1:] for r in rows[2:]}
    assert steps["0"] == ["bash", "FAILED", "3:0", "2"]
    assert steps["1"] == ["bash", "COMPLETED", "0:0", "2"]
    assert steps["4"] == ["false", "FAILED", "1:0", "1"]
    assert steps["5"][:2] == ["bash", "FAILED"]
    assert c.run("gacct", "-X", "-j", str(job_id), "-P", "-n", "-o", "JobID").out == f"{job_id}\n"


def test_running_steps_in_gqueue_s(three_nodes: LocalCluster) -> None:
    c = three_nodes
    script = c.workdir / "long-steps.sh"
    script.write_text(
        "#!/bin/bash\n#SBATCH -N2 -o long-%j.out\n"
        "srun -N2 sleep 30 &\n"
        "srun -N1 -n1 sleep 30 &\n"
        "wait\n"
    )
    job_id = c.submit(str(script))
    c.wait_state(job_id, "RUNNING")

    def two_steps() -> bool:
        return len(c.run("gqueue", "-s", "-h", "-j", str(job_id)).out.splitlines()) == 2

    c.wait_for(two_steps, timeout=20, what="two running steps")
    r = c.run("gqueue", "-s", "-j", str(job_id))
    lines = r.out.splitlines()
    assert lines[0].split() == ["STEPID", "NAME", "PARTITION", "USER", "TIME", "NODELIST"]
    ids = sorted(ln.split()[0] for ln in lines[1:])
    assert ids == [f"{job_id}.0", f"{job_id}.1"], r.out
    by_id = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert all(f[1] == "sleep" and f[2] == "main" for f in by_id.values())
    assert any("[" in f[5] for f in by_id.values()), r.out  # the -N2 step: node[1-2]
    one = c.run("gqueue", "-h", "-s", f"{job_id}.1", "-o", "%i %j %T")
    assert one.out.split() == [f"{job_id}.1", "sleep", "RUNNING"], one.out
    assert c.run("gcancel", str(job_id)).rc == 0
    c.wait_state(job_id, "CANCELLED")
    c.wait_for(lambda: "RUNNING" not in c.run(
        "gacct", "-j", str(job_id), "-P", "-n", "-o", "State").out, timeout=20, what="steps end")
    states = c.run("gacct", "-j", str(job_id), "-P", "-n", "-o", "JobID,State").out
    assert f"{job_id}.0|CANCELLED" in states and f"{job_id}.1|CANCELLED" in states, states


def test_kill_on_bad_exit_and_wait(three_nodes: LocalCluster) -> None:
    c = three_nodes
    body = (
        "t0=$(date +%s)\n"
        "srun -K -n2 bash -c '[ $SLURM_PROCID = 1 ] && exit 5; sleep 60'; echo \"k=$?\"\n"
        "srun -W 1 -n2 bash -c '[ $SLURM_PROCID = 1 ] && exit 0; sleep 60'; echo \"w=$?\"\n"
        "echo \"took=$(( $(date +%s) - t0 ))\"\n"
    )
    out, _ = run_batch(c, body, "-n2", "kill")
    assert "k=5" in out, out
    assert "w=" in out and "w=0" not in out, out
    took = int(out.split("took=")[1].split()[0])
    assert took < 20, out


def test_leftover_steps_are_killed_when_the_batch_script_ends(three_nodes: LocalCluster) -> None:
    c = three_nodes
    marker = c.workdir / "leftover.pid"
    body = f"srun -N1 bash -c 'echo $$ > {marker}; sleep 300' &\nsleep 2\necho done\n"
    out, _ = run_batch(c, body, "-N1", "leftover")
    assert "done" in out
    pid = int(marker.read_text())
    c.wait_for(lambda: not Path(f"/proc/{pid}").exists()
               or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], timeout=15,
               what="leftover step killed")


def test_grun_outside_a_job_allocates_runs_and_releases(three_nodes: LocalCluster) -> None:
    c = three_nodes
    r = c.run("grun", "-N2", "-l", "bash", "-c", "echo hi from $SLURMD_NODENAME")
    assert r.rc == 0, r.err
    lines = sorted(r.out.splitlines())
    assert len(lines) == 2 and lines[0].startswith("0: hi from node")
    r = c.run("grun", "-n1", "bash", "-c", "exit 3")
    assert r.rc == 3
    c.wait_for(lambda: c.run("gqueue", "-h").out.strip() == "", what="allocations released")


def test_grun_interrupt_kills_the_step(three_nodes: LocalCluster) -> None:
    c = three_nodes
    marker = c.workdir / "int.pid"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "grun"), "-n1", "bash", "-c",
         f"echo $$ > {marker}; sleep 300"],
        env=c.env, cwd=c.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    c.wait_for(lambda: marker.exists() and marker.read_text().strip() != "", what="task up")
    pid = int(marker.read_text())
    proc.send_signal(2)
    assert proc.wait(timeout=20) == 130
    c.wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, what="task killed")


def test_grun_errors(three_nodes: LocalCluster) -> None:
    c = three_nodes
    r = c.run("grun", "--mpi=pmix", "true")
    assert r.rc == 1 and "--mpi=pmix is not supported" in r.err
    r = c.run("grun", "--jobid", "999999", "true")
    assert r.rc == 1 and "Invalid job id specified" in r.err
    r = c.run("grun")
    assert r.rc == 1 and "No command given" in r.err


def test_signals_to_grun_reach_every_task(three_nodes: LocalCluster) -> None:
    c = three_nodes
    body = (
        "srun -N2 -l bash -c 'trap \"echo ckpt-$SLURM_PROCID; exit 0\" USR1; "
        "while true; do sleep 0.1; done' &\n"
        "pid=$!\n"
        "sleep 3\n"
        "kill -USR1 $pid\n"
        "wait $pid; echo \"rc=$?\"\n"
    )
    out, _ = run_batch(c, body, "-N2", "sigfwd")
    assert "0: ckpt-0" in out and "1: ckpt-1" in out, out
    assert "rc=0" in out


def test_job_signal_without_b_reaches_the_steps_not_the_batch_shell(
    three_nodes: LocalCluster,
) -> None:
    c = three_nodes
    body = (
        "srun -N2 -l bash -c 'trap \"echo ckpt-$SLURM_PROCID; exit 0\" USR1; "
        "while true; do sleep 0.1; done'\n"
        "echo \"batch survived rc=$?\"\n"
    )
    out, _ = run_batch(c, body, "-N2 -t 0:10 --signal=USR1@5", "jobsig")
    assert "0: ckpt-0" in out and "1: ckpt-1" in out, out
    assert "batch survived rc=0" in out and out.endswith("[COMPLETED]"), out


def test_grun_pty_gives_an_interactive_shell(three_nodes: LocalCluster) -> None:
    """``grun --pty bash`` as a user at a terminal: the test holds the terminal's master side."""
    c = three_nodes
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "grun"), "--pty", "bash", "--norc", "--noprofile"],
        stdin=slave, stdout=slave, stderr=slave, env=dict(c.env, PS1="pty$ "),
        cwd=c.workdir, start_new_session=True,
    )
    os.close(slave)
    seen = b""

    def read_until(token: bytes, timeout: float = 30, count: int = 1) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while seen.count(token) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {token!r} in {seen!r}"
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break

    try:
        read_until(b"pty$ ")
        os.write(master, b"tty; stty size; echo job=$SLURM_JOB_ID step=$SLURM_STEP_ID end$((6*7))\n")
        read_until(b"end42")
        assert b"/dev/pts/" in seen and b"33 101" in seen, seen
        job_id = int(seen.split(b"job=")[-1].split()[0])
        assert c.state_of(job_id) == "RUNNING"  # grun allocated a job for the shell
        prompts = seen.count(b"pty$ ")
        os.write(master, b"sleep 30\n")
        time.sleep(1)
        os.write(master, b"\x03")  # Ctrl-C goes to the remote shell's foreground job, not grun
        read_until(b"pty$ ", timeout=10, count=prompts + 1)  # sleep interrupted, shell lives
        os.write(master, b"echo still-$((1+1)); exit 7\n")
        assert proc.wait(timeout=30) == 7
        read_until(b"still-2")
        assert c.wait_state(job_id, {"CANCELLED", "COMPLETED"}, timeout=30)  # released
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
