#!/usr/bin/env python3
"""What a 10,000-task job array costs the controller.

    .venv/bin/python bench/bench_arrays.py [--tasks 10000] [--quick] [--out bench/results/arrays.json]

Two parts; prints a table on stderr and ONE JSON object on stdout (and into ``--out``).

core   The pure core (no I/O), --nodes (100) nodes x 8 GPUs all busy with one-GPU
       jobs and 1,000 other pending jobs: time to submit the array (parse + enqueue),
       scheduling pass time (median, p90) with it pending against the same queue
       without it, how many job records exist (the array stays one record), then
       the passes that fill the GPUs freed twice over (pending jobs, then tasks).
real   A real controller and 2 agents (4 fake GPUs each; started here, stopped here):
       one ``gsub --array=0-N-1 --gres=gpu:1`` process (wall time), ``gqueue`` (default
       output, median of 5 processes) on the empty queue and with the array pending, ``gqueue -r`` (one line
       per task), ``gctl show job A_k``, rows in the jobs table, ``gcancel A`` until
       nothing of the array is left.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


# ---------------------------------------------------------------- core


def part_core(tasks: int, passes: int, nodes: int = 100) -> dict[str, Any]:
    from gsched.controller.cluster import Cluster, NodeReport
    from gsched.controller.jobs import Job, Request
    from gsched.controller.nodes import Gpu
    from gsched.controller.scheduler import Partition

    logging_off()
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main",
                max_array_size=tasks + 1)
    gpus = nodes * 8
    for i in range(nodes):
        c.node_hello(f"n{i:04d}", NodeReport(64, 512000, tuple(Gpu(g, "a100") for g in range(8)),
                                             {}), [], [], 0.0)

    def job(**extra: Any) -> Job:
        return Job(job_id=0, user="u", uid=1000, gid=1000, group="u", name="j",
                   request=Request(gpus_per_node=1, cpus_per_node=1, time_limit=3600),
                   spec=b"", submit_time=0.0, **extra)

    for _ in range(gpus):
        c.submit(job(), 1.0)
    c.schedule(1.0)
    running = [j for j in c.jobs.values() if j.state == "RUNNING"]
    assert len(running) == gpus
    for _ in range(1000):
        c.submit(job(), 2.0)

    def pass_times(now: float) -> list[float]:
        out = []
        for k in range(passes):
            t0 = time.perf_counter()
            c.schedule(now + k * 0.001)
            out.append(time.perf_counter() - t0)
        return out

    base = pass_times(3.0)
    meta = job()
    t0 = time.perf_counter()
    c.elig.prepare(meta, {"array": f"0-{tasks - 1}"})
    c.submit(meta, 4.0)
    submit_s = time.perf_counter() - t0
    with_array = pass_times(5.0)
    records = len(c.jobs)
    for j in running:
        c.job_exited(j.batch_host, j.job_id, j.attempt, 0, 0, "", 6.0)
    # the 1,000 plain jobs are older: they start first, then 0 array tasks fit...
    t0 = time.perf_counter()
    c.schedule(7.0)
    refill_s = time.perf_counter() - t0
    for j in [j for j in c.jobs.values() if j.state == "RUNNING"]:
        c.job_exited(j.batch_host, j.job_id, j.attempt, 0, 0, "", 8.0)
    passes_to_fill, started = 0, 0
    t0 = time.perf_counter()
    while c.need_schedule and passes_to_fill < 1000:
        before = sum(1 for j in c.jobs.values() if j.state == "RUNNING")
        c.schedule(9.0)
        passes_to_fill += 1
        started = sum(1 for j in c.jobs.values() if j.state == "RUNNING") - before + started
    fill_s = time.perf_counter() - t0
    tasks_running = sum(1 for j in c.jobs.values()
                        if j.state == "RUNNING" and j.array_job_id == meta.job_id)
    c.validate()
    return {
        "nodes": nodes, "gpus": gpus, "other_pending": 1000, "array_tasks": tasks,
        "array_submit_ms": ms(submit_s),
        "pass_ms_median_without_array": ms(statistics.median(base)),
        "pass_ms_median_with_array": ms(statistics.median(with_array)),
        "pass_ms_p90_with_array": ms(sorted(with_array)[int(0.9 * (len(with_array) - 1))]),
        "job_records_with_array_pending": records,
        "pass_ms_start_plain_jobs_on_freed_gpus": ms(refill_s),
        "array_tasks_started_beside_the_other_pending_jobs": tasks_running,
        "passes_to_fill_the_gpus": passes_to_fill,
        "fill_ms_total": ms(fill_s),
        "array_remainder_after_fill": len(meta.array_tasks or ()),
    }


def logging_off() -> None:
    import logging

    logging.disable(logging.WARNING)


# ---------------------------------------------------------------- real processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Local:
    """A controller and two agents started by this script (ended by their pids)."""

    def __init__(self, tasks: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gsched-bench-arrays-"))
        self.conf = self.dir / "gsched.toml"
        port = free_port()
        self.conf.write_text(
            f'cluster_name = "bench"\nstate_dir = "{self.dir}"\n\n'
            f'[controller]\naddress = "127.0.0.1:{port}"\nkill_wait = 2\n'
            f"max_array_size = {tasks + 1}\n\n"
            '[[partitions]]\nname = "main"\nnodes = "ALL"\ndefault = true\n\n'
            '[agent]\ngpus = "fake:4"\n'
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GSCHED_"))}
        self.env["GSCHED_CONF"] = str(self.conf)
        self.procs: list[subprocess.Popen[bytes]] = []
        self._spawn("controller", ["controller", "--config", str(self.conf)])
        self._wait(lambda: self.run("gqueue", "-h").returncode == 0, "controller")
        for name in ("node1", "node2"):
            self._spawn(name, ["agent", "--config", str(self.conf), "--name", name,
                               "--cpus", "8", "--mem-mb", "16000"])
        self._wait(lambda: self.run("ginfo", "-h", "-o", "%D %t").stdout.split()[:2] == ["2", "idle"],
                   "agents")

    def _spawn(self, tag: str, args: list[str]) -> None:
        logf = open(self.dir / f"{tag}.log", "wb")
        self.procs.append(subprocess.Popen([str(BIN / "gsched"), *args], stdout=logf,
                                           stderr=subprocess.STDOUT, env=self.env,
                                           start_new_session=True))

    def _wait(self, ok: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                              env=self.env, cwd=self.dir, timeout=120)

    def timed(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        t0 = time.perf_counter()
        p = self.run(*args)
        return time.perf_counter() - t0, p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def part_real(tasks: int) -> dict[str, Any]:
    c = Local(tasks)
    try:
        empty = [c.timed("gqueue")[0] for _ in range(5)]
        sub_s, p = c.timed("gsub", "--parsable", f"--array=0-{tasks - 1}", "--gres=gpu:1",
                           "-o", "/dev/null", "--wrap", "sleep 300")
        assert p.returncode == 0, p.stderr
        array = p.stdout.strip()
        c._wait(lambda: c.run("gqueue", "-h", "-t", "R", "-o", "%i").stdout.count("\n") == 8,
                "8 running tasks")
        samples = []
        for _ in range(5):
            t, q = c.timed("gqueue")
            samples.append(t)
        lines = q.stdout.splitlines()
        r_s, qr = c.timed("gqueue", "-r", "-h")
        show_s, sj = c.timed("gctl", "show", "job", f"{array}_{tasks // 2}")
        assert sj.returncode == 0, sj.stderr
        db = sqlite3.connect(c.dir / "gsched.db")
        rows = db.execute("select count(*) from jobs").fetchone()[0]
        db.close()
        t0 = time.perf_counter()
        cancel_s, _ = c.timed("gcancel", array)
        c._wait(lambda: c.run("gqueue", "-h", "-o", "%i").stdout.strip() == "", "array cancelled")
        drained_s = time.perf_counter() - t0
        return {
            "agents": 2, "gpus": 8, "array_tasks": tasks,
            "gsub_array_ms": ms(sub_s),
            "gqueue_ms_median_empty_queue": ms(statistics.median(empty)),
            "gqueue_ms_median": ms(statistics.median(samples)),
            "gqueue_lines": len(lines),
            "gqueue_first_lines": lines[:3],
            "gqueue_r_ms": ms(r_s),
            "gqueue_r_lines": len(qr.stdout.splitlines()),
            "gctl_show_task_ms": ms(show_s),
            "db_job_rows_with_8_running": rows,
            "gcancel_array_ms": ms(cancel_s),
            "gcancel_until_queue_empty_ms": ms(drained_s),
        }
    finally:
        c.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="1,000 tasks, fewer passes")
    ap.add_argument("--out", default="")
    ap.add_argument("--skip-real", action="store_true", help="only the pure core part")
    ap.add_argument("--nodes", type=int, default=100, help="core part: nodes of 8 GPUs")
    args = ap.parse_args()
    tasks = 1000 if args.quick else args.tasks
    result: dict[str, Any] = {"bench": "arrays", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "errors": {}}
    log(f"core: {tasks}-task array against {args.nodes} nodes x 8 GPUs ...")
    try:
        result["core"] = part_core(tasks, 5 if args.quick else 20, args.nodes)
    except Exception as exc:  # a failing part records its error; the other still runs
        result["core"] = None
        result["errors"]["core"] = repr(exc)
    if not args.skip_real:
        log(f"real: controller + 2 agents, gsub --array=0-{tasks - 1} ...")
        try:
            result["real"] = part_real(tasks)
        except Exception as exc:
            result["real"] = None
            result["errors"]["real"] = repr(exc)
    for part in ("core", "real"):
        for k, v in (result.get(part) or {}).items():
            log(f"  {part:5} {k:40} {v}")
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
