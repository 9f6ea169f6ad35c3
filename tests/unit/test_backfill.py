"""Backfill with reservations: exact plans, gang correctness, no starvation, invariants."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time

import pytest

from gsched.controller.backfill import (
    BackfillConfig,
    BackfillPlan,
    PendingJob,
    Reservation,
    effective_time_limit,
    expected_ends,
    plan,
    schedule_backfill,
)
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu, Node
from gsched.controller.scheduler import Decision, Partition, Placement, fits, schedule

PART = {"gpu": Partition("gpu", all_nodes=True, default=True)}
INF = math.inf


def mknode(name: str, gpus: int = 4, cpus: int = 16, mem: int = 64000, gtype: str = "a100",
           types: tuple[str, ...] = ()) -> Node:
    kinds = types or (gtype,) * gpus
    return Node(name, cpus=cpus, mem_mb=mem, gpus=[Gpu(i, t) for i, t in enumerate(kinds)],
                up=True, ever_registered=True, connected=True)


def cluster(n: int = 2, **kw: object) -> dict[str, Node]:
    return {f"n{i}": mknode(f"n{i}", **kw) for i in range(1, n + 1)}  # type: ignore[arg-type]


def run(nodes: dict[str, Node], job_id: int, node: str, gpus: tuple[int, ...], cpus: int = 1,
        mem: int = 0) -> None:
    nodes[node].allocate(job_id, cpus, mem, gpus)


def pj(job_id: int, **req: object) -> PendingJob:
    return PendingJob(job_id, Request(**req))  # type: ignore[arg-type]


def started(p: BackfillPlan) -> dict[int, tuple[str, ...]]:
    return {d.job_id: tuple(x.node for x in d.placements) for d in p.start_now}


# ------------------------------------------------------------------ basics
def test_everything_fits_starts_now() -> None:
    nodes = cluster(2)
    p = plan([pj(1, gpus_per_node=2, time_limit=60), pj(2, nodes=2, gpus_per_node=1,
                                                        time_limit=60)],
             nodes, PART, "gpu", {}, now=0.0)
    assert p.start_now == (
        Decision(1, "gpu", (Placement("n1", 1, 0, (0, 1)),)),
        Decision(2, "gpu", (Placement("n1", 1, 0, (2,)), Placement("n2", 1, 0, (0,)))),
    )
    assert p.reservations == {} and p.reasons == {} and p.backfilled == frozenset()
    assert all(not n.jobs for n in nodes.values())  # plan() changes nothing


def test_reservation_from_expected_end() -> None:
    nodes = cluster(1)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    p = plan([pj(1, gpus_per_node=4, time_limit=60)], nodes, PART, "gpu", {100: 500.0}, 100.0)
    assert p.start_now == ()
    assert p.reservations == {1: Reservation(1, "gpu", 500.0, 560.0, ("n1",))}
    assert p.reasons == {1: "Resources"}


def test_job_without_end_never_releases() -> None:
    nodes = cluster(1)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    p = plan([pj(1, gpus_per_node=1, time_limit=60)], nodes, PART, "gpu", {}, 0.0)
    assert p.reservations == {} and p.reasons == {1: "Resources"}


# ------------------------------------------------------------------ the EASY promise
def starvation_setup() -> tuple[dict[str, Node], dict[int, float]]:
    # n1: all 4 GPUs busy until t=100; n2: 2 of 4 busy until t=50
    nodes = cluster(2)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    run(nodes, 101, "n2", (0, 1))
    return nodes, {100: 100.0, 101: 50.0}


def test_big_gang_job_gets_reservation_and_is_not_starved() -> None:
    nodes, ends = starvation_setup()
    pending = [
        pj(1, nodes=2, gpus_per_node=4, time_limit=1000),  # blocked: both nodes at t=100
        pj(2, gpus_per_node=1, time_limit=30),  # ends at 30 < 100: backfills
        pj(3, gpus_per_node=1, time_limit=200),  # would hold n2 past 100: waits
        pj(4, gpus_per_node=1, time_limit=100),  # ends exactly at 100: backfills
        pj(5, gpus_per_node=1, time_limit=10),  # no GPU left now
    ]
    p = plan(pending, nodes, PART, "gpu", ends, now=0.0)
    assert started(p) == {2: ("n2",), 4: ("n2",)}
    assert p.backfilled == {2, 4}
    assert p.reservations[1] == Reservation(1, "gpu", 100.0, 1100.0, ("n1", "n2"))
    # 3 could run now but would delay job 1; 5 has no room now (it gets its own slot)
    assert p.reasons == {1: "Resources", 3: "Priority", 5: "Resources"}


def test_depth_reserves_later_blocked_jobs_in_order() -> None:
    nodes, ends = starvation_setup()
    pending = [
        pj(1, nodes=2, gpus_per_node=4, time_limit=1000),
        pj(2, gpus_per_node=1, time_limit=30),
        pj(3, gpus_per_node=1, time_limit=200),
        pj(4, gpus_per_node=1, time_limit=100),
        pj(5, gpus_per_node=1, time_limit=10),
    ]
    p = plan(pending, nodes, PART, "gpu", ends, now=0.0)
    # job 3 (200 s) fits nowhere before job 1 starts, nor beside it: after job 1 ends
    assert p.reservations[3] == Reservation(3, "gpu", 1100.0, 1300.0, ("n1",))
    # job 5 (10 s): n2 has a GPU free from t=30 (job 2 ends) until job 1 at 100
    assert p.reservations[5] == Reservation(5, "gpu", 30.0, 40.0, ("n2",))


def test_unlimited_small_job_cannot_backfill() -> None:
    nodes, ends = starvation_setup()
    pending = [pj(1, nodes=2, gpus_per_node=4, time_limit=1000),
               pj(2, gpus_per_node=1, time_limit=-1)]  # unlimited: would never give n2 back
    p = plan(pending, nodes, PART, "gpu", ends, now=0.0)
    assert started(p) == {}
    assert p.reasons == {1: "Resources", 2: "Priority"}
    assert p.reservations[2] == Reservation(2, "gpu", 1100.0, INF, ("n1",))  # after job 1
    p = plan(pending, nodes, PART, "gpu", ends, now=0.0, cfg=BackfillConfig(window=1000))
    assert started(p) == {}
    assert 2 not in p.reservations  # 1100 is beyond the window


def test_job_that_leaves_reserved_resources_alone_may_run_long() -> None:
    # n1: 8 GPUs, 4 busy until 100. Job 1 wants 6 GPUs: reserved at 100 on n1.
    # That leaves 2 GPUs of n1 unreserved forever: a long 2-GPU job may take them now,
    # a 3-GPU job would eat into the reservation.
    nodes = {"n1": mknode("n1", gpus=8)}
    run(nodes, 100, "n1", (0, 1, 2, 3))
    p = plan([pj(1, gpus_per_node=6, time_limit=500),
              pj(2, gpus_per_node=3, time_limit=10_000),
              pj(3, gpus_per_node=2, time_limit=10_000)],
             nodes, PART, "gpu", {100: 100.0}, now=0.0)
    assert started(p) == {3: ("n1",)}
    assert p.start_now[0].placements[0].gpus == (4, 5)
    assert p.reservations[1] == Reservation(1, "gpu", 100.0, 600.0, ("n1",))
    assert p.reasons[2] == "Priority"


def test_cpu_and_memory_reservations_count_too() -> None:
    nodes = {"n1": mknode("n1", gpus=0, cpus=16, mem=1000)}
    run(nodes, 100, "n1", (), cpus=8, mem=500)
    p = plan([pj(1, cpus_per_node=16, time_limit=60),  # needs the whole node at t=50
              pj(2, cpus_per_node=4, time_limit=100),  # would overlap: waits
              pj(3, cpus_per_node=4, time_limit=50),  # done by 50: runs
              pj(4, cpus_per_node=1, mem_per_node_mb=600, time_limit=1)],  # no memory now
             nodes, PART, "gpu", {100: 50.0}, now=0.0)
    assert started(p) == {3: ("n1",)}
    assert p.reservations[1].start_time == 50.0
    assert p.reservations[4].start_time == 110.0  # memory frees at 50, but job 1 has it
    assert p.reasons == {1: "Resources", 2: "Priority", 4: "Resources"}


# ------------------------------------------------------------------ gangs
def test_gang_waits_for_all_nodes_together() -> None:
    nodes = cluster(3)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    run(nodes, 101, "n2", (0, 1, 2, 3))
    run(nodes, 102, "n3", (0, 1, 2, 3))
    ends = {100: 10.0, 101: 20.0, 102: 30.0}
    p = plan([pj(1, nodes=2, gpus_per_node=4, time_limit=5)], nodes, PART, "gpu", ends, 0.0)
    assert p.reservations[1] == Reservation(1, "gpu", 20.0, 25.0, ("n1", "n2"))
    p = plan([pj(1, nodes=3, gpus_per_node=4, time_limit=5)], nodes, PART, "gpu", ends, 0.0)
    assert p.reservations[1] == Reservation(1, "gpu", 30.0, 35.0, ("n1", "n2", "n3"))


def test_gang_skips_a_node_whose_window_is_too_short() -> None:
    # n1 frees at 10 but job 1 (n1 + n4) has it from 40: a 30 s gap. Job 2 (2 nodes x
    # 60 s) cannot use the gap and waits for n2 (30) and n3 (50); job 3 (20 s) fits it.
    nodes = cluster(4)
    for i in (1, 2, 3, 4):
        run(nodes, 100 + i, f"n{i}", (0, 1, 2, 3))
    ends = {101: 10.0, 102: 30.0, 103: 50.0, 104: 40.0}
    p = plan([pj(1, nodes=2, nodelist=("n1", "n4"), gpus_per_node=4, time_limit=1000),
              pj(2, nodes=2, gpus_per_node=4, time_limit=60),
              pj(3, gpus_per_node=4, time_limit=20)],
             nodes, PART, "gpu", ends, 0.0)
    assert p.reservations == {
        1: Reservation(1, "gpu", 40.0, 1040.0, ("n1", "n4")),
        2: Reservation(2, "gpu", 50.0, 110.0, ("n2", "n3")),
        3: Reservation(3, "gpu", 10.0, 30.0, ("n1",)),
    }


def test_gang_start_now_is_all_or_nothing() -> None:
    nodes = cluster(2)
    run(nodes, 100, "n2", (0, 1, 2, 3))
    p = plan([pj(1, nodes=2, gpus_per_node=1, time_limit=10)], nodes, PART, "gpu",
             {100: 100.0}, 0.0)
    assert started(p) == {}
    assert p.reservations[1] == Reservation(1, "gpu", 100.0, 110.0, ("n1", "n2"))


# ------------------------------------------------------------------ request options
def test_nodelist_and_exclude() -> None:
    nodes = cluster(3)
    for i in (1, 2, 3):
        run(nodes, 100 + i, f"n{i}", (0, 1, 2, 3))
    ends = {101: 10.0, 102: 20.0, 103: 30.0}
    p = plan([pj(1, nodelist=("n3",), gpus_per_node=1, time_limit=5),
              pj(2, exclude=("n1",), gpus_per_node=1, time_limit=5)],
             nodes, PART, "gpu", ends, 0.0)
    assert p.reservations[1] == Reservation(1, "gpu", 30.0, 35.0, ("n3",))
    assert p.reservations[2] == Reservation(2, "gpu", 20.0, 25.0, ("n2",))


def test_nodelist_outside_partition_gets_nothing() -> None:
    nodes = cluster(2)
    parts = {"gpu": Partition("gpu", nodes=("n1",))}
    p = plan([pj(1, nodelist=("n2",), time_limit=5)], nodes, parts, "gpu", {}, 0.0)
    assert started(p) == {} and p.reservations == {}
    assert p.reasons == {1: "Resources"}


def test_gpu_type() -> None:
    nodes = {"a": mknode("a", gpus=2, gtype="a100"), "b": mknode("b", gpus=2, gtype="h100")}
    run(nodes, 100, "b", (0, 1))
    p = plan([pj(1, gpus_per_node=1, gpu_type="h100", time_limit=5),
              pj(2, gpus_per_node=1, gpu_type="a100", time_limit=5),
              pj(3, gpus_per_node=1, gpu_type="v100", time_limit=5)],
             nodes, PART, "gpu", {100: 40.0}, 0.0)
    assert started(p) == {2: ("a",)}
    assert p.reservations == {1: Reservation(1, "gpu", 40.0, 45.0, ("b",))}
    assert 3 not in p.reservations


def test_mixed_gpu_types_on_one_node() -> None:
    nodes = {"m": mknode("m", types=("a100", "a100", "t4", "t4"))}
    run(nodes, 100, "m", (0, 1))
    p = plan([pj(1, gpus_per_node=2, gpu_type="a100", time_limit=50),
              pj(2, gpus_per_node=2, time_limit=10_000),
              pj(3, gpus_per_node=1, gpu_type="t4", time_limit=10_000)],
             nodes, PART, "gpu", {100: 20.0}, 0.0)
    # job 1 reserved on the a100s at 20; job 2 (any type) takes the two t4s now
    assert started(p) == {2: ("m",)}
    assert p.start_now[0].placements[0].gpus == (2, 3)
    assert p.reservations[1] == Reservation(1, "gpu", 20.0, 70.0, ("m",))
    assert p.reservations[3] == Reservation(3, "gpu", 10_000.0, 20_000.0, ("m",))


def test_exclusive_job_reserves_the_whole_node() -> None:
    nodes = cluster(1)
    run(nodes, 100, "n1", (0,))
    p = plan([pj(1, exclusive=True, time_limit=100),
              pj(2, gpus_per_node=1, time_limit=60),  # would overlap the exclusive job
              pj(3, gpus_per_node=1, time_limit=50)],  # done when job 100 ends: fine
             nodes, PART, "gpu", {100: 50.0}, 0.0)
    assert started(p) == {3: ("n1",)}
    assert p.reservations[1] == Reservation(1, "gpu", 50.0, 150.0, ("n1",))
    assert p.reasons == {1: "Resources", 2: "Priority"}


def test_exclusive_running_job_blocks_node_until_it_ends() -> None:
    nodes = cluster(1)
    p1 = plan([pj(1, exclusive=True, time_limit=100)], nodes, PART, "gpu", {}, 0.0)
    assert p1.start_now[0].placements == (Placement("n1", 16, 64000, (0, 1, 2, 3)),)
    nodes["n1"].allocate(1, 16, 64000, (0, 1, 2, 3))
    p = plan([pj(2, cpus_per_node=1, time_limit=5)], nodes, PART, "gpu", {1: 100.0}, 0.0)
    assert p.reservations[2].start_time == 100.0


@pytest.mark.parametrize("mem", [64000, 0])  # 0: the node does not report memory
def test_whole_node_memory_needs_an_empty_node(mem: int) -> None:
    nodes = cluster(1, mem=mem)
    run(nodes, 100, "n1", (0,), mem=10)
    p = plan([pj(1, mem_whole_node=True, time_limit=10),
              pj(2, gpus_per_node=1, time_limit=300),  # the node would not be empty at 30
              pj(3, gpus_per_node=1, time_limit=20)],  # gone by 30
             nodes, PART, "gpu", {100: 30.0}, 0.0)
    assert p.reservations[1] == Reservation(1, "gpu", 30.0, 40.0, ("n1",))
    assert started(p) == {3: ("n1",)}
    assert p.reasons[2] == "Priority"


def test_unhealthy_gpu_does_not_come_back() -> None:
    nodes = cluster(1, gpus=2)
    run(nodes, 100, "n1", (0, 1))
    nodes["n1"].gpus[1].healthy = False
    p = plan([pj(1, gpus_per_node=2, time_limit=5), pj(2, gpus_per_node=1, time_limit=5)],
             nodes, PART, "gpu", {100: 10.0}, 0.0)
    assert 1 not in p.reservations
    assert p.reservations[2] == Reservation(2, "gpu", 10.0, 15.0, ("n1",))


def test_untracked_cpus_and_memory_are_unlimited() -> None:
    nodes = {"n1": mknode("n1", gpus=1, cpus=0, mem=0)}
    run(nodes, 100, "n1", (0,))
    p = plan([pj(1, cpus_per_node=64, mem_per_node_mb=10**6, time_limit=5)],
             nodes, PART, "gpu", {100: 10.0}, 0.0)
    assert started(p) == {1: ("n1",)}


def test_down_and_drained_nodes_are_not_planned() -> None:
    nodes = cluster(2)
    nodes["n1"].drain = True
    run(nodes, 100, "n2", (0, 1, 2, 3))
    p = plan([pj(1, gpus_per_node=1, time_limit=5)], nodes, PART, "gpu", {100: 10.0}, 0.0)
    assert p.reservations[1].nodes == ("n2",)
    nodes["n2"].up = False
    p = plan([pj(1, gpus_per_node=1, time_limit=5)], nodes, PART, "gpu", {100: 10.0}, 0.0)
    assert p.reservations == {} and started(p) == {}


def test_avoid_is_a_preference() -> None:
    nodes = cluster(2)
    p = plan([pj(1, avoid=("n1",), time_limit=5)], nodes, PART, "gpu", {}, 0.0)
    assert started(p) == {1: ("n2",)}
    nodes = cluster(1)
    p = plan([pj(1, avoid=("n1",), time_limit=5)], nodes, PART, "gpu", {}, 0.0)
    assert started(p) == {1: ("n1",)}


# ------------------------------------------------------------------ partitions, limits
def test_partition_default_and_max_time() -> None:
    part = Partition("gpu", all_nodes=True, default_time=30, max_time=200)
    assert effective_time_limit(Request(time_limit=0), part) == 30
    assert effective_time_limit(Request(time_limit=500), part) == 200
    assert effective_time_limit(Request(time_limit=-1), part) == 200
    assert effective_time_limit(Request(time_limit=100), part) == 100
    assert effective_time_limit(Request(time_limit=0), Partition("x")) == -1
    nodes, ends = starvation_setup()
    parts = {"gpu": part}
    p = plan([pj(1, nodes=2, gpus_per_node=4, time_limit=-1),
              pj(2, gpus_per_node=1)],  # DefaultTime 30: fits before 100
             nodes, parts, "gpu", ends, 0.0)
    assert started(p) == {2: ("n2",)}
    assert p.reservations[1].end_time == 300.0  # MaxTime capped UNLIMITED at 200
    # a limit above MaxTime (the partition changed after submission) waits, as SLURM
    p = plan([pj(3, time_limit=1000)], nodes, parts, "gpu", ends, 0.0)
    assert p.reasons == {3: "PartitionTimeLimit"} and not p.start_now


def test_partition_reasons() -> None:
    nodes = cluster(2)
    parts = {
        "gpu": Partition("gpu", all_nodes=True),
        "down": Partition("down", all_nodes=True, state="DOWN"),
        "inactive": Partition("inactive", all_nodes=True, state="INACTIVE"),
        "drain": Partition("drain", all_nodes=True, state="DRAIN"),
        "small": Partition("small", nodes=("n1",), max_nodes=1),
    }
    p = plan([pj(1, partitions=("down",)), pj(2, partitions=("nope",)),
              pj(3, partitions=("inactive",)), pj(4, partitions=("small",), nodes=2),
              pj(5, partitions=("gpu",), nodes=3), pj(6, partitions=("drain",))],
             nodes, parts, "gpu", {}, 0.0)
    assert p.reasons == {1: "PartitionDown", 2: "PartitionDown", 3: "PartitionInactive",
                         4: "PartitionNodeLimit", 5: "PartitionNodeLimit"}
    # DRAIN refuses new submissions, but jobs already queued there still start
    assert started(p) == {6: ("n1",)}


def test_multi_partition_job_takes_earliest() -> None:
    nodes = cluster(2)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    run(nodes, 101, "n2", (0, 1, 2, 3))
    parts = {"a": Partition("a", nodes=("n1",)), "b": Partition("b", nodes=("n2",))}
    p = plan([pj(1, partitions=("a", "b"), gpus_per_node=1, time_limit=5)],
             nodes, parts, "a", {100: 50.0, 101: 20.0}, 0.0)
    assert p.reservations[1] == Reservation(1, "b", 20.0, 25.0, ("n2",))


def test_first_blocked_per_partition_is_resources() -> None:
    nodes = cluster(2)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    run(nodes, 101, "n2", (0, 1, 2, 3))
    parts = {"a": Partition("a", nodes=("n1",)), "b": Partition("b", nodes=("n2",))}
    p = plan([pj(1, partitions=("a",), gpus_per_node=1, time_limit=5),
              pj(2, partitions=("b",), gpus_per_node=1, time_limit=5),
              pj(3, partitions=("a",), gpus_per_node=1, time_limit=5)],
             nodes, parts, "a", {}, 0.0, BackfillConfig(depth=0))
    assert p.reasons == {1: "Resources", 2: "Resources", 3: "Priority"}


# ------------------------------------------------------------------ depth and window
def test_depth_limits_reservations() -> None:
    nodes, ends = starvation_setup()
    pending = [pj(1, nodes=2, gpus_per_node=4, time_limit=1000),
               pj(2, nodes=2, gpus_per_node=4, time_limit=1000),
               pj(3, gpus_per_node=2, time_limit=5000)]
    p = plan(pending, nodes, PART, "gpu", ends, 0.0, BackfillConfig(depth=1))
    assert list(p.reservations) == [1]
    assert p.reasons == {1: "Resources", 2: "Priority", 3: "Priority"}
    p = plan(pending, nodes, PART, "gpu", ends, 0.0, BackfillConfig(depth=0))
    assert p.reservations == {}
    assert started(p) == {3: ("n2",)}  # nothing reserved: it just fills the hole


def test_window_limits_how_far_ahead() -> None:
    nodes = cluster(1)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    pending = [pj(1, gpus_per_node=1, time_limit=5)]
    p = plan(pending, nodes, PART, "gpu", {100: 5000.0}, 0.0, BackfillConfig(window=4000))
    assert p.reservations == {} and p.reasons == {1: "Resources"}
    p = plan(pending, nodes, PART, "gpu", {100: 4000.0}, 0.0, BackfillConfig(window=4000))
    assert p.reservations[1].start_time == 4000.0


def test_overdue_job_counts_as_ending_now() -> None:
    nodes = cluster(1)
    run(nodes, 100, "n1", (0, 1, 2, 3))
    p = plan([pj(1, gpus_per_node=4, time_limit=60), pj(2, gpus_per_node=1, time_limit=1)],
             nodes, PART, "gpu", {100: 50.0}, now=80.0)
    assert started(p) == {}  # the resources are not free yet
    assert p.reservations[1] == Reservation(1, "gpu", 80.0, 140.0, ("n1",))
    assert p.reservations[2] == Reservation(2, "gpu", 140.0, 141.0, ("n1",))


# ------------------------------------------------------------------ helpers
def make_job(job_id: int, state: JobState, start: float = 0.0, limit: int = -1,
             pending_nodes: tuple[str, ...] = (), hold: bool = False, reason: str = "None",
             **req: object) -> Job:
    return Job(job_id=job_id, user="u", uid=1, gid=1, group="u", name="j",
               request=Request(**req), spec=b"", submit_time=0.0, state=state,  # type: ignore[arg-type]
               start_time=start, time_limit=limit, pending_nodes=list(pending_nodes),
               hold=hold, reason=reason)


def test_expected_ends() -> None:
    jobs = [
        make_job(1, JobState.RUNNING, start=10.0, limit=100),
        make_job(2, JobState.RUNNING, start=10.0, limit=-1),
        make_job(3, JobState.RUNNING, start=0.0, limit=5),  # overdue
        make_job(4, JobState.COMPLETING, pending_nodes=("n1",)),
        make_job(5, JobState.PENDING),
        make_job(6, JobState.REQUEUED, pending_nodes=("n1",)),
    ]
    assert expected_ends(jobs, now=50.0) == {1: 110.0, 2: INF, 3: 50.0, 4: 50.0, 6: 50.0}


def test_schedule_backfill_is_a_drop_in() -> None:
    nodes, ends = starvation_setup()
    jobs = [make_job(1, JobState.PENDING, nodes=2, gpus_per_node=4, time_limit=1000),
            make_job(2, JobState.PENDING, hold=True),
            make_job(3, JobState.PENDING, hold=True, reason="JobHeldAdmin"),
            make_job(4, JobState.PENDING, gpus_per_node=1, time_limit=30)]
    decisions, reasons, p = schedule_backfill(jobs, nodes, PART, "gpu", ends, 0.0)
    assert [d.job_id for d in decisions] == [4]
    assert reasons == {1: "Resources", 2: "JobHeldUser", 3: "JobHeldAdmin"}
    assert 4 in nodes["n2"].jobs  # applied, like scheduler.schedule
    assert p.reservations[1].start_time == 100.0
    for n in nodes.values():
        n.validate()


# ------------------------------------------------------------------ over time
def simulate(depth: int, until: float = 2000.0) -> tuple[dict[int, float], list[float]]:
    """A 2-node job (id 1) among a steady stream of 40 s 1-GPU jobs, one pass a second.

    Returns each job's start time and the big job's planned start at every pass
    before it started.
    """
    nodes = cluster(2, gpus=2)
    jobs: dict[int, Request] = {1: Request(nodes=2, gpus_per_node=2, time_limit=100)}
    submit: dict[int, float] = {1: 1.0}
    ends: dict[int, float] = {}
    starts: dict[int, float] = {}
    planned: list[float] = []
    for jid, node, end in ((50, "n1", 30.0), (51, "n2", 45.0)):  # already running
        nodes[node].allocate(jid, 1, 0, (0,))
        ends[jid] = end
    next_id = 100
    for second in range(int(until) + 1):
        now = float(second)
        if second % 5 == 0:  # a small job every 5 s, each after the big one in priority
            jobs[next_id] = Request(gpus_per_node=1, time_limit=40)
            submit[next_id] = now
            next_id += 1
        for jid, end in list(ends.items()):
            if end <= now:
                for n in nodes.values():
                    n.release(jid)
                del ends[jid]
        pending = [PendingJob(j, jobs[j]) for j in sorted(jobs, key=lambda j: (submit[j], j))
                   if j not in starts]
        p = plan(pending, nodes, PART, "gpu", ends, now, BackfillConfig(depth=depth))
        for d in p.start_now:
            for pl in d.placements:
                nodes[pl.node].allocate(d.job_id, pl.cpus, pl.mem_mb, pl.gpus)
            starts[d.job_id] = now
            ends[d.job_id] = now + jobs[d.job_id].time_limit
        for n in nodes.values():
            n.validate()
        if 1 in p.reservations:
            planned.append(p.reservations[1].start_time)
    return starts, planned


def test_stream_of_small_jobs_does_not_starve_big_job() -> None:
    # without reservations, small jobs keep taking the GPUs as they free: it never runs
    greedy, _ = simulate(depth=0)
    assert 1 not in greedy
    assert len(greedy) > 40
    starts, planned = simulate(depth=10)
    # reserved from its first pass for t=45 (when job 51 ends), never moved, kept
    assert planned[0] == 45.0 and set(planned) == {45.0}
    # job 100 was submitted before the big job and simply ran first; job 101 backfilled
    # (done by 45); jobs 102.. would have run past 45 and waited for the big job's end
    first = sorted(starts.items(), key=lambda kv: (kv[1], kv[0]))[:7]
    assert first == [(100, 0.0), (101, 5.0), (1, 45.0), (102, 145.0), (103, 145.0),
                     (104, 145.0), (105, 145.0)]


# ------------------------------------------------------------------ random invariants
def random_case(seed: int) -> tuple[dict[str, Node], dict[int, float], list[PendingJob], float]:
    rng = random.Random(seed)
    nodes: dict[str, Node] = {}
    for i in range(rng.randint(2, 6)):
        nodes[f"n{i}"] = mknode(f"n{i}", gpus=rng.choice((2, 4, 8)), cpus=rng.choice((8, 16)),
                                mem=rng.choice((0, 64000)), gtype=rng.choice(("a100", "h100")))
    now = 1000.0
    ends: dict[int, float] = {}
    jid = 1000
    for node in nodes.values():
        for _ in range(rng.randint(0, 4)):
            free = node.free_gpus()
            k = rng.randint(0, len(free))
            cpus = rng.randint(1, 4)
            if cpus > node.cpus - node.cpus_alloc:
                break
            node.allocate(jid, cpus, 0, tuple(free[:k]))
            ends[jid] = rng.choice((now + rng.randint(1, 500), INF))
            jid += 1
    pending = []
    names = sorted(nodes)
    for j in range(rng.randint(1, 25)):
        roll = rng.random()
        pending.append(PendingJob(j, Request(
            nodes=rng.choice((1, 1, 1, 2, 3)),
            gpus_per_node=rng.choice((0, 1, 2, 4, 8)),
            cpus_per_node=rng.choice((1, 2, 4, 8)),
            mem_per_node_mb=rng.choice((0, 0, 1000, 40000)),
            mem_whole_node=rng.random() < 0.05,
            gpu_type=rng.choice(("", "", "a100", "h100")),
            exclusive=rng.random() < 0.1,
            nodelist=tuple(rng.sample(names, rng.randint(1, 2))) if roll < 0.1 else (),
            exclude=(rng.choice(names),) if 0.1 <= roll < 0.2 else (),
            time_limit=rng.choice((10, 60, 300, 1000, -1)),
        )))
    return nodes, ends, pending, now


def usage_ok(nodes: dict[str, Node], ends: dict[int, float], p: BackfillPlan,
             pending: list[PendingJob], now: float) -> None:
    """At every instant, running + started + reserved fit every node (GPUs and CPUs)."""
    reqs = {j.job_id: j.request for j in pending}
    items: list[tuple[str, float, float, int, int]] = []  # node, from, to, gpus, cpus
    for n in nodes.values():
        for jid, (c, _, g) in n.jobs.items():
            items.append((n.name, now, ends.get(jid, INF), len(g), c))
    for d in p.start_now:
        limit = reqs[d.job_id].time_limit
        for pl in d.placements:
            items.append((pl.node, now, INF if limit < 0 else now + limit, len(pl.gpus), pl.cpus))
    for r in p.reservations.values():
        req = reqs[r.job_id]
        for name in r.nodes:
            n = nodes[name]
            g = len([x for x in n.gpus if x.healthy]) if req.exclusive else req.gpus_per_node
            c = n.cpus if req.exclusive else req.cpus_per_node
            items.append((name, r.start_time, r.end_time, g, c))
    for n in nodes.values():
        mine = [it for it in items if it[0] == n.name]
        for t in {it[1] for it in mine}:
            live = [it for it in mine if it[1] <= t < it[2]]
            assert sum(it[3] for it in live) <= len(n.gpus), (n.name, t, live)
            assert sum(it[4] for it in live) <= n.cpus, (n.name, t, live)


@pytest.mark.parametrize("seed", range(150))
def test_random_plans_never_overbook_and_never_delay_the_top_job(seed: int) -> None:
    nodes, ends, pending, now = random_case(seed)
    p = plan(pending, nodes, PART, "gpu", ends, now, BackfillConfig(depth=10, window=10**6))
    # placements are valid right now
    applied = copy.deepcopy(nodes)
    for d in p.start_now:
        req = next(j.request for j in pending if j.job_id == d.job_id)
        assert len(d.placements) == max(req.nodes, len(req.nodelist))
        for pl in d.placements:
            applied[pl.node].allocate(d.job_id, pl.cpus, pl.mem_mb, pl.gpus)
    for n in applied.values():
        n.validate()
    usage_ok(nodes, ends, p, pending, now)
    # the top blocked job's expected start does not move later once backfilled jobs run
    if p.reservations:
        top = next(j for j in pending if j.job_id in p.reservations)
        ends2 = dict(ends)
        for d in p.start_now:
            limit = next(j for j in pending if j.job_id == d.job_id).request.time_limit
            ends2[d.job_id] = INF if limit < 0 else now + limit
        rest = [j for j in pending if j.job_id not in {d.job_id for d in p.start_now}]
        p2 = plan(rest, applied, PART, "gpu", ends2, now, BackfillConfig(depth=10, window=10**6))
        assert top.job_id not in started(p2) or p.reservations[top.job_id].start_time == now
        if top.job_id in p2.reservations:
            assert p2.reservations[top.job_id].start_time <= p.reservations[top.job_id].start_time


def oracle_start(job: PendingJob, nodes: dict[str, Node], ends: dict[int, float], now: float,
                 window: float) -> float | None:
    """Brute force: the first time at which scheduler.fits accepts enough nodes, with the
    running jobs that have ended by then taken off (a copy of each node per instant)."""
    req = job.request
    for t in sorted({now, *(max(e, now) for e in ends.values() if e != INF)}):
        if t > now + window:
            return None
        ok = []
        for node in nodes.values():
            later = copy.copy(node)
            later.jobs = {j: a for j, a in node.jobs.items() if ends.get(j, INF) > t}
            if fits(req, later) is not None:
                ok.append(node.name)
        if all(n in ok for n in req.nodelist) and len(ok) >= req.nodes:
            return t
    return None


@pytest.mark.parametrize("seed", range(150))
def test_earliest_start_matches_brute_force(seed: int) -> None:
    nodes, ends, pending, now = random_case(seed)
    for job in pending:
        want = oracle_start(job, nodes, ends, now, 5000.0)
        p = plan([job], nodes, PART, "gpu", ends, now, BackfillConfig(window=5000.0))
        if p.start_now:
            assert want == now
        elif want is None:
            assert p.reservations == {}
        else:
            r = p.reservations[job.job_id]
            assert r.start_time == want
            assert len(r.nodes) == max(job.request.nodes, len(job.request.nodelist))
            assert set(job.request.nodelist) <= set(r.nodes)


@pytest.mark.parametrize("seed", range(150))
def test_depth_zero_matches_the_plain_scheduler(seed: int) -> None:
    nodes, ends, pending, now = random_case(seed)
    p = plan(pending, nodes, PART, "gpu", ends, now, BackfillConfig(depth=0))
    jobs = [make_job(j.job_id, JobState.PENDING, **dataclasses.asdict(j.request))
            for j in pending]
    decisions, reasons = schedule(jobs, copy.deepcopy(nodes), PART, "gpu")
    assert list(p.start_now) == decisions
    assert dict(p.reasons) == reasons


# ------------------------------------------------------------------ scale
def big_case(n_nodes: int = 1000, n_pending: int = 10_000,
             seed: int = 7) -> tuple[dict[str, Node], dict[int, float], list[PendingJob]]:
    rng = random.Random(seed)
    nodes = {f"g{i:04d}": mknode(f"g{i:04d}", gpus=8, cpus=64, mem=512_000)
             for i in range(n_nodes)}
    ends: dict[int, float] = {}
    jid = 10**6
    for node in nodes.values():
        while len(node.free_gpus()) > rng.choice((0, 0, 0, 1)):
            k = min(len(node.free_gpus()), rng.choice((1, 2, 4, 8)))
            node.allocate(jid, 4 * k, 0, tuple(node.free_gpus()[:k]))
            ends[jid] = rng.uniform(10, 86400 * 2)
            jid += 1
    pending = [PendingJob(j, Request(
        nodes=rng.choice((1, 1, 1, 1, 2, 4, 8)), gpus_per_node=rng.choice((1, 2, 4, 8)),
        cpus_per_node=rng.choice((1, 4, 16)),
        time_limit=rng.choice((600, 3600, 4 * 3600, 86400)))) for j in range(n_pending)]
    return nodes, ends, pending


def test_ten_thousand_pending_depth_one_hundred() -> None:
    nodes, ends, pending = big_case()
    p = plan(pending, nodes, PART, "gpu", ends, 0.0, BackfillConfig(depth=100))
    assert 0 < len(p.reservations) <= 100
    assert len(p.start_now) + len(p.reasons) == len(pending)
    applied = copy.deepcopy(nodes)
    for d in p.start_now:
        for pl in d.placements:
            applied[pl.node].allocate(d.job_id, pl.cpus, pl.mem_mb, pl.gpus)
    for n in applied.values():
        n.validate()
    usage_ok(nodes, ends, p, pending, 0.0)


if __name__ == "__main__":
    nodes, ends, pending = big_case()
    jobs = [make_job(j.job_id, JobState.PENDING, **dataclasses.asdict(j.request))
            for j in pending]
    scratch = copy.deepcopy(nodes)
    t0 = time.perf_counter()
    schedule(jobs, scratch, PART, "gpu")
    print(f"scheduler.schedule (no backfill), same case: {(time.perf_counter() - t0) * 1000:.1f} ms")
    for depth in (0, 100):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            p = plan(pending, nodes, PART, "gpu", ends, 0.0, BackfillConfig(depth=depth))
            times.append(time.perf_counter() - t0)
        print(f"1000 nodes, 10000 pending, depth {depth}: "
              f"best {min(times) * 1000:.1f} ms, median {sorted(times)[2] * 1000:.1f} ms; "
              f"{len(p.start_now)} start, {len(p.reservations)} reserved")
