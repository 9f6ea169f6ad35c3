"""NVIDIA XID errors gsched acts on, and what to do about each: the one table.

Actions follow NVIDIA's XID catalog:

- ``restart_app``: the GPU is usable again once the application restarts; the job
  using it is requeued and the GPU returns to service when the agent restarts.
- ``reset_gpu``: the GPU needs a reset before it is trusted again; the job is
  requeued and the node drained so an operator (or automation) can reset it.
- ``drain_node``: the host needs attention (e.g. the GPU fell off the bus); the job
  is requeued and the node drained.
"""

from __future__ import annotations

import re

__all__ = ["XIDS", "action_for", "allows_checkpoint", "failure_tag", "xid_of"]

XIDS: dict[int, tuple[str, str]] = {
    48: ("double-bit ECC error", "reset_gpu"),
    63: ("ECC page retirement or row remapping recording event", "restart_app"),
    64: ("ECC page retirement or row remapper recording failure", "reset_gpu"),
    74: ("NVLink error", "reset_gpu"),
    79: ("GPU has fallen off the bus", "drain_node"),
    92: ("high single-bit ECC error rate", "restart_app"),
    94: ("contained ECC error", "restart_app"),
    95: ("uncontained ECC error", "reset_gpu"),
    119: ("GSP RPC timeout", "reset_gpu"),
    120: ("GSP error", "reset_gpu"),
}

# Health reasons that are not XIDs but need the same handling.
_OTHER = {
    "lost": "drain_node",  # NVML_ERROR_GPU_IS_LOST, GPU missing
    "remap failure": "drain_node",  # row remapping failed: the memory cannot be repaired
    "remap pending": "reset_gpu",  # row remapping waits for a GPU reset
    "ecc": "reset_gpu",  # volatile uncorrectable ECC errors
    "retired": "reset_gpu",  # retired pages pending: waits for a GPU reset
    "temperature": "restart_app",
    "nvml": "drain_node",
}


def xid_of(reason: str) -> int | None:
    """The XID number named in a GPU health reason such as ``"xid 79"``."""
    m = re.search(r"\bxid[ _:]*(\d+)", reason, re.IGNORECASE)
    return int(m.group(1)) if m else None


def action_for(reason: str) -> str:
    """What a GPU health reason asks for: restart_app, reset_gpu or drain_node."""
    xid = xid_of(reason)
    if xid is not None:
        return XIDS.get(xid, ("unknown XID", "restart_app"))[1]
    low = reason.lower()
    for key, action in _OTHER.items():
        if key in low:
            return action
    return "reset_gpu"


# Faults after which the application may still save its state: the job gets its
# --signal and time to checkpoint before it is requeued (the others requeue at once).
_CHECKPOINT_OK_XIDS = frozenset({63, 92})  # a page retired / high *corrected* ECC rate
_CHECKPOINT_OK_OTHER = ("temperature",)


def allows_checkpoint(reason: str) -> bool:
    """Whether a job on a GPU with this fault may be warned and left to checkpoint."""
    xid = xid_of(reason)
    if xid is not None:
        return xid in _CHECKPOINT_OK_XIDS
    low = reason.lower()
    return any(key in low for key in _CHECKPOINT_OK_OTHER)


def failure_tag(reason: str) -> str:
    """A short tag for GSCHED_LAST_FAILURE: ``gpu_xid_79``, ``gpu_lost``, ``gpu_fault``."""
    xid = xid_of(reason)
    if xid is not None:
        return f"gpu_xid_{xid}"
    low = reason.lower()
    for key in ("lost", "ecc", "temperature", "retired", "remap"):
        if key in low:
            return f"gpu_{key}"
    return "gpu_fault"
