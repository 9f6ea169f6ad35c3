"""--begin / StartTime= time specifications (common/begin.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from gsched.common.begin import BeginError, parse_begin

# 2026-03-10 14:30:00 local time
NOW = dt.datetime(2026, 3, 10, 14, 30, 0).timestamp()


def at(*args: int) -> float:
    return dt.datetime(*args).timestamp()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now+60", NOW + 60),
        ("now+1hour", NOW + 3600),
        ("now+2hours", NOW + 7200),
        ("now+10minutes", NOW + 600),
        ("now+3days", NOW + 3 * 86400),
        ("now+1week", NOW + 7 * 86400),
        ("16:00", at(2026, 3, 10, 16, 0)),
        ("16:00:30", at(2026, 3, 10, 16, 0, 30)),
        ("10:00", at(2026, 3, 11, 10, 0)),  # passed today: tomorrow
        ("4:00pm", at(2026, 3, 10, 16, 0)),
        ("midnight", at(2026, 3, 11, 0, 0)),
        ("noon", at(2026, 3, 11, 12, 0)),
        ("teatime", at(2026, 3, 10, 16, 0)),
        ("today", at(2026, 3, 10, 0, 0)),
        ("tomorrow", at(2026, 3, 11, 0, 0)),
        ("2026-04-01", at(2026, 4, 1, 0, 0)),
        ("2026-04-01T08:15", at(2026, 4, 1, 8, 15)),
        ("2026-04-01T08:15:09", at(2026, 4, 1, 8, 15, 9)),
        ("0401", at(2026, 4, 1)),
        ("04/01/27", at(2027, 4, 1)),
        ("04.01-09:30", at(2026, 4, 1, 9, 30)),
    ],
)
def test_forms(text: str, expected: float) -> None:
    assert parse_begin(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "soon", "now+", "now+5fortnights", "25:00",
                                  "2026-13-01", "13:00pm", "2026-02-30"])
def test_rejects(text: str) -> None:
    with pytest.raises(BeginError):
        parse_begin(text, NOW)
