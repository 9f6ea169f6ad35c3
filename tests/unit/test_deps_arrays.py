"""Dependencies, --begin, admin holds and job arrays in the pure core."""

from __future__ import annotations

import pytest

from gsched.controller.arrays import ArraySpecError, TaskSet, parse_array
from gsched.controller.cluster import Caller, Cluster, LaunchOrder, NodeReport
from gsched.controller.deps import DependencyError, parse_dependency
from gsched.controller.errors import InvalidRequest, PermissionDenied
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu
from gsched.controller.scheduler import Partition

S = JobState
ALICE = Caller(uid=1000, user="alice")
ROOT = Caller(uid=0, user="root", admin=True)


def make_job(extra: dict[str, str] | None = None, name: str = "job", user: Caller = ALICE,
             hold: bool = False, **req: object) -> tuple[Job, dict[str, str]]:
    job = Job(job_id=0, user=user.user, uid=user.uid, gid=user.uid, group=user.user,
              name=name, request=Request(**req), spec=b"", submit_time=0.0,  # type: ignore[arg-type]
              hold=hold)
    return job, dict(extra or {})


def submit(c: Cluster, now: float = 0.0, **kw: object) -> Job:
    job, extra = make_job(**kw)  # type: ignore[arg-type]
    c.elig.prepare(job, extra)
    return c.submit(job, now)


def add_node(c: Cluster, name: str, cpus: int = 16, gpus: int = 4) -> None:
    c.node_hello(name, NodeReport(cpus, 64000, tuple(Gpu(i, "a100") for i in range(gpus)), {}),
                 [], [], 0.0)


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    add_node(c, "node1")
    add_node(c, "node2")
    yield c
    c.validate()


def finish(c: Cluster, job: Job, code: int = 0, now: float = 5.0) -> None:
    c.job_exited(job.batch_host, job.job_id, job.attempt, code, 0, "", now)


# ---------------------------------------------------------------- parsing


def test_parse_dependency_forms() -> None:
    dep = parse_dependency("afterok:1:2,afterany:3_4,after:5+10")
    assert dep is not None and not dep.any_of
    assert [(t.kind, t.job_id, t.task, t.minutes) for t in dep.terms] == [
        ("afterok", 1, None, 0), ("afterok", 2, None, 0), ("afterany", 3, 4, 0),
        ("after", 5, None, 10),
    ]
    dep = parse_dependency("afterok:1?afternotok:2")
    assert dep is not None and dep.any_of
    assert parse_dependency("singleton") is not None
    assert parse_dependency("") is None


@pytest.mark.parametrize("bad", ["afterok", "afterok:", "afterok:x", "bogus:1",
                                 "afterok:1,afterany:2?after:3", "afterok:1+5", "afterok:0"])
def test_parse_dependency_rejects(bad: str) -> None:
    with pytest.raises(DependencyError, match="Job dependency problem"):
        parse_dependency(bad)


def test_parse_array_forms() -> None:
    assert (str(parse_array("0-99")[0]), parse_array("0-99")[1]) == ("0-99", 0)
    assert str(parse_array("1,3,5-7")[0]) == "1,3,5-7"
    tasks, limit = parse_array("0-15:4%2")
    assert (list(tasks), str(tasks), limit) == ([0, 4, 8, 12], "0-12:4", 2)
    for bad in ("", "a", "5-1", "0-10:0", "1%", "0-1001"):
        with pytest.raises(ArraySpecError, match="Invalid job array specification"):
            parse_array(bad, 1001)


def test_taskset_pop_remove_contains() -> None:
    ts = TaskSet.of(range(10))
    assert ts.pop_first() == 0 and len(ts) == 9 and 0 not in ts
    assert ts.remove(5) and str(ts) == "1-4,6-9" and len(ts) == 8
    assert not ts.remove(5)
    big = parse_array("0-9999", 10001)[0]
    assert len(big.ranges) == 1 and len(big) == 10000


# ---------------------------------------------------------------- dependencies


def test_afterok_waits_then_runs(cluster: Cluster) -> None:
    up = submit(cluster)
    down = submit(cluster, extra={"dependency": f"afterok:{up.job_id}"})
    orders = cluster.schedule(1.0)
    assert [o.job_id for o in orders] == [up.job_id]
    assert down.reason == "Dependency"
    assert down.dependency is not None
    assert down.dependency.show() == f"afterok:{up.job_id}(unfulfilled)"
    finish(cluster, up)
    orders = cluster.schedule(6.0)
    assert [o.job_id for o in orders] == [down.job_id] and down.state == S.RUNNING
    assert down.dependency.show() == ""


def test_afterok_failed_upstream_never_satisfied(cluster: Cluster) -> None:
    up = submit(cluster)
    down = submit(cluster, extra={"dependency": f"afterok:{up.job_id}"})
    cluster.schedule(1.0)
    finish(cluster, up, code=1)
    assert cluster.schedule(6.0) == []
    assert down.state == S.PENDING and down.reason == "DependencyNeverSatisfied"
    assert down.dependency is not None
    assert down.dependency.show() == f"afterok:{up.job_id}(failed)"


def test_kill_on_invalid_dep_cancels(cluster: Cluster) -> None:
    up = submit(cluster)
    down = submit(cluster, extra={"dependency": f"afterok:{up.job_id}",
                                  "kill-on-invalid-dep": "yes"})
    cluster.schedule(1.0)
    finish(cluster, up, code=2)
    cluster.schedule(6.0)
    assert down.state == S.CANCELLED and down.reason == "DependencyNeverSatisfied"


def test_config_default_kill_invalid_depend() -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main",
                kill_invalid_depend=True)
    add_node(c, "node1")
    up = submit(c)
    down = submit(c, extra={"dependency": f"afternotok:{up.job_id}"})
    keep = submit(c, extra={"dependency": f"afterok:{up.job_id}",
                            "kill-on-invalid-dep": "no"})
    c.schedule(1.0)
    finish(c, up, code=0)
    c.schedule(6.0)
    assert down.state == S.CANCELLED
    assert keep.state == S.RUNNING
    c.validate()


def test_afternotok_and_afterany(cluster: Cluster) -> None:
    up = submit(cluster)
    notok = submit(cluster, extra={"dependency": f"afternotok:{up.job_id}"})
    anyway = submit(cluster, extra={"dependency": f"afterany:{up.job_id}"})
    cluster.schedule(1.0)
    assert (notok.reason, anyway.reason) == ("Dependency", "Dependency")
    finish(cluster, up, code=3)
    cluster.schedule(6.0)
    assert notok.state == S.RUNNING and anyway.state == S.RUNNING


def test_after_with_delay(cluster: Cluster) -> None:
    up = submit(cluster)
    now_ = submit(cluster, extra={"dependency": f"after:{up.job_id}"})
    later = submit(cluster, extra={"dependency": f"after:{up.job_id}+2"})
    cluster.schedule(10.0)  # up starts
    assert up.state == S.RUNNING
    cluster.schedule(11.0)
    assert now_.state == S.RUNNING and later.state == S.PENDING
    assert later.reason == "Dependency"
    for n in cluster.nodes:
        cluster.node_heartbeat(n, None, 10.0 + 121)
    cluster.tick(10.0 + 119)
    cluster.schedule(10.0 + 119)
    assert later.state == S.PENDING
    cluster.need_schedule = False
    cluster.tick(10.0 + 121)
    assert cluster.need_schedule  # the timer, whatever else (priority aging) may also ask
    cluster.schedule(10.0 + 121)
    assert later.state == S.RUNNING


def test_after_cancelled_before_start(cluster: Cluster) -> None:
    up = submit(cluster, hold=True)
    down = submit(cluster, extra={"dependency": f"after:{up.job_id}"})
    later = submit(cluster, extra={"dependency": f"after:{up.job_id}+1"})
    cluster.schedule(1.0)
    assert down.reason == "Dependency"
    cluster.cancel(up.job_id, ALICE, 2.0)
    cluster.schedule(3.0)
    assert down.state == S.RUNNING
    assert later.state == S.PENDING  # +1 minute from the cancellation
    assert cluster.elig.index.timers == {later.job_id: 62.0}
    for n in cluster.nodes:
        cluster.node_heartbeat(n, None, 62.0)
    cluster.tick(62.0)
    cluster.schedule(62.0)
    assert later.state == S.RUNNING


def test_or_dependency(cluster: Cluster) -> None:
    a = submit(cluster)
    b = submit(cluster, hold=True)
    down = submit(cluster, extra={"dependency": f"afterok:{b.job_id}?afterok:{a.job_id}"})
    cluster.schedule(1.0)
    assert down.reason == "Dependency"
    finish(cluster, a)
    cluster.schedule(6.0)
    assert down.state == S.RUNNING


def test_and_dependency_multiple_ids(cluster: Cluster) -> None:
    a = submit(cluster)
    b = submit(cluster)
    down = submit(cluster, extra={"dependency": f"afterok:{a.job_id}:{b.job_id}"})
    cluster.schedule(1.0)
    finish(cluster, a)
    cluster.dirty_jobs.clear()
    cluster.schedule(6.0)
    assert down.job_id in cluster.dirty_jobs  # the resolved term is stored
    assert down.state == S.PENDING and down.reason == "Dependency"
    assert down.dependency is not None
    assert down.dependency.show() == f"afterok:{b.job_id}(unfulfilled)"
    finish(cluster, b, now=7.0)
    cluster.schedule(8.0)
    assert down.state == S.RUNNING


def test_unknown_upstream_is_lifted_like_slurm(cluster: Cluster) -> None:
    down = submit(cluster, extra={"dependency": "afterok:999999"})
    cluster.schedule(1.0)
    assert down.state == S.RUNNING


def test_bad_dependency_rejected_and_nothing_changes(cluster: Cluster) -> None:
    with pytest.raises(InvalidRequest, match="Job dependency problem"):
        submit(cluster, extra={"dependency": "afterok:abc"})
    with pytest.raises(InvalidRequest, match="Job dependency problem"):
        submit(cluster, extra={"dependency": "afterok:1"})  # itself: the next id is 1
    assert cluster.jobs == {} and cluster.next_job_id == 1


def test_requeued_upstream_is_not_finished(cluster: Cluster) -> None:
    up = submit(cluster)
    down = submit(cluster, extra={"dependency": f"afterok:{up.job_id}"})
    cluster.schedule(1.0)
    for o in cluster.requeue(up.job_id, ALICE, 2.0):
        cluster.job_exited(o.node, up.job_id, 0, 0, 15, "cancelled", 2.5)
    assert up.state == S.PENDING and up.attempt == 1
    cluster.schedule(3.0)  # up starts again
    assert down.state == S.PENDING and down.reason == "Dependency"
    finish(cluster, up, now=4.0)
    cluster.schedule(5.0)
    assert down.state == S.RUNNING


def test_singleton(cluster: Cluster) -> None:
    first = submit(cluster, name="train")
    second = submit(cluster, name="train", extra={"dependency": "singleton"})
    other = submit(cluster, name="eval", extra={"dependency": "singleton"})
    cluster.schedule(1.0)
    assert first.state == S.RUNNING and other.state == S.RUNNING
    assert second.reason == "Dependency"
    finish(cluster, first)
    cluster.schedule(6.0)
    assert second.state == S.RUNNING


def test_update_dependency(cluster: Cluster) -> None:
    up = submit(cluster, hold=True)
    down = submit(cluster)
    down2 = submit(cluster, hold=True)
    cluster.update_job(down2.job_id, ALICE, {"Dependency": f"afterok:{up.job_id}"}, 0.5)
    cluster.release(down2.job_id, ALICE, 0.6)
    cluster.schedule(1.0)
    assert down.state == S.RUNNING and down2.reason == "Dependency"
    with pytest.raises(InvalidRequest, match="Job dependency problem"):
        cluster.update_job(up.job_id, ALICE, {"Dependency": f"afterok:{down2.job_id}"}, 2.0)
    cluster.update_job(down2.job_id, ALICE, {"Dependency": ""}, 2.0)
    cluster.schedule(3.0)
    assert down2.state == S.RUNNING


def test_dependency_index_not_scan(cluster: Cluster) -> None:
    """Only the dependents of a changed job are evaluated."""
    ups = [submit(cluster, hold=True) for _ in range(50)]
    downs = [submit(cluster, extra={"dependency": f"afterok:{u.job_id}"}) for u in ups]
    cluster.schedule(1.0)
    assert cluster.elig.index.dirty == set()
    cluster.cancel(ups[7].job_id, ALICE, 2.0)
    assert cluster.elig.index.dirty == {downs[7].job_id}


# ---------------------------------------------------------------- begin, holds


def test_begin_time(cluster: Cluster) -> None:
    job = submit(cluster, extra={"begin": "100"})
    assert cluster.schedule(50.0) == [] and job.reason == "BeginTime"
    cluster.update_job(job.job_id, ALICE, {"StartTime": "60"}, 55.0)
    cluster.schedule(61.0)
    assert job.state == S.RUNNING


def test_admin_hold_cannot_be_released_by_user(cluster: Cluster) -> None:
    job = submit(cluster)
    cluster.hold(job.job_id, ROOT, 0.0)
    assert job.reason == "JobHeldAdmin" and job.priority == 0
    with pytest.raises(PermissionDenied):
        cluster.release(job.job_id, ALICE, 1.0)
    cluster.release(job.job_id, ROOT, 1.0)
    user_held = submit(cluster)
    cluster.hold(user_held.job_id, ALICE, 1.0)
    assert user_held.reason == "JobHeldUser"
    cluster.hold(user_held.job_id, ROOT, 1.0, user_hold=True)
    assert user_held.reason == "JobHeldUser"
    cluster.release(user_held.job_id, ALICE, 2.0)


# ---------------------------------------------------------------- arrays


def test_array_is_one_record_until_tasks_start(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-9"}, gpus_per_node=2)
    assert len(cluster.jobs) == 1 and meta.label == "1_[0-9]"
    orders = cluster.schedule(1.0)
    # 2 nodes x 4 GPUs: 4 tasks of 2 GPUs start, each a job of its own
    assert len(orders) == 4 and len(cluster.jobs) == 5
    started = sorted((j.array_task_id, j.job_id) for j in cluster.jobs.values()
                     if j.state == S.RUNNING)
    assert started == [(0, 2), (1, 3), (2, 4), (3, 5)]
    assert meta.label == "1_[4-9]" and meta.reason == "Resources"
    assert all(cluster.jobs[i].label == f"1_{t}" for t, i in started)


def test_array_last_task_keeps_array_id(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-2"})
    cluster.schedule(1.0)
    assert meta.state == S.RUNNING and meta.array_task_id == 2 and meta.array_tasks is None
    assert sorted(j.label for j in cluster.jobs.values()) == ["1_0", "1_1", "1_2"]


def test_array_throttle(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-5%2"})
    cluster.schedule(1.0)
    running = [j for j in cluster.jobs.values() if j.state == S.RUNNING]
    assert len(running) == 2 and meta.reason == "JobArrayTaskLimit"
    assert meta.label == "1_[2-5%2]"
    finish(cluster, running[0])
    cluster.schedule(6.0)
    assert sum(1 for j in cluster.jobs.values() if j.state == S.RUNNING) == 2


def test_whole_array_dependency(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-2"})
    down = submit(cluster, extra={"dependency": f"afterok:{meta.job_id}"})
    cluster.schedule(1.0)
    tasks = [j for j in cluster.jobs.values() if j.array_job_id == meta.job_id]
    assert len(tasks) == 3
    assert down.dependency is not None
    assert down.dependency.show() == "afterok:1_*(unfulfilled)"
    for i, t in enumerate(tasks[:2]):
        finish(cluster, t, now=2.0 + i)
        cluster.schedule(2.5 + i)
        assert down.state == S.PENDING
    finish(cluster, tasks[2], now=5.0)
    cluster.schedule(6.0)
    assert down.state == S.RUNNING


def test_array_task_dependency_and_failure(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-3"}, gpus_per_node=4)
    one = submit(cluster, extra={"dependency": f"afterok:{meta.job_id}_3"})
    whole = submit(cluster, extra={"dependency": f"afterok:{meta.job_id}"})
    cluster.schedule(1.0)  # tasks 0, 1 start (4 GPUs each)
    t0 = next(j for j in cluster.jobs.values() if j.array_task_id == 0)
    finish(cluster, t0, code=1)
    cluster.schedule(6.0)
    assert whole.reason == "DependencyNeverSatisfied"
    assert one.state == S.PENDING and one.reason == "Dependency"


def test_aftercorr(cluster: Cluster) -> None:
    up = submit(cluster, extra={"array": "0-1"}, gpus_per_node=4)
    down = submit(cluster, extra={"array": "0-1", "dependency": f"aftercorr:{up.job_id}"},
                  gpus_per_node=4)
    cluster.schedule(1.0)
    t0 = next(j for j in cluster.jobs.values() if j.array_job_id == up.job_id
              and j.array_task_id == 0)
    finish(cluster, t0)
    cluster.schedule(6.0)
    started = [j for j in cluster.jobs.values() if j.array_job_id == down.job_id
               and j.state == S.RUNNING]
    assert [j.array_task_id for j in started] == [0]
    t1 = next(j for j in cluster.jobs.values() if j.array_job_id == up.job_id
              and j.array_task_id == 1)
    finish(cluster, t1, code=1, now=7.0)
    cluster.schedule(8.0)
    cluster.schedule(9.0)
    d1 = next(j for j in cluster.jobs.values() if j.array_job_id == down.job_id
              and j.array_task_id == 1)
    assert (d1.state, d1.reason) == (S.PENDING, "DependencyNeverSatisfied")


def test_cancel_array_parts(cluster: Cluster) -> None:
    meta = submit(cluster, extra={"array": "0-9"}, gpus_per_node=4)
    cluster.schedule(1.0)  # tasks 0 and 1 run
    ids = cluster.elig.resolve(f"{meta.job_id}_[3-4]", split=True)
    assert len(ids) == 2
    for i in ids:
        cluster.cancel(i, ALICE, 2.0)
    assert sorted(cluster.jobs[i].label for i in ids) == ["1_3", "1_4"]
    assert all(cluster.jobs[i].state == S.CANCELLED for i in ids)
    assert str(meta.array_tasks) == "2,5-9"
    everything = cluster.elig.resolve(str(meta.job_id))
    assert meta.job_id in everything and len(everything) == 5
    for i in everything:
        if not cluster.jobs[i].is_final:
            cluster.cancel(i, ALICE, 3.0)
    assert meta.state == S.CANCELLED


def test_array_task_requeue_alone(cluster: Cluster) -> None:
    submit(cluster, extra={"array": "0-1"}, gpus_per_node=4)
    cluster.schedule(1.0)
    t0 = next(j for j in cluster.jobs.values() if j.array_task_id == 0)
    t1 = next(j for j in cluster.jobs.values() if j.array_task_id == 1)
    for o in cluster.requeue(t0.job_id, ALICE, 2.0):
        cluster.job_exited(o.node, t0.job_id, 0, 0, 15, "cancelled", 2.5)
    assert t0.state == S.PENDING and t1.state == S.RUNNING and t0.label == "1_0"
    orders = cluster.schedule(3.0)
    assert orders == [LaunchOrder(t0.batch_host, t0.job_id, 1, 0)]


def test_max_array_size() -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main", max_array_size=10)
    with pytest.raises(InvalidRequest, match="Invalid job array specification"):
        submit(c, extra={"array": "0-10"})
    assert c.jobs == {}


def test_big_array_is_cheap(cluster: Cluster) -> None:
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main",
                max_array_size=10001)
    add_node(c, "node1")
    meta = submit(c, extra={"array": "0-9999"})
    c.schedule(1.0)
    # 16 CPUs: 16 tasks run, the rest stays one record
    assert len(c.jobs) == 17 and len(meta.array_tasks or ()) == 9984
    c.validate()


# ---------------------------------------------------------------- persistence


def test_store_round_trip_keeps_dependencies_and_arrays(cluster: Cluster, tmp_path) -> None:
    """Everything this module adds survives a controller restart (real SQLite file)."""
    from gsched.controller.store import Store, job_to_row, node_to_row

    meta = submit(cluster, extra={"array": "0-9%3"}, gpus_per_node=4)
    up = submit(cluster, hold=True)
    down = submit(cluster, extra={"dependency": f"afterok:{up.job_id}?afterany:{meta.job_id}_7",
                                  "kill-on-invalid-dep": "yes", "begin": "50"})
    cluster.schedule(1.0)  # tasks 0, 1 start
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.write([job_to_row(j) for j in cluster.jobs.values()],
                [node_to_row(n) for n in cluster.nodes.values()], cluster.next_job_id)
    again = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    store.load(again, keep_finished_since=0.0)
    store.close()
    m2, d2 = again.jobs[meta.job_id], again.jobs[down.job_id]
    assert m2.label == meta.label == "1_[2-9%3]" and str(m2.array_tasks) == "2-9"
    assert m2.array_size == (10, 0, 9, 1)
    assert d2.dependency is not None and d2.dependency.any_of and d2.kill_on_invalid_dep
    assert d2.dependency.show() == down.dependency.show()  # type: ignore[union-attr]
    assert d2.begin_time == 50.0
    tasks = sorted(j.label for j in again.jobs.values() if j.array_task_id >= 0)
    assert tasks == ["1_0", "1_1"]
    info = again.elig.arrays[meta.job_id]
    assert (info.running, info.waiting, sorted(info.members)) == (2, 0, [0, 1])
    assert down.job_id in again.elig.index.by_upstream[up.job_id]
    again.validate()


@pytest.mark.parametrize("seed", range(12))
def test_random_walk_arrays_keep_their_invariants(seed: int) -> None:
    """Random submits, cancels, requeues and exits: throttles hold, every task of an
    array exists exactly once, the counts match a recount (validate), and in the end
    every task has run or been cancelled."""
    import random

    rnd = random.Random(seed)
    c = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    for n in range(3):
        add_node(c, f"node{n}", cpus=4, gpus=2)
    arrays: dict[int, tuple[int, int]] = {}  # array id -> (task count, throttle)
    now = 0.0
    for _ in range(rnd.randint(2, 4)):
        count, limit = rnd.randint(2, 12), rnd.choice([0, 0, 1, 2, 3])
        spec = f"0-{count - 1}" + (f"%{limit}" if limit else "")
        meta = submit(c, now, extra={"array": spec}, gpus_per_node=rnd.choice([0, 1, 2]))
        arrays[meta.job_id] = (count, limit)
    deps: list[tuple[Job, str, int]] = []
    corr: dict[int, int] = {}  # dependent array -> upstream array (aftercorr)
    for a in list(arrays):
        for kind in ("afterok", "afterany", "afternotok"):
            deps.append((submit(c, now, extra={"dependency": f"{kind}:{a}"}), kind, a))
        count = arrays[a][0]
        d = submit(c, now, extra={"array": f"0-{count - 1}", "dependency": f"aftercorr:{a}"})
        corr[d.job_id] = a

    def check_dependents() -> None:
        for job in c.jobs.values():
            if job.array_job_id in corr and job.state == S.RUNNING and job.start_time == now:
                up = [j for j in c.jobs.values() if j.array_job_id == corr[job.array_job_id]
                      and j.array_task_id == job.array_task_id]
                assert [j.state for j in up] == [S.COMPLETED], (job.label, up)
        for job, kind, a in deps:
            if job.state != S.RUNNING or job.start_time != now:
                continue
            tasks = [j for j in c.jobs.values() if j.array_job_id == a]
            assert all(j.is_final for j in tasks) and not any(
                j.array_tasks for j in tasks), (kind, a)
            failed = any(j.state != S.COMPLETED for j in tasks)
            assert (kind == "afterok" and not failed) or kind == "afterany" or (
                kind == "afternotok" and failed), (kind, [(j.label, j.state) for j in tasks])

    for _step in range(200):
        now += 1.0
        for n in c.nodes:
            c.node_heartbeat(n, None, now)
        c.schedule(now)
        check_dependents()
        for a, (_, limit) in arrays.items():
            running = sum(1 for j in c.jobs.values()
                          if j.array_job_id == a and j.state in (S.RUNNING, S.COMPLETING))
            assert not limit or running <= limit, (a, running, limit)
        c.validate()
        running = [j for j in c.jobs.values() if j.state == S.RUNNING]
        action = rnd.random()
        if running and action < 0.5:
            j = rnd.choice(running)
            finish(c, j, code=rnd.choice([0, 0, 1]), now=now)
        elif running and action < 0.6:
            j = rnd.choice(running)
            for o in c.requeue(j.job_id, ALICE, now):
                c.job_exited(o.node, j.job_id, j.attempt, 0, 15, "cancelled", now)
        elif action < 0.7:
            a = rnd.choice(list(arrays))
            t = rnd.randrange(arrays[a][0])
            for i in c.elig.resolve(f"{a}_{t}", split=True):
                j = c.jobs[i]
                if not j.is_final and j.state != S.COMPLETING:
                    for o in c.cancel(i, ALICE, now):  # kill orders: the node confirms
                        c.job_exited(o.node, i, j.attempt, 0, 15, "cancelled", now)
        if all(j.is_final or j.reason == "DependencyNeverSatisfied" for j in c.jobs.values()):
            break
    # drain: finish whatever still runs, until nothing is left
    for _ in range(100):
        now += 1.0
        for n in c.nodes:
            c.node_heartbeat(n, None, now)
        c.schedule(now)
        check_dependents()
        running = [j for j in c.jobs.values() if j.state == S.RUNNING]
        for j in running:
            finish(c, j, now=now)
        if all(j.is_final or j.reason == "DependencyNeverSatisfied" for j in c.jobs.values()):
            break
    c.validate()
    for a, (count, _) in arrays.items():
        tasks = [j.array_task_id for j in c.jobs.values() if j.array_job_id == a]
        assert sorted(tasks) == list(range(count)), (a, tasks)
        left = [(j.label, j.state, j.reason, j.hold) for j in c.jobs.values()
                if j.array_job_id == a and not j.is_final]
        assert not left, left
    for d, a in corr.items():
        for job in [j for j in c.jobs.values() if j.array_job_id == d]:
            up = next((j for j in c.jobs.values() if j.array_job_id == a
                       and j.array_task_id == job.array_task_id), None)
            assert job.array_tasks is None, job.label  # every task was decided
            ok = up is not None and up.state == S.COMPLETED
            assert job.is_final if ok else job.reason == "DependencyNeverSatisfied", (
                job.label, job.state, job.reason, up and up.state)
    for job, kind, _ in deps:
        assert job.is_final or job.reason == "DependencyNeverSatisfied", (kind, job.reason)
        assert job.state != S.PENDING or kind != "afterany"


def test_show_job_and_gqueue_codes_for_arrays(cluster: Cluster) -> None:
    """What gctl show job and gqueue print for an array's remainder and its tasks."""
    from gsched.cli import formats
    from gsched.cli.show import show_job
    from gsched.controller.convert import job_info
    from gsched.protos import gsched_pb2 as pb

    spec = pb.JobSpec(name="sweep", script="#!/bin/sh\n", workdir="/w").SerializeToString()
    meta = submit(cluster, extra={"array": "0-5%2"})
    meta.spec = spec
    up = submit(cluster, hold=True)
    down = submit(cluster, extra={"dependency": f"afterok:{meta.job_id}?afterany:{up.job_id}"})
    cluster.schedule(1.0)
    task = next(j for j in cluster.jobs.values() if j.array_task_id == 0)
    rest = job_info(meta, 1.0, detail=True)
    one = job_info(task, 1.0, detail=True)
    text = show_job(rest)
    assert text.startswith("JobId=1 ArrayJobId=1 ArrayTaskId=2-5 ArrayTaskThrottle=2 JobName=job")
    assert "StdOut=/w/slurm-1_4294967294.out" in text
    text = show_job(one)
    assert text.startswith(f"JobId={task.job_id} ArrayJobId=1 ArrayTaskId=0 JobName=job")
    assert "ArrayTaskThrottle" not in text
    assert "StdOut=/w/slurm-1_0.out" in text
    text = show_job(job_info(down, 1.0))
    assert f"Dependency=afterok:1_*(unfulfilled)?afterany:{up.job_id}(unfulfilled)" in text
    fmt = formats.parse_format("%i|%A|%F|%K|%E")
    rows = formats.render_jobs([rest, one, job_info(down, 1.0)], fmt, 1.0, header=False)
    assert rows == ["1_[2-5%2]|1|1|[2-5%2]|(null)", f"1_0|{task.job_id}|1|0|(null)",
                    f"{down.job_id}|{down.job_id}|{down.job_id}|N/A|"
                    f"afterok:1_*(unfulfilled)?afterany:{up.job_id}(unfulfilled)"]
    assert [formats.job_label(j) for j in formats.expand_array_tasks([rest, one])] == [
        "1_2", "1_3", "1_4", "1_5", "1_0"]
