"""Exact ``scontrol show`` shapes: gsched's renderers against SLURM 22.05's real output.

The expected texts below are copied from /work/shared/slurm-reference (stdout of
the commands named in each constant); ``test_reference_copies_are_current`` checks
the copies against the files when they are present. Where gsched shows something
SLURM's reference cluster did not (``gres/gpu`` in TRES, because that cluster left
gres/gpu out of AccountingStorageTRES) or cannot know (the submitting session id in
``AllocNode:Sid``), the test names the one substitution it makes.
"""

from __future__ import annotations

import calendar
import pathlib
import time

import pytest

from gsched.cli import show
from gsched.protos import gsched_pb2 as pb

REFERENCE = pathlib.Path("/work/shared/slurm-reference")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    """Render times in UTC so the reference timestamps read the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ts(text: str) -> float:
    """``2026-11-25T18:37:44`` (UTC) as unix seconds."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


JOB_RUNNING = "\n".join(
    [
        "JobId=14 JobName=train-gpu",
        "   UserId=root(0) GroupId=root(0) MCS_label=N/A",
        "   Priority=4294901746 Nice=0 Account=(null) QOS=(null)",
        "   JobState=RUNNING Reason=None Dependency=(null)",
        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0",
        "   RunTime=00:00:04 TimeLimit=00:30:00 TimeMin=N/A",
        "   SubmitTime=2026-11-25T18:37:44 EligibleTime=2026-11-25T18:37:44",
        "   AccrueTime=2026-11-25T18:37:44",
        "   StartTime=2026-11-25T18:37:46 EndTime=2026-11-25T19:07:46 Deadline=N/A",
        "   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-25T18:37:46 Scheduler=Main",
        "   Partition=main AllocNode:Sid=localhost:2216",
        "   ReqNodeList=(null) ExcNodeList=(null)",
        "   NodeList=n1",
        "   BatchHost=n1",
        "   NumNodes=1 NumCPUs=2 NumTasks=1 CPUs/Task=2 ReqB:S:C:T=0:0:*:*",
        "   TRES=cpu=2,node=1,billing=2",
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
        "   MinCPUsNode=2 MinMemoryNode=0 MinTmpDiskNode=0",
        "   Features=(null) DelayBoot=00:00:00",
        "   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
        "   Command=(null)",
        "   WorkDir=/var/tmp/anchor-slurm/refwork",
        "   StdErr=/dev/null",
        "   StdIn=/dev/null",
        "   StdOut=/dev/null",
        "   Power=",
        "   TresPerNode=gres:gpu:2",
        "   ",
        "",
        "",
    ]
)

JOB_PENDING = "\n".join(
    [
        "JobId=20 JobName=needs-all",
        "   UserId=root(0) GroupId=root(0) MCS_label=N/A",
        "   Priority=4294901743 Nice=0 Account=(null) QOS=(null)",
        "   JobState=PENDING Reason=Resources Dependency=(null)",
        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0",
        "   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A",
        "   SubmitTime=2026-11-25T18:37:47 EligibleTime=2026-11-25T18:37:47",
        "   AccrueTime=2026-11-25T18:37:47",
        "   StartTime=Unknown EndTime=Unknown Deadline=N/A",
        "   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-25T18:37:49 Scheduler=Main",
        "   Partition=main AllocNode:Sid=localhost:2216",
        "   ReqNodeList=(null) ExcNodeList=(null)",
        "   NodeList=",
        "   NumNodes=4-4 NumCPUs=4 NumTasks=4 CPUs/Task=1 ReqB:S:C:T=0:0:*:*",
        "   TRES=cpu=4,mem=250G,node=4,billing=4",
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
        "   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0",
        "   Features=(null) DelayBoot=00:00:00",
        "   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
        "   Command=(null)",
        "   WorkDir=/var/tmp/anchor-slurm/refwork",
        "   StdErr=/dev/null",
        "   StdIn=/dev/null",
        "   StdOut=/dev/null",
        "   Power=",
        "   TresPerNode=gres:gpu:8",
        "   ",
        "",
        "",
    ]
)

JOB_HELD = "\n".join(
    [
        "JobId=22 JobName=held",
        "   UserId=root(0) GroupId=root(0) MCS_label=N/A",
        "   Priority=0 Nice=0 Account=(null) QOS=(null)",
        "   JobState=PENDING Reason=JobHeldUser Dependency=(null)",
        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0",
        "   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A",
        "   SubmitTime=2026-11-25T18:37:47 EligibleTime=Unknown",
        "   AccrueTime=Unknown",
        "   StartTime=Unknown EndTime=Unknown Deadline=N/A",
        "   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-25T18:37:47 Scheduler=Main",
        "   Partition=main AllocNode:Sid=localhost:2216",
        "   ReqNodeList=(null) ExcNodeList=(null)",
        "   NodeList=",
        "   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*",
        "   TRES=cpu=1,mem=62.50G,node=1,billing=1",
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
        "   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0",
        "   Features=(null) DelayBoot=00:00:00",
        "   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
        "   Command=(null)",
        "   WorkDir=/var/tmp/anchor-slurm/refwork",
        "   StdErr=/dev/null",
        "   StdIn=/dev/null",
        "   StdOut=/dev/null",
        "   Power=",
        "   ",
        "",
        "",
    ]
)

NODE_N1 = "\n".join(
    [
        "NodeName=n1 Arch=x86_64 CoresPerSocket=16 ",
        "   CPUAlloc=10 CPUEfctv=16 CPUTot=16 CPULoad=0.84",
        "   AvailableFeatures=(null)",
        "   ActiveFeatures=(null)",
        "   Gres=gpu:8",
        "   NodeAddr=127.0.0.1 NodeHostName=vm Port=16901 Version=22.05.8",
        "   OS=Linux 6.18.44-fc-v509 #1 SMP PREEMPT_DYNAMIC @0 ",
        "   RealMemory=64000 AllocMem=0 FreeMem=23722 Sockets=1 Boards=1",
        "   State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A",
        "   Partitions=main ",
        "   BootTime=2026-11-25T17:48:52 SlurmdStartTime=2026-11-25T18:37:26",
        "   LastBusyTime=2026-11-25T18:37:44",
        "   CfgTRES=cpu=16,mem=62.50G,billing=16",
        "   AllocTRES=cpu=10",
        "   CapWatts=n/a",
        "   CurrentWatts=0 AveWatts=0",
        "   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
        "",
        "",
    ]
)

NODE_N2 = "\n".join(
    [
        "NodeName=n2 Arch=x86_64 CoresPerSocket=16 ",
        "   CPUAlloc=0 CPUEfctv=16 CPUTot=16 CPULoad=0.81",
        "   AvailableFeatures=(null)",
        "   ActiveFeatures=(null)",
        "   Gres=gpu:8",
        "   NodeAddr=127.0.0.1 NodeHostName=vm Port=16902 Version=22.05.8",
        "   OS=Linux 6.18.44-fc-v509 #1 SMP PREEMPT_DYNAMIC @0 ",
        "   RealMemory=64000 AllocMem=0 FreeMem=23725 Sockets=1 Boards=1",
        "   State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A",
        "   Partitions=main ",
        "   BootTime=2026-11-25T17:48:52 SlurmdStartTime=2026-11-25T18:37:26",
        "   LastBusyTime=2026-11-25T18:37:26",
        "   CfgTRES=cpu=16,mem=62.50G,billing=16",
        "   AllocTRES=",
        "   CapWatts=n/a",
        "   CurrentWatts=0 AveWatts=0",
        "   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
        "",
        "",
    ]
)

PARTITION_MAIN = "\n".join(
    [
        "PartitionName=main",
        "   AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL",
        "   AllocNodes=ALL Default=YES QoS=N/A",
        "   DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO",
        "   MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED",
        "   Nodes=n[1-4]",
        "   PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO",
        "   OverTimeLimit=NONE PreemptMode=OFF",
        "   State=UP TotalCPUs=64 TotalNodes=4 SelectTypeParameters=NONE",
        "   JobDefaults=(null)",
        "   DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
        "   TRES=cpu=64,mem=250G,node=4,billing=64",
        "",
        "",
    ]
)

JOB_ONELINER = "JobId=14 JobName=train-gpu UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901746 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:04 TimeLimit=00:30:00 TimeMin=N/A SubmitTime=2026-11-25T18:37:44 EligibleTime=2026-11-25T18:37:44 AccrueTime=2026-11-25T18:37:44 StartTime=2026-11-25T18:37:46 EndTime=2026-11-25T19:07:46 Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-25T18:37:46 Scheduler=Main Partition=main AllocNode:Sid=localhost:2216 ReqNodeList=(null) ExcNodeList=(null) NodeList=n1 BatchHost=n1 NumNodes=1 NumCPUs=2 NumTasks=1 CPUs/Task=2 ReqB:S:C:T=0:0:*:* TRES=cpu=2,node=1,billing=2 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=2 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/var/tmp/anchor-slurm/refwork StdErr=/dev/null StdIn=/dev/null StdOut=/dev/null Power= TresPerNode=gres:gpu:2 \n"
NODE_N1_ONELINER = "NodeName=n1 Arch=x86_64 CoresPerSocket=16  CPUAlloc=10 CPUEfctv=16 CPUTot=16 CPULoad=0.84 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:8 NodeAddr=127.0.0.1 NodeHostName=vm Port=16901 Version=22.05.8 OS=Linux 6.18.44-fc-v509 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=64000 AllocMem=0 FreeMem=23722 Sockets=1 Boards=1 State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=main  BootTime=2026-11-25T17:48:52 SlurmdStartTime=2026-11-25T18:37:26 LastBusyTime=2026-11-25T18:37:44 CfgTRES=cpu=16,mem=62.50G,billing=16 AllocTRES=cpu=10 CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s\n"


def reference_stdout(name: str) -> str:
    text = (REFERENCE / name).read_text()
    start = text.index("--- stdout ---\n") + len("--- stdout ---\n")
    return text[start : text.index("--- stderr ---\n")]


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="SLURM reference outputs not present")
def test_reference_copies_are_current() -> None:
    assert reference_stdout("scontrol_show_job_running.txt") == JOB_RUNNING
    assert reference_stdout("scontrol_show_job_pending.txt") == JOB_PENDING
    assert reference_stdout("scontrol_show_job_held.txt") == JOB_HELD
    assert reference_stdout("scontrol_show_job_oneliner.txt") == JOB_ONELINER
    nodes = reference_stdout("scontrol_show_node.txt")
    assert nodes.startswith(NODE_N1 + NODE_N2)
    assert reference_stdout("scontrol_show_node_n1_oneliner.txt") == NODE_N1_ONELINER
    assert reference_stdout("scontrol_show_partition.txt") == PARTITION_MAIN


# ---------------------------------------------------------------- factories


def make_job(**kw: object) -> pb.JobInfo:
    """Job 14 of the reference run (``sbatch -c 2 --gres=gpu:2 -t 30 --wrap ...``)."""
    spec = pb.JobSpec(
        name="train-gpu",
        workdir="/var/tmp/anchor-slurm/refwork",
        cpus_per_task=2,
        gpus_per_node=2,
        wrapped=True,
        submit_host="localhost",
        time_limit=1800,
    )
    job = pb.JobInfo(
        job_id=14,
        name="train-gpu",
        user="root",
        uid=0,
        gid=0,
        group="root",
        state="RUNNING",
        reason="None",
        partition="main",
        submit_time=ts("2026-11-25T18:37:44"),
        start_time=ts("2026-11-25T18:37:46"),
        time_limit=1800,
        nodes=["n1"],
        num_nodes=1,
        num_cpus=2,
        num_tasks=1,
        gpus=2,
        priority=4294901746,
        stdout_path="/dev/null",
        stderr_path="/dev/null",
        batch_host="n1",
        now=ts("2026-11-25T18:37:50"),
        spec=spec,
    )
    for key, value in kw.items():
        if key == "spec":
            job.spec.CopyFrom(value)  # type: ignore[arg-type]
        elif key == "nodes":
            job.nodes[:] = value  # type: ignore[assignment]
        else:
            setattr(job, key, value)
    return job


def make_pending() -> pb.JobInfo:
    """Job 20: ``sbatch -N 4 -n 4 --gres=gpu:8 --wrap ...`` waiting for Resources."""
    return pb.JobInfo(
        job_id=20,
        name="needs-all",
        user="root",
        uid=0,
        gid=0,
        group="root",
        state="PENDING",
        reason="Resources",
        partition="main",
        submit_time=ts("2026-11-25T18:37:47"),
        time_limit=-1,
        num_nodes=4,
        num_cpus=4,
        num_tasks=4,
        mem_mb=64000,
        gpus=32,
        priority=4294901743,
        stdout_path="/dev/null",
        stderr_path="/dev/null",
        now=ts("2026-11-25T18:37:50"),
        spec=pb.JobSpec(
            name="needs-all",
            workdir="/var/tmp/anchor-slurm/refwork",
            nodes_min=4,
            ntasks=4,
            gpus_per_node=8,
            wrapped=True,
            submit_host="localhost",
        ),
    )


def make_held() -> pb.JobInfo:
    """Job 22: ``sbatch -H --wrap ...``."""
    return pb.JobInfo(
        job_id=22,
        name="held",
        user="root",
        uid=0,
        gid=0,
        group="root",
        state="PENDING",
        reason="JobHeldUser",
        partition="main",
        submit_time=ts("2026-11-25T18:37:47"),
        time_limit=-1,
        num_nodes=1,
        num_cpus=1,
        num_tasks=1,
        mem_mb=64000,
        priority=0,
        stdout_path="/dev/null",
        stderr_path="/dev/null",
        spec=pb.JobSpec(
            name="held",
            workdir="/var/tmp/anchor-slurm/refwork",
            hold=True,
            wrapped=True,
            submit_host="localhost",
        ),
    )


def make_node(name: str = "n1", **kw: object) -> pb.NodeInfo:
    """A node of the reference cluster: 16 CPUs, 64000 MB, 8 GPUs, partition main."""
    node = pb.NodeInfo(
        name=name,
        state="IDLE",
        cpus=16,
        mem_mb=64000,
        gpus=[pb.GpuInfo(index=i, healthy=True) for i in range(8)],
        partitions=["main"],
        address="127.0.0.1",
        hostname="vm",
        version="22.05.8",
        arch="x86_64",
        os="Linux 6.18.44-fc-v509 #1 SMP PREEMPT_DYNAMIC @0",
        cpu_load=0.81,
        free_mem_mb=23725,
        boot_time=ts("2026-11-25T17:48:52"),
        registered_time=ts("2026-11-25T18:37:26"),
        connected=True,
    )
    for key, value in kw.items():
        if key in ("gpus", "job_ids"):
            field = getattr(node, key)
            del field[:]
            field.extend(value)
        else:
            setattr(node, key, value)
    return node


def busy_n1() -> pb.NodeInfo:
    return make_node(
        "n1", state="MIXED", cpus_alloc=10, gpus_alloc=2, cpu_load=0.84, free_mem_mb=23722,
        job_ids=[14],
    )  # fmt: skip


# ---------------------------------------------------------------- jobs

SID = ("AllocNode:Sid=localhost:2216", "AllocNode:Sid=localhost:0")


def test_running_job_matches_scontrol() -> None:
    expected = JOB_RUNNING.replace(*SID).replace(
        "TRES=cpu=2,node=1,billing=2", "TRES=cpu=2,node=1,billing=2,gres/gpu=2"
    )
    assert show.show_job(make_job(), now=ts("2026-11-25T18:37:50")) == expected


def test_run_time_comes_from_the_jobs_clock() -> None:
    out = show.show_job(make_job())  # JobInfo.now = start + 4 s
    assert "   RunTime=00:00:04 TimeLimit=00:30:00 TimeMin=N/A\n" in out


def test_oneliner_matches_scontrol_o() -> None:
    expected = JOB_ONELINER.replace(*SID).replace(
        "TRES=cpu=2,node=1,billing=2", "TRES=cpu=2,node=1,billing=2,gres/gpu=2"
    )
    assert show.show_job(make_job(), oneliner=True) == expected


def test_pending_job_matches_scontrol() -> None:
    expected = (
        JOB_PENDING.replace(*SID)
        .replace("TRES=cpu=4,mem=250G,node=4,billing=4", "TRES=cpu=4,mem=250G,node=4,billing=4,gres/gpu=32")
        # gsched keeps no scheduler-pass time per job: the last evaluation is shown as submit time.
        .replace("LastSchedEval=2026-11-25T18:37:49", "LastSchedEval=2026-11-25T18:37:47")
    )  # fmt: skip
    assert show.show_job(make_pending()) == expected


def test_held_job_matches_scontrol() -> None:
    assert show.show_job(make_held()) == JOB_HELD.replace(*SID)


def test_same_keys_line_by_line_as_reference() -> None:
    """Whatever the values, every line carries SLURM's keys in SLURM's order."""

    def keys(text: str) -> list[list[str]]:
        return [[w.split("=")[0] for w in line.split() if "=" in w] for line in text.split("\n")]

    assert keys(show.show_job(make_job())) == keys(JOB_RUNNING)
    assert keys(show.show_job(make_pending())) == keys(JOB_PENDING)
    assert keys(show.show_job(make_held())) == keys(JOB_HELD)


def test_finished_job_shows_exit_code_and_end_time() -> None:
    job = make_job(
        state="FAILED",
        reason="NonZeroExitCode",
        end_time=ts("2026-11-25T18:40:00"),
        exit_code=3,
        exit_signal=0,
        restart_count=1,
    )
    out = show.show_job(job)
    assert "   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n" in out
    assert "   Requeue=1 Restarts=1 BatchFlag=1 Reboot=0 ExitCode=3:0\n" in out
    assert "   RunTime=00:02:14 TimeLimit=00:30:00 TimeMin=N/A\n" in out
    assert "EndTime=2026-11-25T18:40:00 Deadline=N/A\n" in out


def test_batch_script_comment_account_and_per_job_gpus() -> None:
    spec = pb.JobSpec(
        workdir="/var/tmp/anchor-slurm/refwork",
        cpus_per_task=2,
        gpus=4,
        gpu_type="a100",
        comment="tuning run",
        nice=10,
        requeue=2,
        mem_per_cpu_mb=4096,
        exclusive=True,
        input="/data/in.txt",
        extra={"command": "/home/root/train.sh", "account": "ml", "qos": "high"},
    )
    job = make_job(spec=spec, gpus=4)
    out = show.show_job(job)
    assert "   Priority=4294901746 Nice=10 Account=ml QOS=high\n" in out
    assert "   Requeue=0 Restarts=0" in out
    assert "   MinCPUsNode=2 MinMemoryCPU=4G MinTmpDiskNode=0\n" in out
    assert "   OverSubscribe=NO Contiguous=0" in out
    assert "   Command=/home/root/train.sh\n" in out
    # SLURM prints Comment after WorkDir, with a trailing space.
    assert "   WorkDir=/var/tmp/anchor-slurm/refwork\n   Comment=tuning run \n   StdErr=" in out
    assert "   StdIn=/data/in.txt\n" in out
    assert out.endswith("   Power=\n   TresPerJob=gres:gpu:a100:4\n   \n\n")


def test_default_output_paths_when_not_resolved() -> None:
    job = make_job(stdout_path="", stderr_path="")
    out = show.show_job(job)
    assert "   StdErr=/var/tmp/anchor-slurm/refwork/slurm-14.out\n" in out
    assert "   StdOut=/var/tmp/anchor-slurm/refwork/slurm-14.out\n" in out


def test_details_show_the_gpu_indices_per_node() -> None:
    job = make_job(nodes=["n1", "n2"], num_nodes=2, num_cpus=4, gpus=4)
    job.gpu_alloc.add(node="n1", indices=[0, 1], cpus=2, mem_mb=0)
    job.gpu_alloc.add(node="n2", indices=[2, 3], cpus=2, mem_mb=1024)
    out = show.show_job(job, details=True)
    assert (
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*\n"
        "   JOB_GRES=gpu:4\n"
        "     Nodes=n1 CPU_IDs=N/A Mem=0 GRES=gpu:2(IDX:0-1)\n"
        "     Nodes=n2 CPU_IDs=N/A Mem=1024 GRES=gpu:2(IDX:2-3)\n"
        "   MinCPUsNode=2 "
    ) in out
    assert "JOB_GRES" not in show.show_job(job)


def test_multi_node_job_compresses_its_node_list() -> None:
    job = make_job(nodes=["n1", "n2", "n3"], num_nodes=3, num_cpus=6, gpus=6)
    out = show.show_job(job)
    assert "   NodeList=n[1-3]\n" in out
    assert "   TRES=cpu=6,node=3,billing=6,gres/gpu=6\n" in out


# ---------------------------------------------------------------- nodes

NODE_ADDR = (
    "NodeAddr=127.0.0.1 NodeHostName=vm Port=16901 Version=22.05.8",
    "NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8",
)


def test_busy_node_matches_scontrol() -> None:
    expected = (
        NODE_N1.replace(*NODE_ADDR)
        .replace("CfgTRES=cpu=16,mem=62.50G,billing=16", "CfgTRES=cpu=16,mem=62.50G,billing=16,gres/gpu=8")
        .replace("AllocTRES=cpu=10", "AllocTRES=cpu=10,gres/gpu=2")
    )  # fmt: skip
    assert show.show_node(busy_n1(), now=ts("2026-11-25T18:37:44")) == expected


def test_idle_node_matches_scontrol() -> None:
    expected = NODE_N2.replace("Port=16902 ", "").replace(
        "CfgTRES=cpu=16,mem=62.50G,billing=16", "CfgTRES=cpu=16,mem=62.50G,billing=16,gres/gpu=8"
    )
    assert show.show_node(make_node("n2")) == expected


def test_node_oneliner_matches_scontrol_o() -> None:
    expected = (
        NODE_N1_ONELINER.replace(*NODE_ADDR)
        .replace("CfgTRES=cpu=16,mem=62.50G,billing=16", "CfgTRES=cpu=16,mem=62.50G,billing=16,gres/gpu=8")
        .replace("AllocTRES=cpu=10", "AllocTRES=cpu=10,gres/gpu=2")
    )  # fmt: skip
    assert show.show_node(busy_n1(), oneliner=True, now=ts("2026-11-25T18:37:44")) == expected


def test_drained_node_with_a_sick_gpu() -> None:
    gpus = [pb.GpuInfo(index=i, type="a100", healthy=i != 3) for i in range(4)]
    gpus[3].health_reason = "XID 79 (fallen off the bus)"
    node = make_node(
        "g1",
        state="DRAINED",
        gpus=gpus,
        reason="bad gpu",
        reason_time=ts("2026-11-25T19:00:00"),
        reason_user="alice",
    )
    out = show.show_node(node)
    lines = out.split("\n")
    assert "   Gres=gpu:a100:4" in lines
    assert lines[lines.index("   Gres=gpu:a100:4") + 1] == "   GresDrain=gpu:a100:1(IDX:3)"
    assert (
        "   State=IDLE+DRAIN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A" in lines
    )
    assert out.endswith(
        "   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s\n"
        "   Reason=bad gpu [alice@2026-11-25T19:00:00]\n"
        "          gpu3: XID 79 (fallen off the bus)\n\n"
    )


def test_draining_node_state_and_details() -> None:
    node = make_node("n3", state="DRAINING", cpus_alloc=16, gpus_alloc=8, reason="maint")
    out = show.show_node(node, details=True)
    assert "   State=ALLOCATED+DRAIN " in out
    assert "   Gres=gpu:8\n   GresUsed=gpu:8\n" in out
    assert out.endswith("   Reason=maint\n\n")


def test_node_without_gpus_or_agent_info() -> None:
    node = pb.NodeInfo(name="c1", state="DOWN", cpus=4, mem_mb=1024, reason="Not responding")
    out = show.show_node(node)
    assert out.startswith("NodeName=c1 CoresPerSocket=4 \n   CPUAlloc=0 CPUEfctv=4 CPUTot=4")
    assert "   Gres=(null)\n   RealMemory=1024 " in out
    assert "   BootTime=None SlurmdStartTime=None\n" in out
    assert "   CfgTRES=cpu=4,mem=1024M,billing=4\n   AllocTRES=\n" in out
    assert out.endswith("   Reason=Not responding\n\n")


# ---------------------------------------------------------------- partitions


def test_partition_matches_scontrol() -> None:
    nodes = [make_node(f"n{i}") for i in range(1, 5)]
    part = pb.PartitionInfo(
        name="main", is_default=True, state="UP", nodes=[f"n{i}" for i in range(1, 5)],
        default_time=-1, max_time=-1, max_nodes=0,
    )  # fmt: skip
    expected = PARTITION_MAIN.replace(
        "TRES=cpu=64,mem=250G,node=4,billing=64",
        "TRES=cpu=64,mem=250G,node=4,billing=64,gres/gpu=32",
    )
    assert show.show_partition(part, nodes) == expected


def test_partition_limits_and_oneliner() -> None:
    part = pb.PartitionInfo(
        name="gpu", state="DRAIN", nodes=["g1"], default_time=3600, max_time=2 * 86400, max_nodes=2
    )
    out = show.show_partition(part, [make_node("g1"), make_node("other")], oneliner=True)
    assert out.startswith("PartitionName=gpu AllowGroups=ALL")
    assert " Default=NO " in out
    assert " DefaultTime=01:00:00 " in out
    assert " MaxNodes=2 MaxTime=2-00:00:00 " in out
    assert " State=DRAIN TotalCPUs=16 TotalNodes=1 " in out
    assert out.endswith(" TRES=cpu=16,mem=62.50G,node=1,billing=16,gres/gpu=8\n")
    assert out.count("\n") == 1


# ---------------------------------------------------------------- hostlists, config


def test_hostnames_and_hostlist_match_scontrol() -> None:
    assert show.show_hostnames("n[1-4]") == "n1\nn2\nn3\nn4\n"
    assert show.show_hostlist("n1,n2,n3,n4") == "n[1-4]\n"
    assert show.show_hostlist(["n1", "n2", "n4"]) == "n[1-2,4]\n"


def test_invalid_hostlist_raises_value_error() -> None:
    with pytest.raises(ValueError):
        show.show_hostnames("n[1-")


@pytest.mark.parametrize(
    ("mb", "exact", "text"),
    [
        (0, False, "0"),
        (1024, False, "1024M"),
        (64000, False, "62.50G"),
        (256000, False, "250G"),
        (4096, True, "4G"),
        (4000, True, "4000M"),
        (0, True, "0"),
    ],
)
def test_format_mem(mb: int, exact: bool, text: str) -> None:
    assert show.format_mem(mb, exact=exact) == text


def test_format_time_unknown_for_zero() -> None:
    assert show.format_time(0) == "Unknown"
    assert show.format_time(ts("2026-11-25T18:37:44")) == "2026-11-25T18:37:44"


def test_config_and_ping_lines() -> None:
    ping = pb.PingReply(
        version="0.1.0",
        now=ts("2026-11-25T18:37:50"),
        started=ts("2026-11-25T18:37:25"),
        cluster_name="anchor",
        auth_type="none",
    )
    out = show.show_config(ping, "10.0.0.5:6817", "/etc/gsched/gsched.toml")
    assert out == (
        "Configuration data as of 2026-11-25T18:37:50\n"
        "AuthType                = none\n"
        "BOOT_TIME               = 2026-11-25T18:37:25\n"
        "ClusterName             = anchor\n"
        "SlurmctldHost[0]        = 10.0.0.5\n"
        "SlurmctldPort           = 6817\n"
        "SLURM_CONF              = /etc/gsched/gsched.toml\n"
        "SLURM_VERSION           = 0.1.0\n"
        "\n"
        "Slurmctld(primary) at 10.0.0.5 is UP\n"
    )
    assert show.ping_line("[::1]:6817", up=False) == "Slurmctld(primary) at ::1 is DOWN\n"
    assert show.controller_host("ctl") == "ctl"
