"""The CLI's connection to the controller: config lookup, identity, error mapping.

Every command does::

    from gsched.cli.client import connect, ClientError, fail
    client = connect("gqueue")                 # prints one line and exits 1 on failure
    reply = client.call("ListJobs", pb.ListJobsRequest(...))

``call`` turns gRPC errors into :class:`ClientError` (status code name kept), so no
command ever shows a traceback. Imports of grpc and the generated code happen here,
lazily, so commands that fail early stay fast.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not importing typing keeps the CLI's start fast
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["Client", "ClientError", "connect", "fail", "finish", "from_config",
           "identity_metadata"]

# One timeout for user RPCs; the controller answers in milliseconds when healthy.
RPC_TIMEOUT = float(os.environ.get("GSCHED_RPC_TIMEOUT", "30"))


class ClientError(Exception):
    """A failed call to the controller.

    Attributes:
        code: gRPC status code name (``NOT_FOUND``, ``INVALID_ARGUMENT``, ``UNAVAILABLE``...).
        message: one line, fit to print after ``prog: error:``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(prog: str, message: str, code: int = 1) -> NoReturn:
    """Print ``prog: error: message`` on stderr and exit."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    finish(code)


def finish(code: int = 0) -> NoReturn:
    """Flush and leave without the interpreter's slow teardown (see TESTING.md)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def identity_metadata() -> list[tuple[str, str]]:
    """The identity this process claims (believed only by ``auth_type = "none"``)."""
    from gsched.common.auth import claimed_identity

    return claimed_identity()


class Client:
    """A synchronous client for JobService/AdminService.

    Uses the controller's Unix socket when ``socket_path`` exists on this host
    (no grpc import, identity from the kernel), else gRPC to ``address`` with a
    credential on every call (see gsched.common.auth): ``auth_type`` "local" asks
    the controller's socket for one, "munge" asks munged, "none" only claims.
    With ``tls_ca`` the channel is TLS and the controller must prove itself.
    """

    def __init__(self, address: str, cluster_name: str = "gsched", socket_path: str = "",
                 *, auth_type: str = "local", munge_socket: str = "", tls_ca: str = "") -> None:
        self.address = address
        self.cluster_name = cluster_name
        self.socket_path = socket_path
        self.auth_type = auth_type
        self.munge_socket = munge_socket
        self.tls_ca = tls_ca
        self._munge: Any = None
        self._no_credential = ""  # why the last call went without a credential
        self._local: Any = None
        self._channel: Any = None
        if socket_path and os.environ.get("GSCHED_TRANSPORT") != "grpc":
            from gsched.common.localrpc import LocalChannel

            try:
                self._local = LocalChannel(socket_path, RPC_TIMEOUT)
            except OSError:
                self._local = None  # not on the controller's host, or it is down: gRPC

    def _grpc_stubs(self) -> None:
        # gRPC's C core logs handshake failures on stderr; we print one line instead
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        import grpc

        from gsched.protos import gsched_pb2_grpc as rpc

        self._grpc = grpc
        if self.tls_ca:
            from gsched.common.config import ConfigError
            from gsched.common.tls import channel_credentials

            try:
                creds = channel_credentials(self.tls_ca)
            except ConfigError as exc:
                raise ClientError("UNAVAILABLE", str(exc)) from None
            self._channel = grpc.secure_channel(self.address, creds)
        else:
            self._channel = grpc.insecure_channel(self.address)
        self._jobs = rpc.JobServiceStub(self._channel)
        self._admin = rpc.AdminServiceStub(self._channel)

    def metadata_for(self, method: str) -> list[tuple[str, str]]:
        """The credential for one gRPC call of ``method`` (used once; see common/auth).

        Raises:
            ClientError: UNAUTHENTICATED when this process cannot get a credential.
        """
        from gsched.common import auth

        full = auth.full_method(method)
        self._no_credential = ""
        if self.auth_type == "none":
            return auth.claimed_identity()
        if self.auth_type == "munge":
            from gsched.common import munge

            try:
                if self._munge is None:
                    self._munge = munge.open_munge(self.munge_socket)
                cred = self._munge.encode(auth.munge_payload(full))
            except (OSError, munge.MungeError) as exc:
                why = getattr(exc, "message", None) or str(exc)
                raise ClientError("UNAUTHENTICATED",
                                  f"cannot get a MUNGE credential ({why}); is munged running?"
                                  ) from None
            return [(auth.CRED_KEY, "munge:" + cred)]
        token = self._local_credential(full)
        return [(auth.CRED_KEY, token)] if token else []

    def _local_credential(self, full: str) -> str:
        """A socket-issued credential, or "" when the socket cannot be reached.

        Without one the call still goes out: if the controller is down the caller
        learns that ("unable to contact"); if it is up it refuses the call and
        :meth:`call` says why this host could not prove who is calling.
        """
        from gsched.common import auth
        from gsched.common.localrpc import LocalError, call_raw, connect_local

        where = self.socket_path or "(no socket configured)"
        try:
            sock = connect_local(self.socket_path, RPC_TIMEOUT) if self.socket_path else None
        except OSError:
            sock = None
        if sock is None:
            self._no_credential = (
                f"cannot prove who you are: auth_type is \"local\" and the controller's socket "
                f"{where} is not reachable from this host (use auth_type = \"munge\" on "
                f"multi-host clusters)")
            return ""
        try:
            return call_raw(sock, auth.ISSUE_METHOD, full.encode()).decode("ascii")
        except LocalError as exc:
            raise ClientError(exc.code, exc.message) from None
        except OSError:
            raise ClientError("UNAVAILABLE",
                              f"unable to contact the gsched controller at {self.address}"
                              ) from None
        finally:
            sock.close()

    def call(self, method: str, request: Any, timeout: float = RPC_TIMEOUT) -> Any:
        """Call ``method`` (a JobService or AdminService RPC name) and return the reply.

        Raises:
            ClientError: the controller refused the call or could not be reached.
        """
        if self._local is not None:
            return self._call_local(method, request)
        if self._channel is None:
            self._grpc_stubs()
        stub = self._admin if method in ("UpdateNode", "UpdatePolicy") else self._jobs
        fn = getattr(stub, method)
        metadata = self.metadata_for(method)
        try:
            return fn(request, timeout=timeout, metadata=metadata)
        except self._grpc.RpcError as exc:
            code = exc.code()
            name = code.name if code is not None else "UNKNOWN"
            if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                msg = f"unable to contact the gsched controller at {self.address}"
                raise ClientError(name, msg + self._tls_hint(exc.details() or "")) from None
            if name == "UNAUTHENTICATED" and self._no_credential:
                raise ClientError(name, self._no_credential) from None
            raise ClientError(name, exc.details() or name) from None

    def _tls_hint(self, details: str) -> str:
        """Why a connection failed when TLS is the likely reason ('' otherwise)."""
        if "handshake" in details.lower() or "SSL" in details:
            return (": TLS handshake failed (is tls_ca the CA that signed the controller's "
                    "certificate, and is its host in that certificate?)")
        if not self.tls_ca and "Socket closed" in details:
            return " (if the controller serves TLS, set tls_ca in [controller])"
        return ""

    def stream(self, method: str, request: Any) -> Any:
        """A server-streaming call (gRPC only); iterate the result, ``.cancel()`` to stop."""
        if self._channel is None:
            self._grpc_stubs()
        return getattr(self._jobs, method)(request, metadata=self.metadata_for(method))

    def rpc_error(self, exc: BaseException) -> ClientError | None:
        """The ClientError for a gRPC error raised while iterating a stream."""
        if self._channel is None or not isinstance(exc, self._grpc.RpcError):
            return None
        code = exc.code()
        name = code.name if code is not None else "UNKNOWN"
        if name == "UNAVAILABLE":
            return ClientError(name, f"unable to contact the gsched controller at {self.address}"
                               + self._tls_hint(exc.details() or ""))
        if name == "UNAUTHENTICATED" and self._no_credential:
            return ClientError(name, self._no_credential)
        return ClientError(name, exc.details() or name)

    def _call_local(self, method: str, request: Any) -> Any:
        from gsched.common.localrpc import METHODS, LocalError
        from gsched.protos import gsched_pb2 as pb

        try:
            return self._local.call(method, request, getattr(pb, METHODS[method][1]))
        except LocalError as exc:
            raise ClientError(exc.code, exc.message) from None
        except OSError:
            msg = f"unable to contact the gsched controller at {self.address}"
            raise ClientError("UNAVAILABLE", msg) from None

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self._channel is not None:
            self._channel.close()


def connect(prog: str) -> Client:
    """Load the config and return a client; on failure print one line and exit 1.

    What a client needs comes from :mod:`gsched.common.confcache` while the
    configuration file is unchanged (no TOML parsing, ~5 ms less per command).
    """
    if not os.environ.get("GSCHED_CONTROLLER"):
        from gsched.common import confcache

        facts = confcache.lookup(confcache.conf_path())
        if facts is not None and "auth_type" in facts:
            return Client(facts["address"], facts["cluster_name"], facts["socket"],
                          auth_type=facts["auth_type"], munge_socket=facts["munge_socket"],
                          tls_ca=facts["tls_ca"])
    from gsched.common import config

    try:
        cfg = config.load()
    except config.ConfigError as exc:
        fail(prog, str(exc))
    return from_config(cfg)


def from_config(cfg: Any) -> Client:
    """A Client for a loaded :class:`gsched.common.config.Config`."""
    c = cfg.controller
    return Client(c.address, cfg.cluster_name, cfg.socket_path, auth_type=c.auth_type,
                  munge_socket=c.munge_socket, tls_ca=c.tls_ca)
