"""Property-based checks of the scheduling policy over random workloads (hypothesis).

- no GPU is ever allocated twice (``Cluster.validate`` after every step);
- no QOS or account limit is ever exceeded by the running jobs;
- the top-priority blocked job's expected start is never later because lower-priority
  jobs were backfilled (planning with them equals planning without them).
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gsched.controller.backfill import PendingJob, plan
from gsched.controller.cluster import Caller, Cluster, NodeReport
from gsched.controller.errors import InvalidRequest
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu, Node
from gsched.controller.policy import AccountDef, Policy, Qos, Tres
from gsched.controller.priority import PriorityConfig
from gsched.controller.scheduler import Partition

S = JobState
USERS = ("alice", "bob", "carol")
PART = Partition("main", all_nodes=True, default=True)

job_st = st.fixed_dictionaries({
    "user": st.sampled_from(USERS),
    "qos": st.sampled_from(("normal", "high")),
    "nodes": st.integers(1, 2),
    "gpus": st.integers(0, 4),
    "cpus": st.integers(1, 8),
    "time": st.integers(1, 50),
})
step_st = st.one_of(
    st.tuples(st.just("submit"), job_st),
    st.tuples(st.just("finish"), st.integers(0, 50)),
    st.tuples(st.just("tick"), st.integers(1, 20)),
)


def _policy(gpu_user: int, jobs_user: int, grp_gpu: int, cpu_user: int) -> Policy:
    return Policy(
        [Qos("normal", max_tres_per_user=Tres(gpu=gpu_user, cpu=cpu_user),
             max_jobs_per_user=jobs_user),
         Qos("high", priority=50, max_jobs_per_user=-1)],
        [AccountDef("lab", 1, {"alice": 1, "bob": 2}, grp_tres=Tres(gpu=grp_gpu)),
         AccountDef("ops", 1, {"carol": 1})],
    )


def _check_limits(c: Cluster) -> None:
    pol = c.prio.policy
    per_user: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    per_acct: dict[str, int] = defaultdict(int)
    for j in c.jobs.values():
        if j.state not in (S.RUNNING, S.COMPLETING) or not j.alloc:
            continue
        gpus = sum(len(a["gpus"]) for a in j.alloc.values())
        cpus = sum(a["cpus"] for a in j.alloc.values())
        u = per_user[j.qos, j.user]
        u[0] += 1
        u[1] += gpus
        u[2] += cpus
        per_acct[j.account] += gpus
    for (qos, _), (n, gpus, cpus) in per_user.items():
        q = pol.qos[qos]
        assert q.max_jobs_per_user < 0 or n <= q.max_jobs_per_user
        assert q.max_tres_per_user.gpu < 0 or gpus <= q.max_tres_per_user.gpu
        assert q.max_tres_per_user.cpu < 0 or cpus <= q.max_tres_per_user.cpu
    for acct, gpus in per_acct.items():
        limit = pol.accounts[acct].grp_tres.gpu
        assert limit < 0 or gpus <= limit


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step_st, min_size=1, max_size=40),
    gpu_user=st.integers(1, 8), jobs_user=st.integers(1, 4), grp_gpu=st.integers(2, 12),
    cpu_user=st.integers(4, 24),
)
def test_random_workloads_respect_gpus_and_limits(
    steps: list[tuple[str, object]], gpu_user: int, jobs_user: int, grp_gpu: int,
    cpu_user: int,
) -> None:
    c = Cluster([PART], "main", priority=PriorityConfig(),
                policy=_policy(gpu_user, jobs_user, grp_gpu, cpu_user), calc_period=3.0)
    for name in ("n1", "n2", "n3"):
        c.node_hello(name, NodeReport(16, 64000, tuple(Gpu(i) for i in range(4)), {}), [], [],
                     0.0)
    now = 0.0
    for kind, arg in steps:
        now += 1.0
        for name in c.nodes:
            c.node_heartbeat(name, None, now)
        if kind == "submit":
            j = arg  # type: ignore[assignment]
            user = Caller(uid=USERS.index(j["user"]) + 1000, user=j["user"])  # type: ignore[index]
            job = Job(0, user.user, user.uid, user.uid, user.user, "j",
                      Request(nodes=j["nodes"], gpus_per_node=j["gpus"],  # type: ignore[index]
                              cpus_per_node=j["cpus"], time_limit=j["time"] * 60),  # type: ignore[index]
                      b"", 0.0, qos=j["qos"])  # type: ignore[index]
            try:
                c.submit(job, now)
            except InvalidRequest:  # refused at submit: nothing changed
                pass
        elif kind == "finish":
            running = sorted(i for i, j in c.jobs.items() if j.state == S.RUNNING)
            if running:
                job = c.jobs[running[int(arg) % len(running)]]  # type: ignore[call-overload]
                for node in list(job.pending_nodes):
                    c.job_exited(node, job.job_id, job.attempt, 0, 0, "", now)
        else:
            now += float(arg)  # type: ignore[arg-type]
            for name in c.nodes:
                c.node_heartbeat(name, None, now)
            c.tick(now)
        c.schedule(now)
        c.validate()
        _check_limits(c)
        for j in c.jobs.values():
            if j.state == S.PENDING:
                assert j.reason and j.reason != "None"


# ------------------------------------------------------------------ backfill never delays
pending_st = st.lists(
    st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 40)), min_size=1,
    max_size=12)
running_st = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(1, 60)),
                      max_size=6)


def _nodes(running: list[tuple[int, int, int]]) -> tuple[dict[str, Node], dict[int, float]]:
    nodes = {f"n{i}": Node(f"n{i}", cpus=16, mem_mb=64000, gpus=[Gpu(g) for g in range(4)],
                           up=True, connected=True, ever_registered=True) for i in range(3)}
    ends: dict[int, float] = {}
    for k, (n, gpus, length) in enumerate(running, start=1000):
        node = nodes[f"n{n}"]
        free = node.free_gpus()
        if len(free) >= gpus:
            node.allocate(k, 1, 0, tuple(free[:gpus]))
            ends[k] = float(length * 10)
    return nodes, ends


@settings(max_examples=150, deadline=None)
@given(pending=pending_st, running=running_st)
def test_backfill_never_delays_the_top_blocked_job(
    pending: list[tuple[int, int, int]], running: list[tuple[int, int, int]],
) -> None:
    nodes, ends = _nodes(running)
    jobs = [PendingJob(i, Request(nodes=n, gpus_per_node=g, time_limit=t * 10))
            for i, (n, g, t) in enumerate(pending, start=1)]
    full = plan(jobs, nodes, {"main": PART}, "main", ends, 0.0)
    started = {d.job_id for d in full.start_now}
    top = next((j for j in jobs if j.job_id not in started), None)
    if top is None or top.job_id not in full.reservations:
        return
    # the same pass without anything below the top blocked job
    head = jobs[: jobs.index(top) + 1]
    alone = plan(head, nodes, {"main": PART}, "main", ends, 0.0)
    assert top.job_id in alone.reservations
    assert full.reservations[top.job_id].start_time <= alone.reservations[top.job_id].start_time
    # and whatever was backfilled ends before the reservation or fits beside it
    for d in full.start_now:
        if d.job_id in full.backfilled:
            assert d.job_id > top.job_id
