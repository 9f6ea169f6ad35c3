"""``gsched agent``: register with the controller, run what it orders, report exits.

The agent dials out: one bidirectional ``AgentLink.Connect`` stream, re-dialled with
exponential backoff (tenacity) whenever it breaks. On every (re)connect it says
hello with the attempts it still runs and the exits the controller has not yet
acknowledged; exits are kept on disk by the launcher until acknowledged, so none is
lost across a broken stream, an agent restart or a controller restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import tenacity

from gsched.common.config import Config
from gsched.protos import gsched_pb2 as pb
from gsched.protos import gsched_pb2_grpc as rpc

__all__ = ["Agent", "run_agent"]

logger = logging.getLogger(__name__)


class ControllerNotProven(ConnectionError):
    """The other end of the stream did not show it holds the cluster key."""
VERSION = "0.1.0"


def _route_address(target: str) -> str:
    """The local address this host uses to reach ``target`` (no packet is sent)."""
    host = target.rsplit(":", 1)[0].strip("[]")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def _short(exc: BaseException | None) -> str:
    if isinstance(exc, grpc.RpcError):
        code = exc.code()
        return code.name if code is not None else "error"
    return str(exc)


class Agent:
    """One node's agent. ``run()`` until ``stop()``."""

    def __init__(
        self,
        cfg: Config,
        name: str | None = None,
        state_dir: str | None = None,
        gpus: str | None = None,
        cpus: int | None = None,
        mem_mb: int | None = None,
    ) -> None:
        from gsched.agent.gpus import detect
        from gsched.agent.launcher import Launcher
        from gsched.common.shims import install_shims

        self.cfg = cfg
        self.name = name or cfg.agent.name or socket.gethostname().split(".")[0]
        self.state_dir = Path(
            state_dir or cfg.agent.state_dir or os.path.join(cfg.state_dir, f"agent-{self.name}")
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.gpus = detect(
            gpus or cfg.agent.gpus,
            node_name=self.name,
            faults_path=str(self.state_dir / "fake-gpu-faults.json"),
        )
        self.cpus = cpus or cfg.agent.cpus or psutil.cpu_count() or 1
        self.mem_mb = mem_mb or cfg.agent.mem_mb or psutil.virtual_memory().total // (1024 * 1024)
        self.address = cfg.agent.address or _route_address(cfg.controller.address)
        shim_dir = self.state_dir / "shims"
        install_shims(shim_dir)
        self.launcher = Launcher(self.state_dir, self.name, str(shim_dir), self._on_exit)
        self.confinement = self._confine(cfg)
        from gsched.agent.steps import StepRunner

        self.steps = StepRunner(self.name, self._send)
        self.steps.cgroup_of = self.launcher.cgroup_of
        self.unacked: dict[tuple[int, int], Any] = {}
        self._sent_proof = ""  # the cluster key proof of this session's hello
        self.killed_unlaunched: set[tuple[int, int]] = set()
        self.heartbeat_interval = cfg.controller.heartbeat_interval
        self._queue: asyncio.Queue[pb.AgentMessage | None] | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self._recovered_running: list[tuple[int, int]] = []

    def _confine(self, cfg: Config) -> str:
        """Set up job confinement (agent/cgroups.py); returns what it is, for ginfo."""
        from gsched.agent.cgroups import CgroupTree

        tree, what = CgroupTree.setup(cfg.agent.cgroup_root, self.name, enabled=cfg.agent.cgroups)
        self.launcher.cgroups = tree
        self.launcher.allow_root_jobs = cfg.agent.allow_root_jobs
        if os.geteuid() == 0 and cfg.agent.gpu_device_path:
            self.launcher.gpu_device_path = cfg.agent.gpu_device_path
            head, _, why = what.partition(" ")  # "none (why)" -> "none+devns (why)"
            what = f"{head}+devns" + (f" {why}" if why else "")
        if tree is None:
            logger.warning(
                "job confinement: %s; jobs are tracked and killed by process groups only", what
            )
        else:
            logger.info("job confinement: %s under %s", what, tree.base)
        return what

    # ------------------------------------------------------------ reports
    def _exit_message(self, rec: Any) -> pb.AgentMessage:
        return pb.AgentMessage(
            exited=pb.JobExited(
                ref=pb.AttemptRef(job_id=rec.job_id, attempt=rec.attempt),
                exit_code=rec.exit_code,
                signal=rec.signal,
                reason=rec.reason,
                end_time=rec.end_time,
                message=rec.message,
            )
        )

    def _proof(self) -> str:
        from gsched.common import clusterkey

        path = clusterkey.key_path(self.cfg.state_dir, self.cfg.controller.key_file)
        key = clusterkey.read_key(path)
        return clusterkey.make_proof(key, self.name, time.time()) if key else ""

    def _hello_proof(self) -> str:
        """The proof for this session's hello, kept to check the controller's answer."""
        self._sent_proof = self._proof()
        return self._sent_proof

    def _controller_proven(self, w: pb.Welcome) -> bool:
        """Whether the welcome comes from a controller that holds our cluster key."""
        from gsched.common import clusterkey

        if not self._sent_proof:
            return True  # no key here: nothing to check (the controller warned at start)
        path = clusterkey.key_path(self.cfg.state_dir, self.cfg.controller.key_file)
        key = clusterkey.read_key(path)
        return key is not None and clusterkey.verify_controller(
            key, self.name, self._sent_proof, w.controller_proof)

    def _send(self, msg: pb.AgentMessage) -> None:
        if self._queue is not None:
            self._queue.put_nowait(msg)

    def _on_exit(self, rec: Any) -> None:
        self.steps.kill_job(rec.job_id, rec.attempt)
        key = (rec.job_id, rec.attempt)
        self.unacked[key] = rec
        logger.info("job %d attempt %d ended: %d:%d %s", rec.job_id, rec.attempt,
                    rec.exit_code, rec.signal, rec.reason)
        if self._queue is not None:
            self._queue.put_nowait(self._exit_message(rec))

    def _gpu_infos(self) -> list[pb.GpuInfo]:
        out = []
        limit = self.cfg.agent.gpu_max_temp_c
        for g in self.gpus.probe():
            if limit and g.healthy and g.temperature_c > limit:
                g = dataclasses.replace(
                    g, healthy=False,
                    health_reason=f"temperature {g.temperature_c}C over limit {limit}C",
                )
            out.append(g.to_proto())
        return out

    def _hello(self, gpus: list[pb.GpuInfo]) -> pb.AgentMessage:
        self.launcher.gpu_indices = tuple(g.index for g in gpus)
        running = self.launcher.running()
        return pb.AgentMessage(
            hello=pb.Hello(
                node=self.name,
                hostname=socket.gethostname(),
                address=self.address,
                cpus=int(self.cpus),
                mem_mb=int(self.mem_mb),
                gpus=gpus,
                gpu_backend=self.gpus.name,
                running=[pb.AttemptRef(job_id=j, attempt=a) for j, a in running],
                finished=[pb.AttemptRef(job_id=j, attempt=a) for j, a in self.unacked],
                version=VERSION,
                sent=time.time(),
                secret=self._hello_proof(),
                boot_time=psutil.boot_time(),
                arch=platform.machine(),
                os=f"{platform.system()} {platform.release()}",
                confinement=self.confinement,
            )
        )

    async def _backoff_sleep(self, seconds: float) -> None:
        """Wait before re-dialling, but wake at once on SIGTERM."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _before_retry(self, rs: tenacity.RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        self._link_failed(exc)
        logger.warning("controller %s not reachable (%s); retrying",
                       self.cfg.controller.address, _short(exc))

    # ------------------------------------------------------------ main loop
    async def run(self) -> None:
        self._recovered_running = self.launcher.recover()
        logger.info("agent %s: %d cpus, %d MB, gpus=%s; re-adopted %d running attempts",
                    self.name, self.cpus, self.mem_mb, self.gpus.name,
                    len(self._recovered_running))
        retry = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential_jitter(initial=0.2, max=5.0),
            sleep=self._backoff_sleep,
            retry=tenacity.retry_if_exception_type((grpc.RpcError, ConnectionError, OSError)),
            before_sleep=self._before_retry,
        )
        while not self._stopping.is_set():
            try:
                async for attempt in retry:
                    if self._stopping.is_set():
                        return  # SIGTERM while the controller was unreachable
                    with attempt:
                        await self._session()
                        if self._stopping.is_set():
                            return
                        raise ConnectionError("stream ended")
            except tenacity.RetryError:  # pragma: no cover - retries forever
                continue

    async def _session(self) -> None:
        options = [("grpc.keepalive_time_ms", 10_000), ("grpc.keepalive_timeout_ms", 5_000)]
        ca = self.cfg.agent.tls_ca or self.cfg.controller.tls_ca
        if ca:  # TLS: the controller must show a certificate signed by this CA
            from gsched.common.tls import channel_credentials

            creds = channel_credentials(ca)
            channel = grpc.aio.secure_channel(self.cfg.controller.address, creds,
                                              options=options)
        else:
            channel = grpc.aio.insecure_channel(self.cfg.controller.address, options=options)
        queue: asyncio.Queue[pb.AgentMessage | None] = asyncio.Queue()
        gpus = await asyncio.to_thread(self._gpu_infos)
        queue.put_nowait(self._hello(gpus))
        for rec in list(self.unacked.values()):
            queue.put_nowait(self._exit_message(rec))
        self._queue = queue
        hb = asyncio.create_task(self._heartbeats(queue))
        stop_wait = asyncio.create_task(self._stopping.wait())
        try:
            stub = rpc.AgentLinkStub(channel)
            call = stub.Connect(self._outgoing(queue))
            reader = asyncio.create_task(self._incoming(call))
            done, _ = await asyncio.wait({reader, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                reader.result()
            else:
                reader.cancel()
                call.cancel()
        finally:
            self._queue = None
            self.connected.clear()
            hb.cancel()
            stop_wait.cancel()
            queue.put_nowait(None)
            await channel.close()

    async def _outgoing(self, queue: asyncio.Queue[pb.AgentMessage | None]) -> AsyncIterator[pb.AgentMessage]:
        while True:
            msg = await queue.get()
            if msg is None:
                return
            yield msg

    async def _heartbeats(self, queue: asyncio.Queue[pb.AgentMessage | None]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.steps.reap()
            gpus = await asyncio.to_thread(self._gpu_infos)
            vm = psutil.virtual_memory()
            queue.put_nowait(
                pb.AgentMessage(
                    heartbeat=pb.Heartbeat(
                        cpu_load=os.getloadavg()[0],
                        free_mem_mb=vm.available // (1024 * 1024),
                        gpus=gpus,
                        running=[
                            pb.AttemptRef(job_id=j, attempt=a) for j, a in self.launcher.running()
                        ],
                        sent=time.time(),
                    )
                )
            )

    async def _incoming(self, call: Any) -> None:
        proven = False
        async for msg in call:
            kind = msg.WhichOneof("msg")
            if not proven and kind != "welcome":
                raise ControllerNotProven(f"controller sent {kind} before its welcome")
            if kind == "welcome":
                w = msg.welcome
                if not self._controller_proven(w):
                    logger.error("controller %s did not prove the cluster key: refusing its "
                                 "orders", self.cfg.controller.address)
                    raise ControllerNotProven("controller did not prove the cluster key")
                proven = True
                self.heartbeat_interval = w.heartbeat_interval or self.heartbeat_interval
                self.launcher.fence_after = w.fence_after
                self.launcher.fence_grace = w.fence_grace
                self._contact(w.hello_sent)
                self.connected.set()
                logger.info("registered with controller %s as %s",
                            self.cfg.controller.address, self.name)
            elif kind == "launch":
                await self._launch(msg.launch)
            elif kind == "kill":
                self._kill(msg.kill)
            elif kind == "signal":
                s = msg.signal
                if s.job_warning:
                    self.launcher.warn(s.ref.job_id, s.ref.attempt)
                else:
                    self.launcher.signal(s.ref.job_id, s.ref.attempt, s.signal, s.batch_only)
            elif kind == "step_launch":
                await self.steps.launch(msg.step_launch)
            elif kind == "step_input":
                self.steps.input(msg.step_input)
            elif kind == "step_kill":
                k = msg.step_kill
                self.steps.signal(k.ref.job_id, k.ref.attempt, k.step_id, k.signal)
            elif kind == "heartbeat_ack":
                self._contact(msg.heartbeat_ack.sent)
            elif kind == "exit_ack":
                for ref in (msg.exit_ack.ref, *msg.exit_ack.more):
                    key = (ref.job_id, ref.attempt)
                    self.unacked.pop(key, None)
                    self.launcher.ack(*key)

    async def _launch(self, launch: pb.Launch) -> None:
        key = (launch.ref.job_id, launch.ref.attempt)
        if key in self.killed_unlaunched:
            return
        if self._cut_off():
            # This order waited in the stream while we were cut off (a frozen agent, a
            # partition): the controller may have given the job to another node since.
            from gsched.agent.launcher import ExitRecord

            logger.warning("job %d attempt %d: launch refused, contact with the controller "
                           "was lost since it was sent", *key)
            self.killed_unlaunched.add(key)
            self._on_exit(ExitRecord(key[0], key[1], 0, 0, "fenced", time.time(),
                                     "launch arrived after contact with the controller was lost"))
            return
        # No JobStarted message: the controller counts the job running from the launch
        # order on, and each message on the link costs both ends ~0.2 ms of CPU.
        await self.launcher.launch(launch)

    def _kill(self, kill: pb.KillJob) -> None:
        key = (kill.ref.job_id, kill.ref.attempt)
        self.steps.kill_job(kill.ref.job_id, kill.ref.attempt)
        if key in self.launcher.running():
            self.launcher.kill(kill.ref.job_id, kill.ref.attempt, kill.reason)
            return
        if key in self.unacked:
            return  # already ended; the controller gets (got) its exit
        if not (self.state_dir / "jobs" / f"{key[0]}.{key[1]}").exists():
            # Never launched here (the order was lost): it will not be, and the
            # controller needs an end for this node's part.
            from gsched.agent.launcher import ExitRecord

            self.killed_unlaunched.add(key)
            self._on_exit(ExitRecord(key[0], key[1], 0, 9, kill.reason, time.time(), "never launched"))

    def _contact(self, sent: float) -> None:
        """The controller answered a message we sent at ``sent``: jobs may live on.

        The fence file's mtime is what every job wrapper checks (see agent/wrap.py).
        """
        path = self.launcher.fence_file
        try:
            if os.stat(path).st_mtime >= sent:
                return
        except FileNotFoundError:
            with open(path, "a"):
                pass
        os.utime(path, (sent, sent))

    def _cut_off(self) -> bool:
        """Whether proven contact with the controller is older than fence_after."""
        after = self.launcher.fence_after
        if after <= 0:
            return False
        try:
            return time.time() - os.stat(self.launcher.fence_file).st_mtime > after
        except FileNotFoundError:
            return False

    def _link_failed(self, exc: BaseException | None) -> None:
        """A refused connection means no controller runs: none can requeue our jobs.

        A restarted controller gives every node a fresh node_timeout, so jobs keep
        running through a controller restart. Silence (timeouts) is not refusal, and
        once cut off for fence_after we stay fenced: the controller may have requeued
        our jobs before it went away.
        """
        refused = isinstance(exc, grpc.RpcError) and "refused" in (exc.details() or "").lower()
        if refused and not self._cut_off():
            self._contact(time.time())

    def stop(self) -> None:
        self._stopping.set()


async def _main(agent: Agent) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    try:
        await agent.run()
    finally:
        if agent.launcher.cgroups is not None and not agent.launcher.running():
            agent.launcher.cgroups.release()
    logger.info("agent %s stopped (its jobs keep running and are re-adopted on restart)",
                agent.name)


def run_agent(cfg: Config, **overrides: Any) -> None:
    """Run an agent in the foreground until SIGTERM/SIGINT."""
    asyncio.run(_main(Agent(cfg, **overrides)))
