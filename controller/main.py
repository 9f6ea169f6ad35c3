"""``gsched controller``: wire the Controller, the gRPC server and signals together."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc

from gsched.common.config import Config
from gsched.controller.local import LocalServer
from gsched.controller.runtime import Controller
from gsched.controller.service import AdminService, AgentLinkService, JobService
from gsched.protos import gsched_pb2_grpc as rpc

__all__ = ["serve", "start_server"]

logger = logging.getLogger(__name__)


async def start_server(cfg: Config, listen: str | None = None) -> tuple[Controller, grpc.aio.Server, int]:
    """Recover state, start the committer and the gRPC server; return (ctl, server, port)."""
    ctl = Controller(cfg)
    ctl.recover()
    ctl.start()
    from gsched.controller.guard import MalformedGuard

    server = grpc.aio.server(
        interceptors=[MalformedGuard()],
        options=[
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
        ]
    )
    jobs, admin = JobService(ctl), AdminService(ctl)
    rpc.add_JobServiceServicer_to_server(jobs, server)
    rpc.add_AdminServiceServicer_to_server(admin, server)
    rpc.add_AgentLinkServicer_to_server(AgentLinkService(ctl), server)
    port = server.add_insecure_port(listen or cfg.listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen or cfg.listen}")
    await server.start()
    if cfg.socket_path:
        local = LocalServer(cfg.socket_path, jobs, admin)
        await local.start()
        ctl.on_stop.append(local.stop)
    logger.info("controller listening on %s (port %d), database %s", listen or cfg.listen, port,
                cfg.database_url)
    return ctl, server, port


async def _main(cfg: Config) -> None:
    ctl, server, _ = await start_server(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    failed = asyncio.create_task(_watch(ctl))
    await asyncio.wait([asyncio.create_task(stop.wait()), failed],
                       return_when=asyncio.FIRST_COMPLETED)
    logger.info("controller stopping")
    await server.stop(grace=1.0)
    await ctl.stop()
    if ctl.failed is not None:
        raise SystemExit(1)


async def _watch(ctl: Controller) -> None:
    while ctl.failed is None:
        await asyncio.sleep(0.5)


def serve(cfg: Config) -> None:
    """Run the controller in the foreground until SIGTERM/SIGINT."""
    asyncio.run(_main(cfg))
