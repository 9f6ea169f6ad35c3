"""Jobs and their state machine (pure: no I/O, time is a parameter).

Every state change goes through :func:`transition`, which checks the one table
below, records the change in the job's story and logs it.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import Any

from gsched.controller.arrays import TaskSet
from gsched.controller.deps import Dependency
from gsched.controller.errors import InvalidTransition

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "Job",
    "JobState",
    "Request",
    "transition",
]

logger = logging.getLogger(__name__)


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    REQUEUED = "REQUEUED"
    PREEMPTED = "PREEMPTED"  # ended by preemption with PreemptMode=CANCEL


S = JobState
FINAL_STATES = frozenset(
    {S.COMPLETED, S.FAILED, S.TIMEOUT, S.CANCELLED, S.OUT_OF_MEMORY, S.NODE_FAIL, S.PREEMPTED}
)
ACTIVE_STATES = frozenset({S.PENDING, S.RUNNING, S.COMPLETING, S.REQUEUED})

# The legal moves. COMPLETING is entered when the batch script ended (or a kill was
# ordered) and some node still has to confirm that the job's processes are gone;
# its resources are freed node by node as confirmations arrive.
_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.PENDING: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.COMPLETING, *FINAL_STATES, S.REQUEUED}),
    S.COMPLETING: frozenset({*FINAL_STATES, S.REQUEUED}),
    S.REQUEUED: frozenset({S.PENDING, S.CANCELLED}),
    **{final: frozenset() for final in FINAL_STATES},
}


@dataclasses.dataclass(frozen=True)
class Request:
    """What the scheduler needs to know about a job's resource request."""

    nodes: int = 1
    ntasks: int = 1
    cpus_per_node: int = 1
    mem_per_node_mb: int = 0  # 0 = not tracked for this job
    mem_whole_node: bool = False
    gpus_per_node: int = 0
    gpu_type: str = ""
    partitions: tuple[str, ...] = ()
    nodelist: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclusive: bool = False
    time_limit: int = 0  # seconds; 0 = partition default; -1 = unlimited
    requeue: bool = True
    max_requeue: int = -1  # infrastructure requeues allowed; -1 = the cluster default
    avoid: tuple[str, ...] = ()  # nodes that failed this job: placed elsewhere when possible
    requeue_exit: tuple[int, ...] | None = None  # exit codes that requeue; None = cluster default
    warn_before: int = 0  # --signal's lead time in seconds (0: no --signal)
    signal: int = 0  # --signal's number (sent on preemption; 0 = SIGTERM)

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: that deep-copies and is the hot spot of a submit burst
        return {name: getattr(self, name) for name in _REQUEST_FIELDS}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Request:
        raw = dict(raw)
        for key in ("partitions", "nodelist", "exclude", "avoid"):
            raw[key] = tuple(raw.get(key, ()))
        if raw.get("requeue_exit") is not None:
            raw["requeue_exit"] = tuple(raw["requeue_exit"])
        return cls(**raw)


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(Request))


@dataclasses.dataclass(slots=True)
class Job:
    """A job as the controller holds it. ``spec`` is the opaque serialized JobSpec."""

    job_id: int
    user: str
    uid: int
    gid: int
    group: str
    name: str
    request: Request
    spec: bytes
    submit_time: float
    state: JobState = S.PENDING
    reason: str = "None"
    partition: str = ""
    priority: int = 0
    nice: int = 0
    hold: bool = False
    attempt: int = 0
    start_time: float = 0.0
    end_time: float = 0.0
    time_limit: int = -1  # effective, resolved at start; -1 = unlimited
    exit_code: int = 0
    exit_signal: int = 0
    # node name -> {"gpus": [...], "cpus": n, "mem_mb": m}, in allocation order
    alloc: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # nodes whose part of the current attempt has not confirmed its end yet
    pending_nodes: list[str] = dataclasses.field(default_factory=list)
    # the final state to take once every node has confirmed (set by cancel/exit)
    final_state: str = ""
    stdout_path: str = ""
    stderr_path: str = ""
    comment: str = ""
    last_failure: str = ""  # why the previous attempt ended: node_lost, gpu_xid_79, ...
    eligible_time: float = 0.0  # a requeued job may not start before this
    exit_requeues: int = 0  # requeues for a --requeue-exit code (their own budget)
    # a stop announced with the job's --signal: {"at", "node", "tag", "why"}; {} = none
    stop: dict[str, Any] = dataclasses.field(default_factory=dict)
    # one entry per start: {"attempt", "nodes", "start", "end", "ended"}
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # --dependency, --begin, --array (controller/deps.py, controller/arrays.py)
    dependency: Dependency | None = None
    kill_on_invalid_dep: bool = False
    begin_time: float = 0.0  # --begin (unix seconds); 0 = not given
    array_job_id: int = 0  # 0 = not part of an array
    array_task_id: int = -1  # this task's id; -1 = not an array, or the pending remainder
    array_tasks: TaskSet | None = None  # the remainder record: tasks not split off yet
    array_max_running: int = 0  # %N throttle; 0 = none
    # (count, min, max, step) of the whole array as submitted: SLURM_ARRAY_TASK_*
    array_size: tuple[int, int, int, int] = (0, 0, 0, 0)
    # scheduling policy (docs/policy.md)
    account: str = ""
    qos: str = ""
    admin_priority: int = 0  # set by an operator (gctl update Priority=N); 0 = computed
    preempt_count: int = 0  # requeues caused by preemption (not held against max_requeue)
    preempt_deadline: float = 0.0  # preempted: killed at this time (after GraceTime)
    tier: int = 0  # PriorityTier of its partition(s) (derived, not stored)
    rev: int = 0  # bumped on every change (not stored): keys caches of derived views
    story: list[tuple[float, str, str, str]] = dataclasses.field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return list(self.alloc)

    @property
    def batch_host(self) -> str:
        return next(iter(self.alloc), "")

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def label(self) -> str:
        """The id users see: ``J``, ``A_a`` for a task, ``A_[0-99%8]`` for the remainder."""
        if not self.array_job_id:
            return str(self.job_id)
        if self.array_tasks is not None:
            limit = f"%{self.array_max_running}" if self.array_max_running else ""
            return f"{self.array_job_id}_[{self.array_tasks}{limit}]"
        return f"{self.array_job_id}_{self.array_task_id}"


def transition(job: Job, new: JobState, now: float, why: str = "") -> None:
    """Move ``job`` to ``new`` if the table allows it.

    Raises:
        InvalidTransition: the move is not in the table (a bug in the caller).
    """
    old = job.state
    if new not in _TRANSITIONS[old]:
        raise InvalidTransition(
            f"job {job.job_id}: illegal transition {old} -> {new} ({why}); story: {job.story[-5:]}"
        )
    job.state = new
    job.story.append((now, str(old), str(new), why))
    if len(job.story) > 50:
        del job.story[:10]
    logger.info("job %d attempt %d: %s -> %s %s", job.job_id, job.attempt, old, new, why)
