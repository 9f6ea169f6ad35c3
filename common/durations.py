"""SLURM time and memory values: parsing user input and formatting for display.

Time limits are carried in seconds everywhere in gsched; ``-1`` (:data:`UNLIMITED`)
means no limit. SLURM itself keeps limits in whole minutes and rounds ``M:S`` input
up; gsched keeps second precision (a ``--time=0:30`` job gets 30 seconds, not 60).

Exception tree::

    ValueError
     +-- DurationError   a malformed time/duration string
     +-- SizeError       a malformed memory size string
"""

from __future__ import annotations

from gsched.common.lexical import digits, split_ints

__all__ = [
    "UNLIMITED",
    "DurationError",
    "SizeError",
    "format_elapsed",
    "format_hms",
    "format_limit",
    "format_memory_mb",
    "parse_memory_mb",
    "parse_time_limit",
]

UNLIMITED = -1

# The forms SLURM's time_str2secs accepts (see _is_valid_timespec): digits only,
# at most one dash (days) and two colons, nothing empty.
_SIZE_FACTOR = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024}


class DurationError(ValueError):
    """A time specification SLURM would refuse."""


class SizeError(ValueError):
    """A memory size SLURM would refuse."""


def parse_time_limit(text: str) -> int:
    """Parse a ``--time`` value into seconds.

    Accepted forms (as ``man sbatch``): ``M``, ``M:S``, ``H:M:S``, ``D-H``,
    ``D-H:M``, ``D-H:M:S``; ``UNLIMITED``, ``INFINITE`` (any case) and ``-1``
    mean no limit. Fields are not range-checked (``90`` and ``1:90:00`` are fine),
    as in SLURM. ``"0"`` returns 0; callers decide what zero means (sbatch treats
    ``--time=0`` as no limit).

    Args:
        text: the value as the user typed it.

    Returns:
        Seconds, or :data:`UNLIMITED` (-1).

    Raises:
        DurationError: empty, negative, letters, stray whitespace, or too many fields
            (``1:2:3:4``).
    """
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return UNLIMITED
    day, dash, clock = text.partition("-")
    if dash:  # D-H[:M[:S]]
        hms = split_ints(clock, ":", 3)
        if digits(day) and hms is not None:
            hours, minutes, seconds = (*hms, 0, 0)[:3]
            return ((int(day) * 24 + hours) * 60 + minutes) * 60 + seconds
    else:  # M, M:S, H:M:S
        fields = split_ints(text, ":", 3)
        if fields is not None:
            if len(fields) == 1:
                return fields[0] * 60
            if len(fields) == 2:
                return fields[0] * 60 + fields[1]
            return (fields[0] * 60 + fields[1]) * 60 + fields[2]
    raise DurationError(f"invalid time specification {text!r}")


def _split(seconds: int) -> tuple[int, int, int, int]:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def format_elapsed(seconds: int | float) -> str:
    """Format seconds like squeue's TIME column.

    Examples: ``0:00``, ``5:07``, ``1:05:07``, ``2-01:05:07``; ``INVALID`` when
    negative (SLURM's output for a clock that went backwards).
    """
    total = int(seconds)
    if total < 0:
        return "INVALID"
    days, hours, minutes, secs = _split(total)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_limit(seconds: int) -> str:
    """Format a time limit like squeue's TIME_LIMIT column.

    Examples: ``30:00``, ``1:00:00``, ``1-00:00:00``; ``UNLIMITED`` for -1 and
    ``INVALID`` for other negative values.
    """
    if seconds == UNLIMITED:
        return "UNLIMITED"
    return format_elapsed(seconds)


def format_hms(seconds: int | float) -> str:
    """Format seconds like scontrol (``RunTime=``, ``TimeLimit=``).

    Examples: ``00:30:00``, ``2-00:00:00``; ``UNLIMITED`` for -1, ``INVALID`` for
    other negative values.
    """
    total = int(seconds)
    if total == UNLIMITED:
        return "UNLIMITED"
    if total < 0:
        return "INVALID"
    days, hours, minutes, secs = _split(total)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_memory_mb(text: str) -> int:
    """Parse a ``--mem``/``--mem-per-cpu`` value into megabytes.

    A number with an optional unit ``K``, ``M``, ``G`` or ``T`` (any case, optionally
    followed by ``B``: ``16GB``); no unit means megabytes. Fractions are accepted
    (``1.5G``), a superset of SLURM; the result is rounded up to a whole megabyte.

    Raises:
        SizeError: empty, negative, or an unknown unit.
    """
    # ([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGT]B?)?, any case
    number, unit = text, ""
    if number[-1:] in ("B", "b") and number[-2:-1].lower() in ("k", "m", "g", "t"):
        number = number[:-1]
    if number[-1:].lower() in ("k", "m", "g", "t"):
        number, unit = number[:-1], number[-1].lower()
    whole, dot, frac = number.partition(".")
    if not (
        (digits(whole) and (frac == "" or digits(frac)))
        or (whole == "" and dot and digits(frac))
    ):
        raise SizeError(f"invalid memory size {text!r}")
    mb = float(number) * _SIZE_FACTOR[unit]
    whole_mb = int(mb)
    return whole_mb + (whole_mb < mb)  # ceil without importing math (gsub's path)


def format_memory_mb(mb: int) -> str:
    """Format megabytes the way SLURM shows memory in TRES strings.

    Divides by 1024 while it can and keeps two decimals when the result is not
    whole: ``512M``, ``64000`` -> ``62.50G``, ``256000`` -> ``250G``, ``0`` -> ``0``.
    """
    if mb <= 0:
        return str(mb) if mb < 0 else "0"
    value = float(mb)
    units = "MGTPE"
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    if value == int(value):
        return f"{int(value)}{units[index]}"
    return f"{value:.2f}{units[index]}"
