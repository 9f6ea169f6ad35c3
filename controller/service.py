"""gRPC servicers: JobService (users), AdminService (operators), AgentLink (agents).

Each handler: identify the caller → convert the request → one Cluster call →
``await controller.commit(orders)`` → reply. Domain errors become gRPC status codes
here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pwd
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from gsched.common import clusterkey
from gsched.controller import convert, convert_policy, limits, steptoken
from gsched.controller.auth import CALLER
from gsched.controller.cluster import DENIED, Caller, NodeReport
from gsched.controller.errors import (
    GschedError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from gsched.controller.jobs import ACTIVE_STATES, Job, JobState
from gsched.controller.runtime import VERSION, AgentSession, Controller
from gsched.controller.steps import layout, tasks_per_node_string
from gsched.protos import gsched_pb2 as pb
from gsched.protos import gsched_pb2_grpc as rpc

__all__ = ["AdminService", "AgentLinkService", "JobService", "identify"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_CODES = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "INTERNAL": grpc.StatusCode.INTERNAL,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
STATE_NAMES = {s.value for s in JobState}


def identify(context: grpc.aio.ServicerContext) -> Caller:
    """The one identity check every RPC passes through; never a name the client claims.

    On the gRPC port controller/auth.py's ``authenticated`` wrapper has verified the
    call's credential and left the Caller in ``CALLER``; on the Unix socket the
    kernel said who is calling (controller/local.py). Anything else is refused.
    """
    caller = CALLER.get()
    if caller is not None:
        return caller
    local = getattr(context, "kernel_caller", None)
    if isinstance(local, Caller):
        return local
    raise Unauthenticated("no verified identity for this call")


def handler(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Map domain errors to status codes; never leak a traceback to a client."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            limits.check(request)
            return await fn(self, request, context)
        except GschedError as exc:
            if exc.code == "PERMISSION_DENIED":
                _log_denied(fn.__name__, context, str(exc))
            await context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
        except (ValueError, TypeError) as exc:
            logger.warning("%s: bad request: %s", fn.__name__, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise AssertionError("unreachable")  # context.abort raises

    return wrapper


def _log_denied(call: str, context: Any, why: str, job_id: int | None = None) -> None:
    """Every denied call is logged at warning with who asked and what."""
    caller = CALLER.get() or getattr(context, "kernel_caller", None)
    who = f"uid {caller.uid} ({caller.user})" if caller is not None else "unknown caller"
    what = f"{call} job {job_id}" if job_id is not None else call
    logger.warning("denied %s to %s from %s: %s", what, who, context.peer(), why)


@functools.lru_cache(maxsize=1024)
def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class JobService(rpc.JobServiceServicer):
    auth: Any = None  # controller.auth.Authenticator (set by main.start_server)

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._info_cache: dict[int, tuple[int, bytes]] = {}
        from gsched.controller.ratelimit import SubmitLimiter

        cc = ctl.cfg.controller
        self.submit_limiter = SubmitLimiter(cc.submit_rate, cc.submit_burst)

    @property
    def cluster(self) -> Any:
        return self.ctl.cluster

    @handler
    async def Submit(self, request: pb.SubmitRequest, context: Any) -> pb.SubmitReply:
        caller = identify(context)
        spec = request.spec
        if steptoken.ENV_NAME in spec.environment:  # a submitting job's: never stored
            del spec.environment[steptoken.ENV_NAME]
        if spec.nice < 0 and not caller.admin:
            raise PermissionDenied("Access/permission denied: only operators may set a negative nice")
        req = convert.request_from_spec(spec)
        if not caller.admin:
            wait = self.submit_limiter.take(caller.uid, self.ctl.clock())
            if wait > 0:
                raise RateLimited(
                    f"Batch job submission failed: user {caller.user} is over the submission "
                    f"rate limit ({self.submit_limiter.rate:g} jobs/s); retry in {wait:.1f} s"
                )
        gid = caller.gid  # verified with the uid (credential or SO_PEERCRED)
        if gid < 0:
            try:
                gid = pwd.getpwuid(caller.uid).pw_gid
            except KeyError:
                gid = caller.uid
        job = Job(
            job_id=0,
            user=caller.user,
            uid=caller.uid,
            gid=gid,
            group=_group_name(gid),
            name=spec.name or "sbatch",
            request=req,
            spec=spec.SerializeToString(),
            submit_time=0.0,
            nice=spec.nice,
            hold=spec.hold,
            comment=spec.comment,
            account=spec.extra.get("account", ""),
            qos=spec.extra.get("qos", ""),
        )
        self.cluster.elig.prepare(job, spec.extra)  # --dependency, --begin, --array
        self.cluster.submit(job, self.ctl.clock())
        await self.ctl.commit()
        if request.allocation:  # grun outside a job: it runs the steps of its own job
            return pb.SubmitReply(job_id=job.job_id,
                                  step_token=self.ctl.step_tokens.for_allocation(job.job_id))
        return pb.SubmitReply(job_id=job.job_id)

    def _private(self, caller: Caller) -> bool:
        """Whether ``caller`` may see only their own jobs (private_data, not an operator)."""
        return self.auth is not None and self.auth.private_jobs and not caller.admin

    def _select(self, f: pb.JobFilter) -> list[Job]:
        states = {s.upper() for s in f.states}
        bad = states - STATE_NAMES - {"ALL"}
        if bad:
            raise InvalidRequest(f"Invalid job state specified: {sorted(bad)[0]}")
        all_states = f.all_states or "ALL" in states
        if f.job_refs:
            seen: set[int] = set()
            jobs = []
            for ref in f.job_refs:
                for i in self.cluster.elig.resolve(ref):
                    if i not in seen and i in self.cluster.jobs:
                        seen.add(i)
                        jobs.append(self.cluster.jobs[i])
        elif f.job_ids:
            jobs = []
            arrays = self.cluster.elig.arrays
            for i in f.job_ids:
                if i in arrays:  # an array's id: every task of it, as squeue -j shows
                    jobs.extend(self.cluster.jobs[t] for t in self.cluster.elig.resolve(str(i)))
                    continue
                job = self.cluster.jobs.get(i)
                if job is not None:
                    jobs.append(job)
        else:
            jobs = list(self.cluster.jobs.values())
        users, parts, names = set(f.users), set(f.partitions), set(f.names)
        out = []
        for job in jobs:
            if states and not all_states and job.state not in states:
                continue
            if (not states and not all_states and not f.job_ids and not f.job_refs
                    and job.state not in ACTIVE_STATES):
                continue
            if users and job.user not in users and str(job.uid) not in users:
                continue
            if parts and not (parts & set(job.partition.split(","))):
                continue
            if names and job.name not in names:
                continue
            out.append(job)
        return out

    @handler
    async def ListJobs(self, request: pb.ListJobsRequest, context: Any) -> pb.ListJobsReply:
        caller = identify(context)
        now = self.ctl.clock()
        f = request.filter
        jobs = self._select(f)
        if self._private(caller):  # private_data = ["jobs"]: only one's own
            jobs = [j for j in jobs if j.uid == caller.uid]
        if (f.job_ids or f.job_refs) and not jobs:
            raise NotFound("Invalid job id specified")
        if f.detail:
            infos = [convert.job_info(j, now, True) for j in jobs]
            for info, j in zip(infos, jobs, strict=True):
                info.limit = convert_policy.limit_text(j, self.cluster.prio.policy)
                if j.state == JobState.PENDING and not j.hold:
                    convert_policy.fill_factors(info.factors, self.cluster, j, now)
            return pb.ListJobsReply(jobs=infos, now=now, planned=self._planned(jobs))
        # A queue of thousands is listed often and changes little: reuse each job's
        # encoded JobInfo until the job changes (Job.rev), and splice the bytes.
        cache = self._info_cache
        parts = []
        for j in jobs:
            hit = cache.get(j.job_id)
            if hit is None or hit[0] != j.rev:
                hit = (j.rev, _field1(convert.job_info(j, now).SerializeToString()))
                cache[j.job_id] = hit
            parts.append(hit[1])
        if len(cache) > 2 * len(self.cluster.jobs) + 1000:
            for job_id in [i for i in cache if i not in self.cluster.jobs]:
                del cache[job_id]
        tail = pb.ListJobsReply(now=now)
        if request.with_steps:
            records = self.ctl.step_records
            wanted = {j.job_id for j in jobs}
            tail.steps.extend(
                pb.StepInfo(**r) for k, r in sorted(records.items()) if k[0] in wanted
            )
        if request.with_start:
            tail.planned.extend(self._planned(jobs))
        parts.append(tail.SerializeToString())
        return pb.ListJobsReply.FromString(b"".join(parts))

    def _planned(self, jobs: list[Any]) -> list[pb.PlannedStart]:
        """The last pass's reservations for these jobs (backfill's expected starts)."""
        plan = self.cluster.reservations
        out = []
        for j in jobs:
            r = plan.get(j.job_id)
            if r is not None and j.state == JobState.PENDING and r.start_time != float("inf"):
                out.append(pb.PlannedStart(job_id=j.job_id, start_time=r.start_time,
                                           nodes=list(r.nodes)))
        return out

    @handler
    async def Cancel(self, request: pb.CancelRequest, context: Any) -> pb.CancelReply:
        caller = identify(context)
        now = self.ctl.clock()
        f = request.filter
        if f.job_refs:
            ids = self._refs(f.job_refs, caller, report_unknown=True)
            if f.users or f.states or f.partitions or f.names:
                wanted = {j.job_id for j in self._select(pb.JobFilter(
                    users=f.users, states=f.states, partitions=f.partitions, names=f.names))}
                ids = [i for i in ids if i in wanted or i not in self.cluster.jobs]
        elif f.job_ids:
            ids = self._refs([str(i) for i in f.job_ids], caller, report_unknown=True)
            if f.users or f.states or f.partitions or f.names:
                wanted = {j.job_id for j in self._select(pb.JobFilter(
                    users=f.users, states=f.states, partitions=f.partitions, names=f.names))}
                ids = [i for i in ids if i in wanted or i not in self.cluster.jobs]
        else:
            if not (f.users or f.states or f.partitions or f.names):
                raise InvalidRequest("No job identification provided")
            ids = [j.job_id for j in self._select(f) if not j.is_final]
            if not caller.admin:
                ids = [i for i in ids if self.cluster.jobs[i].uid == caller.uid]
        results, orders = [], []
        for job_id in ids:
            try:
                orders.extend(
                    self.cluster.cancel(job_id, caller, now, request.signal, request.batch_only)
                )
                results.append(pb.JobResult(job_id=job_id, ok=True, job_label=self._label(job_id)))
            except GschedError as exc:
                if exc.code == "PERMISSION_DENIED":
                    _log_denied("Cancel", context, str(exc), job_id)
                results.append(pb.JobResult(job_id=job_id, ok=False, error=str(exc),
                                            job_label=self._label(job_id)))
        await self.ctl.commit(orders)
        return pb.CancelReply(results=results)

    def _label(self, job_id: int) -> str:
        job = self.cluster.jobs.get(job_id)
        return job.label if job is not None else str(job_id)

    def _refs(self, refs: Any, caller: Caller, report_unknown: bool = False) -> list[int]:
        """Job ids for ``12``/``12_3``/``12_[1-5]``; pending tasks are split off.

        Tasks are split off the array's pending remainder only for its owner or an
        operator (anyone else gets the remainder's id, and a permission error).
        An unknown id is kept (as the number typed) when ``report_unknown``, so that
        the caller reports "Invalid job id specified" for it.
        """
        ids: list[int] = []
        for ref in refs:
            base = ref.split("_", 1)[0]
            owner = self.cluster.jobs.get(int(base)) if base.isdigit() else None
            split = owner is None or caller.admin or owner.uid == caller.uid
            found = self.cluster.elig.resolve(ref, split=split)
            if not found and report_unknown:
                base = ref.split("_", 1)[0]
                found = [int(base)] if base.isdigit() else []
            ids.extend(i for i in found if i not in ids)
        return ids

    async def _each(
        self, request: pb.JobIdsRequest, context: Any, action: Callable[..., Any]
    ) -> pb.JobIdsReply:
        caller = identify(context)
        now = self.ctl.clock()
        results, orders = [], []
        refs = [str(i) for i in request.job_ids] + list(request.job_refs)
        job_ids = self._refs(refs, caller, report_unknown=True)
        for job_id in job_ids:
            try:
                out = action(job_id, caller, now)
                if out:
                    orders.extend(out)
                results.append(pb.JobResult(job_id=job_id, ok=True, job_label=self._label(job_id)))
            except GschedError as exc:
                if exc.code == "PERMISSION_DENIED":
                    _log_denied(getattr(action, "__name__", "call"), context, str(exc), job_id)
                results.append(pb.JobResult(job_id=job_id, ok=False, error=str(exc),
                                            job_label=self._label(job_id)))
        await self.ctl.commit(orders)
        return pb.JobIdsReply(results=results)

    @handler
    async def Hold(self, request: pb.JobIdsRequest, context: Any) -> pb.JobIdsReply:
        user_hold = request.user_hold

        def hold(job_id: int, caller: Caller, now: float) -> None:
            self.cluster.hold(job_id, caller, now, user_hold=user_hold)

        return await self._each(request, context, hold)

    @handler
    async def Release(self, request: pb.JobIdsRequest, context: Any) -> pb.JobIdsReply:
        return await self._each(request, context, self.cluster.release)

    @handler
    async def Requeue(self, request: pb.JobIdsRequest, context: Any) -> pb.JobIdsReply:
        hold = request.hold

        def requeue(job_id: int, caller: Caller, now: float) -> list[Any]:
            return self.cluster.requeue(job_id, caller, now, hold=hold)

        return await self._each(request, context, requeue)

    @handler
    async def UpdateJob(self, request: pb.UpdateJobRequest, context: Any) -> pb.UpdateJobReply:
        caller = identify(context)
        fields = dict(request.fields)
        for key in list(fields):
            if key.lower() == "timelimit":
                from gsched.common.durations import parse_time_limit

                try:
                    fields[key] = str(parse_time_limit(fields[key]))
                except ValueError as exc:
                    raise InvalidRequest("Invalid TimeLimit specification") from exc
            elif key.lower() in ("starttime", "begintime"):
                from gsched.common.begin import BeginError, parse_begin

                try:
                    fields[key] = str(parse_begin(fields[key], self.ctl.clock()))
                except BeginError as exc:
                    raise InvalidRequest("Invalid StartTime specification") from exc
        job_id = request.job_id
        ref = request.job_ref
        if not ref and job_id in self.cluster.elig.arrays:
            # an array's id: every task still pending (as scontrol update does)
            pending = [i for i in self.cluster.elig.resolve(str(job_id))
                       if self.cluster.jobs[i].state == JobState.PENDING]
            ref = str(job_id) if len(pending) > 1 else ""
            job_id = pending[0] if len(pending) == 1 else job_id
        if ref:
            ids = [i for i in self._refs([ref], caller)
                   if request.job_ref or self.cluster.jobs[i].state == JobState.PENDING]
            if len(ids) != 1:
                if not ids:
                    raise NotFound("Invalid job id specified")
                for i in ids:
                    self.cluster.update_job(i, caller, fields, self.ctl.clock())
                await self.ctl.commit()
                return pb.UpdateJobReply()
            job_id = ids[0]
        self.cluster.update_job(job_id, caller, fields, self.ctl.clock())
        await self.ctl.commit()
        return pb.UpdateJobReply()

    @handler
    async def History(self, request: pb.HistoryRequest, context: Any) -> pb.ListJobsReply:
        caller = identify(context)
        uids: list[int] | None
        if self._private(caller):
            uids = [caller.uid]
        elif request.all_users or request.job_ids or (caller.admin and not request.users):
            uids = None
        elif request.users:
            uids = []
            for u in request.users:
                try:
                    uids.append(int(u) if u.isdigit() else pwd.getpwnam(u).pw_uid)
                except KeyError as exc:
                    raise InvalidRequest(f"Invalid user: {u}") from exc
        else:
            uids = [caller.uid]
        states = [s.upper() for s in request.states]
        loop = asyncio.get_running_loop()
        await self.ctl.commit()  # what the caller saw in gqueue is in the store too
        jobs = await loop.run_in_executor(
            self.ctl._executor,
            self.ctl.store.history,
            list(request.job_ids),
            uids,
            states,
            request.start_after,
            request.end_before,
            request.limit,
        )
        now = self.ctl.clock()
        reply = pb.ListJobsReply(jobs=[convert.job_info(j, now) for j in jobs], now=now)
        if request.with_steps and jobs:
            rows = await loop.run_in_executor(
                self.ctl._executor, self.ctl.store.steps, [j.job_id for j in jobs]
            )
            reply.steps.extend(pb.StepInfo(**r) for r in rows)
        return reply

    @handler
    async def ListNodes(self, request: pb.ListNodesRequest, context: Any) -> pb.ListNodesReply:
        identify(context)
        cluster = self.cluster
        names = list(request.names) or sorted(cluster.nodes, key=_natural)
        for n in names:
            if n not in cluster.nodes:
                raise NotFound("Invalid node name specified")
        parts = [
            pb.PartitionInfo(
                name=p.name,
                is_default=p.name == cluster.default_partition,
                state=p.state,
                nodes=[n.name for n in sorted(p.members(cluster.nodes), key=lambda n: _natural(n.name))],
                default_time=p.default_time,
                max_time=p.max_time,
                max_nodes=p.max_nodes,
            )
            for p in cluster.partitions.values()
        ]
        for info, p in zip(parts, cluster.partitions.values(), strict=True):
            convert_policy.partition_extra(info, p)
        return pb.ListNodesReply(
            nodes=[convert.node_info(cluster.nodes[n], cluster) for n in names],
            partitions=parts,
            now=self.ctl.clock(),
            auth_type=self.ctl.cfg.controller.auth_type,
        )

    @handler
    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingReply:
        return pb.PingReply(
            version=VERSION,
            now=self.ctl.clock(),
            started=self.ctl.started,
            cluster_name=self.ctl.cfg.cluster_name,
            auth_type=self.ctl.cfg.controller.auth_type,
        )


    async def RunStep(
        self, request: pb.StepRequest, context: Any
    ) -> AsyncIterator[pb.StepEvent]:
        """Run a job step on the job's allocation; stream output and exits back."""
        try:
            limits.check(request)
            caller = identify(context)
            job = self._step_job(request.job_id, request.step_token, caller)
            if job.state != JobState.RUNNING:
                raise InvalidRequest(f"Unable to create step for job {job.job_id}: "
                                     "Job/step already completing or completed")
            if not request.argv:
                raise InvalidRequest("No command given")
            if not (0 <= request.rows < 10000 and 0 <= request.cols < 10000):
                raise InvalidRequest("Invalid terminal size")
            plan = layout(
                job.nodes,
                nodes=request.nodes,
                ntasks=request.ntasks,
                ntasks_per_node=request.ntasks_per_node,
                nodelist=list(request.nodelist),
                exclude=list(request.exclude),
                job_ntasks=job.request.ntasks,
            )
        except GschedError as exc:
            if exc.code == "PERMISSION_DENIED":
                _log_denied("RunStep", context, str(exc), request.job_id)
            await context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
            return
        ctl = self.ctl
        step_id = ctl.next_step.get(job.job_id, 0)
        ctl.next_step[job.job_id] = step_id + 1
        queue: asyncio.Queue[Any] = asyncio.Queue()
        key = (job.job_id, step_id)
        ctl.steps[key] = queue
        ctl.step_nodes[key] = plan.nodes
        record = {
            "job_id": job.job_id, "step_id": step_id, "attempt": job.attempt,
            "name": os.path.basename(request.argv[0])[:256] or "step",
            "nodes": list(plan.nodes), "ntasks": len(plan.tasks),
            "start_time": ctl.clock(), "end_time": 0.0, "state": "RUNNING",
            "exit_code": 0, "exit_signal": 0,
        }
        ctl.step_records[key] = record
        ctl.save_step(record)
        ref = pb.AttemptRef(job_id=job.job_id, attempt=job.attempt)
        env = dict(request.environment)
        first = self.cluster.nodes.get(plan.nodes[0])
        master = str(first.info.get("address", "")) if first else ""
        port = int(env.get("MASTER_PORT", "0") or 0) or 20000 + (job.job_id * 7 + step_id) % 20000
        tpn = tasks_per_node_string(plan.counts)
        logger.info("job %d step %d: %d tasks on %s", job.job_id, step_id, len(plan.tasks),
                    ",".join(plan.nodes))
        for i, node in enumerate(plan.nodes):
            mine = [t for t in plan.tasks if t.node_index == i]
            msg = pb.StepLaunch(
                ref=ref, step_id=step_id, argv=list(request.argv), environment=env,
                cwd=request.cwd, uid=job.uid, gid=job.gid, user=job.user,
                gpus=job.alloc.get(node, {}).get("gpus", []),
                gpus_per_task=request.gpus_per_task, ntasks=len(plan.tasks),
                nodes=list(plan.nodes), tasks_per_node=tpn, master_addr=master,
                master_port=port, cpus_per_task=request.cpus_per_task,
                tasks=[pb.StepTask(rank=t.rank, local_rank=t.local_rank,
                                   node_index=t.node_index, node=t.node) for t in mine],
                pty=request.pty, rows=request.rows, cols=request.cols,
            )
            if not ctl.send(node, pb.ControllerMessage(step_launch=msg)):
                del ctl.steps[key]
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"node {node} is not connected")
                return
        yield pb.StepEvent(started=pb.StepEvent.Started(
            step_id=step_id, nodes=list(plan.nodes),
            tasks=[pb.StepTask(rank=t.rank, local_rank=t.local_rank, node_index=t.node_index,
                               node=t.node) for t in plan.tasks],
        ))
        pending = {t.rank for t in plan.tasks}
        worst, message, done, killing = 0, "", False, False
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while pending:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    message = f"step killed {request.wait}s after the first task ended (--wait)"
                    self._kill_step(plan.nodes, ref, step_id, 0)
                    killing = True
                    deadline = None
                    continue
                if isinstance(ev, str):  # the job or a node went away
                    message = ev
                    worst = max(worst, 1)
                    break
                yield ev
                if ev.WhichOneof("ev") == "task_exit":
                    te = ev.task_exit
                    pending.discard(te.rank)
                    code = 128 + te.signal if te.signal else te.exit_code
                    # tasks we killed ourselves do not hide the code that made us kill
                    if not (killing and te.signal and worst):
                        worst = max(worst, code)
                    if code and request.kill_on_bad_exit and pending and not killing:
                        message = f"task {te.rank} exited with {code}: step killed (--kill-on-bad-exit)"
                        self._kill_step(plan.nodes, ref, step_id, 0)
                        killing = True
                    elif request.wait and deadline is None and pending:
                        deadline = loop.time() + request.wait
            done = True
            yield pb.StepEvent(done=pb.StepEvent.Done(exit_code=worst, message=message))
        finally:
            ctl.steps.pop(key, None)
            ctl.step_nodes.pop(key, None)
            ctl.step_records.pop(key, None)
            if not done:
                self._kill_step(plan.nodes, ref, step_id, 0)
            now_job = self.cluster.jobs.get(job.job_id)
            if not done or now_job is None or now_job.state != JobState.RUNNING:
                state = "CANCELLED"  # grun went away, or the job ended or was requeued
            else:
                state = "FAILED" if worst else "COMPLETED"
            record.update(end_time=ctl.clock(), state=state, exit_code=worst)
            ctl.save_step(record)

    @handler
    async def Priorities(self, request: pb.PrioritiesRequest, context: Any) -> pb.PrioritiesReply:
        identify(context)
        return convert_policy.job_priorities(self.cluster, list(request.job_ids),
                                             list(request.users), self.ctl.clock())

    @handler
    async def Shares(self, request: pb.SharesRequest, context: Any) -> pb.SharesReply:
        identify(context)
        return convert_policy.share_rows(self.cluster, list(request.users),
                                         list(request.accounts))

    @handler
    async def GetPolicy(self, request: pb.GetPolicyRequest, context: Any) -> pb.PolicyReply:
        identify(context)
        return convert_policy.policy_reply(self.cluster.prio.policy)

    @handler
    async def SignalStep(self, request: pb.SignalStepRequest, context: Any) -> pb.SignalStepReply:
        nodes, ref = self._live_step(request, context)
        if not 0 < request.signal < 65:
            raise InvalidRequest(f"Invalid signal {request.signal}")
        self._kill_step(nodes, ref, request.step_id, request.signal)
        return pb.SignalStepReply()

    @handler
    async def StepInput(self, request: pb.StepInputRequest, context: Any) -> pb.StepInputReply:
        """Input for a --pty step: to the node of its task 0 (the step's first node)."""
        nodes, ref = self._live_step(request, context)
        if len(request.data) > 64 * 1024 or not (0 <= request.rows < 10000
                                                  and 0 <= request.cols < 10000):
            raise InvalidRequest("Invalid step input")
        self.ctl.send(nodes[0], pb.ControllerMessage(step_input=pb.StepInput(
            ref=ref, step_id=request.step_id, data=request.data, rows=request.rows,
            cols=request.cols, eof=request.eof)))
        return pb.StepInputReply()

    def _live_step(self, request: Any, context: Any) -> tuple[list[str], pb.AttemptRef]:
        """The nodes of a running step that this caller may act on, and its attempt."""
        job = self._step_job(request.job_id, request.step_token, identify(context))
        nodes = self.ctl.step_nodes.get((job.job_id, request.step_id))
        if nodes is None:
            raise NotFound(f"Invalid job step {job.job_id}.{request.step_id}")
        return nodes, pb.AttemptRef(job_id=job.job_id, attempt=job.attempt)

    def _step_job(self, job_id: int, token: str, caller: Caller) -> Job:
        """The job a step call acts on: the caller's own (or an operator's), and the call
        must come from inside it: the token of its current attempt (GSCHED_STEP_TOKEN) or
        of the allocation grun made (controller/steptoken.py). Operators need none."""
        job = self.cluster._own(job_id, caller)
        if not caller.admin and not self.ctl.step_tokens.check(job.job_id, job.attempt, token):
            raise PermissionDenied(steptoken.not_inside(job.job_id))
        return job

    def _kill_step(self, nodes: Any, ref: pb.AttemptRef, step_id: int, sig: int) -> None:
        for node in nodes:
            self.ctl.send(node, pb.ControllerMessage(
                step_kill=pb.StepKill(ref=ref, step_id=step_id, signal=sig)))


class AdminService(rpc.AdminServiceServicer):
    auth: Any = None
    pins: Any = None  # controller.pinning.NodePins

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl

    @handler
    async def UpdateNode(self, request: pb.UpdateNodeRequest, context: Any) -> pb.UpdateNodeReply:
        caller = identify(context)
        from gsched.common import hostlist

        names: list[str] = []
        for expr in request.names:
            try:
                names.extend(hostlist.expand(expr))
            except ValueError as exc:
                raise InvalidRequest(f"Invalid node name specified: {expr}") from exc
        if request.allow_host:
            # admin consent for pinned names to register from another host (pinning.py)
            if caller.role != "admin":
                raise PermissionDenied(DENIED)
            if self.pins is None:
                raise InvalidRequest("node pinning is not available")
            for name in names:
                try:
                    self.pins.allow(name, request.allow_host)
                except ValueError as exc:
                    raise InvalidRequest(f"Invalid allowhost: {exc}") from exc
                logger.warning("node %s: admin uid %d (%s) allows registration from %s",
                               name, caller.uid, caller.user, request.allow_host)
            if not request.state:
                return pb.UpdateNodeReply()
        orders = self.ctl.cluster.update_node(
            names, request.state, request.reason, caller, self.ctl.clock()
        )
        await self.ctl.commit(orders)
        return pb.UpdateNodeReply()

    @handler
    async def UpdatePolicy(self, request: pb.UpdatePolicyRequest, context: Any) -> pb.PolicyReply:
        caller = identify(context)
        cluster = self.ctl.cluster
        if request.verb.lower() == "reset" and request.entity.lower() == "usage":
            cluster.reset_usage(caller)
        else:
            cluster.change_policy(request.verb, request.entity, request.name,
                                  dict(request.fields), caller)
        await self.ctl.commit()
        return convert_policy.policy_reply(cluster.prio.policy)


class AgentLinkService(rpc.AgentLinkServicer):
    """One bidirectional stream per agent; the agent dials, the controller never does."""

    pins: Any = None  # controller.pinning.NodePins (set by main.start_server)

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._replays = clusterkey.ReplayGuard()

    async def Connect(
        self, request_iterator: AsyncIterator[pb.AgentMessage], context: Any
    ) -> AsyncIterator[pb.ControllerMessage]:
        ctl = self.ctl
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("msg") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be hello")
            return
        hello = first.hello
        name = hello.node
        if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid node name {name!r}")
            return
        why = self._authenticate(name, hello.secret)
        if not why and self.pins is not None:
            why = self.pins.check(name, context.peer())
        if why:
            logger.warning("node %s from %s refused: %s", name, context.peer(), why)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            return
        session = AgentSession(name, context.peer(), asyncio.Queue())
        old = ctl.sessions.get(name)
        if old is not None and _host(old.peer) != _host(session.peer):
            why = f"node {name} is already connected from {old.peer}"
            logger.warning("node %s from %s refused: %s", name, session.peer, why)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            return
        if old is not None:
            logger.warning("node %s reconnected from %s; closing old stream", name, session.peer)
            old.queue.put_nowait(None)
        ctl.sessions[name] = session
        session.queue.put_nowait(
            pb.ControllerMessage(
                welcome=pb.Welcome(
                    heartbeat_interval=ctl.cfg.controller.heartbeat_interval,
                    cluster_name=ctl.cfg.cluster_name,
                    controller_version=VERSION,
                    hello_sent=hello.sent,
                    fence_after=ctl.cfg.controller.fence_after,
                    fence_grace=ctl.cfg.controller.fence_grace,
                    controller_proof=(
                        clusterkey.controller_proof(ctl.cluster_key, name, hello.secret)
                        if ctl.cluster_key is not None and hello.secret else ""
                    ),
                )
            )
        )
        report = NodeReport(
            cpus=hello.cpus,
            mem_mb=hello.mem_mb,
            gpus=tuple(convert.gpu_from_pb(g) for g in hello.gpus),
            info={
                "hostname": hello.hostname,
                "address": hello.address,
                "gpu_backend": hello.gpu_backend,
                "version": hello.version,
                "boot_time": hello.boot_time,
                "arch": hello.arch,
                "os": hello.os,
                "confinement": hello.confinement,
            },
        )
        try:
            orders = ctl.cluster.node_hello(
                name,
                report,
                [(r.job_id, r.attempt) for r in hello.running],
                [(r.job_id, r.attempt) for r in hello.finished],
                ctl.clock(),
            )
        except GschedError as exc:
            ctl.sessions.pop(name, None)
            await context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
            return
        logger.info("node %s registered from %s (%d cpus, %d gpus)",
                    name, session.peer, hello.cpus, len(hello.gpus))
        ctl.enqueue(orders)
        reader = asyncio.create_task(self._read(name, session, request_iterator))
        try:
            while True:
                msg = await session.queue.get()
                if msg is None:
                    break
                yield msg
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if ctl.sessions.get(name) is session:
                del ctl.sessions[name]
                ctl.cluster.node_disconnected(name, ctl.clock())
                logger.warning("node %s stream closed", name)

    def _authenticate(self, name: str, proof: str) -> str:
        """'' when the agent may register; else why not (cluster key, see common/clusterkey)."""
        key = self.ctl.cluster_key
        if key is None:
            return ""
        if not proof:
            return "this cluster requires agents to hold the cluster key"
        return clusterkey.verify(key, name, proof, guard=self._replays)

    async def _read(
        self, name: str, session: AgentSession, it: AsyncIterator[pb.AgentMessage]
    ) -> None:
        ctl = self.ctl
        cluster = ctl.cluster
        try:
            async for msg in it:
                if ctl.sessions.get(name) is not session:
                    break
                kind = msg.WhichOneof("msg")
                now = ctl.clock()
                node = cluster.nodes.get(name)
                if node is not None and not node.up:
                    # Declared DOWN while this stream looked alive (a frozen agent):
                    # make it say hello again so stale attempts are reconciled.
                    logger.warning("node %s speaks again after being declared DOWN; "
                                   "asking it to register again", name)
                    break
                if kind == "heartbeat":
                    hb = msg.heartbeat
                    gpus = tuple(convert.gpu_from_pb(g) for g in hb.gpus) if hb.gpus else None
                    orders = cluster.node_heartbeat(name, gpus, now)
                    if orders or cluster.dirty_nodes or cluster.need_schedule:
                        ctl.enqueue(orders)
                    session.queue.put_nowait(
                        pb.ControllerMessage(heartbeat_ack=pb.HeartbeatAck(sent=hb.sent))
                    )
                    node = cluster.nodes.get(name)
                    if node is not None:
                        node.info["cpu_load"] = hb.cpu_load
                        node.info["free_mem_mb"] = hb.free_mem_mb
                elif kind == "started":
                    r = msg.started.ref
                    cluster.job_started(name, r.job_id, r.attempt, now)
                    cluster.node_heartbeat(name, None, now)
                elif kind == "step_output":
                    so = msg.step_output
                    ctl.step_event(so.ref.job_id, so.step_id, pb.StepEvent(
                        output=pb.StepEvent.Output(rank=so.rank, stream=so.stream, data=so.data)))
                elif kind == "step_exit":
                    se = msg.step_exit
                    if se.message:
                        ctl.step_event(se.ref.job_id, se.step_id, pb.StepEvent(
                            output=pb.StepEvent.Output(rank=se.rank, stream=2,
                                                       data=f"{se.message}\n".encode())))
                    ctl.step_event(se.ref.job_id, se.step_id, pb.StepEvent(
                        task_exit=pb.StepEvent.TaskExit(rank=se.rank, exit_code=se.exit_code,
                                                        signal=se.signal)))
                elif kind == "exited":
                    e = msg.exited
                    if e.message:
                        logger.warning("job %d attempt %d on %s: %s (%s)", e.ref.job_id,
                                       e.ref.attempt, name, e.message, e.reason or "exit")
                    cluster.node_heartbeat(name, None, now)
                    ctl.enqueue(
                        cluster.job_exited(
                            name, e.ref.job_id, e.ref.attempt, e.exit_code, e.signal, e.reason, now
                        )
                    )
                else:
                    logger.warning("node %s sent unexpected %s", name, kind)
        finally:
            session.queue.put_nowait(None)


def _host(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' -> 'ipv4:127.0.0.1' (the host part of a gRPC peer)."""
    return peer.rsplit(":", 1)[0]


def _field1(payload: bytes) -> bytes:
    """``payload`` encoded as field 1 (length-delimited) of the enclosing message."""
    n = len(payload)
    out = bytearray(b"\x0a")
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def _natural(name: str) -> tuple[Any, ...]:
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))
