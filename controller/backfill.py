"""Backfill scheduling with reservations, like SLURM's ``sched/backfill`` (pure).

One :func:`plan` call walks the pending jobs in priority order against a model of
the cluster over time:

- *now*: each schedulable node's free CPUs, memory and GPUs (from :class:`Node`);
- *later*: the resources each running job gives back at its expected end
  (start + time limit; an unlimited job never gives them back).

A job that fits now without touching any reservation starts now (its resources come
back at now + its limit). The first ``depth`` jobs that cannot start get the earliest
time, within ``window``, at which all their nodes are free together for their whole
time limit (gang: one start time for all nodes), and those resources are *reserved*
from that time on. A later (lower-priority) job may then start now only if, on every
node it would use, it either ends before the reservations there begin or leaves
enough beside them: a backfilled job never delays a reserved one, so a big job is
not starved by a stream of small ones.

Resources are tracked per node as a vector ``[cpus, mem, slots, gpus of type 0,
gpus of type 1, ...]``. ``slots`` makes ``--exclusive`` and ``--mem=0`` work through
the same arithmetic: every job takes one slot, an exclusive job takes them all and a
whole-node job needs them all free. Untracked capacity (a node that reported 0 CPUs
or 0 memory) counts as unlimited, as in :func:`gsched.controller.scheduler.fits`.

Reasons follow SLURM: a job that would fit now but would delay a reservation waits
for ``Priority``; one that holds a reservation, or is the first blocked in its
partition, waits for ``Resources``; the others for ``Priority``.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import heapq
import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from gsched.controller.jobs import Job, JobState, Request
from gsched.controller.nodes import Node
from gsched.controller.scheduler import Decision, Partition, Placement, feasible

__all__ = [
    "BackfillConfig",
    "BackfillPlan",
    "Gate",
    "Models",
    "PendingJob",
    "Reservation",
    "effective_time_limit",
    "expected_ends",
    "plan",
    "schedule_backfill",
]

INF = math.inf
_BIG = 1 << 40  # "unlimited" capacity (untracked CPUs/memory, slots)
_C, _M, _S, _G = 0, 1, 2, 3  # vector dims: cpus, mem, slots, first GPU type
_SKIP_DEAD = True  # plan's short cut for jobs that can only wait (tests turn it off)


class _Miss(enum.Enum):
    NO_ROOM = "no room now"  # even with every reservation ignored
    HELD = "room now, but it would delay a reservation"


@dataclasses.dataclass(frozen=True)
class BackfillConfig:
    """SLURM's ``SchedulerParameters`` for backfill.

    Attributes:
        depth: how many blocked jobs (in priority order) get a reservation
            (``bf_max_job_test``).
        window: how far ahead, in seconds, reservations may start (``bf_window``).
    """

    depth: int = 100
    window: float = 86400.0


class Gate(Protocol):
    """Limits checked per job during a pass (see ``policy.LimitGate``)."""

    def check(self, job_id: int) -> str:
        """The reason ``job_id`` may not start now, or ``""``."""

    def started(self, job_id: int) -> None:
        """``job_id`` starts in this pass: count what it holds."""


@dataclasses.dataclass(frozen=True)
class PendingJob:
    """A job to plan: its id and request (already in priority order in the input)."""

    job_id: int
    request: Request


@dataclasses.dataclass(frozen=True)
class Reservation:
    """Where and when a blocked job is planned to start (``end_time`` inf: unlimited)."""

    job_id: int
    partition: str
    start_time: float
    end_time: float
    nodes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class BackfillPlan:
    """What one pass decided.

    Attributes:
        start_now: jobs to start now, in the order decided, with their placements.
        reservations: blocked jobs' planned starts.
        reasons: why each job not started waits.
        backfilled: ids of ``start_now`` jobs that started below a blocked job.
    """

    start_now: tuple[Decision, ...]
    reservations: Mapping[int, Reservation]
    reasons: Mapping[int, str]
    backfilled: frozenset[int] = frozenset()


def effective_time_limit(req: Request, part: Partition) -> int:
    """The job's limit in ``part``: its own, else ``DefaultTime``, capped by ``MaxTime``.

    Returns seconds, or -1 for unlimited.
    """
    limit = part.default_time if req.time_limit == 0 else req.time_limit
    if part.max_time >= 0 and (limit < 0 or limit > part.max_time):
        limit = part.max_time
    return limit


def expected_ends(jobs: Iterable[Job], now: float) -> dict[int, float]:
    """When each job that holds resources is expected to give them back.

    A running job ends at start + its time limit (never, if unlimited; now, if it is
    already past it and about to be killed); one that is completing or being
    requeued ends now.
    """
    ends: dict[int, float] = {}
    for job in jobs:
        if job.state == JobState.RUNNING:
            end = INF if job.time_limit < 0 else job.start_time + job.time_limit
            ends[job.job_id] = max(end, now)
        elif job.state in (JobState.COMPLETING, JobState.REQUEUED) and job.pending_nodes:
            ends[job.job_id] = now
    return ends


# ------------------------------------------------------------------ node model
class _Node:
    """One schedulable node over time: free now, plus dated changes (releases, holds)."""

    __slots__ = (
        "cap", "cpus_key", "events", "free", "free_idx", "gtype", "holds", "name", "ntypes",
        "profile", "ready", "ready_version", "total_gpus", "types", "version",
    )

    def __init__(self, node: Node, ends: Mapping[int, float], now: float) -> None:
        self.name = node.name
        healthy = [g for g in node.gpus if g.healthy]
        self.types: dict[str, int] = {t: i for i, t in enumerate(sorted({g.type for g in healthy}))}
        self.ntypes = len(self.types)
        self.gtype: dict[int, int] = {g.index: self.types[g.type] for g in healthy}
        self.total_gpus = [0] * self.ntypes
        for t in self.gtype.values():
            self.total_gpus[t] += 1
        cpus_alloc = mem_alloc = 0
        used: set[int] = set()
        for c, m, gpus in node.jobs.values():
            cpus_alloc += c
            mem_alloc += m
            used.update(gpus)
        self.free_idx: list[int] = [g.index for g in healthy if g.index not in used]
        self.cap = [node.cpus or _BIG, node.mem_mb or _BIG, _BIG, *self.total_gpus]
        self.free = [
            node.cpus - cpus_alloc if node.cpus else _BIG,
            node.mem_mb - mem_alloc if node.mem_mb else _BIG,
            _BIG - len(node.jobs),
            *([0] * self.ntypes),
        ]
        for i in self.free_idx:
            self.free[_G + self.gtype[i]] += 1
        self.cpus_key = node.cpus - cpus_alloc  # scheduler.place's tie-break
        self.events: dict[float, list[int]] = {}
        self.holds = 0
        self.profile: list[tuple[float, list[int]]] | None = None
        self.version = 0  # bumped on every change: keys caches of derived views
        # need -> _ready_point of the profile, while the version is ready_version
        self.ready: dict[tuple[int, int, int, int, int], int] = {}
        self.ready_version = -1
        for job_id, (cpus, mem, gpus) in node.jobs.items():
            end = ends.get(job_id, INF)
            if end != INF:
                self.add(max(end, now), self.vec(cpus, mem, 1, gpus))

    def vec(self, cpus: int, mem: int, slots: int, gpus: Iterable[int]) -> list[int]:
        v = [cpus, mem, slots, *([0] * self.ntypes)]
        for i in gpus:
            t = self.gtype.get(i)
            if t is not None:  # an unhealthy GPU does not come back
                v[_G + t] += 1
        return v

    def add(self, t: float, delta: list[int]) -> None:
        cur = self.events.get(t)
        if cur is None:
            self.events[t] = list(delta)
        else:
            for d, x in enumerate(delta):
                cur[d] += x
        self.touch()

    def touch(self) -> None:
        self.profile = None
        self.version += 1

    def snapshot(self) -> tuple[Any, ...]:
        """What a pass changes here (see :meth:`restore`)."""
        return (list(self.free), self.free_idx, self.cpus_key,
                {t: list(v) for t, v in self.events.items()}, self.holds, self.profile,
                self.version)

    def restore(self, saved: tuple[Any, ...]) -> None:
        """Back to :meth:`snapshot`'s state (``free_idx`` and ``profile`` are replaced,
        never changed in place, during a pass; the ready memo starts again)."""
        (self.free, self.free_idx, self.cpus_key, self.events, self.holds, self.profile,
         self.version) = saved
        self.ready_version = -1

    def points(self, now: float) -> list[tuple[float, list[int]]]:
        """``[(time, free from then on)]``: now first, then at each change."""
        if self.profile is None:
            avail = list(self.free)
            prof = [(now, list(avail))]
            for t in sorted(self.events):
                for d, x in enumerate(self.events[t]):
                    avail[d] += x
                prof.append((t, list(avail)))
            self.profile = prof
        return self.profile

    def ready_point(self, need: tuple[int, int, int, int, int], now: float) -> int:
        """:func:`_ready_point` of this node's profile, kept until the node changes (a
        kept model keeps it across passes: only the first point's time moves)."""
        if self.ready_version != self.version:
            self.ready.clear()
            self.ready_version = self.version
        k = self.ready.get(need)
        if k is None:
            k = self.ready[need] = _ready_point(self.profile or self.points(now), need)
        return k

    def need(self, req: Request) -> tuple[int, int, int, int, int] | None:
        """``(cpus, mem, slots, gpu type index or -1 for any, gpus)``; None: no such GPU."""
        if req.exclusive:
            return (self.cap[_C] if self.cap[_C] != _BIG else 0,
                    self.cap[_M] if self.cap[_M] != _BIG else 0, _BIG, -1, req.gpus_per_node)
        mem = (self.cap[_M] if self.cap[_M] != _BIG else 0) if req.mem_whole_node \
            else req.mem_per_node_mb
        slots = _BIG if req.mem_whole_node else 1
        t = -1
        if req.gpu_type and req.gpus_per_node:
            t = self.types.get(req.gpu_type, -2)
            if t == -2:
                return None
        return (req.cpus_per_node, mem, slots, t, req.gpus_per_node)

    def take(self, req: Request, need: tuple[int, int, int, int, int],
             avail: list[int]) -> list[int]:
        """The vector ``req`` consumes out of ``avail`` (the GPU types it would get)."""
        cpus, mem, slots, t, g = need
        if req.exclusive:
            return [cpus, mem, _BIG, *self.total_gpus]
        # a whole-node (--mem=0) job needs the node empty when it starts, so its hold keeps
        # every slot (stricter than after it starts, when small jobs may join it)
        v = [cpus, mem, slots, *([0] * self.ntypes)]
        if g:
            if t >= 0:
                v[_G + t] = g
            else:  # any type: the first types with room, as free_gpus() order would
                for k in range(self.ntypes):
                    n = min(g, max(0, avail[_G + k]))
                    v[_G + k] = n
                    g -= n
        return v


def _ok(a: list[int], need: tuple[int, int, int, int, int]) -> bool:
    cpus, mem, slots, t, g = need
    if a[_C] < cpus or a[_M] < mem or a[_S] < slots:
        return False
    if g:
        if t >= 0:
            return a[_G + t] >= g
        return sum(a[_G:]) >= g
    return True


def _covers(a: list[int], v: list[int]) -> bool:
    return all(x >= y for x, y in zip(a, v, strict=True))


_INDEX = operator.attrgetter("index")
_TYPE = operator.attrgetter("type")
_HEALTHY = operator.attrgetter("healthy")


class Models:
    """Node models kept from one pass to the next (:func:`plan`'s ``models``).

    A node's model (:class:`_Node`) is a function of the node's capacity, its GPUs
    (index, type, health), its allocations and their expected ends, and ``now``. A
    model whose inputs are what they were when it was built is used again: only its
    profile's first point, "now", moves to the new now. Every end is at ``now`` or
    later (:func:`expected_ends`), so a model whose ends are all unchanged has no
    change dated between the two passes. A pass changes the models of the nodes it
    starts jobs on or reserves; it saves each one's state before its first change and
    puts it back at its end (:meth:`_Node.snapshot`), so the kept model describes the
    node again (a node where the pass started a job has new allocations: the next pass
    builds its model afresh).
    """

    def __init__(self) -> None:
        # node name -> (model, allocations, their ends in that order, GPU indexes, GPU
        # types, GPU health, cpus, mem)
        self.kept: dict[str, tuple[_Node, dict[int, Any], list[float], list[int], list[str],
                                   list[bool], int, int]] = {}

    def build(self, nodes: Mapping[str, Node], ends: Mapping[int, float],
              now: float) -> dict[str, _Node]:
        """The models of the schedulable nodes for a pass at ``now``."""
        # (few objects made per node: each one made counts towards the next collection)
        kept = self.kept
        out: dict[str, _Node] = {}
        for name, n in nodes.items():
            if not n.schedulable:
                continue
            jobs = n.jobs
            gpus = n.gpus
            got = kept.get(name)
            if (got is not None and got[1] == jobs and got[6] == n.cpus and got[7] == n.mem_mb
                    and got[5] == list(map(_HEALTHY, gpus))
                    and got[3] == list(map(_INDEX, gpus)) and got[4] == list(map(_TYPE, gpus))
                    and got[2] == [ends.get(j, INF) for j in got[1]]):
                model = got[0]
                prof = model.profile
                if prof is not None and prof[0][0] != now:
                    prof[0] = (now, prof[0][1])  # no one else holds a profile across passes
            else:
                model = _Node(n, ends, now)
                kept[name] = (model, dict(jobs), [ends.get(j, INF) for j in jobs],
                              list(map(_INDEX, gpus)), list(map(_TYPE, gpus)),
                              list(map(_HEALTHY, gpus)), n.cpus, n.mem_mb)
            out[name] = model
        return out


# ------------------------------------------------------------------ the pass
_Need = tuple[int, int, int, int, int]
_Taken = list[tuple[_Node, list[int]]]


@dataclasses.dataclass
class _Ready:
    """For one partition and request shape: when each node without holds can take it.

    A node without holds only gains resources over time, so it is ready from one
    time on for good; these times are kept sorted and updated only for the nodes that
    changed since the last look. Nodes with holds are looked at on every query.
    """

    seen: int  # position in the planner's change log
    at: dict[str, float]  # node -> ready time (nodes without holds that can ever take it)
    order: list[tuple[float, str]]  # the same, sorted


class _Option(NamedTuple):
    """One partition a job may run in: its nodes, the request variants, the limit."""

    partition: str
    members: list[_Node]
    variants: list[tuple[Request, tuple[object, ...]]]  # (request, its shape) to try in turn
    length: float  # seconds; inf: unlimited


@dataclasses.dataclass
class _Held:
    """For one partition and request shape: the spans during which it fits on the
    nodes with holds (any limit: a job of length L can start in ``[lo, end - L]``)."""

    seen: int  # position in the planner's change log
    windows: dict[str, list[tuple[float, float]]]  # node -> its spans (see _runs)
    cands: list[tuple[float, float, str]] | None  # (lo, end, node), sorted; None: stale


class _Planner:
    def __init__(
        self, nodes: Mapping[str, Node], partitions: Mapping[str, Partition],
        ends: Mapping[int, float], now: float, cfg: BackfillConfig,
        models: Models | None = None,
    ) -> None:
        self.now = now
        self.horizon = now + cfg.window
        self.nodes = nodes if isinstance(nodes, dict) else dict(nodes)
        self.model: dict[str, _Node] = models.build(nodes, ends, now) if models else {
            name: _Node(n, ends, now) for name, n in nodes.items() if n.schedulable
        }
        self.members: dict[str, list[_Node]] = {}
        self.names: dict[str, set[str]] = {}
        self.sizes: dict[str, int] = {}
        self.prepared_shape: dict[tuple[object, ...], tuple[list[Any], str]] = {}
        # partition -> free GPU count -> nodes: a job needing g GPUs per node looks
        # only at nodes with at least g free, the tightest first
        self.buckets: dict[str, list[dict[str, _Node]]] = {}
        self.log: list[_Node] = []  # nodes changed during the pass, in order
        # kept models (Models) changed during the pass -> their state before it
        self.saved: dict[_Node, tuple[Any, ...]] | None = {} if models is not None else None
        self.held: list[_Node] = []  # nodes with reservations on them
        self.ready: dict[tuple[object, ...], _Ready] = {}
        self.held_index: dict[tuple[object, ...], _Held] = {}
        self.runs: dict[tuple[object, ...], tuple[int, list[tuple[float, float]]]] = {}
        # Free resources only shrink during a pass and holds only grow, so a request
        # that did not fit now will not fit later in the pass (never_now), one that
        # collided with reservations for a limit L collides for any longer limit, and
        # one that found no start within the window for L finds none for longer.
        self.never_now: set[tuple[object, ...]] = set()
        self.collides: dict[tuple[object, ...], float] = {}
        self.rev = 0  # bumped when never_now or collides changes
        self.no_slot: dict[tuple[object, ...], float] = {}

    def part_nodes(self, pname: str, part: Partition) -> list[_Node]:
        """The partition's schedulable nodes (in its order)."""
        got = self.members.get(pname)
        if got is None:
            got = [self.model[n.name] for n in part.members(self.nodes) if n.name in self.model]
            self.members[pname] = got
            self.names[pname] = {n.name for n in got}
            width = max((len(n.gtype) for n in got), default=0) + 1
            buckets: list[dict[str, _Node]] = [{} for _ in range(width)]
            for n in got:
                buckets[len(n.free_idx)][n.name] = n
            self.buckets[pname] = buckets
        return got

    def prepare(
        self, req: Request, partitions: Mapping[str, Partition], default: str,
        key: tuple[object, ...] | None = None,
    ) -> tuple[list[_Option], str]:
        """The partitions ``req`` may run in, or why none (the scheduler's checks).

        ``key``: :func:`_prepare_key` of ``req``, when the caller has it already.
        """
        # Jobs differ mostly in their time limits: the partitions and request variants
        # are worked out once per placement shape, the limit per job.
        if key is None:
            key = _prepare_key(req)
        cached = self.prepared_shape.get(key)
        if cached is None:
            cached = self.prepared_shape[key] = self._prepare(req, partitions, default)
        options, why = cached
        usable = []
        tl = req.time_limit
        for pname, part, members, variants in options:
            mt = part.max_time
            if mt >= 0 and tl > mt:
                why = "PartitionTimeLimit"  # MaxTime lowered since the job was queued
                continue
            # _length(req, part), inline: this runs for every pending job in every pass
            limit = part.default_time if tl == 0 else tl
            if mt >= 0 and (limit < 0 or limit > mt):
                limit = mt
            usable.append(_Option(pname, members, variants, INF if limit < 0 else float(limit)))
        return usable, why

    def _prepare(
        self, req: Request, partitions: Mapping[str, Partition], default: str,
    ) -> tuple[list[tuple[str, Partition, list[_Node], list[tuple[Request, tuple[object, ...]]]]],
               str]:
        why = ""
        usable = []
        for pname in req.partitions or (default,):
            part = partitions.get(pname)
            if part is None:
                why = "PartitionDown"
                continue
            if not part.schedulable:
                why = part.down_reason
                continue
            if part.max_nodes and req.nodes > part.max_nodes:
                why = "PartitionNodeLimit"
                continue
            if self.part_size(pname, part) < req.nodes:
                why = why or "PartitionNodeLimit"
                continue
            variants = [(v, (pname, *_shape(v))) for v in _variants(req, part, self.nodes)]
            usable.append((pname, part, self.part_nodes(pname, part), variants))
        return usable, why or "Resources"

    def part_size(self, pname: str, part: Partition) -> int:
        """How many nodes the partition has, schedulable or not."""
        size = self.sizes.get(pname)
        if size is None:
            size = self.sizes[pname] = len(part.members(self.nodes))
        return size

    def waits(self, key: tuple[object, ...], req: Request, partitions: Mapping[str, Partition],
              default: str) -> list[tuple[str, int, float, bool]] | None:
        """For a job past the depth: what decides, without a look, that it waits.

        One entry per partition (in order): its name, its ``DefaultTime``, the longest
        limit for which a variant with room now collided with a reservation, and
        whether any variant had room now; None if a variant had room and never
        collided, or a partition has a ``MaxTime`` (that filters and caps per job), or
        there is no partition. A job of this key waits if in every partition with a
        variant with room its length is at least that limit: :meth:`try_now` would
        answer no room or held for each of its variants. Valid while ``rev`` is.
        """
        cached = self.prepared_shape.get(key)
        if cached is None:
            cached = self.prepared_shape[key] = self._prepare(req, partitions, default)
        options = cached[0]
        if not options:
            return None
        out = []
        for pname, part, _, variants in options:
            if part.max_time >= 0:
                return None
            top, live = -INF, False
            for _, shape in variants:
                if shape in self.never_now:
                    continue
                c = self.collides.get(shape)
                if c is None:
                    return None
                live = True
                top = max(top, c)
            out.append((pname, part.default_time, top, live))
        return out

    # ---------------------------------------------------------- start now
    def try_now(
        self, req: Request, shape: tuple[object, ...], pname: str, length: float,
    ) -> tuple[tuple[Placement, ...], _Taken] | _Miss:
        """Where ``req`` (of ``shape``) starts now (gang: all its nodes), or why it cannot."""
        if shape in self.never_now:
            return _Miss.NO_ROOM
        if shape in self.collides and self.collides[shape] <= length:
            return _Miss.HELD
        end = self.now + length
        chosen: list[tuple[_Node, Placement, list[int]]] = []
        room = 0  # nodes with room now, reservations ignored
        for name in req.nodelist:
            n = self.model.get(name)
            if n is None or name not in self.names[pname]:
                self.never_now.add(shape)
                self.rev += 1
                return _Miss.NO_ROOM
            got = self._fit(n, req, end)
            if got is _Miss.NO_ROOM:
                self.never_now.add(shape)
                self.rev += 1
                return got
            room += 1
            if got is _Miss.HELD:
                self.collides[shape] = min(self.collides.get(shape, INF), length)
                self.rev += 1
                return got
            chosen.append((n, *got))
        missing = req.nodes - len(chosen)
        options: list[tuple[tuple[int, int, str], _Node, Placement, list[int]]] = []
        if missing > 0:
            taken = set(req.nodelist)
            # scheduler.place's best fit: fewest GPUs left free, then fewest CPUs, then
            # name; buckets come in that order, so once a bucket completes the gang the
            # fuller ones cannot do better (an exclusive job leaves none free anywhere)
            for bucket in self.buckets[pname][req.gpus_per_node:]:
                for n in bucket.values():
                    if n.name in taken:
                        continue
                    got = self._fit(n, req, end)
                    if got is _Miss.NO_ROOM:
                        continue
                    room += 1
                    if got is _Miss.HELD:
                        continue
                    p, v = got
                    options.append(((len(n.free_idx) - len(p.gpus), n.cpus_key, n.name),
                                    n, p, v))
                if len(options) >= missing and not req.exclusive:
                    break
        if len(options) < missing:
            self.rev += 1
            if room < req.nodes:
                self.never_now.add(shape)
                return _Miss.NO_ROOM
            self.collides[shape] = min(self.collides.get(shape, INF), length)
            return _Miss.HELD
        options.sort(key=lambda o: o[0])
        chosen.extend((n, p, v) for _, n, p, v in options[:max(missing, 0)])
        return tuple(p for _, p, _ in chosen), [(n, v) for n, _, v in chosen]

    def _fit(self, n: _Node, req: Request, end: float) -> tuple[Placement, list[int]] | _Miss:
        """Like scheduler.fits, on the model, until ``end``."""
        if n.name in req.exclude or n.name in req.avoid:
            return _Miss.NO_ROOM
        need = n.need(req)
        if need is None or not _ok(n.free, need):
            return _Miss.NO_ROOM
        if req.exclusive:
            gpus = tuple(n.free_idx)
        else:
            want = n.types[req.gpu_type] if req.gpu_type and need[4] else -1
            pool = n.free_idx if want < 0 else [i for i in n.free_idx if n.gtype[i] == want]
            gpus = tuple(pool[: req.gpus_per_node])
        v = n.vec(need[0], need[1], _BIG if req.exclusive else 1, gpus)
        if req.exclusive:
            v[_G:] = n.total_gpus
        if n.holds:
            for t, a in n.points(self.now)[1:]:
                if t >= end:
                    break
                if not _covers(a, v):
                    return _Miss.HELD
        return Placement(n.name, need[0], need[1], gpus), v

    def start(self, taken: _Taken, placements: tuple[Placement, ...], length: float) -> None:
        saved = self.saved
        for (n, v), p in zip(taken, placements, strict=True):
            if saved is not None and n not in saved:
                saved[n] = n.snapshot()
            before = len(n.free_idx)
            for d, x in enumerate(v):
                n.free[d] -= x
            n.free_idx = [i for i in n.free_idx if i not in p.gpus]
            n.cpus_key -= p.cpus
            n.touch()
            if length != INF:
                n.add(self.now + length, v)
            # (the partitions looked at so far with this node: their buckets; the
            # others are built from the model when first looked at)
            for pname, names in self.names.items():
                if n.name not in names:
                    continue
                buckets = self.buckets[pname]
                del buckets[before][n.name]
                buckets[len(n.free_idx)][n.name] = n
            self.log.append(n)

    # ---------------------------------------------------------- reservations
    def earliest(
        self, req: Request, shape: tuple[object, ...], pname: str, members: list[_Node],
        length: float,
    ) -> tuple[float, _Taken] | None:
        """The earliest start within the window at which ``req.nodes`` nodes are all free
        for ``length``, and what it would take on each; None if there is none."""
        if shape in self.no_slot and self.no_slot[shape] <= length:
            return None
        # (start, last start, node) of every way a node can host it
        cands: list[tuple[float, float, str]] = []
        if req.nodelist:
            for n in members:
                need = self._need_ever(n, req)
                if need is not None:
                    cands.extend((lo, hi, n.name) for lo, hi in _starts(
                        _runs(n.points(self.now), need, self.horizon), length))
            found = self._sweep(sorted(cands), req.nodes, set(req.nodelist))
        else:
            per_node = (pname, *_node_shape(req))  # what one node must offer
            ready = self._ready(per_node, req, members)
            found = self._sweep_ready(ready.order, self._held(per_node, req, length), req.nodes)
        if found is None:
            self.no_slot[shape] = min(self.no_slot.get(shape, INF), length)
            return None
        t, names = found
        taken: _Taken = []
        for name in names:
            n = self.model[name]
            need = n.need(req)
            assert need is not None
            prof = n.points(self.now)
            k = bisect.bisect_right(prof, t, key=lambda p: p[0]) - 1
            taken.append((n, n.take(req, need, prof[max(k, 0)][1])))
        return t, taken

    def _need_ever(self, n: _Node, req: Request) -> _Need | None:
        """What ``req`` needs on ``n``, or None if ``n`` can never run it."""
        if n.name in req.exclude or n.name in req.avoid:
            return None
        need = n.need(req)
        if need is None or not _ok(n.cap, need):
            return None
        return need

    def _ready(self, per_node: tuple[object, ...], req: Request,
               members: list[_Node]) -> _Ready:
        """The ready index for ``per_node``, brought up to date."""
        ready = self.ready.get(per_node)
        if ready is None:
            ready = _Ready(len(self.log), {}, [])
            self.ready[per_node] = ready
            changed: Iterable[_Node] = members
        else:
            names = self.names[str(per_node[0])]
            changed = [n for n in dict.fromkeys(self.log[ready.seen:]) if n.name in names]
            ready.seen = len(self.log)
            for n in changed:
                old = ready.at.pop(n.name, None)
                if old is not None:
                    del ready.order[bisect.bisect_left(ready.order, (old, n.name))]
        # the common request needs the same on every node: work it out once
        same = not (req.exclusive or req.mem_whole_node or (req.gpu_type and req.gpus_per_node))
        need0: _Need = (req.cpus_per_node, req.mem_per_node_mb, 1, -1, req.gpus_per_node)
        skip = req.exclude or req.avoid
        added: list[tuple[float, str]] = []
        for n in changed:
            if n.holds or (skip and (n.name in req.exclude or n.name in req.avoid)):
                continue
            need = need0 if same else n.need(req)
            if need is None:
                continue
            # (no capacity check needed: nothing fits a profile that never offers enough)
            k = n.ready_point(need, self.now)
            t = (n.profile or n.points(self.now))[k][0] if k >= 0 else None
            if t is not None and t <= self.horizon:
                ready.at[n.name] = t
                added.append((t, n.name))
        if len(added) > 8:
            ready.order.extend(added)
            ready.order.sort()
        else:
            for item in added:
                bisect.insort(ready.order, item)
        return ready

    def _held(self, per_node: tuple[object, ...], req: Request,
              length: float) -> list[tuple[float, float, str]]:
        """``(lo, hi, node)`` start windows on the partition's nodes with holds, sorted."""
        # Limits are nearly unique per job: the spans are indexed per shape only, and the
        # windows for ``length`` filtered out of them. Sorting (lo, end, node) sorts
        # (lo, end - length, node) too, so the result is what sorting the windows gives.
        held = self.held_index.get(per_node)
        if held is None:
            held = self.held_index[per_node] = _Held(len(self.log), {}, None)
            changed: Iterable[_Node] = self.held
        else:
            changed = dict.fromkeys(self.log[held.seen:])
            held.seen = len(self.log)
        names = self.names[str(per_node[0])]
        renewed: list[str] = []  # nodes whose spans changed
        for n in changed:
            if n.holds and n.name in names:
                runs = self._runs(per_node, n, req)
                if held.windows.get(n.name) != runs:
                    held.windows[n.name] = runs
                    renewed.append(n.name)
        if held.cands is None:
            held.cands = sorted((lo, end, name) for name, found in held.windows.items()
                                for lo, end in found)
        elif renewed:
            # the others' entries as they were, the renewed nodes' anew: two sorted runs,
            # which the sort merges
            drop = set(renewed)
            cands = [c for c in held.cands if c[2] not in drop]
            cands.extend(sorted((lo, end, name) for name in renewed
                                for lo, end in held.windows[name]))
            cands.sort()
            held.cands = cands
        if length == INF:  # only spans without an end take an unlimited job
            return [(lo, INF, name) for lo, end, name in held.cands if end == INF]
        # (end - length is inf for an endless span: its window has no end either)
        return [(lo, end - length, name) for lo, end, name in held.cands if end - length >= lo]

    def _runs(self, per_node: tuple[object, ...], n: _Node,
              req: Request) -> list[tuple[float, float]]:
        """:func:`_runs` for a node with holds, cached until the node changes."""
        key = (*per_node, n.name)
        got = self.runs.get(key)
        if got is not None and got[0] == n.version:
            return got[1]
        need = self._need_ever(n, req)
        found = [] if need is None else _runs(n.points(self.now), need, self.horizon)
        self.runs[key] = (n.version, found)
        return found

    def _sweep(self, cands: list[tuple[float, float, str]], count: int,
               required: set[str]) -> tuple[float, list[str]] | None:
        """The first start time at which ``count`` nodes (``required`` among them) can
        all host the job, and which (the ones that became ready last, to leave the
        earlier ones for backfill)."""
        active: dict[str, tuple[float, float]] = {}
        ends: list[tuple[float, str]] = []
        i = 0
        while i < len(cands):
            t = cands[i][0]
            while i < len(cands) and cands[i][0] == t:
                lo, hi, name = cands[i]
                active[name] = (lo, hi)
                heapq.heappush(ends, (hi, name))
                i += 1
            while ends and ends[0][0] < t:
                hi, name = heapq.heappop(ends)
                if name in active and active[name][1] == hi:
                    del active[name]
            if len(active) >= count and required <= active.keys():
                best = sorted(active, key=lambda m: (m not in required, -active[m][0], m))
                return t, best[: max(count, len(required))]
        return None

    def _sweep_ready(self, order: list[tuple[float, str]], held: list[tuple[float, float, str]],
                     count: int) -> tuple[float, list[str]] | None:
        """Like :meth:`_sweep`, with most nodes ready for good from a sorted time on."""
        held_nodes = len({name for _, _, name in held})
        if len(order) + held_nodes < count:
            return None
        skip = max(0, count - held_nodes - 1)  # fewer ready nodes than this cannot do
        active: dict[str, tuple[float, float]] = {}
        ends: list[tuple[float, str]] = []
        i = 0
        # the candidate times in ascending order: the starts of the windows and the ready
        # times from order[skip:], merged as the sweep goes (it mostly stops early).
        # A time met twice is looked at once: a second look would find the same.
        k, nh, no = skip, len(held), len(order)
        while i < nh or k < no:
            if k < no and (i >= nh or order[k][0] <= held[i][0]):
                t = order[k][0]
                k += 1
            else:
                t = held[i][0]  # taken in by the loop below
            if t > self.horizon:
                break
            while i < nh and held[i][0] <= t:
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

    def reserve(self, taken: _Taken, start: float, length: float) -> None:
        saved = self.saved
        for n, v in taken:
            if saved is not None and n not in saved:
                saved[n] = n.snapshot()
            n.add(start, [-x for x in v])
            if length != INF:
                n.add(start + length, v)
            if not n.holds:
                self.held.append(n)
            n.holds += 1
            self.log.append(n)


def _ready_point(prof: list[tuple[float, list[int]]], need: _Need) -> int:
    """Where in ``prof`` a node without holds (it only gains over time) can take
    ``need`` for good from: the point's index, or -1 for never."""
    cpus, mem, slots, gt, g = need
    prev = prof[0][0] - 1.0
    found = -1
    # newest first: the earliest of the points that fit, back from the end
    for k in range(len(prof) - 1, -1, -1):
        t, a = prof[k]
        if t == prev:
            continue  # the moment "now" superseded by changes dated now
        prev = t
        if a[_C] < cpus or a[_M] < mem or a[_S] < slots:
            break
        if g and (a[_G + gt] if gt >= 0 else sum(a[_G:])) < g:
            break
        found = k
    return found



def _runs(
    prof: list[tuple[float, list[int]]], need: _Need, horizon: float,
) -> list[tuple[float, float]]:
    """Maximal spans ``[start, end)`` during which ``need`` fits, starting by ``horizon``."""
    out: list[tuple[float, float]] = []
    run: float | None = None
    last = len(prof) - 1
    for k, (t, a) in enumerate(prof):
        if k < last and prof[k + 1][0] == t:
            continue  # zero-length: "now" before the changes dated now
        if _ok(a, need):
            if run is None:
                if t > horizon:
                    break
                run = t
        elif run is not None:
            out.append((run, t))
            run = None
        elif t > horizon:
            break
    if run is not None:
        out.append((run, INF))
    return out


def _starts(runs: list[tuple[float, float]], length: float) -> list[tuple[float, float]]:
    """Intervals ``[lo, hi]`` of start times at which a job of ``length`` fits in ``runs``."""
    out: list[tuple[float, float]] = []
    for lo, end in runs:
        hi = INF if end == INF else end - length
        if hi >= lo:
            out.append((lo, hi))
    return out


def _length(req: Request, part: Partition) -> float:
    limit = effective_time_limit(req, part)
    return INF if limit < 0 else float(limit)


def _prepare_key(r: Request) -> tuple[object, ...]:
    """What :meth:`_Planner.prepare` caches its per-shape work under."""
    return (r.partitions, *_shape(r))


def _shape(r: Request) -> tuple[object, ...]:
    return (r.nodes, r.nodelist, *_node_shape(r))


def _node_shape(r: Request) -> tuple[object, ...]:
    return (
        r.cpus_per_node, r.mem_per_node_mb, r.mem_whole_node, r.gpus_per_node, r.gpu_type,
        r.exclude, r.avoid, r.exclusive,
    )


def plan(
    pending: Iterable[PendingJob | Job],
    nodes: Mapping[str, Node],
    partitions: Mapping[str, Partition],
    default_partition: str,
    ends: Mapping[int, float],
    now: float,
    cfg: BackfillConfig | None = None,
    gate: Gate | None = None,
    keys: dict[int, tuple[Request, tuple[object, ...]]] | None = None,
    models: Models | None = None,
) -> BackfillPlan:
    """One backfill pass over ``pending`` (in priority order); ``nodes`` is not changed.

    Args:
        pending: the jobs to consider, highest priority first (held jobs left out).
        nodes: the inventory with current allocations.
        partitions: partitions by name; a job without partitions uses
            ``default_partition``.
        ends: expected end time of each job holding resources (see
            :func:`expected_ends`); a job missing here is taken to run forever.
        now: the current time.
        cfg: depth and window.
        gate: QOS/account limits: a job it refuses waits with its reason, gets no
            reservation, and is told about the jobs that start.
        keys: a memo kept by the caller across passes: job id -> (its request, the
            request's planning key). A job's entry is used while its request is the
            same object (requests are immutable) and (re)written otherwise.
        models: node models kept by the caller across passes (see :class:`Models`).
    """
    cfg = cfg or BackfillConfig()
    pl = _Planner(nodes, partitions, ends, now, cfg, models)
    try:
        return _walk(pl, pending, partitions, default_partition, cfg, gate, keys)
    finally:
        for n, state in (pl.saved or {}).items():
            n.restore(state)  # the kept model is the node's again (Models)


def _walk(
    pl: _Planner,
    pending: Iterable[PendingJob | Job],
    partitions: Mapping[str, Partition],
    default_partition: str,
    cfg: BackfillConfig,
    gate: Gate | None,
    keys: dict[int, tuple[Request, tuple[object, ...]]] | None,
) -> BackfillPlan:
    """:func:`plan`'s walk through the queue, on the planner's model."""
    never_now = pl.never_now
    starts: list[Decision] = []
    reservations: dict[int, Reservation] = {}
    reasons: dict[int, str] = {}
    backfilled: set[int] = set()
    blocked: set[str] = set()
    tested = 0
    depth = cfg.depth
    # Past the depth no job gets a reservation: a job can only start now. Free
    # resources only shrink during a pass and holds only grow, so a variant that found
    # no room now (never_now) finds none later, and one that collided with reservations
    # for a limit L collides for any longer limit. A job whose every variant is one of
    # these waits without a look (see _Planner.waits): for Priority if a variant had
    # room (it would delay a reservation), else as the first blocked job of its
    # partitions (Resources) or not (Priority).
    waits: dict[tuple[object, ...], tuple[int, list[tuple[str, int, float, bool]] | None]] = {}
    past = tested >= depth and _SKIP_DEAD  # the short cut applies from here on
    for job in pending:
        req = job.request
        jid = job.job_id
        if keys is None:
            key = _prepare_key(req)
        else:
            memo = keys.get(jid)
            if memo is not None and memo[0] is req:
                key = memo[1]
            else:
                key = _prepare_key(req)
                keys[jid] = (req, key)
        if past:
            got = waits.get(key)
            if got is None or got[0] != pl.rev:
                got = waits[key] = (pl.rev, pl.waits(key, req, partitions, default_partition))
            view = got[1]
            if view is not None:
                tl = req.time_limit
                held = False
                for _, dt, top, live in view:
                    if live:
                        limit = dt if tl == 0 else tl
                        if (INF if limit < 0 else float(limit)) < top:
                            break  # a variant might fit: the full look
                        held = True
                else:
                    if gate is not None:
                        why = gate.check(jid)
                        if why:
                            reasons[jid] = why
                            continue
                    if held:
                        reasons[jid] = "Priority"
                    elif len(view) == 1:
                        reasons[jid] = ("Priority" if view[0][0] in blocked
                                        else "Resources")
                    else:
                        reasons[jid] = ("Resources" if blocked.isdisjoint(
                            v[0] for v in view) else "Priority")
                    for v in view:
                        blocked.add(v[0])
                    continue
        usable, why = pl.prepare(req, partitions, default_partition, key)
        if not usable:
            reasons[jid] = why
            continue
        if gate is not None:
            why = gate.check(jid)
            if why:
                reasons[jid] = why
                continue
        delays = False
        started = False
        for opt in usable:
            for variant, shape in opt.variants:
                if shape in never_now:
                    continue  # what try_now answers first: no room now, nothing else
                got = pl.try_now(variant, shape, opt.partition, opt.length)
                if got is _Miss.HELD:
                    delays = True
                elif not isinstance(got, _Miss):
                    placements, taken = got
                    pl.start(taken, placements, opt.length)
                    starts.append(Decision(jid, opt.partition, placements))
                    if gate is not None:
                        gate.started(jid)
                    if blocked:
                        backfilled.add(jid)
                    started = True
                    break
            if started:
                break
        if started:
            continue
        best: tuple[float, _Option, _Taken] | None = None
        if tested < depth:
            tested += 1
            past = tested >= depth and _SKIP_DEAD
            for opt in usable:
                variant, shape = opt.variants[-1]
                found = pl.earliest(variant, shape, opt.partition, opt.members, opt.length)
                if found is not None and (best is None or found[0] < best[0]):
                    best = (found[0], opt, found[1])
        if best is not None:
            t, opt, taken = best
            pl.reserve(taken, t, opt.length)
            reservations[jid] = Reservation(
                jid, opt.partition, t, t + opt.length,
                tuple(sorted(n.name for n, _ in taken)),
            )
        if delays:
            reasons[jid] = "Priority"
        elif best is not None or (usable[0].partition not in blocked if len(usable) == 1
                                  else blocked.isdisjoint(opt.partition for opt in usable)):
            reasons[jid] = "Resources"
        else:
            reasons[jid] = "Priority"
        for opt in usable:
            blocked.add(opt.partition)
    return BackfillPlan(tuple(starts), reservations, reasons, frozenset(backfilled))


def _variants(req: Request, part: Partition, nodes: Mapping[str, Node]) -> list[Request]:
    """The requests to try in turn (the last one is planned for when none starts).

    Avoiding the nodes that failed a job is a preference, as in the scheduler: they
    are used only when the other nodes could never run it.
    """
    if part.exclusive and not req.exclusive:
        req = dataclasses.replace(req, exclusive=True)  # OverSubscribe=EXCLUSIVE
    if not req.avoid:
        return [req]
    strict = dataclasses.replace(req, exclude=req.exclude + req.avoid, avoid=())
    if feasible(strict, part, dict(nodes)):
        return [strict]
    return [strict, dataclasses.replace(req, avoid=())]


def schedule_backfill(
    pending: Iterable[Job],
    nodes: dict[str, Node],
    partitions: Mapping[str, Partition],
    default_partition: str,
    ends: Mapping[int, float],
    now: float,
    cfg: BackfillConfig | None = None,
    gate: Gate | None = None,
    keys: dict[int, tuple[Request, tuple[object, ...]]] | None = None,
    unheld: bool = False,
    models: Models | None = None,
) -> tuple[list[Decision], dict[int, str], BackfillPlan]:
    """Drop-in for :func:`gsched.controller.scheduler.schedule` with backfill.

    Same contract (decisions already applied to ``nodes``; a reason for every job
    left waiting; held jobs get their hold reason) plus the plan with reservations.
    ``keys``, ``models``: see :func:`plan`. ``unheld``: the caller left held jobs out of
    ``pending`` already (``Cluster.pending_order`` does), so it is not copied to
    drop them.
    """
    held: dict[int, str] = {}
    todo: Iterable[PendingJob | Job] = pending
    if not unheld:
        kept: list[PendingJob | Job] = []
        for job in pending:
            if job.hold:
                held[job.job_id] = "JobHeldUser" if job.reason != "JobHeldAdmin" else job.reason
            else:
                kept.append(job)  # plan reads only job_id and request
        todo = kept
    result = plan(todo, nodes, partitions, default_partition, ends, now, cfg, gate, keys,
                  models)
    for d in result.start_now:
        for p in d.placements:
            nodes[p.node].allocate(d.job_id, p.cpus, p.mem_mb, p.gpus)
    reasons = {**held, **result.reasons} if held else dict(result.reasons)
    return list(result.start_now), reasons, result
