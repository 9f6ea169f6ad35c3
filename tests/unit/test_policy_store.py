"""Fair-share usage and runtime policy survive a controller restart (real SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsched.common import config
from gsched.controller.cluster import Caller, NodeReport
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu
from gsched.controller.runtime import Controller
from gsched.controller.store import job_to_row, node_to_row

ROOT = Caller(uid=0, user="root", admin=True)


def _cfg(tmp_path: Path) -> config.Config:
    return config.from_dict({
        "state_dir": str(tmp_path),
        "priority": {"weight_fairshare": 10000, "calc_period": 1.0},
        "accounts": [{"name": "lab", "users": ["alice", "bob"]}],
        "partitions": [{"name": "main", "nodes": "ALL", "default": True}],
    }, str(tmp_path / "gsched.toml"))


def _flush(ctl: Controller) -> None:
    """What the committer does: dirty rows and the policy meta in one transaction."""
    c = ctl.cluster
    jobs = [job_to_row(c.jobs[i]) for i in c.dirty_jobs]
    nodes = [node_to_row(c.nodes[n]) for n in c.dirty_nodes]
    c.dirty_jobs.clear()
    c.dirty_nodes.clear()
    ctl.store.write(jobs, nodes, c.next_job_id, ctl._policy_meta())


def test_usage_and_policy_survive_restart(tmp_path: Path) -> None:
    clock = [1000.0]
    ctl = Controller(_cfg(tmp_path), clock=lambda: clock[0])
    ctl.recover()
    c = ctl.cluster
    c.node_hello("node1", NodeReport(8, 32000, tuple(Gpu(i) for i in range(4)), {}), [], [],
                 1000.0)
    job = c.submit(Job(0, "alice", 1000, 1000, "alice", "j", Request(gpus_per_node=2), b"",
                       0.0), 1000.0)
    c.schedule(1000.0)
    assert job.state == JobState.RUNNING and job.account == "lab"
    c.node_heartbeat("node1", None, 1100.0)
    c.tick(1100.0)  # 2 GPUs x 100 s charged while running
    c.change_policy("create", "qos", "gold", {"Priority": "7"}, ROOT)
    _flush(ctl)
    used = c.prio.ledger.usage("alice", "lab")
    assert used > 0
    ctl.store.close()

    clock[0] = 1200.0
    again = Controller(_cfg(tmp_path), clock=lambda: clock[0])
    again.recover()
    c2 = again.cluster
    assert c2.prio.ledger.usage("alice", "lab") == pytest.approx(used)
    assert c2.prio.policy.qos["gold"].priority == 7  # the runtime change, not the file's
    assert c2.prio.charged == {job.job_id: 1100.0}  # charging resumes where it stopped
    j2 = c2.jobs[job.job_id]
    assert (j2.account, j2.qos) == ("lab", "normal")
    c2.job_exited("node1", job.job_id, 0, 0, 0, "", 1200.0)
    assert c2.prio.ledger.usage("alice", "lab") > used  # the last 100 s charged at the end
    again.store.close()
