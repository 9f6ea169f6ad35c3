"""gprio, gshare and gctl's policy commands: parsing and rendering, no controller."""

from __future__ import annotations

import io
from typing import Any

import pytest

from gsched.cli import gctl, gctl_policy, gprio, gshare
from gsched.cli.client import ClientError
from gsched.protos import gsched_pb2 as pb


class FakeClient:
    """Records calls; answers from a table (or raises a ClientError)."""

    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def call(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        reply = self.replies[method]
        if isinstance(reply, ClientError):
            raise reply
        return reply


def prio_reply() -> pb.PrioritiesReply:
    r = pb.PrioritiesReply(weights=pb.PriorityWeights(age=1000, fairshare=10000, jobsize=0,
                                                      partition=1000, qos=1000))
    r.jobs.add(job_id=12, partition="gpu", user="alice", account="lab", qos="high",
               priority=11500, age=500.4, fairshare=9000.0, partition_factor=1000,
               qos_factor=1000, nice=-10, tier=2, age_norm=0.5, fairshare_norm=0.9,
               partition_norm=1.0, qos_norm=1.0)
    return r


def test_gprio_columns_like_sprio() -> None:
    out = io.StringIO()
    client = FakeClient({"Priorities": prio_reply()})
    assert gprio.run(["-u", "alice"], client=client, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["JOBID", "PARTITION", "USER", "PRIORITY", "AGE", "FAIRSHARE",
                                "JOBSIZE", "PARTITION", "QOS", "NICE"]
    assert lines[1].split() == ["12", "gpu", "alice", "11500", "500", "9000", "0", "1000",
                                "1000", "-10"]
    assert lines[0].index("PRIORITY") + len("PRIORITY") == lines[1].index("11500") + 5
    assert list(client.calls[0][1].users) == ["alice"]


def test_gprio_long_norm_weights_and_jobs() -> None:
    out = io.StringIO()
    client = FakeClient({"Priorities": prio_reply()})
    assert gprio.run(["-l", "-n", "-w", "-j", "12"], client=client, out=out) == 0
    lines = out.getvalue().splitlines()
    assert "ACCOUNT" in lines[0] and "QOSNAME" in lines[0] and "TIER" in lines[0]
    assert lines[1].split() == ["Weights", "1000", "10000", "0", "1000", "1000"]
    assert lines[2].split()[5:7] == ["0.5000000", "0.9000000"]
    assert lines[2].split()[-2:] == ["high", "2"]
    assert list(client.calls[0][1].job_ids) == [12]


def test_gprio_errors() -> None:
    err = io.StringIO()
    assert gprio.run(["-j", "x"], client=FakeClient({}), err=err) == 1
    assert "Invalid job id" in err.getvalue()
    err = io.StringIO()
    empty = FakeClient({"Priorities": pb.PrioritiesReply()})
    assert gprio.run(["-j", "5"], client=empty, err=err) == 1
    assert "Unable to find jobs" in err.getvalue()


def share_reply() -> pb.SharesReply:
    r = pb.SharesReply()
    r.rows.add(account="lab", raw_shares=2, norm_shares=0.666667, raw_usage=3600.4,
               norm_usage=0.75, effective_usage=0.75, fairshare=0.459)
    r.rows.add(account="lab", user="alice", raw_shares=1, norm_shares=0.333333,
               raw_usage=3600.4, norm_usage=0.75, effective_usage=0.75, fairshare=0.2)
    r.rows.add(account="lab", user="bob", raw_shares=1, norm_shares=0.333333)
    return r


def test_gshare_columns_like_sshare() -> None:
    out = io.StringIO()
    assert gshare.run(["-a"], client=FakeClient({"Shares": share_reply()}), out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["Account", "User", "RawShares", "NormShares", "RawUsage",
                                "EffectvUsage", "FairShare"]
    assert lines[1].startswith("-" * 20 + " " + "-" * 10 + " ")
    assert lines[2].split() == ["lab", "2", "0.666667", "3600", "0.750000", "0.459000"]
    assert lines[3].startswith(" lab") and lines[3].split()[:2] == ["lab", "alice"]
    assert len(lines) == 5


def test_gshare_default_shows_own_user_and_parsable_long() -> None:
    out = io.StringIO()
    client = FakeClient({"Shares": share_reply()})
    assert gshare.run(["-l", "-P"], client=client, out=out, me="bob") == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == ("Account|User|RawShares|NormShares|RawUsage|NormUsage|EffectvUsage|"
                        "FairShare")
    assert [ln.split("|")[1] for ln in lines[1:]] == ["", "bob"]


# ------------------------------------------------------------------ gctl
@pytest.mark.parametrize(("argv", "verb", "entity", "name", "fields"), [
    (["create", "qos", "high", "Priority=10"], "create", "qos", "high", {"Priority": "10"}),
    (["modify", "qos", "high", "set", "MaxWall=1:00:00"], "modify", "qos", "high",
     {"MaxWall": "1:00:00"}),
    (["modify", "qos", "where", "name=high", "set", "GrpTRES=gres/gpu=8"], "modify", "qos",
     "high", {"GrpTRES": "gres/gpu=8"}),
    (["add", "user", "alice", "Account=lab"], "create", "user", "alice", {"Account": "lab"}),
    (["delete", "account", "lab"], "delete", "account", "lab", {}),
    (["reset", "usage"], "reset", "usage", "", {}),
])
def test_gctl_policy_parse(argv: list[str], verb: str, entity: str, name: str,
                           fields: dict[str, str]) -> None:
    args = gctl.parse_args(argv)
    assert args.command == "policy"
    p = args.policy
    assert (p.verb, p.entity, p.name, p.fields) == (verb, entity, name, fields)


@pytest.mark.parametrize(("argv", "msg"), [
    (["create"], "too few arguments"),
    (["create", "bogus", "x"], "invalid entity:bogus"),
    (["create", "qos"], "No qos name given"),
    (["modify", "qos", "high"], "No changes specified"),
    (["reset", "qos"], "usage: reset usage"),
])
def test_gctl_policy_parse_errors(argv: list[str], msg: str) -> None:
    with pytest.raises(gctl.CtlError, match=msg):
        gctl.parse_args(argv)


def test_gctl_policy_sends_update_and_reports_errors() -> None:
    client = FakeClient({"UpdatePolicy": pb.PolicyReply()})
    out, err = io.StringIO(), io.StringIO()
    assert gctl.run(["create", "qos", "high", "Priority=5"], client=client, out=out,
                    err=err) == 0
    method, req = client.calls[0]
    assert (method, req.verb, req.entity, req.name, dict(req.fields)) == (
        "UpdatePolicy", "create", "qos", "high", {"Priority": "5"})
    assert out.getvalue() == " Added qos high\n"
    denied = FakeClient({"UpdatePolicy": ClientError("PERMISSION_DENIED",
                                                     "Access/permission denied")})
    err = io.StringIO()
    assert gctl.run(["delete", "qos", "high"], client=denied, err=err) == 1
    assert err.getvalue() == "gctl: error: Access/permission denied\n"


def test_gctl_show_qos_and_account() -> None:
    reply = pb.PolicyReply(default_qos="normal", default_accounts={"alice": "lab"})
    reply.qos.add(name="high", priority=100, max_wall=3600, max_tres_per_user="gres/gpu=4",
                  max_jobs_per_user=-1, max_submit_jobs_per_user=10, preempt=["normal"],
                  preempt_mode="REQUEUE", usage_factor=1.0)
    reply.accounts.add(name="lab", shares=2, users={"alice": 1}, grp_tres="gres/gpu=8")
    client = FakeClient({"GetPolicy": reply})
    out = io.StringIO()
    assert gctl.run(["show", "qos"], client=client, out=out) == 0
    row = out.getvalue().splitlines()[2].split()
    assert row == ["high", "100", "00:00:00", "normal", "REQUEUE", "1.000000", "01:00:00",
                   "gres/gpu=4", "10"]
    out = io.StringIO()
    assert gctl.run(["show", "account"], client=client, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[2].split() == ["lab", "2", "gres/gpu=8"]
    assert lines[3].split() == ["lab", "alice", "1", "lab"]
    err = io.StringIO()
    assert gctl.run(["show", "qos", "nope"], client=client, err=err) == 1
    assert "Invalid qos specification" in err.getvalue()


def test_gctl_update_priority_qos_account() -> None:
    args = gctl.parse_args(["update", "JobId=4", "Priority=100", "QOS=high", "Account=lab"])
    assert args.job_update is not None
    assert args.job_update.fields == {"Priority": "100", "QOS": "high", "Account": "lab"}
    with pytest.raises(gctl.CtlError, match="Invalid Priority"):
        gctl.parse_args(["update", "JobId=4", "Priority=-1"])


def test_policy_usage_text_lists_commands() -> None:
    assert "create qos|account|user" in gctl.USAGE
    assert gctl_policy.VERBS == ("create", "modify", "delete", "reset")


def test_show_job_prints_factors_and_limit_lines() -> None:
    from gsched.cli.show import show_job

    job = pb.JobInfo(job_id=7, name="j", user="alice", uid=1000, gid=1000, group="alice",
                     state="PENDING", reason="QOSMaxGRESPerUser", priority=11500,
                     account="lab", qos="high", nice=5,
                     limit="QOS=high MaxTRESPerUser=gres/gpu=4", spec=pb.JobSpec())
    job.factors.CopyFrom(prio_reply().jobs[0])
    lines = show_job(job, now=1.0).splitlines()
    assert lines[2].strip() == "Priority=11500 Nice=5 Account=lab QOS=high"
    assert lines[3].strip() == ("PriorityFactors=Age=500 FairShare=9000 JobSize=0 "
                                "Partition=1000 QOS=1000 Nice=-10 Tier=2")
    assert lines[4].strip().startswith("JobState=PENDING Reason=QOSMaxGRESPerUser")
    assert lines[5].strip() == "Limit=QOS=high MaxTRESPerUser=gres/gpu=4"


def test_gqueue_account_and_qos_filters_and_columns() -> None:
    from gsched.cli import formats, gqueue

    jobs = [pb.JobInfo(job_id=1, state="PENDING", user="a", account="lab", qos="high"),
            pb.JobInfo(job_id=2, state="PENDING", user="a", account="ops", qos="normal")]
    pick = lambda *a: [j.job_id for j in gqueue.filter_jobs(jobs, gqueue.parse_args(list(a), env={}))]  # noqa: E731
    assert pick() == [1, 2]
    assert pick("-A", "lab") == [1]
    assert pick("-q", "normal,other") == [2]
    assert pick("--account=ops", "--qos=high") == []
    assert formats._JOB_COLS["a"].value(jobs[0], None) == "lab"
    assert formats._JOB_COLS["q"].value(jobs[1], None) == "normal"


def test_show_partition_policy_fields() -> None:
    from gsched.cli.show import show_partition

    p = pb.PartitionInfo(name="gpu", state="DRAIN", nodes=["n1"], default_time=-1,
                         max_time=-1, priority_tier=3, priority_job_factor=2,
                         allow_accounts=["lab", "ops"], allow_groups=["staff"], exclusive=True)
    text = show_partition(p, [])
    assert "AllowGroups=staff AllowAccounts=lab,ops AllowQos=ALL" in text
    assert "PriorityJobFactor=2 PriorityTier=3 RootOnly=NO ReqResv=NO OverSubscribe=EXCLUSIVE" in text
    assert "State=DRAIN" in text
    plain = show_partition(pb.PartitionInfo(name="x"), [])
    assert "PriorityJobFactor=1 PriorityTier=1" in plain and "AllowAccounts=ALL" in plain
