"""Exit code lists such as ``1,3,10-12`` (``--requeue-exit``, ``requeue_exit``)."""

from __future__ import annotations

__all__ = ["parse_exit_codes"]


def parse_exit_codes(text: str) -> tuple[int, ...]:
    """``"1,3,10-12"`` -> ``(1, 3, 10, 11, 12)``; ``""`` -> ``()``.

    Raises:
        ValueError: not a comma list of codes and ranges within 0-255.
    """
    codes: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            if text.strip():
                raise ValueError(f"empty item in exit code list {text!r}")
            continue
        lo_s, sep, hi_s = part.partition("-")
        if not lo_s.isdigit() or (sep and not hi_s.isdigit()):
            raise ValueError(f"invalid exit code {part!r}")
        lo, hi = int(lo_s), int(hi_s) if sep else int(lo_s)
        if not 0 <= lo <= hi <= 255:
            raise ValueError(f"exit codes lie in 0-255: {part!r}")
        codes.update(range(lo, hi + 1))
    return tuple(sorted(codes))
