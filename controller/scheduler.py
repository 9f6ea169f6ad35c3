"""One scheduling pass (pure: returns decisions, performs none).

Order: priority (descending), then submit time, then job id. Each pending job is
placed on the first of its partitions that can start it now; a multi-node job gets
all its nodes at once or none (gang allocation). Among fitting nodes the pass
prefers the tightest fit (fewest free GPUs, then fewest free CPUs) so whole nodes
stay free for big jobs. Jobs that cannot start get SLURM's reason: the first one
blocked in a partition waits for ``Resources``, those behind it for ``Priority``.
The controller itself schedules through :func:`gsched.controller.backfill.schedule_backfill`
(reservations, QOS limits); this simpler pass is kept as the reference it is tested
against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from gsched.controller.jobs import Job, Request
from gsched.controller.nodes import Node

__all__ = ["Decision", "Partition", "Placement", "feasible", "fits", "schedule"]


@dataclasses.dataclass(frozen=True)
class Partition:
    name: str
    nodes: tuple[str, ...] = ()  # explicit members; empty + all_nodes = every node
    all_nodes: bool = False
    default: bool = False
    default_time: int = -1
    max_time: int = -1
    max_nodes: int = 0
    state: str = "UP"
    priority_tier: int = 1  # PriorityTier: higher tiers are scheduled first
    priority_job_factor: int = 1  # PriorityJobFactor
    allow_accounts: tuple[str, ...] = ()  # AllowAccounts; empty = ALL
    allow_groups: tuple[str, ...] = ()  # AllowGroups; empty = ALL
    exclusive: bool = False  # OverSubscribe=EXCLUSIVE: every job gets whole nodes

    @property
    def schedulable(self) -> bool:
        """Jobs may start here: UP, or DRAIN (no new submissions, queued jobs still run)."""
        return self.state in ("UP", "DRAIN")

    @property
    def down_reason(self) -> str:
        """SLURM's pending reason for a partition that cannot start jobs."""
        return "PartitionInactive" if self.state == "INACTIVE" else "PartitionDown"

    def members(self, nodes: dict[str, Node]) -> list[Node]:
        if self.all_nodes:
            return list(nodes.values())
        return [nodes[n] for n in self.nodes if n in nodes]


@dataclasses.dataclass(frozen=True)
class Placement:
    node: str
    cpus: int
    mem_mb: int
    gpus: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Decision:
    job_id: int
    partition: str
    placements: tuple[Placement, ...]


def _need(req: Request, node: Node) -> tuple[int, int]:
    """CPUs and memory the job takes on ``node``."""
    if req.exclusive:
        return node.cpus, node.mem_mb
    mem = node.mem_mb if req.mem_whole_node else req.mem_per_node_mb
    return req.cpus_per_node, mem


def fits(req: Request, node: Node) -> Placement | None:
    """Where ``req`` would go on ``node`` right now, or None."""
    if not node.schedulable or node.name in req.exclude or node.name in req.avoid:
        return None
    cpus, mem = _need(req, node)
    if (req.exclusive or req.mem_whole_node) and node.jobs:
        return None
    if node.cpus and cpus > node.cpus - node.cpus_alloc:
        return None
    if mem and node.mem_mb and mem > node.mem_mb - node.mem_alloc:
        return None
    if req.exclusive:
        free = node.free_gpus()
        if len(free) < req.gpus_per_node:
            return None
        gpus = tuple(free)
    else:
        free = node.free_gpus(req.gpu_type)
        if len(free) < req.gpus_per_node:
            return None
        gpus = tuple(free[: req.gpus_per_node])
    return Placement(node.name, cpus, mem, gpus)


def _could_ever_fit(req: Request, node: Node) -> bool:
    if node.name in req.exclude:
        return False
    cpus, mem = _need(req, node)
    if node.cpus and cpus > node.cpus:
        return False
    if mem and node.mem_mb and mem > node.mem_mb:
        return False
    return node.gpu_count(req.gpu_type) >= req.gpus_per_node


def feasible(req: Request, part: Partition, nodes: dict[str, Node]) -> bool:
    """Whether the partition's known nodes could ever run ``req`` (ignoring load).

    A partition with no known node yet is given the benefit of the doubt: agents
    may still register.
    """
    members = part.members(nodes)
    known = [n for n in members if n.ever_registered or n.cpus]
    if not known:
        return True
    able = [n for n in known if _could_ever_fit(req, n)]
    if req.nodelist:
        names = {n.name for n in able}
        if not all(n in names for n in req.nodelist):
            return False
    return len(able) >= req.nodes


def place(req: Request, part: Partition, nodes: dict[str, Node]) -> tuple[Placement, ...] | None:
    """Choose ``req.nodes`` nodes of ``part`` for ``req`` now, or None (gang: all or none)."""
    if not part.schedulable:
        return None
    if part.exclusive and not req.exclusive:
        req = dataclasses.replace(req, exclusive=True)
    members = part.members(nodes)
    chosen: list[Placement] = []
    taken: set[str] = set()
    for name in req.nodelist:
        node = nodes.get(name)
        if node is None or node not in members:
            return None
        p = fits(req, node)
        if p is None:
            return None
        chosen.append(p)
        taken.add(name)
    if len(chosen) >= req.nodes:
        return tuple(chosen)
    options: list[tuple[tuple[int, int, str], Placement]] = []
    for node in members:
        if node.name in taken:
            continue
        p = fits(req, node)
        if p is not None:
            key = (len(node.free_gpus()) - len(p.gpus), node.cpus - node.cpus_alloc, node.name)
            options.append((key, p))
    if len(chosen) + len(options) < req.nodes:
        return None
    options.sort(key=lambda kv: kv[0])
    chosen.extend(p for _, p in options[: req.nodes - len(chosen)])
    return tuple(chosen)


def schedule(
    pending: Iterable[Job],
    nodes: dict[str, Node],
    partitions: dict[str, Partition],
    default_partition: str,
) -> tuple[list[Decision], dict[int, str]]:
    """One pass over ``pending`` (already in priority order).

    Returns the jobs to start (with their placements, already applied to ``nodes``
    so later jobs see them) and a reason for every pending job left waiting.
    """
    decisions: list[Decision] = []
    reasons: dict[int, str] = {}
    blocked: set[str] = set()
    # Free resources only shrink during a pass: a request shape that did not fit
    # in a partition will not fit later in the same pass (keeps 10,000 pending
    # jobs cheap).
    failed: set[tuple[object, ...]] = set()
    for job in pending:
        if job.hold:
            reasons[job.job_id] = "JobHeldUser" if job.reason != "JobHeldAdmin" else job.reason
            continue
        names: Sequence[str] = job.request.partitions or (default_partition,)
        started = False
        why = ""
        for pname in names:
            part = partitions.get(pname)
            if part is None:
                why = "PartitionDown"
                continue
            if not part.schedulable:
                why = part.down_reason
                continue
            if part.max_nodes and job.request.nodes > part.max_nodes:
                why = "PartitionNodeLimit"
                continue
            if part.max_time >= 0 and job.request.time_limit > part.max_time:
                why = "PartitionTimeLimit"
                continue
            if len(part.members(nodes)) < job.request.nodes:
                why = why or "PartitionNodeLimit"
                continue
            shape = _shape(pname, job.request)
            if shape in failed:
                why = "Priority"
                continue
            placement = place(job.request, part, nodes)
            if placement is None and job.request.avoid:
                # Avoiding the nodes that failed this job is a preference: fall back
                # when the other nodes could never run it.
                strict = dataclasses.replace(
                    job.request, exclude=job.request.exclude + job.request.avoid, avoid=()
                )
                if not feasible(strict, part, nodes):
                    placement = place(dataclasses.replace(job.request, avoid=()), part, nodes)
            if placement is None:
                why = "Priority" if pname in blocked else "Resources"
                blocked.add(pname)
                failed.add(shape)
                continue
            for p in placement:
                nodes[p.node].allocate(job.job_id, p.cpus, p.mem_mb, p.gpus)
            decisions.append(Decision(job.job_id, pname, placement))
            started = True
            break
        if not started:
            reasons[job.job_id] = why or "Resources"
    return decisions, reasons


def _shape(partition: str, r: Request) -> tuple[object, ...]:
    return (
        partition, r.nodes, r.cpus_per_node, r.mem_per_node_mb, r.mem_whole_node,
        r.gpus_per_node, r.gpu_type, r.nodelist, r.exclude, r.avoid, r.exclusive,
    )
