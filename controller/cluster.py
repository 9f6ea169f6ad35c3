"""The controller's state: jobs, nodes, partitions (pure: no I/O, time is a parameter).

The shell (service, link, main) turns each RPC or agent message into one method call
here, persists what the call marked dirty, and only after the commit sends the
returned orders to agents and replies to the caller. Nothing here blocks, awaits or
touches a socket or the database.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from gsched.controller import health
from gsched.controller.backfill import (
    BackfillConfig,
    Models,
    Reservation,
    expected_ends,
    schedule_backfill,
)
from gsched.controller.cluster_policy import PolicyMixin
from gsched.controller.eligibility import Eligibility
from gsched.controller.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from gsched.controller.jobs import ACTIVE_STATES, FINAL_STATES, Job, JobState, Request, transition
from gsched.controller.nodes import Gpu, Node
from gsched.controller.policy import Policy
from gsched.controller.prioritize import Prioritizer
from gsched.controller.priority import PriorityConfig
from gsched.controller.scheduler import Partition, feasible

__all__ = [
    "AckExit",
    "Caller",
    "Cluster",
    "KillOrder",
    "LaunchOrder",
    "Order",
    "SignalOrder",
]

logger = logging.getLogger(__name__)
S = JobState

NOT_AVAILABLE = "Requested node configuration is not available"
INVALID_JOB = "Invalid job id specified"
DENIED = "Access/permission denied"
ALREADY_DONE = "Job/step already completing or completed"
NOT_PENDING = "Job is no longer pending execution"


@dataclasses.dataclass(frozen=True)
class Caller:
    uid: int
    user: str
    admin: bool = False  # operator or admin: may act on every job and node
    gid: int = -1  # verified primary gid (-1: unknown)
    role: str = "user"  # user | operator | admin (controller/auth.py)


# ------------------------------------------------------------------ orders to agents
@dataclasses.dataclass(frozen=True)
class LaunchOrder:
    node: str
    job_id: int
    attempt: int
    node_index: int


@dataclasses.dataclass(frozen=True)
class KillOrder:
    node: str
    job_id: int
    attempt: int
    reason: str


@dataclasses.dataclass(frozen=True)
class SignalOrder:
    node: str
    job_id: int
    attempt: int
    signal: int
    batch_only: bool
    job_warning: bool = False  # deliver the job's own --signal (signal/batch_only unused)


@dataclasses.dataclass(frozen=True)
class AckExit:
    node: str
    job_id: int
    attempt: int


Order = LaunchOrder | KillOrder | SignalOrder | AckExit


@dataclasses.dataclass(frozen=True)
class NodeReport:
    """What an agent says about its host at hello time."""

    cpus: int
    mem_mb: int
    gpus: tuple[Gpu, ...]
    info: dict[str, Any]


class Cluster(PolicyMixin):
    """All controller state. Methods validate, apply, mark dirty, and return orders."""

    def __init__(
        self,
        partitions: Iterable[Partition],
        default_partition: str,
        *,
        accept_unknown_nodes: bool = True,
        node_timeout: float = 10.0,
        suspect_after: float = 4.0,
        requeue_delay: float = 0.0,
        max_requeue: int = 5,
        requeue_exit: tuple[int, ...] = (),
        max_requeue_exit: int = 3,
        return_to_service: int = 1,
        gpu_drain_share: float = 0.5,
        failure_drain_count: int = 3,
        failure_window: float = 3600.0,
        max_stop_warning: float = 300.0,
        backfill: BackfillConfig | None = None,
        finished_keep: float = 300.0,
        path_resolver: Callable[[Job], tuple[str, str]] | None = None,
        max_array_size: int = 1001,
        kill_invalid_depend: bool = False,
        priority: PriorityConfig | None = None,
        policy: Policy | None = None,
        calc_period: float = 5.0,
    ) -> None:
        self.partitions: dict[str, Partition] = {p.name: p for p in partitions}
        self.default_partition = default_partition
        if default_partition not in self.partitions:
            self.partitions[default_partition] = Partition(
                default_partition, all_nodes=True, default=True
            )
        self.accept_unknown_nodes = accept_unknown_nodes
        self.node_timeout = node_timeout
        self.suspect_after = min(suspect_after, node_timeout)
        self.requeue_delay = requeue_delay
        self.max_requeue = max_requeue
        self.requeue_exit = requeue_exit
        self.max_requeue_exit = max_requeue_exit
        self.return_to_service = return_to_service
        self.gpu_drain_share = gpu_drain_share
        self.failure_drain_count = failure_drain_count
        self.failure_window = failure_window
        self.max_stop_warning = max_stop_warning
        self.stopping: set[int] = set()  # jobs warned with their --signal, stop pending
        self._next_forget = 0.0  # when tick next drops long-finished jobs from memory
        self.backfill = backfill or BackfillConfig()
        # pending job -> where and when the backfill pass plans to start it
        self.reservations: dict[int, Reservation] = {}
        self.finished_keep = finished_keep
        self.path_resolver = path_resolver
        # user, gid -> every group the user is in (AllowGroups); set by the shell, which
        # may ask the system's user database (the pure core does no I/O)
        self.groups_of: Callable[[str, int], tuple[str, ...]] | None = None
        self.jobs: dict[int, Job] = {}
        self.nodes: dict[str, Node] = {}
        self.next_job_id = 1
        self.pending_ids: set[int] = set()
        # the order of the last pending_order(): sorting starts from it, so a queue
        # that barely changed between passes sorts in about linear time
        self.order_hint: list[int] = []
        # job id -> (request, planning key): backfill.plan's memo across passes
        self.plan_keys: dict[int, tuple[Request, tuple[object, ...]]] = {}
        # the planner's node models, kept from one pass to the next (backfill.Models)
        self.plan_models = Models()
        self.dirty_jobs: set[int] = set()
        self.dirty_nodes: set[str] = set()
        self.need_schedule = False
        # dependencies and job arrays (see eligibility.py)
        self.elig = Eligibility(self, max_array_size, kill_invalid_depend)
        # priority, fair share, accounts, QOS (docs/policy.md)
        self.prio = Prioritizer(priority, policy, calc_period)
        self.preempting: dict[int, set[int]] = {}  # preemptor -> victims still running
        for part in self.partitions.values():
            for name in part.nodes:
                self.nodes.setdefault(name, Node(name))

    # ------------------------------------------------------------ helpers
    def _dirty(self, job: Job) -> None:
        job.rev += 1
        self.dirty_jobs.add(job.job_id)

    def get(self, job_id: int) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(INVALID_JOB)
        return job

    def _own(self, job_id: int, caller: Caller) -> Job:
        job = self.get(job_id)
        if not caller.admin and job.uid != caller.uid:
            logger.warning("denied: uid %d acting on job %d of uid %d", caller.uid, job_id, job.uid)
            raise PermissionDenied(DENIED)
        return job

    def _move(self, job: Job, new: JobState, now: float, why: str = "") -> None:
        """Every state change of a job goes through here (and the table in jobs.py)."""
        old = job.state
        transition(job, new, now, why)
        if new == S.PENDING:
            self.pending_ids.add(job.job_id)
        else:
            self.pending_ids.discard(job.job_id)
        self.elig.moved(job, old, new, now)

    def reindex(self) -> None:
        """Rebuild derived indexes after loading jobs from the store."""
        self.pending_ids = {j.job_id for j in self.jobs.values() if j.state == S.PENDING}
        self.stopping = {j.job_id for j in self.jobs.values() if j.stop}
        self.elig.reindex()
        self.need_schedule = True

    def holding_jobs(self) -> list[Job]:
        """The jobs holding resources on some node: running, or still ending somewhere."""
        ids = {i for n in self.nodes.values() for i in n.jobs}
        return [self.jobs[i] for i in ids if i in self.jobs]

    def pending_order(self) -> list[Job]:
        """Pending jobs that are not held, in scheduling order."""
        jobs = self.jobs
        ids = self.pending_ids
        # Keys are unique (job_id is in them), so the sorted result does not depend on
        # the order the jobs come in: last pass's order first, then the newcomers.
        known = [i for i in self.order_hint if i in ids]
        if len(known) < len(ids):
            known.extend(ids.difference(known))
        pending = [j for i in known if not (j := jobs[i]).hold]
        pending.sort(key=_order)
        self.order_hint = [j.job_id for j in pending]
        return pending

    def partitions_of(self, node: str) -> list[str]:
        return [
            p.name for p in self.partitions.values() if p.all_nodes or node in p.nodes
        ]

    # ------------------------------------------------------------ submit
    def submit(self, job: Job, now: float) -> Job:
        """Validate and enqueue ``job`` (its ``job_id`` is assigned here)."""
        req = job.request
        names = req.partitions or (self.default_partition,)
        for name in names:
            if name not in self.partitions:
                raise InvalidRequest("Invalid partition name specified")
        for name in (*req.nodelist, *req.exclude):
            if name not in self.nodes:
                raise InvalidRequest("Invalid node name specified")
        if req.nodelist and len(req.nodelist) > req.nodes:
            req = dataclasses.replace(req, nodes=len(req.nodelist))
            job.request = req
        parts = [self.partitions[n] for n in names]
        if not any(feasible(req, p, self.nodes) for p in parts):
            raise InvalidRequest(NOT_AVAILABLE)
        for p in parts:
            if p.max_time >= 0 and req.time_limit > p.max_time:
                raise InvalidRequest("Requested time limit is invalid (missing or exceeds some limit)")
        self.elig.check(job, self.next_job_id)
        self._check_policy(job, parts)
        job.job_id = self.next_job_id
        self.next_job_id += 1
        job.submit_time = now
        job.state = S.PENDING
        job.partition = ",".join(names)
        job.priority = self._priority(job, now)
        job.reason = "JobHeldUser" if job.hold else "None"
        job.story.append((now, "", "PENDING", "submitted"))
        self.jobs[job.job_id] = job
        self.pending_ids.add(job.job_id)
        self.elig.submitted(job)
        self._dirty(job)
        self.need_schedule = self.need_schedule or not job.hold
        logger.debug("job %d submitted by %s (%s)", job.job_id, job.user, job.name)
        return job

    # ------------------------------------------------------------ user actions
    def cancel(
        self, job_id: int, caller: Caller, now: float, signal: int = 0, batch_only: bool = False
    ) -> list[Order]:
        job = self._own(job_id, caller)
        if job.is_final or job.state == S.COMPLETING:
            raise Conflict(ALREADY_DONE)
        if signal:
            if job.state != S.RUNNING:
                raise Conflict("Job is pending execution" if job.state == S.PENDING else ALREADY_DONE)
            return [
                SignalOrder(n, job.job_id, job.attempt, signal, batch_only)
                for n in (job.nodes[:1] if batch_only else job.nodes)
            ]
        if job.state in (S.PENDING, S.REQUEUED):
            if job.state == S.REQUEUED and job.pending_nodes:
                job.final_state = S.CANCELLED
                self._dirty(job)
                return []
            self._move(job, S.CANCELLED, now, f"cancelled by {caller.user}")
            job.end_time = now
            job.reason = "None"
            self._dirty(job)
            self.need_schedule = True
            return []
        return self._stop(job, S.CANCELLED, "cancelled", now)

    def hold(self, job_id: int, caller: Caller, now: float, user_hold: bool = False) -> None:
        job = self._own(job_id, caller)
        if job.state != S.PENDING:
            raise Conflict(NOT_PENDING)
        job.hold = True
        job.priority = 0
        # scontrol hold by an operator is an admin hold (uhold: a user hold)
        job.reason = "JobHeldAdmin" if caller.admin and not user_hold else "JobHeldUser"
        self._dirty(job)

    def release(self, job_id: int, caller: Caller, now: float) -> None:
        job = self._own(job_id, caller)
        if job.state != S.PENDING:
            raise Conflict(NOT_PENDING)
        if job.reason == "JobHeldAdmin" and not caller.admin:
            raise PermissionDenied(DENIED)
        job.hold = False
        job.priority = self._priority(job, now)
        job.reason = "None"
        self._dirty(job)
        self.need_schedule = True

    def requeue(self, job_id: int, caller: Caller, now: float, hold: bool = False) -> list[Order]:
        job = self._own(job_id, caller)
        if job.state not in (S.RUNNING,):
            if job.is_final or job.state == S.COMPLETING:
                raise Conflict(ALREADY_DONE)
            raise Conflict("Job is pending execution")
        orders = self._stop(job, S.PENDING, "requeue", now)
        job.last_failure = "requeued"
        if hold:
            job.hold = True
        return orders

    def update_job(self, job_id: int, caller: Caller, fields: dict[str, Any], now: float) -> None:
        job = self._own(job_id, caller)
        if job.state != S.PENDING:
            raise Conflict(NOT_PENDING)
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            k = key.lower()
            if k == "timelimit":
                changes["time_limit"] = int(value)
            elif k == "partition":
                names = tuple(p for p in str(value).split(",") if p)
                if not names or any(n not in self.partitions for n in names):
                    raise InvalidRequest("Invalid partition name specified")
                changes["partitions"] = names
            elif k in ("name", "jobname"):
                old_name, job.name = job.name, str(value)
                self.elig.renamed(job, old_name)
            elif k == "dependency":
                self.elig.set_dependency(job, str(value))
            elif k in ("starttime", "begintime"):
                # unix seconds, resolved by the service from SLURM's time formats
                job.begin_time = float(value)
                job.eligible_time = job.begin_time
                job.reason = "None" if job.reason == "BeginTime" else job.reason
            elif k == "nice":
                nice = int(value)
                if nice < 0 and not caller.admin:
                    raise PermissionDenied(DENIED)
                job.nice = nice
                job.priority = self._priority(job, now)
            elif k == "priority":
                self._set_admin_priority(job, caller, str(value), now)
            elif k in ("account", "qos"):
                names = job.request.partitions or (self.default_partition,)
                before = job.account, job.qos
                if k == "account":
                    job.account = str(value)
                else:
                    job.qos = str(value)
                try:
                    self._check_policy(job, [self.partitions[n] for n in names], new=False)
                except InvalidRequest:
                    job.account, job.qos = before
                    raise
                job.priority = self._priority(job, now)
            elif k == "comment":
                job.comment = str(value)
            else:
                raise InvalidRequest(f"Update of {key} is not supported")
        if changes:
            req = dataclasses.replace(job.request, **changes)
            parts = [self.partitions[n] for n in (req.partitions or (self.default_partition,))]
            if not any(feasible(req, p, self.nodes) for p in parts):
                raise InvalidRequest(NOT_AVAILABLE)
            for p in parts:
                if p.max_time >= 0 and req.time_limit > p.max_time:
                    raise InvalidRequest("Requested time limit is invalid (missing or exceeds some limit)")
            job.request = req
            if "partitions" in changes:
                job.partition = ",".join(req.partitions)
                job.priority = self._priority(job, now)  # new tier and partition factor
        self._dirty(job)
        self.need_schedule = True

    # ------------------------------------------------------------ node admin
    def update_node(
        self, names: list[str], state: str, reason: str, caller: Caller, now: float
    ) -> list[Order]:
        if not caller.admin:
            raise PermissionDenied(DENIED)
        for name in names:
            if name not in self.nodes:
                raise NotFound("Invalid node name specified")
        state = state.upper()
        if state not in ("DRAIN", "RESUME", "UNDRAIN", "IDLE", "DOWN"):
            raise InvalidRequest("Invalid node state specified")
        if state in ("DRAIN", "DOWN") and not reason:
            raise InvalidRequest(
                "You must specify a reason when DOWNING or DRAINING a node. Request denied"
            )
        orders: list[Order] = []
        for name in names:
            node = self.nodes[name]
            if state == "DRAIN":
                node.drain, node.reason = True, reason
                node.reason_time, node.reason_user = now, caller.user
            elif state in ("RESUME", "UNDRAIN", "IDLE"):
                node.drain, node.reason, node.down_reason = False, "", ""
                node.reason_time, node.reason_user = 0.0, ""
                node.failures = []  # repaired: its failure score starts again
            elif state == "DOWN":
                node.drain, node.reason = True, reason
                node.reason_time, node.reason_user = now, caller.user
                orders.extend(self._node_failed(node, now, f"node {name} set DOWN: {reason}"))
                node.down_reason = reason
            self.dirty_nodes.add(name)
        self.need_schedule = True
        return orders

    # ------------------------------------------------------------ agents
    def node_hello(
        self,
        name: str,
        report: NodeReport,
        running: Iterable[tuple[int, int]],
        finished: Iterable[tuple[int, int]],
        now: float,
    ) -> list[Order]:
        """An agent (re)connected. Reconcile what it runs with what we believe."""
        node = self.nodes.get(name)
        if node is None:
            if not self.accept_unknown_nodes:
                raise PermissionDenied(f"node {name} is not in the configuration")
            node = self.nodes[name] = Node(name)
        node.cpus, node.mem_mb = report.cpus, report.mem_mb
        node.gpus = list(report.gpus)
        node.info = dict(report.info)
        node.up = node.connected = node.ever_registered = True
        node.suspect = False
        node.last_seen = node.registered_time = now
        if node.down_reason and (
            self.return_to_service == 2
            or (self.return_to_service == 1 and node.down_reason == "Not responding")
        ):
            # SLURM's ReturnToService: 1 = nodes DOWN for not responding come back when
            # they register; 2 = any DOWN node does (an operator's DOWN included)
            logger.info("node %s registered again: back in service (was DOWN: %s)",
                        name, node.down_reason)
            if node.drain and node.reason == node.down_reason:  # set with gctl ... DOWN
                node.drain, node.reason = False, ""
            node.down_reason = ""
        self.dirty_nodes.add(name)
        self.need_schedule = True
        orders: list[Order] = []
        running_set = set(running)
        finished_set = set(finished)
        for job_id, attempt in running_set:
            job = self.jobs.get(job_id)
            current = (
                job is not None
                and job.attempt == attempt
                and name in job.alloc
                and job.state in (S.RUNNING, S.COMPLETING, S.REQUEUED)
            )
            if not current:
                orders.append(KillOrder(name, job_id, attempt, "stale"))
            elif job is not None and job.state in (S.COMPLETING, S.REQUEUED):
                orders.append(KillOrder(name, job_id, attempt, "cancelled"))
        for job in self.jobs.values():
            if name not in job.alloc or name not in job.pending_nodes:
                continue
            ref = (job.job_id, job.attempt)
            if ref in running_set or ref in finished_set:
                continue
            if job.state == S.RUNNING:
                # Committed as started but the agent never got (or lost) the launch:
                # send it again; the agent starts each attempt at most once.
                orders.append(LaunchOrder(name, job.job_id, job.attempt, job.nodes.index(name)))
            else:
                orders.extend(self._part_ended(job, name, now))
        return orders

    def node_heartbeat(self, name: str, gpus: tuple[Gpu, ...] | None, now: float) -> list[Order]:
        """A sign of life, with fresh GPU health when ``gpus`` is given."""
        node = self.nodes.get(name)
        if node is None:
            return []
        node.last_seen = now
        if node.suspect:
            node.suspect = False
            self.need_schedule = True
        if gpus is None:
            return []
        was = {g.index: g.healthy for g in node.gpus}
        node.gpus = list(gpus)
        newly = [g for g in gpus if not g.healthy and was.get(g.index, True)]
        return self._gpu_faults(node, newly, now) if newly else []

    def _gpu_faults(self, node: Node, faulty: list[Gpu], now: float) -> list[Order]:
        """GPUs turned unhealthy: requeue the jobs on them; drain when needed."""
        from gsched.common.xids import action_for, allows_checkpoint, failure_tag

        orders: list[Order] = []
        evidence = ", ".join(f"gpu{g.index}: {g.reason or 'unhealthy'}" for g in faulty)
        logger.warning("node %s: GPU fault: %s", node.name, evidence)
        bad = {g.index for g in faulty}
        for job_id, (_, _, gpus) in list(node.jobs.items()):
            job = self.jobs.get(job_id)
            if job is None or job.state != S.RUNNING or not bad & set(gpus):
                continue
            hit = next(g for g in faulty if g.index in bad & set(gpus))
            stop = self.warned_requeue if allows_checkpoint(hit.reason) else self._infra_failure
            orders.extend(
                stop(job, node.name, failure_tag(hit.reason), now,
                     f"GPU {hit.index} on {node.name}: {hit.reason}")
            )
        actions = {action_for(g.reason) for g in faulty}
        unhealthy = sum(1 for g in node.gpus if not g.healthy)
        share = unhealthy / len(node.gpus) if node.gpus else 0.0
        if not node.drain and (
            actions & {"reset_gpu", "drain_node"} or share >= self.gpu_drain_share
        ):
            node.drain = True
            node.reason = f"gpu fault: {evidence}"
            node.reason_time, node.reason_user = now, "gsched"
            logger.warning("node %s drained: %s", node.name, node.reason)
        self.dirty_nodes.add(node.name)
        self.need_schedule = True
        return orders

    def node_disconnected(self, name: str, now: float) -> None:
        """The stream broke. Silence, not death: the timeout decides."""
        node = self.nodes.get(name)
        if node is not None:
            node.connected = False

    def tick(self, now: float) -> list[Order]:
        """Periodic checks: node timeouts, forgetting old finished jobs."""
        orders: list[Order] = []
        for node in self.nodes.values():
            silent = now - node.last_seen
            if node.up and not node.suspect and silent > self.suspect_after:
                logger.warning("node %s silent for %.1fs: SUSPECT", node.name, silent)
                node.suspect = True
            if node.up and silent > self.node_timeout:
                logger.warning("node %s not responding for %.1fs", node.name, now - node.last_seen)
                node.up = False
                node.connected = False
                node.suspect = False
                node.down_reason = "Not responding"
                node.reason_time = now
                self.dirty_nodes.add(node.name)
                orders.extend(self._node_failed(node, now, f"node {node.name} not responding"))
                self.need_schedule = True
        for job_id in list(self.stopping):
            job = self.jobs.get(job_id)
            if job is None or job.state != S.RUNNING or not job.stop:
                self.stopping.discard(job_id)
                if job is not None and job.stop:
                    job.stop = {}
                    self._dirty(job)
            elif job.stop["at"] <= now:
                orders.extend(self._stop_after_warning(job, now, "its --signal time is up"))
        # (each tick is O(pending + running), not O(all jobs): a queue of 10,000 is
        # ticked every second, during submission bursts too)
        jobs = self.jobs
        if any(
            jobs[i].eligible_time and jobs[i].eligible_time <= now
            and jobs[i].reason == "BeginTime"
            for i in self.pending_ids
        ):
            self.need_schedule = True
        orders.extend(self._policy_tick(now))
        if now >= self._next_forget:  # finished jobs leave memory (they stay in the store)
            self._next_forget = now + 10.0
            old = [
                j.job_id
                for j in jobs.values()
                if j.is_final and j.end_time and now - j.end_time > self.finished_keep
            ]
            for job_id in old:
                self.elig.forget(jobs.pop(job_id))
        if self.elig.index.timers and min(self.elig.index.timers.values()) <= now:
            self.need_schedule = True
        return orders

    def next_deadline(self, now: float) -> float:
        """When :meth:`tick` next has something to do: a node turning SUSPECT or DOWN,
        a warned job's stop. ``now + 1`` at the latest (begin times, housekeeping)."""
        due = now + 1.0
        for node in self.nodes.values():
            if node.up:
                limit = self.node_timeout if node.suspect else self.suspect_after
                due = min(due, node.last_seen + limit)
        for job_id in self.stopping:
            job = self.jobs.get(job_id)
            if job is not None and job.stop:
                due = min(due, job.stop["at"])
        return due

    def job_started(self, name: str, job_id: int, attempt: int, now: float) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.attempt != attempt:
            return
        logger.debug("job %d attempt %d running on %s", job_id, attempt, name)

    def job_exited(
        self,
        name: str,
        job_id: int,
        attempt: int,
        exit_code: int,
        signal: int,
        reason: str,
        now: float,
    ) -> list[Order]:
        """An attempt's processes on ``name`` are gone. Always acknowledged after commit."""
        orders: list[Order] = [AckExit(name, job_id, attempt)]
        job = self.jobs.get(job_id)
        if job is None or job.attempt != attempt or name not in job.pending_nodes:
            logger.info("job %d attempt %d exit on %s: stale, ignored", job_id, attempt, name)
            return orders
        if reason == "fenced" and job.state == S.RUNNING:
            # the node killed its part because it lost contact with us: an
            # infrastructure failure, not the application's
            orders.extend(self._infra_failure(job, name, "node_lost", now,
                                              f"node {name} fenced the job (lost contact)"))
        elif job.state == S.RUNNING and name == job.batch_host and job.preempt_deadline:
            # it ended within its preemption grace time (checkpointed and left)
            orders.extend(self._preempt_stop(job, now))
        elif job.state == S.RUNNING and name == job.batch_host and job.stop:
            # it ended after the warning we sent: the stop we announced, not its result
            orders.extend(self._stop_after_warning(job, now, f"it exited ({exit_code})"))
        elif job.state == S.RUNNING and name == job.batch_host and self._requeue_on_exit(
            job, exit_code, signal, reason
        ):
            job.last_failure = f"exit_{exit_code}"
            job.exit_requeues += 1
            logger.warning("job %d attempt %d exited %d: --requeue-exit, requeueing (%d/%d)",
                           job_id, attempt, exit_code, job.exit_requeues, self.max_requeue_exit)
            self._move(job, S.REQUEUED, now, f"exit code {exit_code} is in --requeue-exit")
            job.final_state = str(S.PENDING)
            orders.extend(KillOrder(n, job_id, attempt, "requeued")
                          for n in job.pending_nodes if n != name)
        elif job.state == S.RUNNING and name == job.batch_host:
            job.exit_code, job.exit_signal = exit_code, signal
            final = _final_state(exit_code, signal, reason)
            job.reason = _final_reason(final, reason)
            rest = [n for n in job.pending_nodes if n != name]
            if rest:
                self._move(job, S.COMPLETING, now, f"batch script ended ({final})")
                job.final_state = final
                orders.extend(KillOrder(n, job.job_id, job.attempt, "completed") for n in rest)
            else:
                job.final_state = final
        elif job.state == S.COMPLETING and name == job.batch_host and not job.exit_code:
            job.exit_code, job.exit_signal = exit_code, signal
            if job.final_state == S.CANCELLED and reason == "timeout":
                job.final_state = S.TIMEOUT
        orders.extend(self._part_ended(job, name, now))
        return orders

    def warned_requeue(self, job: Job, node: str, tag: str, now: float, why: str) -> list[Order]:
        """Requeue a running job whole, but deliver its ``--signal`` first.

        For stops that leave time to checkpoint (a GPU running hot, a fault the
        application survives; preemption). The job's batch host gets its --signal now
        (``B:`` to the batch shell, else to its steps, as before a time limit); the job
        is requeued ``min(lead time, max_stop_warning)`` seconds later, or as soon as
        its script exits. A job without ``--signal`` is requeued at once (SIGTERM, then
        SIGKILL after kill_wait, as for any requeue).
        """
        grace = min(float(job.request.warn_before), self.max_stop_warning)
        if job.state != S.RUNNING or grace <= 0:
            return self._infra_failure(job, node, tag, now, why)
        if job.stop:
            return []  # already warned: the earlier deadline stands
        job.stop = {"at": now + grace, "node": node, "tag": tag, "why": why}
        self.stopping.add(job.job_id)
        self._dirty(job)
        logger.warning("job %d attempt %d: %s; --signal sent, requeue in %.0fs (%s)",
                       job.job_id, job.attempt, why, grace, tag)
        return [SignalOrder(job.batch_host, job.job_id, job.attempt, 0, False, job_warning=True)]

    def _stop_after_warning(self, job: Job, now: float, how: str) -> list[Order]:
        stop, job.stop = job.stop, {}
        self.stopping.discard(job.job_id)
        return self._infra_failure(job, stop["node"], stop["tag"], now,
                                   f"{stop['why']}; warned, {how}")

    def _requeue_on_exit(self, job: Job, exit_code: int, signal: int, reason: str) -> bool:
        """Whether the batch script's exit asks for a requeue (``--requeue-exit``).

        Only a plain exit with a listed code counts (not a signal, a time limit or a
        cancel), and only while the job's own budget, ``max_requeue_exit``, lasts; it is
        separate from the infrastructure requeue budget.
        """
        codes = job.request.requeue_exit
        if codes is None:
            codes = self.requeue_exit
        if signal or reason or exit_code not in codes:
            return False
        if job.exit_requeues >= self.max_requeue_exit:
            logger.warning("job %d exited %d: --requeue-exit budget (%d) spent, not requeued",
                           job.job_id, exit_code, self.max_requeue_exit)
            return False
        return True

    # ------------------------------------------------------------ scheduling
    def schedule(self, now: float) -> list[Order]:
        """Start whatever can start now; record reasons for the rest."""
        self.need_schedule = False
        order = self.pending_order()
        pending = [job for job in order if not job.eligible_time > now]
        if len(pending) < len(order):
            for job in order:
                if job.eligible_time > now and job.reason != "BeginTime":
                    job.reason = "BeginTime"
                    self._dirty(job)
        if pending and self.prio.due(now):
            self._recompute(now)
            pending.sort(key=_order)
        # after the priority order is final: array offers keep the order select made
        pending = self.elig.select(pending, now)
        if not pending:
            return []
        pending = self._preemptors_first(pending)
        holding = self.holding_jobs()
        ends = expected_ends(holding, now)
        # array tasks offered this pass are not in self.jobs until they start
        offered = self.elig.offered_jobs()
        known = collections.ChainMap(offered, self.jobs) if offered else self.jobs
        gate = self.prio.gate(known, holding)
        decisions, reasons, plan = schedule_backfill(
            pending, self.nodes, self.partitions, self.default_partition, ends, now,
            self.backfill, gate, self.plan_keys, unheld=True, models=self.plan_models,
        )
        if len(self.plan_keys) > 2 * len(self.pending_ids) + 1000:
            self.plan_keys = {i: k for i, k in self.plan_keys.items() if i in self.pending_ids}
        self.elig.materialize(decisions, now)
        reasons = self.elig.own_reasons(reasons)
        self.reservations = {i: r for i, r in plan.reservations.items() if i in self.jobs}
        orders: list[Order] = []
        for d in decisions:
            job = self.jobs[d.job_id]
            self._move(job, S.RUNNING, now, f"allocated {','.join(p.node for p in d.placements)}")
            job.partition = d.partition
            job.alloc = {
                p.node: {"cpus": p.cpus, "mem_mb": p.mem_mb, "gpus": list(p.gpus)}
                for p in d.placements
            }
            job.pending_nodes = [p.node for p in d.placements]
            job.start_time = now
            job.end_time = 0.0
            job.attempts.append(
                {"attempt": job.attempt, "nodes": list(job.alloc), "start": now, "end": 0.0,
                 "ended": ""}
            )
            job.reason = "None"
            job.final_state = ""
            part = self.partitions[d.partition]
            limit = job.request.time_limit
            job.time_limit = part.default_time if limit == 0 else limit
            if part.max_time >= 0 and (job.time_limit < 0 or job.time_limit > part.max_time):
                job.time_limit = part.max_time
            if self.path_resolver is not None:
                job.stdout_path, job.stderr_path = self.path_resolver(job)
            self._dirty(job)
            orders.extend(
                LaunchOrder(p.node, job.job_id, job.attempt, i) for i, p in enumerate(d.placements)
            )
        jobs = self.jobs
        for job_id, reason in reasons.items():
            job = jobs[job_id]
            if job.reason != reason:
                job.reason = reason
                self._dirty(job)
        orders.extend(self._preempt_for(pending, reasons, now))
        return orders

    # ------------------------------------------------------------ internals
    def _stop(self, job: Job, final: JobState, why: str, now: float) -> list[Order]:
        """Order every node of a running job to kill its part; finish when all confirm."""
        if final == S.PENDING:
            self._move(job, S.REQUEUED, now, why)
        else:
            self._move(job, S.COMPLETING, now, why)
        job.final_state = str(final)
        self._dirty(job)
        return [KillOrder(n, job.job_id, job.attempt, why) for n in job.pending_nodes]

    def _node_failed(self, node: Node, now: float, why: str) -> list[Order]:
        orders: list[Order] = []
        for job_id in list(node.jobs):
            job = self.jobs.get(job_id)
            if job is None:
                node.release(job_id)
                continue
            if job.state == S.RUNNING:
                orders.extend(self._infra_failure(job, node.name, "node_lost", now, why))
            # the dead node's part counts as ended: its processes are fenced off by
            # the attempt number if the node ever comes back
            orders.extend(self._part_ended(job, node.name, now))
        return orders

    def _infra_failure(self, job: Job, node: str, tag: str, now: float, why: str) -> list[Order]:
        """A running job lost a node or a GPU: requeue it whole, or end it NODE_FAIL."""
        limit = job.request.max_requeue if job.request.max_requeue >= 0 else self.max_requeue
        job.last_failure = tag
        self._failure_incident(node, tag, job.job_id, why, now)
        if not job.request.requeue:
            logger.warning("job %d: %s; --no-requeue: NODE_FAIL", job.job_id, why)
            orders = self._stop(job, S.NODE_FAIL, "node_fail", now)
            job.reason = "NodeDown"
            return orders
        if job.attempt - job.exit_requeues - job.preempt_count >= limit:
            logger.warning("job %d: %s; requeue limit %d reached: NODE_FAIL",
                           job.job_id, why, limit)
            orders = self._stop(job, S.NODE_FAIL, "node_fail", now)
            job.reason = f"RequeueLimit({limit})"
            return orders
        logger.warning("job %d attempt %d: %s; requeueing (%s)", job.job_id, job.attempt, why, tag)
        orders = self._stop(job, S.PENDING, "node_fail", now)
        if node not in job.request.avoid:
            job.request = dataclasses.replace(job.request, avoid=(*job.request.avoid, node))
        return orders

    def _failure_incident(self, name: str, tag: str, job_id: int, why: str, now: float) -> None:
        """Score an infrastructure failure against node ``name``; drain it when it repeats."""
        node = self.nodes.get(name)
        if node is None or self.failure_drain_count <= 0:
            return
        health.prune(node.failures, now, self.failure_window)
        health.record(node.failures, now, tag, job_id, why)
        self.dirty_nodes.add(name)
        if node.drain or health.score(node.failures, now, self.failure_window) < (
            self.failure_drain_count
        ):
            return
        node.drain = True
        node.reason = health.drain_reason(node.failures, now, self.failure_window)
        node.reason_time, node.reason_user = now, "gsched"
        logger.warning("node %s drained after repeated job failures: %s", name, node.reason)

    def _part_ended(self, job: Job, name: str, now: float) -> list[Order]:
        if name in job.pending_nodes:
            job.pending_nodes.remove(name)
        node = self.nodes.get(name)
        if node is not None:
            node.release(job.job_id)
        self._dirty(job)
        self.need_schedule = True
        if job.pending_nodes:
            return []
        self.prio.attempt_ended(job, now)
        job.preempt_deadline = 0.0
        if job.state in (S.RUNNING, S.COMPLETING):
            final = JobState(job.final_state or S.COMPLETED)
            self._move(job, final, now, "all nodes ended")
            job.end_time = now
            self._attempt_ended(job, now, str(final))
            if final == S.CANCELLED:
                job.reason = "None"
        elif job.state == S.REQUEUED:
            if job.final_state == S.CANCELLED:
                self._move(job, S.CANCELLED, now, "cancelled while requeueing")
                job.end_time = now
                self._attempt_ended(job, now, "CANCELLED")
                return []
            self._attempt_ended(job, now, job.last_failure or "requeued")
            self._move(job, S.PENDING, now, "requeued")
            job.attempt += 1
            job.reason = "None"
            job.eligible_time = now + self.requeue_delay if self.requeue_delay else 0.0
            job.alloc = {}
            job.start_time = 0.0
            job.exit_code = job.exit_signal = 0
            job.final_state = ""
            if job.hold:
                job.reason = "JobHeldUser"
                job.priority = 0
        return []

    @staticmethod
    def _attempt_ended(job: Job, now: float, how: str) -> None:
        job.stop = {}
        for a in reversed(job.attempts):
            if a["attempt"] == job.attempt and not a["end"]:
                a["end"], a["ended"] = now, how
                break
        del job.attempts[:-20]  # a crash loop must not grow the row without bound

    def validate(self) -> None:
        """Invariants, checked by tests after every step."""
        for node in self.nodes.values():
            node.validate()
            for job_id in node.jobs:
                job = self.jobs.get(job_id)
                assert job is not None and job.state in ACTIVE_STATES, (
                    f"{node.name} holds resources for job {job_id} in {job and job.state}"
                )
        for job in self.jobs.values():
            if job.state == S.RUNNING:
                for name in job.pending_nodes:
                    assert job.job_id in self.nodes[name].jobs, f"job {job.job_id} lost {name}"
            if job.state in FINAL_STATES:
                assert not job.pending_nodes, f"final job {job.job_id} still on nodes"
        self.elig.validate()


def _order(job: Job) -> tuple[int, int, float, int]:
    return (-job.tier, -job.priority, job.submit_time, job.job_id)



def _final_state(exit_code: int, signal: int, reason: str) -> JobState:
    if reason == "timeout":
        return S.TIMEOUT
    if reason == "cancelled":
        return S.CANCELLED
    if reason == "oom":
        return S.OUT_OF_MEMORY
    if reason in ("launch_failed", "killed"):
        # launch failed, or the job's wrapper died without recording an exit
        return S.FAILED
    if exit_code == 0 and signal == 0:
        return S.COMPLETED
    return S.FAILED


def _final_reason(state: JobState, reason: str) -> str:
    if state == S.FAILED:
        return "JobLaunchFailure" if reason == "launch_failed" else "NonZeroExitCode"
    if state == S.TIMEOUT:
        return "TimeLimit"
    if state == S.OUT_OF_MEMORY:
        return "OutOfMemory"
    return "None"
