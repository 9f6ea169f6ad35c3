"""Node and GPU inventory with allocations (pure: no I/O).

A node's displayed state (SLURM's IDLE/MIXED/ALLOCATED/DRAINING/DRAINED/DOWN/UNKNOWN)
is derived from three facts kept here: whether its agent is up, whether an operator
drained it, and what is allocated on it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Gpu", "Node"]


@dataclasses.dataclass
class Gpu:
    index: int
    type: str = ""
    uuid: str = ""
    name: str = ""
    memory_mb: int = 0
    healthy: bool = True
    reason: str = ""
    temperature_c: int = 0
    utilization: int = 0


@dataclasses.dataclass
class Node:
    name: str
    cpus: int = 0
    mem_mb: int = 0
    gpus: list[Gpu] = dataclasses.field(default_factory=list)
    up: bool = False  # agent registered and answering
    ever_registered: bool = False
    drain: bool = False
    down_reason: str = ""  # non-empty: DOWN (not responding, operator set DOWN)
    reason: str = ""  # operator's drain reason
    reason_time: float = 0.0
    reason_user: str = ""
    connected: bool = False
    suspect: bool = False  # silent past suspect_after: no new jobs, not yet DOWN
    last_seen: float = 0.0
    registered_time: float = 0.0
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # hostname, address, ...
    # infrastructure failures that ended jobs here: [time, tag, [job ids], detail]
    failures: list[list[Any]] = dataclasses.field(default_factory=list)
    # allocations: job id -> (cpus, mem_mb, gpu indices)
    jobs: dict[int, tuple[int, int, tuple[int, ...]]] = dataclasses.field(default_factory=dict)

    # ------------------------------------------------------------ capacity
    @property
    def cpus_alloc(self) -> int:
        return sum(c for c, _, _ in self.jobs.values())

    @property
    def mem_alloc(self) -> int:
        return sum(m for _, m, _ in self.jobs.values())

    @property
    def gpus_used(self) -> set[int]:
        used: set[int] = set()
        for _, _, g in self.jobs.values():
            used.update(g)
        return used

    def free_gpus(self, gpu_type: str = "") -> list[int]:
        used = self.gpus_used
        return [
            g.index
            for g in self.gpus
            if g.healthy and g.index not in used and (not gpu_type or g.type == gpu_type)
        ]

    def gpu_count(self, gpu_type: str = "") -> int:
        return sum(1 for g in self.gpus if not gpu_type or g.type == gpu_type)

    @property
    def schedulable(self) -> bool:
        return (
            self.up and self.connected and not self.suspect and not self.drain
            and not self.down_reason
        )

    # ------------------------------------------------------------ state
    @property
    def state(self) -> str:
        if self.down_reason or (not self.up and self.ever_registered):
            return "DOWN"
        if not self.ever_registered:
            return "UNKNOWN"
        busy = bool(self.jobs)
        if self.drain:
            return "DRAINING" if busy else "DRAINED"
        if not busy:
            return "IDLE"
        full = self.cpus_alloc >= self.cpus or (
            self.gpus and len(self.gpus_used) >= len(self.gpus)
        )
        return "ALLOCATED" if full else "MIXED"

    @property
    def shown_reason(self) -> str:
        return self.down_reason or self.reason

    def allocate(self, job_id: int, cpus: int, mem_mb: int, gpus: tuple[int, ...]) -> None:
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} already allocated on {self.name}")
        if self.gpus_used & set(gpus):
            raise ValueError(f"GPU double allocation on {self.name}: {gpus}")
        self.jobs[job_id] = (cpus, mem_mb, tuple(gpus))

    def release(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)

    def validate(self) -> None:
        """Invariants: no GPU allocated twice; allocations within capacity."""
        seen: set[int] = set()
        for job_id, (_, _, gpus) in self.jobs.items():
            dup = seen & set(gpus)
            assert not dup, f"{self.name}: GPUs {dup} allocated twice (job {job_id})"
            seen.update(gpus)
        if self.cpus:
            assert self.cpus_alloc <= self.cpus, f"{self.name}: CPUs over-allocated"
        if self.mem_mb:
            assert self.mem_alloc <= self.mem_mb, f"{self.name}: memory over-allocated"
