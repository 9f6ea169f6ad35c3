"""Serve JobService/AdminService on a Unix socket (see gsched.common.localrpc).

The same servicer objects answer both transports; only the context differs. The
caller's identity comes from the kernel (SO_PEERCRED), never from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import struct
from typing import Any

import grpc

from gsched.common.auth import ISSUE_METHOD, AuthError
from gsched.common.localrpc import (
    ADMIN_METHODS,
    MAX_FRAME,
    METHODS,
    decode_request,
    encode_reply,
)
from gsched.controller.cluster import Caller
from gsched.protos import gsched_pb2 as pb

__all__ = ["LocalServer"]

logger = logging.getLogger(__name__)
_CRED = struct.Struct("3i")


class _Abort(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _LocalContext:
    """Just enough of grpc.aio.ServicerContext for the servicers."""

    def __init__(self, uid: int, gid: int, pid: int, auth: Any = None) -> None:
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        # what service.identify() trusts: the kernel's word, with the caller's role
        self.kernel_caller = (
            auth.caller(uid, gid, user) if auth is not None
            else Caller(uid=uid, user=user, admin=uid in (0, os.getuid()), gid=gid,
                        role="admin" if uid in (0, os.getuid()) else "user")
        )
        self.uid, self.gid = uid, gid
        self._metadata = (
            ("x-gsched-uid", str(uid)),
            ("x-gsched-gid", str(gid)),
            ("x-gsched-user", user),
        )
        self._peer = f"unix:pid={pid},uid={uid}"

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _Abort(int(code.value[0]), details)


class LocalServer:
    """Accepts connections on ``path`` and dispatches framed calls to the servicers."""

    def __init__(self, path: str, jobs: Any, admin: Any, auth: Any = None) -> None:
        self.path = path
        self.auth = auth  # controller.auth.Authenticator: roles, and local credentials
        self._handlers: dict[str, tuple[Any, Any]] = {}
        for method, (req_name, _) in METHODS.items():
            target = admin if method in ADMIN_METHODS else jobs
            self._handlers[method] = (getattr(target, method), getattr(pb, req_name))
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Connection(self), path=self.path)
        os.chmod(self.path, 0o666)  # anyone may call; the kernel says who they are
        logger.info("local socket %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _call(self, method: str, payload: bytes, context: _LocalContext) -> bytes:
        if method == ISSUE_METHOD and self.auth is not None:
            # a credential for one gRPC call, for the uid the kernel vouches for
            try:
                token = self.auth.local.issue(context.uid, context.gid,
                                              payload.decode("ascii"))
            except (UnicodeDecodeError, AuthError):
                return encode_reply(3, b"invalid method name")  # INVALID_ARGUMENT
            return encode_reply(0, token.encode())
        entry = self._handlers.get(method)
        if entry is None:
            return encode_reply(12, f"unknown method {method}".encode())  # UNIMPLEMENTED
        fn, req_type = entry
        try:
            request = req_type.FromString(payload)
        except Exception:  # a malformed message from a client must not hurt anyone
            return encode_reply(3, b"malformed request")  # INVALID_ARGUMENT
        try:
            reply = await fn(request, context)
        except _Abort as exc:
            return encode_reply(exc.code, exc.message.encode())
        return encode_reply(0, reply.SerializeToString())


class _Connection(asyncio.Protocol):
    """One client connection: frames in, one reply per frame, in order.

    A protocol rather than asyncio streams: a ``gsub`` opens a connection for one
    call, and the stream objects (reader, writer, a task per connection) were a
    tenth of the controller's work for it. While a call is being answered the
    connection reads no more (a client cannot queue up calls faster than they are
    answered).
    """

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.context: _LocalContext | None = None
        self.buffer = bytearray()
        self.calls: list[tuple[str, bytes]] = []
        self.task: asyncio.Task[None] | None = None
        self.eof = False
        self.pid = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        try:
            self.pid, uid, gid = _CRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
            )
        except OSError:
            self._close()
            return
        self.context = _LocalContext(uid, gid, self.pid, self.server.auth)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while len(buf) >= 4:
            length = int.from_bytes(buf[:4], "big")
            if not 1 <= length <= MAX_FRAME:
                logger.warning("local socket: bad frame length %d from pid %d", length,
                               self.pid)
                self._close()
                return
            if len(buf) < 4 + length:
                break
            self.calls.append(decode_request(bytes(buf[4:4 + length])))  # never raises
            del buf[:4 + length]
        if self.calls and self.task is None and self.transport is not None:
            self.transport.pause_reading()
            self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        """Answer the calls received so far, one after another."""
        try:
            while self.calls and self.transport is not None and self.context is not None:
                method, payload = self.calls.pop(0)
                try:
                    reply = await self.server._call(method, payload, self.context)
                except Exception:
                    logger.exception("local socket: %s from pid %d failed", method, self.pid)
                    self._close()
                    return
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(reply)
        finally:
            self.task = None
            if self.transport is not None:
                if self.eof:
                    self._close()
                else:
                    self.transport.resume_reading()

    def eof_received(self) -> bool:
        # the client sends no more: close now, or once the calls in hand are answered
        self.eof = True
        return self.task is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.calls.clear()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
