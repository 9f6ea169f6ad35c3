"""Node failure scores and automatic draining (controller/health.py, wired in Cluster)."""

from __future__ import annotations

from gsched.controller import health
from gsched.controller.cluster import Caller, Cluster
from gsched.controller.jobs import JobState
from gsched.controller.nodes import Gpu
from gsched.controller.scheduler import Partition

from .test_cluster import add_node, make_job

ROOT = Caller(uid=0, user="root", admin=True)


def test_one_event_ending_several_jobs_is_one_incident() -> None:
    incidents: list = []
    health.record(incidents, 10.0, "node_lost", 1, "node1 not responding")
    health.record(incidents, 10.2, "node_lost", 2, "node1 not responding")
    health.record(incidents, 10.3, "gpu_xid_13", 3, "gpu0")
    health.record(incidents, 20.0, "node_lost", 4, "again")
    assert [(i[1], i[2]) for i in incidents] == [
        ("node_lost", [1, 2]), ("gpu_xid_13", [3]), ("node_lost", [4]),
    ]
    assert health.score(incidents, 20.0, 3600) == 3
    assert health.score(incidents, 3615.0, 3600) == 1  # the first two fell out of the window
    health.prune(incidents, 3615.0, 3600)
    assert len(incidents) == 1


def test_drain_reason_names_the_evidence() -> None:
    incidents: list = []
    for t, tag, job in [(0, "node_lost", 7), (100, "gpu_xid_94", 8), (200, "node_lost", 9)]:
        health.record(incidents, float(t), tag, job, "")
    assert health.drain_reason(incidents, 200.0, 3600) == (
        "gsched: 3 job failures in 1h: gpu_xid_94, node_lost x2 (jobs 7,8,9)"
    )


def _cluster(**kw: object) -> Cluster:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main", **kw)  # type: ignore[arg-type]
    add_node(c, "node1", gpus=4)
    add_node(c, "node2", gpus=4)
    return c


def _fault(c: Cluster, node: str, index: int, reason: str, now: float) -> None:
    gpus = tuple(Gpu(i, "a100") for i in range(4))
    bad = tuple(
        Gpu(g.index, "a100", healthy=g.index != index, reason=reason if g.index == index else "")
        for g in gpus
    )
    c.node_heartbeat(node, bad, now)
    c.node_heartbeat(node, gpus, now + 0.5)  # the app-level fault clears after restart


def _run_and_kill_on_node1(c: Cluster, now: float, reason: str) -> None:
    job = c.submit(make_job(gpus_per_node=2, nodelist=("node1",)), now)
    c.schedule(now)
    assert job.state == JobState.RUNNING and job.nodes == ["node1"]
    _fault(c, "node1", 1, reason, now + 1)  # "xid 94": restart the app; no drain by itself
    c.job_exited("node1", job.job_id, job.attempt, 0, 15, "killed", now + 2)
    c.cancel(job.job_id, ROOT, now + 3)


def test_repeated_app_level_gpu_faults_drain_the_node() -> None:
    c = _cluster(failure_drain_count=3, failure_window=600.0)
    for k in range(2):
        _run_and_kill_on_node1(c, k * 100.0, "xid 94")
        assert not c.nodes["node1"].drain
    _run_and_kill_on_node1(c, 200.0, "xid 94")
    node = c.nodes["node1"]
    assert node.drain and node.reason_user == "gsched"
    assert node.reason.startswith("gsched: 3 job failures in 10m: gpu_xid_94 x3 (jobs ")
    assert node.state.startswith("DRAIN")
    assert not c.nodes["node2"].drain
    # an operator repairs it: RESUME clears the drain and the score
    c.update_node(["node1"], "RESUME", "", ROOT, 300.0)
    assert not node.drain and node.failures == []
    c.validate()


def test_failures_spread_out_beyond_the_window_do_not_drain() -> None:
    c = _cluster(failure_drain_count=3, failure_window=100.0)
    for k in range(4):
        _run_and_kill_on_node1(c, k * 200.0, "xid 94")
    assert not c.nodes["node1"].drain


def test_node_lost_with_jobs_counts_idle_reboot_does_not() -> None:
    c = _cluster(failure_drain_count=2, failure_window=3600.0, node_timeout=10.0)
    # idle node1 goes silent and comes back twice: no job ended, no score
    t = 0.0
    for _ in range(2):
        c.node_heartbeat("node2", None, t + 11)
        c.tick(t + 11)
        assert not c.nodes["node1"].up
        add_node(c, "node1", gpus=4, now=t + 12)
        t += 20
    assert c.nodes["node1"].failures == [] and not c.nodes["node1"].drain
    # with a job on it, each loss counts; the second drains it (it stays DOWN meanwhile)
    for _ in range(2):
        job = c.submit(make_job(nodelist=("node1",)), t)
        c.schedule(t)
        assert job.state == JobState.RUNNING, job.reason
        c.node_heartbeat("node2", None, t + 11)
        c.tick(t + 11)
        assert job.state == JobState.PENDING and job.last_failure == "node_lost"
        c.cancel(job.job_id, ROOT, t + 11)
        add_node(c, "node1", gpus=4, now=t + 12)
        t += 20
    node = c.nodes["node1"]
    assert node.drain and "node_lost x2" in node.reason
    assert node.state.startswith("DRAIN")  # back from DOWN, but drained: no new jobs


def test_disabled_with_zero() -> None:
    c = _cluster(failure_drain_count=0)
    for k in range(5):
        _run_and_kill_on_node1(c, k * 10.0, "xid 94")
    assert not c.nodes["node1"].drain and c.nodes["node1"].failures == []
