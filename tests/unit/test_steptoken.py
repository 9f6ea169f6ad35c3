"""Job step credentials (controller/steptoken.py): derivation, checks, the stored key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsched.common import config
from gsched.controller import steptoken
from gsched.controller.cluster import NodeReport
from gsched.controller.jobs import Job, Request
from gsched.controller.nodes import Gpu
from gsched.controller.runtime import Controller, LaunchOrder
from gsched.controller.steptoken import StepTokens
from gsched.controller.store import Store

KEY = "11" * 32


def test_tokens_differ_per_job_attempt_kind_and_key() -> None:
    t = StepTokens(KEY)
    seen = {t.for_attempt(1, 0), t.for_attempt(1, 1), t.for_attempt(2, 0),
            t.for_allocation(1), t.for_allocation(2), StepTokens("22" * 32).for_attempt(1, 0)}
    assert len(seen) == 6
    assert all(len(x) == 64 and int(x, 16) >= 0 for x in seen)
    # deterministic: the same key gives the same token after a restart
    assert StepTokens(KEY).for_attempt(7, 3) == t.for_attempt(7, 3)
    # "1|23" vs "12|3": the separator keeps job and attempt apart
    assert t.for_attempt(1, 23) != t.for_attempt(12, 3)


def test_check_accepts_the_current_attempt_and_the_allocation_only() -> None:
    t = StepTokens(KEY)
    assert t.check(5, 1, t.for_attempt(5, 1))
    assert t.check(5, 1, t.for_allocation(5))
    assert t.check(5, 9, t.for_allocation(5))  # an allocation's token outlives a requeue
    assert not t.check(5, 1, t.for_attempt(5, 0))  # the previous attempt's leftovers
    assert not t.check(5, 1, t.for_attempt(6, 1))  # another job's
    assert not t.check(5, 1, t.for_allocation(6))
    assert not t.check(5, 1, "")
    assert not t.check(5, 1, t.for_attempt(5, 1)[:-1])
    assert not t.check(5, 1, t.for_attempt(5, 1).upper())
    assert not t.check(5, 1, "é" * 64)  # non-ASCII: refused, no exception


def test_key_must_be_hex_and_long_enough() -> None:
    with pytest.raises(ValueError):
        StepTokens("zz" * 32)
    with pytest.raises(ValueError):
        StepTokens("ab" * 4)
    assert len(bytes.fromhex(steptoken.new_key())) == 32
    assert steptoken.new_key() != steptoken.new_key()


def test_refusal_message_names_the_job() -> None:
    assert steptoken.not_inside(42) == (
        "not inside job 42: run grun from the job's batch script or an allocation")


def test_store_keeps_the_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    first = Store(url)
    key = first.meta_secret(steptoken.KEY_NAME, steptoken.new_key)
    assert first.meta_secret(steptoken.KEY_NAME, lambda: "unused") == key
    first.close()
    again = Store(url)
    assert again.meta_secret(steptoken.KEY_NAME, lambda: "unused") == key
    again.close()


def test_launch_carries_the_attempts_token_across_controller_restarts(tmp_path: Path) -> None:
    cfg = config.from_dict({
        "state_dir": str(tmp_path),
        "partitions": [{"name": "main", "nodes": "ALL", "default": True}],
    }, str(tmp_path / "gsched.toml"))
    ctl = Controller(cfg, clock=lambda: 1000.0)
    ctl.recover()
    c = ctl.cluster
    c.node_hello("node1", NodeReport(8, 32000, tuple(Gpu(i) for i in range(2)), {}), [], [],
                 1000.0)
    job = c.submit(Job(0, "alice", 1000, 1000, "alice", "j", Request(), b"", 0.0), 1000.0)
    c.schedule(1000.0)
    assert job.state == "RUNNING"
    msg = ctl._message(LaunchOrder("node1", job.job_id, job.attempt, 0))
    assert msg is not None
    token = msg.launch.step_token
    assert token and ctl.step_tokens.check(job.job_id, job.attempt, token)
    assert not ctl.step_tokens.check(job.job_id, job.attempt + 1, token)
    ctl.store.close()
    again = Controller(cfg, clock=lambda: 1001.0)
    assert again.step_tokens.for_attempt(job.job_id, job.attempt) == token
    again.store.close()
