"""gacct (sacct): option parsing, time specs, sacct's column layout."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gsched.cli import client as client_mod
from gsched.cli import formats, gacct
from gsched.protos import gsched_pb2 as pb

NOW = time.mktime((2026, 11, 25, 18, 37, 50, 0, 0, -1))
MIDNIGHT = time.mktime((2026, 11, 25, 0, 0, 0, 0, 0, -1))


def parse(*argv: str, **env: str) -> Any:
    return gacct.parse_args(list(argv), env=env, now=NOW)


def history() -> pb.ListJobsReply:
    common = {"user": "root", "partition": "main", "num_nodes": 1, "submit_time": NOW - 100}
    return pb.ListJobsReply(
        now=NOW,
        jobs=[
            pb.JobInfo(job_id=15, name="fails", state="FAILED", exit_code=2, num_cpus=1, nodes=["n2"],
                       start_time=NOW - 90, end_time=NOW - 80, time_limit=-1, **common),
            pb.JobInfo(job_id=14, name="train-gpu-model", state="COMPLETED", num_cpus=2, gpus=2, mem_mb=4096,
                       nodes=["n1"], start_time=NOW - 99, end_time=NOW - 3, time_limit=1800, **common),
            pb.JobInfo(job_id=16, name="waits", state="PENDING", num_cpus=4, time_limit=600, **common),
        ],
        steps=[
            pb.StepInfo(job_id=14, step_id=0, name="python", nodes=["n1"], ntasks=2,
                        start_time=NOW - 90, end_time=NOW - 10, state="COMPLETED"),
            pb.StepInfo(job_id=14, step_id=1, name="check", nodes=["n1"], ntasks=1,
                        start_time=NOW - 9, end_time=NOW - 4, state="FAILED", exit_code=3),
            pb.StepInfo(job_id=14, step_id=2, name="stale", nodes=["n9"], ntasks=1, attempt=5,
                        start_time=NOW - 9, end_time=NOW - 4, state="FAILED", exit_code=3),
        ],
    )  # fmt: skip


def test_defaults_and_window() -> None:
    o = parse()
    assert [f.name for f in o.fields] == gacct.DEFAULT_FORMAT.split(",")
    req = gacct.build_request(o)
    assert (req.start_after, req.end_before, req.all_users, list(req.users)) == (
        MIDNIGHT,
        0.0,
        False,
        [],
    )
    assert gacct.build_request(parse("-j", "14,15.batch")).start_after == 0.0
    assert list(gacct.build_request(parse("-j", "14,15.batch")).job_ids) == [14, 15]
    assert gacct.build_request(parse("-a")).all_users
    r = gacct.build_request(parse("-u", "bob", "-s", "cd,F", "-S", "2026-11-24", "-E", "now"))
    assert (list(r.users), list(r.states)) == (["bob"], ["COMPLETED", "FAILED"])
    assert (r.start_after, r.end_before) == (MIDNIGHT - 86400, NOW)
    assert [f.name for f in parse(SACCT_FORMAT="jobid,state").fields] == ["JobID", "State"]


def test_time_specs() -> None:
    at = lambda *t: time.mktime((*t, 0, 0, -1))  # noqa: E731
    assert gacct.parse_time("2026-11-24T10:30", NOW) == at(2026, 11, 24, 10, 30, 0)
    assert gacct.parse_time("2026-11-24T10:30:05", NOW) == at(2026, 11, 24, 10, 30, 5)
    assert gacct.parse_time("11/20-08:00", NOW) == at(2026, 11, 20, 8, 0, 0)
    assert gacct.parse_time("11/20/25", NOW) == at(2025, 11, 20, 0, 0, 0)
    assert gacct.parse_time("1120", NOW) == at(2026, 11, 20, 0, 0, 0)
    assert gacct.parse_time("09:15", NOW) == at(2026, 11, 25, 9, 15, 0)
    assert gacct.parse_time("now-2hours", NOW) == NOW - 7200
    assert gacct.parse_time("now+30", NOW) == NOW + 30
    assert gacct.parse_time("tomorrow", NOW) == MIDNIGHT + 86400
    with pytest.raises(formats.OptionError, match="Invalid time specification: yesterdayish"):
        gacct.parse_time("yesterdayish", NOW)
    with pytest.raises(formats.OptionError):
        gacct.parse_time("13/40", NOW)


def test_fields() -> None:
    o = parse("-o", "jobid,JobName%20,exitcode")
    assert [(f.name, f.width) for f in o.fields] == [
        ("JobID", -12),
        ("JobName", 20),
        ("ExitCode", 8),
    ]
    with pytest.raises(formats.OptionError, match='Invalid field requested: "Bogus"'):
        parse("-o", "JobID,Bogus")


def test_default_table_like_sacct() -> None:
    assert gacct.render(history(), parse()) == (
        "       JobID    JobName  Partition    Account  AllocCPUS      State ExitCode \n"
        "------------ ---------- ---------- ---------- ---------- ---------- -------- \n"
        "14           train-gpu+       main                     2  COMPLETED      0:0 \n"
        "14.batch          batch                                2  COMPLETED      0:0 \n"
        "14.0             python                                2  COMPLETED      0:0 \n"
        "14.1              check                                2     FAILED      3:0 \n"
        "15                fails       main                     1     FAILED      2:0 \n"
        "15.batch          batch                                1     FAILED      2:0 \n"
        "16                waits       main                     0    PENDING      0:0 \n"
    )
    assert gacct.render(history(), parse("-X", "-n", "-P", "-o", "JobID")) == "14\n15\n16\n"
    assert gacct.render(history(), parse("-n", "-P", "-o", "JobID,NTasks,Elapsed", "-j", "14")) == (
        "14|1|00:01:36\n14.batch|1|00:01:36\n14.0|2|00:01:20\n14.1|1|00:00:05\n"
    )
    assert gacct.build_request(parse()).with_steps
    assert not gacct.build_request(parse("-X")).with_steps


def test_parsable_and_noheader() -> None:
    o = parse("-X", "-P", "-o", "JobID,JobName,State,Elapsed,Timelimit,NodeList,AllocTRES")
    assert gacct.render(history(), o) == (
        "JobID|JobName|State|Elapsed|Timelimit|NodeList|AllocTRES\n"
        "14|train-gpu-model|COMPLETED|00:01:36|00:30:00|n1|billing=2,cpu=2,gres/gpu=2,mem=4G,node=1\n"
        "15|fails|FAILED|00:00:10|UNLIMITED|n2|billing=1,cpu=1,node=1\n"
        "16|waits|PENDING|00:00:00|00:10:00|None assigned|\n"
    )
    assert gacct.render(history(), parse("-X", "-p", "-n", "-o", "JobID,State")) == (
        "14|COMPLETED|\n15|FAILED|\n16|PENDING|\n"
    )
    assert gacct.render(history(), parse("-X", "-n", "-j", "15", "-o", "JobID%5,Start")) == (
        "   15 " + time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(NOW - 90)) + " \n"
    )


def test_json() -> None:
    doc = json.loads(gacct.render(history(), parse("--json")))
    first = doc["jobs"][0]
    assert (first["job_id"], first["state"]["current"], first["exit_code"]["status"]) == (
        14,
        "COMPLETED",
        "SUCCESS",
    )
    assert first["tres"]["allocated"][2] == {"type": "gres", "name": "gpu", "id": 0, "count": 2}
    assert doc["jobs"][1]["exit_code"] == {
        "status": "FAILED",
        "return_code": 2,
        "signal": {"signal_id": 0},
    }


def test_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Fake:
        cluster_name = "gsched"

        def call(self, method: str, request: Any) -> Any:
            if method != "History":
                raise AssertionError(method)
            raise client_mod.ClientError("UNIMPLEMENTED", "History is not implemented")

    def finish(code: int = 0) -> None:
        raise SystemExit(code)

    monkeypatch.delenv("GSCHED_PROG", raising=False)
    monkeypatch.setattr(client_mod, "finish", finish)
    monkeypatch.setattr(client_mod, "connect", lambda prog: Fake())
    with pytest.raises(SystemExit) as exc:
        gacct.main([])
    assert exc.value.code == 1
    assert capsys.readouterr().err == "gacct: error: History is not implemented\n"
    with pytest.raises(SystemExit) as exc:
        gacct.main(["-o", "nope"])
    assert exc.value.code == 1
    assert capsys.readouterr().err == 'gacct: error: Invalid field requested: "nope"\n'


def test_array_ids_select_tasks() -> None:
    jobs = [pb.JobInfo(job_id=i, array_job_id=5, array_task_id=t, state="COMPLETED")
            for i, t in ((5, 9), (6, 0), (7, 3))]
    jobs.append(pb.JobInfo(job_id=8, state="COMPLETED"))
    opts = parse("-j", "5_3,8")
    assert [j.job_id for j in gacct._filter(jobs, opts)] == [7, 8]
    opts = parse("-j", "5")
    assert [formats.job_label(j) for j in gacct._filter(jobs, opts)] == ["5_9", "5_0", "5_3"]
    opts = parse("-j", "7")
    assert [j.job_id for j in gacct._filter(jobs, opts)] == [7]
