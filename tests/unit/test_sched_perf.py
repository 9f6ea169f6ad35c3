"""The scheduling pass's speed-ups decide exactly what the plain computations decide.

- The backfill planner indexes reservation-free spans per request shape and filters
  them per job limit; the ready sweep merges its candidate times lazily. Both are
  checked against straightforward reference versions (recompute everything, sort
  everything) on random workloads: identical plans. So is each node's memo of when it
  is ready for a request (``_Node.ready_point``).
- Past the backfill depth, a job whose every request variant already found no room
  now, or collided with reservations for a limit no longer than its own, waits
  without a look (``_SKIP_DEAD``); with the short cut turned off the same plans come
  out.
- The Cluster keeps the last pass's queue order (``order_hint``), each job's
  planning key (``plan_keys``) and the planner's node models (``plan_models``) across
  passes. A cluster that keeps them and one that forgets them before every pass make
  identical decisions over random event streams; the planner with kept models plans
  what it plans from fresh ones while nodes, allocations, ends and time change.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import random

import pytest

from gsched.controller import backfill as bf
from gsched.controller.backfill import BackfillConfig, Models, plan
from gsched.controller.cluster import Caller, Cluster, NodeReport
from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Gpu, Node
from gsched.controller.scheduler import Partition

S = JobState


# ------------------------------------------------------------------ reference planner parts
def ref_held(self: bf._Planner, per_node: tuple[object, ...], req: Request,
             length: float) -> list[tuple[float, float, str]]:
    """Start windows on the nodes with holds, computed from scratch for this limit."""
    names = self.names[str(per_node[0])]
    out = []
    for n in self.held:
        if not (n.holds and n.name in names):
            continue
        need = self._need_ever(n, req)
        runs = [] if need is None else bf._runs(n.points(self.now), need, self.horizon)
        out.extend((lo, hi, n.name) for lo, hi in bf._starts(runs, length))
    return sorted(out)


def ref_sweep_ready(self: bf._Planner, order: list[tuple[float, str]],
                    held: list[tuple[float, float, str]],
                    count: int) -> tuple[float, list[str]] | None:
    """The sweep over every candidate time, sorted up front."""
    held_nodes = len({name for _, _, name in held})
    if len(order) + held_nodes < count:
        return None
    skip = max(0, count - held_nodes - 1)
    times = sorted([lo for lo, _, _ in held] + [t for t, _ in order[skip:]])
    active: dict[str, tuple[float, float]] = {}
    ends: list[tuple[float, str]] = []
    i = 0
    for t in times:
        if t > self.horizon:
            break
        while i < len(held) and held[i][0] <= t:
            lo, hi, name = held[i]
            active[name] = (lo, hi)
            heapq.heappush(ends, (hi, name))
            i += 1
        while ends and ends[0][0] < t:
            hi, name = heapq.heappop(ends)
            if name in active and active[name][1] == hi:
                del active[name]
        ready = bisect.bisect_right(order, (t, "\U0010ffff"))
        if ready + len(active) >= count:
            pool = [(lo, name) for name, (lo, _) in active.items()]
            pool.extend(order[max(0, ready - count):ready])
            pool.sort(key=lambda p: (-p[0], p[1]))
            return t, [name for _, name in pool[:count]]
    return None


def ref_ready_point(self: bf._Node, need: tuple[int, int, int, int, int], now: float) -> int:
    """The ready point computed from the profile every time (no memo on the node)."""
    return bf._ready_point(self.points(now), need)


def random_workload(rng: random.Random) -> tuple[dict[str, Node], dict[str, Partition],
                                                 dict[int, float], list[bf.PendingJob]]:
    n_nodes = rng.randint(3, 14)
    nodes: dict[str, Node] = {}
    for i in range(n_nodes):
        g = rng.choice((4, 8))
        nodes[f"n{i:02d}"] = Node(f"n{i:02d}", cpus=32, mem_mb=256000,
                                  gpus=[Gpu(k, "a100") for k in range(g)], up=True,
                                  ever_registered=True, connected=True)
    names = sorted(nodes)
    parts = {
        "main": Partition("main", all_nodes=True, default=True, default_time=3600),
        "half": Partition("half", nodes=tuple(names[: max(1, n_nodes // 2)]),
                          max_time=rng.choice((-1, 7200))),
    }
    ends: dict[int, float] = {}
    jid = 1
    for name in names:  # running jobs with dated ends (some never end)
        node = nodes[name]
        for _ in range(rng.randint(0, 3)):
            free = [g.index for g in node.gpus if g.index not in
                    {x for _, _, gs in node.jobs.values() for x in gs}]
            if not free:
                break
            take = tuple(free[: rng.randint(1, len(free))])
            node.allocate(jid, rng.randint(1, 4), 0, take)
            ends[jid] = rng.choice((float("inf"), rng.uniform(10, 20000)))
            jid += 1
    pending = []
    for k in range(rng.randint(10, 70)):
        gpus = rng.choice((0, 1, 1, 2, 4, 8))
        req = Request(
            nodes=rng.choice((1, 1, 1, 2, 3)), gpus_per_node=gpus,
            cpus_per_node=rng.randint(1, 8),
            time_limit=rng.choice((0, -1, rng.randint(60, 30000), rng.randint(60, 30000))),
            exclusive=rng.random() < 0.1,
            partitions=rng.choice(((), ("half",), ("main", "half"))),
            exclude=(rng.choice(names),) if rng.random() < 0.1 else (),
        )
        pending.append(bf.PendingJob(1000 + k, req))
    return nodes, parts, ends, pending


@pytest.mark.parametrize("seed", range(120))
def test_planner_indexes_match_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    nodes, parts, ends, pending = random_workload(rng)
    cfg = BackfillConfig(depth=rng.randint(1, 40), window=rng.choice((3600.0, 86400.0)))
    fast = plan(pending, nodes, parts, "main", ends, 0.0, cfg, None, {})
    monkeypatch.setattr(bf._Planner, "_held", ref_held)
    monkeypatch.setattr(bf._Planner, "_sweep_ready", ref_sweep_ready)
    monkeypatch.setattr(bf._Node, "ready_point", ref_ready_point)
    monkeypatch.setattr(bf, "_SKIP_DEAD", False)
    slow = plan(pending, nodes, parts, "main", ends, 0.0, cfg)
    assert fast == slow


@pytest.mark.parametrize("seed", range(60))
def test_short_cut_past_depth_matches_full_look(seed: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Many same-shape jobs past a small depth, some partitions with MaxTime."""
    rng = random.Random(1000 + seed)
    nodes, parts, ends, pending = random_workload(rng)
    shapes = [p.request for p in pending[:6]]
    pending += [bf.PendingJob(5000 + k, dataclasses.replace(
        rng.choice(shapes), time_limit=rng.randint(60, 9000))) for k in range(80)]
    cfg = BackfillConfig(depth=rng.randint(0, 5))
    fast = plan(pending, nodes, parts, "main", ends, 0.0, cfg)
    monkeypatch.setattr(bf, "_SKIP_DEAD", False)
    slow = plan(pending, nodes, parts, "main", ends, 0.0, cfg)
    assert fast == slow


def test_short_cut_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workloads above do take the short cut, for held variants too (4,381 full
    looks instead of 6,983 when written; 59 views with a held variant)."""
    looks = views = held = 0
    real_prepare, real_waits = bf._Planner.prepare, bf._Planner.waits

    def prepare(self: bf._Planner, *a: object) -> object:
        nonlocal looks
        looks += 1
        return real_prepare(self, *a)  # type: ignore[arg-type]

    def waits(self: bf._Planner, *a: object) -> object:
        nonlocal views, held
        got = real_waits(self, *a)  # type: ignore[arg-type]
        views += got is not None
        held += got is not None and any(live for *_, live in got)
        return got

    monkeypatch.setattr(bf._Planner, "prepare", prepare)
    monkeypatch.setattr(bf._Planner, "waits", waits)
    counts = []
    for skip in (True, False):
        monkeypatch.setattr(bf, "_SKIP_DEAD", skip)
        looks = 0
        for seed in range(60):
            rng = random.Random(1000 + seed)
            nodes, parts, ends, pending = random_workload(rng)
            shapes = [p.request for p in pending[:6]]
            pending += [bf.PendingJob(5000 + k, dataclasses.replace(
                rng.choice(shapes), time_limit=rng.randint(60, 9000))) for k in range(80)]
            plan(pending, nodes, parts, "main", ends, 0.0, BackfillConfig(depth=rng.randint(0, 5)))
        counts.append(looks)
    assert counts[0] < counts[1] * 0.75, counts  # fewer full looks (prepare)
    assert views > 300 and held > 30, (views, held)


def test_short_cut_at_the_collision_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job one second shorter than the shortest that collided gets the full look (and
    here starts: it ends as the reservation begins); one as long waits for Priority."""
    nodes = {n: Node(n, cpus=32, mem_mb=256000, gpus=[Gpu(k, "a100") for k in range(8)],
                     up=True, ever_registered=True, connected=True) for n in ("a", "b")}
    nodes["a"].allocate(1, 1, 0, tuple(range(8)))  # a is busy until t=1000
    parts = {"main": Partition("main", all_nodes=True, default=True)}
    one = Request(gpus_per_node=8, cpus_per_node=1)
    pending = [bf.PendingJob(10, Request(nodes=2, gpus_per_node=8, time_limit=5000))]
    pending += [bf.PendingJob(11 + k, dataclasses.replace(one, time_limit=t))
                for k, t in enumerate((2000, 1001, 1001, 1000))]
    cfg = BackfillConfig(depth=1)
    for skip in (True, False):
        monkeypatch.setattr(bf, "_SKIP_DEAD", skip)
        p = plan(pending, nodes, parts, "main", {1: 1000.0}, 0.0, cfg)
        assert p.reservations[10].start_time == 1000.0
        assert [d.job_id for d in p.start_now] == [14]
        assert p.reasons == {10: "Resources", 11: "Priority", 12: "Priority", 13: "Priority"}


def test_reference_check_sees_reservations() -> None:
    """The random workloads do exercise holds and backfill (else the test above is idle)."""
    held = reserved = backfilled = 0
    for seed in range(120):
        rng = random.Random(seed)
        nodes, parts, ends, pending = random_workload(rng)
        cfg = BackfillConfig(depth=rng.randint(1, 40), window=rng.choice((3600.0, 86400.0)))
        p = plan(pending, nodes, parts, "main", ends, 0.0, cfg)
        reserved += len(p.reservations)
        backfilled += len(p.backfilled)
        held += len(p.reservations) > 1
    assert reserved > 200 and backfilled > 50 and held > 40


# ------------------------------------------------------------------ caches across passes
def make_cluster(n_nodes: int) -> Cluster:
    c = Cluster([Partition("main", all_nodes=True, default=True, default_time=3600),
                 Partition("small", nodes=tuple(f"n{i:02d}" for i in range(n_nodes // 2)))],
                "main", node_timeout=1e18, suspect_after=1e18, finished_keep=0.0,
                backfill=BackfillConfig(depth=8, window=86400.0), calc_period=120.0)
    report = NodeReport(32, 256000, tuple(Gpu(i) for i in range(8)), {})
    for i in range(n_nodes):
        c.node_hello(f"n{i:02d}", report, [], [], 0.0)
    return c


def pass_outcome(c: Cluster, now: float) -> tuple[object, ...]:
    orders = c.schedule(now)
    pending = sorted((j.job_id, j.reason, j.priority) for j in c.jobs.values()
                     if j.state == S.PENDING)
    return repr(orders), pending, sorted(c.reservations.items())


@pytest.mark.parametrize("seed", range(6))
def test_caches_across_passes_change_no_decision(seed: int) -> None:
    rng = random.Random(seed)
    kept, fresh = make_cluster(10), make_cluster(10)
    now = 0.0
    running: list[tuple[float, int]] = []
    for step in range(60):
        # the same events on both clusters
        for _ in range(rng.randint(0, 12)):
            req = Request(nodes=rng.choice((1, 1, 2)), gpus_per_node=rng.choice((1, 2, 4, 8)),
                          cpus_per_node=2, time_limit=rng.choice((0, rng.randint(60, 9000))),
                          partitions=rng.choice(((), ("small",), ("small", "main"))))
            nice = rng.choice((0, 0, 50))
            user = f"u{rng.randint(1, 3)}"
            for c in (kept, fresh):
                c.submit(Job(0, user, 1000, 1000, "g", "j", req, b"", 0.0, nice=nice), now)
        pend = sorted(kept.pending_ids)
        if pend and rng.random() < 0.5:  # an update: a new request object
            jid = rng.choice(pend)
            limit = rng.randint(60, 9000)
            where = rng.choice(((), ("small",), ("main",)))
            for c in (kept, fresh):
                job = c.jobs[jid]
                job.request = dataclasses.replace(job.request, time_limit=limit,
                                                  partitions=where)
        if pend and rng.random() < 0.3:  # hold or release
            jid = rng.choice(pend)
            for c in (kept, fresh):
                c.jobs[jid].hold = not c.jobs[jid].hold
        while running and running[0][0] <= now:
            _, jid = heapq.heappop(running)
            for c in (kept, fresh):
                job = c.jobs[jid]
                for name in list(job.pending_nodes):
                    c.job_exited(name, jid, job.attempt, 0, 0, "", now)
        node_events(rng, (kept, fresh), now)
        for c in (kept, fresh):
            c.tick(now)
        fresh.order_hint = []
        fresh.plan_keys = {}
        fresh.plan_models = Models()
        a = pass_outcome(kept, now)
        b = pass_outcome(fresh, now)
        assert a == b, f"step {step}"
        for jid in {j.job_id for j in kept.jobs.values() if j.state == S.RUNNING}:
            if all(jid != r for _, r in running):
                heapq.heappush(running, (now + rng.uniform(30, 3000), jid))
        # the memo follows request changes: every entry holds the job's current request
        for jid, (req, _) in kept.plan_keys.items():
            job = kept.jobs.get(jid)
            if job is not None and job.state == S.PENDING and not job.hold:
                assert req is job.request
        now += rng.choice((0.0, 30.0, 60.0, 300.0))
    assert len(kept.order_hint) > 0
    assert kept.plan_models.kept  # models were kept (and used: the passes agree)


ADMIN = Caller(0, "root", admin=True)


def node_events(rng: random.Random, clusters: tuple[Cluster, ...], now: float) -> None:
    """The same random node-side changes on every cluster: GPU health (a fresh list, or
    flipped in place), drains and resumes, running jobs' time limits (their ends)."""
    names = sorted(clusters[0].nodes)
    if rng.random() < 0.2:
        name, k = rng.choice(names), rng.randrange(8)
        healthy = rng.random() < 0.5
        for c in clusters:
            gpus = [dataclasses.replace(g) for g in c.nodes[name].gpus]
            gpus[k].healthy = healthy
            c.node_heartbeat(name, tuple(gpus), now)
    if rng.random() < 0.2:
        name, k = rng.choice(names), rng.randrange(8)
        for c in clusters:  # in place: no new list, no new Gpu
            g = c.nodes[name].gpus[k]
            g.healthy = not g.healthy
    if rng.random() < 0.15:
        name = rng.choice(names)
        state = rng.choice(("DRAIN", "RESUME"))
        for c in clusters:
            c.update_node([name], state, "test", ADMIN, now)
    running = sorted(j.job_id for j in clusters[0].jobs.values() if j.state == S.RUNNING)
    if running and rng.random() < 0.3:
        jid, limit = rng.choice(running), rng.choice((-1, 60, rng.randint(60, 9000)))
        for c in clusters:
            c.jobs[jid].time_limit = limit


@pytest.mark.parametrize("seed", range(40))
def test_kept_models_plan_as_fresh_ones(seed: int) -> None:
    """plan() with a Models kept across calls vs without, while the inputs change."""
    rng = random.Random(7000 + seed)
    nodes, parts, ends, pending = random_workload(rng)
    models = Models()
    now = 0.0
    names = sorted(nodes)
    next_id = 500
    for _ in range(12):
        cfg = BackfillConfig(depth=rng.randint(1, 20), window=rng.choice((3600.0, 86400.0)))
        ends = {j: max(e, now) for j, e in ends.items()}  # as expected_ends gives them
        # the models themselves: as built afresh, profile included
        for name, m in models.build(nodes, ends, now).items():
            f = bf._Node(nodes[name], ends, now)
            assert (m.free, m.free_idx, m.cap, m.gtype, m.cpus_key, m.events, m.holds) == (
                f.free, f.free_idx, f.cap, f.gtype, f.cpus_key, f.events, f.holds)
            assert m.points(now) == f.points(now)
        fast = plan(pending, nodes, parts, "main", ends, now, cfg, None, None, models)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(bf._Node, "ready_point", ref_ready_point)
            slow = plan(pending, nodes, parts, "main", ends, now, cfg)
        assert fast == slow
        for d in fast.start_now[: rng.randint(0, 3)]:  # some starts happen
            for p in d.placements:
                nodes[p.node].allocate(d.job_id, p.cpus, p.mem_mb, p.gpus)
            # (ends on a grid the clock also steps on: an end reached exactly by "now")
            ends[d.job_id] = now + rng.choice((100.0, 500.0, rng.uniform(0, 5000)))
            pending = [j for j in pending if j.job_id != d.job_id]
        for _ in range(rng.randint(0, 3)):  # some change
            node = nodes[rng.choice(names)]
            what = rng.randrange(6)
            if what == 0 and node.jobs:  # a job ends
                jid = rng.choice(sorted(node.jobs))
                for n in nodes.values():
                    n.release(jid)
                ends.pop(jid, None)
            elif what == 1 and node.gpus:  # GPU health, in place
                g = rng.choice(node.gpus)
                g.healthy = not g.healthy
            elif what == 2:  # a new GPU list
                node.gpus = [dataclasses.replace(g) for g in node.gpus]
                if rng.random() < 0.5:
                    node.gpus.pop()
            elif what == 3:
                node.cpus = rng.choice((16, 32, 64))
            elif what == 4 and node.jobs:  # a running job's end moves
                ends[rng.choice(sorted(node.jobs))] = rng.choice(
                    (float("inf"), now, now + rng.uniform(1, 9000)))
            elif what == 5:  # drained or back
                node.drain = not node.drain
        if rng.random() < 0.5:
            pending.append(bf.PendingJob(next_id, Request(
                nodes=rng.choice((1, 2)), gpus_per_node=rng.choice((1, 2, 4)),
                cpus_per_node=2, time_limit=rng.randint(60, 9000))))
            next_id += 1
        now += rng.choice((0.0, 0.0, 100.0, 500.0, rng.uniform(1, 6000)))


def test_pending_order_from_hint_is_sorted_order() -> None:
    c = make_cluster(4)
    for i in range(50):
        c.submit(Job(0, "u1", 1000, 1000, "g", "j", Request(gpus_per_node=8), b"", 0.0,
                     nice=(i * 37) % 11), float(i % 7))
    first = [j.job_id for j in c.pending_order()]
    c.order_hint.reverse()  # a stale or scrambled hint changes nothing
    assert [j.job_id for j in c.pending_order()] == first
    c.order_hint = [99999, *first[:3]]  # ids no longer pending are dropped
    assert [j.job_id for j in c.pending_order()] == first
