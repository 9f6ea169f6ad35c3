"""Chaos: a mixed workload survives agents and the controller dying, GPU faults and a partition.

On ``gsched up --agents 4 --fake-gpus 4`` a workload of 12 jobs (single-node, single-node
with GPUs, two-node with and without GPUs) runs while a seeded schedule of faults is
played against the cluster:

- ``kill -9`` of an agent, restarted shortly after (its jobs are re-adopted);
- ``kill -9`` of another agent, restarted either shortly after or only after the node was
  declared DOWN (its jobs were fenced by their wrappers and requeued elsewhere);
- ``kill -9`` of the controller, restarted shortly after;
- a fatal GPU XID on a GPU in use, cleared later by the "operator" (plus RESUME);
- SIGSTOP of an agent past ``node_timeout`` (a partition), then SIGCONT.

Every job writes ``<attempt> <time>`` progress lines from its batch script. At the end:
every job is in one terminal state (COMPLETED: all use the default requeue and
max_requeue), none is lost, no two attempts of a job ran at the same time, every node's
resources are free, and ``gqueue``, ``gacct`` and the controller's database agree.

The seed comes from ``GSCHED_CHAOS_SEED`` (default: random) and is printed, so a failing
run can be replayed with the same schedule of jobs and faults (the exact interleaving
with real processes cannot be replayed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gsched.common import hostlist

from .conftest import LocalCluster, start_cluster, stop_cluster

pytestmark = pytest.mark.e2e

NODES = ("node1", "node2", "node3", "node4")
FINAL = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL"}

PROGRESS = (
    "#!/bin/bash\n"
    "#SBATCH -o %j.out --open-mode=append\n"
    'echo "attempt=$SLURM_RESTART_COUNT last=${GSCHED_LAST_FAILURE:-none} '
    'node=$SLURMD_NODENAME nodes=$SLURM_JOB_NODELIST"\n'
    "for i in $(seq 1 {ticks}); do\n"
    '  echo "$SLURM_RESTART_COUNT $(date +%s.%N)" >> progress-$SLURM_JOB_ID\n'
    "  sleep 0.2\n"
    "done\n"
)

# (gsub options, how many) -- 12 jobs in all
WORKLOAD: tuple[tuple[tuple[str, ...], int], ...] = (
    (("-c", "2"), 4),
    (("-c", "2", "--gres=gpu:2"), 3),
    (("-N2", "-c", "2"), 3),
    (("-N2", "-c", "2", "--gres=gpu:1"), 2),
)


def _seed() -> int:
    raw = os.environ.get("GSCHED_CHAOS_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1 << 31)


def _log(t0: float, msg: str) -> None:
    print(f"[chaos {time.monotonic() - t0:6.1f}s] {msg}", flush=True)


def _attempt_spans(path: Path) -> dict[int, tuple[float, float]]:
    """attempt -> (first, last) progress timestamp, from one job's progress file."""
    spans: dict[int, tuple[float, float]] = {}
    if not path.exists():
        return spans
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2:  # a line torn by a SIGKILL mid-write
            continue
        a, t = int(parts[0]), float(parts[1])
        lo, hi = spans.get(a, (float("inf"), 0.0))
        spans[a] = (min(lo, t), max(hi, t))
    return spans


def _overlaps(spans: dict[int, tuple[float, float]]) -> list[str]:
    bad = []
    ordered = sorted(spans.items())
    for (a1, (_, end)), (a2, (start, _)) in itertools.pairwise(ordered):
        if not end < start:
            bad.append(f"attempt {a1} last wrote at {end:.3f}, attempt {a2} first at {start:.3f}")
    return bad


@dataclasses.dataclass
class Chaos:
    """The cluster under test plus the processes this test restarted itself."""

    c: LocalCluster
    rng: random.Random
    t0: float
    procs: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    controller_down: bool = False
    jobs: dict[int, str] = dataclasses.field(default_factory=dict)  # id -> description
    events: list[str] = dataclasses.field(default_factory=list)
    hurt: set[str] = dataclasses.field(default_factory=set)  # nodes under a fault right now

    def log(self, msg: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:6.1f}s {msg}")
        _log(self.t0, msg)

    # ------------------------------------------------------------ processes
    def _spawn(self, tag: str, args: list[str]) -> None:
        state = self.c.state
        with open(state / f"{tag}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gsched.cli.main", *args, "--config",
                 str(state / "gsched.toml")],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                env=self.c.env,
            )
        (state / f"{tag}.pid").write_text(f"{proc.pid}\n")
        self.procs.append(proc)

    def kill_agent(self, node: str) -> None:
        pid = self.c.pid(node)
        os.kill(pid, signal.SIGKILL)
        self.log(f"kill -9 agent {node} (pid {pid})")

    def restart_agent(self, node: str) -> None:
        self._spawn(node, ["agent", "--name", node, "--cpus", "8", "--mem-mb", "32000"])
        self.log(f"agent {node} restarted (pid {self.c.pid(node)})")

    def kill_controller(self) -> None:
        pid = self.c.pid("controller")
        os.kill(pid, signal.SIGKILL)
        self.controller_down = True
        self.log(f"kill -9 controller (pid {pid})")

    def restart_controller(self) -> None:
        self._spawn("controller", ["controller"])
        self.c.wait_for(lambda: self.c.run("gctl", "ping").rc == 0, timeout=30,
                        what="controller back")
        self.controller_down = False
        self.log(f"controller restarted (pid {self.c.pid('controller')})")

    def freeze(self, node: str) -> None:
        os.kill(self.c.pid(node), signal.SIGSTOP)
        self.log(f"SIGSTOP agent {node}")

    def thaw(self, node: str) -> None:
        os.kill(self.c.pid(node), signal.SIGCONT)
        self.log(f"SIGCONT agent {node}")

    def reap(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    # ------------------------------------------------------------ jobs and GPUs
    def submit(self, args: tuple[str, ...], ticks: int) -> None:
        script = self.c.workdir / f"progress-{ticks}.sh"
        script.write_text(PROGRESS.replace("{ticks}", str(ticks)))
        job_id = self.c.submit(*args, str(script))
        self.jobs[job_id] = f"{' '.join(args)} ticks={ticks}"
        self.log(f"submitted job {job_id}: {self.jobs[job_id]}")

    def running(self) -> dict[str, list[int]]:
        """node -> running jobs there (empty while the controller is down)."""
        if self.controller_down:
            return {}
        r = self.c.run("gqueue", "-h", "-t", "R", "-o", "%i %N")
        out: dict[str, list[int]] = {}
        for line in r.out.splitlines() if r.rc == 0 else []:
            job_id, nodes = line.split()
            for node in hostlist.expand(nodes):
                out.setdefault(node, []).append(int(job_id))
        return out

    def pick(self, what: str) -> str:
        """A node for the next fault: one running jobs if possible, never one already hurt."""
        running = self.running()
        free = [n for n in NODES if n not in self.hurt]
        busy = [n for n in free if running.get(n)]
        node = self.rng.choice(busy or free)
        self.hurt.add(node)
        self.log(f"{what}: {node} runs jobs {running.get(node, [])}")
        return node

    def gpu_target(self) -> tuple[str, int]:
        """A (node, GPU index) in use by a running job, else a random node's GPU 0."""
        r = self.c.run("gqueue", "-h", "-t", "R", "-o", "%i")
        candidates: list[tuple[str, int]] = []
        for job_id in sorted(int(x) for x in r.out.split()):
            show = self.c.run("gctl", "show", "job", "-d", str(job_id)).out
            for m in re.finditer(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=\S*\(IDX:(\d+)", show):
                if m.group(1) not in self.hurt:
                    candidates.append((m.group(1), int(m.group(2))))
        node, gpu = (self.rng.choice(candidates) if candidates else
                     (self.rng.choice([n for n in NODES if n not in self.hurt]), 0))
        self.hurt.add(node)
        return node, gpu

    def fault_file(self, node: str) -> Path:
        return self.c.state / f"agent-{node}" / "fake-gpu-faults.json"


def _play(ch: Chaos, timeline: list[tuple[float, int, str, Callable[[], None], bool]]) -> None:
    """Run ``(at, seq, what, action, needs_controller)`` in time order.

    An action that needs the controller while it is down waits for its restart.
    """
    heapq.heapify(timeline)
    seq = itertools.count(1000)
    while timeline:
        at, _, what, action, needs = heapq.heappop(timeline)
        delay = ch.t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if needs and ch.controller_down:
            later = min((e for e in timeline if not e[4]), default=None)
            heapq.heappush(timeline, ((later[0] if later else at) + 0.01, next(seq), what,
                                      action, needs))
            continue
        action()


def _build_timeline(ch: Chaos) -> list[tuple[float, int, str, Callable[[], None], bool]]:
    rng = ch.rng
    tl: list[tuple[float, int, str, Callable[[], None], bool]] = []
    seq = itertools.count()

    def add(at: float, what: str, action: Callable[[], None], needs: bool = False) -> None:
        tl.append((at, next(seq), what, action, needs))

    # the workload: 8 jobs at once, 4 more at random moments in the first 20 s
    kinds = [args for args, n in WORKLOAD for _ in range(n)]
    rng.shuffle(kinds)
    for i, args in enumerate(kinds):
        at = 0.0 if i < 8 else rng.uniform(4, 20)
        ticks = rng.randint(35, 75)  # 7-15 s of progress per attempt
        add(at, "submit", lambda a=args, t=ticks: ch.submit(a, t), True)

    # Each fault picks its node when it strikes: one that runs jobs, not already hurt.
    def kill_then_restart(first: bool) -> None:
        node = ch.pick("kill -9 agent")
        ch.kill_agent(node)
        # the first is restarted soon (its jobs are re-adopted); the second, by a coin,
        # soon or only after its node was declared DOWN (its jobs fenced and requeued)
        late = not first and rng.random() < 0.5
        after = rng.uniform(11, 14) if late else rng.uniform(0.5, 3)
        ch.log(f"{node} restarts in {after:.1f}s ({'late' if late else 'soon'})")

        def restart() -> None:
            ch.restart_agent(node)
            ch.hurt.discard(node)

        heapq.heappush(tl, (time.monotonic() - ch.t0 + after, next(seq), "restart", restart,
                            False))

    add(rng.uniform(2, 8), "kill", lambda: kill_then_restart(True))

    # a fatal XID on a GPU in use; the operator clears it and resumes the node later
    xid = rng.choice(["xid 79", "xid 48", "xid 94", "xid 63"])
    clear_after = rng.uniform(4, 8)

    def inject() -> None:
        node, gpu = ch.gpu_target()
        ch.fault_file(node).write_text(json.dumps({str(gpu): xid}))
        ch.log(f"GPU fault on {node} gpu{gpu}: {xid}")

        def clear() -> None:
            ch.fault_file(node).write_text("{}")
            time.sleep(2.5)  # at least one heartbeat with healthy GPUs before RESUME
            r = ch.c.run("gctl", "update", f"NodeName={node}", "State=RESUME")
            ch.log(f"GPU fault on {node} cleared, RESUME rc={r.rc} {r.err.strip()}")
            ch.hurt.discard(node)

        heapq.heappush(tl, (time.monotonic() - ch.t0 + clear_after, next(seq),
                            "clear", clear, True))

    add(rng.uniform(4, 14), "gpu fault", inject, True)

    # a partition: SIGSTOP past node_timeout (10 s), then SIGCONT
    frozen_for = rng.uniform(11.5, 14)

    def freeze() -> None:
        node = ch.pick("SIGSTOP agent")
        ch.freeze(node)

        def thaw() -> None:
            ch.thaw(node)
            ch.hurt.discard(node)

        heapq.heappush(tl, (time.monotonic() - ch.t0 + frozen_for, next(seq), "thaw", thaw,
                            False))

    add(rng.uniform(6, 16), "freeze", freeze)

    # kill -9 the controller, restart it 0.3-2 s later
    at = rng.uniform(3, 30)
    add(at, "kill controller", ch.kill_controller)
    add(at + rng.uniform(0.3, 2), "restart controller", ch.restart_controller)

    # kill -9 another agent
    add(rng.uniform(max(18.0, at + 3), 32), "kill", lambda: kill_then_restart(False))
    return tl


def _queue_states(c: LocalCluster) -> dict[int, str]:
    r = c.run("gqueue", "-h", "-t", "all", "-o", "%i %T")
    assert r.rc == 0, r.err
    return {int(i): s for i, s in (line.split() for line in r.out.splitlines() if line.strip())}


def _acct(c: LocalCluster) -> dict[int, tuple[str, int]]:
    r = c.run("gacct", "-X", "-a", "-S", "2000-01-01", "-P", "-n", "-o", "JobID,State,Restarts")
    assert r.rc == 0, r.err
    out = {}
    for line in r.out.splitlines():
        if line.strip():
            job_id, state, restarts = line.split("|")
            out[int(job_id)] = (state.split()[0], int(restarts))
    return out


def _store(c: LocalCluster) -> dict[int, tuple[str, int, list[str]]]:
    db = sqlite3.connect(f"file:{c.state / 'gsched.db'}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT job_id, state, attempt, pending_nodes FROM jobs").fetchall()
    finally:
        db.close()
    return {int(j): (s, int(a), json.loads(p)) for j, s, a, p in rows}


def _nodes(c: LocalCluster) -> dict[str, str]:
    r = c.run("ginfo", "-h", "-N", "-o", "%N|%t|%C|%K")
    assert r.rc == 0, r.err
    return {line.split("|")[0]: line for line in r.out.splitlines() if line.strip()}


def _nodes_free(c: LocalCluster) -> bool:
    lines = _nodes(c)
    if sorted(lines) != list(NODES):
        return False
    for line in lines.values():
        _, state, cpus, gres = line.split("|")
        if cpus.split("/")[0] != "0" or not gres.endswith(":0") or state != "idle":
            return False
    return True


def _force_stop(c: LocalCluster) -> None:
    """Stop what ``gsched down`` left behind (its console script vanished, it crashed):
    the daemons still named by pid files, and the job wrappers, checked by command line."""
    import psutil

    state = str(c.state)
    procs = []
    for f in [*c.state.glob("*.pid"), *c.state.glob("agent-*/jobs/*/wrapper.pid")]:
        try:
            text = f.read_text().strip()
            pid = int(json.loads(text)["pid"]) if text.startswith("{") else int(text.split()[0])
            proc = psutil.Process(pid)
            if state in " ".join(proc.cmdline()):  # ours, not a reused pid
                proc.terminate()
                procs.append(proc)
        except (OSError, ValueError, KeyError, psutil.Error):
            continue
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@pytest.mark.timeout(420)
def _resume_auto_drained(ch: Chaos) -> None:
    """The operator's part: a node drained for repeated job failures is looked at and resumed.

    Chaos hits few nodes often, so a node may reach ``failure_drain_count``; a gang
    job that needs every node would then wait for ever.
    """
    r = ch.c.run("ginfo", "-h", "-N", "-o", "%N|%E")
    for line in r.out.splitlines():
        node, _, reason = line.partition("|")
        if reason.startswith("gsched: ") and "job failures" in reason:
            ch.c.run("gctl", "update", f"NodeName={node.strip()}", "State=RESUME")
            ch.log(f"{node.strip()} was auto-drained ({reason.strip()}); resumed")


def test_chaos_no_job_lost_or_run_twice(tmp_path: Path) -> None:
    seed = _seed()
    print(f"\nchaos seed: {seed} (replay: GSCHED_CHAOS_SEED={seed})", flush=True)
    started = time.monotonic()
    c = start_cluster(tmp_path, agents=4, gpus=4)
    ch = Chaos(c, random.Random(seed), time.monotonic())
    try:
        ch.log(f"cluster up in {ch.t0 - started:.1f}s")
        _play(ch, _build_timeline(ch))
        ch.log("chaos over; waiting for every job to end")

        # every job ends, in a terminal state, within a bound
        deadline = time.monotonic() + 240
        states: dict[int, str] = {}
        while time.monotonic() < deadline:
            states = _queue_states(c)
            if all(states.get(j) in FINAL for j in ch.jobs):
                break
            _resume_auto_drained(ch)
            time.sleep(1)
        ch.log(f"jobs ended: {states}")
        context = f"seed {seed}\nevents:\n" + "\n".join(ch.events)
        assert all(states.get(j) in FINAL for j in ch.jobs), (
            f"not all jobs ended: {states}\n{context}\n{c.logs()}"
        )

        # nothing lost, nothing invented
        assert set(states) == set(ch.jobs), f"gqueue {sorted(states)} vs {sorted(ch.jobs)}"
        acct = _acct(c)
        assert set(acct) == set(ch.jobs), f"gacct {sorted(acct)} vs {sorted(ch.jobs)}"

        # the resources all come free and every node returns to service
        c.wait_for(lambda: _nodes_free(c), timeout=30,
                   what=f"all nodes idle and free: {_nodes(c)}\n{context}")

        # one terminal state, the same everywhere, and it does not change any more
        time.sleep(1.0)
        sizes = {j: (c.workdir / f"progress-{j}").stat().st_size for j in ch.jobs
                 if (c.workdir / f"progress-{j}").exists()}
        again, acct, store = _queue_states(c), _acct(c), _store(c)
        problems = []
        for job_id, desc in sorted(ch.jobs.items()):
            spans = _attempt_spans(c.workdir / f"progress-{job_id}")
            state, restarts = acct[job_id]
            s_state, s_attempt, s_pending = store[job_id]
            ch.log(f"job {job_id} ({desc}): {states[job_id]} restarts={restarts} "
                   f"attempts={sorted(spans)}")
            if states[job_id] != "COMPLETED":
                problems.append(f"job {job_id} ended {states[job_id]}")
            if len({states[job_id], again[job_id], state, s_state}) != 1:
                problems.append(f"job {job_id}: gqueue {states[job_id]} then {again[job_id]}, "
                                f"gacct {state}, store {s_state}")
            if s_pending:
                problems.append(f"job {job_id}: final but store has pending nodes {s_pending}")
            if restarts != s_attempt:
                problems.append(f"job {job_id}: gacct Restarts={restarts}, store attempt "
                                f"{s_attempt}")
            if not spans:
                problems.append(f"job {job_id}: no progress at all")
            elif max(spans) != s_attempt:
                problems.append(f"job {job_id}: last attempt with progress {max(spans)}, "
                                f"final attempt {s_attempt}")
            elif spans and max(spans[s_attempt]) - min(spans[s_attempt]) <= 0:
                problems.append(f"job {job_id}: final attempt wrote too little: {spans}")
            out = c.workdir / f"{job_id}.out"
            for m in re.finditer(r"^attempt=(\d+) last=(\S+)", out.read_text() if out.exists()
                                 else "", re.MULTILINE):
                if int(m.group(1)) > 0 and m.group(2) == "none":
                    problems.append(f"job {job_id}: attempt {m.group(1)} not told why")
            for bad in _overlaps(spans):
                problems.append(f"job {job_id} ({desc}): attempts overlapped: {bad}")
        # an orphan (an attempt nobody fenced) would still be writing
        time.sleep(1.0)
        for job_id, size in sizes.items():
            now_size = (c.workdir / f"progress-{job_id}").stat().st_size
            if now_size != size:
                problems.append(f"job {job_id}: progress still written after the end")
        assert not problems, "\n".join(problems) + f"\n{context}\n{c.logs()}"
        ch.log(f"done in {time.monotonic() - started:.1f}s (seed {seed})")
    finally:
        for node in NODES:  # never leave a stopped agent behind
            try:
                os.kill(c.pid(node), signal.SIGCONT)
            except (OSError, ValueError):
                pass
        try:
            stop_cluster(c)
        finally:
            _force_stop(c)
            ch.reap()
