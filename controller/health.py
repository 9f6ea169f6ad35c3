"""Node failure scores: which nodes keep ending jobs, and when to drain them (pure).

Every infrastructure failure that ends a job's attempt (the node lost, or a GPU
fault under the job) is an *incident* on that node, recorded with its evidence:
``[time, tag, [job ids], detail]``. One event that ends several jobs (a node loss
with four jobs on it) is one incident. A node's *failure score* is the number of
incidents in the last ``window`` seconds. When it reaches ``threshold`` the node is
drained automatically, with the evidence in its reason, so that a flaky host stops
eating GPU-hours even when each single fault looked recoverable (XIDs whose action
is only "restart the application", a host that keeps rebooting and coming back).

Incidents that ended no job do not count: an idle node that reboots for maintenance
is not flaky. ``gctl update NodeName=X State=RESUME`` clears the history.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["MERGE_SECONDS", "drain_reason", "prune", "record", "score"]

MERGE_SECONDS = 1.0  # reports of one event (each job it ended) arrive within this
MAX_KEPT = 50  # bound on the stored history per node


def prune(incidents: list[list[Any]], now: float, window: float) -> None:
    """Forget incidents older than ``window`` seconds (in place)."""
    incidents[:] = [i for i in incidents if now - i[0] <= window][-MAX_KEPT:]


def record(incidents: list[list[Any]], now: float, tag: str, job_id: int, detail: str) -> None:
    """Note that ``job_id`` ended on this node because of ``tag`` (in place).

    Reports of one event (same tag within :data:`MERGE_SECONDS`) join one incident.
    """
    for inc in reversed(incidents):
        if now - inc[0] > MERGE_SECONDS:
            break
        if inc[1] == tag:
            if job_id not in inc[2]:
                inc[2].append(job_id)
            return
    incidents.append([now, tag, [job_id], detail])


def score(incidents: list[list[Any]], now: float, window: float) -> int:
    """Incidents in the last ``window`` seconds."""
    return sum(1 for i in incidents if now - i[0] <= window)


def drain_reason(incidents: list[list[Any]], now: float, window: float) -> str:
    """The drain reason naming the evidence: counts per tag and the jobs they ended."""
    recent = [i for i in incidents if now - i[0] <= window]
    tags = Counter(i[1] for i in recent)
    jobs = sorted({j for i in recent for j in i[2]})
    what = ", ".join(f"{tag} x{n}" if n > 1 else tag for tag, n in sorted(tags.items()))
    shown = ",".join(map(str, jobs[:8])) + (",..." if len(jobs) > 8 else "")
    return f"gsched: {len(recent)} job failures in {_span(window)}: {what} (jobs {shown})"


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
