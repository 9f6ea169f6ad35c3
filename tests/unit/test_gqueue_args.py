"""gqueue (squeue): option parsing, the request it sends, rendering and main's errors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gsched.cli import client as client_mod
from gsched.cli import formats, gqueue
from gsched.protos import gsched_pb2 as pb

NOW = time.mktime((2026, 11, 25, 18, 37, 50, 0, 0, -1))


def job(job_id: int, state: str = "PENDING", **kw: Any) -> pb.JobInfo:
    kw.setdefault("name", "wrap")
    kw.setdefault("user", "root")
    kw.setdefault("partition", "main")
    kw.setdefault("num_nodes", 1)
    kw.setdefault("reason", "None")
    return pb.JobInfo(job_id=job_id, state=state, time_limit=-1, submit_time=NOW - 9, **kw)


def parse(*argv: str, **env: str) -> Any:
    return gqueue.parse_args(list(argv), env=env)


def test_defaults() -> None:
    o = parse()
    assert o.fmt == formats.parse_format(formats.SQUEUE_DEFAULT_FORMAT)
    assert (o.sort, o.states_list, o.all_states, o.job_ids, o.users) == (
        "P,t,-p",
        [],
        False,
        [],
        [],
    )
    assert not o.date_line and not o.detail and not o.noheader
    f = gqueue.build_request(o).filter
    assert (list(f.states), f.all_states, f.detail) == ([], False, False)


def test_filters_go_into_the_request() -> None:
    o = parse("-u", "alice,1001", "-t", "pd,r", "-p", "gpu,main", "-n", "a,b", "-j", "5,7_2")
    f = gqueue.build_request(o).filter
    assert list(f.users) == ["alice", "1001"]
    assert list(f.states) == ["PENDING", "RUNNING"]
    assert list(f.partitions) == ["gpu", "main"]
    assert list(f.names) == ["a", "b"]
    # with an array task among them, the ids go to the controller as typed
    assert list(f.job_ids) == [] and list(f.job_refs) == ["5", "7_2"]
    assert not f.all_states  # explicit states win over "-j shows any state"
    f = gqueue.build_request(parse("-j", "5,7")).filter
    assert list(f.job_ids) == [5, 7] and list(f.job_refs) == []
    o = parse("-j", "12_[1,3],14")
    assert o.job_ids == [12, 14] and o.job_refs == ["12_[1,3]"]


def test_jobs_show_any_state_and_take_a_separate_word() -> None:
    o = parse("-j", "12")
    assert o.job_ids == [12] and o.all_states
    assert parse("--jobs=3,4").job_ids == [3, 4]
    assert parse("-h", "-j", "-l", "9").job_ids == [9]  # squeue's optional argument
    with pytest.raises(formats.OptionError, match="Invalid job id: x1"):
        parse("-j", "x1")


def test_states_all_and_invalid() -> None:
    o = parse("-t", "all")
    assert o.all_states and o.states_list == []
    assert gqueue.build_request(o).filter.all_states
    with pytest.raises(formats.OptionError, match=r"^Invalid job state specified: BOGUS$"):
        parse("--states=PD,BOGUS")


def test_me_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gqueue, "_me", lambda: "carol")
    assert parse("--me").users == ["carol"]
    o = parse(SQUEUE_FORMAT="%i %j", SQUEUE_USERS="bob", SQUEUE_SORT="-i")
    assert [f.code for f in o.fmt.fields] == ["i", "j"]
    assert (o.users, o.sort) == (["bob"], "-i")
    long_wins = parse("-l", SQUEUE_FORMAT="%i")  # -l beats the environment
    assert [f.code for f in long_wins.fmt.fields][4] == "T"


def test_format_options() -> None:
    assert parse("-l").fmt == formats.parse_format(formats.SQUEUE_LONG_FORMAT)
    assert parse("-l").date_line and not parse("-l", "-h").date_line
    o = parse("--start")
    assert o.fmt == formats.parse_format(formats.SQUEUE_START_FORMAT)
    assert (o.sort, o.states_list) == ("S", ["PENDING"])
    assert [f.code for f in parse("-O", "jobid,name:30").fmt.fields] == ["A", "j"]
    assert parse("-o", "%Z").detail and parse("--json").detail
    assert parse("-o", "%all").fmt.fields[0].code == "a"
    assert parse("-o", "%i %_").warnings == ["Invalid job format specification: _"]
    with pytest.raises(formats.OptionError, match="mutually exclusive"):
        parse("-l", "-o", "%i")
    with pytest.raises(formats.OptionError, match="incompatible"):
        parse("-o", "%i", "-O", "jobid")


def test_sort_values_that_look_like_options() -> None:
    assert parse("-S", "-p").sort == "-p"
    assert parse("--sort", "-i,j").sort == "-i,j"
    with pytest.raises(formats.OptionError, match="Invalid sort specification: #"):
        parse("-S", "#")


def test_iterate_and_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("-i", "5").iterate == 5
    with pytest.raises(formats.OptionError):
        parse("-i", "0")
    with pytest.raises(SystemExit) as exc:
        parse("--bogus")
    assert exc.value.code == 1
    assert 'Try "gqueue --help" for more information' in capsys.readouterr().err


def test_client_side_filtering() -> None:
    jobs = [
        job(1, "RUNNING", user="alice", uid=1001, nodes=["n1"], start_time=NOW - 5),
        job(2, "COMPLETED", user="alice", uid=1001),
        job(3, user="bob", uid=1002, partition="gpu,main"),
        job(4, user="bob", uid=1002, name="x"),
    ]
    ids = lambda *a: [j.job_id for j in gqueue.filter_jobs(jobs, parse(*a))]  # noqa: E731
    assert ids() == [1, 3, 4]  # finished jobs dropped without -t
    assert ids("-t", "all") == [1, 2, 3, 4]
    assert ids("-t", "CD") == [2]
    assert ids("-u", "1001") == [1]
    assert ids("-p", "gpu") == [3]
    assert ids("-n", "x") == [4]
    assert ids("-j", "2") == [2]


def test_render_header_steps_and_json() -> None:
    reply = pb.ListJobsReply(jobs=[job(5, name="one")], now=NOW)
    assert gqueue.render(reply, parse("-h", "-o", "%i %j")) == "5 one\n"
    assert gqueue.render(pb.ListJobsReply(now=NOW), parse("-h")) == ""
    assert gqueue.render(reply, parse("-l")).splitlines()[0] == "Wed Nov 25 18:37:50 2026"
    assert (
        gqueue.render(reply, parse("-s"))
        == "         STEPID     NAME PARTITION     USER      TIME NODELIST\n"
    )
    assert '"job_id": 5' in gqueue.render(reply, parse("--json"))


# ---------------------------------------------------------------- main


class FakeClient:
    cluster_name = "gsched"

    def __init__(self, reply: Any = None, error: client_mod.ClientError | None = None) -> None:
        self.reply, self.error, self.requests = reply, error, []

    def call(self, method: str, request: Any) -> Any:
        self.requests.append((method, request))
        if self.error:
            raise self.error
        return self.reply


def run_main(
    monkeypatch: pytest.MonkeyPatch, fake: FakeClient | None, *argv: str, keep_prog: bool = False
) -> int:
    def finish(code: int = 0) -> None:
        raise SystemExit(code)

    if not keep_prog:
        monkeypatch.delenv("GSCHED_PROG", raising=False)
    monkeypatch.setattr(client_mod, "finish", finish)
    monkeypatch.setattr(client_mod, "connect", lambda prog: fake)
    with pytest.raises(SystemExit) as exc:
        gqueue.main(list(argv))
    return int(exc.value.code or 0)


def test_main_prints_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient(pb.ListJobsReply(jobs=[job(5, name="one")], now=NOW))
    assert run_main(monkeypatch, fake, "-o", "%i %j") == 0
    assert capsys.readouterr().out == "JOBID NAME\n5 one\n"
    assert fake.requests[0][0] == "ListJobs"


def test_main_single_unknown_job_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient(pb.ListJobsReply(now=NOW))
    assert run_main(monkeypatch, fake, "-j", "999999") == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "gqueue: error: Invalid job id specified\n")


def test_main_several_jobs_list_what_exists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient(pb.ListJobsReply(jobs=[job(5)], now=NOW))
    assert run_main(monkeypatch, fake, "-h", "-o", "%i", "-j", "5,999999") == 0
    assert capsys.readouterr().out == "5\n"


def test_main_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(monkeypatch, None, "-t", "nope") == 1
    assert capsys.readouterr().err == "gqueue: error: Invalid job state specified: nope\n"
    down = FakeClient(
        error=client_mod.ClientError("UNAVAILABLE", "unable to contact the gsched controller")
    )
    assert run_main(monkeypatch, down) == 1
    assert capsys.readouterr().err == "gqueue: error: unable to contact the gsched controller\n"
    gone = FakeClient(error=client_mod.ClientError("NOT_FOUND", "no such job"))
    assert run_main(monkeypatch, gone, "-j", "4") == 1
    assert capsys.readouterr().err == "gqueue: error: Invalid job id specified\n"


def test_main_uses_the_shim_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient(pb.ListJobsReply(now=NOW))
    monkeypatch.setenv("GSCHED_PROG", "squeue")
    assert run_main(monkeypatch, fake, "-j", "1", keep_prog=True) == 1
    assert capsys.readouterr().err == "squeue: error: Invalid job id specified\n"
