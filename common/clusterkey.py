"""The cluster secret that agents prove they hold when they register.

``gsched keygen`` writes 32 random bytes (hex) to ``<state_dir>/cluster.key``, mode
0600; every agent host needs a copy. The key itself never travels: an agent sends
``HMAC-SHA256(key, "<node>|<timestamp>")``, and the controller checks the MAC, that the
timestamp is within ``MAX_SKEW`` seconds of its own clock, and that the same proof is
not used twice (replays).

The other way round, the controller's welcome carries
``HMAC-SHA256(key, "controller|<node>|<the agent's proof>")``: bound to the agent's
fresh proof, so it cannot be replayed from an older session. An agent that holds a
key takes no order from a controller that cannot show it (an impostor at the
controller's address could otherwise start jobs as any user on the agent's host).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

__all__ = [
    "MAX_SKEW",
    "ReplayGuard",
    "controller_proof",
    "key_path",
    "make_proof",
    "read_key",
    "verify",
    "verify_controller",
    "write_key",
]

MAX_SKEW = 300.0


def key_path(state_dir: str, configured: str = "") -> str:
    return configured or os.path.join(state_dir, "cluster.key")


def write_key(path: str) -> None:
    """Create a new key file (0600). Refuses to overwrite an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def read_key(path: str) -> bytes | None:
    """The key, or None when the file does not exist."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except FileNotFoundError:
        return None
    return bytes.fromhex(text)


def make_proof(key: bytes, node: str, when: float) -> str:
    mac = hmac.new(key, f"{node}|{when:.6f}".encode(), hashlib.sha256).hexdigest()
    return f"{when:.6f}:{mac}"


def controller_proof(key: bytes, node: str, agent_proof: str) -> str:
    return hmac.new(key, f"controller|{node}|{agent_proof}".encode(), hashlib.sha256).hexdigest()


def verify_controller(key: bytes, node: str, agent_proof: str, proof: str) -> bool:
    """Whether the controller's welcome ``proof`` answers our hello's ``agent_proof``."""
    return bool(proof) and hmac.compare_digest(proof, controller_proof(key, node, agent_proof))


class ReplayGuard:
    """Remembers proofs seen within the skew window."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def check(self, proof: str, now: float) -> bool:
        for p, t in list(self.seen.items()):
            if now - t > 2 * MAX_SKEW:
                del self.seen[p]
        if proof in self.seen:
            return False
        self.seen[proof] = now
        return True


def verify(key: bytes, node: str, proof: str, now: float | None = None,
           guard: ReplayGuard | None = None) -> str:
    """"" when ``proof`` is valid for ``node``; else why not."""
    now = time.time() if now is None else now
    when_s, _, mac = proof.partition(":")
    try:
        when = float(when_s)
    except ValueError:
        return "malformed cluster key proof"
    expected = make_proof(key, node, when).partition(":")[2]
    if not mac or not hmac.compare_digest(mac, expected):
        return "wrong cluster key"
    if abs(now - when) > MAX_SKEW:
        return f"cluster key proof too old or from the future ({now - when:+.0f}s)"
    if guard is not None and not guard.check(proof, now):
        return "cluster key proof replayed"
    return ""
