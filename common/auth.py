"""User credentials on gRPC calls: what the CLI attaches and the controller checks.

A caller's identity is never a name it claims. Every gRPC call from a user carries
one credential in the metadata key ``x-gsched-cred``, bound to that one call (the
full gRPC method name and a random nonce are inside it) and valid once:

``local:<uid>:<gid>:<expires>:<nonce>:<mac>``
    Issued by the controller itself over its Unix socket, where the kernel
    (``SO_PEERCRED``) tells it the caller's uid and gid; the MAC is
    HMAC-SHA256 under a secret the controller draws at start and never writes
    anywhere. Only processes on the controller's host can reach the socket, so
    this is how ``auth_type = "local"`` proves identity to the gRPC port (``grun``
    streams, ``GSCHED_TRANSPORT=grpc``). Valid for :data:`LOCAL_TTL` seconds.

``munge:<MUNGE credential>``
    From the caller's local ``munged`` (``auth_type = "munge"``), with the payload
    ``gsched/1\\n<method>\\n<nonce>\\n<unix time>``; any host sharing the MUNGE key
    can make one, and the controller takes the uid/gid MUNGE vouches for.

Calls on the Unix socket itself carry no credential: the kernel identifies them.
With ``auth_type = "none"`` (tests only) the claimed ``x-gsched-uid``/``-gid``/``-user``
are believed.

This module is imported by the CLI, so it stays light (no grpc).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

__all__ = [
    "CRED_KEY",
    "ISSUE_METHOD",
    "LOCAL_TTL",
    "AuthError",
    "LocalTokens",
    "ReplayCache",
    "full_method",
    "munge_payload",
    "parse_munge_payload",
]

CRED_KEY = "x-gsched-cred"
ISSUE_METHOD = "IssueCredential"  # local-socket method: payload = gRPC method, reply = token
LOCAL_TTL = 60
MUNGE_MAGIC = b"gsched/1"
MAX_METHOD = 128


class AuthError(Exception):
    """A credential was missing or not valid; ``code`` is the gRPC status name."""

    def __init__(self, message: str, code: str = "UNAUTHENTICATED") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def full_method(method: str) -> str:
    """'ListJobs' -> '/gsched.v1.JobService/ListJobs' (what the server sees)."""
    service = "AdminService" if method == "UpdateNode" else "JobService"
    return f"/gsched.v1.{service}/{method}"


class ReplayCache:
    """Credentials already used, each kept until it would have expired anyway."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._next_purge = 0.0

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, key: str, expires: float, now: float) -> bool:
        """Record ``key``; False when it was used before (a replay)."""
        if now >= self._next_purge:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
            self._next_purge = now + 5.0
        if key in self._seen:
            return False
        self._seen[key] = expires
        return True


class LocalTokens:
    """Issue and verify ``local:`` credentials (controller side)."""

    def __init__(self, secret: bytes | None = None, ttl: float = LOCAL_TTL) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.ttl = ttl
        self._replays = ReplayCache()

    def _mac(self, uid: int, gid: int, expires: int, nonce: str, method: str) -> str:
        msg = f"{uid}:{gid}:{expires}:{nonce}:{method}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def issue(self, uid: int, gid: int, method: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if not method or len(method) > MAX_METHOD:
            raise AuthError("invalid method name", "INVALID_ARGUMENT")
        expires = int(now + self.ttl) + 1
        nonce = secrets.token_hex(12)
        return f"local:{uid}:{gid}:{expires}:{nonce}:{self._mac(uid, gid, expires, nonce, method)}"

    def verify(self, token: str, method: str, now: float | None = None) -> tuple[int, int]:
        """(uid, gid) of a valid token for ``method``; raises AuthError."""
        now = time.time() if now is None else now
        parts = token.split(":")
        if len(parts) != 6 or parts[0] != "local":
            raise AuthError("malformed local credential")
        try:
            uid, gid, expires = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError as exc:
            raise AuthError("malformed local credential") from exc
        nonce, mac = parts[4], parts[5]
        if not hmac.compare_digest(mac, self._mac(uid, gid, expires, nonce, method)):
            raise AuthError("invalid local credential (not issued by this controller for this "
                            "call; it may have restarted)")
        if now > expires:
            raise AuthError("expired local credential")
        if not self._replays.use(nonce, expires, now):
            raise AuthError("replayed local credential")
        return uid, gid


def munge_payload(method: str, now: float | None = None) -> bytes:
    """What the CLI seals in a MUNGE credential for one call."""
    now = time.time() if now is None else now
    return b"\n".join((MUNGE_MAGIC, method.encode(), secrets.token_hex(12).encode(),
                       str(int(now)).encode()))


def parse_munge_payload(payload: bytes) -> tuple[str, str, int]:
    """(method, nonce, time) from a payload; raises AuthError when it is not ours."""
    parts = payload.split(b"\n")
    if len(parts) != 4 or parts[0] != MUNGE_MAGIC:
        raise AuthError("MUNGE credential was not made by gsched")
    try:
        return parts[1].decode(), parts[2].decode(), int(parts[3])
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuthError("malformed gsched MUNGE payload") from exc


def claimed_identity() -> list[tuple[str, str]]:
    """The identity a client *claims* (believed only with ``auth_type = "none"``)."""
    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return [("x-gsched-uid", str(uid)), ("x-gsched-gid", str(os.getgid())),
            ("x-gsched-user", user)]
