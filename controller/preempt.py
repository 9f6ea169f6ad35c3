"""Which running jobs to preempt for a pending one (pure: no I/O).

A pending job whose QOS lists other QOS in ``Preempt=`` may start by preempting
running jobs of those QOS when nothing else lets it start. :func:`choose_victims`
picks the fewest, lowest-priority jobs that make room:

1. candidates in order: lowest priority first, then the most recently started (the
   least work lost), then the highest job id;
2. take them away one by one until the job fits (gang: all its nodes at once);
3. give back every victim that turned out not to be needed, trying the most valuable
   (highest priority) first, so no job is preempted for nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping

from gsched.controller.jobs import Request
from gsched.controller.nodes import Node
from gsched.controller.scheduler import Partition, fits, place

__all__ = ["Candidate", "choose_victims"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A running job that may be preempted, and where it runs."""

    job_id: int
    priority: int
    start_time: float
    nodes: tuple[str, ...]


def choose_victims(
    req: Request, part: Partition, nodes: Mapping[str, Node], candidates: Iterable[Candidate],
) -> list[int] | None:
    """The job ids to preempt so that ``req`` starts in ``part``, or None if no set does.

    ``nodes`` is not changed. Returns ``[]`` when the job fits without preempting.
    Cost: one per-node fit check per candidate node touched, and a full placement only
    when enough nodes could host the job (so thousands of candidates stay cheap).
    """
    members = part.members(dict(nodes))
    sim = {n.name: _copy(n) for n in members}
    one = dataclasses.replace(req, exclusive=True) if part.exclusive else req
    fitting = {name for name, n in sim.items() if fits(one, n) is not None}
    sub = Partition(part.name, tuple(sim), state=part.state, exclusive=part.exclusive)

    def starts() -> bool:
        if len(fitting) < req.nodes or not all(n in fitting for n in req.nodelist):
            return False
        return place(req, sub, sim) is not None

    def refresh(names: Iterable[str]) -> None:
        for name in names:
            if fits(one, sim[name]) is not None:
                fitting.add(name)
            else:
                fitting.discard(name)

    if starts():
        return []
    order = sorted(
        (c for c in candidates if any(n in sim for n in c.nodes)),
        key=lambda c: (c.priority, -c.start_time, -c.job_id),
    )
    taken: list[tuple[Candidate, dict[str, tuple[int, int, tuple[int, ...]]]]] = []
    for c in order:
        held = {n: sim[n].jobs.pop(c.job_id) for n in c.nodes
                if n in sim and c.job_id in sim[n].jobs}
        taken.append((c, held))
        refresh(held)
        if starts():
            break
    else:
        return None
    victims = []
    for c, held in sorted(taken, key=lambda t: (-t[0].priority, t[0].start_time)):
        for n, alloc in held.items():
            sim[n].jobs[c.job_id] = alloc
        refresh(held)
        if not starts():
            for n in held:
                sim[n].jobs.pop(c.job_id, None)
            refresh(held)
            victims.append(c.job_id)
    return sorted(victims)


def _copy(node: Node) -> Node:
    n = copy.copy(node)
    n.jobs = dict(node.jobs)
    return n
