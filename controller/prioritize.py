"""Priority, fair-share usage and limits, wired for the Cluster (pure: no I/O).

:class:`Prioritizer` is the state the scheduling policy keeps besides jobs and
nodes: the :class:`~gsched.controller.priority.UsageLedger` (fair-share usage), how far
each running job has been charged, the :class:`~gsched.controller.policy.Policy`
(accounts, QOS) and the normalisers of the last priority computation.

- Usage is charged as jobs run (:meth:`Prioritizer.charge_running`, every
  ``calc_period`` seconds from the Cluster's tick) and when an attempt ends
  (:meth:`Prioritizer.charge`), in TRES-seconds times the QOS ``UsageFactor``.
- Priorities of all pending jobs are recomputed every ``calc_period`` seconds
  (:meth:`Prioritizer.recompute`, ~45 ms for 10,000 jobs); a job submitted in between
  gets its priority from the last computation's fair-share table and normalisers.
- ``dirty`` says the ledger or policy changed and must be written in the next commit
  (the shell writes :meth:`Prioritizer.usage_snapshot` and the policy with the jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from gsched.controller.jobs import Job
from gsched.controller.nodes import Node
from gsched.controller.policy import Held, LimitGate, Policy
from gsched.controller.priority import (
    ClusterView,
    Factors,
    JobView,
    PriorityConfig,
    UsageLedger,
    rank,
    tres_seconds,
)
from gsched.controller.scheduler import Partition

__all__ = ["JobGate", "Prioritizer", "job_gpus", "job_tres"]

logger = logging.getLogger(__name__)


def job_tres(job: Job) -> tuple[int, int, int]:
    """(cpus, mem_mb, gpus) a job holds (allocated) or asks for (pending)."""
    if job.alloc:
        cpus = sum(int(a.get("cpus", 0)) for a in job.alloc.values())
        mem = sum(int(a.get("mem_mb", 0)) for a in job.alloc.values())
        gpus = sum(len(a.get("gpus", ())) for a in job.alloc.values())
        return cpus, mem, gpus
    r = job.request
    return r.cpus_per_node * r.nodes, r.mem_per_node_mb * r.nodes, r.gpus_per_node * r.nodes


def job_gpus(job: Job) -> int:
    return job_tres(job)[2]


class Prioritizer:
    """Fair-share ledger, policy and priority computation for one Cluster."""

    def __init__(
        self, cfg: PriorityConfig | None = None, policy: Policy | None = None,
        calc_period: float = 5.0,
    ) -> None:
        self.cfg = cfg or PriorityConfig()
        self.policy = policy or Policy()
        self.ledger = UsageLedger(self.cfg, self.policy.share_tree())
        self.calc_period = calc_period
        self.charged: dict[int, float] = {}  # running job -> charged up to this time
        self.last_calc = -1e18
        self.dirty = False
        self.policy_dirty = False
        self.factors: dict[int, Factors] = {}  # pending job -> factors (last computation)
        self._view = ClusterView()
        self._fs: dict[tuple[str, str], float] = {}
        self._policy_version = -1

    # ------------------------------------------------------------ persistence
    def usage_snapshot(self) -> dict[str, Any]:
        return {"ledger": self.ledger.to_dict(),
                "charged": {str(k): v for k, v in self.charged.items()}}

    def restore_usage(self, raw: Mapping[str, Any]) -> None:
        self.ledger = UsageLedger.from_dict(raw.get("ledger", {}), self.cfg,
                                            self.policy.share_tree())
        self.charged = {int(k): float(v) for k, v in raw.get("charged", {}).items()}

    def restore_policy(self, raw: Mapping[str, Any]) -> None:
        self.policy = Policy.from_dict(raw)
        self.ledger.shares = self.policy.share_tree()

    def policy_changed(self) -> None:
        """The policy was changed at runtime: new share tree, persist, recompute soon."""
        self.ledger.shares = self.policy.share_tree()
        self.policy_dirty = True
        self.last_calc = -1e18

    # ------------------------------------------------------------ usage
    def charge(self, job: Job, now: float) -> None:
        """Charge ``job``'s allocation from where it was charged up to ``now``."""
        if not job.alloc:
            self.charged.pop(job.job_id, None)
            return
        since = self.charged.get(job.job_id, job.start_time)
        if now > since:
            cpus, mem, gpus = job_tres(job)
            q = self.policy.qos.get(job.qos)
            factor = q.usage_factor if q is not None else 1.0
            self.ledger.charge(job.user, job.account, tres_seconds(cpus, mem, gpus, now - since),
                               now, factor)
            self.dirty = True
        self.charged[job.job_id] = max(now, since)

    def attempt_ended(self, job: Job, now: float) -> None:
        """Charge the rest of an attempt; it is no longer running."""
        self.charge(job, now)
        self.charged.pop(job.job_id, None)
        self.dirty = True

    def charge_running(self, running: Iterable[Job], now: float) -> None:
        for job in running:
            self.charge(job, now)
        self.ledger.decay(now)

    # ------------------------------------------------------------ priority
    def due(self, now: float) -> bool:
        return now - self.last_calc >= self.calc_period or (
            self._policy_version != self.policy.version)

    def view(self, job: Job, partitions: Mapping[str, Partition], default: str,
             cache: dict[tuple[str, ...], tuple[int, int]] | None = None) -> JobView:
        names = job.request.partitions or (default,)
        got = cache.get(names) if cache is not None else None
        if got is None:
            parts = [partitions[n] for n in names if n in partitions]
            got = (max((p.priority_job_factor for p in parts), default=1),
                   max((p.priority_tier for p in parts), default=0))
            if cache is not None:
                cache[names] = got
        q = self.policy.qos.get(job.qos)
        r = job.request
        return JobView(
            job.job_id, job.user, job.account, job.submit_time, job.eligible_time,
            r.nodes, r.cpus_per_node * r.nodes, r.gpus_per_node * r.nodes,
            got[0], q.priority if q is not None else 0, job.nice, got[1],
            job.hold, job.admin_priority or None,
        )

    def cluster_view(self, nodes: Mapping[str, Node],
                     partitions: Mapping[str, Partition]) -> ClusterView:
        return ClusterView(
            total_nodes=len(nodes),
            total_cpus=sum(n.cpus for n in nodes.values()),
            total_gpus=sum(len(n.gpus) for n in nodes.values()),
            max_partition_factor=max((p.priority_job_factor for p in partitions.values()),
                                     default=1),
            max_qos_priority=self.policy.max_qos_priority(),
        )

    def recompute(self, pending: list[Job], nodes: Mapping[str, Node],
                  partitions: Mapping[str, Partition], default: str, now: float) -> list[Job]:
        """Recompute every pending job's priority; return those whose priority changed."""
        self.last_calc = now
        self._policy_version = self.policy.version
        self.ledger.decay(now)
        self._view = self.cluster_view(nodes, partitions)
        self._fs = self.ledger.fairshare_table()
        cache: dict[tuple[str, ...], tuple[int, int]] = {}
        views = [self.view(j, partitions, default, cache) for j in pending]
        by_id = {j.job_id: j for j in pending}
        changed = []
        self.factors = {}
        for v in views:
            by_id[v.job_id].tier = v.priority_tier
        for job_id, f in rank(views, self._view, self.ledger, self.cfg, now):
            job = by_id[job_id]
            self.factors[job_id] = f
            if job.priority != f.total:
                job.priority = f.total
                changed.append(job)
        return changed

    def score(self, job: Job, nodes: Mapping[str, Node], partitions: Mapping[str, Partition],
              default: str, now: float) -> Factors:
        """One job's factors from the last computation's normalisers (submit, update)."""
        from gsched.controller.priority import factors

        view = self.view(job, partitions, default)
        job.tier = view.priority_tier
        if not self._view.total_nodes or self._policy_version != self.policy.version:
            self._view = self.cluster_view(nodes, partitions)
        key = (self.ledger.shares.account_of(job.account), job.user)
        fs = self._fs if key in self._fs else None
        f = factors(view, self._view, self.ledger, self.cfg, now, fairshare=fs)
        self.factors[job.job_id] = f
        return f

    # ------------------------------------------------------------ limits
    def gate(self, jobs: Mapping[int, Job], running: Iterable[Job]) -> JobGate | None:
        """The pass's limit checker, or None when no QOS or account has a limit."""
        if not (any(q.limited for q in self.policy.qos.values())
                or any(not a.grp_tres.unlimited for a in self.policy.accounts.values())):
            return None
        return JobGate(self.policy, jobs, running)


def _held(job: Job) -> Held:
    cpus, _, gpus = job_tres(job)
    return Held(job.user, job.account, job.qos, gpus, cpus)


class JobGate:
    """:class:`~gsched.controller.backfill.Gate` over the Cluster's jobs."""

    def __init__(self, policy: Policy, jobs: Mapping[int, Job], running: Iterable[Job]) -> None:
        self.jobs = jobs
        self.limits = LimitGate(policy, (_held(j) for j in running))

    def check(self, job_id: int) -> str:
        job = self.jobs[job_id]
        lim = self.limits
        if job.qos not in lim.limited_qos and job.account not in lim.limited_accounts:
            return ""
        return lim.reason(_held(job), job.request.time_limit)

    def started(self, job_id: int) -> None:
        self.limits.add(_held(self.jobs[job_id]))
