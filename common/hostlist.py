"""SLURM hostlist expressions: ``node[01-03,7],gpu5`` <-> a list of host names.

:func:`expand` follows ``hostlist_create`` and :func:`compress` follows
``hostlist_push_host`` + ``hostlist_ranged_string`` from SLURM's ``hostlist.c``,
so ``scontrol show hostnames`` / ``scontrol show hostlist`` output can be matched
exactly:

* order is kept (``n3,n1,n2`` compresses to ``n[3,1-2]``, as SLURM prints it);
  pass ``sort=True`` for the ``hostlistsorted`` form (sorted, duplicates removed);
* zero padding is kept per number, and numbers of different padding that SLURM
  keeps in one bracket stay in one bracket (``n01,n1`` -> ``n[01,1]``);
* a name without a numeric suffix (``login``) is never bracketed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not importing typing keeps gsub's start fast
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import ModuleType

__all__ = ["MAX_HOSTS", "HostlistError", "compress", "count", "expand", "is_in"]

# SLURM refuses single ranges above 64K hosts; we also bound the whole expansion
# so a typo such as ``n[1-99999999]`` cannot eat the controller's memory.
MAX_RANGE = 64 * 1024
MAX_HOSTS = 1 << 20

_SEPARATORS = ", \t\n\r\v\f"
_RANGE = r"([0-9]+)(?:-([0-9]+))?\Z"
_SUFFIX = r"[0-9]+\Z"


def _re() -> ModuleType:
    """``re``, imported on first use: gsub imports this module for ``-w``/``-x`` but
    rarely needs it, and importing ``re`` costs a command ~6 ms."""
    import re

    return re


class HostlistError(ValueError):
    """A malformed hostlist expression (or host name given to :func:`compress`)."""


def expand(expr: str) -> list[str]:
    """Expand a hostlist expression into host names, in order, duplicates kept.

    Args:
        expr: e.g. ``"node[01-03,7],gpu5"`` or ``"r[1-2]n[1-2]"``. Commas and
            whitespace outside brackets separate hosts; empty items are skipped.

    Returns:
        The host names, e.g. ``["node01", "node02", "node03", "node7", "gpu5"]``.
        Several bracket groups expand as a product, the first group outermost.

    Raises:
        HostlistError: unbalanced or nested brackets, an empty or malformed range,
            a range whose end is below its start, or too many hosts.
    """
    hosts: list[str] = []
    for token in _split_top_level(expr):
        hosts.extend(_expand_token(token, expr))
        if len(hosts) > MAX_HOSTS:
            raise HostlistError(f"too many hosts in hostlist {expr!r}")
    return hosts


def count(expr: str) -> int:
    """How many hosts ``expr`` names (duplicates counted), without expanding it.

    Raises:
        HostlistError: ``expr`` is malformed (as :func:`expand` would say).
    """
    total = 0
    for token in _split_top_level(expr):
        parts = _re().split(r"\[([^\]]*)\]", token)
        n = 1
        for i in range(1, len(parts), 2):
            n *= _group_size(parts[i], expr)
        total += n
    return total


def _group_size(group: str, expr: str) -> int:
    if not group:
        raise HostlistError(f"empty brackets in hostlist {expr!r}")
    size = 0
    for item in group.split(","):
        match = _re().match(_RANGE, item)
        if not match:
            raise HostlistError(f"invalid range {item!r} in hostlist {expr!r}")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise HostlistError(f"invalid range {item!r} in hostlist {expr!r}")
        size += hi - lo + 1
    return size


def is_in(name: str, expr: str) -> bool:
    """Whether host ``name`` is one of the hosts of hostlist ``expr``.

    Raises:
        HostlistError: ``expr`` is malformed.
    """
    return name in expand(expr)


class _Range:
    """One ``prefix[lo-hi]`` run (SLURM's ``hostrange``)."""

    __slots__ = ("hi", "lo", "prefix", "single", "width")

    def __init__(self, prefix: str, lo: int, hi: int, width: int, single: bool) -> None:
        self.prefix = prefix
        self.lo = lo
        self.hi = hi
        self.width = width
        self.single = single

    def numstr(self) -> str:
        text = f"{self.lo:0{self.width}d}"
        if self.hi > self.lo:
            text += f"-{self.hi:0{self.width}d}"
        return text

    def count(self) -> int:
        return 1 if self.single else self.hi - self.lo + 1


def compress(names: Iterable[str], *, sort: bool = False) -> str:
    """Compress host names into SLURM's ranged form.

    Args:
        names: host names, e.g. ``["node1", "node2", "node3", "node5"]``.
        sort: sort by prefix then number and drop duplicates first (SLURM's
            ``hostlistsorted``); by default the given order is kept.

    Returns:
        e.g. ``"node[1-3,5]"``; a lone host stays bare (``"n1"``); groups with
        different prefixes are joined by commas. ``""`` for no names.

    Raises:
        HostlistError: a name is empty or contains brackets, commas or whitespace.
    """
    parsed = [_parse_name(name) for name in names]
    if sort:
        unique = {(r.prefix, r.single, r.lo, r.width): r for r in parsed}
        parsed = sorted(
            unique.values(), key=lambda r: (_natural_key(r.prefix), r.single, r.lo, r.width)
        )
    ranges: list[_Range] = []
    for rng in parsed:
        _push(ranges, rng)
    return _ranged_string(ranges)


def _split_top_level(expr: str) -> list[str]:
    tokens: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            if depth:
                raise HostlistError(f"nested brackets in hostlist {expr!r}")
            depth = 1
        elif ch == "]":
            if not depth:
                raise HostlistError(f"unbalanced ']' in hostlist {expr!r}")
            depth = 0
        elif ch in _SEPARATORS and not depth:
            tokens.append(expr[start:i])
            start = i + 1
    if depth:
        raise HostlistError(f"unbalanced '[' in hostlist {expr!r}")
    tokens.append(expr[start:])
    return [t for t in tokens if t]


def _expand_token(token: str, expr: str) -> list[str]:
    # Alternate literal text and bracket groups: lit0 [g0] lit1 [g1] ... litN
    parts = _re().split(r"\[([^\]]*)\]", token)
    results = [parts[0]]
    for i in range(1, len(parts), 2):
        numbers = _expand_group(parts[i], expr)
        literal = parts[i + 1]
        if len(results) * len(numbers) > MAX_HOSTS:
            raise HostlistError(f"too many hosts in hostlist {expr!r}")
        results = [head + num + literal for head in results for num in numbers]
    return results


def _expand_group(group: str, expr: str) -> list[str]:
    if not group:
        raise HostlistError(f"empty brackets in hostlist {expr!r}")
    numbers: list[str] = []
    for item in group.split(","):
        match = _re().match(_RANGE, item)
        if not match:
            raise HostlistError(f"invalid range {item!r} in hostlist {expr!r}")
        lo_text, hi_text = match.group(1), match.group(2)
        lo = int(lo_text)
        hi = int(hi_text) if hi_text is not None else lo
        if hi < lo:
            raise HostlistError(f"invalid range {item!r} in hostlist {expr!r}")
        if hi - lo + 1 > MAX_RANGE:
            raise HostlistError(f"too many hosts in range {item!r} of hostlist {expr!r}")
        width = len(lo_text)  # SLURM pads every number to the width of the low end
        if len(numbers) + hi - lo + 1 > MAX_HOSTS:  # many ranges in one bracket
            raise HostlistError(f"too many hosts in hostlist {expr!r}")
        numbers.extend(f"{n:0{width}d}" for n in range(lo, hi + 1))
    return numbers


def _parse_name(name: str) -> _Range:
    if not name or any(ch in name for ch in "[]" + _SEPARATORS):
        raise HostlistError(f"invalid host name {name!r}")
    match = _re().search(_SUFFIX, name)
    if not match:
        return _Range(name, 0, 0, 0, True)
    digits = match.group(0)
    num = int(digits)
    return _Range(name[: match.start()], num, num, len(digits), False)


def _zero_padded(num: int, width: int) -> int:
    return max(width - len(str(num)), 0)


def _width_combine(tail: _Range, new: _Range) -> bool:
    """SLURM's ``_width_equiv``: may ``new`` extend ``tail`` despite other padding?

    May adjust either width, exactly as SLURM does (``n9,n10`` -> ``n[9-10]``).
    """
    n, m = tail.lo, new.lo
    npad, nmpad = _zero_padded(n, tail.width), _zero_padded(n, new.width)
    mpad, mnpad = _zero_padded(m, new.width), _zero_padded(m, tail.width)
    if npad != nmpad and mpad != mnpad:
        return False
    if npad != nmpad:
        new.width = tail.width
        return True
    tail.width = new.width
    return True


def _push(ranges: list[_Range], rng: _Range) -> None:
    if ranges:
        tail = ranges[-1]
        if (
            not tail.single
            and not rng.single
            and tail.prefix == rng.prefix
            and tail.hi == rng.lo - 1
            and _width_combine(tail, rng)
        ):
            tail.hi = rng.hi
            return
    ranges.append(_Range(rng.prefix, rng.lo, rng.hi, rng.width, rng.single))


def _within(a: _Range, b: _Range) -> bool:
    """Whether ``a`` and ``b`` print inside one bracket (same prefix, both numbered)."""
    return a.prefix == b.prefix and not a.single and not b.single


def _ranged_string(ranges: list[_Range]) -> str:
    groups: list[str] = []
    i = 0
    while i < len(ranges):
        first = ranges[i]
        if first.single:
            groups.append(first.prefix)
            i += 1
            continue
        j = i + 1
        while j < len(ranges) and _within(ranges[j], ranges[j - 1]):
            j += 1
        members = ranges[i:j]
        if len(members) == 1 and first.count() == 1:
            groups.append(first.prefix + first.numstr())
        else:
            groups.append(first.prefix + "[" + ",".join(r.numstr() for r in members) + "]")
        i = j
    return ",".join(groups)


def _natural_key(text: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in _re().split(r"([0-9]+)", text)]
