"""The Cluster's scheduling-policy methods (pure: no I/O, time is a parameter).

A mixin of :class:`gsched.controller.cluster.Cluster`, kept apart so the policy
(priority, fair share, accounts/QOS limits, partition access, preemption) reads as
one piece: submit-time checks, priority computation, usage charging on the tick,
preemption after each pass, and the admin commands that change the policy.
"""

from __future__ import annotations

import copy
import logging
import signal as _signal
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gsched.controller.errors import InvalidRequest, PermissionDenied
from gsched.controller.jobs import Job, JobState
from gsched.controller.policy import INVALID_ACCOUNT, POLICY_VIOLATION
from gsched.controller.preempt import Candidate, choose_victims
from gsched.controller.prioritize import job_tres
from gsched.controller.priority import Factors
from gsched.controller.scheduler import place

if TYPE_CHECKING:
    from gsched.controller.cluster import Caller, Order
    from gsched.controller.nodes import Node
    from gsched.controller.scheduler import Partition

__all__ = ["PolicyMixin"]

logger = logging.getLogger(__name__)
S = JobState
DENIED = "Access/permission denied"
PARTITION_NOT_AVAILABLE = "Required partition not available (inactive or drain)"
GROUP_DENIED = "User's group not permitted to use this partition"


class PolicyMixin:
    """Methods of Cluster that implement the scheduling policy (docs/policy.md)."""

    PREEMPT_TRIES = 20  # victim searches per pass (each simulates placements)

    if TYPE_CHECKING:  # provided by Cluster
        from gsched.controller.prioritize import Prioritizer

        prio: Prioritizer
        jobs: dict[int, Job]
        nodes: dict[str, Any]
        partitions: dict[str, Partition]
        default_partition: str
        pending_ids: set[int]
        preempting: dict[int, set[int]]
        need_schedule: bool

        def _dirty(self, job: Job) -> None: ...
        def _stop(self, job: Job, final: JobState, why: str, now: float) -> list[Order]: ...

    # ------------------------------------------------------------ submit
    def _check_policy(self, job: Job, parts: list[Partition], new: bool = True) -> None:
        """Account, QOS, partition access and limits a job can never meet.

        ``new``: a submission (counted against ``MaxSubmitJobsPerUser``), else an
        update of a queued job.

        Raises:
            InvalidRequest: with sbatch's text; the job is left as it was.
        """
        policy = self.prio.policy
        before = job.account, job.qos
        try:
            job.account, job.qos = policy.resolve(job.user, job.account, job.qos)
            self._check_resolved(job, parts, new)
        except InvalidRequest:
            job.account, job.qos = before
            raise

    def _check_resolved(self, job: Job, parts: list[Partition], new: bool) -> None:
        policy = self.prio.policy
        if new and not any(p.state in ("UP", "DOWN") for p in parts):  # DRAIN, INACTIVE
            raise InvalidRequest(PARTITION_NOT_AVAILABLE)
        if not any(not p.allow_accounts or job.account in p.allow_accounts for p in parts):
            raise InvalidRequest(INVALID_ACCOUNT)
        if any(p.allow_groups for p in parts):
            # SLURM's AllowGroups: any of the user's groups, not only the job's primary one
            groups = {job.group, *(self.groups_of(job.user, job.gid) if self.groups_of else ())}
            if not any(not p.allow_groups or groups & set(p.allow_groups) for p in parts):
                raise InvalidRequest(GROUP_DENIED)
        cpus, _, gpus = job_tres(job)
        if policy.never_runs(job.qos, job.account, gpus, cpus, job.request.time_limit):
            raise InvalidRequest(POLICY_VIOLATION)
        q = policy.qos[job.qos]
        if new and q.max_submit_jobs_per_user >= 0:
            mine = sum(1 for j in self.jobs.values()
                       if j.user == job.user and j.qos == job.qos and not j.is_final)
            if mine + 1 > q.max_submit_jobs_per_user:
                raise InvalidRequest(POLICY_VIOLATION)

    # ------------------------------------------------------------ priority
    def _priority(self, job: Job, now: float) -> int:
        if job.hold:
            return 0
        return self.prio.score(job, self.nodes, self.partitions, self.default_partition, now).total

    def _set_admin_priority(self, job: Job, caller: Caller, value: str, now: float) -> None:
        if not caller.admin:
            raise PermissionDenied(DENIED)
        try:
            n = int(value)
        except ValueError as exc:
            raise InvalidRequest("Invalid priority value") from exc
        if n < 0:
            raise InvalidRequest("Invalid priority value")
        if n == 0:  # scontrol: Priority=0 holds the job (an operator's hold)
            job.hold = True
            job.priority = 0
            job.reason = "JobHeldAdmin"
            return
        job.admin_priority = n
        job.priority = self._priority(job, now)

    def _recompute(self, now: float) -> None:
        # held jobs keep priority 0 (and get it back on release): not recomputed
        jobs = self.jobs
        pending = [jobs[i] for i in self.pending_ids if not jobs[i].hold]
        for job in self.prio.recompute(pending, self.nodes, self.partitions,
                                       self.default_partition, now):
            self._dirty(job)

    def factors_of(self, job: Job, now: float) -> Factors:
        """A pending job's current factors (for gprio / gctl show job)."""
        f = self.prio.factors.get(job.job_id)
        if f is None:
            f = self.prio.score(job, self.nodes, self.partitions, self.default_partition, now)
        return f

    # ------------------------------------------------------------ tick
    def _policy_tick(self, now: float) -> list[Order]:
        """Charge running jobs, recompute priorities, end preemption grace times."""
        orders: list[Order] = []
        holding = self.holding_jobs()  # far fewer than the queue
        for job in holding:
            if job.state == S.RUNNING and job.preempt_deadline and job.preempt_deadline <= now:
                orders.extend(self._preempt_stop(job, now))
        if self.prio.due(now):
            self.prio.charge_running(
                (j for j in holding if j.state in (S.RUNNING, S.COMPLETING)), now)
            before = {i: self.jobs[i].priority for i in self.pending_ids}
            self._recompute(now)
            if any(self.jobs[i].priority != p for i, p in before.items()):
                self.need_schedule = True
        return orders

    # ------------------------------------------------------------ preemption
    def _preempt_for(self, pending: list[Job], reasons: Mapping[int, str],
                     now: float) -> list[Order]:
        """After a pass: let the waiting jobs of a preempting QOS preempt, in order.

        Several preemptions may be in flight at once (a burst of urgent jobs does not
        wait for one grace time after another). Each victim search runs on the
        cluster as the preemptions already decided will leave it: their victims gone
        and their preemptors placed, so no two preemptors count on the same freed
        resources and no job is picked twice. Until its victims have left their
        nodes a preemptor keeps its claim, and the passes put the preemptors first
        (:meth:`_preemptors_first`), so the freed resources go to them. At most
        :attr:`PREEMPT_TRIES` placements are simulated per pass.
        """
        for pre, victims in list(self.preempting.items()):
            still = {v for v in victims if v in self.jobs and self.jobs[v].alloc
                     and self.jobs[v].state in (S.RUNNING, S.COMPLETING, S.REQUEUED)}
            job = self.jobs.get(pre)
            if not still or job is None or job.state != S.PENDING:
                del self.preempting[pre]
            else:
                self.preempting[pre] = still
        policy = self.prio.policy
        if not any(q.preempt for q in policy.qos.values()):
            return []
        waiting = []
        for job in pending:
            if job.job_id in self.preempting or reasons.get(job.job_id) not in (
                "Resources", "Priority"
            ):
                continue
            q = policy.qos.get(job.qos)
            if q is not None and q.preempt:
                waiting.append((job, q))
        if not waiting:
            return []
        running = [j for j in self.jobs.values()
                   if j.state == S.RUNNING and not j.preempt_deadline]
        sim = _Claims(self.nodes)
        claimed: set[int] = set()
        for pre, victims in self.preempting.items():
            claimed |= victims
            sim.claim(self.jobs[pre], victims, self.jobs, self._partitions_of(self.jobs[pre]))
        orders: list[Order] = []
        tried: set[tuple[object, ...]] = set()
        tries = 0
        for job, q in waiting:
            cands = []
            for other in running:
                oq = policy.qos.get(other.qos)
                if (other.qos in q.preempt and oq is not None and oq.preempt_mode != "OFF"
                        and other.job_id not in claimed):
                    cands.append(Candidate(other.job_id, other.priority, other.start_time,
                                           tuple(other.alloc)))
            if not cands:
                continue
            for part in self._partitions_of(job):
                key = (part.name, job.qos, job.request)
                if key in tried:
                    continue
                if tries >= self.PREEMPT_TRIES:
                    return orders
                tries += 1
                tried.add(key)
                victims = choose_victims(job.request, part, sim.nodes, cands)
                if victims == []:
                    # it fits once the decided preemptions are done: keep later
                    # preemptors from counting on the same room
                    sim.claim(job, (), self.jobs, [part])
                    break
                if victims:
                    logger.info("job %d (QOS %s) preempts jobs %s", job.job_id, job.qos,
                                victims)
                    self.preempting[job.job_id] = set(victims)
                    claimed.update(victims)
                    sim.claim(job, victims, self.jobs, [part])
                    for v in victims:
                        orders.extend(self._preempt(self.jobs[v], now))
                    tried.clear()  # the cluster they search has changed
                    break
        return orders

    def _partitions_of(self, job: Job) -> list[Partition]:
        """The schedulable partitions ``job`` may run in, in its order."""
        out = []
        for pname in job.request.partitions or (self.default_partition,):
            part = self.partitions.get(pname)
            if part is not None and part.schedulable:
                out.append(part)
        return out

    def _preemptors_first(self, pending: list[Job]) -> list[Job]:
        """``pending`` with the jobs that preempted others moved to the front."""
        if not self.preempting:
            return pending
        first = [j for j in pending if j.job_id in self.preempting]
        return first + [j for j in pending if j.job_id not in self.preempting]

    def _preempt(self, job: Job, now: float) -> list[Order]:
        """Signal a victim now; kill it after its QOS GraceTime."""
        from gsched.controller.cluster import SignalOrder

        q = self.prio.policy.qos.get(job.qos)
        grace = q.grace_time if q is not None else 0
        job.preempt_deadline = now + grace if grace > 0 else now
        self._dirty(job)
        if grace <= 0:
            return self._preempt_stop(job, now)
        if job.request.warn_before:
            # its own --signal, delivered as before a time limit (B: to the batch shell,
            # else to its steps): the batch host's wrapper knows how
            return [SignalOrder(job.batch_host, job.job_id, job.attempt, 0, False,
                                job_warning=True)]
        sig = int(_signal.SIGTERM)
        return [SignalOrder(n, job.job_id, job.attempt, sig, False) for n in job.pending_nodes]

    def _preempt_stop(self, job: Job, now: float) -> list[Order]:
        """End a preempted job's attempt: requeue it (not counted) or end it PREEMPTED."""
        q = self.prio.policy.qos.get(job.qos)
        mode = q.preempt_mode if q is not None else "REQUEUE"
        job.preempt_deadline = 0.0
        job.last_failure = "preempted"
        if mode == "REQUEUE" and job.request.requeue:
            job.preempt_count += 1
            orders = self._stop(job, S.PENDING, "preempted", now)
        else:
            orders = self._stop(job, S.PREEMPTED, "preempted", now)
            job.reason = "None"
        self._dirty(job)
        return orders

    # ------------------------------------------------------------ admin
    def change_policy(self, verb: str, entity: str, name: str, fields: Mapping[str, str],
                      caller: Caller) -> None:
        """``gctl create|modify|delete qos|account|user NAME K=V ...`` (operators only)."""
        if not caller.admin:
            raise PermissionDenied(DENIED)
        policy = self.prio.policy
        backup = policy.to_dict()
        try:
            policy.change(verb, entity, name, fields)
        except InvalidRequest:
            self.prio.restore_policy(backup)
            raise
        self.prio.policy_changed()
        self.need_schedule = True

    def reset_usage(self, caller: Caller) -> None:
        """``gctl reset usage``: forget all fair-share usage (operators only)."""
        if not caller.admin:
            raise PermissionDenied(DENIED)
        self.prio.ledger.reset()
        self.prio.dirty = True
        self.prio.last_calc = -1e18
        self.need_schedule = True

    def restore_policy(self, raw: Mapping[str, Any]) -> None:
        self.prio.restore_policy(raw)

    def restore_usage(self, raw: Mapping[str, Any]) -> None:
        self.prio.restore_usage(raw)

    def running_jobs(self) -> Iterable[Job]:
        return (j for j in self.jobs.values() if j.state == S.RUNNING)


class _Claims:
    """The nodes as decided preemptions will leave them (copied on write).

    :meth:`claim` takes a preemptor's victims off their nodes and places the
    preemptor where :func:`~gsched.controller.scheduler.place` would put it then.
    """

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self.nodes: dict[str, Node] = dict(nodes)
        self._copied: set[str] = set()

    def _own(self, name: str) -> Node | None:
        node = self.nodes.get(name)
        if node is not None and name not in self._copied:
            node = copy.copy(node)
            node.jobs = dict(node.jobs)
            self.nodes[name] = node
            self._copied.add(name)
        return node

    def claim(self, job: Job, victims: Iterable[int], jobs: Mapping[int, Job],
              parts: Iterable[Partition]) -> None:
        for v in victims:
            victim = jobs.get(v)
            for name in victim.alloc if victim is not None else ():
                node = self._own(name)
                if node is not None:
                    node.jobs.pop(v, None)
        for part in parts:
            placed = place(job.request, part, self.nodes)
            if placed is not None:
                for p in placed:
                    node = self._own(p.node)
                    if node is not None:
                        node.jobs[job.job_id] = (p.cpus, p.mem_mb, p.gpus)
                return
