"""gacct: finished and running jobs from the controller's history, as SLURM's sacct.

A minimal sacct: one line per job (``-D`` adds a line per earlier attempt of a
requeued job, as sacct's duplicates; gsched does not record job steps, so ``-X``
changes nothing), sacct's columns and widths, ``-o Field%width``, ``-p``/``-P``, ``-n``
and a ``--json`` document shaped like sacct's v0.0.38 one.

Layout follows sacct's ``print_fields``: every column is padded to its width and
followed by one space (so lines end with a space), headers are right-justified,
values are right-justified except JobID/JobIDRaw (left), and a value longer than
its column is cut with ``+`` as its last character. ``-p`` ends every field with
``|``; ``-P`` separates fields with ``|`` and has no trailing one.

Time window as sacct: without ``-S`` only jobs since midnight today, unless ``-j``
names jobs (then any time); ``-E`` defaults to now. The controller decides what a
window means for a job (it receives ``start_after``/``end_before``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gsched.cli import formats

if TYPE_CHECKING:
    from gsched.protos import gsched_pb2 as pb

__all__ = ["FIELDS", "build_request", "main", "parse_args", "parse_time", "render"]

DEFAULT_FORMAT = "JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode"


class _Parser(argparse.ArgumentParser):
    """argparse that fails like sacct: one line, a hint, exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(
            1, f'{self.prog}: error: {message}\nTry "{self.prog} --help" for more information\n'
        )


# ---------------------------------------------------------------- fields


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    width: int  # negative: left-justified (sacct's convention)
    value: Callable[[Any, _Ctx], str]
    number: bool = False  # numbers are never cut


@dataclass(slots=True)
class _Ctx:
    now: int
    cluster: str
    # id(record) -> the step suffix of a record gacct made: ".batch", ".0"; "" for an
    # earlier attempt (gacct -D)
    ids: dict[int, str] = field(default_factory=dict)


def _job_id(j: pb.JobInfo, c: _Ctx) -> str:
    return formats.job_label(j) + c.ids.get(id(j), "")


def _job_id_raw(j: pb.JobInfo, c: _Ctx) -> str:
    return str(j.job_id) + c.ids.get(id(j), "")


def _started(j: pb.JobInfo) -> bool:
    return bool(j.start_time) and j.state != "PENDING"


def _elapsed_secs(j: pb.JobInfo, now: int) -> int:
    if not _started(j):
        return 0
    end = int(j.end_time) if j.end_time else now
    return max(0, end - int(j.start_time))


def _hms(secs: int) -> str:
    from gsched.common.durations import format_hms

    return format_hms(secs)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(t))) if t else "Unknown"


def _mem(mb: int) -> str:
    value, unit = mb, "M"
    for bigger in "GT":
        if value < 1024 or value % 1024:
            break
        value, unit = value // 1024, bigger
    return f"{value}{unit}"


def _tres(j: pb.JobInfo, alloc: bool) -> str:
    if alloc and not _started(j):
        return ""
    parts = {"billing": str(j.num_cpus), "cpu": str(j.num_cpus), "node": str(max(j.num_nodes, 1))}
    if j.gpus:
        parts["gres/gpu"] = str(j.gpus)
    if j.mem_mb:
        parts["mem"] = _mem(j.mem_mb * max(j.num_nodes, 1))
    return ",".join(f"{k}={v}" for k, v in sorted(parts.items()))


def _limit(j: pb.JobInfo) -> str:
    if j.time_limit < 0:
        return "UNLIMITED"
    return _hms(j.time_limit) if j.time_limit else "Partition_Limit"


def _spec(j: pb.JobInfo, attr: str) -> str:
    return str(getattr(j.spec, attr)) if j.HasField("spec") else ""


def _extra(j: pb.JobInfo, key: str) -> str:
    return j.spec.extra.get(key, "") if j.HasField("spec") else ""


_FIELD_LIST = [
    _Field("Account", 10, lambda j, c: j.account or _extra(j, "account")),
    _Field("AllocCPUS", 10, lambda j, c: str(j.num_cpus if _started(j) else 0), number=True),
    _Field("AllocGRES", 12, lambda j, c: f"gpu:{j.gpus}" if j.gpus and _started(j) else ""),
    _Field("AllocNodes", 10, lambda j, c: str(j.num_nodes if _started(j) else 0), number=True),
    _Field("AllocTRES", 10, lambda j, c: _tres(j, alloc=True)),
    _Field("Cluster", 10, lambda j, c: c.cluster),
    _Field("Comment", 15, lambda j, c: _spec(j, "comment")),
    _Field("CPUTime", 10, lambda j, c: _hms(_elapsed_secs(j, c.now) * j.num_cpus)),
    _Field("CPUTimeRAW", 10, lambda j, c: str(_elapsed_secs(j, c.now) * j.num_cpus), number=True),
    _Field("DerivedExitCode", 15, lambda j, c: "0:0"),
    _Field("Elapsed", 10, lambda j, c: _hms(_elapsed_secs(j, c.now))),
    _Field("ElapsedRaw", 10, lambda j, c: str(_elapsed_secs(j, c.now)), number=True),
    _Field("Eligible", 19, lambda j, c: _when(j.submit_time)),
    _Field("End", 19, lambda j, c: _when(j.end_time)),
    _Field("ExitCode", 8, lambda j, c: f"{j.exit_code}:{j.exit_signal}"),
    _Field("GID", 6, lambda j, c: str(j.gid), number=True),
    _Field("Group", 9, lambda j, c: j.group or str(j.gid)),
    _Field("JobID", -12, _job_id),
    _Field("JobIDRaw", -12, _job_id_raw),
    _Field("JobName", 10, lambda j, c: j.name),
    _Field("NCPUS", 10, lambda j, c: str(j.num_cpus if _started(j) else 0), number=True),
    _Field("NNodes", 8, lambda j, c: str(j.num_nodes), number=True),
    _Field("NodeList", 15, lambda j, c: formats.nodelist(j.nodes) if j.nodes else "None assigned"),
    _Field("NTasks", 8, lambda j, c: str(max(j.num_tasks, 1)), number=True),
    _Field("Partition", 10, lambda j, c: j.partition),
    _Field("Priority", 10, lambda j, c: str(j.priority), number=True),
    _Field("QOS", 10, lambda j, c: j.qos or _extra(j, "qos")),
    _Field("Reason", 20, lambda j, c: j.reason or "None"),
    _Field("ReqCPUS", 8, lambda j, c: str(j.num_cpus), number=True),
    _Field("ReqGRES", 12, lambda j, c: f"gpu:{j.gpus}" if j.gpus else ""),
    _Field("ReqMem", 10, lambda j, c: _mem(j.mem_mb) if j.mem_mb else "0"),
    _Field("ReqNodes", 8, lambda j, c: str(j.num_nodes), number=True),
    _Field("ReqTRES", 10, lambda j, c: _tres(j, alloc=False)),
    _Field("Reservation", 10, lambda j, c: _extra(j, "reservation")),
    _Field("Restarts", 8, lambda j, c: str(j.restart_count), number=True),
    _Field("Start", 19, lambda j, c: _when(j.start_time) if _started(j) else "Unknown"),
    _Field("State", 10, lambda j, c: j.state),
    _Field("Submit", 19, lambda j, c: _when(j.submit_time)),
    _Field("Suspended", 10, lambda j, c: "00:00:00"),
    _Field("Timelimit", 10, lambda j, c: _limit(j)),
    _Field(
        "TimelimitRaw",
        12,
        lambda j, c: str((j.time_limit + 59) // 60) if j.time_limit >= 0 else "UNLIMITED",
    ),
    _Field("UID", 6, lambda j, c: str(j.uid), number=True),
    _Field("User", 9, lambda j, c: j.user),
    _Field("WorkDir", 15, lambda j, c: _spec(j, "workdir")),
]
FIELDS = {f.name.lower(): f for f in _FIELD_LIST}


def _parse_fields(spec: str) -> list[_Field]:
    """``JobID,JobName%30`` -> fields; ``%N`` sets the width (right-justified, as sacct)."""
    out = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        name, _, width = token.partition("%")
        field = FIELDS.get(name.lower())
        if field is None:
            raise formats.OptionError(f'Invalid field requested: "{name}"')
        if width:
            if not width.lstrip("-").isdigit() or int(width) == 0:
                raise formats.OptionError(f'Invalid field requested: "{token}"')
            field = _Field(field.name, int(width), field.value, field.number)
        out.append(field)
    return out


# ---------------------------------------------------------------- times

_UNITS = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "min": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
          "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}  # fmt: skip


def parse_time(text: str, now: float) -> float:
    """sacct ``-S``/``-E`` values as unix seconds (local time).

    Accepts ``YYYY-MM-DD[THH:MM[:SS]]``, ``MM/DD[/YY][-HH:MM[:SS]]``, ``MMDD[YY]``,
    ``HH:MM[:SS]`` (today), ``now[{+|-}N[unit]]``, ``today``/``midnight``, ``noon``,
    ``teatime``, ``tomorrow``, and a bare unix time.

    Raises:
        formats.OptionError: anything else.
    """
    t = text.strip()
    low = t.lower()
    lt = time.localtime(int(now))
    midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
    named = {"today": midnight, "midnight": midnight, "noon": midnight + 12 * 3600,
             "teatime": midnight + 16 * 3600, "tomorrow": midnight + 86400, "now": float(now)}  # fmt: skip
    if low in named:
        return named[low]
    m = re.fullmatch(r"now([+-])(\d+)([a-z]*)", low)
    if m and m.group(3) in _UNITS:
        delta = int(m.group(2)) * _UNITS[m.group(3)]
        return float(now) + (delta if m.group(1) == "+" else -delta)

    def at(y: int, mo: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
        if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
            raise formats.OptionError(f"Invalid time specification: {text}")
        return time.mktime((y, mo, d, hh, mm, ss, 0, 0, -1))

    clock = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
    if m := re.fullmatch(rf"(\d{{4}})-(\d{{2}})-(\d{{2}})(?:T{clock})?", t):
        y, mo, d, hh, mm, ss = (int(x) if x else 0 for x in m.groups())
        return at(y, mo, d, hh, mm, ss)
    if m := re.fullmatch(rf"(\d{{1,2}})/(\d{{1,2}})(?:/(\d{{2,4}}))?(?:-{clock})?", t):
        mo, d, y, hh, mm, ss = (int(x) if x else None for x in m.groups())
        year = lt.tm_year if y is None else (y + 2000 if y < 100 else y)
        return at(year, mo or 0, d or 0, hh or 0, mm or 0, ss or 0)
    if m := re.fullmatch(clock, t):
        hh, mm, ss = (int(x) if x else 0 for x in m.groups())
        return at(lt.tm_year, lt.tm_mon, lt.tm_mday, hh, mm, ss)
    if re.fullmatch(r"\d{4}(\d{2})?", t):
        year = lt.tm_year if len(t) == 4 else 2000 + int(t[4:])
        return at(year, int(t[:2]), int(t[2:4]))
    if re.fullmatch(r"\d{9,}", t):
        return float(t)
    raise formats.OptionError(f"Invalid time specification: {text}")


# ---------------------------------------------------------------- options


def _parser(prog: str) -> _Parser:
    p = _Parser(
        prog=prog, add_help=False, description="Accounting data of gsched jobs (SLURM sacct)."
    )
    a = p.add_argument
    a("-a", "--allusers", action="store_true", help="jobs of every user")
    a("-A", "--accounts", help="accepted for compatibility; no effect")
    a("-b", "--brief", action="store_true", help="JobID, State and ExitCode only")
    a("-D", "--duplicates", action="store_true",
      help="also the earlier attempts of requeued jobs (NODE_FAIL, PREEMPTED, REQUEUED)")
    a("-E", "--endtime", help="jobs before this time (default now)")
    a("-j", "--jobs", help="comma separated job ids")
    a("--json", action="store_true", help="SLURM's JSON document instead of a table")
    a("-l", "--long", action="store_true", help="many more fields")
    a("-L", "--allclusters", action="store_true", help="accepted for compatibility; no effect")
    a("-n", "--noheader", action="store_true", help="no header lines")
    a("-o", "--format", help="comma separated fields, e.g. JobID,JobName%%30,State")
    a("-p", "--parsable", action="store_true", help="'|' after every field")
    a("-P", "--parsable2", action="store_true", help="'|' between fields")
    a("-s", "--state", help="comma separated states (names or codes)")
    a("-S", "--starttime", help="jobs after this time (default: midnight today)")
    a("-u", "--user", help="comma separated users")
    a("-v", "--verbose", action="count", default=0, help="print the request on stderr")
    a("-V", "--version", action="store_true", help="print the version and exit")
    a("-X", "--allocations", action="store_true",
      help="jobs only: no JOBID.batch and JOBID.STEPID records")
    a("--helpformat", action="store_true", help="list the fields -o accepts")
    a("--help", action="help", help="show this help and exit")
    a("--usage", action="store_true", help="show a brief usage line and exit")
    return p


_LONG = (
    "JobID,JobIDRaw,JobName,Partition,Account,AllocCPUS,ReqCPUS,State,ExitCode,"
    "DerivedExitCode,User,UID,Group,GID,Submit,Eligible,Start,End,Elapsed,Timelimit,"
    "NNodes,NodeList,ReqMem,AllocTRES,ReqTRES,Restarts,WorkDir,Reason,Priority"
)


def parse_args(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    prog: str = "gacct",
    now: float | None = None,
) -> argparse.Namespace:
    """Parse gacct's command line (and SACCT_FORMAT) into options.

    Adds ``fields``, ``job_ids``, ``users``, ``states``, ``all_users``,
    ``start_after``, ``end_before`` and ``separator`` (None, ``"|"`` for ``-p`` or
    ``"|2"`` for ``-P``).

    Raises:
        formats.OptionError: invalid values.
        SystemExit: unknown options (exit 1), ``--help`` (exit 0).
    """
    env = os.environ if env is None else env
    now = time.time() if now is None else now
    parser = _parser(prog)
    takes = {
        s
        for act in parser._actions
        if act.nargs is None and act.option_strings
        for s in act.option_strings
    }
    longs = [s for act in parser._actions for s in act.option_strings if s.startswith("--")]
    raw = list(sys.argv[1:] if argv is None else argv)
    opts = parser.parse_args(formats.normalize_argv(raw, takes, longs))

    if opts.format:
        spec = opts.format
    elif opts.brief:
        spec = "JobID,State,ExitCode"
    elif opts.long:
        spec = _LONG
    else:
        spec = env.get("SACCT_FORMAT") or DEFAULT_FORMAT
    opts.fields = _parse_fields(spec)

    opts.job_ids = []
    opts.array_tasks = set()  # (array id, task id) asked for as A_a
    for token in (t for t in re.split(r",(?![^\[]*\])", opts.jobs or "") if t):
        head = re.split(r"[._+]", token, maxsplit=1)[0]
        if not head.isdigit():
            raise formats.OptionError(f"Invalid job id: {token}")
        opts.job_ids.append(int(head))
        task = re.fullmatch(r"\d+_(\d+)", token)
        if task:
            opts.array_tasks.add((int(head), int(task.group(1))))
    opts.users = [u for u in (opts.user or "").split(",") if u]
    opts.all_users = opts.allusers and not opts.users
    opts.states, all_states = formats.parse_job_states(opts.state or "")
    if all_states:
        opts.states = []
    if opts.starttime:
        opts.start_after = parse_time(opts.starttime, now)
    elif opts.job_ids:
        opts.start_after = 0.0
    else:
        opts.start_after = parse_time("midnight", now)
    opts.end_before = parse_time(opts.endtime, now) if opts.endtime else 0.0
    opts.separator = "|2" if opts.parsable2 else ("|" if opts.parsable else None)
    return opts


def build_request(opts: argparse.Namespace) -> pb.HistoryRequest:
    """The ``HistoryRequest`` for ``opts``."""
    from gsched.protos import gsched_pb2 as pbm

    return pbm.HistoryRequest(
        job_ids=opts.job_ids,
        users=opts.users,
        all_users=opts.all_users,
        # with -D an earlier attempt may match the states the job's own record does not
        states=[] if getattr(opts, "duplicates", False) else opts.states,
        start_after=opts.start_after,
        end_before=opts.end_before,
        with_steps=not opts.allocations and not opts.json,
    )


# ---------------------------------------------------------------- rendering


def _cell(field: _Field, value: str) -> str:
    width = abs(field.width)
    if len(value) > width and not field.number:
        value = value[: width - 1] + "+"
    return value.ljust(width) if field.width < 0 else value.rjust(width)


def _task_wanted(j: pb.JobInfo, opts: argparse.Namespace) -> bool:
    """``-j A`` lists every task of array A; ``-j A_3`` only that one."""
    tasks = getattr(opts, "array_tasks", set())
    if not tasks or j.array_job_id in set(opts.job_ids) - {a for a, _ in tasks}:
        return True
    return (j.array_job_id, j.array_task_id) in tasks and not j.array_task_str


def _filter(jobs: Iterable[pb.JobInfo], opts: argparse.Namespace) -> list[pb.JobInfo]:
    ids, users, states = set(opts.job_ids), set(opts.users), set(opts.states)
    out = [
        j
        for j in jobs
        if (not ids or (_task_wanted(j, opts) if j.array_job_id in ids else j.job_id in ids))
        and (not users or j.user in users or str(j.uid) in users)
        and (not states or j.state in states)
    ]
    return sorted(out, key=lambda j: j.job_id)


def _json(jobs: Sequence[pb.JobInfo], ctx: _Ctx) -> str:
    def tres(j: pb.JobInfo, alloc: bool) -> list[dict[str, Any]]:
        text = _tres(j, alloc)
        out = []
        for item in (x for x in text.split(",") if x):
            key, _, count = item.partition("=")
            kind, _, name = key.partition("/")
            count_mb = count
            if kind == "mem":
                count_mb = str(int(count[:-1]) * (1024 if count.endswith("G") else 1))
            out.append({"type": kind, "name": name, "id": 0, "count": int(count_mb)})
        return out

    def one(j: pb.JobInfo) -> dict[str, Any]:
        status = "SUCCESS" if j.exit_code == 0 and j.exit_signal == 0 else "FAILED"
        if j.exit_signal:
            status = "SIGNALED"
        return {
            "account": "",
            "comment": {"administrator": "", "job": _spec(j, "comment"), "system": ""},
            "allocation_nodes": j.num_nodes if _started(j) else 0,
            "array": {
                "job_id": 0,
                "limits": {"max": {"running": {"tasks": 0}}},
                "task": None,
                "task_id": None,
            },
            "association": {
                "account": "",
                "cluster": ctx.cluster,
                "partition": j.partition,
                "user": j.user,
            },
            "cluster": ctx.cluster,
            "constraints": "",
            "derived_exit_code": {"status": "SUCCESS", "return_code": 0},
            "time": {
                "elapsed": _elapsed_secs(j, ctx.now),
                "eligible": int(j.submit_time),
                "end": int(j.end_time),
                "start": int(j.start_time),
                "submission": int(j.submit_time),
                "suspended": 0,
                "limit": (j.time_limit + 59) // 60 if j.time_limit >= 0 else 4294967295,
            },
            "exit_code": {
                "status": status,
                "return_code": j.exit_code,
                "signal": {"signal_id": j.exit_signal},
            },
            "flags": [],
            "group": j.group,
            "job_id": j.job_id,
            "name": j.name,
            "nodes": formats.nodelist(j.nodes) if j.nodes else "None assigned",
            "partition": j.partition,
            "priority": j.priority,
            "qos": "",
            "required": {"CPUs": j.num_cpus, "memory": j.mem_mb},
            "reservation": {"id": 0, "name": ""},
            "state": {"current": j.state, "reason": j.reason or "None"},
            "steps": [],
            "tres": {"allocated": tres(j, True), "requested": tres(j, False)},
            "user": j.user,
            "wckey": {"wckey": "", "flags": []},
            "working_directory": _spec(j, "workdir"),
            "restart_cnt": j.restart_count,
        }

    return formats.slurm_json(
        {"meta": formats.SLURM_META, "errors": [], "jobs": [one(j) for j in jobs]}
    )


# how an earlier attempt ended (AttemptInfo.ended) -> the state sacct -D shows for it
_ENDED_STATES = {"node_lost": "NODE_FAIL", "node_fail": "NODE_FAIL", "preempted": "PREEMPTED"}


def _attempt_state(ended: str) -> str:
    if ended in _ENDED_STATES:
        return _ENDED_STATES[ended]
    if ended.startswith("gpu_"):
        return "NODE_FAIL"  # the node's hardware ended it, as a lost node would
    return ended if ended.isupper() else "REQUEUED"


def _with_duplicates(jobs: Sequence[pb.JobInfo], ctx: _Ctx) -> list[pb.JobInfo]:
    """sacct -D: each requeued job's earlier attempts as records of their own, oldest first."""
    out: list[pb.JobInfo] = []
    for j in jobs:
        for a in j.attempts:
            if a.attempt >= j.restart_count or not a.end_time:
                continue  # the current attempt is the job's own record
            old = type(j)()
            old.CopyFrom(j)
            old.state = _attempt_state(a.ended)
            old.start_time, old.end_time = a.start_time, a.end_time
            del old.nodes[:]
            old.nodes.extend(a.nodes)
            old.num_nodes = len(a.nodes)
            old.restart_count = a.attempt
            old.exit_code = old.exit_signal = 0
            old.reason = a.ended
            ctx.ids[id(old)] = ""  # marks it as an earlier attempt: no steps
            out.append(old)
        out.append(j)
    return out


def _step_record(j: pb.JobInfo, ctx: _Ctx, label: str) -> pb.JobInfo:
    rec = type(j)()
    rec.CopyFrom(j)
    rec.partition = ""
    del rec.attempts[:]
    ctx.ids[id(rec)] = f".{label}"
    return rec


def _with_steps(
    jobs: Sequence[pb.JobInfo], steps: Iterable[pb.StepInfo], ctx: _Ctx
) -> list[pb.JobInfo]:
    """sacct's records: each started job, then ``JOBID.batch`` and its ``JOBID.STEPID`` steps."""
    by_job: dict[int, list[pb.StepInfo]] = {}
    for s in steps:
        by_job.setdefault(s.job_id, []).append(s)
    out: list[pb.JobInfo] = []
    for j in jobs:
        out.append(j)
        if not _started(j) or id(j) in ctx.ids:
            continue  # never ran, or an earlier attempt's record (gacct -D)
        batch = _step_record(j, ctx, "batch")
        batch.name = "batch"
        del batch.nodes[1:]
        batch.num_nodes = 1
        out.append(batch)
        for s in by_job.get(j.job_id, ()):
            if s.attempt != j.restart_count:
                continue
            rec = _step_record(j, ctx, str(s.step_id))
            rec.name, rec.state = s.name, s.state
            rec.start_time, rec.end_time = s.start_time, s.end_time
            del rec.nodes[:]
            rec.nodes.extend(s.nodes)
            rec.num_nodes, rec.num_tasks = len(s.nodes), s.ntasks
            rec.exit_code, rec.exit_signal = s.exit_code, s.exit_signal
            out.append(rec)
    return out


def render(reply: pb.ListJobsReply, opts: argparse.Namespace, *, cluster: str = "gsched") -> str:
    """The text gacct prints for a ``History`` reply (ends with a newline unless empty)."""
    ctx = _Ctx(int(reply.now or time.time()), cluster)
    records = (
        _with_duplicates(reply.jobs, ctx) if getattr(opts, "duplicates", False) else reply.jobs
    )
    jobs = _filter(records, opts)
    if opts.json:
        return _json(jobs, ctx)
    if not opts.allocations:
        jobs = _with_steps(jobs, reply.steps, ctx)
    fields = opts.fields
    lines: list[str] = []
    if opts.separator is None:
        if not opts.noheader:
            lines.append("".join(f.name[: abs(f.width)].rjust(abs(f.width)) + " " for f in fields))
            lines.append("".join("-" * abs(f.width) + " " for f in fields))
        lines.extend("".join(_cell(f, f.value(j, ctx)) + " " for f in fields) for j in jobs)
    else:
        rows = [[f.name for f in fields]] if not opts.noheader else []
        rows += [[f.value(j, ctx) for f in fields] for j in jobs]
        if opts.separator == "|":
            lines = ["".join(v + "|" for v in row) for row in rows]
        else:
            lines = ["|".join(row) for row in rows]
    return "\n".join(lines) + "\n" if lines else ""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``gacct`` (and of the ``sacct`` shim)."""
    from gsched.cli.client import ClientError, connect, fail, finish
    from gsched.common.shims import prog_name

    prog = prog_name("gacct")
    try:
        opts = parse_args(argv, prog=prog)
    except formats.OptionError as exc:
        fail(prog, str(exc))
    if opts.helpformat:
        names = [f.name for f in _FIELD_LIST]
        for k in range(0, len(names), 4):
            sys.stdout.write("".join(n.ljust(20) for n in names[k : k + 4]).rstrip() + "\n")
        finish(0)
    if opts.usage:
        sys.stdout.write(
            f"Usage: {prog} [-j jobs] [-u users] [-a] [-s states] [-S start] [-E end] [-o fields]\n"
        )
        finish(0)
    if opts.version:
        import gsched

        sys.stdout.write(f"gsched {gsched.__version__}\n")
        finish(0)
    if opts.verbose:
        sys.stderr.write(f"{build_request(opts)}\n")
    client = connect(prog)
    try:
        reply = client.call("History", build_request(opts))
    except ClientError as exc:
        fail(prog, exc.message)
    try:
        sys.stdout.write(render(reply, opts, cluster=client.cluster_name))
    except BrokenPipeError:
        pass
    finish(0)


if __name__ == "__main__":
    main()
