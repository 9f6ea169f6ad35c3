"""gctl (scontrol) argument parsing and messages, with a fake client: no controller needed.

Messages are checked byte for byte in both spellings: as ``scontrol`` (SLURM 22.05's
text, e.g. ``slurm_load_jobs error: Invalid job id specified``) and as ``gctl``
(``gctl: error: ...``).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from gsched.cli import gctl
from gsched.cli.client import ClientError
from gsched.protos import gsched_pb2 as pb


class FakeClient:
    """Records calls; answers from ``replies`` (a message, an exception, or a function)."""

    address = "127.0.0.1:6817"

    def __init__(self, **replies: Any) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def call(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        reply = self.replies[method]
        if callable(reply) and not isinstance(reply, type):
            reply = reply(request)
        if isinstance(reply, Exception):
            raise reply
        return reply


def run(argv: list[str], prog: str = "scontrol", client: Any = None, **kw: Any):
    out, err = io.StringIO(), io.StringIO()
    code = gctl.run(argv, prog, client=client or FakeClient(), out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


def error_text(argv: list[str], prog: str = "scontrol") -> str:
    with pytest.raises(gctl.CtlError) as info:
        gctl.parse_args(argv, prog)
    return info.value.render(prog)


# ---------------------------------------------------------------- show parsing


@pytest.mark.parametrize(
    ("argv", "entity", "target"),
    [
        (["show", "job", "14"], "job", "14"),
        (["SHOW", "JOB", "14"], "job", "14"),
        (["sho", "j", "14"], "job", "14"),
        (["show", "jobid=14"], "job", "14"),
        (["show", "job"], "job", None),
        (["show", "nodes"], "node", None),
        (["show", "node", "n[1-2]"], "node", "n[1-2]"),
        (["show", "NodeName=n1"], "node", "n1"),
        (["show", "partition", "main"], "partition", "main"),
        (["show", "pa"], "partition", None),
        (["show", "hostnames", "n[1-4]"], "hostnames", "n[1-4]"),
        (["show", "hostn"], "hostnames", None),
        (["show", "hostlist", "n1,n2"], "hostlist", "n1,n2"),
        (["show", "config"], "config", None),
    ],
)
def test_show_entities(argv: list[str], entity: str, target: str | None) -> None:
    args = gctl.parse_args(argv)
    assert (args.command, args.entity, args.target) == ("show", entity, target)


def test_options_anywhere() -> None:
    args = gctl.parse_args(["show", "job", "14", "-o"])
    assert args.oneliner and args.target == "14"
    args = gctl.parse_args(["--oneliner", "-d", "-Q", "show", "node"])
    assert args.oneliner and args.details and args.quiet


@pytest.mark.parametrize(
    ("argv", "scontrol", "gctl_text"),
    [
        (
            ["show", "foo"],
            "invalid entity:foo for keyword:show \n",
            "gctl: error: invalid entity:foo for keyword:show\n",
        ),
        (
            ["show", "host", "n1"],
            "invalid entity:host for keyword:show \n",
            "gctl: error: invalid entity:host for keyword:show\n",
        ),
        (
            ["show"],
            "too few arguments for keyword:show\n",
            "gctl: error: too few arguments for keyword:show\n",
        ),
        (
            ["show", "job", "1", "2"],
            "too many arguments for keyword:show\n",
            "gctl: error: too many arguments for keyword:show\n",
        ),
        (["frobnicate"], "invalid keyword: frobnicate\n", "gctl: error: invalid keyword: frobnicate\n"),
        (["hold"], "too few arguments for keyword:hold\n", "gctl: error: too few arguments for keyword:hold\n"),
        (["ping", "x"], "too many arguments for keyword:ping\n", "gctl: error: too many arguments for keyword:ping\n"),
    ],
)  # fmt: skip
def test_keyword_errors(argv: list[str], scontrol: str, gctl_text: str) -> None:
    assert error_text(argv, "scontrol") == scontrol
    assert error_text(argv, "gctl") == gctl_text


def test_getopt_errors() -> None:
    assert error_text(["--bogus", "ping"], "scontrol") == (
        "scontrol: unrecognized option '--bogus'\nTry \"scontrol --help\" for more information\n"
    )
    assert error_text(["-z"], "gctl") == (
        "gctl: invalid option -- 'z'\nTry \"gctl --help\" for more information\n"
    )


def test_version_and_help() -> None:
    assert gctl.parse_args(["-V"]).command == "version"
    assert gctl.parse_args(["version"]).command == "version"
    assert gctl.parse_args(["--help"]).command == "help"
    code, out, err = run(["-V"])
    assert code == 0 and out.startswith("gsched ") and err == ""


# ---------------------------------------------------------------- hold/release/requeue parsing


def test_job_id_lists() -> None:
    assert gctl.parse_args(["hold", "1,2", "3"]).ids == ["1", "2", "3"]
    assert gctl.parse_args(["Release", "JobId=4"]).ids == ["4"]
    args = gctl.parse_args(["requeue", "5"])
    assert (args.command, args.ids) == ("requeue", ["5"])
    assert gctl.parse_args(["uhold", "6"]).command == "hold"


# ---------------------------------------------------------------- update parsing


def test_update_job_fields_case_insensitive() -> None:
    args = gctl.parse_args(
        ["update", "jobid=5", "timelimit=30", "PARTITION=gpu", "name=x", "nice=5", "comment=hi"]
    )
    assert args.job_update == gctl.JobUpdate(
        job_ids=[5],
        fields={
            "TimeLimit": "00:30:00",
            "Partition": "gpu",
            "Name": "x",
            "Nice": "5",
            "Comment": "hi",
        },
    )


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("2-0", "2-00:00:00"),
        ("1:30:00", "01:30:00"),
        ("UNLIMITED", "UNLIMITED"),
        ("90", "01:30:00"),
    ],
)
def test_time_limit_sent_in_canonical_form(value: str, sent: str) -> None:
    args = gctl.parse_args(["update", "JobId=5", f"TimeLimit={value}"])
    assert args.job_update is not None
    assert args.job_update.fields == {"TimeLimit": sent}
    assert args.job_update.time_delta == 0


def test_relative_time_limit() -> None:
    args = gctl.parse_args(["update", "JobId=5", "TimeLimit=+30"])
    assert args.job_update == gctl.JobUpdate([5], {"TimeLimit": "00:30:00"}, time_delta=1)
    args = gctl.parse_args(["update", "JobId=5,6", "TimeLimit=-1:00:00"])
    assert args.job_update == gctl.JobUpdate([5, 6], {"TimeLimit": "01:00:00"}, time_delta=-1)


def test_update_separate_values_and_bare_nice() -> None:
    args = gctl.parse_args(["update", "JobId", "7", "Nice"])
    assert args.job_update == gctl.JobUpdate([7], {"Nice": "100"})
    args = gctl.parse_args(["update", "JobName=new", "JobId=8"])
    assert args.job_update == gctl.JobUpdate([8], {"Name": "new"})


@pytest.mark.parametrize(
    ("argv", "scontrol"),
    [
        (["update", "JobId=5", "TimeLimit=abc"], "scontrol: error: Invalid TimeLimit value\n"),
        (
            ["update", "TimeLimit=+5", "JobId=5"],
            "scontrol: error: JobId must precede TimeLimit increment or decrement\n",
        ),
        (["update", "JobId=5", "Nice=abc"], "scontrol: error: Invalid Nice value: abc\n"),
        (
            ["update", "JobId=5", "Nice=9999999999"],
            "scontrol: error: Nice value out of range (+/- 2147483645). Value ignored\n",
        ),
        (
            ["update", "JobId=5", "Licenses=x"],
            "Update of this parameter is not supported: Licenses=x\nRequest aborted\n",
        ),
        (["update", "JobId=5"], "No changes specified\n"),
        (["update", "JobName=x"], "scontrol: error: No job ID specified\n"),
        (["update", "JobId=abc", "Nice=1"], "Invalid job id specified for job abc\n"),
        (["update", "JobId=5", "Comment"], "Invalid input: Comment\nRequest aborted\n"),
        (
            ["update", "TimeLimit=5"],
            "No valid entity in update command\n"
            'Input line must include "NodeName", "PartitionName", "Reservation", "JobId", '
            'or "SlurmctldDebug"\n',
        ),
        (["update"], "too few arguments for update keyword\n"),
    ],
)
def test_update_job_errors(argv: list[str], scontrol: str) -> None:
    assert error_text(argv, "scontrol") == scontrol


def test_update_errors_as_gctl_are_prefixed() -> None:
    assert error_text(["update", "JobId=5", "TimeLimit=abc"], "gctl") == (
        "gctl: error: Invalid TimeLimit value\n"
    )
    assert error_text(["update", "JobId=5", "Licenses=x"], "gctl") == (
        "gctl: error: Update of this parameter is not supported: Licenses=x\n"
        "gctl: error: Request aborted\n"
    )


def test_update_node() -> None:
    args = gctl.parse_args(["update", "NodeName=n[1-2]", "State=drain", 'Reason="disk full"'])
    assert args.node_update == gctl.NodeUpdate("n[1-2]", "DRAIN", "disk full")
    args = gctl.parse_args(["update", "nodename=n1", "state=RES"])
    assert args.node_update == gctl.NodeUpdate("n1", "RESUME", "")
    for state in ("DOWN", "IDLE", "UNDRAIN"):
        args = gctl.parse_args(["update", "NodeName=n1", f"State={state}", "Reason=x"])
        assert args.node_update is not None and args.node_update.state == state


@pytest.mark.parametrize(
    ("argv", "scontrol", "gctl_text"),
    [
        (
            ["update", "NodeName=n1", "State=DRAIN"],
            "You must specify a reason when DOWNING or DRAINING a node. Request denied\n",
            "gctl: error: You must specify a reason when DOWNING or DRAINING a node. "
            "Request denied\n",
        ),
        (
            ["update", "NodeName=n1", "State=DOWN", "Reason="],
            "You must specify a reason when DOWNING or DRAINING a node. Request denied\n",
            "gctl: error: You must specify a reason when DOWNING or DRAINING a node. "
            "Request denied\n",
        ),
        (
            ["update", "NodeName=n1", "State=FUTURE"],
            "Invalid input: State=FUTURE\nRequest aborted\n"
            "Valid states are: DRAIN DOWN IDLE RESUME UNDRAIN\n"
            "Not all states are valid given a node's prior state\n",
            None,
        ),
        (
            ["update", "NodeName=n[1-", "State=RESUME"],
            "slurm_update error: Invalid node name specified\n",
            "gctl: error: Invalid node name specified\n",
        ),
        (
            ["update", "NodeName=n1", "Weight=5"],
            "Update of this parameter is not supported: Weight=5\nRequest aborted\n",
            None,
        ),
        (
            ["update", "NodeName=n1"],
            "No changes specified\n",
            "gctl: error: No changes specified\n",
        ),
        (
            ["update", "NodeName=n1", "State"],
            "scontrol: error: Invalid input: State  Request aborted\n",
            "gctl: error: Invalid input: State  Request aborted\n",
        ),
    ],
)
def test_update_node_errors(argv: list[str], scontrol: str, gctl_text: str | None) -> None:
    assert error_text(argv, "scontrol") == scontrol
    if gctl_text is not None:
        assert error_text(argv, "gctl") == gctl_text


# ---------------------------------------------------------------- running: show


def test_show_job_nonexistent_exact_messages() -> None:
    fake = FakeClient(ListJobs=ClientError("NOT_FOUND", "Invalid job id specified"))
    assert run(["show", "job", "999999"], "scontrol", fake) == (
        1,
        "",
        "slurm_load_jobs error: Invalid job id specified\n",
    )
    assert run(["show", "job", "999999"], "gctl", fake) == (
        1,
        "",
        "gctl: error: Invalid job id specified\n",
    )
    method, request = fake.calls[0]
    assert method == "ListJobs"
    assert list(request.filter.job_ids) == [999999]
    assert request.filter.detail


def test_show_job_empty_reply_and_bad_id() -> None:
    fake = FakeClient(ListJobs=pb.ListJobsReply())
    assert run(["show", "job", "5"], "scontrol", fake)[2] == (
        "slurm_load_jobs error: Invalid job id specified\n"
    )
    assert run(["show", "job", "abc"], "scontrol", fake)[2] == (
        "slurm_load_jobs error: Invalid job id specified\n"
    )
    assert run(["show", "job"], "scontrol", fake) == (0, "No jobs in the system\n", "")


def test_show_job_prints_every_record() -> None:
    jobs = [
        pb.JobInfo(job_id=i, name=f"j{i}", user="u", state="PENDING", reason="Priority")
        for i in (3, 4)
    ]
    fake = FakeClient(ListJobs=pb.ListJobsReply(jobs=jobs, now=100.0))
    code, out, err = run(["show", "job"], "gctl", fake)
    assert (code, err) == (0, "")
    assert out.startswith("JobId=3 JobName=j3\n")
    assert "\n   \n\nJobId=4 JobName=j4\n" in out
    assert fake.calls[0][1].filter.all_states
    code, out, _ = run(["-o", "show", "job"], "gctl", fake)
    assert out.count("\n") == 2 and out.startswith("JobId=3 JobName=j3 UserId=")


def test_show_node_not_found_and_found() -> None:
    nodes = [pb.NodeInfo(name=n, state="IDLE", cpus=4, mem_mb=1000) for n in ("n1", "n2")]
    fake = FakeClient(ListNodes=pb.ListNodesReply(nodes=nodes))
    code, out, err = run(["show", "node", "n[2,9]"], "scontrol", fake)
    assert code == 1 and err == ""
    assert out.startswith("NodeName=n2 CoresPerSocket=4 \n")
    assert out.endswith("Node n9 not found\n")
    code, out, _ = run(["show", "nodes"], "scontrol", fake)
    assert code == 0 and out.count("NodeName=") == 2
    assert run(["show", "node", "n[1-"], "scontrol", fake)[2] == "unable to parse node list n[1-\n"


def test_show_node_controller_error() -> None:
    fake = FakeClient(
        ListNodes=ClientError("UNAVAILABLE", "unable to contact the gsched controller at x")
    )
    assert run(["show", "node"], "scontrol", fake) == (
        1,
        "",
        "slurm_load_node error: unable to contact the gsched controller at x\n",
    )


def test_show_partition() -> None:
    reply = pb.ListNodesReply(
        nodes=[pb.NodeInfo(name="n1", cpus=4, mem_mb=1024)],
        partitions=[pb.PartitionInfo(name="main", is_default=True, state="UP", nodes=["n1"])],
    )
    fake = FakeClient(ListNodes=reply)
    code, out, _ = run(["show", "partition", "main"], "scontrol", fake)
    assert code == 0 and out.startswith("PartitionName=main\n   AllowGroups=ALL")
    assert run(["show", "partition", "nope"], "scontrol", fake) == (
        1,
        "Partition nope not found\n",
        "",
    )


def test_show_hostnames_from_argument_or_environment() -> None:
    assert run(["show", "hostnames", "n[1-4]"]) == (0, "n1\nn2\nn3\nn4\n", "")
    assert run(["show", "hostnames"], environ={"SLURM_JOB_NODELIST": "g[1-2]"}) == (
        0,
        "g1\ng2\n",
        "",
    )
    assert run(["show", "hostnames"], environ={}) == (
        1,
        "",
        "scontrol: error: host list is empty\n",
    )
    assert run(["show", "hostnames", "n[1-"]) == (1, "", "Invalid hostlist: n[1-\n")


def test_show_hostlist() -> None:
    assert run(["show", "hostlist", "n1,n2,n3,n4"]) == (0, "n[1-4]\n", "")
    assert run(["show", "hostlist"]) == (1, "", "invalid encode argument\n")


def test_show_config_and_ping() -> None:
    fake = FakeClient(Ping=pb.PingReply(version="0.1.0", cluster_name="c", now=1.0, started=1.0))
    code, out, _ = run(["show", "config"], "scontrol", fake)
    assert code == 0
    assert "ClusterName             = c\n" in out
    assert out.endswith("\nSlurmctld(primary) at 127.0.0.1 is UP\n")
    assert run(["ping"], "scontrol", fake) == (0, "Slurmctld(primary) at 127.0.0.1 is UP\n", "")
    down = FakeClient(Ping=ClientError("UNAVAILABLE", "unable to contact"))
    assert run(["ping"], "scontrol", down) == (1, "Slurmctld(primary) at 127.0.0.1 is DOWN\n", "")


# ---------------------------------------------------------------- running: hold, update


def test_hold_reports_each_failure_and_continues() -> None:
    def answer(request: pb.JobIdsRequest) -> pb.JobIdsReply:
        return pb.JobIdsReply(
            results=[
                pb.JobResult(job_id=1, ok=True),
                pb.JobResult(job_id=2, ok=False, error="Job is no longer pending execution"),
            ]
        )

    fake = FakeClient(Hold=answer)
    code, out, err = run(["hold", "1,abc", "2"], "scontrol", fake)
    assert code == 1 and out == ""
    assert err == (
        "Invalid job id specified for job abc\nJob is no longer pending execution for job 2\n"
    )
    assert list(fake.calls[0][1].job_ids) == [1, 2]
    code, _, err = run(["hold", "1,abc", "2"], "gctl", fake)
    assert err == (
        "gctl: error: Invalid job id specified for job abc\n"
        "gctl: error: Job is no longer pending execution for job 2\n"
    )
    code, _, err = run(["-Q", "hold", "2"], "scontrol", fake)
    assert (code, err) == (1, "")


def test_release_and_requeue_success() -> None:
    ok = pb.JobIdsReply(results=[pb.JobResult(job_id=3, ok=True)])
    fake = FakeClient(Release=ok, Requeue=ok)
    assert run(["release", "3"], "scontrol", fake) == (0, "", "")
    assert run(["requeue", "3"], "scontrol", fake) == (0, "", "")
    assert [m for m, _ in fake.calls] == ["Release", "Requeue"]


def test_update_job_sends_fields_and_reports_errors() -> None:
    fake = FakeClient(
        UpdateJob=ClientError("FAILED_PRECONDITION", "Job is no longer pending execution")
    )
    code, _, err = run(["update", "JobId=9", "Partition=gpu"], "scontrol", fake)
    assert (code, err) == (1, "Job is no longer pending execution for job 9\n")
    method, request = fake.calls[0]
    assert (method, request.job_id, dict(request.fields)) == ("UpdateJob", 9, {"Partition": "gpu"})


def test_invalid_update_sends_nothing() -> None:
    fake = FakeClient()
    code, _, err = run(["update", "JobId=9", "TimeLimit=soon"], "scontrol", fake)
    assert (code, err, fake.calls) == (1, "scontrol: error: Invalid TimeLimit value\n", [])
    code, _, err = run(["update", "NodeName=n1", "State=DRAIN"], "scontrol", fake)
    assert code == 1 and fake.calls == []


def test_relative_time_limit_uses_current_limit() -> None:
    listed = pb.ListJobsReply(jobs=[pb.JobInfo(job_id=9, time_limit=1800)])
    fake = FakeClient(ListJobs=listed, UpdateJob=pb.UpdateJobReply())
    assert run(["update", "JobId=9", "TimeLimit=+30"], "scontrol", fake) == (0, "", "")
    assert dict(fake.calls[-1][1].fields) == {"TimeLimit": "01:00:00"}
    assert run(["update", "JobId=9", "TimeLimit=-10"], "scontrol", fake) == (0, "", "")
    assert dict(fake.calls[-1][1].fields) == {"TimeLimit": "00:20:00"}
    code, _, err = run(["update", "JobId=9", "TimeLimit=-1:00:00"], "scontrol", fake)
    assert code == 1
    assert err == "scontrol: error: TimeLimit decrement larger than current time limit (60 > 30)\n"


def test_update_node_request_and_error() -> None:
    fake = FakeClient(UpdateNode=pb.UpdateNodeReply())
    argv = ["update", "NodeName=n[1-2]", "State=DRAIN", "Reason=maint"]
    assert run(argv, "scontrol", fake) == (0, "", "")
    method, request = fake.calls[0]
    assert method == "UpdateNode"
    assert (list(request.names), request.state, request.reason) == (["n[1-2]"], "DRAIN", "maint")
    denied = FakeClient(UpdateNode=ClientError("PERMISSION_DENIED", "Access/permission denied"))
    assert run(argv, "scontrol", denied) == (
        1,
        "",
        "slurm_update error: Access/permission denied\n",
    )
    assert run(argv, "gctl", denied) == (1, "", "gctl: error: Access/permission denied\n")


def test_array_ids_holds_and_new_update_fields() -> None:
    args = gctl.parse_args(["uhold", "12_3,12_[4-5]", "13"])
    assert (args.command, args.user_hold, args.ids) == ("hold", True, ["12_3", "12_[4-5]", "13"])
    assert gctl.parse_args(["hold", "7"]).user_hold is False
    args = gctl.parse_args(["update", "JobId=12_3,14", "Dependency=afterok:9", "StartTime=now+1hour"])
    up = args.job_update
    assert up is not None
    assert (up.job_ids, up.job_refs) == ([14], ["12_3"])
    assert up.fields == {"Dependency": "afterok:9", "StartTime": "now+1hour"}
    with pytest.raises(gctl.CtlError, match="Invalid job id specified for job 12_x"):
        gctl.parse_args(["update", "JobId=12_x", "Comment=a"])


def test_hold_sends_array_refs_and_reports_task_labels() -> None:
    reply = pb.JobIdsReply(results=[
        pb.JobResult(job_id=17, ok=False, error="Job is no longer pending execution",
                     job_label="12_3"),
    ])
    fake = FakeClient(Hold=reply)
    code, _, err = run(["uhold", "12_3", "5"], "scontrol", fake)
    request = fake.calls[0][1]
    assert (list(request.job_ids), list(request.job_refs), request.user_hold) == (
        [5], ["12_3"], True)
    assert (code, err) == (1, "Job is no longer pending execution for job 12_3\n")
