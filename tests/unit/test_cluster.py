"""The controller's pure core: state machine, scheduling pass, orders, invariants."""

from __future__ import annotations

import pytest

from gsched.controller.cluster import (
    AckExit,
    Caller,
    Cluster,
    KillOrder,
    LaunchOrder,
    NodeReport,
    SignalOrder,
)
from gsched.controller.errors import (
    Conflict,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from gsched.controller.jobs import Job, JobState, Request, transition
from gsched.controller.nodes import Gpu
from gsched.controller.scheduler import Partition

ALICE = Caller(uid=1000, user="alice")
BOB = Caller(uid=1001, user="bob")
ROOT = Caller(uid=0, user="root", admin=True)


def make_job(user: Caller = ALICE, **req: object) -> Job:
    hold = bool(req.pop("hold", False))
    return Job(
        job_id=0,
        user=user.user,
        uid=user.uid,
        gid=user.uid,
        group=user.user,
        name="job",
        request=Request(**req),  # type: ignore[arg-type]
        spec=b"",
        submit_time=0.0,
        hold=hold,
    )


def add_node(c: Cluster, name: str, cpus: int = 16, gpus: int = 4, gtype: str = "a100",
             now: float = 0.0) -> None:
    c.node_hello(
        name,
        NodeReport(cpus, 64000, tuple(Gpu(i, gtype) for i in range(gpus)), {}),
        [],
        [],
        now,
    )


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    add_node(c, "node1")
    add_node(c, "node2")
    yield c
    c.validate()


def test_transition_table_rejects_illegal_moves() -> None:
    job = make_job()
    transition(job, JobState.RUNNING, 1.0)
    transition(job, JobState.COMPLETED, 2.0)
    with pytest.raises(InvalidTransition):
        transition(job, JobState.RUNNING, 3.0)
    assert [s[2] for s in job.story] == ["RUNNING", "COMPLETED"]


def test_submit_schedule_launch_exit_completed(cluster: Cluster) -> None:
    job = cluster.submit(make_job(gpus_per_node=2, cpus_per_node=4), 10.0)
    assert job.job_id == 1 and job.state == JobState.PENDING
    orders = cluster.schedule(11.0)
    assert orders == [LaunchOrder("node1", 1, 0, 0)]
    assert job.state == JobState.RUNNING and job.alloc["node1"]["gpus"] == [0, 1]
    assert cluster.nodes["node1"].state == "MIXED"
    orders = cluster.job_exited("node1", 1, 0, 0, 0, "", 20.0)
    assert orders == [AckExit("node1", 1, 0)]
    assert job.state == JobState.COMPLETED and job.end_time == 20.0
    assert cluster.nodes["node1"].state == "IDLE"


def test_nonzero_exit_is_failed_with_reason(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    cluster.job_exited("node1", job.job_id, 0, 3, 0, "", 1.0)
    assert (job.state, job.reason, job.exit_code) == (JobState.FAILED, "NonZeroExitCode", 3)


def test_timeout_reason(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    cluster.job_exited("node1", job.job_id, 0, 0, 15, "timeout", 1.0)
    assert (job.state, job.reason) == (JobState.TIMEOUT, "TimeLimit")


def test_two_jobs_never_share_a_gpu_and_reasons(cluster: Cluster) -> None:
    jobs = [cluster.submit(make_job(gpus_per_node=3), float(i)) for i in range(4)]
    orders = cluster.schedule(5.0)
    assert {o.node for o in orders} == {"node1", "node2"}
    assert [j.state for j in jobs] == [JobState.RUNNING] * 2 + [JobState.PENDING] * 2
    assert [jobs[2].reason, jobs[3].reason] == ["Resources", "Priority"]
    cluster.validate()


def test_impossible_request_rejected_at_submit(cluster: Cluster) -> None:
    with pytest.raises(InvalidRequest, match="Requested node configuration is not available"):
        cluster.submit(make_job(gpus_per_node=99), 0.0)
    with pytest.raises(InvalidRequest, match="Requested node configuration"):
        cluster.submit(make_job(cpus_per_node=32), 0.0)
    with pytest.raises(InvalidRequest, match="Invalid partition name specified"):
        cluster.submit(make_job(partitions=("nope",)), 0.0)
    with pytest.raises(InvalidRequest, match="Requested node configuration"):
        cluster.submit(make_job(gpus_per_node=1, gpu_type="h100"), 0.0)
    assert cluster.jobs == {} and cluster.next_job_id == 1


def test_gang_allocation_all_or_nothing(cluster: Cluster) -> None:
    small = cluster.submit(make_job(gpus_per_node=1), 0.0)
    big = cluster.submit(make_job(nodes=2, gpus_per_node=4), 1.0)
    orders = cluster.schedule(2.0)
    assert orders == [LaunchOrder("node1", small.job_id, 0, 0)]
    assert big.state == JobState.PENDING and big.reason == "Resources"
    assert not any(big.job_id in n.jobs for n in cluster.nodes.values())
    cluster.job_exited("node1", small.job_id, 0, 0, 0, "", 3.0)
    orders = cluster.schedule(4.0)
    assert sorted(o.node for o in orders) == ["node1", "node2"]
    assert [o.node_index for o in orders] == [0, 1]


def test_multinode_batch_exit_kills_other_parts_then_completes(cluster: Cluster) -> None:
    job = cluster.submit(make_job(nodes=2), 0.0)
    cluster.schedule(0.0)
    first, second = job.nodes
    orders = cluster.job_exited(first, job.job_id, 0, 0, 0, "", 1.0)
    assert KillOrder(second, job.job_id, 0, "completed") in orders
    assert job.state == JobState.COMPLETING
    cluster.job_exited(second, job.job_id, 0, 0, 9, "completed", 2.0)
    assert job.state == JobState.COMPLETED


def test_cancel_pending_and_running(cluster: Cluster) -> None:
    pending = cluster.submit(make_job(hold=True), 0.0)
    running = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    assert cluster.cancel(pending.job_id, ALICE, 1.0) == []
    assert pending.state == JobState.CANCELLED
    orders = cluster.cancel(running.job_id, ALICE, 1.0)
    assert orders == [KillOrder(running.batch_host, running.job_id, 0, "cancelled")]
    assert running.state == JobState.COMPLETING
    with pytest.raises(Conflict, match="already completing or completed"):
        cluster.cancel(running.job_id, ALICE, 1.5)
    cluster.job_exited(running.batch_host, running.job_id, 0, 0, 15, "cancelled", 2.0)
    assert running.state == JobState.CANCELLED


def test_signal_running_job(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    orders = cluster.cancel(job.job_id, ALICE, 1.0, signal=10)
    assert orders == [SignalOrder(job.batch_host, job.job_id, 0, 10, False)]
    assert job.state == JobState.RUNNING


def test_other_users_job_is_denied_and_unchanged(cluster: Cluster) -> None:
    job = cluster.submit(make_job(ALICE), 0.0)
    for action in (cluster.cancel, cluster.hold, cluster.requeue):
        with pytest.raises(PermissionDenied):
            action(job.job_id, BOB, 1.0)
    assert job.state == JobState.PENDING and not job.hold
    cluster.hold(job.job_id, ROOT, 1.0)
    assert job.reason == "JobHeldAdmin"
    with pytest.raises(PermissionDenied):
        cluster.release(job.job_id, ALICE, 2.0)


def test_unknown_job(cluster: Cluster) -> None:
    with pytest.raises(NotFound, match="Invalid job id specified"):
        cluster.cancel(999, ALICE, 0.0)


def test_hold_release(cluster: Cluster) -> None:
    job = cluster.submit(make_job(hold=True), 0.0)
    assert cluster.schedule(0.0) == [] and job.reason == "JobHeldUser"
    cluster.release(job.job_id, ALICE, 1.0)
    assert cluster.schedule(1.0) == [LaunchOrder(job.batch_host or "node1", job.job_id, 0, 0)]


def test_requeue_keeps_id_and_bumps_attempt(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    node = job.batch_host
    orders = cluster.requeue(job.job_id, ALICE, 1.0)
    assert orders == [KillOrder(node, job.job_id, 0, "requeue")]
    assert job.state == JobState.REQUEUED
    cluster.job_exited(node, job.job_id, 0, 0, 15, "requeue", 2.0)
    assert job.state == JobState.PENDING and job.attempt == 1
    orders = cluster.schedule(3.0)
    assert orders[0].attempt == 1
    # a late exit from the old attempt changes nothing
    cluster.job_exited(node, job.job_id, 0, 1, 0, "", 4.0)
    assert job.state == JobState.RUNNING


def test_node_timeout_requeues_or_node_fails(cluster: Cluster) -> None:
    keep = cluster.submit(make_job(nodelist=("node1",)), 0.0)
    norq = cluster.submit(make_job(nodelist=("node1",), requeue=False), 0.0)
    cluster.schedule(0.0)
    cluster.node_heartbeat("node2", None, 20.0)
    orders = cluster.tick(20.0)
    assert cluster.nodes["node1"].state == "DOWN"
    assert cluster.nodes["node1"].shown_reason == "Not responding"
    assert keep.state == JobState.PENDING and keep.attempt == 1
    assert norq.state == JobState.NODE_FAIL
    assert all(isinstance(o, KillOrder) for o in orders)


def test_hello_reconciles_stale_and_lost_launches(cluster: Cluster) -> None:
    job = cluster.submit(make_job(nodelist=("node1",)), 0.0)
    cluster.schedule(0.0)
    report = NodeReport(16, 64000, tuple(Gpu(i, "a100") for i in range(4)), {})
    # agent restarted and knows nothing of job: launch again (same attempt)
    orders = cluster.node_hello("node1", report, [], [], 1.0)
    assert orders == [LaunchOrder("node1", job.job_id, 0, 0)]
    # agent runs an attempt we no longer consider current: kill it
    orders = cluster.node_hello("node1", report, [(job.job_id, 0), (77, 3)], [], 2.0)
    assert orders == [KillOrder("node1", 77, 3, "stale")]


def test_drain_and_resume(cluster: Cluster) -> None:
    with pytest.raises(PermissionDenied):
        cluster.update_node(["node1"], "DRAIN", "x", ALICE, 0.0)
    with pytest.raises(InvalidRequest, match="must specify a reason"):
        cluster.update_node(["node1"], "DRAIN", "", ROOT, 0.0)
    cluster.update_node(["node1", "node2"], "DRAIN", "maintenance", ROOT, 0.0)
    assert cluster.nodes["node1"].state == "DRAINED"
    job = cluster.submit(make_job(), 1.0)
    assert cluster.schedule(1.0) == [] and job.reason == "Resources"
    cluster.update_node(["node2"], "RESUME", "", ROOT, 2.0)
    assert cluster.schedule(2.0) == [LaunchOrder("node2", job.job_id, 0, 0)]


def test_exclusive_takes_whole_node(cluster: Cluster) -> None:
    a = cluster.submit(make_job(exclusive=True), 0.0)
    b = cluster.submit(make_job(exclusive=True), 0.0)
    c = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    assert a.state == b.state == JobState.RUNNING and c.state == JobState.PENDING
    assert a.alloc[a.batch_host]["gpus"] == [0, 1, 2, 3]


def test_update_pending_job(cluster: Cluster) -> None:
    job = cluster.submit(make_job(hold=True), 0.0)
    cluster.update_job(job.job_id, ALICE, {"TimeLimit": "600", "Name": "x"}, 1.0)
    assert job.request.time_limit == 600 and job.name == "x"
    with pytest.raises(InvalidRequest):
        cluster.update_job(job.job_id, ALICE, {"Partition": "nope"}, 1.0)
    with pytest.raises(InvalidRequest):
        cluster.update_job(job.job_id, ALICE, {"Bogus": "1"}, 1.0)


def test_fenced_attempt_is_an_infrastructure_failure(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    node = job.batch_host
    cluster.job_exited(node, job.job_id, 0, 0, 15, "fenced", 5.0)
    assert job.state == JobState.PENDING and job.attempt == 1
    assert job.last_failure == "node_lost" and node in job.request.avoid
    assert job.attempts[0]["ended"] == "node_lost"


def test_backfill_reserves_for_the_big_job_and_fills_only_what_fits_before(cluster: Cluster) -> None:
    running = [cluster.submit(make_job(nodelist=(n,), gpus_per_node=2, time_limit=100), 0.0)
               for n in ("node1", "node2")]
    cluster.schedule(0.0)
    assert all(j.state == JobState.RUNNING for j in running)
    big = cluster.submit(make_job(nodes=2, gpus_per_node=4, time_limit=100), 1.0)
    long_small = cluster.submit(make_job(gpus_per_node=1, time_limit=1000), 2.0)
    short_small = cluster.submit(make_job(gpus_per_node=1, time_limit=50), 3.0)
    orders = cluster.schedule(10.0)
    started = {o.job_id for o in orders}
    assert big.state == JobState.PENDING and big.reason == "Resources"
    assert big.job_id in cluster.reservations
    assert cluster.reservations[big.job_id].start_time == 100.0
    assert short_small.job_id in started  # ends (60) before the reservation (100)
    assert long_small.job_id not in started and long_small.reason == "Priority"


# ---------------------------------------------------------------- --requeue-exit


def test_requeue_exit_code_requeues_whole_job_with_its_own_budget() -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main",
                max_requeue=1, max_requeue_exit=2)
    add_node(c, "node1")
    add_node(c, "node2")
    job = c.submit(make_job(nodes=2, requeue_exit=(3, 75)), 0.0)
    for attempt in range(2):
        c.schedule(float(attempt * 10))
        assert job.state == JobState.RUNNING and job.attempt == attempt
        orders = c.job_exited(job.batch_host, job.job_id, attempt, 75, 0, "", attempt * 10 + 1.0)
        other = [n for n in job.pending_nodes]
        assert orders[1:] == [KillOrder(other[0], job.job_id, attempt, "requeued")]
        assert job.state == JobState.REQUEUED
        c.job_exited(other[0], job.job_id, attempt, 0, 15, "killed", attempt * 10 + 2.0)
        assert job.state == JobState.PENDING and job.last_failure == "exit_75"
        assert job.attempts[-1]["ended"] == "exit_75"
        c.validate()
    assert job.exit_requeues == 2
    # the infrastructure budget is untouched by exit requeues: one node loss still requeues
    c.schedule(30.0)
    c.tick(30.0 + c.node_timeout + 1)  # both nodes silent past the timeout
    assert job.state == JobState.PENDING and job.last_failure == "node_lost"
    for n in ("node1", "node2"):
        add_node(c, n, now=50.0)
    c.schedule(50.0)
    # the exit budget is spent: the next listed exit code ends the job FAILED
    c.job_exited(job.batch_host, job.job_id, job.attempt, 3, 0, "", 51.0)
    rest = list(job.pending_nodes)
    for n in rest:
        c.job_exited(n, job.job_id, job.attempt, 0, 15, "killed", 52.0)
    assert (job.state, job.exit_code) == (JobState.FAILED, 3)
    c.validate()


def test_requeue_exit_ignores_other_codes_signals_and_timeouts(cluster: Cluster) -> None:
    for code, sig, reason, final in [(1, 0, "", JobState.FAILED),
                                     (0, 9, "", JobState.FAILED),
                                     (3, 0, "timeout", JobState.TIMEOUT)]:
        job = cluster.submit(make_job(requeue_exit=(3,)), 0.0)
        cluster.schedule(0.0)
        cluster.job_exited(job.batch_host, job.job_id, 0, code, sig, reason, 1.0)
        assert job.state == final and job.exit_requeues == 0


def test_cluster_default_requeue_exit_and_job_override() -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main", requeue_exit=(99,))
    add_node(c, "node1")
    default = c.submit(make_job(), 0.0)
    c.schedule(0.0)
    c.job_exited("node1", default.job_id, 0, 99, 0, "", 1.0)
    assert default.state == JobState.PENDING and default.last_failure == "exit_99"
    c.schedule(2.0)
    c.job_exited("node1", default.job_id, 1, 0, 0, "", 3.0)
    own = c.submit(make_job(requeue_exit=()), 4.0)  # the job asked for no exit requeue
    c.schedule(4.0)
    c.job_exited("node1", own.job_id, 0, 99, 0, "", 5.0)
    assert own.state == JobState.FAILED


# ---------------------------------------------------------------- --signal before a forced stop


def _hot(c: Cluster, node: str, index: int, reason: str, now: float) -> list:
    gpus = tuple(
        Gpu(i, "a100", healthy=i != index, reason=reason if i == index else "") for i in range(4)
    )
    return c.node_heartbeat(node, gpus, now)


def test_checkpointable_gpu_fault_warns_first_then_requeues(cluster: Cluster) -> None:
    job = cluster.submit(make_job(nodes=2, gpus_per_node=4, warn_before=30), 0.0)
    cluster.schedule(0.0)
    first = job.batch_host
    orders = _hot(cluster, job.nodes[1], 2, "temperature 97C > 90C", 10.0)
    # only the batch host's wrapper delivers --signal (grun forwards it to every task)
    assert orders == [SignalOrder(first, job.job_id, 0, 0, False, job_warning=True)]
    assert job.state == JobState.RUNNING and job.stop["at"] == 40.0
    for t in (39.0, 40.5):
        for n in job.nodes:
            cluster.node_heartbeat(n, None, t)
    assert cluster.tick(39.0) == []
    orders = cluster.tick(40.5)
    assert sorted(o.node for o in orders if isinstance(o, KillOrder)) == sorted(job.nodes)
    assert job.state == JobState.REQUEUED and job.last_failure == "gpu_temperature"
    for n in list(job.pending_nodes):
        cluster.job_exited(n, job.job_id, 0, 0, 15, "requeue", 41.0)
    assert job.state == JobState.PENDING and job.stop == {} and cluster.stopping == set()


def test_job_that_exits_after_the_warning_is_requeued_not_completed(cluster: Cluster) -> None:
    job = cluster.submit(make_job(gpus_per_node=1, warn_before=60), 0.0)
    cluster.schedule(0.0)
    _hot(cluster, job.batch_host, job.alloc[job.batch_host]["gpus"][0], "xid 63", 5.0)
    assert job.stop
    cluster.job_exited(job.batch_host, job.job_id, 0, 0, 0, "", 8.0)  # checkpointed, exit 0
    assert job.state == JobState.PENDING and job.last_failure == "gpu_xid_63"
    assert job.attempts[-1]["ended"] == "gpu_xid_63"


def test_fatal_faults_and_jobs_without_signal_stop_at_once(cluster: Cluster) -> None:
    warned = cluster.submit(make_job(gpus_per_node=4, nodelist=("node1",), warn_before=60), 0.0)
    plain = cluster.submit(make_job(gpus_per_node=4, nodelist=("node2",)), 0.0)
    cluster.schedule(0.0)
    orders = _hot(cluster, "node1", 0, "xid 79", 1.0)  # fell off the bus: nothing to save
    assert warned.state == JobState.REQUEUED and not warned.stop
    assert all(isinstance(o, KillOrder) for o in orders)
    _hot(cluster, "node2", 0, "temperature 99C > 90C", 1.0)
    assert plain.state == JobState.REQUEUED  # no --signal: SIGTERM now, as any requeue


def test_warning_time_is_capped_by_max_stop_warning() -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main", max_stop_warning=20.0)
    add_node(c, "node1")
    job = c.submit(make_job(gpus_per_node=1, warn_before=600), 0.0)
    c.schedule(0.0)
    _hot(c, "node1", 0, "temperature 95C > 90C", 100.0)
    assert job.stop["at"] == 120.0
    c.reindex()  # a controller restart rebuilds the index from the stored jobs
    assert c.stopping == {job.job_id}
    c.node_heartbeat("node1", None, 121.0)
    c.tick(121.0)
    assert job.state == JobState.REQUEUED


def test_next_deadline_follows_the_earliest_node_and_warned_stop(cluster: Cluster) -> None:
    cluster.node_heartbeat("node1", None, 100.0)
    cluster.node_heartbeat("node2", None, 101.5)
    assert cluster.next_deadline(100.0) == 101.0  # the 1 s housekeeping cap
    assert cluster.next_deadline(103.5) == 104.0  # node1 turns SUSPECT at 100 + 4
    cluster.tick(104.5)
    assert cluster.nodes["node1"].suspect
    assert cluster.next_deadline(104.5) == 105.5  # node2's suspect time comes first
    cluster.tick(105.6)
    assert cluster.next_deadline(109.0) == 110.0  # node1 DOWN at 100 + 10
    cluster.tick(110.01)
    assert not cluster.nodes["node1"].up


@pytest.mark.parametrize(("rts", "lost_back", "operator_down_back"),
                         [(0, False, False), (1, True, False), (2, True, True)])
def test_return_to_service_modes(rts: int, lost_back: bool, operator_down_back: bool) -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main", return_to_service=rts)
    add_node(c, "node1")
    add_node(c, "node2")
    c.node_heartbeat("node2", None, 11.0)
    c.tick(11.0)  # node1 silent: DOWN, not responding
    c.update_node(["node2"], "DOWN", "bad PSU", ROOT, 12.0)
    add_node(c, "node1", now=20.0)
    add_node(c, "node2", now=20.0)
    assert (c.nodes["node1"].state == "IDLE") == lost_back, c.nodes["node1"].state
    assert (c.nodes["node2"].state == "IDLE") == operator_down_back, c.nodes["node2"].state
    c.update_node(["node1", "node2"], "RESUME", "", ROOT, 30.0)
    assert c.nodes["node1"].state == c.nodes["node2"].state == "IDLE"
