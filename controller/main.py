"""``gsched controller``: wire the Controller, the gRPC server and signals together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

import grpc

from gsched.common.config import Config, ConfigError
from gsched.common.tls import server_credentials
from gsched.controller.auth import Authenticator, authenticated, is_loopback
from gsched.controller.guard import guard
from gsched.controller.local import LocalServer
from gsched.controller.pinning import NodePins
from gsched.controller.runtime import Controller
from gsched.controller.service import AdminService, AgentLinkService, JobService
from gsched.protos import gsched_pb2_grpc as rpc

__all__ = ["serve", "start_server"]

logger = logging.getLogger(__name__)


async def start_server(cfg: Config, listen: str | None = None) -> tuple[Controller, grpc.aio.Server, int]:
    """Recover state, start the committer and the gRPC server; return (ctl, server, port)."""
    where = listen or cfg.listen
    if cfg.controller.auth_type == "none" and not is_loopback(where):
        raise ConfigError(
            f"auth_type = \"none\" believes whatever identity a caller claims, so the "
            f"controller refuses to listen on {where}: bind to 127.0.0.1 or use "
            f"auth_type = \"local\" or \"munge\""
        )
    if not is_loopback(where):
        from gsched.common import clusterkey

        key = clusterkey.key_path(cfg.state_dir, cfg.controller.key_file)
        if clusterkey.read_key(key) is None:
            raise ConfigError(
                f"no cluster key at {key}: any host that reaches {where} could register as a "
                "node; run `gsched keygen` and copy the key to every agent host"
            )
    _check_driver(cfg.database_url)
    authn = Authenticator(cfg)
    authn.start()  # OSError when MUNGE is configured but not usable
    # The database holds every user's scripts and environments: owner-only files.
    old_umask = os.umask(0o077)
    try:
        ctl = Controller(cfg)
    finally:
        os.umask(old_umask)
    _private_sqlite(cfg.database_url)
    ctl.recover()
    ctl.start()
    server = grpc.aio.server(
        options=[
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
        ],
    )
    jobs, admin = JobService(ctl), AdminService(ctl)
    jobs.auth = admin.auth = authn
    wrapped = _Registrar(server, authn)
    rpc.add_JobServiceServicer_to_server(jobs, wrapped)
    rpc.add_AdminServiceServicer_to_server(admin, wrapped)
    link = AgentLinkService(ctl)
    link.pins = admin.pins = NodePins(cfg.controller.pin_nodes)
    rpc.add_AgentLinkServicer_to_server(link, wrapped)
    creds = server_credentials(cfg)
    if creds is None:
        port = server.add_insecure_port(where)
    else:
        port = server.add_secure_port(where, creds)
    if port == 0:
        raise OSError(f"cannot listen on {listen or cfg.listen}")
    await server.start()
    if cfg.socket_path:
        local = LocalServer(cfg.socket_path, jobs, admin, auth=authn)
        await local.start()
        ctl.on_stop.append(local.stop)
    logger.info("controller listening on %s (port %d%s), database %s, auth_type %s",
                where, port, ", TLS" if creds is not None else "", cfg.database_url,
                cfg.controller.auth_type)
    ctl.on_stop.append(_closer(authn))
    return ctl, server, port


class _Registrar:
    """Stands in for the server while the generated ``add_*_to_server`` functions run.

    Each method handler is wrapped once, here: the malformed-bytes guard outermost
    (controller/guard.py: undecodable bytes are refused before authentication), then
    the credential check (controller/auth.py; not for AgentLink, whose agents prove
    the cluster key in their hello). Per-call interceptors did the same work on every
    call, at about a tenth of a submission's controller time.
    """

    def __init__(self, server: grpc.aio.Server, authn: Authenticator) -> None:
        self._server = server
        self._authn = authn
        self._done: dict[str, grpc.RpcMethodHandler] = {}

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        done = self._done.get(method)
        if done is None:
            done = handler
            if not method.startswith("/gsched.v1.AgentLink/"):
                done = authenticated(self._authn, done, method)
            if done.request_deserializer is not None:
                done = guard(done, method)
            self._done[method] = done
        return done

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(tuple(_Wrapped(h, self._wrap) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        )


class _Wrapped(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped (see :class:`_Registrar`)."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Any) -> None:
        self._inner = inner
        self._wrap = wrap

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(details)
        return None if handler is None else self._wrap(details.method, handler)


def _check_driver(url: str) -> None:
    """A PostgreSQL URL needs its driver installed: say how, before anything starts."""
    driver = {"postgresql+psycopg": "psycopg", "postgresql+psycopg2": "psycopg2"}.get(
        url.split("://", 1)[0])
    if driver is None:
        return
    import importlib.util

    if importlib.util.find_spec(driver) is None:
        raise ConfigError(
            f"[controller] database is PostgreSQL, but the {driver} driver is not installed: "
            "pip install 'gsched[postgresql]'"
        )


def _private_sqlite(url: str) -> None:
    """Make an SQLite database made before this rule owner-only (0600)."""
    if not url.startswith("sqlite:///"):
        return
    path = url[len("sqlite:///"):]
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)


def _closer(authn: Authenticator) -> Any:
    async def close() -> None:
        authn.close()

    return close


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
