"""Exit code lists for --requeue-exit and requeue_exit."""

from __future__ import annotations

import pytest

from gsched.common.exitcodes import parse_exit_codes


@pytest.mark.parametrize(
    ("text", "codes"),
    [("", ()), ("3", (3,)), ("1,3,10-12", (1, 3, 10, 11, 12)), ("5,1-2,5", (1, 2, 5)),
     (" 0 , 255 ", (0, 255))],
)
def test_parse(text: str, codes: tuple[int, ...]) -> None:
    assert parse_exit_codes(text) == codes


@pytest.mark.parametrize("text", ["x", "1,", ",1", "3-1", "256", "-1", "1-", "1--2", "0x10"])
def test_reject(text: str) -> None:
    with pytest.raises(ValueError):
        parse_exit_codes(text)
