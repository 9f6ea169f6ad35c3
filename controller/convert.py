"""Conversions between the wire messages (gsched.v1) and the pure core's objects.

The core never sees a proto: the servicers call these at the boundary.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from gsched.controller import health
from gsched.controller.cluster import Cluster
from gsched.controller.errors import InvalidRequest
from gsched.controller.jobs import Job, Request
from gsched.controller.nodes import Gpu, Node
from gsched.protos import gsched_pb2 as pb

__all__ = ["gpu_from_pb", "job_info", "node_info", "request_from_spec", "resolve_paths"]


def request_from_spec(spec: pb.JobSpec) -> Request:
    """Normalise a user's JobSpec into the scheduler's per-node request.

    Raises:
        InvalidRequest: the numbers contradict each other or are out of range.
    """
    from gsched.common import hostlist

    for field in ("nodes_min", "nodes_max", "ntasks", "ntasks_per_node", "cpus_per_task",
                  "gpus", "gpus_per_node", "gpus_per_task"):
        if getattr(spec, field) < 0:
            raise InvalidRequest(f"Invalid {field} value")
    if spec.mem_mb < 0 or spec.mem_per_cpu_mb < 0:
        raise InvalidRequest("Invalid memory specification")
    if not spec.script:
        raise InvalidRequest("Batch script is empty!")
    if not spec.script.startswith("#!"):
        raise InvalidRequest("This does not look like a batch script")
    nodes = max(spec.nodes_min, 1)
    ntasks = spec.ntasks or (spec.ntasks_per_node * nodes if spec.ntasks_per_node else nodes)
    if ntasks < nodes:
        nodes = ntasks if spec.nodes_min == 0 else nodes
    cpt = spec.cpus_per_task or 1
    tpn = spec.ntasks_per_node or math.ceil(ntasks / nodes)
    cpus = tpn * cpt
    if spec.gpus_per_node:
        gpn = spec.gpus_per_node
    elif spec.gpus_per_task:
        gpn = spec.gpus_per_task * tpn
    elif spec.gpus:
        gpn = math.ceil(spec.gpus / nodes)
    else:
        gpn = 0
    mem = spec.mem_mb or spec.mem_per_cpu_mb * cpus
    try:
        nodelist = tuple(hostlist.expand(spec.nodelist)) if spec.nodelist else ()
        exclude = tuple(hostlist.expand(spec.exclude)) if spec.exclude else ()
    except ValueError as exc:
        raise InvalidRequest(f"Invalid hostlist: {exc}") from exc
    if spec.time_limit < -1:
        raise InvalidRequest("Invalid --time specification")
    return Request(
        nodes=nodes,
        ntasks=ntasks,
        cpus_per_node=cpus,
        mem_per_node_mb=mem,
        mem_whole_node=spec.mem_whole_node,
        gpus_per_node=gpn,
        gpu_type=spec.gpu_type,
        partitions=tuple(p for p in spec.partitions if p),
        nodelist=nodelist,
        exclude=exclude,
        exclusive=spec.exclusive,
        time_limit=spec.time_limit,
        requeue=spec.requeue != 2,
        max_requeue=_int(spec.extra.get("max-requeue", ""), -1),
        requeue_exit=_exit_codes(spec.extra.get("requeue-exit")),
        warn_before=_warn_before(spec.extra.get("signal", "")),
        signal=_signal_number(spec.extra.get("signal", "")),
    )


def _warn_before(value: str) -> int:
    from gsched.common.signalspec import parse_signal_option

    parsed = parse_signal_option(value)
    return max(1, int(parsed["before"])) if parsed else 0


def _signal_number(value: str) -> int:
    """The signal of ``--signal=[{R|B}:]SIG[@TIME]`` (0 when absent or unknown)."""
    from gsched.common.signalspec import parse_signal_option

    parsed = parse_signal_option(value)
    return int(parsed["signal"]) if parsed else 0


def _exit_codes(value: str | None) -> tuple[int, ...] | None:
    from gsched.common.exitcodes import parse_exit_codes

    if value is None:
        return None
    try:
        return parse_exit_codes(value)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid --requeue-exit specification: {exc}") from exc


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def resolve_paths(job: Job) -> tuple[str, str]:
    """Absolute stdout/stderr paths with sbatch's %-patterns expanded."""
    from gsched.common.patterns import expand_path_pattern

    spec = pb.JobSpec.FromString(job.spec)
    workdir = spec.workdir or spec.submit_dir or "/"
    out_pat = spec.output or "slurm-%j.out"
    err_pat = spec.error or out_pat
    kw: dict[str, Any] = {
        "job_id": job.job_id,
        "name": job.name,
        "user": job.user,
        "node": job.batch_host,
        "workdir": workdir,
    }
    if job.array_job_id:
        # the pending remainder has no task id yet: %a shows SLURM's NO_VAL there
        kw["array_job_id"] = job.array_job_id
        kw["array_task_id"] = job.array_task_id if job.array_tasks is None else None
        if not spec.output:
            out_pat = "slurm-%A_%a.out"
            err_pat = spec.error or out_pat
    out = expand_path_pattern(out_pat, **kw)
    err = expand_path_pattern(err_pat, **kw)
    return os.path.join(workdir, out), os.path.join(workdir, err)


def job_info(job: Job, now: float, detail: bool = False) -> pb.JobInfo:
    req = job.request
    if job.alloc:
        cpus = sum(a.get("cpus", 0) for a in job.alloc.values())
        gpus = sum(len(a.get("gpus", ())) for a in job.alloc.values())
        num_nodes = len(job.alloc)
    else:
        cpus = req.cpus_per_node * req.nodes
        gpus = req.gpus_per_node * req.nodes
        num_nodes = req.nodes
    info = pb.JobInfo(
        job_id=job.job_id,
        name=job.name,
        user=job.user,
        uid=job.uid,
        gid=job.gid,
        group=job.group,
        state=str(job.state),
        reason=job.reason or "None",
        partition=job.partition,
        submit_time=job.submit_time,
        start_time=job.start_time,
        end_time=job.end_time,
        time_limit=job.time_limit if job.start_time else (req.time_limit or -1),
        nodes=list(job.alloc),
        num_nodes=num_nodes,
        num_cpus=cpus,
        num_tasks=req.ntasks,
        mem_mb=req.mem_per_node_mb,
        gpus=gpus,
        exit_code=job.exit_code,
        exit_signal=job.exit_signal,
        restart_count=job.attempt,
        priority=job.priority,
        stdout_path=job.stdout_path,
        stderr_path=job.stderr_path,
        batch_host=job.batch_host,
        last_failure=job.last_failure,
        eligible_time=job.eligible_time,
        begin_time=job.begin_time,
        account=job.account,
        qos=job.qos,
        nice=job.nice,
        preempt_count=job.preempt_count,
    )
    if job.dependency is not None:
        info.dependency = job.dependency.show()
    if job.array_job_id:
        info.array_job_id = job.array_job_id
        info.array_max_tasks = job.array_max_running
        if job.array_tasks is not None:
            info.array_task_str = str(job.array_tasks)
        else:
            info.array_task_id = job.array_task_id
    for a in job.attempts:
        info.attempts.add(
            attempt=a["attempt"], nodes=a["nodes"], start_time=a["start"],
            end_time=a["end"], ended=a["ended"],
        )
    for name, a in job.alloc.items():
        info.gpu_alloc.add(
            node=name, indices=a.get("gpus", []), cpus=a.get("cpus", 0), mem_mb=a.get("mem_mb", 0)
        )
    if detail:
        info.spec.ParseFromString(job.spec)
        info.spec.nice = job.nice
        info.spec.comment = job.comment
        info.spec.name = job.name
        if not info.stdout_path:
            try:
                info.stdout_path, info.stderr_path = resolve_paths(job)
            except Exception:  # display only; a bad pattern must not break `show job`
                pass
    return info


def gpu_from_pb(g: pb.GpuInfo) -> Gpu:
    return Gpu(
        index=g.index,
        type=g.type,
        uuid=g.uuid,
        name=g.name,
        memory_mb=g.memory_mb,
        healthy=g.healthy,
        reason=g.health_reason,
        temperature_c=g.temperature_c,
        utilization=g.utilization,
    )


def node_info(node: Node, cluster: Cluster) -> pb.NodeInfo:
    used = node.gpus_used
    info = node.info
    return pb.NodeInfo(
        name=node.name,
        state=node.state,
        reason=node.shown_reason,
        cpus=node.cpus,
        cpus_alloc=node.cpus_alloc,
        mem_mb=node.mem_mb,
        mem_alloc_mb=node.mem_alloc,
        gpus=[
            pb.GpuInfo(
                index=g.index,
                uuid=g.uuid,
                name=g.name,
                type=g.type,
                memory_mb=g.memory_mb,
                healthy=g.healthy,
                health_reason=g.reason,
                temperature_c=g.temperature_c,
                utilization=g.utilization,
            )
            for g in node.gpus
        ],
        gpus_alloc=len(used),
        partitions=cluster.partitions_of(node.name),
        address=str(info.get("address", "")),
        hostname=str(info.get("hostname", "")),
        gpu_backend=str(info.get("gpu_backend", "")),
        last_seen=node.last_seen,
        boot_time=float(info.get("boot_time", 0.0)),
        registered_time=node.registered_time,
        version=str(info.get("version", "")),
        arch=str(info.get("arch", "")),
        os=str(info.get("os", "")),
        cpu_load=float(info.get("cpu_load", 0.0)),
        free_mem_mb=int(info.get("free_mem_mb", 0)),
        job_ids=sorted(node.jobs),
        reason_time=node.reason_time,
        reason_user=node.reason_user,
        connected=node.connected and not node.suspect,
        failure_score=health.score(node.failures, time.time(), cluster.failure_window),
        confinement=str(info.get("confinement", "")),
    )
