"""Job step credentials: who may start steps (grun) inside a running job.

Every attempt of a job gets its own token, ``HMAC-SHA256(key, "attempt|<job>|<attempt>")``,
where ``key`` is a random secret the controller keeps in its database (meta table,
``step_token_key``; never the cluster key). The agent puts the token into the job's
environment as ``GSCHED_STEP_TOKEN``, so the batch script and everything it starts
(steps included: they inherit grun's environment) can prove they are inside that
attempt of the job. A requeued job's next attempt gets a new token, so processes left
over from an old attempt cannot start steps in the new one.

An interactive allocation (grun outside a job) has no batch script to inherit from:
the submitter gets ``HMAC-SHA256(key, "allocation|<job>")`` in the Submit reply when
it asks for an allocation. It is valid for every attempt of that job and is never
handed out for any other job.

Pure: no I/O. The key is loaded (or created) by the shell (controller/runtime.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["ENV_NAME", "KEY_NAME", "StepTokens", "new_key", "not_inside"]

KEY_NAME = "step_token_key"  # the meta table's row holding the key (hex)
ENV_NAME = "GSCHED_STEP_TOKEN"


def new_key() -> str:
    """A fresh random key, as stored (64 hex digits: 256 bits)."""
    return secrets.token_hex(32)


def not_inside(job_id: int) -> str:
    """The refusal for a step call that does not come from inside the job."""
    return (f"not inside job {job_id}: run grun from the job's batch script "
            "or an allocation")


class StepTokens:
    """Derives and checks step tokens with one controller-held key."""

    def __init__(self, key_hex: str) -> None:
        key = bytes.fromhex(key_hex)
        if len(key) < 16:
            raise ValueError("step token key is too short")
        self._key = key

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def for_attempt(self, job_id: int, attempt: int) -> str:
        """The token of one attempt of a job (its batch script's GSCHED_STEP_TOKEN)."""
        return self._mac(f"attempt|{job_id}|{attempt}")

    def for_allocation(self, job_id: int) -> str:
        """The token grun gets for an allocation it submitted itself."""
        return self._mac(f"allocation|{job_id}")

    def check(self, job_id: int, attempt: int, token: str) -> bool:
        """Whether ``token`` lets its holder run steps in this attempt of the job.

        Both candidates are always compared, in constant time, so the answer's timing
        says nothing about which (or how much) of a token was right.
        """
        given = token.encode("ascii", "replace")
        ok_attempt = hmac.compare_digest(given, self.for_attempt(job_id, attempt).encode())
        ok_alloc = hmac.compare_digest(given, self.for_allocation(job_id).encode())
        return bool(token) and (ok_attempt | ok_alloc)
