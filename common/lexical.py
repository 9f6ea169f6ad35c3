"""Small hand-written matchers for the CLI's hot path.

Importing ``re`` costs a command about 6 ms on these machines (it pulls in ``enum``
and ``functools``), a quarter of a whole ``gsub``; compiling its patterns costs more.
The number and duration syntaxes gsub meets on every call are simple enough to check
by hand. Only ASCII digits count, as ``[0-9]`` does.
"""

from __future__ import annotations

__all__ = ["digits", "leading_int", "split_ints"]

_SPACE = " \t\n\r\v\f"


def digits(text: str) -> bool:
    """``[0-9]+\\Z``: one or more ASCII digits and nothing else."""
    return text.isascii() and text.isdigit()


def leading_int(text: str) -> tuple[str, str] | None:
    """``[ \\t\\n\\r\\v\\f]*([+-]?[0-9]+)``: the signed number at the start, and the rest.

    None when ``text`` does not start (after whitespace) with an optional sign and a digit.
    """
    i = len(text) - len(text.lstrip(_SPACE))
    start = i
    if i < len(text) and text[i] in "+-":
        i += 1
    j = i
    while j < len(text) and "0" <= text[j] <= "9":
        j += 1
    if j == i:
        return None
    return text[start:j], text[j:]


def split_ints(text: str, sep: str, most: int) -> list[int] | None:
    """``[0-9]+(?:SEP[0-9]+){0,most-1}\\Z`` -> the numbers, or None."""
    parts = text.split(sep)
    if len(parts) > most or not all(digits(p) for p in parts):
        return None
    return [int(p) for p in parts]
