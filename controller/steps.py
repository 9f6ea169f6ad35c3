"""Job step layout (pure): which nodes of an allocation run which task ranks.

Block distribution, as srun's default: ranks fill the first node, then the next;
when tasks do not divide evenly the first nodes get one more.
"""

from __future__ import annotations

import dataclasses
import math

from gsched.controller.errors import InvalidRequest

__all__ = ["Layout", "StepTask", "layout", "tasks_per_node_string"]


@dataclasses.dataclass(frozen=True)
class StepTask:
    rank: int
    local_rank: int
    node_index: int
    node: str


@dataclasses.dataclass(frozen=True)
class Layout:
    nodes: tuple[str, ...]
    tasks: tuple[StepTask, ...]

    @property
    def counts(self) -> list[int]:
        out = [0] * len(self.nodes)
        for t in self.tasks:
            out[t.node_index] += 1
        return out


def layout(
    alloc: list[str],
    *,
    nodes: int = 0,
    ntasks: int = 0,
    ntasks_per_node: int = 0,
    nodelist: list[str] | None = None,
    exclude: list[str] | None = None,
    job_ntasks: int = 0,
) -> Layout:
    """Place a step on ``alloc`` (the job's nodes, in allocation order).

    Raises:
        InvalidRequest: the step asks for nodes or tasks the allocation does not have.
    """
    excluded = set(exclude or ())
    usable = [n for n in alloc if n not in excluded]
    if nodelist:
        missing = [n for n in nodelist if n not in alloc]
        if missing:
            raise InvalidRequest(
                f"Requested node configuration is not available: {','.join(missing)} "
                "not in the job's allocation"
            )
        chosen = [n for n in alloc if n in set(nodelist) and n not in excluded]
    else:
        chosen = usable
    if nodes:
        if nodes > len(chosen):
            raise InvalidRequest(
                f"Requested node configuration is not available: {nodes} nodes, "
                f"the allocation has {len(chosen)}"
            )
        chosen = chosen[:nodes]
    elif ntasks and not nodelist and not ntasks_per_node:
        chosen = chosen[: max(1, min(len(chosen), ntasks))]
    if not chosen:
        raise InvalidRequest("Requested node configuration is not available")
    if ntasks_per_node:
        total = ntasks or ntasks_per_node * len(chosen)
    elif ntasks:
        total = ntasks
    elif not nodes and not nodelist and job_ntasks:
        total = max(job_ntasks, len(chosen))
    else:
        total = len(chosen)
    if total < len(chosen):
        chosen = chosen[:total]
    base, extra = divmod(total, len(chosen))
    if ntasks_per_node and math.ceil(total / len(chosen)) > ntasks_per_node:
        raise InvalidRequest("Requested node configuration is not available: too many tasks")
    tasks: list[StepTask] = []
    rank = 0
    for i, node in enumerate(chosen):
        count = base + (1 if i < extra else 0)
        for local in range(count):
            tasks.append(StepTask(rank, local, i, node))
            rank += 1
    return Layout(tuple(chosen), tuple(tasks))


def tasks_per_node_string(counts: list[int]) -> str:
    """SLURM's compressed form: ``[2, 2, 1]`` -> ``2(x2),1``."""
    parts: list[str] = []
    i = 0
    while i < len(counts):
        j = i
        while j + 1 < len(counts) and counts[j + 1] == counts[i]:
            j += 1
        run = j - i + 1
        parts.append(f"{counts[i]}(x{run})" if run > 1 else str(counts[i]))
        i = j + 1
    return ",".join(parts)
