"""Property-based fuzzing (hypothesis) of the parsers that read user input.

Bounded: each property runs a fixed number of examples (a few seconds in all).
A parser may refuse input only with its own error type; anything else (an
IndexError, a hang, a huge allocation) is a bug. The RPC fuzzer against a running
controller is tests/e2e/test_hostile.py::test_fuzz_every_rpc_briefly (and, for
longer runs, bench/fuzz_rpc.py).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gsched.cli.directives import DirectiveError, DirectiveExit, parse_submission
from gsched.common import hostlist
from gsched.common.durations import DurationError, SizeError, parse_memory_mb, parse_time_limit
from gsched.controller.errors import InvalidRequest
from gsched.controller.limits import check
from gsched.protos import gsched_pb2 as pb

FAST = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_HL_ALPHABET = st.sampled_from([*list("nodegpu[]-,0123456789 \t"), "99999999", "000"])
_hostlists = st.lists(_HL_ALPHABET, max_size=30).map("".join)


@FAST
@given(_hostlists)
def test_hostlist_expand_count_and_compress_agree(expr: str) -> None:
    try:
        n = hostlist.count(expr)
    except hostlist.HostlistError:
        try:
            hostlist.expand(expr)
        except hostlist.HostlistError:
            return
        raise AssertionError(f"count refused {expr!r} but expand did not") from None
    if n > hostlist.MAX_HOSTS:
        try:
            hostlist.expand(expr)
        except hostlist.HostlistError:
            return
        raise AssertionError(f"expand accepted {n} hosts")
    try:
        names = hostlist.expand(expr)
    except hostlist.HostlistError:
        return  # a single range over MAX_RANGE: refused, never allocated
    assert len(names) == n
    if names and all(names):
        again = hostlist.expand(hostlist.compress(names))
        assert again == names


@FAST
@given(st.text(max_size=30))
def test_hostlist_refuses_only_with_its_error(text: str) -> None:
    for fn in (hostlist.count, hostlist.expand):
        try:
            fn(text)
        except hostlist.HostlistError:
            pass


_TIME = st.one_of(
    st.text(max_size=16),
    st.lists(st.sampled_from([*list("0123456789-:"), "UNLIMITED", "INFINITE", "99999999999"]),
             max_size=12).map("".join),
)


@FAST
@given(_TIME)
def test_duration_parser(text: str) -> None:
    try:
        value = parse_time_limit(text)
    except DurationError:
        return
    assert isinstance(value, int) and value >= -1


@FAST
@given(st.one_of(st.text(max_size=12),
                 st.from_regex(r"[0-9]{1,25}[KMGTkmgt]?", fullmatch=True)))
def test_memory_parser(text: str) -> None:
    try:
        value = parse_memory_mb(text)
    except (SizeError, DurationError):
        return
    assert isinstance(value, int) and value >= 0


_OPTIONS = st.sampled_from([
    "-N", "-n", "-c", "-t", "--mem", "--mem-per-cpu", "-G", "--gpus-per-node", "--gres",
    "-w", "-x", "-o", "-e", "-J", "-p", "--export", "--signal", "--array", "--dependency",
    "--open-mode", "--nice", "--begin", "-D", "--ntasks-per-node", "--requeue", "-H",
])
_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["0", "-1", "99999999999999999999", "1-99999999", "n[1-99999999]",
                     "gpu:a100:2", "gpu:0", "ALL", "NONE", "1:00:00", "UNLIMITED", "%j\0",
                     "append", "B:USR1@60", ":", "", "=", "a,b,,c"]),
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(_OPTIONS, _VALUES), max_size=5),
       st.lists(st.tuples(_OPTIONS, _VALUES), max_size=4),
       st.booleans())
def test_directive_parser(
    cli: list[tuple[str, str]], lines: list[tuple[str, str]], gsched_prefix: bool
) -> None:
    """Options on the command line and in #SBATCH/#GSUB lines: a spec or a DirectiveError."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    prefix = "#GSUB" if gsched_prefix else "#SBATCH"
    script = "#!/bin/sh\n" + "".join(
        f"{prefix} {o}={v}\n".replace("\0", "") for o, v in lines
    ) + "echo hi\n"
    argv = [f"{o}={v}".replace("\0", "") for o, v in cli]
    try:
        sub = parse_submission(argv, {"PATH": "/bin", "HOME": "/root"}, str(tmp),
                               stdin=io.BytesIO(script.encode()))
    except (DirectiveError, DirectiveExit):
        return
    spec = sub.spec
    # what the parser accepts is either within the controller's limits or refused
    # there with INVALID_ARGUMENT, never anything else
    try:
        check(pb.SubmitRequest(spec=spec))
    except InvalidRequest:
        pass

