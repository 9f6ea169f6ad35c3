"""controller/limits.py, hostlist.count and the submission rate limiter."""

from __future__ import annotations

import time

import pytest

from gsched.common import hostlist
from gsched.controller.errors import InvalidRequest
from gsched.controller.limits import DEFAULT, Limits, check
from gsched.controller.ratelimit import SubmitLimiter
from gsched.protos import gsched_pb2 as pb


def _submit(**fields: object) -> pb.SubmitRequest:
    spec = pb.JobSpec(script="#!/bin/sh\ntrue\n", name="ok", submit_dir="/tmp")
    for k, v in fields.items():
        if k == "environment":
            spec.environment.update(v)  # type: ignore[arg-type]
        elif k == "extra":
            spec.extra.update(v)  # type: ignore[arg-type]
        elif k == "argv":
            spec.argv.extend(v)  # type: ignore[arg-type]
        else:
            setattr(spec, k, v)
    return pb.SubmitRequest(spec=spec)


def test_a_normal_submission_passes() -> None:
    check(_submit(environment={"PATH": "/bin", "HOME": "/root"}, ntasks=4, mem_mb=1000,
                  time_limit=-1, nice=-5, nodelist="n[01-16]", open_mode="append"))
    check(pb.CancelRequest(filter=pb.JobFilter(job_ids=[1, 2, 3]), signal=15))
    check(pb.HistoryRequest(start_after=1e9, limit=10))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"script": "x" * (DEFAULT.max_script_bytes + 1)}, "script is"),
        ({"name": "a\0b"}, "SubmitRequest.spec.name contains a NUL"),
        ({"name": "n" * 5000}, "SubmitRequest.spec.name is 5000 characters"),
        ({"output": "/tmp/" + "x" * 5000}, "SubmitRequest.spec.output is"),
        ({"ntasks": -1}, "SubmitRequest.spec.ntasks is -1"),
        ({"cpus_per_task": 2_000_000_000}, "the limit is 1000000"),
        ({"mem_mb": -5}, "SubmitRequest.spec.mem_mb is -5"),
        ({"mem_per_cpu_mb": 1 << 40}, "SubmitRequest.spec.mem_per_cpu_mb"),
        ({"time_limit": -2}, "SubmitRequest.spec.time_limit is -2"),
        ({"time_limit": 1 << 60}, "SubmitRequest.spec.time_limit"),
        ({"requeue": 7}, "SubmitRequest.spec.requeue is 7"),
        ({"open_mode": "overwrite"}, "unknown value 'overwrite'"),
        ({"nodelist": "node[1-99999999]"}, "names 99999999 hosts"),
        ({"exclude": "n[1-9"}, "unbalanced"),
        ({"environment": {"A=B": "1"}}, "invalid variable name"),
        ({"environment": {"": "1"}}, "invalid variable name"),
        ({"environment": {"X": "a\0b"}}, "NUL"),
        ({"environment": {"X": "v" * (DEFAULT.max_env_value + 1)}}, "characters long"),
        ({"environment": {f"V{i}": "x" for i in range(DEFAULT.max_env_entries + 1)}},
         "variables (limit"),
        ({"environment": {f"V{i}": "x" * 100_000 for i in range(30)}}, "bytes in all"),
        ({"argv": ["a"] * (DEFAULT.max_argv + 1)}, "arguments (limit"),
        ({"argv": ["ok", "b\0"]}, "SubmitRequest.spec.argv[1] contains a NUL"),
        ({"extra": {f"k{i}": "v" for i in range(300)}}, "entries (limit 256)"),
        ({"extra": {"dependency": "d" * 70_000}}, "characters long"),
        ({"extra": {"k\0": "v"}}, "NUL"),
    ],
)
def test_out_of_bounds_fields_are_refused_with_the_field_named(
    fields: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidRequest) as exc:
        check(_submit(**fields))
    assert words in str(exc.value)


def test_every_rpc_request_is_walked() -> None:
    with pytest.raises(InvalidRequest, match=r"CancelRequest\.signal is 99"):
        check(pb.CancelRequest(signal=99))
    with pytest.raises(InvalidRequest, match=r"ListJobsRequest.filter.users\[1\] contains a NUL"):
        check(pb.ListJobsRequest(filter=pb.JobFilter(users=["a", "b\0"])))
    with pytest.raises(InvalidRequest, match="has 100002 items"):
        check(pb.JobIdsRequest(job_ids=list(range(1, 100_003))))
    with pytest.raises(InvalidRequest, match="finite"):
        check(pb.HistoryRequest(start_after=float("nan")))
    with pytest.raises(InvalidRequest, match="finite"):
        check(pb.HistoryRequest(end_before=-1.0))
    with pytest.raises(InvalidRequest, match=r"StepRequest\.ntasks"):
        check(pb.StepRequest(job_id=1, argv=["x"], ntasks=-3))
    with pytest.raises(InvalidRequest, match=r"SignalStepRequest\.signal"):
        check(pb.SignalStepRequest(job_id=1, step_id=0, signal=-9))
    with pytest.raises(InvalidRequest, match=r"UpdateJobRequest\.job_id"):
        check(pb.UpdateJobRequest(job_id=-4))
    with pytest.raises(InvalidRequest, match=r"UpdateNodeRequest\.reason"):
        check(pb.UpdateNodeRequest(names=["n1"], state="DRAIN", reason="r" * 5000))


def test_limits_are_configurable_per_instance() -> None:
    small = Limits(max_string=8)
    check(_submit(name="12345678"), small)
    with pytest.raises(InvalidRequest):
        check(_submit(name="123456789"), small)


def test_hostlist_count_never_expands() -> None:
    assert hostlist.count("n[01-16],gpu5") == 17
    assert hostlist.count("r[1-2]n[1-3]") == 6
    assert hostlist.count("") == 0
    start = time.perf_counter()
    assert hostlist.count("node[1-99999999]") == 99_999_999
    assert hostlist.count("a[1-99999999]b[1-99999999]") == 99_999_999**2
    assert time.perf_counter() - start < 0.1
    for bad in ("n[", "n[2-1]", "n[]", "n[a]"):
        with pytest.raises(hostlist.HostlistError):
            hostlist.count(bad)


def test_hostlist_expand_refuses_many_ranges_in_one_bracket() -> None:
    expr = "n[" + ",".join(["1-60000"] * 40) + "]"
    with pytest.raises(hostlist.HostlistError, match="too many hosts"):
        hostlist.expand(expr)


def test_rate_limiter_token_bucket() -> None:
    lim = SubmitLimiter(rate=2.0, burst=3)
    now = 1000.0
    assert [lim.take(7, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = lim.take(7, now)
    assert wait == pytest.approx(0.5)
    assert lim.take(8, now) == 0.0  # another user has a bucket of their own
    assert lim.take(7, now + 0.5) == 0.0  # refilled one token
    assert lim.take(7, now + 0.5) > 0
    assert lim.take(7, now + 100) == 0.0  # never more than the burst
    assert [lim.take(7, now + 100) for _ in range(3)][-1] > 0


def test_rate_limiter_off_and_default_burst() -> None:
    off = SubmitLimiter(rate=0)
    assert not off.enabled and all(off.take(1, 0.0) == 0 for _ in range(1000))
    assert SubmitLimiter(rate=5).burst == 50
    assert SubmitLimiter(rate=0.01).burst == 1
