from __future__ import annotations

import pytest

from gsched.common.durations import (
    UNLIMITED,
    DurationError,
    SizeError,
    format_elapsed,
    format_hms,
    format_limit,
    format_memory_mb,
    parse_memory_mb,
    parse_time_limit,
)

# ---------------------------------------------------------------- parse_time_limit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30", 1800),  # M
        ("90", 5400),
        ("5:07", 307),  # M:S
        ("0:30", 30),  # kept to the second (SLURM would round up to a minute)
        ("90:00", 5400),
        ("1:05:07", 3907),  # H:M:S
        ("00:10:00", 600),
        ("1:90:00", 9000),  # fields are not range-checked, as in SLURM
        ("2-0", 172800),  # D-H
        ("2-1", 176400),
        ("1-2:30", 95400),  # D-H:M
        ("1-02:03:04", 93784),  # D-H:M:S
        ("UNLIMITED", UNLIMITED),
        ("unlimited", UNLIMITED),
        ("INFINITE", UNLIMITED),
        ("Infinite", UNLIMITED),
        ("-1", UNLIMITED),
    ],
)
def test_parse_time_limit(text: str, seconds: int) -> None:
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "-5",
        "-2",
        "1:2:3:4",
        "1-2:3:4:5",
        "1-",
        "-1:00",
        "1:",
        ":30",
        "1h",
        "10m",
        " 10",
        "10 ",
        "1.5",
        "1--2",
        "1-2-3",
        "\u0661\u0660",  # non-ASCII digits
    ],
)
def test_parse_time_limit_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_time_limit(text)


def test_duration_error_is_value_error() -> None:
    assert issubclass(DurationError, ValueError)
    assert issubclass(SizeError, ValueError)


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (4, "0:04"),
        (59, "0:59"),
        (307, "5:07"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (3907, "1:05:07"),
        (86399, "23:59:59"),
        (86400, "1-00:00:00"),
        (176707, "2-01:05:07"),
        (4.9, "0:04"),
        (-5, "INVALID"),
    ],
)
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1800, "30:00"),  # squeue -l TIME_LIMIT for --time=00:30:00
        (3600, "1:00:00"),
        (86400, "1-00:00:00"),
        (90, "1:30"),
        (0, "0:00"),
        (UNLIMITED, "UNLIMITED"),
        (-7, "INVALID"),
    ],
)
def test_format_limit(seconds: int, text: str) -> None:
    assert format_limit(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00"),
        (4, "00:00:04"),  # RunTime=00:00:04
        (1800, "00:30:00"),  # TimeLimit=00:30:00
        (3907, "01:05:07"),
        (86399, "23:59:59"),
        (172800, "2-00:00:00"),
        (176707, "2-01:05:07"),
        (12.7, "00:00:12"),
        (UNLIMITED, "UNLIMITED"),
        (-3, "INVALID"),
    ],
)
def test_format_hms(seconds: float, text: str) -> None:
    assert format_hms(seconds) == text


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("0", 0),
        ("100", 100),
        ("100M", 100),
        ("100m", 100),
        ("4G", 4096),
        ("4g", 4096),
        ("16GB", 16384),
        ("512MB", 512),
        ("1T", 1048576),
        ("1t", 1048576),
        ("1024K", 1),
        ("1025k", 2),  # kilobytes round up
        ("1K", 1),
        ("1.5G", 1536),
        ("0.5M", 1),
        (".5G", 512),
    ],
)
def test_parse_memory_mb(text: str, mb: int) -> None:
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("text", ["", "-1", "-1G", "G", "4X", "4GiB", "4 G", " 4", "abc", "1.2.3"])
def test_parse_memory_mb_rejects(text: str) -> None:
    with pytest.raises(SizeError):
        parse_memory_mb(text)


@pytest.mark.parametrize(
    ("mb", "text"),
    [
        (0, "0"),
        (512, "512M"),
        (1023, "1023M"),
        (1024, "1G"),
        (64000, "62.50G"),
        (256000, "250G"),
        (1536, "1.50G"),
        (1048576, "1T"),
    ],
)
def test_format_memory_mb(mb: int, text: str) -> None:
    assert format_memory_mb(mb) == text
