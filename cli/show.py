"""Pure renderers for ``gctl show ...`` in the exact shape of SLURM 22.05's ``scontrol show``.

No I/O and no grpc here: each function takes wire messages (or plain values) and
returns the text scontrol would print, trailing newlines included, so a command
only has to ``write`` it. Layout rules copied from SLURM's ``slurm_sprint_*``:

* a record is a list of lines joined by ``"\\n   "`` (``" "`` with ``-o``);
* a job record ends with one more separator, then ``"\\n\\n"`` (``"\\n"`` with ``-o``),
  which is why ``scontrol show job`` leaves a line of three spaces before the blank;
* node and partition records end with ``"\\n\\n"`` (``"\\n"`` with ``-o``);
* some lines keep a trailing space (``NodeName=n1 Arch=x86_64 CoresPerSocket=16 ``,
  ``Partitions=main ``, ``Comment=... ``) exactly as SLURM prints them.

Times are local wall-clock ``YYYY-MM-DDTHH:MM:SS`` (``Unknown`` for 0), as
``slurm_make_time_str`` prints them with the default ``SLURM_TIME_FORMAT``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsched.protos.gsched_pb2 import JobInfo, NodeInfo, PartitionInfo, PingReply

__all__ = [
    "controller_host",
    "format_mem",
    "format_time",
    "ping_line",
    "show_config",
    "show_hostlist",
    "show_hostnames",
    "show_job",
    "show_node",
    "show_partition",
]

# Reasons for which SLURM shows EligibleTime=Unknown: the job is not eligible yet.
_NOT_ELIGIBLE = frozenset(
    {"JobHeldUser", "JobHeldAdmin", "Dependency", "DependencyNeverSatisfied", "BeginTime"}
)

# Node states gsched reports that scontrol spells as a base state plus a flag.
_DRAIN_STATES = frozenset({"DRAINED", "DRAINING"})


def format_time(ts: float) -> str:
    """``2026-11-25T18:37:44`` in local time, or ``Unknown`` for 0 (not set)."""
    if not ts or ts <= 0:
        return "Unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def format_mem(mb: float, exact: bool = False) -> str:
    """A size in MB as SLURM's ``convert_num_unit`` prints it.

    ``62.50G`` for 64000 MB, ``250G`` for 256000 MB, ``0`` for 0. With ``exact``
    (MinMemoryNode) a unit is only taken when the value divides evenly: 4096 ->
    ``4G``, 4000 -> ``4000M``.
    """
    if mb <= 0:
        return "0"
    units = "MGTPE"
    value = float(mb)
    i = 0
    if exact:
        whole = int(mb)
        while whole >= 1024 and whole % 1024 == 0 and i < len(units) - 1:
            whole //= 1024
            i += 1
        return f"{whole}{units[i]}"
    while value > 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    if value == int(value):
        return f"{int(value)}{units[i]}"
    return f"{value:.2f}{units[i]}"


def _hms(seconds: float) -> str:
    from gsched.common.durations import format_hms

    return format_hms(int(seconds))


def _time_limit(seconds: int) -> str:
    if seconds < 0:
        return "UNLIMITED"
    if seconds == 0:
        return "Partition_Limit"
    return _hms(seconds)


def _compress(names: Sequence[str]) -> str:
    # One name needs no hostlist machinery (and no import on the common path).
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    from gsched.common.hostlist import compress

    return compress(list(names))


def _join(lines: Sequence[str], oneliner: bool) -> str:
    return (" " if oneliner else "\n   ").join(lines)


def _or_null(value: str) -> str:
    return value if value else "(null)"


# ---------------------------------------------------------------------------- jobs


def _job_tres(job: JobInfo) -> str:
    parts = [f"cpu={job.num_cpus}"]
    nodes = max(job.num_nodes, 1)
    if job.mem_mb > 0:
        parts.append(f"mem={format_mem(job.mem_mb * nodes)}")
    parts.append(f"node={nodes}")
    parts.append(f"billing={job.num_cpus}")
    if job.gpus > 0:
        parts.append(f"gres/gpu={job.gpus}")
    return ",".join(parts)


def _gres(kind_type: str, count: int) -> str:
    return f"gres:gpu:{kind_type}:{count}" if kind_type else f"gres:gpu:{count}"


def _run_time(job: JobInfo, now: float) -> int:
    if job.state == "PENDING" or not job.start_time:
        return 0
    end = job.end_time if job.end_time else now
    return max(0, int(end - job.start_time))


def _end_time(job: JobInfo) -> str:
    if job.state == "PENDING":
        return "Unknown"
    if job.end_time:
        return format_time(job.end_time)
    if job.start_time and job.time_limit > 0:
        return format_time(job.start_time + job.time_limit)
    return "Unknown"


def _alloc_lines(job: JobInfo) -> list[str]:
    """``scontrol -d show job``'s JOB_GRES line and one ``  Nodes=`` line per node.

    gsched does not pin CPUs, so CPU_IDs is ``N/A``; the GPU indices are the real ones.
    """
    gpu_type = job.spec.gpu_type
    label = f"gpu:{gpu_type}" if gpu_type else "gpu"
    lines = [f"JOB_GRES={f'{label}:{job.gpus}' if job.gpus else '(null)'}"]
    for alloc in job.gpu_alloc:
        gres = (
            f"{label}:{len(alloc.indices)}(IDX:{_index_list(alloc.indices)})"
            if alloc.indices
            else ""
        )
        lines.append(f"  Nodes={alloc.node} CPU_IDs=N/A Mem={alloc.mem_mb} GRES={gres}")
    return lines


def show_job(
    job: JobInfo, oneliner: bool = False, now: float | None = None, details: bool = False
) -> str:
    """One job as ``scontrol show job`` prints it (the record's trailing blank line included).

    Args:
        job: the job, ideally listed with ``JobFilter(detail=True)`` so ``spec`` is filled.
        oneliner: ``-o``: the whole record on one line.
        now: the controller clock for RunTime; defaults to ``job.now``, then the local clock.
        details: ``-d``: add the per-node allocation lines (GPU indices) of a started job.
    """
    spec = job.spec
    extra = spec.extra
    if now is None:
        now = job.now or time.time()
    pending = job.state == "PENDING"
    ntasks_per_node = spec.ntasks_per_node
    cpus_per_task = spec.cpus_per_task or 1
    eligible = job.submit_time
    if pending and job.reason in _NOT_ELIGIBLE:
        eligible = 0
    if job.begin_time:  # --begin: eligible from then on, as scontrol shows it
        eligible = max(job.submit_time, job.begin_time)
    if pending and spec.nodes_min:
        # sbatch -N 4 asks for 4-4 nodes, and scontrol shows the range while pending.
        nodes_shown = f"{job.num_nodes or spec.nodes_min}-{spec.nodes_max or spec.nodes_min}"
    elif pending:
        nodes_shown = str(job.num_nodes or 1)
    else:
        nodes_shown = str(job.num_nodes)
    if spec.mem_per_cpu_mb:
        min_mem = f"MinMemoryCPU={format_mem(spec.mem_per_cpu_mb, exact=True)}"
    else:
        min_mem = f"MinMemoryNode={format_mem(spec.mem_mb, exact=True)}"
    if spec.wrapped:
        command = "(null)"
    else:
        command = _or_null(extra.get("command", ""))
    workdir = spec.workdir or spec.submit_dir
    stdout = job.stdout_path or (f"{workdir}/slurm-{job.job_id}.out" if workdir else "")
    stderr = job.stderr_path or stdout
    group = job.group or str(job.gid)

    array = ""
    if job.array_job_id:
        task = job.array_task_str or str(job.array_task_id)
        array = f" ArrayJobId={job.array_job_id} ArrayTaskId={task}"
        if job.array_max_tasks and job.array_task_str:
            array += f" ArrayTaskThrottle={job.array_max_tasks}"
    lines = [
        f"JobId={job.job_id}{array} JobName={job.name}",
        f"UserId={job.user}({job.uid}) GroupId={group}({job.gid}) MCS_label=N/A",
        f"Priority={job.priority} Nice={job.nice or spec.nice} "
        f"Account={_or_null(job.account or extra.get('account', ''))} "
        f"QOS={_or_null(job.qos or extra.get('qos', ''))}",
        f"JobState={job.state} Reason={job.reason or 'None'} "
        f"Dependency={_or_null(job.dependency)}",
        f"Requeue={0 if spec.requeue == 2 else 1} Restarts={job.restart_count} BatchFlag=1 "
        f"Reboot=0 ExitCode={job.exit_code}:{job.exit_signal}",
        f"RunTime={_hms(_run_time(job, now))} TimeLimit={_time_limit(job.time_limit)} TimeMin=N/A",
        f"SubmitTime={format_time(job.submit_time)} EligibleTime={format_time(eligible)}",
        f"AccrueTime={format_time(eligible)}",
        f"StartTime={format_time(job.start_time) if job.start_time else 'Unknown'} "
        f"EndTime={_end_time(job)} Deadline=N/A",
        "SuspendTime=None SecsPreSuspend=0 "
        f"LastSchedEval={format_time(job.submit_time if pending else job.start_time or job.submit_time)}"
        " Scheduler=Main",
        f"Partition={job.partition} AllocNode:Sid={spec.submit_host or 'localhost'}:0",
        f"ReqNodeList={_or_null(spec.nodelist)} ExcNodeList={_or_null(spec.exclude)}",
        f"NodeList={_compress(list(job.nodes))}",
    ]
    if job.limit:  # gsched: the QOS/account limit that keeps it pending
        lines.insert(4, f"Limit={job.limit}")
    if job.HasField("factors"):  # gsched: what the priority is made of (as gprio)
        f = job.factors
        lines.insert(3, f"PriorityFactors=Age={round(f.age)} FairShare={round(f.fairshare)} "
                        f"JobSize={round(f.jobsize)} Partition={round(f.partition_factor)} "
                        f"QOS={round(f.qos_factor)} Nice={f.nice} Tier={f.tier}"
                        + (" SetByOperator=1" if f.admin_set else ""))
    if job.batch_host:
        lines.append(f"BatchHost={job.batch_host}")
    lines += [
        f"NumNodes={nodes_shown} NumCPUs={job.num_cpus} NumTasks={job.num_tasks or 1} "
        f"CPUs/Task={cpus_per_task} ReqB:S:C:T=0:0:*:*",
        f"TRES={_job_tres(job)}",
        f"Socks/Node=* NtasksPerN:B:S:C={ntasks_per_node}:0:*:* CoreSpec=*",
    ]
    if details and job.gpu_alloc:
        lines += _alloc_lines(job)
    lines += [
        f"MinCPUsNode={cpus_per_task * max(ntasks_per_node, 1)} {min_mem} MinTmpDiskNode=0",
        "Features=(null) DelayBoot=00:00:00",
        f"OverSubscribe={'NO' if spec.exclusive else 'OK'} Contiguous=0 Licenses=(null) "
        "Network=(null)",
        f"Command={command}",
        f"WorkDir={workdir}",
    ]
    if spec.comment:
        lines.append(f"Comment={spec.comment} ")
    lines += [
        f"StdErr={stderr}",
        f"StdIn={spec.input or '/dev/null'}",
        f"StdOut={stdout}",
        "Power=",
    ]
    if spec.gpus:
        lines.append(f"TresPerJob={_gres(spec.gpu_type, spec.gpus)}")
    if spec.gpus_per_node:
        lines.append(f"TresPerNode={_gres(spec.gpu_type, spec.gpus_per_node)}")
    if spec.gpus_per_task:
        lines.append(f"TresPerTask={_gres(spec.gpu_type, spec.gpus_per_task)}")
    if not (spec.gpus or spec.gpus_per_node or spec.gpus_per_task) and job.gpus:
        # No spec (listed without detail): say what was allocated, per node.
        per_node = job.gpus // max(job.num_nodes, 1)
        lines.append(f"TresPerNode={_gres('', per_node)}")
    if job.restart_count or len(job.attempts) > 1:
        # gsched addition: every attempt of a requeued job, and why it ended
        if job.last_failure:
            lines.append(f"LastFailure={job.last_failure}")
        for a in job.attempts:
            lines.append(
                f"Attempt={a.attempt} NodeList={_compress(list(a.nodes)) or '(null)'} "
                f"StartTime={format_time(a.start_time)} "
                f"EndTime={format_time(a.end_time) if a.end_time else 'Unknown'} "
                f"Ended={a.ended or 'Running'}"
            )
    if oneliner:
        return _join(lines, True) + " \n"
    return _join(lines, False) + "\n   \n\n"


# ---------------------------------------------------------------------------- nodes


def _gpu_gres(gpus: Iterable[object], prefix: str = "gpu") -> str:
    counts: dict[str, int] = {}
    for g in gpus:
        t = getattr(g, "type", "")
        counts[t] = counts.get(t, 0) + 1
    if not counts:
        return "(null)"
    return ",".join(f"{prefix}:{t}:{n}" if t else f"{prefix}:{n}" for t, n in counts.items())


def _node_state(node: NodeInfo) -> str:
    state = node.state or "UNKNOWN"
    if state == "DRAINED":
        return "IDLE+DRAIN"
    if state == "DRAINING":
        base = "ALLOCATED" if node.cpus and node.cpus_alloc >= node.cpus else "MIXED"
        return f"{base}+DRAIN"
    return state


def _index_list(indices: Sequence[int]) -> str:
    """``0-1,3`` as SLURM's bit_fmt prints a GPU index set."""
    out: list[str] = []
    items = sorted(indices)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def _node_cfg_tres(node: NodeInfo) -> str:
    parts = [f"cpu={node.cpus}", f"mem={format_mem(node.mem_mb)}", f"billing={node.cpus}"]
    if node.gpus:
        parts.append(f"gres/gpu={len(node.gpus)}")
    return ",".join(parts)


def _node_alloc_tres(node: NodeInfo) -> str:
    parts = []
    if node.cpus_alloc:
        parts.append(f"cpu={node.cpus_alloc}")
    if node.mem_alloc_mb:
        parts.append(f"mem={format_mem(node.mem_alloc_mb)}")
    if node.gpus_alloc:
        parts.append(f"gres/gpu={node.gpus_alloc}")
    return ",".join(parts)


def show_node(
    node: NodeInfo, oneliner: bool = False, details: bool = False, now: float | None = None
) -> str:
    """One node as ``scontrol show node`` prints it.

    GPUs appear as ``Gres=gpu:TYPE:N`` and ``gres/gpu=N`` in CfgTRES/AllocTRES.
    Unhealthy GPUs add ``GresDrain=gpu:TYPE:K(IDX:...)`` after Gres and one
    ``gpuI: reason`` line each to the Reason block (SLURM's multi-line reason
    layout). ``details`` (``-d``) adds ``GresUsed=gpu[:TYPE]:N``; gsched does not
    report which indices are in use per node, so no ``(IDX:...)`` part.
    """
    if now is None:
        now = time.time()
    gpus = list(node.gpus)
    lines = [
        f"NodeName={node.name} "
        + (f"Arch={node.arch} " if node.arch else "")
        + f"CoresPerSocket={node.cpus} "
    ]
    lines.append(
        f"CPUAlloc={node.cpus_alloc} CPUEfctv={node.cpus} CPUTot={node.cpus} "
        f"CPULoad={node.cpu_load:.2f}"
    )
    lines.append("AvailableFeatures=(null)")
    lines.append("ActiveFeatures=(null)")
    lines.append(f"Gres={_gpu_gres(gpus)}")
    sick = [g for g in gpus if not g.healthy]
    if sick:
        types = {g.type for g in sick}
        t = types.pop() if len(types) == 1 else ""
        label = f"gpu:{t}:{len(sick)}" if t else f"gpu:{len(sick)}"
        lines.append(f"GresDrain={label}(IDX:{_index_list([g.index for g in sick])})")
    if details:
        types = {g.type for g in gpus}
        t = types.pop() if len(types) == 1 else ""
        lines.append(
            f"GresUsed=gpu:{t}:{node.gpus_alloc}" if t else f"GresUsed=gpu:{node.gpus_alloc}"
        )
    addr = []
    if node.address:
        addr.append(f"NodeAddr={node.address}")
    if node.hostname:
        addr.append(f"NodeHostName={node.hostname}")
    if node.version:
        addr.append(f"Version={node.version}")
    if addr:
        lines.append(" ".join(addr))
    if node.os:
        lines.append(f"OS={node.os} ")
    lines.append(
        f"RealMemory={node.mem_mb} AllocMem={node.mem_alloc_mb} FreeMem={node.free_mem_mb} "
        "Sockets=1 Boards=1"
    )
    lines.append(
        f"State={_node_state(node)} ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A"
    )
    if node.partitions:
        lines.append(f"Partitions={','.join(node.partitions)} ")
    boot = format_time(node.boot_time) if node.boot_time else "None"
    started = format_time(node.registered_time) if node.registered_time else "None"
    lines.append(f"BootTime={boot} SlurmdStartTime={started}")
    # gsched does not record when a node was last busy: a busy node is busy now,
    # an idle one is shown as busy last when its agent registered.
    busy = node.cpus_alloc or node.gpus_alloc or node.job_ids
    lines.append(f"LastBusyTime={format_time(now if busy else node.registered_time)}")
    lines.append(f"CfgTRES={_node_cfg_tres(node)}")
    lines.append(f"AllocTRES={_node_alloc_tres(node)}")
    if node.failure_score:  # gsched's own: job-ending failures here lately (auto-drain)
        lines.append(f"FailureScore={node.failure_score}")
    lines.append("CapWatts=n/a")
    lines.append("CurrentWatts=0 AveWatts=0")
    lines.append("ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s")
    reasons = [r for r in node.reason.split("\n") if r] if node.reason else []
    reasons += [f"gpu{g.index}: {g.health_reason or 'unhealthy'}" for g in sick]
    for i, reason in enumerate(reasons):
        if i == 0:
            text = f"Reason={reason}"
            if node.reason and node.reason_time:
                text += f" [{node.reason_user or 'root'}@{format_time(node.reason_time)}]"
            lines.append(text)
        else:
            lines.append(f"       {reason}")
    return _join(lines, oneliner) + ("\n" if oneliner else "\n\n")


# ---------------------------------------------------------------------------- partitions


def show_partition(p: PartitionInfo, nodes: Sequence[NodeInfo], oneliner: bool = False) -> str:
    """One partition as ``scontrol show partition`` prints it.

    Args:
        p: the partition.
        nodes: every node the controller listed; the partition's members are picked
            by name for TotalCPUs and TRES.
    """
    members = set(p.nodes)
    mine = [n for n in nodes if n.name in members]
    cpus = sum(n.cpus for n in mine)
    mem = sum(n.mem_mb for n in mine)
    gpus = sum(len(n.gpus) for n in mine)
    default_time = _hms(p.default_time) if p.default_time > 0 else "NONE"
    max_time = _hms(p.max_time) if p.max_time > 0 else "UNLIMITED"
    max_nodes = str(p.max_nodes) if p.max_nodes > 0 else "UNLIMITED"
    tres = [f"cpu={cpus}"]
    if mem:
        tres.append(f"mem={format_mem(mem)}")
    tres += [f"node={len(p.nodes)}", f"billing={cpus}"]
    if gpus:
        tres.append(f"gres/gpu={gpus}")
    lines = [
        f"PartitionName={p.name}",
        f"AllowGroups={','.join(p.allow_groups) or 'ALL'} "
        f"AllowAccounts={','.join(p.allow_accounts) or 'ALL'} AllowQos=ALL",
        f"AllocNodes=ALL Default={'YES' if p.is_default else 'NO'} QoS=N/A",
        f"DefaultTime={default_time} DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO",
        f"MaxNodes={max_nodes} MaxTime={max_time} MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED",
        f"Nodes={_compress(list(p.nodes)) or '(null)'}",
        f"PriorityJobFactor={p.priority_job_factor or 1} PriorityTier={p.priority_tier or 1} "
        f"RootOnly=NO ReqResv=NO OverSubscribe={'EXCLUSIVE' if p.exclusive else 'NO'}",
        "OverTimeLimit=NONE PreemptMode=OFF",
        f"State={p.state or 'UP'} TotalCPUs={cpus} TotalNodes={len(p.nodes)} "
        "SelectTypeParameters=NONE",
        "JobDefaults=(null)",
        "DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
        f"TRES={','.join(tres)}",
    ]
    return _join(lines, oneliner) + ("\n" if oneliner else "\n\n")


# ---------------------------------------------------------------------------- hostlists


def show_hostnames(expr: str) -> str:
    """``scontrol show hostnames``: one name per line.

    Raises:
        HostlistError: ``expr`` is not a valid hostlist expression.
    """
    from gsched.common.hostlist import expand

    return "".join(f"{name}\n" for name in expand(expr))


def show_hostlist(names: str | Sequence[str]) -> str:
    """``scontrol show hostlist``: the compressed form of a comma list or of names.

    Raises:
        HostlistError: an expression in ``names`` is invalid.
    """
    from gsched.common.hostlist import compress, expand

    if isinstance(names, str):
        names = expand(names)
    return compress(list(names)) + "\n"


# ---------------------------------------------------------------------------- controller


def controller_host(address: str) -> str:
    """The host part of ``host:port`` (``[v6]:port`` too)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host = address
    return host.strip("[]")


def ping_line(address: str, up: bool) -> str:
    """``scontrol ping``'s one line."""
    return f"Slurmctld(primary) at {controller_host(address)} is {'UP' if up else 'DOWN'}\n"


def show_config(ping: PingReply, address: str, conf_path: str = "") -> str:
    """The few ``scontrol show config`` lines gsched can answer, then the ping line."""
    _, sep, port = address.rpartition(":")
    rows = [
        ("AuthType", ping.auth_type or "none"),
        ("BOOT_TIME", format_time(ping.started)),
        ("ClusterName", ping.cluster_name or "(null)"),
        ("SlurmctldHost[0]", controller_host(address)),
        ("SlurmctldPort", port if sep and port.isdigit() else "(null)"),
        ("SLURM_CONF", conf_path or "(null)"),
        ("SLURM_VERSION", ping.version or "(null)"),
    ]
    out = [f"Configuration data as of {format_time(ping.now or time.time())}"]
    out += [f"{key:<23} = {value}" for key, value in rows]
    return "\n".join(out) + "\n\n" + ping_line(address, True)
