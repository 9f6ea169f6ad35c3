#!/usr/bin/env python3
"""Simulated-time benchmark of the scheduling policy (the pure core, no processes).

    .venv/bin/python bench/bench_sched_sim.py [--quick] [--out bench/results/sched_sim.json]

Drives :class:`gsched.controller.cluster.Cluster` (multifactor priority with fair
share, QOS/account limits, EASY backfill) through a synthetic trace in simulated time:
1,000 nodes x 8 GPUs, 20,000 jobs of 1-64 GPUs (multi-node jobs take whole 8-GPU
nodes) with runtimes from minutes to hours and time limits above them, submitted by
four users in four accounts with shares 1:2:3:4. Jobs arrive in the first hours, so
the queue holds about 10,000 pending jobs for most of the run.

Figures (one JSON object on stdout, also written to ``--out``):

- ``pass_ms``: wall time of one scheduling pass (``Cluster.schedule``): median and p99
  over the passes made with 9,000-11,000 jobs pending (``at_10k_pending``; also the
  process CPU time of those passes, ``cpu_median``/``cpu_p99``, which a busy machine
  inflates less), and over all passes (one pass in ten also recomputes priorities);
- ``utilisation``: GPU-seconds used over GPUs x makespan, for the policy run, for an
  offline greedy schedule (the same jobs, runtimes known in advance, packed first-fit
  in arrival order into a GPU pool without node boundaries) and against an upper bound
  (makespan no shorter than work/capacity nor than any arrival+runtime);
  ``busy_while_queued``: the share of GPUs allocated while jobs were waiting (what a
  scheduler controls; 1.0 is the ceiling);
- ``backfill_margin``: the same trace scheduled in plain priority order (the pass
  stops at the first job that cannot start) vs with backfill: utilisation and makespan
  of both, and the difference;
- ``mean_wait_s_by_size``: mean wait per job size class;
- ``fairshare``: each account's share of the GPU time, per tenth of the run and
  overall, against its configured share; ``l1_saturated_mean``: the mean L1 distance
  from the shares over the tenths in which every account had jobs pending throughout
  (there fair share alone decides who gets the GPUs).

Timings come from this machine only; rerun to compare (see bench/README.md).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from gsched.controller.backfill import BackfillConfig
from gsched.controller.cluster import Cluster, NodeReport
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu
from gsched.controller.policy import AccountDef, Policy, Qos
from gsched.controller.prioritize import JobGate
from gsched.controller.priority import PriorityConfig, Weights
from gsched.controller.scheduler import Partition

S = JobState
USERS = {"u1": ("a1", 1), "u2": ("a2", 2), "u3": ("a3", 3), "u4": ("a4", 4)}
SIZES = ((1, 0.30), (2, 0.20), (4, 0.18), (8, 0.16), (16, 0.08), (32, 0.05), (64, 0.03))


def make_trace(n_jobs: int, seed: int, arrive_over: float) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    sizes, weights = zip(*SIZES, strict=True)
    jobs = []
    for i in range(n_jobs):
        gpus = rng.choices(sizes, weights)[0]
        runtime = rng.choice((600, 1800, 3600, 7200, 14400)) * rng.uniform(0.3, 1.0)
        limit = int(runtime * rng.uniform(1.1, 2.0)) + 60
        jobs.append({
            "id": i, "user": f"u{i % 4 + 1}", "gpus": gpus, "runtime": runtime,
            "limit": limit, "arrival": rng.uniform(0, arrive_over),
        })
    jobs.sort(key=lambda j: j["arrival"])
    return jobs


class StrictGate:
    """Plain priority order: once a job could not start, nothing behind it may."""

    def __init__(self, inner: JobGate | None) -> None:
        self.inner = inner
        self.last: int | None = None
        self.blocked = False

    def check(self, job_id: int) -> str:
        if self.last is not None:
            self.blocked = True  # the previous job was checked and did not start
        if self.blocked:
            return "Priority"
        self.last = job_id
        return self.inner.check(job_id) if self.inner is not None else ""

    def started(self, job_id: int) -> None:
        self.last = None
        if self.inner is not None:
            self.inner.started(job_id)


def simulate(trace: list[dict[str, Any]], nodes: int, backfill: bool,
             progress: bool = True) -> dict[str, Any]:
    policy = Policy([Qos("normal")],
                    [AccountDef(acct, shares, {user: 1}) for user, (acct, shares) in
                     USERS.items()])
    cfg = PriorityConfig(weights=Weights(age=1000, fairshare=10000, jobsize=0, partition=0,
                                         qos=0), decay_half_life=86400.0)
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main",
                node_timeout=1e18, suspect_after=1e18, finished_keep=0.0,
                backfill=BackfillConfig(depth=100, window=86400.0),
                priority=cfg, policy=policy, calc_period=300.0)
    report = NodeReport(64, 512000, tuple(Gpu(i) for i in range(8)), {})
    for i in range(nodes):
        c.node_hello(f"n{i:04d}", report, [], [], 0.0)
    if not backfill:
        make = c.prio.gate
        c.prio.gate = lambda jobs, running: StrictGate(make(jobs, running))  # type: ignore[assignment, method-assign]

    by_gid: dict[int, dict[str, Any]] = {}
    ends: list[tuple[float, int]] = []
    arrivals = list(trace)
    ai = 0
    now = 0.0
    passes: list[tuple[int, float]] = []  # (jobs pending, wall ms) per pass
    cpu_ms: list[float] = []  # CPU ms of the same passes (less sensitive to machine load)
    queued: list[tuple[float, bool]] = []  # (time, every account has jobs pending)
    busy = 0  # GPUs allocated now
    queued_s = busy_queued = 0.0  # time with jobs pending, and GPU-seconds busy then
    used_gpu_s = 0.0
    by_acct_window: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    waits: dict[str, list[float]] = defaultdict(list)
    done = 0
    next_tick = 0.0
    step = 30.0
    spans: list[tuple[str, float, float, int]] = []  # account, start, end, gpus
    t0 = time.perf_counter()
    while done < len(trace):
        # arrivals up to now
        while ai < len(arrivals) and arrivals[ai]["arrival"] <= now:
            t = arrivals[ai]
            acct = USERS[t["user"]][0]
            per_node = min(8, t["gpus"])
            req = Request(nodes=max(1, t["gpus"] // 8), gpus_per_node=per_node,
                          cpus_per_node=per_node * 4, time_limit=t["limit"])
            job = c.submit(Job(0, t["user"], 1000, 1000, "g", "j", req, b"", 0.0,
                               account=acct), t["arrival"])
            by_gid[job.job_id] = t
            ai += 1
        # completions up to now
        while ends and ends[0][0] <= now:
            end, gid = heapq.heappop(ends)
            busy -= by_gid[gid]["gpus"]
            job = c.jobs[gid]
            for name in list(job.pending_nodes):
                c.job_exited(name, gid, job.attempt, 0, 0, "", end)
            done += 1
        if now >= next_tick:
            c.tick(now)
            next_tick = now + 300.0
        pending = len(c.pending_ids)
        waiting = {c.jobs[i].account for i in c.pending_ids}
        queued.append((now, len(waiting) == len(USERS)))
        t1, p1 = time.perf_counter(), time.process_time()
        orders = c.schedule(now)
        passes.append((pending, (time.perf_counter() - t1) * 1000.0))
        cpu_ms.append((time.process_time() - p1) * 1000.0)
        started = {o.job_id for o in orders}
        for gid in started:
            t = by_gid[gid]
            end = now + t["runtime"]
            heapq.heappush(ends, (end, gid))
            busy += t["gpus"]
            used_gpu_s += t["gpus"] * t["runtime"]
            waits[_size_class(t["gpus"])].append(now - t["arrival"])
            spans.append((USERS[t["user"]][0], now, end, t["gpus"]))
        c.dirty_jobs.clear()
        c.dirty_nodes.clear()
        # next pass: at the next arrival or completion, but at most one pass per
        # `step` simulated seconds while work is queued (like SLURM's sched_interval)
        events = [arrivals[ai]["arrival"]] if ai < len(arrivals) else []
        if ends:
            events.append(ends[0][0])
        if not events:
            break
        nxt = max(min(events), now + step)
        if c.pending_ids:
            queued_s += nxt - now
            busy_queued += busy * (nxt - now)
        now = nxt
        if progress and len(passes) % 200 == 0:
            print(f"  t={now / 3600:6.1f} h  done {done}/{len(trace)}  pending {pending}  "
                  f"last pass {passes[-1][1]:.0f} ms  wall {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
    makespan = max(e for _, _, e, _ in spans) - min(t["arrival"] for t in trace)
    capacity = nodes * 8
    for acct, start, end, gpus in spans:
        _spread(by_acct_window, acct, start, end, gpus, makespan)
    w = makespan / 10.0
    start0 = min(t["arrival"] for t in trace)
    saturated = [all(ok for t, ok in queued if k * w <= t - start0 < (k + 1) * w)
                 for k in range(10)]
    return {
        "passes": passes,
        "cpu_ms": cpu_ms,
        "saturated": saturated,
        "makespan_s": makespan,
        "utilisation": used_gpu_s / (capacity * makespan),
        "busy_while_queued": busy_queued / (capacity * queued_s) if queued_s else 0.0,
        "mean_wait_s_by_size": {k: statistics.fmean(v) for k, v in sorted(waits.items())},
        "windows": by_acct_window,
        "wall_s": time.perf_counter() - t0,
    }


def _size_class(gpus: int) -> str:
    return "1" if gpus == 1 else "2-4" if gpus <= 4 else "8" if gpus == 8 else "16-64"


def _spread(acc: dict[int, dict[str, float]], acct: str, start: float, end: float, gpus: int,
            makespan: float) -> None:
    """Add a job's GPU-seconds to the tenths of the run it overlaps."""
    w = makespan / 10.0
    k = int(start // w)
    while start < end and k < 10:
        edge = min(end, (k + 1) * w)
        acc[k][acct] += gpus * (edge - start)
        start = edge
        k += 1


def greedy_bound(trace: list[dict[str, Any]], capacity: int) -> dict[str, float]:
    """Offline greedy: runtimes known, a GPU pool without node boundaries, first fit in
    arrival order at every event (no reservations: nothing waits for a bigger job)."""
    free = capacity
    waiting: list[dict[str, Any]] = []
    ends: list[tuple[float, int]] = []
    ai, now, last = 0, 0.0, 0.0
    work = sum(t["gpus"] * t["runtime"] for t in trace)
    while ai < len(trace) or waiting or ends:
        while ai < len(trace) and trace[ai]["arrival"] <= now:
            waiting.append(trace[ai])
            ai += 1
        while ends and ends[0][0] <= now:
            free += heapq.heappop(ends)[1]
        keep = []
        for t in waiting:
            if t["gpus"] <= free:
                free -= t["gpus"]
                heapq.heappush(ends, (now + t["runtime"], t["gpus"]))
                last = max(last, now + t["runtime"])
            else:
                keep.append(t)
        waiting = keep
        cands = [e[0] for e in ends[:1]]
        if ai < len(trace):
            cands.append(trace[ai]["arrival"])
        if not cands:
            break
        now = max(min(cands), now)
    makespan = last - trace[0]["arrival"]
    # no schedule can finish before all work fits in the capacity, nor before any job's
    # arrival plus its runtime: an upper bound on utilisation over the makespan
    lower = max(work / capacity, max(t["arrival"] + t["runtime"] for t in trace)
                - trace[0]["arrival"])
    return {"makespan_s": makespan, "utilisation": work / (capacity * makespan),
            "upper_bound": work / (capacity * lower)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="100 nodes, 2,000 jobs: a smoke test (figures not comparable)")
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the plain-priority-order run (no backfill margin)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    nodes, n_jobs = (100, 2000) if args.quick else (args.nodes, args.jobs)
    # arrivals spread so the queue builds to ~half the jobs pending
    trace = make_trace(n_jobs, args.seed, arrive_over=3 * 3600.0)
    print(f"backfill run: {nodes} nodes x 8 GPUs, {n_jobs} jobs", file=sys.stderr)
    bf = simulate(trace, nodes, backfill=True)
    greedy = greedy_bound(trace, nodes * 8)
    plain = None
    if not args.no_baseline:
        print("plain priority order run", file=sys.stderr)
        plain = simulate(trace, nodes, backfill=False)
    target = n_jobs // 2
    near = [ms for p, ms in bf["passes"] if 0.9 * target <= p <= 1.1 * target]
    near_cpu = [cpu for (p, _), cpu in zip(bf["passes"], bf["cpu_ms"], strict=True)
                if 0.9 * target <= p <= 1.1 * target]
    every = [ms for _, ms in bf["passes"]]
    total_shares = sum(s for _, s in USERS.values())
    targets = {acct: s / total_shares for acct, s in USERS.values()}
    windows = []
    for k in range(10):
        got = bf["windows"].get(k, {})
        tot = sum(got.values()) or 1.0
        windows.append({a: round(got.get(a, 0.0) / tot, 4) for a in sorted(targets)})
    overall: dict[str, float] = defaultdict(float)
    for k in range(10):
        for a, v in bf["windows"].get(k, {}).items():
            overall[a] += v
    tot = sum(overall.values()) or 1.0
    # windows in which every account had jobs pending all the time: there fair share
    # alone decides who gets the GPUs
    l1 = [round(sum(abs(w[a] - targets[a]) for a in targets), 4) for w in windows]
    sat = [d for d, ok in zip(l1, bf["saturated"], strict=True) if ok]
    result = {
        "bench": "sched_sim",
        "nodes": nodes, "gpus_per_node": 8, "jobs": n_jobs, "seed": args.seed,
        "pass_ms": {
            "at_10k_pending" if not args.quick else f"at_{target}_pending": {
                "passes": len(near), "median": round(statistics.median(near), 2) if near else None,
                "p99": round(_pct(near, 0.99), 2) if near else None,
                "cpu_median": round(statistics.median(near_cpu), 2) if near_cpu else None,
                "cpu_p99": round(_pct(near_cpu, 0.99), 2) if near_cpu else None,
            },
            "all": {"passes": len(every), "median": round(statistics.median(every), 2),
                    "p99": round(_pct(every, 0.99), 2),
                    "max_pending": max(p for p, _ in bf["passes"])},
        },
        "utilisation": {
            "policy": round(bf["utilisation"], 4),
            "greedy_offline": round(greedy["utilisation"], 4),
            "ratio_to_greedy": round(bf["utilisation"] / greedy["utilisation"], 4),
            "upper_bound": round(greedy["upper_bound"], 4),
            "ratio_to_upper_bound": round(bf["utilisation"] / greedy["upper_bound"], 4),
            "busy_while_queued": round(bf["busy_while_queued"], 4),
            "makespan_h": round(bf["makespan_s"] / 3600, 2),
            "greedy_makespan_h": round(greedy["makespan_s"] / 3600, 2),
        },
        "backfill_margin": None if plain is None else {
            "utilisation_backfill": round(bf["utilisation"], 4),
            "utilisation_plain_priority": round(plain["utilisation"], 4),
            "utilisation_gain": round(bf["utilisation"] - plain["utilisation"], 4),
            "busy_while_queued_backfill": round(bf["busy_while_queued"], 4),
            "busy_while_queued_plain_priority": round(plain["busy_while_queued"], 4),
            "makespan_h_backfill": round(bf["makespan_s"] / 3600, 2),
            "makespan_h_plain_priority": round(plain["makespan_s"] / 3600, 2),
            "mean_wait_s_by_size_plain": {k: round(v) for k, v in
                                          plain["mean_wait_s_by_size"].items()},
        },
        "mean_wait_s_by_size": {k: round(v) for k, v in bf["mean_wait_s_by_size"].items()},
        "fairshare": {
            "target": targets,
            "overall": {a: round(overall[a] / tot, 4) for a in sorted(targets)},
            "by_tenth": windows,
            "saturated_tenths": bf["saturated"],
            "l1_by_tenth": l1,
            "l1_saturated_mean": round(statistics.fmean(sat), 4) if sat else None,
        },
        "wall_s": round(bf["wall_s"] + (plain["wall_s"] if plain else 0.0), 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        import pathlib

        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
