"""The controller's event-loop shell around the pure :class:`Cluster`.

One writer: every change is made by a method of the Cluster on the event loop, then
:meth:`Controller.commit` waits until the change is in the database. A single
committer task takes whatever is dirty, schedules, writes it all in one transaction
(group commit) on a dedicated thread, then wakes the waiting RPCs and only then
sends the resulting orders to agents. An order is never sent for a change that
could still be lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from gsched.common.config import Config
from gsched.common.exitcodes import parse_exit_codes
from gsched.controller import convert, steptoken
from gsched.controller.auth import user_groups
from gsched.controller.backfill import BackfillConfig
from gsched.controller.cluster import (
    AckExit,
    Cluster,
    KillOrder,
    LaunchOrder,
    Order,
    SignalOrder,
)
from gsched.controller.policy import AccountDef, Policy, Qos
from gsched.controller.priority import PriorityConfig, Weights
from gsched.controller.scheduler import Partition
from gsched.controller.store import Store, job_to_row, node_to_row
from gsched.protos import gsched_pb2 as pb

__all__ = ["AgentSession", "Controller", "partitions_from_config"]

logger = logging.getLogger(__name__)

ACK_DELAY = 0.2  # seconds exit acks are gathered before they go to the agent
VERSION = "0.1.0"


def partitions_from_config(cfg: Config) -> list[Partition]:
    from gsched.common import hostlist

    parts = []
    for p in cfg.partitions:
        all_nodes = p.nodes.upper() == "ALL"
        parts.append(
            Partition(
                name=p.name,
                nodes=() if all_nodes else tuple(hostlist.expand(p.nodes)),
                all_nodes=all_nodes,
                default=p.default,
                default_time=p.default_time,
                max_time=p.max_time,
                max_nodes=p.max_nodes,
                state=p.state,
                priority_tier=p.priority_tier,
                priority_job_factor=p.priority_job_factor,
                allow_accounts=_names(p.allow_accounts),
                allow_groups=_names(p.allow_groups),
                exclusive=p.oversubscribe.upper() == "EXCLUSIVE",
            )
        )
    return parts


def _names(value: str) -> tuple[str, ...]:
    """A comma list, where ``ALL`` (or nothing) means no restriction (empty)."""
    names = tuple(x.strip() for x in value.split(",") if x.strip())
    return () if not names or "ALL" in (n.upper() for n in names) else names


def priority_from_config(cfg: Config) -> PriorityConfig:
    p = cfg.priority
    return PriorityConfig(
        weights=Weights(age=p.weight_age, fairshare=p.weight_fairshare, jobsize=p.weight_jobsize,
                        partition=p.weight_partition, qos=p.weight_qos),
        max_age=float(p.max_age), decay_half_life=float(p.decay_half_life),
        favor_small=p.favor_small,
    )


def policy_from_config(cfg: Config) -> Policy:
    """Accounts, users and QOS from ``[[accounts]]``, ``[[users]]``, ``[[qos]]``.

    Raises:
        ConfigError: a value the policy rejects.
    """
    from gsched.common.config import ConfigError
    from gsched.controller.errors import InvalidRequest

    try:
        qos = [Qos.from_dict(q) for q in cfg.qos]
        accounts = [AccountDef.from_dict(a) for a in cfg.accounts]
        defaults = {str(u["name"]): str(u["default_account"]) for u in cfg.users
                    if u.get("default_account")}
        policy = Policy(qos, accounts, defaults, cfg.priority.default_qos)
        for q in policy.qos.values():
            for other in q.preempt:
                if other not in policy.qos:
                    raise InvalidRequest(f"QOS {q.name}: Preempt names unknown QOS {other}")
    except (InvalidRequest, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{cfg.path}: accounts/qos: {exc}") from exc
    return policy


def _node_timeout(cfg: Config) -> float:
    """When a silent node is declared DOWN and its jobs restart elsewhere.

    Never before the node's own fencing has killed its jobs: fence_after plus the
    SIGTERM->SIGKILL grace plus one second of margin.
    """
    c = cfg.controller
    timeout = c.node_timeout
    if c.fence_after > 0:
        needed = c.fence_after + c.fence_grace + 1.0
        if needed > timeout:
            logger.warning(
                "node_timeout %.1fs is shorter than fencing (%.1fs + %.1fs grace): using %.1fs",
                timeout, c.fence_after, c.fence_grace, needed,
            )
            timeout = needed
    return timeout


@dataclasses.dataclass
class AgentSession:
    """One connected agent's outgoing queue (``None`` closes the stream)."""

    node: str
    peer: str
    queue: asyncio.Queue[pb.ControllerMessage | None]


class Controller:
    """Holds the Cluster, the store, the agent sessions and the committer."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        parts = partitions_from_config(cfg)
        default = next((p.name for p in parts if p.default), None)
        default = default or (parts[0].name if parts else cfg.controller.default_partition)
        self.cluster = Cluster(
            parts,
            default,
            accept_unknown_nodes=cfg.controller.accept_unknown_nodes,
            node_timeout=_node_timeout(cfg),
            suspect_after=cfg.controller.suspect_after,
            requeue_delay=cfg.controller.requeue_delay,
            max_requeue=cfg.controller.max_requeue,
            requeue_exit=parse_exit_codes(cfg.controller.requeue_exit),
            max_requeue_exit=cfg.controller.max_requeue_exit,
            return_to_service=cfg.controller.return_to_service,
            gpu_drain_share=cfg.controller.gpu_drain_share,
            failure_drain_count=cfg.controller.failure_drain_count,
            failure_window=cfg.controller.failure_window,
            max_stop_warning=cfg.controller.max_stop_warning,
            backfill=BackfillConfig(
                depth=cfg.controller.backfill_depth, window=cfg.controller.backfill_window
            ),
            path_resolver=convert.resolve_paths,
            max_array_size=cfg.controller.max_array_size,
            kill_invalid_depend=cfg.controller.kill_invalid_depend,
            priority=priority_from_config(cfg),
            policy=policy_from_config(cfg),
            calc_period=cfg.priority.calc_period,
        )
        self.cluster.groups_of = lambda user, gid: tuple(user_groups(user, gid))
        self.store = Store(cfg.database_url)
        # the key of the jobs' step credentials (GSCHED_STEP_TOKEN), kept across restarts
        self.step_tokens = steptoken.StepTokens(
            self.store.meta_secret(steptoken.KEY_NAME, steptoken.new_key))
        from gsched.common import clusterkey

        path = clusterkey.key_path(cfg.state_dir, cfg.controller.key_file)
        self.cluster_key = clusterkey.read_key(path)
        if self.cluster_key is None:
            logger.warning("no cluster key at %s: any agent that reaches the controller may "
                           "register (run `gsched keygen`)", path)
        self.sessions: dict[str, AgentSession] = {}
        self.started = self.clock()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        self._wake = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._outbox: list[Order] = []
        self._acks: dict[str, list[pb.AttemptRef]] = {}  # node -> exit acks to send
        self._tasks: list[asyncio.Task[Any]] = []
        self.failed: BaseException | None = None
        self.on_stop: list[Callable[[], Any]] = []
        # running job steps (grun): (job id, step id) -> queue of StepEvent for the caller
        self.steps: dict[tuple[int, int], asyncio.Queue[Any]] = {}
        self.step_nodes: dict[tuple[int, int], tuple[str, ...]] = {}
        self.next_step: dict[int, int] = {}
        # running steps' accounting records (the steps table's columns)
        self.step_records: dict[tuple[int, int], dict[str, Any]] = {}

    # ------------------------------------------------------------ lifecycle
    def recover(self) -> None:
        now = self.clock()
        self.store.load(self.cluster, keep_finished_since=now - self.cluster.finished_keep)
        self.next_step = self.store.next_step_ids()
        closed = self.store.end_running_steps(now)
        if closed:
            logger.info("%d job step(s) were running when the controller stopped: CANCELLED",
                        closed)
        for node in self.cluster.nodes.values():
            node.connected = False
            node.last_seen = now  # node_timeout's grace to reconnect
        running = sum(1 for j in self.cluster.jobs.values() if j.state == "RUNNING")
        logger.info(
            "recovered %d jobs (%d running), %d nodes; next job id %d",
            len(self.cluster.jobs),
            running,
            len(self.cluster.nodes),
            self.cluster.next_job_id,
        )

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._committer(), name="committer"))
        self._tasks.append(asyncio.create_task(self._ticker(), name="ticker"))

    async def stop(self) -> None:
        for fn in self.on_stop:
            await fn()
        # Flush what is dirty, then stop the background tasks.
        if self.failed is None:
            await self.commit()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in list(self.sessions.values()):
            s.queue.put_nowait(None)
        self._executor.shutdown(wait=True)
        self.store.close()

    # ------------------------------------------------------------ commit
    async def commit(self, orders: list[Order] | None = None) -> None:
        """Wait until every change made so far is durable; then ``orders`` are sent."""
        if self.failed is not None:
            raise RuntimeError("controller store failed") from self.failed
        if orders:
            self._outbox.extend(orders)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake.set()
        await fut

    def enqueue(self, orders: list[Order]) -> None:
        """Send ``orders`` after the next commit, without waiting for it."""
        self._outbox.extend(orders)
        self._wake.set()

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        cluster = self.cluster
        while True:
            await self._wake.wait()
            self._wake.clear()
            if cluster.need_schedule:
                self._outbox.extend(cluster.schedule(self.clock()))
            jobs = [job_to_row(cluster.jobs[i]) for i in cluster.dirty_jobs if i in cluster.jobs]
            nodes = [
                node_to_row(cluster.nodes[n]) for n in cluster.dirty_nodes if n in cluster.nodes
            ]
            cluster.dirty_jobs.clear()
            cluster.dirty_nodes.clear()
            meta = self._policy_meta()
            waiters, self._waiters = self._waiters, []
            outbox, self._outbox = self._outbox, []
            if jobs or nodes or meta:
                try:
                    await loop.run_in_executor(
                        self._executor, self.store.write, jobs, nodes, cluster.next_job_id,
                        meta,
                    )
                except Exception as exc:
                    # Memory is now ahead of the database: stop rather than act on it.
                    logger.critical("store write failed, stopping: %s", exc)
                    self.failed = exc
                    for w in waiters:
                        if not w.done():
                            w.set_exception(RuntimeError("store write failed"))
                    raise
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            for order in outbox:
                self._dispatch(order)
            if cluster.need_schedule:
                self._wake.set()

    def _policy_meta(self) -> dict[str, str]:
        """The fair-share ledger and the runtime policy, when changed (same transaction)."""
        import json

        prio = self.cluster.prio
        meta: dict[str, str] = {}
        if prio.dirty:
            meta["usage"] = json.dumps(prio.usage_snapshot())
            prio.dirty = False
        if prio.policy_dirty:
            meta["policy"] = json.dumps(prio.policy.to_dict())
            prio.policy_dirty = False
        return meta

    async def _ticker(self) -> None:
        # Wake when the next node deadline falls (not on a fixed beat), so a dead node
        # is DOWN node_timeout after its last sign of life, not up to a beat later.
        while True:
            now = self.clock()
            wait = self.cluster.next_deadline(now) - now + 0.01  # tick compares with ">"
            await asyncio.sleep(min(1.0, max(0.02, wait)))
            orders = self.cluster.tick(self.clock())
            c = self.cluster
            if orders or c.dirty_nodes or c.dirty_jobs or c.need_schedule or c.prio.dirty:
                self.enqueue(orders)

    # ------------------------------------------------------------ steps
    def send(self, node: str, msg: pb.ControllerMessage) -> bool:
        """Send ``msg`` to ``node`` now (steps are not persisted: no commit needed)."""
        session = self.sessions.get(node)
        if session is None:
            return False
        session.queue.put_nowait(msg)
        return True

    def save_step(self, record: dict[str, Any]) -> None:
        """Write a step's accounting record, in order with the store's other writes."""
        row = dict(record, nodes=list(record["nodes"]))

        def done(fut: concurrent.futures.Future[None]) -> None:
            if fut.exception() is not None:
                logger.error("job %d step %d: cannot record: %s", row["job_id"], row["step_id"],
                             fut.exception())

        self._executor.submit(self.store.write_step, row).add_done_callback(done)

    def step_event(self, job_id: int, step_id: int, event: Any) -> None:
        queue = self.steps.get((job_id, step_id))
        if queue is not None:
            queue.put_nowait(event)

    # ------------------------------------------------------------ orders
    def _dispatch(self, order: Order) -> None:
        session = self.sessions.get(order.node)
        if session is None:
            logger.info("order for %s dropped (not connected): %s", order.node, order)
            return
        if isinstance(order, AckExit):
            self._gather_ack(order)
            return
        msg = self._message(order)
        if msg is not None:
            session.queue.put_nowait(msg)

    def _gather_ack(self, order: AckExit) -> None:
        """Send exit acks ACK_DELAY later, all of a node's in one message.

        The exit is committed already; an ack only lets the agent forget its record
        (an agent that restarts first reports the exit again, which changes
        nothing). Gathering them saves a message per job when many jobs end.
        """
        refs = self._acks.setdefault(order.node, [])
        refs.append(pb.AttemptRef(job_id=order.job_id, attempt=order.attempt))
        if len(refs) == 1:
            asyncio.get_running_loop().call_later(ACK_DELAY, self._send_acks, order.node)

    def _send_acks(self, node: str) -> None:
        refs = self._acks.pop(node, [])
        session = self.sessions.get(node)
        if refs and session is not None:
            session.queue.put_nowait(
                pb.ControllerMessage(exit_ack=pb.ExitAck(ref=refs[0], more=refs[1:])))

    def _message(self, order: Order) -> pb.ControllerMessage | None:
        ref = pb.AttemptRef(job_id=order.job_id, attempt=order.attempt)
        if isinstance(order, KillOrder):
            return pb.ControllerMessage(kill=pb.KillJob(ref=ref, reason=order.reason))
        if isinstance(order, SignalOrder):
            return pb.ControllerMessage(
                signal=pb.SignalJob(ref=ref, signal=order.signal, batch_only=order.batch_only,
                                    job_warning=order.job_warning)
            )
        assert isinstance(order, LaunchOrder)
        job = self.cluster.jobs.get(order.job_id)
        if job is None or job.attempt != order.attempt or order.node not in job.alloc:
            return None
        spec = pb.JobSpec.FromString(job.spec)
        launch = pb.Launch(
            ref=ref,
            spec=spec,
            user=job.user,
            uid=job.uid,
            gid=job.gid,
            group=job.group,
            node_index=order.node_index,
            partition=job.partition,
            time_limit=job.time_limit,
            stdout_path=job.stdout_path,
            stderr_path=job.stderr_path,
            cluster_name=self.cfg.cluster_name,
            ntasks=job.request.ntasks,
            submit_time=job.submit_time,
            kill_wait=self.cfg.controller.kill_wait,
            last_failure=job.last_failure,
            controller_address=self.cfg.controller.address,
            batch=order.node_index == 0,
            step_token=self.step_tokens.for_attempt(job.job_id, job.attempt),
        )
        if job.array_job_id and job.array_tasks is None:
            count, low, high, step = job.array_size
            launch.array_job_id = job.array_job_id
            launch.array_task_id = job.array_task_id
            launch.array_task_count = count
            launch.array_task_min = low
            launch.array_task_max = high
            launch.array_task_step = step
        for name, a in job.alloc.items():
            launch.nodes.add(
                node=name, indices=a.get("gpus", []), cpus=a.get("cpus", 0),
                mem_mb=a.get("mem_mb", 0),
            )
            node = self.cluster.nodes.get(name)
            if node is not None and node.info.get("address"):
                launch.node_addresses[name] = str(node.info["address"])
        return pb.ControllerMessage(launch=launch)
