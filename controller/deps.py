"""Job dependencies (``--dependency``), like SLURM's (pure: no I/O, time is a parameter).

Syntax (``sbatch --dependency``)::

    TYPE:ID[:ID...][,TYPE:ID...]     all terms must be fulfilled (AND)
    TYPE:ID[:ID...][?TYPE:ID...]     any one term is enough (OR)
    singleton

``TYPE`` is ``after`` (the upstream started, or was cancelled before starting;
``after:ID+MIN`` waits MIN minutes after the start), ``afterany`` (ended in any
state), ``afterok`` (COMPLETED), ``afternotok`` (ended in any other final state),
``aftercorr`` (array task *a* waits for task *a* of the upstream array, afterok
style) or ``singleton`` (no other job of the same user and name is running, or
pending with a smaller id). ``ID`` is a job id, an array job id (every task of
the array) or ``A_a`` (one task). Mixing ``,`` and ``?`` is refused, as in SLURM.

Each term is ``unfulfilled`` until it resolves, once and for all, to ``fulfilled``
or ``failed``. A requeued upstream job is not finished: its dependents keep
waiting. A failed term makes an AND dependency (or an OR whose every term
failed) impossible: the job waits with reason ``DependencyNeverSatisfied``, or is
cancelled when it asked for ``--kill-on-invalid-dep=yes``. A term on a job id the
controller no longer (or never) knew is lifted (fulfilled), as SLURM 22.05 does
for purged jobs (``sbatch -d afterok:999999`` is accepted there).

The controller evaluates a job's dependency only when something it waits on
changed (see :class:`DepIndex`): upstream id -> dependents, plus one index for
singletons by (uid, name), plus timers for ``after:ID+MIN``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "DEP_PROBLEM",
    "DepIndex",
    "Dependency",
    "Term",
    "Upstream",
    "evaluate",
    "parse_dependency",
]

DEP_PROBLEM = "Job dependency problem"
KINDS = ("after", "afterany", "afterok", "afternotok", "aftercorr", "singleton")
UNFULFILLED, FULFILLED, FAILED = "unfulfilled", "fulfilled", "failed"
_ID_RE = re.compile(r"([0-9]+)(?:_([0-9]+|\*))?(?:\+([0-9]+))?\Z")


@dataclasses.dataclass
class Term:
    """One ``TYPE:ID`` of a dependency."""

    kind: str
    job_id: int = 0
    task: int | None = None  # A_3 -> 3; None: the whole job (every task of an array)
    minutes: int = 0  # after:ID+MIN
    status: str = UNFULFILLED
    ready_at: float = 0.0  # after:ID+MIN: the upstream started; fulfilled at this time
    seen_failure: bool = False  # afternotok on an array: some task failed
    whole_array: bool = False  # the id is an array's: every task (shown as A_*)

    def label(self, array_ids: Callable[[int], bool] = lambda _i: False) -> str:
        """``afterok:5``, ``afterok:7_*``, ``after:5+10``, ``singleton`` (no status)."""
        if self.kind == "singleton":
            return "singleton"
        text = f"{self.kind}:{self.job_id}"
        if self.task is not None:
            text += f"_{self.task}"
        elif self.whole_array or array_ids(self.job_id):
            text += "_*"
        if self.minutes:
            text += f"+{self.minutes}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Dependency:
    terms: list[Term]
    any_of: bool = False  # '?'-separated

    def state(self) -> str:
        """``fulfilled``, ``failed`` (never satisfiable) or ``unfulfilled``."""
        statuses = [t.status for t in self.terms]
        if self.any_of:
            if FULFILLED in statuses:
                return FULFILLED
            return FAILED if all(s == FAILED for s in statuses) else UNFULFILLED
        if FAILED in statuses:
            return FAILED
        return FULFILLED if all(s == FULFILLED for s in statuses) else UNFULFILLED

    def show(self, array_ids: Callable[[int], bool] = lambda _i: False) -> str:
        """As ``scontrol show job``'s ``Dependency=``: unresolved and failed terms."""
        sep = "?" if self.any_of else ","
        shown = [
            f"{t.label(array_ids)}({t.status})" for t in self.terms if t.status != FULFILLED
        ]
        return sep.join(shown)

    def to_dict(self) -> dict[str, Any]:
        return {"any_of": self.any_of, "terms": [t.to_dict() for t in self.terms]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Dependency:
        return cls([Term(**t) for t in raw.get("terms", [])], bool(raw.get("any_of")))


class DependencyError(ValueError):
    """Unparsable ``--dependency``."""


def parse_dependency(text: str) -> Dependency | None:
    """Parse sbatch's ``--dependency`` value; ``""`` gives ``None``.

    Raises:
        DependencyError: bad syntax (SLURM: "Job dependency problem").
    """
    text = text.strip()
    if not text:
        return None
    if "," in text and "?" in text:
        raise DependencyError(DEP_PROBLEM)
    any_of = "?" in text
    terms: list[Term] = []
    for item in text.split("?" if any_of else ","):
        if item == "singleton":
            terms.append(Term("singleton"))
            continue
        kind, colon, ids = item.partition(":")
        if kind not in KINDS or kind == "singleton" or not colon or not ids:
            # a bare job id means afterany (SLURM's old syntax)
            if not colon and kind.isdigit():
                kind, ids = "afterany", item
            else:
                raise DependencyError(DEP_PROBLEM)
        for one in ids.split(":"):
            m = _ID_RE.match(one)
            if not m:
                raise DependencyError(DEP_PROBLEM)
            job_id = int(m.group(1))
            task = None if m.group(2) in (None, "*") else int(m.group(2))
            minutes = int(m.group(3) or 0)
            if minutes and kind != "after":
                raise DependencyError(DEP_PROBLEM)
            if job_id <= 0:
                raise DependencyError(DEP_PROBLEM)
            terms.append(Term(kind, job_id, task, minutes))
    return Dependency(terms, any_of)


@dataclasses.dataclass(frozen=True)
class Upstream:
    """What a term needs to know about the job (or array) it waits on.

    Attributes:
        known: the controller knows the job (or array).
        started: it (every task of it) has started at least once.
        start_time: when it (the last task) started; 0 if not started.
        pending: some part has not started yet (or is pending again after a requeue).
        finished: every part reached a final state.
        failed: some part ended in a final state other than COMPLETED.
        end_time: when it ended (after: a job cancelled before it started counts
            ``+MIN`` from then).
    """

    known: bool
    started: bool = False
    start_time: float = 0.0
    pending: bool = True
    finished: bool = False
    failed: bool = False
    end_time: float = 0.0


def evaluate(
    term: Term,
    up: Upstream,
    now: float,
) -> None:
    """Resolve ``term`` (in place) from the upstream's state at ``now``."""
    if term.status != UNFULFILLED:
        return
    if not up.known:
        term.status = FULFILLED  # purged or never known: lifted, as SLURM
        return
    kind = term.kind
    if kind == "after":
        if up.started and (up.finished or not up.pending):
            term.ready_at = up.start_time + 60 * term.minutes
            if now >= term.ready_at:
                term.status = FULFILLED
        elif up.finished:  # cancelled before it started: +MIN counts from then
            term.ready_at = up.end_time + 60 * term.minutes
            if now >= term.ready_at:
                term.status = FULFILLED
        return
    if up.failed:
        term.seen_failure = True
    if not up.finished:
        if kind in ("afterok", "aftercorr") and up.failed:
            term.status = FAILED  # an array task failed: the whole can never be OK
        return
    if kind == "afterany":
        term.status = FULFILLED
    elif kind in ("afterok", "aftercorr"):
        term.status = FAILED if up.failed else FULFILLED
    elif kind == "afternotok":
        term.status = FULFILLED if (up.failed or term.seen_failure) else FAILED


class DepIndex:
    """Who waits on whom: evaluation is triggered by changes, never by a scan.

    ``by_upstream``: job id (or array job id) -> ids of pending jobs with a term on
    it. ``by_name``: (uid, name) -> ids of pending jobs with a ``singleton`` term.
    ``timers``: job id -> time an ``after:ID+MIN`` term becomes fulfilled.
    ``dirty``: jobs to evaluate at the next scheduling pass.
    """

    def __init__(self) -> None:
        self.by_upstream: dict[int, set[int]] = {}
        self.by_name: dict[tuple[int, str], set[int]] = {}
        self.timers: dict[int, float] = {}
        self.dirty: set[int] = set()

    def add(self, job_id: int, dep: Dependency, uid: int, name: str) -> None:
        for t in dep.terms:
            if t.status != UNFULFILLED:
                continue
            if t.kind == "singleton":
                self.by_name.setdefault((uid, name), set()).add(job_id)
            else:
                self.by_upstream.setdefault(t.job_id, set()).add(job_id)
        self.dirty.add(job_id)

    def remove(self, job_id: int, dep: Dependency, uid: int, name: str) -> None:
        for t in dep.terms:
            if t.kind == "singleton":
                waiting = self.by_name.get((uid, name))
                key: Any = (uid, name)
                index: dict[Any, set[int]] = self.by_name  # type: ignore[assignment]
            else:
                waiting = self.by_upstream.get(t.job_id)
                key, index = t.job_id, self.by_upstream  # type: ignore[assignment]
            if waiting is not None:
                waiting.discard(job_id)
                if not waiting:
                    del index[key]
        self.timers.pop(job_id, None)
        self.dirty.discard(job_id)

    def changed(self, job_ids: Iterable[int], uid: int, name: str) -> None:
        """A job changed state: its dependents (by id and by name) need a look."""
        for i in job_ids:
            waiting = self.by_upstream.get(i)
            if waiting:
                self.dirty.update(waiting)
        waiting = self.by_name.get((uid, name))
        if waiting:
            self.dirty.update(waiting)

    def due(self, now: float) -> bool:
        """Move jobs whose ``after:ID+MIN`` timer has passed to ``dirty``."""
        ready = [i for i, t in self.timers.items() if t <= now]
        for i in ready:
            del self.timers[i]
            self.dirty.add(i)
        return bool(ready)
