"""SLURM's time specifications for ``--begin`` and ``scontrol update StartTime=``.

Forms (``man sbatch``, ``--begin``), in local time:

* ``HH:MM[:SS]`` optionally with ``AM``/``PM``: the next time the clock shows it
  (today, or tomorrow when that time of today has passed);
* ``YYYY-MM-DD[THH:MM[:SS]]``;
* ``MMDD[YY]``, ``MM/DD[/YY]``, ``MM.DD[.YY]``, optionally followed by ``-HH:MM[:SS]``;
* ``midnight``, ``noon``, ``elevenses`` (11:00), ``fika`` (15:00), ``teatime``
  (16:00): their next occurrence;
* ``today``, ``tomorrow`` (midnight at the start of that day);
* ``now[+COUNT[seconds|minutes|hours|days|weeks]]`` (seconds by default; unit
  abbreviations as SLURM takes them: ``s``, ``sec``, ``min``, ``m``, ``h``, ...).

:func:`parse_begin` returns unix seconds.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["BeginError", "parse_begin"]

_UNITS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_NAMED = {"midnight": 0, "noon": 12, "elevenses": 11, "fika": 15, "teatime": 16}
_HMS = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_NOW_RE = re.compile(r"now(?:\+(\d+)([a-z]*))?\Z")
_CLOCK_RE = re.compile(_HMS + r"\s*([ap]m)?\Z")
_ISO_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:t" + _HMS + r")?\Z")
_MDY_RE = re.compile(r"(\d{2})([/.]?)(\d{2})(?:\2(\d{2}))?(?:-" + _HMS + r")?\Z")


class BeginError(ValueError):
    """Not a time specification SLURM accepts."""


def _local(now: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(now).replace(microsecond=0)


def _hms(h: str, m: str, s: str | None) -> tuple[int, int, int]:
    hour, minute, second = int(h), int(m), int(s or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise BeginError("invalid time")
    return hour, minute, second


def _next_clock(now: float, hour: int, minute: int, second: int) -> float:
    base = _local(now)
    when = base.replace(hour=hour, minute=minute, second=second)
    if when.timestamp() < now:
        when += _dt.timedelta(days=1)
    return when.timestamp()


def parse_begin(text: str, now: float) -> float:
    """Unix seconds of ``text`` relative to ``now``.

    Raises:
        BeginError: the text is not a time SLURM accepts.
    """
    value = text.strip().lower()
    if not value:
        raise BeginError("empty time")
    m = _NOW_RE.match(value)
    if m:
        if m.group(1) is None:
            return float(int(now))
        unit = m.group(2)
        if unit not in _UNITS:
            raise BeginError(f"invalid unit {unit!r}")
        return float(int(now) + int(m.group(1)) * _UNITS[unit])
    if value in _NAMED:
        return _next_clock(now, _NAMED[value], 0, 0)
    if value in ("today", "tomorrow"):
        day = _local(now).replace(hour=0, minute=0, second=0)
        if value == "tomorrow":
            day += _dt.timedelta(days=1)
        return day.timestamp()
    m = _CLOCK_RE.match(value)
    if m:
        hour, minute, second = _hms(m.group(1), m.group(2), m.group(3))
        if m.group(4):
            if not 1 <= hour <= 12:
                raise BeginError("invalid hour")
            hour = hour % 12 + (12 if m.group(4) == "pm" else 0)
        return _next_clock(now, hour, minute, second)
    m = _ISO_RE.match(value)
    if m:
        hour, minute, second = (
            _hms(m.group(4), m.group(5), m.group(6)) if m.group(4) else (0, 0, 0)
        )
        try:
            when = _dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)),
                                hour, minute, second)
        except ValueError as exc:
            raise BeginError(str(exc)) from exc
        return when.timestamp()
    m = _MDY_RE.match(value)
    if m:
        base = _local(now)
        year = 2000 + int(m.group(4)) if m.group(4) else base.year
        hour, minute, second = (
            _hms(m.group(5), m.group(6), m.group(7)) if m.group(5) else (0, 0, 0)
        )
        try:
            when = _dt.datetime(year, int(m.group(1)), int(m.group(3)), hour, minute, second)
        except ValueError as exc:
            raise BeginError(str(exc)) from exc
        return when.timestamp()
    raise BeginError(f"invalid time specification {text!r}")
