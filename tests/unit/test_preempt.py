"""Preemption: the pure choice of victims, and the Cluster acting on it."""

from __future__ import annotations

import signal

import pytest

from gsched.controller.cluster import Caller, Cluster, KillOrder, NodeReport, SignalOrder
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu, Node
from gsched.controller.policy import AccountDef, Policy, Qos
from gsched.controller.preempt import Candidate, choose_victims
from gsched.controller.priority import PriorityConfig
from gsched.controller.scheduler import Partition

S = JobState
ROOT = Caller(uid=0, user="root", admin=True)
ALICE = Caller(uid=1000, user="alice")
BOB = Caller(uid=1001, user="bob")
PART = Partition("main", all_nodes=True, default=True)


def make_job(user: Caller = ALICE, qos: str = "", **req: object) -> Job:
    return Job(job_id=0, user=user.user, uid=user.uid, gid=user.uid, group=user.user,
               name="job", request=Request(**req), spec=b"", submit_time=0.0,  # type: ignore[arg-type]
               qos=qos)


def new_cluster(policy: Policy, **kw: object) -> Cluster:
    c = Cluster([PART], "main", priority=PriorityConfig(), policy=policy, **kw)  # type: ignore[arg-type]
    for name in ("node1", "node2"):
        c.node_hello(name, NodeReport(16, 64000, tuple(Gpu(i) for i in range(4)), {}), [], [],
                     0.0)
    return c


def beat(c: Cluster, now: float) -> None:
    for name in c.nodes:
        c.node_heartbeat(name, None, now)


def inventory(n: int = 2, gpus: int = 4) -> dict[str, Node]:
    return {f"n{i}": Node(f"n{i}", cpus=16, mem_mb=64000, gpus=[Gpu(g) for g in range(gpus)],
                          up=True, connected=True, ever_registered=True)
            for i in range(1, n + 1)}


def run(nodes: dict[str, Node], job_id: int, node: str, gpus: tuple[int, ...]) -> None:
    nodes[node].allocate(job_id, 1, 0, gpus)


# ------------------------------------------------------------------ choice
def test_no_victims_needed_when_it_fits() -> None:
    nodes = inventory()
    assert choose_victims(Request(gpus_per_node=4), PART, nodes, []) == []


def test_fewest_lowest_priority_victims() -> None:
    nodes = inventory()
    run(nodes, 1, "n1", (0, 1))  # priority 10
    run(nodes, 2, "n1", (2, 3))  # priority 5
    run(nodes, 3, "n2", (0, 1, 2, 3))  # priority 1, one job frees a whole node
    cands = [Candidate(1, 10, 0.0, ("n1",)), Candidate(2, 5, 0.0, ("n1",)),
             Candidate(3, 1, 0.0, ("n2",))]
    assert choose_victims(Request(gpus_per_node=4), PART, nodes, cands) == [3]
    # needing 2 GPUs: the single lowest-priority job that frees them
    assert choose_victims(Request(gpus_per_node=2), PART, nodes, cands) == [3]
    before = {n: dict(x.jobs) for n, x in nodes.items()}
    choose_victims(Request(gpus_per_node=4, nodes=2), PART, nodes, cands)
    assert {n: dict(x.jobs) for n, x in nodes.items()} == before  # inventory untouched


def test_unneeded_victims_are_given_back() -> None:
    nodes = inventory(1)
    run(nodes, 1, "n1", (0,))  # lowest priority, but freeing it alone is not enough
    run(nodes, 2, "n1", (1, 2, 3))
    cands = [Candidate(1, 1, 0.0, ("n1",)), Candidate(2, 2, 0.0, ("n1",))]
    assert choose_victims(Request(gpus_per_node=3), PART, nodes, cands) == [2]
    assert choose_victims(Request(gpus_per_node=4), PART, nodes, cands) == [1, 2]


def test_younger_job_preempted_first_at_equal_priority() -> None:
    nodes = inventory(2)
    run(nodes, 1, "n1", (0, 1, 2, 3))
    run(nodes, 2, "n2", (0, 1, 2, 3))
    cands = [Candidate(1, 5, 100.0, ("n1",)), Candidate(2, 5, 200.0, ("n2",))]
    assert choose_victims(Request(gpus_per_node=4), PART, nodes, cands) == [2]


def test_no_set_of_victims_is_enough() -> None:
    nodes = inventory(1)
    run(nodes, 1, "n1", (0, 1))
    run(nodes, 2, "n1", (2, 3))  # not a candidate (QOS not preemptable)
    assert choose_victims(Request(gpus_per_node=4), PART, nodes,
                          [Candidate(1, 1, 0.0, ("n1",))]) is None


def test_gang_job_needs_victims_on_every_node() -> None:
    nodes = inventory(3)
    for i, n in enumerate(("n1", "n2", "n3"), start=1):
        run(nodes, i, n, (0, 1, 2, 3))
    cands = [Candidate(i, 10 * i, 0.0, (f"n{i}",)) for i in (1, 2, 3)]
    assert choose_victims(Request(nodes=2, gpus_per_node=4), PART, nodes, cands) == [1, 2]


# ------------------------------------------------------------------ in the cluster
def preempt_policy(mode: str = "REQUEUE", grace: int = 0) -> Policy:
    return Policy(
        [Qos("normal", preempt_mode=mode, grace_time=grace),
         Qos("urgent", priority=100, preempt=("normal",))],
        [AccountDef("lab", 1, {"alice": 1, "bob": 1})],
    )


def fill(c: object, n: int = 2) -> list[object]:
    jobs = [c.submit(make_job(gpus_per_node=4), float(i)) for i in range(n)]  # type: ignore[attr-defined]
    c.schedule(10.0)  # type: ignore[attr-defined]
    return jobs


def test_urgent_job_preempts_and_requeues_without_counting() -> None:
    c = new_cluster(preempt_policy(), max_requeue=0)
    low = fill(c)
    urgent = c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    orders = c.schedule(20.0)
    victim = low[1]  # same priority: the younger one
    assert victim.state == S.REQUEUED and low[0].state == S.RUNNING
    assert orders == [KillOrder(victim.batch_host, victim.job_id, 0, "preempted")]
    c.job_exited(victim.batch_host, victim.job_id, 0, 0, 15, "killed", 21.0)
    assert victim.state == S.PENDING and victim.preempt_count == 1
    assert victim.attempts[-1]["ended"] == "preempted"
    c.schedule(21.0)
    assert urgent.state == S.RUNNING and victim.state == S.PENDING
    # max_requeue=0: an infrastructure failure now ends it, the preemption did not count
    assert victim.attempt - victim.preempt_count == 0
    c.validate()


def test_grace_time_signals_first_then_kills() -> None:
    c = new_cluster(preempt_policy(grace=30))
    low = fill(c)
    low[1].request = Request(gpus_per_node=4, signal=int(signal.SIGUSR1), warn_before=60)
    c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    orders = c.schedule(20.0)
    # its own --signal, through its wrapper (B: or steps, as before a time limit)
    assert orders == [SignalOrder(low[1].batch_host, low[1].job_id, 0, 0, False,
                                  job_warning=True)]
    assert low[1].state == S.RUNNING and low[1].preempt_deadline == 50.0
    assert c.schedule(21.0) == []  # its preemption is in flight: nothing more
    beat(c, 49.0)
    assert c.tick(49.0) == []
    beat(c, 50.0)
    assert c.tick(50.0) == [KillOrder(low[1].batch_host, low[1].job_id, 0, "preempted")]


def test_preempted_job_without_signal_gets_sigterm_and_an_exit_in_grace_requeues() -> None:
    c = new_cluster(preempt_policy(grace=30))
    low = fill(c)
    c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    orders = c.schedule(20.0)
    victim = next(j for j in low if j.preempt_deadline)
    assert orders == [SignalOrder(victim.batch_host, victim.job_id, 0, int(signal.SIGTERM),
                                  False)]
    # it saves its state and exits 0 within the grace time: requeued, not COMPLETED
    c.job_exited(victim.batch_host, victim.job_id, 0, 0, 0, "", 25.0)
    assert victim.state == S.PENDING and victim.last_failure == "preempted"
    assert victim.preempt_count == 1 and victim.attempts[-1]["ended"] == "preempted"


def test_cancel_mode_ends_job_preempted() -> None:
    c = new_cluster(preempt_policy(mode="CANCEL"))
    low = fill(c)
    c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    c.schedule(20.0)
    c.job_exited(low[1].batch_host, low[1].job_id, 0, 0, 15, "killed", 21.0)
    assert low[1].state == S.PREEMPTED and low[1].is_final


def test_no_preemption_of_other_qos_or_mode_off() -> None:
    c = new_cluster(preempt_policy(mode="OFF"))
    fill(c)
    urgent = c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    assert c.schedule(20.0) == [] and urgent.reason == "Resources"
    c2 = new_cluster(preempt_policy())
    fill(c2)
    plain = c2.submit(make_job(BOB, gpus_per_node=4), 20.0)
    assert c2.schedule(20.0) == [] and plain.state == S.PENDING


@pytest.mark.parametrize("mode", ["REQUEUE", "CANCEL"])
def test_preemption_frees_just_enough(mode: str) -> None:
    c = new_cluster(preempt_policy(mode=mode))
    small = [c.submit(make_job(gpus_per_node=1), float(i)) for i in range(8)]
    c.schedule(10.0)
    c.submit(make_job(BOB, qos="urgent", gpus_per_node=2), 20.0)
    c.schedule(20.0)
    hit = [j for j in small if j.state != S.RUNNING]
    assert len(hit) == 2 and len({j.batch_host for j in hit}) == 1


def test_freed_resources_go_to_the_preemptor() -> None:
    c = new_cluster(preempt_policy())
    low = fill(c)
    urgent = c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    c.schedule(20.0)
    # a normal job with an operator-set top priority arrives while the victim leaves
    rival = c.submit(make_job(gpus_per_node=4), 20.5)
    c.update_job(rival.job_id, ROOT, {"Priority": "4000000000"}, 20.5)
    victim = next(j for j in low if j.state != S.RUNNING)
    c.job_exited(victim.batch_host, victim.job_id, 0, 0, 15, "killed", 21.0)
    c.schedule(21.0)
    assert urgent.state == S.RUNNING and rival.state == S.PENDING
    assert c.preempting == {}


def test_many_candidates_two_whole_nodes() -> None:
    nodes = {f"n{i}": Node(f"n{i}", cpus=64, mem_mb=0, gpus=[Gpu(g) for g in range(8)],
                           up=True, connected=True, ever_registered=True) for i in range(500)}
    cands = []
    for i, n in enumerate(nodes.values()):
        for g in range(8):
            jid = i * 8 + g + 1
            n.allocate(jid, 1, 0, (g,))
            cands.append(Candidate(jid, jid % 97, float(jid), (n.name,)))
    got = choose_victims(Request(nodes=2, gpus_per_node=8), PART, nodes, cands)
    # two whole nodes: the 16 jobs on them, and the nodes whose jobs have the
    # lowest priorities (priority = id % 97 puts ids 97, 194, ... first)
    assert got is not None and len(got) == 16
    hosts = {c.nodes[0] for c in cands if c.job_id in got}
    assert len(hosts) == 2


def test_several_urgent_jobs_preempt_in_one_pass_without_sharing_victims() -> None:
    c = new_cluster(preempt_policy(grace=30))
    low = fill(c)
    urgent = [c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0 + i)
              for i in range(3)]
    orders = c.schedule(22.0)
    # the first two each get a whole node's job; the third finds nothing left to take
    assert sorted(o.job_id for o in orders) == sorted(j.job_id for j in low)
    assert c.preempting == {urgent[0].job_id: {low[1].job_id},
                            urgent[1].job_id: {low[0].job_id}}
    assert c.schedule(23.0) == []  # nothing more while they leave
    for j in low:
        c.job_exited(j.batch_host, j.job_id, 0, 0, 15, "killed", 24.0)
    c.schedule(24.0)
    assert [j.state for j in urgent] == [S.RUNNING, S.RUNNING, S.PENDING]
    assert {urgent[0].batch_host, urgent[1].batch_host} == {"node1", "node2"}
    assert c.preempting == {}
    c.validate()


def test_a_later_urgent_job_preempts_while_an_earlier_preemption_is_in_flight() -> None:
    c = new_cluster(preempt_policy(grace=30))
    low = fill(c)
    first = c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 20.0)
    c.schedule(20.0)
    assert low[1].preempt_deadline == 50.0 and low[0].preempt_deadline == 0.0
    second = c.submit(make_job(BOB, qos="urgent", gpus_per_node=4), 25.0)
    orders = c.schedule(25.0)
    # not a grace time later: now, and not the job already leaving for the first
    assert [o.job_id for o in orders] == [low[0].job_id]
    assert low[0].preempt_deadline == 55.0
    assert c.preempting == {first.job_id: {low[1].job_id}, second.job_id: {low[0].job_id}}


def test_preemptors_in_one_pass_take_just_enough_each() -> None:
    c = new_cluster(preempt_policy())
    small = [c.submit(make_job(gpus_per_node=1), float(i)) for i in range(8)]
    c.schedule(10.0)
    urgent = [c.submit(make_job(BOB, qos="urgent", gpus_per_node=2), 20.0 + i)
              for i in range(2)]
    c.schedule(22.0)
    hit = [j for j in small if j.state != S.RUNNING]
    assert len(hit) == 4  # two each, none counted twice
    assert set().union(*c.preempting.values()) == {j.job_id for j in hit}
    for j in hit:
        c.job_exited(j.batch_host, j.job_id, 0, 0, 15, "killed", 23.0)
    c.schedule(23.0)
    assert [j.state for j in urgent] == [S.RUNNING, S.RUNNING]
    assert sum(j.state == S.RUNNING for j in small) == 4
    c.validate()
