"""The job's ``--signal=[{R|B}:]SIG[@SECONDS]`` option, parsed (controller and agent)."""

from __future__ import annotations

import signal as _signal
from typing import Any

__all__ = ["parse_signal_option"]


def parse_signal_option(value: str) -> dict[str, Any] | None:
    """``--signal=[{R|B}:]SIG[@SECONDS]`` -> {"signal", "before", "batch_only"}, or None.

    SLURM's default lead time is 60 seconds; ``B:`` signals only the batch shell.
    """
    if not value:
        return None
    flags, _, rest = value.rpartition(":") if ":" in value else ("", "", value)
    name, _, when = rest.partition("@")
    name = name.upper().removeprefix("SIG")
    try:
        signum = int(name) if name.isdigit() else int(getattr(_signal, f"SIG{name}"))
        before = int(when) if when else 60
    except (AttributeError, ValueError):
        return None
    return {"signal": signum, "before": before, "batch_only": "B" in flags.upper()}
