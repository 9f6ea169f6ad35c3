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
from gsched.controller import convert, convert_policy
from gsched.controller.cluster import Caller, NodeReport
from gsched.controller.errors import GschedError, InvalidRequest, NotFound, PermissionDenied
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
}
STATE_NAMES = {s.value for s in JobState}


def identify(context: grpc.aio.ServicerContext) -> Caller:
    """The one identity check every RPC passes through.

    Until MUNGE/local authentication lands, the uid is the one the CLI reports from
    the OS user running it. Root (uid 0) and the controller's own uid are operators.
    """
    md = dict(context.invocation_metadata() or ())
    try:
        uid = int(md.get("x-gsched-uid", "-1"))
    except ValueError:
        uid = -1
    if uid < 0:
        raise InvalidRequest("missing caller identity")
    user = str(md.get("x-gsched-user") or uid)
    return Caller(uid=uid, user=user, admin=uid in (0, os.getuid()))


def handler(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Map domain errors to status codes; never leak a traceback to a client."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except GschedError as exc:
            await context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
        except (ValueError, TypeError) as exc:
            logger.warning("%s: bad request: %s", fn.__name__, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise AssertionError("unreachable")  # context.abort raises

    return wrapper


@functools.lru_cache(maxsize=1024)
def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class JobService(rpc.JobServiceServicer):
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self._info_cache: dict[int, tuple[int, bytes]] = {}

    @property
    def cluster(self) -> Any:
        return self.ctl.cluster

    @handler
    async def Submit(self, request: pb.SubmitRequest, context: Any) -> pb.SubmitReply:
        caller = identify(context)
        spec = request.spec
        if spec.nice < 0 and not caller.admin:
            raise PermissionDenied("Access/permission denied: only operators may set a negative nice")
        req = convert.request_from_spec(spec)
        md = dict(context.invocation_metadata() or ())
        gid = int(md.get("x-gsched-gid", "-1") or -1)
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
        self.cluster.submit(job, self.ctl.clock())
        await self.ctl.commit()
        return pb.SubmitReply(job_id=job.job_id)

    def _select(self, f: pb.JobFilter) -> list[Job]:
        states = {s.upper() for s in f.states}
        bad = states - STATE_NAMES - {"ALL"}
        if bad:
            raise InvalidRequest(f"Invalid job state specified: {sorted(bad)[0]}")
        all_states = f.all_states or "ALL" in states
        if f.job_ids:
            jobs = []
            for i in f.job_ids:
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
            if not states and not all_states and not f.job_ids and job.state not in ACTIVE_STATES:
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
        identify(context)
        now = self.ctl.clock()
        f = request.filter
        jobs = self._select(f)
        if f.job_ids and not jobs:
            raise NotFound("Invalid job id specified")
        if f.detail:
            infos = [convert.job_info(j, now, True) for j in jobs]
            for info, j in zip(infos, jobs, strict=True):
                info.limit = convert_policy.limit_text(j, self.cluster.prio.policy)
                if j.state == JobState.PENDING and not j.hold:
                    convert_policy.fill_factors(info.factors, self.cluster, j, now)
            return pb.ListJobsReply(jobs=infos, now=now)
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
        parts.append(pb.ListJobsReply(now=now).SerializeToString())
        return pb.ListJobsReply.FromString(b"".join(parts))

    @handler
    async def Cancel(self, request: pb.CancelRequest, context: Any) -> pb.CancelReply:
        caller = identify(context)
        now = self.ctl.clock()
        f = request.filter
        if f.job_ids:
            ids = list(f.job_ids)
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
                results.append(pb.JobResult(job_id=job_id, ok=True))
            except GschedError as exc:
                results.append(pb.JobResult(job_id=job_id, ok=False, error=str(exc)))
        await self.ctl.commit(orders)
        return pb.CancelReply(results=results)

    async def _each(
        self, request: pb.JobIdsRequest, context: Any, action: Callable[..., Any]
    ) -> pb.JobIdsReply:
        caller = identify(context)
        now = self.ctl.clock()
        results, orders = [], []
        for job_id in request.job_ids:
            try:
                out = action(job_id, caller, now)
                if out:
                    orders.extend(out)
                results.append(pb.JobResult(job_id=job_id, ok=True))
            except GschedError as exc:
                results.append(pb.JobResult(job_id=job_id, ok=False, error=str(exc)))
        await self.ctl.commit(orders)
        return pb.JobIdsReply(results=results)

    @handler
    async def Hold(self, request: pb.JobIdsRequest, context: Any) -> pb.JobIdsReply:
        return await self._each(request, context, self.cluster.hold)

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
        self.cluster.update_job(request.job_id, caller, fields, self.ctl.clock())
        await self.ctl.commit()
        return pb.UpdateJobReply()

    @handler
    async def History(self, request: pb.HistoryRequest, context: Any) -> pb.ListJobsReply:
        caller = identify(context)
        uids: list[int] | None
        if request.all_users or request.job_ids or (caller.admin and not request.users):
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
        return pb.ListJobsReply(jobs=[convert.job_info(j, now) for j in jobs], now=now)

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
        )

    @handler
    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingReply:
        return pb.PingReply(
            version=VERSION,
            now=self.ctl.clock(),
            started=self.ctl.started,
            cluster_name=self.ctl.cfg.cluster_name,
            auth_type="none",
        )


    async def RunStep(
        self, request: pb.StepRequest, context: Any
    ) -> AsyncIterator[pb.StepEvent]:
        """Run a job step on the job's allocation; stream output and exits back."""
        try:
            caller = identify(context)
            job = self.cluster._own(request.job_id, caller)
            if job.state != JobState.RUNNING:
                raise InvalidRequest(f"Unable to create step for job {job.job_id}: "
                                     "Job/step already completing or completed")
            if not request.argv:
                raise InvalidRequest("No command given")
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
            await context.abort(_CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
            return
        ctl = self.ctl
        step_id = ctl.next_step.get(job.job_id, 0)
        ctl.next_step[job.job_id] = step_id + 1
        queue: asyncio.Queue[Any] = asyncio.Queue()
        key = (job.job_id, step_id)
        ctl.steps[key] = queue
        ctl.step_nodes[key] = plan.nodes
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
            if not done:
                self._kill_step(plan.nodes, ref, step_id, 0)

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
        caller = identify(context)
        job = self.cluster._own(request.job_id, caller)
        nodes = self.ctl.step_nodes.get((job.job_id, request.step_id))
        if nodes is None:
            raise NotFound(f"Invalid job step {job.job_id}.{request.step_id}")
        if not 0 < request.signal < 65:
            raise InvalidRequest(f"Invalid signal {request.signal}")
        ref = pb.AttemptRef(job_id=job.job_id, attempt=job.attempt)
        self._kill_step(nodes, ref, request.step_id, request.signal)
        return pb.SignalStepReply()

    def _kill_step(self, nodes: Any, ref: pb.AttemptRef, step_id: int, sig: int) -> None:
        for node in nodes:
            self.ctl.send(node, pb.ControllerMessage(
                step_kill=pb.StepKill(ref=ref, step_id=step_id, signal=sig)))


class AdminService(rpc.AdminServiceServicer):
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
