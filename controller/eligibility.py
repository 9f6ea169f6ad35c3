"""What keeps a pending job from being considered at all: dependencies and arrays (pure).

The :class:`Cluster` owns one :class:`Eligibility` and calls it at a few points:

- :meth:`Eligibility.prepare` / :meth:`check` / :meth:`submitted` at submit time
  (``--dependency``, ``--kill-on-invalid-dep``, ``--begin``, ``--array`` from the
  spec's ``extra``);
- :meth:`moved` on every job state change (array counters, dependents to look at);
- :meth:`select` at the start of a scheduling pass: resolves the dependencies that
  may have changed, drops jobs that wait on one (reason ``Dependency`` /
  ``DependencyNeverSatisfied``) or on their array's ``%N`` throttle
  (``JobArrayTaskLimit``), and offers each array's pending remainder as a few
  candidate tasks;
- :meth:`materialize` after the pass: a candidate task that was given nodes
  becomes a job of its own (see :mod:`gsched.controller.arrays`).

Nothing here scans every job: dependents are found through
:class:`~gsched.controller.deps.DepIndex`, array counts through
:class:`~gsched.controller.arrays.ArrayInfo`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gsched.controller.arrays import ArrayInfo, ArraySpecError, parse_array
from gsched.controller.deps import (
    DEP_PROBLEM,
    FAILED,
    FULFILLED,
    UNFULFILLED,
    Dependency,
    DependencyError,
    DepIndex,
    Term,
    Upstream,
    evaluate,
    parse_dependency,
)
from gsched.controller.errors import InvalidRequest
from gsched.controller.jobs import FINAL_STATES, Job, JobState

if TYPE_CHECKING:
    from gsched.controller.cluster import Cluster
    from gsched.controller.scheduler import Decision

__all__ = ["ARRAY_OFFER", "Eligibility"]

logger = logging.getLogger(__name__)
S = JobState
# How many tasks of one array's pending remainder are offered to one scheduling
# pass. When they all start, another pass follows at once.
ARRAY_OFFER = 256
_WAITING = frozenset({S.PENDING, S.REQUEUED})
_RUNNING = frozenset({S.RUNNING, S.COMPLETING})


class Eligibility:
    """Dependencies and arrays of one :class:`Cluster` (see the module docstring)."""

    def __init__(
        self, cluster: Cluster, max_array_size: int = 1001, kill_invalid_dep: bool = False
    ) -> None:
        self.c = cluster
        self.max_array_size = max_array_size
        self.kill_invalid_dep = kill_invalid_dep
        self.index = DepIndex()
        self.arrays: dict[int, ArrayInfo] = {}
        self.names: dict[tuple[int, str], set[int]] = {}  # active jobs by (uid, name)
        self._offered: dict[int, tuple[int, int, Job]] = {}  # candidate id -> (A, task, job)
        self._offers: dict[int, int] = {}  # array id -> tasks offered this pass
        self._started: dict[int, int] = {}  # array id -> tasks started this pass
        self._order: dict[int, int] = {}  # candidate id -> position among offered tasks
        # (free cpus or -1 if untracked, idle, types of free GPUs) per schedulable node
        self._free: list[tuple[int, bool, list[str]]] | None = None

    # ------------------------------------------------------------ submit
    def prepare(self, job: Job, extra: Mapping[str, str]) -> None:
        """Read ``--dependency``, ``--kill-on-invalid-dep``, ``--begin``, ``--array``.

        Raises:
            InvalidRequest: with SLURM's message; the job is not changed then.
        """
        dependency = None
        if extra.get("dependency"):
            try:
                dependency = parse_dependency(extra["dependency"])
            except DependencyError as exc:
                raise InvalidRequest(DEP_PROBLEM) from exc
        kill = extra.get("kill-on-invalid-dep", "").lower()
        begin = 0.0
        if extra.get("begin"):
            try:
                begin = float(extra["begin"])
            except ValueError as exc:
                raise InvalidRequest("Invalid --begin specification") from exc
        tasks, throttle = None, 0
        if extra.get("array"):
            try:
                tasks, throttle = parse_array(extra["array"], self.max_array_size)
            except ArraySpecError as exc:
                raise InvalidRequest(str(exc)) from exc
        job.dependency = dependency
        job.kill_on_invalid_dep = kill == "yes" if kill else self.kill_invalid_dep
        if begin:
            job.begin_time = begin
            job.eligible_time = max(job.eligible_time, begin)
        if tasks is not None:
            step = tasks.ranges[0][2] if len(tasks.ranges) == 1 else 1
            job.array_size = (len(tasks), tasks.min, tasks.max, step)
            job.array_max_running = throttle
            if len(tasks) == 1:
                job.array_task_id = tasks.first()
            else:
                job.array_tasks = tasks
            job.array_job_id = -1  # set to the job id by submitted()

    def check(self, job: Job, job_id: int) -> None:
        """Refuse what can only be an error once the id is known (self-dependency)."""
        if job.dependency is not None:
            for t in job.dependency.terms:
                if t.kind != "singleton" and t.job_id == job_id:
                    raise InvalidRequest(DEP_PROBLEM)

    def submitted(self, job: Job) -> None:
        if job.array_job_id:
            job.array_job_id = job.job_id
            info = self.arrays[job.job_id] = ArrayInfo()
            if job.array_tasks is None:
                info.members[job.array_task_id] = job.job_id
                info.waiting = 1
        self.names.setdefault((job.uid, job.name), set()).add(job.job_id)
        if job.dependency is not None:
            self._mark_arrays(job.dependency)
            self.index.add(job.job_id, job.dependency, job.uid, job.name)

    def _mark_arrays(self, dep: Dependency) -> None:
        for t in dep.terms:
            t.whole_array = t.kind != "singleton" and t.task is None and t.job_id in self.arrays

    def renamed(self, job: Job, old: str) -> None:
        ids = self.names.get((job.uid, old))
        if ids is not None:
            ids.discard(job.job_id)
            if not ids:
                del self.names[(job.uid, old)]
        if not job.is_final:
            self.names.setdefault((job.uid, job.name), set()).add(job.job_id)
        self.index.changed((), job.uid, old)
        self.index.changed((), job.uid, job.name)

    def set_dependency(self, job: Job, text: str) -> None:
        """``gctl update JobId=N Dependency=...`` (``""`` removes it)."""
        try:
            dep = parse_dependency(text)
        except DependencyError as exc:
            raise InvalidRequest(DEP_PROBLEM) from exc
        if dep is not None:
            self.check(job, job.job_id)
            old, job.dependency = job.dependency, dep
            if self._circular(job):
                job.dependency = old
                raise InvalidRequest(DEP_PROBLEM)
            job.dependency = old
        if job.dependency is not None:
            self.index.remove(job.job_id, job.dependency, job.uid, job.name)
        job.dependency = dep
        if dep is not None:
            self._mark_arrays(dep)
            self.index.add(job.job_id, dep, job.uid, job.name)
        elif job.reason in ("Dependency", "DependencyNeverSatisfied"):
            job.reason = "None"

    def _circular(self, start: Job) -> bool:
        seen: set[int] = set()
        todo = [start]
        while todo:
            job = todo.pop()
            if job.dependency is None:
                continue
            for t in job.dependency.terms:
                if t.kind == "singleton" or t.status != UNFULFILLED:
                    continue
                if t.job_id == start.job_id or (
                    start.array_job_id and t.job_id == start.array_job_id
                ):
                    return True
                if t.job_id not in seen:
                    seen.add(t.job_id)
                    up = self.c.jobs.get(t.job_id)
                    if up is not None and not up.is_final:
                        todo.append(up)
        return False

    # ------------------------------------------------------------ state changes
    def moved(self, job: Job, old: JobState, new: JobState, now: float) -> None:
        """Called by the Cluster for every state change of ``job``."""
        a = job.array_job_id
        if a:
            info = self.arrays.get(a)
            if info is not None:
                if job.array_tasks is None:
                    if old in _WAITING:
                        info.waiting -= 1
                    elif old in _RUNNING:
                        info.running -= 1
                    if new in _WAITING:
                        info.waiting += 1
                    elif new in _RUNNING:
                        info.running += 1
                    if new == S.RUNNING:
                        info.started_any = True
                        info.last_start = max(info.last_start, now)
                    if new in FINAL_STATES and new != S.COMPLETED:
                        info.failed += 1
                elif new in FINAL_STATES:
                    # the remainder record itself ended (cancelled): so did its tasks
                    info.failed += len(job.array_tasks)
        if new in FINAL_STATES:
            ids = self.names.get((job.uid, job.name))
            if ids is not None:
                ids.discard(job.job_id)
                if not ids:
                    del self.names[(job.uid, job.name)]
        if job.dependency is not None and new != S.PENDING and old == S.PENDING:
            self.index.remove(job.job_id, job.dependency, job.uid, job.name)
            if new == S.RUNNING:
                # it started, so its dependency was met (a remainder's aftercorr term
                # for the task it became, too): a requeue does not make it wait again
                for t in job.dependency.terms:
                    if t.status == UNFULFILLED:
                        t.status = FULFILLED
        before = len(self.index.dirty)
        self.index.changed((job.job_id, a) if a else (job.job_id,), job.uid, job.name)
        if len(self.index.dirty) != before:
            self.c.need_schedule = True

    def forget(self, job: Job) -> None:
        """``job`` is dropped from memory (finished long ago)."""
        a = job.array_job_id
        info = self.arrays.get(a) if a else None
        if info is not None:
            if info.members.get(job.array_task_id) == job.job_id:
                del info.members[job.array_task_id]
            if not info.members and a not in self.c.jobs:
                del self.arrays[a]

    def reindex(self) -> None:
        """Rebuild every index from the jobs (after loading them from the store)."""
        self.index = DepIndex()
        self.arrays = {}
        self.names = {}
        for job in self.c.jobs.values():
            if not job.is_final:
                self.names.setdefault((job.uid, job.name), set()).add(job.job_id)
            if job.state == S.PENDING and job.dependency is not None:
                self.index.add(job.job_id, job.dependency, job.uid, job.name)
            a = job.array_job_id
            if not a:
                continue
            info = self.arrays.setdefault(a, ArrayInfo())
            if job.array_tasks is not None:
                if job.is_final:
                    info.failed += len(job.array_tasks)
                continue
            info.members[job.array_task_id] = job.job_id
            if job.state in _WAITING:
                info.waiting += 1
            elif job.state in _RUNNING:
                info.running += 1
            elif job.state != S.COMPLETED:
                info.failed += 1
            if job.attempts:
                info.started_any = True
                info.last_start = max(info.last_start, job.attempts[-1]["start"])

    def validate(self) -> None:
        """Invariants (tests): the incremental array counts match a recount."""
        fresh = Eligibility(self.c, self.max_array_size, self.kill_invalid_dep)
        fresh.reindex()
        for a, info in fresh.arrays.items():
            mine = self.arrays.get(a)
            assert mine is not None, f"array {a} not indexed"
            assert (mine.running, mine.waiting) == (info.running, info.waiting), (
                f"array {a}: counts {mine} != {info}"
            )
            for t, job_id in info.members.items():
                assert mine.members.get(t) == job_id, f"array {a} task {t}: {mine.members}"
        for job in self.c.jobs.values():
            if job.array_tasks is not None:
                assert len(job.array_tasks) >= 1, f"empty remainder {job.job_id}"
                for t in job.array_tasks:
                    assert t not in fresh.arrays[job.array_job_id].members, (
                        f"task {t} both pending and split off"
                    )

    # ------------------------------------------------------------ dependencies
    def _job_up(self, job: Job) -> Upstream:
        started = bool(job.attempts)
        return Upstream(
            known=True,
            started=started,
            start_time=job.attempts[-1]["start"] if started else 0.0,
            pending=job.state in _WAITING,
            finished=job.is_final,
            failed=job.is_final and job.state != S.COMPLETED,
            end_time=job.end_time,
        )

    def _remainder(self, a: int) -> tuple[Job | None, int]:
        meta = self.c.jobs.get(a)
        if meta is None or meta.array_tasks is None or meta.state != S.PENDING:
            return meta, 0
        return meta, len(meta.array_tasks)

    def upstream(self, term: Term) -> Upstream:
        """The state of what ``term`` waits on: a job, one array task, or a whole array."""
        info = self.arrays.get(term.job_id)
        if info is not None:
            meta, remaining = self._remainder(term.job_id)
            if term.task is None:
                return Upstream(
                    known=True,
                    started=info.started_any,
                    start_time=info.last_start,
                    pending=remaining > 0 or info.waiting > 0,
                    finished=remaining == 0 and info.running == 0 and info.waiting == 0,
                    failed=info.failed > 0,
                )
            job_id = info.members.get(term.task)
            if job_id is None:
                if meta is not None and meta.array_tasks is not None and (
                    term.task in meta.array_tasks
                ):
                    if remaining:
                        return Upstream(known=True)
                    return Upstream(known=True, pending=False, finished=True, failed=True)
                return Upstream(known=False)
            member = self.c.jobs.get(job_id)
            return self._job_up(member) if member is not None else Upstream(known=False)
        job = self.c.jobs.get(term.job_id)
        if job is None or term.task is not None:
            return Upstream(known=False)
        return self._job_up(job)

    def _singleton_free(self, job: Job) -> bool:
        for other_id in self.names.get((job.uid, job.name), ()):
            if other_id == job.job_id:
                continue
            other = self.c.jobs.get(other_id)
            if other is None:
                continue
            if other.state in _RUNNING or (other.state in _WAITING and other_id < job.job_id):
                return False
        return True

    def _corr_state(self, job: Job, task: int) -> str:
        """The ``aftercorr`` terms of ``job`` for its task ``task``."""
        state = FULFILLED
        assert job.dependency is not None
        for t in job.dependency.terms:
            if t.kind != "aftercorr":
                continue
            probe = Term("afterok", t.job_id, task)
            up = self.upstream(probe)
            if not up.known:
                probe.status = FULFILLED
            else:
                evaluate(probe, up, 0.0)
            if probe.status == FAILED:
                return FAILED
            if probe.status == UNFULFILLED:
                state = UNFULFILLED
        return state

    def _state(self, job: Job) -> str:
        dep = job.dependency
        if dep is None:
            return FULFILLED
        if job.array_tasks is not None and any(t.kind == "aftercorr" for t in dep.terms):
            # decided task by task when the remainder offers tasks
            saved = [(t, t.status) for t in dep.terms if t.kind == "aftercorr"]
            for t, _ in saved:
                t.status = FULFILLED
            state = dep.state()
            for t, status in saved:
                t.status = status
            return state
        return dep.state()

    def _evaluate(self, job: Job, now: float) -> None:
        dep = job.dependency
        assert dep is not None
        before = [(t.status, t.ready_at, t.seen_failure) for t in dep.terms]
        for t in dep.terms:
            if t.status != UNFULFILLED:
                continue
            if t.kind == "singleton":
                if self._singleton_free(job):
                    t.status = FULFILLED
                continue
            if t.kind == "aftercorr":
                if job.array_tasks is not None:
                    continue
                if job.array_job_id:
                    probe = Term("afterok", t.job_id, job.array_task_id)
                    evaluate(probe, self.upstream(probe), now)
                    t.status = probe.status
                    continue
            evaluate(t, self.upstream(t), now)
            if t.status == UNFULFILLED and t.ready_at > now:
                self.index.timers[job.job_id] = min(
                    self.index.timers.get(job.job_id, t.ready_at), t.ready_at
                )
        state = self._state(job)
        corr_open = job.array_tasks is not None and any(
            t.kind == "aftercorr" and t.status == UNFULFILLED for t in dep.terms
        )
        if state == UNFULFILLED or (state == FULFILLED and corr_open):
            # (a remainder's aftercorr terms are decided task by task: keep watching)
            if before != [(t.status, t.ready_at, t.seen_failure) for t in dep.terms]:
                self.c._dirty(job)  # a term resolved: shown and stored
            return
        self.index.remove(job.job_id, dep, job.uid, job.name)
        if state == FAILED:
            logger.info("job %s: dependency %s can never be satisfied", job.label,
                        dep.show(self.arrays.__contains__))
            if job.kill_on_invalid_dep:
                self.c._move(job, S.CANCELLED, now, "dependency never satisfied")
                job.end_time = now
            job.reason = "DependencyNeverSatisfied"
        elif job.reason in ("Dependency", "DependencyNeverSatisfied"):
            job.reason = "None"
        self.c._dirty(job)

    def resolve_dirty(self, now: float) -> None:
        """Re-evaluate every job whose dependency may have changed."""
        self.index.due(now)
        while self.index.dirty:
            batch, self.index.dirty = self.index.dirty, set()
            for job_id in batch:
                job = self.c.jobs.get(job_id)
                if job is not None and job.state == S.PENDING and job.dependency is not None:
                    self._evaluate(job, now)

    # ------------------------------------------------------------ a scheduling pass
    def offered_jobs(self) -> dict[int, Job]:
        """This pass's array task candidates (not in ``Cluster.jobs`` until they start)."""
        return {i: cand for i, (_, _, cand) in self._offered.items()}

    def select(self, pending: Iterable[Job], now: float) -> list[Job]:
        """The candidates of this pass, in order; reasons set on the jobs left out."""
        self.resolve_dirty(now)
        c = self.c
        self._offered.clear()
        self._order: dict[int, int] = {}
        self._offers.clear()
        self._started = {}
        next_id = c.next_job_id
        room: dict[int, int] = {}
        fits: dict[Any, int] = {}
        self._free = None
        out: list[Job] = []
        pending_state = S.PENDING
        for job in pending:
            if job.dependency is None and not job.array_job_id:  # most jobs: no question
                if job.state == pending_state:
                    out.append(job)
                continue
            if job.state != pending_state:
                continue  # cancelled just now (--kill-on-invalid-dep)
            if job.dependency is not None:
                state = self._state(job)
                if state != FULFILLED:
                    why = "Dependency" if state == UNFULFILLED else "DependencyNeverSatisfied"
                    self._reason(job, why)
                    continue
            a = job.array_job_id
            if not a:
                out.append(job)
                continue
            limit = job.array_max_running
            if limit:
                info = self.arrays.get(a)
                left = room.setdefault(a, limit - (info.running if info else 0))
                if left <= 0:
                    self._reason(job, "JobArrayTaskLimit")
                    continue
            else:
                left = ARRAY_OFFER
            tasks = job.array_tasks
            if tasks is None:
                if limit:
                    room[a] = left - 1
                out.append(job)
                continue
            fit = fits.get(job.request)
            if fit is None:
                fit = fits[job.request] = self._room_now(job.request)
            # as many tasks as could start now, plus one to wait for the next slot
            offer = min(len(tasks), left, ARRAY_OFFER, fit + 1)
            corr = job.dependency is not None and any(
                t.kind == "aftercorr" for t in job.dependency.terms
            )
            chosen: list[int] = []
            never: list[int] = []
            for t in tasks:
                if len(chosen) >= offer:
                    break
                if corr:
                    state = self._corr_state(job, t)
                    if state == FAILED:
                        never.append(t)
                    if state != FULFILLED:
                        continue
                chosen.append(t)
            for t in never:
                # its upstream task failed: split it off; as a job of its own it shows
                # DependencyNeverSatisfied (or is cancelled) from the next pass on.
                # (ids above the candidates offered so far: no two jobs share one)
                c.next_job_id = max(c.next_job_id, next_id)
                self.split(job, t)
                next_id = c.next_job_id
            if not chosen or job.array_tasks is None:
                self._reason(job, "Dependency")
                continue
            tasks = job.array_tasks
            chosen = [t for t in chosen if t in tasks]
            if limit:
                room[a] = left - len(chosen)
            last = len(chosen) == len(tasks)
            for n, t in enumerate(chosen):
                if last and n == len(chosen) - 1:
                    cand = job  # the remainder record itself takes the last task
                else:
                    cand = dataclasses.replace(
                        job, job_id=next_id, array_task_id=t, array_tasks=None,
                        dependency=None, story=[], attempts=[], alloc={}, pending_nodes=[],
                        reason="None",
                    )
                    next_id += 1
                self._offered[cand.job_id] = (a, t, cand)
                self._order[cand.job_id] = len(self._order)
                out.append(cand)
            self._offers[a] = len(chosen)
        return out

    def _room_now(self, req: Any) -> int:
        """An upper bound of how many copies of ``req`` fit on the free resources now.

        Counts free CPUs and GPUs node by node (memory, partitions and node lists
        are left to the scheduler); stops counting at :data:`ARRAY_OFFER`. The free
        resources are read once per pass (:attr:`_free`).
        """
        if self._free is None:
            self._free = []
            for node in self.c.nodes.values():
                if node.schedulable:
                    used = node.gpus_used
                    self._free.append((
                        node.cpus - node.cpus_alloc if node.cpus else -1, not node.jobs,
                        [g.type for g in node.gpus if g.healthy and g.index not in used],
                    ))
        count = 0
        per_node = max(req.nodes, 1)
        for cpus, idle, gpu_types in self._free:
            if req.exclusive or req.mem_whole_node:
                n = 1 if idle else 0
            else:
                n = ARRAY_OFFER
                if cpus >= 0:
                    n = min(n, cpus // max(req.cpus_per_node, 1))
                if req.gpus_per_node:
                    free = (sum(1 for t in gpu_types if t == req.gpu_type) if req.gpu_type
                            else len(gpu_types))
                    n = min(n, free // req.gpus_per_node)
            count += max(n, 0)
            if count >= ARRAY_OFFER * per_node:
                break
        return count // per_node

    def _reason(self, job: Job, why: str) -> None:
        if job.reason != why:
            job.reason = why
            self.c._dirty(job)

    def materialize(self, decisions: Iterable[Decision], now: float) -> None:
        """Turn offered tasks that were given nodes into jobs of their own."""
        c = self.c
        started = self._started = {}
        for d in decisions:
            offered = self._offered.get(d.job_id)
            if offered is None:
                continue
            a, task, cand = offered
            meta = c.jobs[a]
            info = self.arrays[a]
            assert meta.array_tasks is not None
            meta.array_tasks.remove(task)
            started[a] = started.get(a, 0) + 1
            if cand is meta:
                meta.array_task_id = task
                meta.array_tasks = None
            else:
                cand.story.append((now, "", "PENDING", f"task {task} of array {a}"))
                c.jobs[cand.job_id] = cand
                c.pending_ids.add(cand.job_id)
                c.next_job_id = max(c.next_job_id, cand.job_id + 1)
                self.names.setdefault((cand.uid, cand.name), set()).add(cand.job_id)
                c._dirty(cand)
            info.members[task] = cand.job_id
            info.waiting += 1
            c._dirty(meta)
        for a, n in started.items():
            meta = c.jobs[a]
            if meta.array_tasks is not None and len(meta.array_tasks) == 1:
                # one task left: the remainder record becomes that task
                meta.array_task_id = meta.array_tasks.first()
                meta.array_tasks = None
                self.arrays[a].members[meta.array_task_id] = a
                self.arrays[a].waiting += 1
                if meta.dependency is not None:
                    self.index.dirty.add(a)  # aftercorr: now for this one task
            if n == self._offers.get(a) and meta.array_tasks:
                c.need_schedule = True  # all offered tasks started: offer more at once

    def own_reasons(self, reasons: Mapping[int, str]) -> dict[int, str]:
        """The pass's reasons, with offered-but-not-started tasks folded into their array.

        The remainder record takes the reason of its first offered task that did not
        start, or ``JobArrayTaskLimit`` when its throttle is reached.
        """
        if not self._offered and not self._offers:
            return dict(reasons)  # no array task was offered: nothing to fold
        out: dict[int, str] = {}
        first: dict[int, int] = {}
        for job_id, why in reasons.items():
            offered = self._offered.get(job_id)
            if offered is not None and (job_id not in self.c.jobs or job_id == offered[0]):
                a, order = offered[0], self._order[job_id]
                if order < first.get(a, 1 << 62):
                    first[a] = order
                    out[a] = why
            else:
                out[job_id] = why
        for a in self._offers:
            meta = self.c.jobs.get(a)
            info = self.arrays.get(a)
            if meta is None or info is None or not meta.array_tasks:
                continue
            limit = meta.array_max_running
            if limit and info.running + self._started.get(a, 0) >= limit:
                out[a] = "JobArrayTaskLimit"
        return out

    # ------------------------------------------------------------ ids users type
    def resolve(self, ref: str, split: bool = False) -> list[int]:
        """Job ids named by ``J``, ``A`` (every task), ``A_a`` or ``A_[1-5,7]``.

        With ``split``, pending tasks named one by one are split off the remainder
        record first (so that they can be cancelled on their own, as SLURM does).
        Unknown ids give ``[]``.
        """
        base, sep, rest = ref.partition("_")
        if not base.isdigit():
            raise InvalidRequest("Invalid job id specified")
        a = int(base)
        info = self.arrays.get(a)
        if not sep:
            if info is None:
                return [a] if a in self.c.jobs else []
            ids = [i for i in info.members.values() if i in self.c.jobs]
            if a in self.c.jobs and a not in ids:
                ids.append(a)
            return sorted(ids)
        if rest.startswith("[") and rest.endswith("]"):
            rest = rest[1:-1]
        try:
            wanted = list(parse_array(rest, 1 << 31)[0]) if rest != "*" else None
        except ArraySpecError as exc:
            raise InvalidRequest("Invalid job id specified") from exc
        if info is None:
            job = self.c.jobs.get(a)
            if job is not None and not job.array_job_id and wanted is None:
                return [a]
            return []
        if wanted is None:
            return self.resolve(base, split)
        ids: list[int] = []
        meta = self.c.jobs.get(a)
        for t in wanted:
            job_id = info.members.get(t)
            if job_id is not None and job_id in self.c.jobs:
                ids.append(job_id)
            elif meta is not None and meta.array_tasks is not None and t in meta.array_tasks:
                ids.append(self.split(meta, t) if split else a)
        return sorted(set(ids))

    def split(self, meta: Job, task: int) -> int:
        """Split pending task ``task`` off the remainder record; its new job id."""
        c = self.c
        assert meta.array_tasks is not None
        info = self.arrays[meta.job_id]
        if len(meta.array_tasks) == 1:
            meta.array_tasks = None
            meta.array_task_id = task
            info.members[task] = meta.job_id
            info.waiting += 1
            if meta.dependency is not None:
                self.index.dirty.add(meta.job_id)  # aftercorr: now for this one task
            c._dirty(meta)
            return meta.job_id
        meta.array_tasks.remove(task)
        job = dataclasses.replace(
            meta, job_id=c.next_job_id, array_task_id=task, array_tasks=None,
            story=[], attempts=[], alloc={}, pending_nodes=[],
            dependency=None if meta.dependency is None else _copy_dep(meta.dependency),
        )
        c.next_job_id += 1
        c.jobs[job.job_id] = job
        c.pending_ids.add(job.job_id)
        info.members[task] = job.job_id
        info.waiting += 1
        self.names.setdefault((job.uid, job.name), set()).add(job.job_id)
        if job.dependency is not None and job.state == S.PENDING:
            self.index.add(job.job_id, job.dependency, job.uid, job.name)
        c._dirty(job)
        c._dirty(meta)
        return job.job_id

    def display(self, job: Job) -> dict[str, Any]:
        """Fields for JobInfo: dependency text, array ids."""
        out: dict[str, Any] = {}
        if job.dependency is not None:
            out["dependency"] = job.dependency.show(self.arrays.__contains__)
        return out


def _copy_dep(dep: Any) -> Any:
    from gsched.controller.deps import Dependency

    return Dependency.from_dict(dep.to_dict())

