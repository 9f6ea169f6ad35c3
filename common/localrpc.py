"""The local fast path: JobService/AdminService calls over the controller's Unix socket.

A CLI on the controller's host does not need gRPC: importing grpc alone costs a
Python command ~35 ms (it always loads asyncio and ssl), more than a whole
``sbatch`` takes. The controller therefore also serves the same methods, with the
same request and reply messages and the same servicer code, on a Unix socket
(``<state_dir>/controller.sock`` by default). The kernel tells the controller the
caller's uid and gid (``SO_PEERCRED``), so on this path identity is verified, not
claimed. Hosts without the socket use gRPC.

Framing (all integers big-endian)::

    request:  u32 length | u8 method-name length | method name | serialized request
    reply:    u32 length | u8 status | body
              status 0: body is the serialized reply
              else:     status is the gRPC status code number; body is the UTF-8 message
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False  # not importing typing or socket keeps gsub's start fast
if TYPE_CHECKING:
    from socket import socket as Socket
    from typing import Any

__all__ = [
    "ADMIN_METHODS",
    "METHODS",
    "STATUS_NAMES",
    "LocalChannel",
    "call_raw",
    "connect_local",
    "decode_request",
    "encode_reply",
]

# method -> (request message, reply message) in gsched_pb2
METHODS: dict[str, tuple[str, str]] = {
    "Submit": ("SubmitRequest", "SubmitReply"),
    "ListJobs": ("ListJobsRequest", "ListJobsReply"),
    "Cancel": ("CancelRequest", "CancelReply"),
    "Hold": ("JobIdsRequest", "JobIdsReply"),
    "Release": ("JobIdsRequest", "JobIdsReply"),
    "Requeue": ("JobIdsRequest", "JobIdsReply"),
    "UpdateJob": ("UpdateJobRequest", "UpdateJobReply"),
    "History": ("HistoryRequest", "ListJobsReply"),
    "ListNodes": ("ListNodesRequest", "ListNodesReply"),
    "Ping": ("PingRequest", "PingReply"),
    "UpdateNode": ("UpdateNodeRequest", "UpdateNodeReply"),
    "SignalStep": ("SignalStepRequest", "SignalStepReply"),
    "StepInput": ("StepInputRequest", "StepInputReply"),
    "Priorities": ("PrioritiesRequest", "PrioritiesReply"),
    "Shares": ("SharesRequest", "SharesReply"),
    "GetPolicy": ("GetPolicyRequest", "PolicyReply"),
    "UpdatePolicy": ("UpdatePolicyRequest", "PolicyReply"),
}
ADMIN_METHODS = frozenset({"UpdateNode", "UpdatePolicy"})  # on AdminService

# gRPC status code numbers -> names (grpc.StatusCode without importing grpc)
STATUS_NAMES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
    13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}
MAX_FRAME = 256 * 1024 * 1024


class LocalError(Exception):
    """A call on the local socket failed; ``code`` is a gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_request(method: str, payload: bytes) -> bytes:
    name = method.encode()
    return (1 + len(name) + len(payload)).to_bytes(4, "big") + bytes([len(name)]) + name + payload


def decode_request(frame: bytes) -> tuple[str, bytes]:
    n = frame[0]
    return frame[1 : 1 + n].decode("ascii", "replace"), frame[1 + n :]


def encode_reply(status: int, body: bytes) -> bytes:
    return (1 + len(body)).to_bytes(4, "big") + bytes([status]) + body


def connect_local(path: str, timeout: float) -> Socket:
    """A connected socket to the controller's Unix socket (raises OSError)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _recv_exact(sock: Socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("controller closed the local socket")
        buf += chunk
    return bytes(buf)


def call_raw(sock: Socket, method: str, payload: bytes) -> bytes:
    """One call on the local socket: serialized request in, serialized reply out.

    Raises:
        LocalError: the controller answered with a non-zero status (``code`` is
            the gRPC status name, ``message`` its text).
        OSError: the socket failed (ConnectionError for a bad frame).
    """
    sock.sendall(encode_request(method, payload))
    length = int.from_bytes(_recv_exact(sock, 4), "big")
    if not 1 <= length <= MAX_FRAME:
        raise ConnectionError("bad frame from controller")
    frame = _recv_exact(sock, length)
    status, body = frame[0], frame[1:]
    if status:
        raise LocalError(STATUS_NAMES.get(status, "UNKNOWN"), body.decode("utf-8", "replace"))
    return body


class LocalChannel:
    """A blocking client for the controller's Unix socket (one call at a time)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.sock = connect_local(path, timeout)

    def call(self, method: str, request: Any, reply_type: Any) -> Any:
        return reply_type.FromString(call_raw(self.sock, method, request.SerializeToString()))

    def close(self) -> None:
        self.sock.close()
