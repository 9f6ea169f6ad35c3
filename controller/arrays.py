"""Job arrays (``--array``), kept compact like SLURM's (pure: no I/O).

An array of N tasks is ONE pending record (the *meta* job, whose id is the array
job id ``A``) holding the set of task ids not started yet, as ranges. When the
scheduler starts a task, the task is split off into its own job (a new job id,
``array_job_id=A``, ``array_task_id=a``); the last task left takes over the meta
record itself, so ``A`` ends up being a task too (SLURM does the same). 10,000
pending tasks therefore cost one row and one entry in the queue, not 10,000.

:class:`TaskSet` is the pending remainder: a list of ``(first, last, step)``
ranges, cheap to pop from the front and to print (``0-99:2,101``).
:class:`ArrayInfo` is what the controller counts per array (throttle and
whole-array dependencies) without scanning the tasks.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator

__all__ = ["ArrayInfo", "ArraySpecError", "TaskSet", "parse_array"]

INVALID_ARRAY = "Invalid job array specification"
_ITEM_RE = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?\Z")


class ArraySpecError(ValueError):
    """A bad ``--array`` value or one over MaxArraySize."""


class TaskSet:
    """Sorted, disjoint task ids as ``[first, last, step]`` ranges."""

    __slots__ = ("_count", "ranges")

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self.ranges: list[list[int]] = [list(r) for r in ranges]
        self._count = sum((r[1] - r[0]) // r[2] + 1 for r in self.ranges)

    @classmethod
    def of(cls, ids: Iterable[int]) -> TaskSet:
        """Compress ids: one stepped range when they are one progression, else runs."""
        ordered = sorted(set(ids))
        if len(ordered) >= 3:
            step = ordered[1] - ordered[0]
            if step > 1 and all(b - a == step for a, b in itertools.pairwise(ordered)):
                return cls([[ordered[0], ordered[-1], step]])
        out: list[list[int]] = []
        for i in ordered:
            if out and i == out[-1][1] + 1:
                out[-1][1] = i
            else:
                out.append([i, i, 1])
        return cls(out)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for lo, hi, step in self.ranges:
            yield from range(lo, hi + 1, step)

    def __contains__(self, task: object) -> bool:
        if not isinstance(task, int):
            return False
        for lo, hi, step in self.ranges:
            if lo <= task <= hi and (task - lo) % step == 0:
                return True
        return False

    def first(self) -> int:
        return self.ranges[0][0]

    @property
    def min(self) -> int:
        return self.ranges[0][0]

    @property
    def max(self) -> int:
        return self.ranges[-1][1]

    def pop_first(self) -> int:
        r = self.ranges[0]
        task = r[0]
        if r[0] == r[1]:
            del self.ranges[0]
        else:
            r[0] += r[2]
        self._count -= 1
        return task

    def remove(self, task: int) -> bool:
        for n, (lo, hi, step) in enumerate(self.ranges):
            if lo <= task <= hi and (task - lo) % step == 0:
                parts = []
                if task > lo:
                    parts.append([lo, task - step, step])
                if task < hi:
                    parts.append([task + step, hi, step])
                self.ranges[n : n + 1] = parts
                self._count -= 1
                return True
        return False

    def __str__(self) -> str:
        out = []
        for lo, hi, step in self.ranges:
            if lo == hi:
                out.append(str(lo))
            elif step == 1:
                out.append(f"{lo}-{hi}")
            elif hi == lo + step:
                out.append(f"{lo},{hi}")
            else:
                out.append(f"{lo}-{hi}:{step}")
        return ",".join(out)

    def to_json(self) -> list[list[int]]:
        return [list(r) for r in self.ranges]


def parse_array(text: str, max_array_size: int = 1001) -> tuple[TaskSet, int]:
    """``--array`` -> (task ids, max running tasks; 0 = no throttle).

    Accepts ``0-99``, ``1,3,5-7``, ``0-15:4`` and a ``%N`` suffix. Task ids must be
    below ``max_array_size`` (SLURM's MaxArraySize).

    Raises:
        ArraySpecError: "Invalid job array specification".
    """
    body, pct, limit = text.strip().partition("%")
    throttle = 0
    if pct:
        if not limit.isdigit():
            raise ArraySpecError(INVALID_ARRAY)
        throttle = int(limit)
    ids: set[int] = set()
    if not body:
        raise ArraySpecError(INVALID_ARRAY)
    for item in body.split(","):
        m = _ITEM_RE.match(item)
        if not m:
            raise ArraySpecError(INVALID_ARRAY)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        step = int(m.group(3)) if m.group(3) is not None else 1
        if hi < lo or step <= 0 or hi >= max_array_size:
            raise ArraySpecError(INVALID_ARRAY)
        ids.update(range(lo, hi + 1, step))
    return TaskSet.of(ids), throttle


@dataclasses.dataclass
class ArrayInfo:
    """Per-array counts, kept as tasks change state (never recomputed by a scan).

    Attributes:
        members: task id -> job id of every task split off and still in memory
            (the tasks not split off yet are the remainder record's ``array_tasks``).
        running: split tasks RUNNING or COMPLETING (the ``%N`` throttle counts these).
        waiting: split tasks PENDING or REQUEUED.
        failed: tasks that ended in a final state other than COMPLETED.
        last_start: latest task start time.
        started_any: some task has started.
    """

    members: dict[int, int] = dataclasses.field(default_factory=dict)
    running: int = 0
    waiting: int = 0
    failed: int = 0
    last_start: float = 0.0
    started_any: bool = False
