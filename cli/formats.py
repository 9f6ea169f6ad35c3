"""Job and node listings in SLURM 22.05's shapes: squeue and sinfo tables and JSON.

Pure rendering: protos in, text out. No I/O, no grpc; the clock is a parameter
(the controller's ``now`` from the reply, so TIME columns do not depend on the
client's clock). ``gqueue``, ``ginfo`` and ``gacct`` parse options and call in.

Format strings (``-o``) follow squeue/sinfo: ``%[.][size]type``; ``.`` right-justifies,
``size`` is the column width (values are padded and, like SLURM, cut to the width
except for node lists and times); text between fields is printed as is; text before
the first ``%`` is a prefix. Differences from SLURM, on purpose:

* ``%%`` prints one ``%`` (SLURM's tokenizer silently drops it).
* ``%#X`` (and ``%.#X``) sizes the column to its widest value (at least the header,
  and 9 for ``N``/``P``); SLURM uses this internally for ``sinfo``'s partition and
  node-name columns, we allow it everywhere.
* An unknown type is echoed literally (``%-5i`` prints ``%-5i``) as SLURM does; the
  command also reports it on stderr (see :func:`unknown_codes`).

squeue: jobs are ordered like squeue's default ``-S P,t,-p`` (partition, then the
compact state *as text*, so CA < CD < CG < F < PD < R, then priority, highest
first), after squeue's own first pass by start time, latest first. Sorts are
stable, so ties keep the controller's order (job id order for gsched; SLURM's ties
follow its internal job list). ``%b`` (TRES_PER_NODE) shows ``gres:gpu[:type]:N``
for every GPU job: from ``--gpus-per-node``/``--gres`` when the reply carries the
job spec, else the job's GPUs divided by its nodes. SLURM prints ``N/A`` for jobs
that asked with ``--gpus`` (a per-job count); we show the per-node figure because
it is what a GPU user wants to see. JSON ``exit_code`` is the raw wait status
(``exit << 8 | signal``) as SLURM's v0.0.38 output does, ``time_limit`` is in
minutes with 4294967295 for UNLIMITED, and ``tres_*_str`` add ``gres/gpu=N`` when
the job has GPUs (SLURM only lists GPUs there when AccountingStorageTRES names them).

sinfo: the partition view prints one line per partition and per group of nodes
that agree on every node column of the format (state for the default view),
ordered by partition (controller order) then state (SLURM's numeric state, highest
first: any ``*`` state, comp, drng, drain, mix, alloc, idle, down, unk). States are SLURM's lowercase
names (idle, mix, alloc, comp, drng, drain, down, unk; long: idle, mixed,
allocated, completing, draining, drained, down, unknown) with ``*`` appended when
the node's agent is not connected (SLURM's NOT_RESPONDING).

GPU columns: ``%G`` is SLURM's GRES (``gpu:a100:8``, ``gpu:8`` when the GPUs have
no type, ``(null)`` without GPUs) and ``%K`` is a gsched extension, GRES_USED
(``gpu:a100:2``; sinfo has it only as ``-O GresUsed``). ``-N -l`` appends both
columns *after* SLURM's last column (REASON, padded to 20): every SLURM column
keeps its position, so each line up to the end of REASON's padding is byte for
byte what ``sinfo -N -l`` prints, and parsers that cut by position or split the
first ten words keep working.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from gsched.protos import gsched_pb2 as pb

__all__ = [
    "ACTIVE_JOB_STATES",
    "AUTO_WIDTH",
    "FINISHED_JOB_STATES",
    "JOB_STATES",
    "JOB_STATE_CODES",
    "SINFO_DEFAULT_FORMAT",
    "SINFO_LONG_FORMAT",
    "SINFO_NODE_FORMAT",
    "SINFO_NODE_LONG_FORMAT",
    "SINFO_REASONS_FORMAT",
    "SINFO_REASONS_LONG_FORMAT",
    "SINFO_SUMMARIZE_FORMAT",
    "SLURM_META",
    "SQUEUE_DEFAULT_FORMAT",
    "SQUEUE_LONG_FORMAT",
    "SQUEUE_START_FORMAT",
    "SQUEUE_STEPS_FORMAT",
    "Field",
    "Format",
    "OptionError",
    "date_line",
    "job_state_code",
    "jobs_json",
    "needs_spec",
    "node_state_names",
    "nodelist",
    "nodes_json",
    "normalize_argv",
    "parse_format",
    "parse_job_states",
    "parse_node_states",
    "parse_sort",
    "parse_squeue_long_format",
    "render_jobs",
    "render_nodes",
    "render_steps_header",
    "slurm_json",
    "sort_jobs",
    "squeue_all_format",
    "unknown_codes",
]

# ---------------------------------------------------------------- format strings

AUTO_WIDTH = -1  # ``%#X``: as wide as the widest value

SQUEUE_DEFAULT_FORMAT = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
SQUEUE_LONG_FORMAT = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
SQUEUE_START_FORMAT = "%.18i %.9P %.8j %.8u %.2t %.19S %.6D %20Y %R"
SQUEUE_STEPS_FORMAT = "%.15i %.8j %.9P %.8u %.9M %N"

SINFO_DEFAULT_FORMAT = "%#P %.5a %.10l %.6D %.6t %N"
SINFO_LONG_FORMAT = "%#P %.5a %.10l %.10s %.4r %.8h %.10g %.6D %.11T %.11i %N"
SINFO_SUMMARIZE_FORMAT = "%#P %.5a %.10l %.16F %N"
SINFO_NODE_FORMAT = "%#N %.6D %.#P %6t"
SINFO_NODE_LONG_FORMAT = "%#N %.6D %.#P %.11T %4c %.8z %.6m %.8d %.6w %.8f %20E %#G %K"
SINFO_REASONS_FORMAT = "%20E %9u %19H %N"
SINFO_REASONS_LONG_FORMAT = "%20E %12U %19H %6t %N"


class OptionError(ValueError):
    """Bad command-line input; the command prints ``prog: error: <message>`` and exits 1."""


class Field(NamedTuple):
    """One ``%`` field of a format string.

    Attributes:
        code: the type letter (``i``, ``P``...) or, from ``-O``, a long name.
        width: column width; 0 = the value as is; :data:`AUTO_WIDTH` = widest value.
        right: right-justify (``%.5i``).
        suffix: literal text printed after the field.
        token: the field as written (``%.5i``), echoed when the code is unknown.
    """

    code: str
    width: int = 0
    right: bool = False
    suffix: str = ""
    token: str = ""


class Format(NamedTuple):
    """A parsed format: literal prefix plus fields."""

    prefix: str
    fields: tuple[Field, ...]

    def codes(self) -> set[str]:
        """The field codes used."""
        return {f.code for f in self.fields}


def parse_format(spec: str) -> Format:
    """Parse a squeue/sinfo ``-o`` string (``"%.18i %.9P %j|%u"``)."""
    prefix = ""
    fields: list[Field] = []
    pending: tuple[str, int, bool, str] | None = None
    text: list[str] = []
    i, n = 0, len(spec)

    def flush() -> None:
        nonlocal prefix
        literal = "".join(text)
        text.clear()
        if pending is None:
            prefix += literal
        else:
            fields.append(Field(pending[0], pending[1], pending[2], literal, pending[3]))

    while i < n:
        c = spec[i]
        if c != "%":
            text.append(c)
            i += 1
            continue
        if i + 1 < n and spec[i + 1] == "%":
            text.append("%")
            i += 2
            continue
        flush()
        j = i + 1
        right = j < n and spec[j] == "."
        if right:
            j += 1
        width = 0
        if j < n and spec[j] == "#":
            width = AUTO_WIDTH
            j += 1
        else:
            while j < n and spec[j].isdigit():
                width = width * 10 + int(spec[j])
                j += 1
        if j >= n:  # dangling "%" or "%12": nothing to print
            pending = None
            i = n
            break
        pending = (spec[j], width, right, spec[i : j + 1])
        i = j + 1
    flush()
    return Format(prefix, tuple(fields))


# squeue -O names -> the -o letter they print (or a long-only column below)
_SQUEUE_LONG_NAMES = {
    "account": "a", "jobid": "A", "gres": "b", "tres-per-node": "b", "batchhost": "B",
    "mincpus": "c", "numcpus": "C", "mintmpdisk": "d", "numnodes": "D", "endtime": "e",
    "dependency": "E", "feature": "f", "arrayjobid": "F", "groupname": "g", "groupid": "G",
    "oversubscribe": "h", "shared": "h", "sockets": "H", "jobarrayid": "i", "cores": "I",
    "name": "j", "threads": "J", "comment": "k", "arraytaskid": "K", "timelimit": "l",
    "timeleft": "L", "minmemory": "m", "timeused": "M", "reqnodes": "n", "nodelist": "N",
    "command": "o", "contiguous": "O", "priority": "p", "partition": "P", "qos": "q",
    "prioritylong": "Q", "reason": "r", "reasonlist": "R", "starttime": "S",
    "statecompact": "t", "state": "T", "userid": "U", "username": "u", "reservation": "v",
    "submittime": "V", "wckey": "w", "licenses": "W", "excnodes": "x", "corespec": "X",
    "nice": "y", "schednodes": "Y", "sct": "z", "workdir": "Z",
    "numtasks": "numtasks", "exit_code": "exit_code", "stdout": "stdout", "stderr": "stderr",
    "stdin": "stdin", "cpus-per-task": "cpus-per-task", "cpuspertask": "cpus-per-task",
    "tres-alloc": "tres-alloc", "pendingtime": "pendingtime", "cluster": "cluster",
    "eligibletime": "eligibletime", "accruetime": "eligibletime", "restartcnt": "restartcnt",
}  # fmt: skip


def parse_squeue_long_format(spec: str) -> Format:
    """Parse squeue ``-O``: ``name[:[.]size][suffix],...``; no size means 20, left."""
    fields = []
    for token in (t for t in spec.split(",") if t):
        name, sized, rest = token.partition(":")
        right, width, suffix = False, 20, ""
        if sized:
            right = rest.startswith(".")
            digits = rest[1:] if right else rest
            k = 0
            while k < len(digits) and digits[k].isdigit():
                k += 1
            width = int(digits[:k]) if k else 0
            suffix = digits[k:]
        code = _SQUEUE_LONG_NAMES.get(name.lower(), "?" + name)
        fields.append(Field(code, width, right, suffix, "%" + token))
    return Format("", tuple(fields))


def unknown_codes(fmt: Format, kind: str = "squeue") -> list[str]:
    """Field codes of ``fmt`` that ``kind`` (``squeue`` or ``sinfo``) does not know."""
    table = _JOB_COLS if kind == "squeue" else _NODE_COLS
    return [f.code.lstrip("?") for f in fmt.fields if f.code not in table]


def _fit(value: str, width: int, right: bool, cut: bool) -> str:
    if not width:
        return value
    padded = value.rjust(width) if right else value.ljust(width)
    return padded[:width] if cut else padded


class _Col(NamedTuple):
    header: str
    value: Callable[[Any, Any], str]
    cut: bool | Callable[[Any], bool] = True  # cut values to the width
    header_cut: bool = True
    node: bool = False  # sinfo: a per-node value, so nodes are grouped by it
    attr: str = ""  # fast path: the value is this attribute of the row (str() of it if num)
    num: bool = False


def _attr(header: str, attr: str, num: bool = False) -> _Col:
    """A column showing one proto field as is; read with ``attrgetter``, no Python call per row."""
    get = operator.attrgetter(attr)
    if num:
        return _Col(header, lambda r, c: str(get(r)), attr=attr, num=True)
    return _Col(header, lambda r, c: get(r), attr=attr)


def _table(
    fmt: Format, cols: dict[str, _Col], rows: Sequence[Any], ctx: Any, header: bool
) -> list[str]:
    """Render ``rows`` through ``fmt``; one string per line, header first."""
    columns: list[list[str]] = []
    head: list[str] = [fmt.prefix]
    for f in fmt.fields:
        col = cols.get(f.code)
        if col is None:
            literal = f.token + f.suffix
            columns.append([literal] * len(rows))
            head.append(literal)
            continue
        if col.attr:
            vals = list(map(operator.attrgetter(col.attr), rows))
            if col.num:
                vals = list(map(str, vals))
        else:
            fn = col.value
            vals = [fn(r, ctx) for r in rows]
        width = f.width
        if width == AUTO_WIDTH:
            floor = 9 if f.code in ("N", "P") else 0
            width = max([floor, len(col.header), *map(len, vals)])
        right, suffix, cut = f.right, f.suffix, col.cut
        if not width:
            out = [v + suffix for v in vals] if suffix else vals
        elif callable(cut):
            out = [_fit(v, width, right, cut(r)) + suffix for v, r in zip(vals, rows, strict=True)]
        elif right:
            out = (
                [v.rjust(width)[:width] + suffix for v in vals]
                if cut
                else [v.rjust(width) + suffix for v in vals]
            )
        else:
            out = (
                [v.ljust(width)[:width] + suffix for v in vals]
                if cut
                else [v.ljust(width) + suffix for v in vals]
            )
        columns.append(out)
        head.append(_fit(col.header, width, right, col.header_cut) + suffix)
    prefix = fmt.prefix
    lines = ["".join(head)] if header else []
    if columns:
        lines.extend(prefix + "".join(parts) for parts in zip(*columns, strict=True))
    else:
        lines.extend(prefix for _ in rows)
    return lines


# ---------------------------------------------------------------- shared value helpers

_compress_fn: Callable[..., str] | None = None


def _compress(names: Sequence[str]) -> str:
    """Hostlist expression for ``names``, sorted as SLURM prints node lists (``n[1-4]``)."""
    global _compress_fn
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    if _compress_fn is None:
        from gsched.common.hostlist import compress

        _compress_fn = compress
    return _compress_fn(names, sort=True)


def nodelist(names: Sequence[str]) -> str:
    """SLURM's node list for ``names``: sorted hostlist expression, ``""`` for none."""
    return _compress(names)


def _iso(t: float) -> str:
    """SLURM's timestamp: ``2026-11-25T18:37:44`` local time, ``N/A`` for unset."""
    if not t:
        return "N/A"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(t)))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_line(now: float) -> str:
    """The ``-l`` header line, C ``ctime`` style: ``Wed Nov 25 18:37:50 2026``."""
    tm = time.localtime(int(now))
    return (
        f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}"
    )


def _secs(t: int) -> str:
    """squeue's duration: ``0:04``, ``1:05:07``, ``2-01:05:07``; INVALID past a year.

    Not ``durations.format_elapsed``: squeue's ``_print_secs`` also gives INVALID
    above 365 days, and this runs once per row and column.
    """
    if t < 0 or t > 365 * 86400:
        return "INVALID"
    days, rem = divmod(t, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}"


def _hms(t: int) -> str:
    """sinfo's duration: ``00:30:00``, ``1-00:00:00``."""
    from gsched.common.durations import format_hms

    return format_hms(t)


def _mem(mb: int, exact: bool = True) -> str:
    """SLURM's memory figure from MB: ``64000M``, ``2G``; inexact: ``62.50G``."""
    if mb <= 0:
        return "0"
    units = "MGTP"
    value, unit = float(mb), 0
    while value >= 1024 and unit < 3 and (not exact or value % 1024 == 0):
        value /= 1024
        unit += 1
    if value == int(value):
        return f"{int(value)}{units[unit]}"
    return f"{value:.2f}{units[unit]}"


def _ranges(indices: Iterable[int]) -> str:
    """``0-1,4`` from GPU indices."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


# ---------------------------------------------------------------- job states

JOB_STATE_CODES = {
    "PENDING": "PD", "RUNNING": "R", "SUSPENDED": "S", "COMPLETED": "CD",
    "CANCELLED": "CA", "FAILED": "F", "TIMEOUT": "TO", "NODE_FAIL": "NF",
    "PREEMPTED": "PR", "BOOT_FAIL": "BF", "DEADLINE": "DL", "OUT_OF_MEMORY": "OOM",
    "COMPLETING": "CG", "CONFIGURING": "CF", "RESIZING": "RS", "REQUEUED": "RQ",
    "REQUEUE_FED": "RF", "REQUEUE_HOLD": "RH", "SPECIAL_EXIT": "SE", "STOPPED": "ST",
    "SIGNALING": "SI", "STAGE_OUT": "SO", "REVOKED": "RV", "RESV_DEL_HOLD": "RD",
}  # fmt: skip
JOB_STATES = tuple(JOB_STATE_CODES)
FINISHED_JOB_STATES = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
     "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"}
)  # fmt: skip
ACTIVE_JOB_STATES = tuple(s for s in JOB_STATES if s not in FINISHED_JOB_STATES)
_BY_CODE = {code: name for name, code in JOB_STATE_CODES.items()}
# squeue shows "(Reason)" instead of the node list for these
_REASON_STATES = frozenset(
    {"PENDING", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "FAILED", "STAGE_OUT"}
)


def job_state_code(state: str) -> str:
    """``PENDING`` -> ``PD``; unknown names come back unchanged."""
    return JOB_STATE_CODES.get(state, state)


def parse_job_states(text: str) -> tuple[list[str], bool]:
    """squeue ``-t``: names or codes, any case, comma separated; ``all``.

    Returns:
        (full state names, True when ``all`` was asked).

    Raises:
        OptionError: ``Invalid job state specified: X``.
    """
    if text.strip().lower() == "all":
        return [], True
    names: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        upper = token.upper()
        name = upper if upper in JOB_STATE_CODES else _BY_CODE.get(upper)
        if name is None:
            raise OptionError(f"Invalid job state specified: {token}")
        if name not in names:
            names.append(name)
    return names, False


# ---------------------------------------------------------------- squeue columns


class _JobCtx:
    """Per-render state for job columns: the clock and small caches."""

    __slots__ = ("durations", "iso", "now")

    def __init__(self, now: float) -> None:
        self.now = int(now)
        self.iso: dict[int, str] = {}
        self.durations: dict[int, str] = {}

    def secs(self, t: int) -> str:
        s = self.durations.get(t)
        if s is None:
            s = self.durations[t] = _secs(t)
        return s

    def time(self, t: float) -> str:
        key = int(t)
        s = self.iso.get(key)
        if s is None:
            s = self.iso[key] = _iso(key)
        return s


def _used(j: pb.JobInfo, now: int) -> int:
    """Seconds the job has run (squeue's ``job_time_used``)."""
    if not j.start_time or j.state == "PENDING":
        return 0
    end = now if (j.state in ("RUNNING", "SUSPENDED") or not j.end_time) else int(j.end_time)
    return max(0, end - int(j.start_time))


def _limit(j: pb.JobInfo, c: _JobCtx) -> str:
    if j.time_limit < 0:
        return "UNLIMITED"
    if j.time_limit == 0:
        return "NOT_SET"
    return _secs(j.time_limit)


def _left(j: pb.JobInfo, c: _JobCtx) -> str:
    if j.time_limit < 0:
        return "UNLIMITED"
    if j.time_limit == 0:
        return "NOT_SET"
    return _secs(j.time_limit - _used(j, c.now))


def _end(j: pb.JobInfo, c: _JobCtx) -> str:
    if j.end_time:
        return c.time(j.end_time)
    if j.start_time and j.state != "PENDING":
        if j.time_limit < 0:
            return "NONE"
        if j.time_limit > 0:
            return c.time(j.start_time + j.time_limit)
    return "N/A"


def _spec(j: pb.JobInfo) -> pb.JobSpec | None:
    return j.spec if j.HasField("spec") else None


def _extra(j: pb.JobInfo, key: str, default: str = "(null)") -> str:
    spec = _spec(j)
    return (spec.extra.get(key) or default) if spec is not None else default


def _gres_per_node(j: pb.JobInfo) -> str:
    """``gres:gpu[:type]:N`` per node, or ``N/A``."""
    spec = _spec(j)
    gtype = spec.gpu_type if spec is not None else ""
    if spec is not None and spec.gpus_per_node > 0:
        per_node = spec.gpus_per_node
    elif j.gpus > 0:
        nodes = max(j.num_nodes, 1)
        per_node = j.gpus // nodes if j.gpus % nodes == 0 else j.gpus
    else:
        return "N/A"
    return f"gres:gpu:{gtype}:{per_node}" if gtype else f"gres:gpu:{per_node}"


def _nodes(j: pb.JobInfo, c: _JobCtx) -> str:
    return _compress(j.nodes) if j.nodes else ""


def _reason_list(j: pb.JobInfo, c: _JobCtx) -> str:
    if j.state in _REASON_STATES:
        return f"({j.reason or 'None'})"
    return _compress(j.nodes) if j.nodes else ""


def _min_cpus(j: pb.JobInfo, c: _JobCtx) -> str:
    return str(max(1, j.num_cpus // max(1, j.num_nodes)))


def _raw_exit(j: pb.JobInfo) -> int:
    return ((j.exit_code & 0xFF) << 8) | (j.exit_signal & 0x7F)


def job_label(j: pb.JobInfo) -> str:
    """``J``; ``A_a`` for an array task; ``A_[4-99%8]`` for an array's pending remainder."""
    if not j.array_job_id:
        return str(j.job_id)
    return f"{j.array_job_id}_{_array_task(j)}"


def _array_task(j: pb.JobInfo) -> str:
    if not j.array_job_id:
        return "N/A"
    if j.array_task_str:
        limit = f"%{j.array_max_tasks}" if j.array_max_tasks else ""
        return f"[{j.array_task_str}{limit}]"
    return str(j.array_task_id)


def expand_array_tasks(jobs: Iterable[pb.JobInfo]) -> list[pb.JobInfo]:
    """``squeue -r``: an array's pending remainder as one line per task."""
    out: list[pb.JobInfo] = []
    for j in jobs:
        if not j.array_task_str:
            out.append(j)
            continue
        for task in _tasks(j.array_task_str):
            one = type(j)()
            one.CopyFrom(j)
            one.array_task_str = ""
            one.array_task_id = task
            out.append(one)
    return out


def _tasks(text: str) -> list[int]:
    ids: list[int] = []
    for item in text.split(","):
        rng, _, step = item.partition(":")
        lo, _, hi = rng.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1, int(step or 1)))
    return ids


def _S(text: str) -> Callable[[Any, Any], str]:
    return lambda j, c: text


_JOB_COLS: dict[str, _Col] = {
    "a": _Col("ACCOUNT", lambda j, c: j.account or _extra(j, "account")),
    "A": _attr("JOBID", "job_id", num=True),
    "b": _Col("TRES_PER_NODE", lambda j, c: _gres_per_node(j)),
    "B": _Col("EXEC_HOST", lambda j, c: j.batch_host or "n/a"),
    "c": _Col("MIN_CPUS", _min_cpus),
    "C": _attr("CPUS", "num_cpus", num=True),
    "d": _Col("MIN_TMP_DISK", _S("0")),
    "D": _attr("NODES", "num_nodes", num=True),
    "e": _Col("END_TIME", _end),
    "E": _Col("DEPENDENCY", lambda j, c: j.dependency or "(null)"),
    "f": _Col("FEATURES", lambda j, c: _extra(j, "constraint")),
    "F": _Col("ARRAY_JOB_ID", lambda j, c: str(j.array_job_id or j.job_id)),
    "g": _Col("GROUP", lambda j, c: j.group or str(j.gid)),
    "G": _attr("GROUP", "gid", num=True),
    "h": _Col("OVER_SUBSCRIBE", lambda j, c: "NO" if (_spec(j) and j.spec.exclusive) else "OK"),
    "H": _Col("SOCKETS_PER_NODE", _S("*")),
    "i": _Col("JOBID", lambda j, c: job_label(j)),
    "I": _Col("CORES_PER_SOCKET", _S("*")),
    "j": _attr("NAME", "name"),
    "J": _Col("THREADS_PER_CORE", _S("*")),
    "k": _Col("COMMENT", lambda j, c: (j.spec.comment or "(null)") if _spec(j) else "(null)"),
    "K": _Col("ARRAY_TASK_ID", lambda j, c: _array_task(j)),
    "l": _Col("TIME_LIMIT", _limit, cut=False),
    "L": _Col("TIME_LEFT", _left, cut=False),
    "m": _Col("MIN_MEMORY", lambda j, c: _mem(j.mem_mb)),
    "M": _Col("TIME", lambda j, c: c.secs(_used(j, c.now)), cut=False),
    "n": _Col("REQ_NODES", lambda j, c: j.spec.nodelist if _spec(j) else "", cut=False),
    "N": _Col("NODELIST", _nodes, cut=False, header_cut=False),
    "o": _Col("COMMAND", lambda j, c: _extra(j, "command")),
    "O": _Col("CONTIGUOUS", _S("0")),
    "p": _Col("PRIORITY", lambda j, c: f"{j.priority / 4294967295:16.14f}"),
    "P": _attr("PARTITION", "partition"),
    "q": _Col("QOS", lambda j, c: j.qos or _extra(j, "qos")),
    "Q": _attr("PRIORITY", "priority", num=True),
    "r": _Col("REASON", lambda j, c: j.reason or "None"),
    "R": _Col(
        "NODELIST(REASON)", _reason_list, cut=lambda j: j.state in _REASON_STATES, header_cut=False
    ),
    "S": _Col("START_TIME", lambda j, c: c.time(j.start_time)),
    "t": _Col("ST", lambda j, c: JOB_STATE_CODES.get(j.state, j.state)),
    "T": _attr("STATE", "state"),
    "u": _Col("USER", lambda j, c: j.user or str(j.uid)),
    "U": _attr("UID", "uid", num=True),
    "v": _Col("RESERVATION", lambda j, c: _extra(j, "reservation")),
    "V": _Col("SUBMIT_TIME", lambda j, c: c.time(j.submit_time)),
    "w": _Col("WCKEY", lambda j, c: _extra(j, "wckey")),
    "W": _Col("LICENSES", lambda j, c: _extra(j, "licenses")),
    "x": _Col("EXC_NODES", lambda j, c: j.spec.exclude if _spec(j) else "", cut=False),
    "X": _Col("CORE_SPEC", _S("N/A")),
    "y": _Col("NICE", lambda j, c: str(j.spec.nice) if _spec(j) else "0"),
    "Y": _Col("SCHEDNODES", lambda j, c: j.sched_nodes or "(null)", cut=False, header_cut=False),
    "z": _Col("S:C:T", _S("*:*:*")),
    "Z": _Col("WORK_DIR", lambda j, c: (j.spec.workdir or "(null)") if _spec(j) else "(null)"),
    # -O only
    "numtasks": _Col("TASKS", lambda j, c: str(max(j.num_tasks, 1))),
    "exit_code": _Col("EXIT_CODE", lambda j, c: str(_raw_exit(j))),
    "stdout": _Col("STDOUT", lambda j, c: j.stdout_path),
    "stderr": _Col("STDERR", lambda j, c: j.stderr_path or j.stdout_path),
    "stdin": _Col("STDIN", lambda j, c: (j.spec.input or "/dev/null") if _spec(j) else "/dev/null"),
    "cpus-per-task": _Col(
        "CPUS_PER_TASK", lambda j, c: str(max(j.spec.cpus_per_task, 1)) if _spec(j) else "1"
    ),
    "tres-alloc": _Col("TRES_ALLOC", lambda j, c: _tres(j, alloc=True)),
    "pendingtime": _Col(
        "PENDING_TIME",
        lambda j, c: str(
            int((j.start_time if j.start_time and j.start_time < c.now else c.now) - j.submit_time)
        ),
    ),
    "cluster": _Col("CLUSTER", _S("gsched")),
    "eligibletime": _Col("ELIGIBLE_TIME", lambda j, c: c.time(j.submit_time)),
    "restartcnt": _Col("RESTARTCNT", lambda j, c: str(j.restart_count)),
}

# codes whose values need JobInfo.spec (ask the controller for ``detail``)
_SPEC_CODES = frozenset("aEfhknoqvwWxyZ") | {"stdin", "cpus-per-task"}


def squeue_all_format() -> str:
    """squeue's ``-o %all``: every one-letter field, ``|`` separated."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "|".join(f"%{c}" for c in letters if c in _JOB_COLS)


def needs_spec(fmt: Format) -> bool:
    """Whether rendering ``fmt`` reads ``JobInfo.spec``."""
    return bool(fmt.codes() & _SPEC_CODES)


def apply_planned(reply: pb.ListJobsReply) -> None:
    """Put the controller's planned starts on the pending jobs: ``start_time`` (squeue
    --start's START_TIME, scontrol's StartTime) and ``sched_nodes`` (SCHEDNODES)."""
    if not reply.planned:
        return
    plan = {p.job_id: p for p in reply.planned}
    for j in reply.jobs:
        p = plan.get(j.job_id)
        if p is not None and j.state == "PENDING":
            j.start_time = p.start_time
            j.sched_nodes = nodelist(list(p.nodes))


def render_jobs(
    jobs: Sequence[pb.JobInfo], fmt: Format, now: float, *, header: bool = True
) -> list[str]:
    """squeue's table for ``jobs`` (already filtered and sorted); one string per line."""
    return _table(fmt, _JOB_COLS, jobs, _JobCtx(now), header)


class _StepRow:
    """A step with its job, for ``squeue -s`` columns."""

    __slots__ = ("job", "step")

    def __init__(self, step: pb.StepInfo, job: pb.JobInfo | None) -> None:
        self.step, self.job = step, job


def _step_used(r: _StepRow, c: _JobCtx) -> str:
    end = int(r.step.end_time) if r.step.end_time else c.now
    return c.secs(max(0, end - int(r.step.start_time)))


_STEP_COLS: dict[str, _Col] = {
    "i": _Col("STEPID", lambda r, c: f"{r.step.job_id}.{r.step.step_id}"),
    "A": _Col("STEPID", lambda r, c: f"{r.step.job_id}.{r.step.step_id}"),
    "j": _Col("NAME", lambda r, c: r.step.name),
    "P": _Col("PARTITION", lambda r, c: r.job.partition if r.job else ""),
    "u": _Col("USER", lambda r, c: r.job.user if r.job else ""),
    "M": _Col("TIME", _step_used, cut=False),
    "N": _Col("NODELIST", lambda r, c: nodelist(r.step.nodes), cut=False, header_cut=False),
    "b": _Col("TRES_PER_NODE", _S("N/A")),
    "l": _Col("TIME_LIMIT", lambda r, c: "UNLIMITED"),
    "S": _Col("START_TIME", lambda r, c: c.time(r.step.start_time)),
    "T": _Col("STATE", lambda r, c: r.step.state),
}


def render_steps(
    steps: Sequence[pb.StepInfo], jobs: Sequence[pb.JobInfo], fmt: Format | None, now: float,
    *, header: bool = True,
) -> list[str]:
    """``squeue -s``: one line per running step (JOBID.STEPID), header first."""
    by_id = {j.job_id: j for j in jobs}
    rows = [_StepRow(s, by_id.get(s.job_id)) for s in steps]
    return _table(fmt or parse_format(SQUEUE_STEPS_FORMAT), _STEP_COLS, rows, _JobCtx(now), header)


def render_steps_header(fmt: Format | None = None) -> str:
    """``squeue -s``'s header line alone."""
    return render_steps([], [], fmt, 0.0)[0]


# ---------------------------------------------------------------- squeue sorting


def _start_key(now: int) -> Callable[[pb.JobInfo], int]:
    def key(j: pb.JobInfo) -> int:
        if not j.start_time:
            return now + 100
        if j.state == "PENDING" and j.start_time < now:
            return now
        return int(j.start_time)

    return key


def _first_node(j: pb.JobInfo) -> tuple[Any, ...]:
    return _natural(j.nodes[0]) if j.nodes else ()


_SORT_KEYS: dict[str, Callable[[pb.JobInfo, int], Any]] = {
    "A": lambda j, now: j.job_id,
    "B": lambda j, now: j.batch_host,
    "C": lambda j, now: j.num_cpus,
    "D": lambda j, now: j.num_nodes,
    "e": lambda j, now: j.end_time,
    "g": lambda j, now: j.group,
    "G": lambda j, now: j.gid,
    "i": lambda j, now: j.job_id,
    "j": lambda j, now: j.name,
    "l": lambda j, now: j.time_limit if j.time_limit >= 0 else 1 << 62,
    "L": lambda j, now: (j.time_limit - _used(j, now)) if j.time_limit >= 0 else 1 << 62,
    "m": lambda j, now: j.mem_mb,
    "M": lambda j, now: _used(j, now),
    "N": _first_node,
    "p": lambda j, now: j.priority,
    "P": lambda j, now: j.partition,
    "Q": lambda j, now: j.priority,
    "t": lambda j, now: JOB_STATE_CODES.get(j.state, j.state),
    "T": lambda j, now: j.state,
    "u": lambda j, now: j.user,
    "U": lambda j, now: j.uid,
    "V": lambda j, now: j.submit_time,
}
_SORT_IGNORED = frozenset("cdfhnO")  # accepted by squeue, no effect


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """squeue ``-S``: ``P,t,-p`` -> ``[("P", False), ("t", False), ("p", True)]``.

    Raises:
        OptionError: ``Invalid sort specification: X``.
    """
    keys: list[tuple[str, bool]] = []
    for i, ch in enumerate(spec):
        if ch in ",+- ":
            continue
        if ch not in _SORT_KEYS and ch not in _SORT_IGNORED and ch != "S":
            raise OptionError(f"Invalid sort specification: {ch}")
        if ch in _SORT_IGNORED:
            continue
        keys.append((ch, i > 0 and spec[i - 1] == "-"))
    return keys


def sort_jobs(jobs: Iterable[pb.JobInfo], spec: str, now: float) -> list[pb.JobInfo]:
    """Order jobs as squeue does for ``-S spec`` (``P,t,-p`` by default)."""
    out = list(jobs)
    t = int(now)
    start = _start_key(t)
    out.sort(key=start, reverse=True)
    for code, reverse in reversed(parse_sort(spec)):
        if code == "S":
            out.sort(key=start, reverse=reverse)
            continue
        fn = _SORT_KEYS[code]
        out.sort(key=lambda j, fn=fn: fn(j, t), reverse=reverse)
    return out


# ---------------------------------------------------------------- squeue --json

SLURM_META = {
    "plugin": {"type": "openapi/v0.0.38", "name": "Slurm OpenAPI v0.0.38"},
    "Slurm": {"version": {"major": 22, "micro": 8, "minor": 5}, "release": "22.05.8"},
}
_INFINITE = 4294967295


def slurm_json(doc: dict[str, Any]) -> str:
    """``doc`` as SLURM prints JSON: two-space indent, ``/`` escaped as ``\\/``."""
    # SLURM's serializer escapes "/" ("N\/A"); do the same so the bytes match
    import json

    return json.dumps(doc, indent=2).replace("/", "\\/") + "\n"


def _tres(j: pb.JobInfo, alloc: bool) -> str:
    if alloc and (not j.start_time or j.state == "PENDING"):
        return ""
    nodes = max(j.num_nodes, 1)
    parts = [f"cpu={j.num_cpus}"]
    if j.mem_mb > 0:
        parts.append(f"mem={_mem(j.mem_mb * nodes, exact=False)}")
    parts += [f"node={nodes}", f"billing={j.num_cpus}"]
    if j.gpus > 0:
        parts.append(f"gres/gpu={j.gpus}")
    return ",".join(parts)


def _job_json(j: pb.JobInfo, now: int, cluster: str) -> dict[str, Any]:
    spec = _spec(j)
    started = bool(j.start_time) and j.state != "PENDING"
    nodes = _compress(j.nodes) if j.nodes else ""
    cpus_per_node = max(1, j.num_cpus // max(1, j.num_nodes))
    gtype = spec.gpu_type if spec is not None else ""
    gres_detail = [
        f"gpu:{gtype + ':' if gtype else ''}{len(a.indices)}(IDX:{_ranges(a.indices)})"
        for a in j.gpu_alloc
        if a.indices
    ]
    resources: dict[str, Any] = {}
    if started and j.nodes:
        allocs = {a.node: a for a in j.gpu_alloc}
        resources = {
            "nodes": nodes,
            "allocated_cores": j.num_cpus,
            "allocated_hosts": len(j.nodes),
            "allocated_nodes": [
                {
                    "sockets": {"0": {"cores": {
                        str(k): "allocated"
                        for k in range(allocs[n].cpus if n in allocs and allocs[n].cpus else cpus_per_node)
                    }}},
                    "nodename": n,
                    "cpus_used": 0,
                    "memory_used": 0,
                    "memory_allocated": allocs[n].mem_mb if n in allocs else j.mem_mb,
                }
                for n in j.nodes
            ],
        }  # fmt: skip
    limit = _INFINITE if j.time_limit < 0 else (j.time_limit + 59) // 60
    end = int(j.end_time)
    if not end and started and j.time_limit > 0:
        end = int(j.start_time) + j.time_limit
    gpn = _gres_per_node(j)
    requeue = spec is None or spec.requeue != 2
    return {
        "account": _extra(j, "account", ""),
        "accrue_time": int(j.submit_time),
        "admin_comment": "",
        "array_job_id": j.array_job_id,
        "array_task_id": (
            j.array_task_id if j.array_job_id and not j.array_task_str else None
        ),
        "array_max_tasks": j.array_max_tasks,
        "array_task_string": j.array_task_str,
        "association_id": 0,
        "batch_features": "",
        "batch_flag": True,
        "batch_host": j.batch_host,
        "flags": ["JOB_WAS_RUNNING"] if started else [],
        "burst_buffer": "",
        "burst_buffer_state": "",
        "cluster": cluster,
        "cluster_features": "",
        "command": _extra(j, "command", ""),
        "comment": spec.comment if spec is not None else "",
        "container": "",
        "contiguous": False,
        "core_spec": None,
        "thread_spec": None,
        "cores_per_socket": None,
        "billable_tres": float(j.num_cpus),
        "cpus_per_task": spec.cpus_per_task if spec is not None and spec.cpus_per_task else None,
        "cpu_frequency_minimum": None,
        "cpu_frequency_maximum": None,
        "cpu_frequency_governor": None,
        "cpus_per_tres": "",
        "deadline": 0,
        "delay_boot": 0,
        "dependency": _extra(j, "dependency", ""),
        "derived_exit_code": 0,
        "eligible_time": int(j.submit_time),
        "end_time": end,
        "excluded_nodes": spec.exclude if spec is not None else "",
        "exit_code": _raw_exit(j),
        "features": _extra(j, "constraint", ""),
        "federation_origin": "",
        "federation_siblings_active": "",
        "federation_siblings_viable": "",
        "gres_detail": gres_detail,
        "group_id": j.gid,
        "group_name": j.group,
        "job_id": j.job_id,
        "job_resources": resources,
        "job_state": j.state,
        "last_sched_evaluation": int(j.start_time or j.submit_time),
        "licenses": "",
        "max_cpus": 0,
        "max_nodes": spec.nodes_max if spec is not None else 0,
        "mcs_label": "",
        "memory_per_tres": "",
        "name": j.name,
        "nodes": nodes,
        "nice": spec.nice if spec is not None and spec.nice else None,
        "tasks_per_core": None,
        "tasks_per_node": spec.ntasks_per_node if spec is not None else 0,
        "tasks_per_socket": None,
        "tasks_per_board": 0,
        "cpus": j.num_cpus,
        "node_count": j.num_nodes,
        "tasks": max(j.num_tasks, 1),
        "het_job_id": 0,
        "het_job_id_set": "",
        "het_job_offset": 0,
        "partition": j.partition,
        "prefer": "",
        "memory_per_node": j.mem_mb or None,
        "memory_per_cpu": spec.mem_per_cpu_mb if spec is not None and spec.mem_per_cpu_mb else None,
        "minimum_cpus_per_node": cpus_per_node,
        "minimum_tmp_disk_per_node": 0,
        "preempt_time": 0,
        "pre_sus_time": 0,
        "priority": j.priority,
        "profile": None,
        "qos": _extra(j, "qos", ""),
        "reboot": False,
        "required_nodes": spec.nodelist if spec is not None else "",
        "requeue": requeue,
        "resize_time": 0,
        "restart_cnt": j.restart_count,
        "resv_name": "",
        "shared": None,
        "show_flags": ["SHOW_ALL", "SHOW_DETAIL", "SHOW_LOCAL"],
        "sockets_per_board": 0,
        "sockets_per_node": None,
        "start_time": int(j.start_time),
        "state_description": "",
        "state_reason": j.reason or "None",
        "standard_error": j.stderr_path or j.stdout_path,
        "standard_input": (spec.input if spec is not None and spec.input else "/dev/null"),
        "standard_output": j.stdout_path,
        "submit_time": int(j.submit_time),
        "suspend_time": 0,
        "system_comment": "",
        "time_limit": limit,
        "time_minimum": 0,
        "threads_per_core": None,
        "tres_bind": "",
        "tres_freq": "",
        "tres_per_job": f"gres:gpu:{spec.gpus}" if spec is not None and spec.gpus else "",
        "tres_per_node": "" if gpn == "N/A" else gpn,
        "tres_per_socket": "",
        "tres_per_task": f"gres:gpu:{spec.gpus_per_task}"
        if spec is not None and spec.gpus_per_task
        else "",
        "tres_req_str": _tres(j, alloc=False),
        "tres_alloc_str": _tres(j, alloc=True),
        "user_id": j.uid,
        "user_name": j.user,
        "wckey": "",
        "current_working_directory": spec.workdir if spec is not None else "",
    }


def jobs_json(jobs: Iterable[pb.JobInfo], now: float, *, cluster: str = "gsched") -> str:
    """``squeue --json``: ``{"meta", "errors", "jobs": [...]}`` with SLURM v0.0.38 keys."""
    doc = {
        "meta": SLURM_META,
        "errors": [],
        "jobs": [_job_json(j, int(now), cluster) for j in jobs],
    }
    return slurm_json(doc)


# ---------------------------------------------------------------- node states

# gsched state -> (sinfo %t, sinfo %T, SLURM's numeric state for ordering)
_NODE_STATES = {
    "IDLE": ("idle", "idle", 2),
    "MIXED": ("mix", "mixed", 5),
    "ALLOCATED": ("alloc", "allocated", 3),
    "COMPLETING": ("comp", "completing", 0x400 | 3),
    "DRAINING": ("drng", "draining", 0x200 | 5),
    "DRAINED": ("drain", "drained", 0x200 | 2),
    "DOWN": ("down", "down", 1),
    "UNKNOWN": ("unk", "unknown", 0),
}
_NO_RESPOND = 0x800
_OTHER_STATES = frozenset({"DOWN", "DRAINED", "DRAINING", "UNKNOWN"})  # the O of A/I/O/T
_ALLOC_STATES = frozenset({"ALLOCATED", "MIXED", "COMPLETING"})
# sinfo -t: (names a prefix may match, gsched states)
_STATE_WORDS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("unknown", "unk"), frozenset({"UNKNOWN"})),
    (("down",), frozenset({"DOWN"})),
    (("idle",), frozenset({"IDLE"})),
    (("allocated", "alloc"), frozenset({"ALLOCATED"})),
    (("mixed", "mix"), frozenset({"MIXED"})),
    (("drain",), frozenset({"DRAINED", "DRAINING"})),
    (("drained",), frozenset({"DRAINED"})),
    (("draining", "drng"), frozenset({"DRAINING"})),
    (("completing", "comp"), frozenset({"COMPLETING"})),
)


def node_state_names(n: pb.NodeInfo) -> tuple[str, str]:
    """sinfo's ``(%t, %T)`` for a node: ``("mix", "mixed")``, ``("down*", "down*")``."""
    short, long_, _ = _NODE_STATES.get(n.state, (n.state.lower(), n.state.lower(), 0))
    if not n.connected:
        return short + "*", long_ + "*"
    return short, long_


def _node_state_order(n: pb.NodeInfo) -> int:
    value = _NODE_STATES.get(n.state, ("", "", 0))[2]
    return value if n.connected else value | _NO_RESPOND


def parse_node_states(text: str) -> frozenset[str] | None:
    """sinfo ``-t``: comma list of state names or prefixes; ``None`` for ``all``.

    Raises:
        OptionError: ``Bad state string: "X"``.
    """
    if text.strip().lower() == "all":
        return None
    out: set[str] = set()
    for token in (t.strip().lower() for t in text.split(",")):
        if not token:
            continue
        for words, states in _STATE_WORDS:
            if any(w.startswith(token) for w in words):
                out |= states
                break
        else:
            raise OptionError(f'Bad state string: "{token}"')
    return frozenset(out)


# ---------------------------------------------------------------- sinfo rows and columns


def _natural(name: str) -> tuple[Any, ...]:
    """Sort key putting ``n2`` before ``n10``."""
    key: list[Any] = []
    digits = ""
    text = ""
    for ch in name:
        if ch.isdigit():
            if text:
                key.append((0, text))
                text = ""
            digits += ch
        else:
            if digits:
                key.append((1, int(digits)))
                digits = ""
            text += ch
    if text:
        key.append((0, text))
    if digits:
        key.append((1, int(digits)))
    return tuple(key)


class _Row:
    __slots__ = ("nodes", "part")

    def __init__(self, part: pb.PartitionInfo | None, nodes: list[pb.NodeInfo]) -> None:
        self.part = part
        self.nodes = nodes


class _NodeCtx:
    __slots__ = ("cluster",)

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster


def _gres(n: pb.NodeInfo) -> str:
    if not n.gpus:
        return "(null)"
    types: dict[str, int] = {}
    for g in n.gpus:
        types[g.type] = types.get(g.type, 0) + 1
    return ",".join(f"gpu:{t}:{k}" if t else f"gpu:{k}" for t, k in types.items())


def _gres_used(n: pb.NodeInfo) -> str:
    if not n.gpus:
        return "(null)"
    types = {g.type for g in n.gpus}
    gtype = types.pop() if len(types) == 1 else ""
    return f"gpu:{gtype}:{n.gpus_alloc}" if gtype else f"gpu:{n.gpus_alloc}"


def _aiot(nodes: Sequence[pb.NodeInfo]) -> tuple[int, int, int, int]:
    a = sum(1 for n in nodes if n.state in _ALLOC_STATES)
    o = sum(1 for n in nodes if n.state in _OTHER_STATES)
    return a, len(nodes) - a - o, o, len(nodes)


def _cpus_aiot(nodes: Sequence[pb.NodeInfo]) -> str:
    a = i = o = t = 0
    for n in nodes:
        a += n.cpus_alloc
        t += n.cpus
        if n.state in _OTHER_STATES:
            o += n.cpus - n.cpus_alloc
        else:
            i += n.cpus - n.cpus_alloc
    return f"{a}/{i}/{o}/{t}"


def _same_or_min(values: Sequence[int]) -> str:
    """One figure for a group: the value, or ``min+`` when the nodes differ."""
    if not values:
        return "0"
    low = min(values)
    return str(low) if low == max(values) else f"{low}+"


def _limit_str(seconds: int, unlimited: str) -> str:
    return unlimited if seconds < 0 else _hms(seconds)


def _pname(r: _Row, c: _NodeCtx, star: bool) -> str:
    if r.part is None:
        return "n/a"
    return r.part.name + ("*" if star and r.part.is_default else "")


def _first(r: _Row) -> pb.NodeInfo | None:
    return r.nodes[0] if r.nodes else None


def _node_val(fn: Callable[[pb.NodeInfo], str], empty: str = "") -> Callable[[_Row, _NodeCtx], str]:
    def value(r: _Row, c: _NodeCtx) -> str:
        n = _first(r)
        return fn(n) if n is not None else empty

    return value


def _reason(n: pb.NodeInfo) -> str:
    return n.reason or "none"


_AVAIL = {"UP": "up", "DOWN": "down", "DRAIN": "drain", "INACTIVE": "inact"}

_NODE_COLS: dict[str, _Col] = {
    "a": _Col("AVAIL", lambda r, c: _AVAIL.get(r.part.state or "UP", r.part.state.lower()) if r.part else "n/a"),
    "A": _Col("NODES(A/I)", lambda r, c: "{}/{}".format(*_aiot(r.nodes)[:2])),
    "b": _Col("ACTIVE_FEATURES", _S("(null)"), node=True),
    "B": _Col("MAX_CPUS_PER_NODE", _S("UNLIMITED")),
    "c": _Col("CPUS", lambda r, c: _same_or_min([n.cpus for n in r.nodes]), node=True),
    "C": _Col("CPUS(A/I/O/T)", lambda r, c: _cpus_aiot(r.nodes)),
    "d": _Col("TMP_DISK", _S("0"), node=True),
    "D": _Col("NODES", lambda r, c: str(len(r.nodes))),
    "e": _Col("FREE_MEM", _node_val(lambda n: str(n.free_mem_mb), "N/A"), node=True),
    "E": _Col("REASON", _node_val(_reason, "none"), node=True),
    "f": _Col("AVAIL_FEATURES", _S("(null)"), node=True),
    "F": _Col("NODES(A/I/O/T)", lambda r, c: "{}/{}/{}/{}".format(*_aiot(r.nodes))),
    "g": _Col("GROUPS", _S("all")),
    "G": _Col("GRES", _node_val(_gres, "(null)"), cut=False, node=True),
    "h": _Col("OVERSUBSCRIBE", _S("NO")),
    "H": _Col("TIMESTAMP", _node_val(lambda n: _iso(n.reason_time) if n.reason_time else "Unknown", "Unknown"),
              node=True),
    "i": _Col("RESERVATION", _S("")),
    "I": _Col("PRIO_JOB_FACTOR", _S("1")),
    "K": _Col("GRES_USED", _node_val(_gres_used, "(null)"), cut=False, node=True),
    # gsched extension: how the node confines jobs (cgroup2:memory,cpu,... or none (why))
    "k": _Col("CONFINEMENT", _node_val(lambda n: n.confinement or "unknown", "n/a"), cut=False,
              node=True),
    "l": _Col("TIMELIMIT", lambda r, c: _limit_str(r.part.max_time, "infinite") if r.part else "n/a"),
    "L": _Col("DEFAULTTIME", lambda r, c: _limit_str(r.part.default_time, "n/a") if r.part else "n/a"),
    "m": _Col("MEMORY", lambda r, c: _same_or_min([n.mem_mb for n in r.nodes]), node=True),
    "M": _Col("PREEMPT_MODE", _S("OFF")),
    "n": _Col("HOSTNAMES", lambda r, c: _compress([n.hostname or n.name for n in r.nodes]), cut=False, node=True),
    "N": _Col("NODELIST", lambda r, c: _compress([n.name for n in r.nodes]), cut=False, header_cut=False),
    "o": _Col("NODE_ADDR", lambda r, c: ",".join(n.address for n in r.nodes), cut=False, node=True),
    "O": _Col("CPU_LOAD", _node_val(lambda n: f"{n.cpu_load:.2f}", "N/A"), node=True),
    "p": _Col("PRIO_TIER", _S("1")),
    "P": _Col("PARTITION", lambda r, c: _pname(r, c, True)),
    "r": _Col("ROOT", _S("no")),
    "R": _Col("PARTITION", lambda r, c: _pname(r, c, False)),
    "s": _Col("JOB_SIZE", lambda r, c: f"1-{r.part.max_nodes or 'infinite'}" if r.part else "n/a"),
    "S": _Col("ALLOCNODES", _S("all")),
    "t": _Col("STATE", _node_val(lambda n: node_state_names(n)[0], "n/a"), node=True),
    "T": _Col("STATE", _node_val(lambda n: node_state_names(n)[1], "n/a"), node=True),
    "u": _Col("USER", _node_val(lambda n: n.reason_user or "Unknown", "Unknown"), node=True),
    "U": _Col("USER", _node_val(lambda n: n.reason_user or "Unknown", "Unknown"), node=True),
    "v": _Col("VERSION", _node_val(lambda n: n.version or "N/A", "N/A"), node=True),
    "V": _Col("CLUSTER", lambda r, c: c.cluster),
    "w": _Col("WEIGHT", _S("1"), node=True),
    "X": _Col("SOCKETS", _S("1"), node=True),
    "Y": _Col("CORES", _node_val(lambda n: str(n.cpus)), node=True),
    "z": _Col("S:C:T", _node_val(lambda n: f"1:{n.cpus}:1"), node=True),
    "Z": _Col("THREADS", _S("1"), node=True),
}  # fmt: skip


def _partitions(reply: pb.ListNodesReply) -> list[pb.PartitionInfo]:
    """The reply's partitions; derived from the nodes when the controller sent none."""
    if reply.partitions:
        return list(reply.partitions)
    from gsched.protos import gsched_pb2 as pbm

    seen: dict[str, list[str]] = {}
    for n in reply.nodes:
        for p in n.partitions:
            seen.setdefault(p, []).append(n.name)
    return [
        pbm.PartitionInfo(
            name=p, is_default=(k == 0), state="UP", nodes=names, default_time=-1, max_time=-1
        )
        for k, (p, names) in enumerate(seen.items())
    ]


def _part_nodes(part: pb.PartitionInfo, by_name: dict[str, pb.NodeInfo]) -> list[pb.NodeInfo]:
    names = list(part.nodes)
    if any("[" in x for x in names):
        from gsched.common.hostlist import expand

        names = [y for x in names for y in expand(x)]
    if not names:
        return [n for n in by_name.values() if part.name in n.partitions]
    return [by_name[x] for x in names if x in by_name]


def render_nodes(
    reply: pb.ListNodesReply,
    fmt: Format,
    *,
    mode: str = "partition",
    partitions: Sequence[str] = (),
    nodes: Sequence[str] = (),
    states: frozenset[str] | None = None,
    responding: bool | None = None,
    header: bool = True,
    cluster: str = "gsched",
) -> list[str]:
    """sinfo's table for ``reply``.

    Args:
        mode: ``partition`` (one line per partition and group of alike nodes),
            ``summarize`` (one per partition), ``node`` (``-N``: one per node and
            partition) or ``reasons`` (``-R``: one per reason).
        partitions, nodes: keep only these (empty = all).
        states: keep nodes in these gsched states (``None`` = all; ``-R`` passes its own).
        responding: True keeps connected nodes only (``-r``), False dead ones (``-d``).
    """
    wanted_nodes = set(nodes)

    def keep(n: pb.NodeInfo) -> bool:
        if wanted_nodes and n.name not in wanted_nodes:
            return False
        if states is not None and n.state not in states:
            return False
        return responding is None or n.connected == responding

    all_nodes = sorted((n for n in reply.nodes if keep(n)), key=lambda n: _natural(n.name))
    by_name = {n.name: n for n in all_nodes}
    parts = [p for p in _partitions(reply) if not partitions or p.name in partitions]
    node_codes = [f.code for f in fmt.fields if f.code in _NODE_COLS and _NODE_COLS[f.code].node]
    ctx = _NodeCtx(cluster)
    rows: list[_Row] = []

    def key(n: pb.NodeInfo) -> tuple[str, ...]:
        probe = _Row(None, [n])
        return tuple(_NODE_COLS[c].value(probe, ctx) for c in node_codes)

    if mode == "reasons":
        groups: dict[tuple[str, ...], list[pb.NodeInfo]] = {}
        for n in all_nodes:
            groups.setdefault(key(n), []).append(n)
        rows = [_Row(None, members) for members in groups.values()]
    elif mode == "node":
        members_of = {p.name: {n.name for n in _part_nodes(p, by_name)} for p in parts}
        for n in all_nodes:
            member = [p for p in parts if n.name in members_of[p.name]]
            if member:
                rows.extend(_Row(p, [n]) for p in member)
            elif not partitions:
                rows.append(_Row(None, [n]))
    else:
        unfiltered = not wanted_nodes and states is None and responding is None
        for p in parts:
            members = _part_nodes(p, by_name)
            if not members and unfiltered:
                rows.append(_Row(p, []))  # a partition without nodes: "0 n/a", as sinfo
                continue
            if mode == "summarize":
                rows.append(_Row(p, members))
                continue
            groups = {}
            for n in members:
                groups.setdefault(key(n), []).append(n)
            ordered = sorted(
                groups.values(), key=lambda g: (-_node_state_order(g[0]), _natural(g[0].name))
            )
            rows.extend(_Row(p, g) for g in ordered)
    return _table(fmt, _NODE_COLS, rows, ctx, header)


# ---------------------------------------------------------------- sinfo --json


def _node_json(n: pb.NodeInfo) -> dict[str, Any]:
    flags: list[str] = []
    if n.state in ("IDLE", "MIXED", "ALLOCATED", "DOWN", "UNKNOWN"):
        base = n.state.lower()
    else:
        base = "idle" if n.cpus_alloc == 0 else ("allocated" if n.cpus_alloc >= n.cpus else "mixed")
        flags.append("COMPLETING" if n.state == "COMPLETING" else "DRAIN")
    if not n.connected:
        flags.append("NOT_RESPONDING")
    port = n.address.rsplit(":", 1)[1] if ":" in n.address else ""
    gpus = len(n.gpus)
    tres = f"cpu={n.cpus},mem={_mem(n.mem_mb, exact=False)},billing={n.cpus}"
    if gpus:
        tres += f",gres/gpu={gpus}"
    used = []
    if n.cpus_alloc:
        used.append(f"cpu={n.cpus_alloc}")
    if n.mem_alloc_mb:
        used.append(f"mem={_mem(n.mem_alloc_mb, exact=False)}")
    if n.gpus_alloc:
        used.append(f"gres/gpu={n.gpus_alloc}")
    gres = _gres(n)
    return {
        "architecture": n.arch,
        "burstbuffer_network_address": "",
        "boards": 1,
        "boot_time": int(n.boot_time),
        "comment": "",
        "cores": n.cpus,
        "cpu_binding": 0,
        "cpu_load": round(n.cpu_load * 100),
        "extra": "",
        "free_memory": n.free_mem_mb,
        "cpus": n.cpus,
        "last_busy": int(n.last_seen),
        "features": "",
        "active_features": "",
        "gres": "" if gres == "(null)" else gres,
        "gres_drained": "N/A",
        "gres_used": "" if gres == "(null)" else _gres_used(n),
        "mcs_label": "",
        "name": n.name,
        "next_state_after_reboot": "invalid",
        "address": n.address.rsplit(":", 1)[0] if port.isdigit() else n.address,
        "hostname": n.hostname,
        "state": base,
        "state_flags": flags,
        "next_state_after_reboot_flags": [],
        "operating_system": n.os,
        "owner": None,
        "partitions": list(n.partitions),
        "port": int(port) if port.isdigit() else 0,
        "real_memory": n.mem_mb,
        "reason": n.reason,
        "reason_changed_at": int(n.reason_time),
        "reason_set_by_user": n.reason_user or None,
        "slurmd_start_time": int(n.registered_time),
        "sockets": 1,
        "threads": 1,
        "temporary_disk": 0,
        "weight": 1,
        "tres": tres,
        "slurmd_version": n.version,
        "alloc_memory": n.mem_alloc_mb,
        "alloc_cpus": n.cpus_alloc,
        "idle_cpus": n.cpus - n.cpus_alloc,
        "tres_used": ",".join(used) or None,
        "tres_weighted": float(n.cpus_alloc),
    }


def _partition_json(p: pb.PartitionInfo, members: Sequence[pb.NodeInfo]) -> dict[str, Any]:
    cpus = sum(n.cpus for n in members)
    mem = sum(n.mem_mb for n in members)
    return {
        "flags": ["default"] if p.is_default else [],
        "preemption_mode": ["disabled"],
        "allowed_allocation_nodes": "",
        "allowed_accounts": "",
        "allowed_groups": "",
        "allowed_qos": "",
        "alternative": "",
        "billing_weights": "",
        "default_memory_per_cpu": None,
        "default_time_limit": None if p.default_time < 0 else (p.default_time + 59) // 60,
        "denied_accounts": "",
        "denied_qos": "",
        "preemption_grace_time": 0,
        "maximum_cpus_per_node": -1,
        "maximum_memory_per_node": None,
        "maximum_nodes_per_job": p.max_nodes or -1,
        "max_time_limit": _INFINITE if p.max_time < 0 else (p.max_time + 59) // 60,
        "min nodes per job": 0,
        "name": p.name,
        "nodes": _compress([n.name for n in members]),
        "over_time_limit": None,
        "priority_job_factor": 1,
        "priority_tier": 1,
        "qos": "",
        "state": p.state or "UP",
        "total_cpus": cpus,
        "total_nodes": len(members),
        "tres": f"cpu={cpus},mem={_mem(mem, exact=False)},node={len(members)},billing={cpus}",
    }


def nodes_json(
    reply: pb.ListNodesReply, *, partitions: Sequence[str] = (), nodes: Sequence[str] = ()
) -> str:
    """``sinfo --json``: ``{"meta", "errors", "nodes": [...], "partitions": [...]}``."""
    wanted = set(nodes)
    kept = sorted(
        (n for n in reply.nodes if not wanted or n.name in wanted), key=lambda n: _natural(n.name)
    )
    if partitions:
        kept = [n for n in kept if set(n.partitions) & set(partitions)]
    by_name = {n.name: n for n in kept}
    parts = [p for p in _partitions(reply) if not partitions or p.name in partitions]
    doc = {
        "meta": SLURM_META,
        "errors": [],
        "nodes": [_node_json(n) for n in kept],
        "partitions": [_partition_json(p, _part_nodes(p, by_name)) for p in parts],
    }
    return slurm_json(doc)


# ---------------------------------------------------------------- argv


def normalize_argv(
    argv: Sequence[str], takes_value: Iterable[str], long_names: Iterable[str]
) -> list[str]:
    """Glue option values that look like options to their option, getopt style.

    argparse refuses ``-S -p`` (sort by priority, descending) because ``-p`` looks
    like an option; GNU getopt, which SLURM uses, takes the next word whatever it
    is. ``takes_value`` lists the option strings with a required value (``-S``,
    ``--sort``); ``long_names`` all long options, to resolve abbreviations.
    """
    needs = set(takes_value)
    longs = list(long_names)
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--":
            out.append(arg)
            out.extend(it)
            break
        if arg.startswith("--") and "=" not in arg:
            matches = [x for x in longs if x == arg] or [x for x in longs if x.startswith(arg)]
            if len(matches) == 1 and matches[0] in needs:
                value = next(it, None)
                out.append(matches[0] if value is None else f"{matches[0]}={value}")
                continue
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            # a cluster like -hS: the value follows the first option that takes one
            for k in range(1, len(arg)):
                if f"-{arg[k]}" in needs:
                    if k == len(arg) - 1:
                        value = next(it, None)
                        out.append(arg if value is None else arg + value)
                    else:
                        out.append(arg)
                    break
            else:
                out.append(arg)
            continue
        out.append(arg)
    return out
