"""Scheduling policy wired into the Cluster: priority, fair share, accounts, QOS
limits, partitions. Pure core, exact reasons and orders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gsched.common import config
from gsched.controller.cluster import Caller, Cluster, NodeReport
from gsched.controller.errors import InvalidRequest, PermissionDenied
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu
from gsched.controller.policy import (
    INVALID_ACCOUNT,
    INVALID_QOS,
    POLICY_VIOLATION,
    AccountDef,
    Policy,
    Qos,
    Tres,
    format_tres,
    parse_tres,
)
from gsched.controller.priority import PriorityConfig, Weights
from gsched.controller.scheduler import Partition

ALICE = Caller(uid=1000, user="alice")
BOB = Caller(uid=1001, user="bob")
ROOT = Caller(uid=0, user="root", admin=True)
S = JobState
ONLY_GPU = {"gpu": 1.0}


def make_job(user: Caller = ALICE, account: str = "", qos: str = "", nice: int = 0,
             group: str = "", **req: object) -> Job:
    return Job(job_id=0, user=user.user, uid=user.uid, gid=user.uid, group=group or user.user,
               name="job", request=Request(**req), spec=b"", submit_time=0.0,  # type: ignore[arg-type]
               account=account, qos=qos, nice=nice)


def add_node(c: Cluster, name: str, cpus: int = 16, gpus: int = 4) -> None:
    c.node_hello(name, NodeReport(cpus, 64000, tuple(Gpu(i, "a100") for i in range(gpus)), {}),
                 [], [], 0.0)


def lab_policy(**qos_fields: object) -> Policy:
    return Policy(
        [Qos("normal"), Qos("high", priority=100, **qos_fields)],  # type: ignore[arg-type]
        [AccountDef("lab", 1, {"alice": 1, "bob": 1}), AccountDef("other", 1, {"bob": 1})],
        {"bob": "other"},
    )


def new_cluster(policy: Policy | None = None, parts: list[Partition] | None = None,
                nodes: int = 2, weights: Weights | None = None, **kw: object) -> Cluster:
    prio = PriorityConfig(weights=weights or Weights(age=0, fairshare=10000, jobsize=0,
                                                     partition=0, qos=1000),
                          tres_weights=ONLY_GPU)
    c = Cluster(parts or [Partition("main", all_nodes=True, default=True)], "main",
                priority=prio, policy=policy or lab_policy(), calc_period=5.0, **kw)  # type: ignore[arg-type]
    for i in range(1, nodes + 1):
        add_node(c, f"node{i}")
    return c


def beat(c: Cluster, now: float) -> None:
    for name in c.nodes:
        c.node_heartbeat(name, None, now)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = new_cluster()
    yield c
    c.validate()


# ------------------------------------------------------------------ TRES and policy
def test_tres_parse_and_format() -> None:
    assert parse_tres("gres/gpu=8,cpu=64") == Tres(gpu=8, cpu=64)
    assert parse_tres("") == Tres()
    assert format_tres(Tres(gpu=2)) == "gres/gpu=2"
    with pytest.raises(InvalidRequest, match="Invalid TRES"):
        parse_tres("gres/tpu=1")
    with pytest.raises(InvalidRequest):
        parse_tres("cpu=x")


def test_policy_round_trips_and_resolves() -> None:
    p = lab_policy(max_tres_per_user=Tres(gpu=4), preempt=("normal",), grace_time=5)
    q = Policy.from_dict(p.to_dict())
    assert q.to_dict() == p.to_dict()
    assert q.qos["high"].max_tres_per_user == Tres(gpu=4)
    assert q.resolve("alice", "", "") == ("lab", "normal")
    assert q.resolve("bob", "", "high") == ("other", "high")
    assert q.resolve("bob", "lab", "") == ("lab", "normal")
    with pytest.raises(InvalidRequest, match=INVALID_ACCOUNT):
        q.resolve("alice", "other", "")
    with pytest.raises(InvalidRequest, match=INVALID_ACCOUNT):
        q.resolve("carol", "", "")  # in no account
    with pytest.raises(InvalidRequest, match=INVALID_QOS):
        q.resolve("alice", "", "nope")
    # no accounts configured: not enforced
    assert Policy().resolve("carol", "", "") == ("default", "normal")
    assert Policy().resolve("carol", "whatever", "") == ("whatever", "normal")


def test_policy_changes_like_sacctmgr() -> None:
    p = lab_policy()
    p.change("create", "qos", "gold", {"Priority": "50", "MaxWall": "1:00:00",
                                       "MaxTRESPerUser": "gres/gpu=2", "Preempt": "normal",
                                       "PreemptMode": "cancel", "UsageFactor": "2"})
    gold = p.qos["gold"]
    assert (gold.priority, gold.max_wall, gold.max_tres_per_user.gpu, gold.preempt,
            gold.preempt_mode, gold.usage_factor) == (50, 3600, 2, ("normal",), "CANCEL", 2.0)
    p.change("modify", "qos", "gold", {"MaxWall": "-1"})
    assert p.qos["gold"].max_wall == -1
    p.change("create", "account", "new", {"Fairshare": "3", "GrpTRES": "gres/gpu=4"})
    p.change("create", "user", "carol", {"Account": "new", "Fairshare": "2"})
    assert p.default_account("carol") == "new" and p.accounts["new"].users == {"carol": 2}
    p.change("modify", "user", "bob", {"DefaultAccount": "lab"})
    assert p.default_account("bob") == "lab"
    p.change("delete", "user", "carol", {})
    assert "carol" not in p.accounts["new"].users
    with pytest.raises(InvalidRequest, match="Unknown QOS field"):
        p.change("modify", "qos", "gold", {"Bogus": "1"})
    with pytest.raises(InvalidRequest, match="unknown QOS"):
        p.change("modify", "qos", "gold", {"Preempt": "nope"})
    with pytest.raises(InvalidRequest, match="default QOS"):
        p.change("delete", "qos", "normal", {})


# ------------------------------------------------------------------ submit checks
def test_submit_resolves_account_and_qos(cluster: Cluster) -> None:
    a = cluster.submit(make_job(ALICE), 0.0)
    b = cluster.submit(make_job(BOB, qos="high"), 0.0)
    assert (a.account, a.qos, b.account, b.qos) == ("lab", "normal", "other", "high")


@pytest.mark.parametrize(("kw", "msg"), [
    ({"account": "other"}, INVALID_ACCOUNT),
    ({"qos": "gold"}, INVALID_QOS),
])
def test_submit_rejects_bad_account_or_qos(cluster: Cluster, kw: dict[str, str],
                                           msg: str) -> None:
    with pytest.raises(InvalidRequest, match=msg):
        cluster.submit(make_job(ALICE, **kw), 0.0)
    assert cluster.jobs == {} and cluster.next_job_id == 1


def test_submit_rejects_jobs_that_can_never_run() -> None:
    c = new_cluster(lab_policy(max_tres_per_user=Tres(gpu=2, cpu=8), max_wall=3600))
    for req in ({"gpus_per_node": 3}, {"cpus_per_node": 9}, {"time_limit": 7200},
                {"time_limit": -1}):
        with pytest.raises(InvalidRequest, match="violates accounting/QOS policy"):
            c.submit(make_job(qos="high", **req), 0.0)  # type: ignore[arg-type]
    assert c.jobs == {}
    assert c.submit(make_job(qos="high", gpus_per_node=2, time_limit=3600), 0.0).job_id == 1


def test_max_submit_jobs_per_user() -> None:
    c = new_cluster(lab_policy(max_submit_jobs_per_user=2))
    c.submit(make_job(qos="high"), 0.0)
    c.submit(make_job(qos="high"), 0.0)
    with pytest.raises(InvalidRequest) as exc:
        c.submit(make_job(qos="high"), 0.0)
    assert str(exc.value) == POLICY_VIOLATION
    c.submit(make_job(BOB, qos="high"), 0.0)  # per user
    c.submit(make_job(qos="normal"), 0.0)  # per QOS


# ------------------------------------------------------------------ limits while pending
def test_qos_max_gres_per_user_holds_job_pending(cluster: Cluster) -> None:
    cluster.change_policy("modify", "qos", "high", {"MaxTRESPerUser": "gres/gpu=4"}, ROOT)
    jobs = [cluster.submit(make_job(qos="high", gpus_per_node=2), 0.0) for _ in range(3)]
    other = cluster.submit(make_job(BOB, qos="high", gpus_per_node=2), 0.0)
    cluster.schedule(1.0)
    assert [j.state for j in jobs] == [S.RUNNING, S.RUNNING, S.PENDING]
    assert jobs[2].reason == "QOSMaxGRESPerUser"
    assert other.state == S.RUNNING
    cluster.job_exited(jobs[0].batch_host, jobs[0].job_id, 0, 0, 0, "", 2.0)
    cluster.schedule(2.0)
    assert jobs[2].state == S.RUNNING


def test_qos_cpu_and_job_count_limits(cluster: Cluster) -> None:
    cluster.change_policy("modify", "qos", "high",
                          {"MaxTRESPerUser": "cpu=4", "MaxJobsPerUser": "3"}, ROOT)
    a = [cluster.submit(make_job(qos="high", cpus_per_node=2), 0.0) for _ in range(3)]
    cluster.schedule(1.0)
    assert [j.state for j in a] == [S.RUNNING, S.RUNNING, S.PENDING]
    assert a[2].reason == "QOSMaxCpuPerUserLimit"
    cluster.change_policy("modify", "qos", "high",
                          {"MaxTRESPerUser": "", "MaxJobsPerUser": "2"}, ROOT)
    cluster.schedule(2.0)
    assert a[2].reason == "QOSMaxJobsPerUserLimit"


def test_account_grp_tres_and_max_wall_reasons(cluster: Cluster) -> None:
    cluster.change_policy("modify", "account", "lab", {"GrpTRES": "gres/gpu=3"}, ROOT)
    a = cluster.submit(make_job(ALICE, gpus_per_node=2), 0.0)
    b = cluster.submit(make_job(BOB, account="lab", gpus_per_node=2), 0.0)
    c = cluster.submit(make_job(BOB, gpus_per_node=2, time_limit=600), 0.0)  # account other
    cluster.schedule(1.0)
    assert (a.state, b.state, b.reason, c.state) == (S.RUNNING, S.PENDING, "AssocGrpGRES",
                                                     S.RUNNING)
    # a limit lowered after submission leaves the job pending with SLURM's reason
    d = cluster.submit(make_job(BOB, time_limit=600), 0.0)
    cluster.change_policy("modify", "qos", "normal", {"MaxWall": "5:00"}, ROOT)
    cluster.schedule(2.0)
    assert (d.state, d.reason) == (S.PENDING, "QOSMaxWallDurationPerJobLimit")


def test_limits_count_jobs_started_in_the_same_pass(cluster: Cluster) -> None:
    cluster.change_policy("modify", "qos", "normal", {"MaxJobsPerUser": "1"}, ROOT)
    jobs = [cluster.submit(make_job(), 0.0) for _ in range(3)]
    cluster.schedule(1.0)
    assert [j.state for j in jobs] == [S.RUNNING, S.PENDING, S.PENDING]
    assert {j.reason for j in jobs[1:]} == {"QOSMaxJobsPerUserLimit"}


def test_policy_change_is_admin_only_and_atomic(cluster: Cluster) -> None:
    with pytest.raises(PermissionDenied):
        cluster.change_policy("modify", "qos", "high", {"Priority": "1"}, ALICE)
    with pytest.raises(InvalidRequest):
        cluster.change_policy("modify", "qos", "high", {"Priority": "5", "Bogus": "1"}, ROOT)
    assert cluster.prio.policy.qos["high"].priority == 100  # nothing half-applied
    assert not cluster.prio.policy_dirty


# ------------------------------------------------------------------ priority and fair share
def test_fair_share_orders_the_light_user_first(cluster: Cluster) -> None:
    # alice used the cluster; bob did not: bob's later job goes first
    hog = cluster.submit(make_job(ALICE, gpus_per_node=4, nodes=2), 0.0)
    cluster.schedule(0.0)
    beat(cluster, 100.0)
    cluster.tick(100.0)  # charges 8 GPUs x 100 s
    assert cluster.prio.ledger.usage("alice", "lab") == pytest.approx(800.0, rel=1e-6)
    a = cluster.submit(make_job(ALICE, gpus_per_node=4, nodes=2), 101.0)
    b = cluster.submit(make_job(BOB, account="lab", gpus_per_node=4, nodes=2), 102.0)
    assert b.priority > a.priority
    for node in list(hog.alloc):
        cluster.job_exited(node, hog.job_id, 0, 0, 0, "", 150.0)
    assert cluster.prio.ledger.usage("alice", "lab") == pytest.approx(1200.0, rel=1e-3)
    assert hog.job_id not in cluster.prio.charged
    cluster.schedule(150.0)
    assert (b.state, a.state, a.reason) == (S.RUNNING, S.PENDING, "Resources")


def test_qos_priority_factor_and_nice(cluster: Cluster) -> None:
    low = cluster.submit(make_job(), 0.0)
    high = cluster.submit(make_job(qos="high"), 0.0)
    nice = cluster.submit(make_job(qos="high", nice=500), 0.0)
    assert high.priority - low.priority == 1000
    assert high.priority - nice.priority == 500
    assert [j.job_id for j in cluster.pending_order()] == [high.job_id, nice.job_id,
                                                           low.job_id]


def test_update_nice_and_admin_priority(cluster: Cluster) -> None:
    job = cluster.submit(make_job(), 0.0)
    base = job.priority
    cluster.update_job(job.job_id, ALICE, {"Nice": "100"}, 1.0)
    assert job.priority == base - 100
    with pytest.raises(PermissionDenied):
        cluster.update_job(job.job_id, ALICE, {"Nice": "-5"}, 1.0)
    with pytest.raises(PermissionDenied):
        cluster.update_job(job.job_id, ALICE, {"Priority": "5"}, 1.0)
    cluster.update_job(job.job_id, ROOT, {"Priority": "123456"}, 1.0)
    assert job.priority == 123456 and job.admin_priority == 123456
    beat(cluster, 100.0)
    cluster.tick(100.0)  # recomputation keeps the operator's value
    assert job.priority == 123456
    cluster.update_job(job.job_id, ROOT, {"Priority": "0"}, 101.0)
    assert (job.hold, job.reason, job.priority) == (True, "JobHeldAdmin", 0)
    with pytest.raises(PermissionDenied):
        cluster.release(job.job_id, ALICE, 102.0)


def test_update_qos_and_account(cluster: Cluster) -> None:
    job = cluster.submit(make_job(BOB), 0.0)
    cluster.update_job(job.job_id, BOB, {"QOS": "high", "Account": "lab"}, 1.0)
    assert (job.qos, job.account) == ("high", "lab")
    with pytest.raises(InvalidRequest, match=INVALID_QOS):
        cluster.update_job(job.job_id, BOB, {"QOS": "nope"}, 1.0)


def test_usage_factor_scales_charge() -> None:
    c = new_cluster(lab_policy(usage_factor=0.5))
    j = c.submit(make_job(qos="high", gpus_per_node=2), 0.0)
    c.schedule(0.0)
    c.job_exited(j.batch_host, j.job_id, 0, 0, 0, "", 10.0)
    assert c.prio.ledger.usage("alice", "lab") == pytest.approx(10.0)


def test_recompute_is_periodic_not_every_pass(cluster: Cluster) -> None:
    cluster.submit(make_job(), 0.0)
    cluster.schedule(0.0)
    calc = cluster.prio.last_calc
    cluster.submit(make_job(), 1.0)
    cluster.schedule(1.0)
    assert cluster.prio.last_calc == calc  # within calc_period: no full recomputation
    beat(cluster, 6.0)
    cluster.tick(6.0)
    assert cluster.prio.last_calc == 6.0


# ------------------------------------------------------------------ partitions
def test_priority_tier_is_scheduled_first() -> None:
    parts = [Partition("low", all_nodes=True, default=True, priority_tier=1),
             Partition("urgent", all_nodes=True, priority_tier=5)]
    c = new_cluster(parts=parts, nodes=1)
    a = c.submit(make_job(qos="high", gpus_per_node=4, partitions=("low",)), 0.0)
    b = c.submit(make_job(gpus_per_node=4, partitions=("urgent",)), 1.0)
    assert a.priority > b.priority
    c.schedule(2.0)
    assert (b.state, a.state) == (S.RUNNING, S.PENDING)


def test_partition_job_factor_weighs_priority() -> None:
    parts = [Partition("a", all_nodes=True, default=True, priority_job_factor=1),
             Partition("b", all_nodes=True, priority_job_factor=4)]
    c = new_cluster(parts=parts, weights=Weights(age=0, fairshare=0, jobsize=0,
                                                 partition=1000, qos=0))
    c.tick(0.0)
    a = c.submit(make_job(partitions=("a",)), 0.0)
    b = c.submit(make_job(partitions=("b",)), 0.0)
    assert (a.priority, b.priority) == (250, 1000)


def test_partition_access_and_state_at_submit() -> None:
    parts = [Partition("main", all_nodes=True, default=True),
             Partition("labonly", all_nodes=True, allow_accounts=("lab",)),
             Partition("staff", all_nodes=True, allow_groups=("staff",)),
             Partition("drain", all_nodes=True, state="DRAIN"),
             Partition("inactive", all_nodes=True, state="INACTIVE"),
             Partition("down", all_nodes=True, state="DOWN")]
    c = new_cluster(parts=parts)
    with pytest.raises(InvalidRequest, match=INVALID_ACCOUNT):
        c.submit(make_job(BOB, partitions=("labonly",)), 0.0)
    c.submit(make_job(BOB, account="lab", partitions=("labonly",)), 0.0)
    with pytest.raises(InvalidRequest, match="group not permitted"):
        c.submit(make_job(partitions=("staff",)), 0.0)
    c.submit(make_job(group="staff", partitions=("staff",)), 0.0)
    # a supplementary group counts too (the shell asks the user database)
    c.groups_of = lambda user, gid: ("users", "staff") if user == "alice" else ("users",)
    c.submit(make_job(partitions=("staff",)), 0.0)
    with pytest.raises(InvalidRequest, match="group not permitted"):
        c.submit(make_job(BOB, partitions=("staff",)), 0.0)
    for name in ("drain", "inactive"):
        with pytest.raises(InvalidRequest, match="partition not available"):
            c.submit(make_job(partitions=(name,)), 0.0)
    down = c.submit(make_job(partitions=("down",)), 0.0)
    either = c.submit(make_job(partitions=("drain", "main")), 0.0)
    c.schedule(1.0)
    assert (down.state, down.reason) == (S.PENDING, "PartitionDown")
    assert either.state == S.RUNNING


def test_oversubscribe_exclusive_gives_whole_nodes() -> None:
    parts = [Partition("main", all_nodes=True, default=True, exclusive=True)]
    c = new_cluster(parts=parts)
    a = c.submit(make_job(gpus_per_node=1), 0.0)
    b = c.submit(make_job(gpus_per_node=1), 0.0)
    d = c.submit(make_job(gpus_per_node=1), 0.0)
    c.schedule(1.0)
    assert a.state == b.state == S.RUNNING and a.batch_host != b.batch_host
    assert len(a.alloc[a.batch_host]["gpus"]) == 4 and d.state == S.PENDING


def test_multi_partition_job_runs_where_it_can_start() -> None:
    parts = [Partition("a", nodes=("node1",), default=True),
             Partition("b", nodes=("node2",))]
    c = new_cluster(parts=parts)
    blocker = c.submit(make_job(gpus_per_node=4, partitions=("a",)), 0.0)
    c.schedule(0.0)
    job = c.submit(make_job(gpus_per_node=4, partitions=("a", "b")), 1.0)
    c.schedule(1.0)
    assert blocker.state == S.RUNNING and (job.state, job.partition) == (S.RUNNING, "b")


# ------------------------------------------------------------------ config
def test_config_sections_build_the_policy(tmp_path: object) -> None:
    from gsched.controller.runtime import policy_from_config, priority_from_config

    cfg = config.from_dict({
        "priority": {"weight_fairshare": 5, "max_age": "1-0", "default_qos": "normal"},
        "partitions": [{"name": "gpu", "priority_tier": 3, "allow_accounts": "lab",
                        "oversubscribe": "EXCLUSIVE"}],
        "qos": [{"name": "high", "priority": 10, "max_tres_per_user": "gres/gpu=8",
                 "preempt": ["normal"], "preempt_mode": "CANCEL", "grace_time": 30}],
        "accounts": [{"name": "lab", "shares": 2, "users": {"alice": 1}}],
        "users": [{"name": "alice", "default_account": "lab"}],
    })
    pol = policy_from_config(cfg)
    assert pol.qos["high"].preempt == ("normal",) and pol.default_account("alice") == "lab"
    pc = priority_from_config(cfg)
    assert (pc.weights.fairshare, pc.max_age) == (5, 86400.0)
    with pytest.raises(config.ConfigError, match="unknown key"):
        config.from_dict({"qos": [{"name": "x", "bogus": 1}]})
    with pytest.raises(config.ConfigError, match="oversubscribe"):
        config.from_dict({"partitions": [{"name": "p", "oversubscribe": "YES"}]})
    bad = config.from_dict({"qos": [{"name": "x", "preempt": ["nope"]}]})
    with pytest.raises(config.ConfigError, match="unknown QOS"):
        policy_from_config(bad)


def test_update_to_a_qos_the_job_cannot_meet_changes_nothing() -> None:
    c = new_cluster(lab_policy(max_wall=600))
    job = c.submit(make_job(time_limit=3600), 0.0)
    with pytest.raises(InvalidRequest, match="violates accounting/QOS policy"):
        c.update_job(job.job_id, ALICE, {"QOS": "high"}, 1.0)
    assert (job.qos, job.account) == ("normal", "lab")
    with pytest.raises(InvalidRequest, match=INVALID_ACCOUNT):
        c.update_job(job.job_id, ALICE, {"Account": "other"}, 1.0)
    assert job.account == "lab"


def test_partition_update_moves_job_to_the_new_tier() -> None:
    parts = [Partition("low", all_nodes=True, default=True, priority_tier=1),
             Partition("urgent", all_nodes=True, priority_tier=5)]
    c = new_cluster(parts=parts, nodes=1)
    a = c.submit(make_job(gpus_per_node=4), 0.0)
    b = c.submit(make_job(gpus_per_node=4), 1.0)
    c.update_job(b.job_id, ALICE, {"Partition": "urgent"}, 2.0)
    assert b.tier == 5 and [j.job_id for j in c.pending_order()] == [b.job_id, a.job_id]


def test_partition_time_limit_lowered_after_submit() -> None:
    parts = [Partition("a", all_nodes=True, default=True, max_time=7200),
             Partition("b", nodes=("node2",), max_time=7200)]
    c = new_cluster(parts=parts)
    long = c.submit(make_job(time_limit=3600, partitions=("a",)), 0.0)
    either = c.submit(make_job(time_limit=3600, partitions=("a", "b")), 0.0)
    # the configuration changed (controller restarted with a shorter MaxTime in "a")
    c.partitions["a"] = Partition("a", all_nodes=True, default=True, max_time=600)
    c.schedule(1.0)
    assert (long.state, long.reason) == (S.PENDING, "PartitionTimeLimit")
    assert (either.state, either.partition) == (S.RUNNING, "b")


def test_user_groups_from_the_user_database() -> None:
    import grp
    import os

    from gsched.controller.auth import user_groups

    me = os.getuid()
    name = __import__("pwd").getpwuid(me).pw_name
    gid = os.getgid()
    assert grp.getgrgid(gid).gr_name in user_groups(name, gid)
    assert user_groups(name, gid) == {grp.getgrgid(g).gr_name
                                      for g in os.getgrouplist(name, gid)}
