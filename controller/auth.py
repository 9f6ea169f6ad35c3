"""Who is calling: credential checks on the gRPC port and the roles of callers.

Every JobService/AdminService handler on the gRPC port runs behind
:func:`authenticated` (wrapped once, when the services are registered). It
verifies the call's credential (see :mod:`gsched.common.auth`) according to
``[controller] auth_type``, turns it into a
:class:`~gsched.controller.cluster.Caller` with its role, and puts that in
:data:`CALLER` (a context variable) for :func:`gsched.controller.service.identify`.
A call without a valid credential never reaches a handler: it ends
``UNAUTHENTICATED`` with a one-line reason, logged at warning with the peer.

The AgentLink service is not intercepted: agents prove the cluster key in their
hello (common/clusterkey.py). The Unix socket (controller/local.py) identifies its
callers by SO_PEERCRED and builds the Caller with :meth:`Authenticator.caller`.

Roles: ``admin`` (root, the controller's own uid, ``[controller] admins``),
``operator`` (``[controller] operators``), else ``user``. Entries are user names,
uids, or ``%group``. Both admins and operators may act on every job and node.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import grp
import ipaddress
import logging
import os
import pwd
import time
from typing import Any

import grpc

from gsched.common import auth
from gsched.common.config import Config
from gsched.controller.cluster import Caller

__all__ = ["CALLER", "Authenticator", "authenticated", "is_loopback", "user_groups"]

logger = logging.getLogger(__name__)

CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("gsched_caller",
                                                                       default=None)
_ROLE_CACHE_S = 300.0


def is_loopback(listen: str) -> bool:
    """Whether a listen address ('127.0.0.1:6817', '[::1]:0', 'localhost:1') is loopback only."""
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Verifies credentials and knows the roles (one per controller)."""

    def __init__(self, cfg: Config) -> None:
        c = cfg.controller
        self.auth_type = c.auth_type
        self.ttl = float(c.credential_ttl)
        self.private_jobs = "jobs" in c.private_data
        self.local = auth.LocalTokens(ttl=min(float(auth.LOCAL_TTL), self.ttl))
        self._munge: Any = None
        self._munge_socket = c.munge_socket
        self._munge_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._replays = auth.ReplayCache()
        self._admins = _Members(c.admins)
        self._operators = _Members(c.operators)
        self._roles: dict[tuple[int, int], tuple[float, str]] = {}
        self.own_uid = os.getuid()

    def start(self) -> None:
        """Open what the auth type needs (MUNGE); raises OSError when it is not there."""
        if self.auth_type == "munge":
            from gsched.common.munge import MungeError, open_munge

            self._munge = open_munge(self._munge_socket)
            try:  # refuse to start rather than refuse every call later
                self._munge.decode(self._munge.encode(b"gsched self-test"))
            except MungeError as exc:
                raise OSError(f"munged at {self._munge_socket or 'its default socket'} does "
                              f"not work: {exc.message}") from None
            # libmunge blocks (and retries for seconds when munged is gone): never
            # on the event loop; one thread, since a munge context is not shareable
            self._munge_pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="munge")
            logger.info("auth_type munge: verifying credentials with %s (socket %s)",
                        self._munge.name, self._munge_socket or "default")
        elif self.auth_type == "none":
            logger.warning("!!! auth_type = \"none\": callers are believed about who they are; "
                           "any local user can act as any other, root included. For tests only. "
                           "!!!")

    def close(self) -> None:
        if self._munge_pool is not None:
            self._munge_pool.shutdown(wait=False)

    # ------------------------------------------------------------ roles
    def role(self, uid: int, gid: int, user: str) -> str:
        if uid in (0, self.own_uid):
            return "admin"
        now = time.monotonic()
        hit = self._roles.get((uid, gid))
        if hit is not None and hit[0] > now:
            return hit[1]
        groups = user_groups(user, gid)
        role = ("admin" if self._admins.has(uid, user, groups)
                else "operator" if self._operators.has(uid, user, groups) else "user")
        self._roles[(uid, gid)] = (now + _ROLE_CACHE_S, role)
        return role

    def caller(self, uid: int, gid: int, user: str = "") -> Caller:
        """The Caller for a verified uid/gid."""
        if not user:
            try:
                user = pwd.getpwuid(uid).pw_name
            except KeyError:
                user = str(uid)
        role = self.role(uid, gid, user)
        return Caller(uid=uid, user=user, admin=role != "user", gid=gid, role=role)

    # ------------------------------------------------------------ credentials
    async def authenticate(self, method: str, metadata: dict[str, str],
                           now: float | None = None) -> Caller:
        """The Caller of a gRPC call; raises AuthError."""
        now = time.time() if now is None else now
        cred = metadata.get(auth.CRED_KEY, "")
        if cred.startswith("local:"):
            uid, gid = self.local.verify(cred, method, now)
            return self.caller(uid, gid)
        if cred.startswith("munge:"):
            if self._munge is None:
                raise auth.AuthError("this controller does not use MUNGE (auth_type = "
                                     f"\"{self.auth_type}\")")
            loop = asyncio.get_running_loop()
            uid, gid = await loop.run_in_executor(
                self._munge_pool, self.verify_munge, cred[len("munge:"):], method, now)
            return self.caller(uid, gid)
        if self.auth_type == "none":
            return self._claimed(metadata)
        if cred:
            raise auth.AuthError("unknown credential type")
        if self.auth_type == "munge":
            raise auth.AuthError("this cluster requires a MUNGE credential on every call "
                                 "(auth_type = \"munge\" in the client's gsched.toml; is munged "
                                 "running?)")
        raise auth.AuthError("this controller only accepts calls from its own host "
                             "(auth_type = \"local\"): no credential; use the controller's "
                             "socket or auth_type = \"munge\"")

    def verify_munge(self, cred: str, method: str, now: float) -> tuple[int, int]:
        """Check a MUNGE credential for ``method`` (blocking; runs in the munge thread)."""
        from gsched.common.munge import EMUNGE_CRED_REPLAYED, MungeError

        try:
            dec = self._munge.decode(cred)
        except MungeError as exc:
            if exc.errno == EMUNGE_CRED_REPLAYED:
                raise auth.AuthError("replayed MUNGE credential") from None
            raise auth.AuthError(f"invalid MUNGE credential: {exc.message}") from None
        bound, nonce, when = auth.parse_munge_payload(dec.payload)
        if bound != method:
            raise auth.AuthError(f"MUNGE credential was made for {bound}, not {method}")
        age = now - min(when, dec.encode_time)
        if age > self.ttl:
            raise auth.AuthError(f"expired MUNGE credential ({age:.0f}s old, "
                                 f"credential_ttl is {self.ttl:.0f}s)")
        # the nonce is sealed in the credential: one entry per credential, kept small
        if not self._replays.use(f"{dec.uid}:{nonce}", max(when, dec.encode_time) + self.ttl + 60,
                                 now):
            raise auth.AuthError("replayed MUNGE credential")
        return dec.uid, dec.gid

    def _claimed(self, md: dict[str, str]) -> Caller:
        try:
            uid = int(md.get("x-gsched-uid", "-1"))
            gid = int(md.get("x-gsched-gid", "-1") or -1)
        except ValueError:
            uid = gid = -1
        if uid < 0:
            raise auth.AuthError("missing caller identity", "INVALID_ARGUMENT")
        user = str(md.get("x-gsched-user") or uid)
        if gid < 0:
            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = uid
        role = self.role(uid, gid, user)
        return Caller(uid=uid, user=user, admin=role != "user", gid=gid, role=role)


class _Members:
    """A configured list of users, uids and %groups."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.users = {e for e in entries if not e.startswith("%") and not e.isdigit()}
        self.uids = {int(e) for e in entries if e.isdigit()}
        self.groups = {e[1:] for e in entries if e.startswith("%")}

    def has(self, uid: int, user: str, groups: set[str]) -> bool:
        return uid in self.uids or user in self.users or bool(self.groups & groups)


def user_groups(user: str, gid: int) -> set[str]:
    """Names of every group ``user`` is in (``gid`` included), from the user database."""
    try:
        gids = os.getgrouplist(user, gid)
    except (OSError, TypeError):
        gids = [gid]
    names = set()
    for g in gids:
        try:
            names.add(grp.getgrgid(g).gr_name)
        except KeyError:
            names.add(str(g))
    return names


def authenticated(authenticator: Authenticator, handler: Any, method: str) -> Any:
    """``handler`` (a JobService/AdminService method) behind the credential check.

    The call's caller is put in :data:`CALLER` for the handler; a call without a
    valid credential ends ``UNAUTHENTICATED`` before the handler runs.
    """
    async def who(context: Any) -> Caller | None:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        try:
            return await authenticator.authenticate(method, md)
        except auth.AuthError as exc:
            logger.warning("refused %s from %s: %s", method, context.peer(), exc.message)
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
        return None

    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            caller = await who(context)
            token = CALLER.set(caller)
            try:
                return await inner(request, context)
            finally:
                CALLER.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> Any:
            caller = await who(context)
            CALLER.set(caller)  # this task serves only this call
            agen = inner_stream(request, context)
            try:
                async for item in agen:
                    yield item
            finally:
                # a cancelled call (grun interrupted) must run the handler's
                # cleanup now, not when the generator is collected
                await agen.aclose()

        return grpc.unary_stream_rpc_method_handler(
            stream, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    return handler
