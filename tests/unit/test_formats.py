"""gsched.cli.formats: squeue/sinfo tables and JSON, checked against SLURM 22.05's output.

Expected strings are copied from /work/shared/slurm-reference (squeue_*.txt,
sinfo_*.txt); the protos are what gsched's controller would send for the same
cluster (4 nodes n1..n4, 16 CPUs, 64000 MB and 8 GPUs each, one partition "main").
"""

from __future__ import annotations

import json
import random
import time

import pytest

from gsched.cli import formats
from gsched.protos import gsched_pb2 as pb

# the reference captures ran at this local time
NOW = time.mktime((2026, 11, 25, 18, 37, 50, 0, 0, -1))


def make_job(
    job_id: int,
    name: str = "wrap",
    state: str = "PENDING",
    *,
    reason: str = "None",
    nodes: tuple[str, ...] = (),
    num_nodes: int = 1,
    cpus: int = 1,
    gpus: int = 0,
    priority: int = 1000,
    started: float = 0,
    ended: float = 0,
    limit: int = -1,
    user: str = "root",
    partition: str = "main",
    **kw: object,
) -> pb.JobInfo:
    return pb.JobInfo(
        job_id=job_id,
        name=name,
        user=user,
        uid=0,
        group="root",
        state=state,
        reason=reason,
        partition=partition,
        submit_time=NOW - 60,
        start_time=started,
        end_time=ended,
        time_limit=limit,
        nodes=list(nodes),
        num_nodes=num_nodes,
        num_cpus=cpus,
        gpus=gpus,
        priority=priority,
        now=NOW,
        **kw,
    )


def reference_jobs() -> list[pb.JobInfo]:
    """squeue_default.txt's queue without the array jobs (gsched has no arrays yet)."""
    run = {"state": "RUNNING", "nodes": ("n1",), "started": NOW - 4}
    return [
        make_job(14, "train-gpu", cpus=2, gpus=2, priority=986, limit=1800, **run),
        make_job(15, "cpu-only", cpus=4, priority=985, **run),
        make_job(20, "needs-all", reason="Resources", num_nodes=4, cpus=4, gpus=32, priority=980),
        make_job(21, "after-big", reason="Priority", num_nodes=4, cpus=4, gpus=32, priority=979),
        make_job(22, "held", reason="JobHeldUser", priority=0),
        make_job(23, "dep", reason="Dependency", priority=977),
    ]


def squeue(
    jobs: list[pb.JobInfo], spec: str = formats.SQUEUE_DEFAULT_FORMAT, sort: str = "P,t,-p", **kw
) -> str:
    ordered = formats.sort_jobs(jobs, sort, NOW)
    return "\n".join(formats.render_jobs(ordered, formats.parse_format(spec), NOW, **kw)) + "\n"


# ---------------------------------------------------------------- squeue tables

SQUEUE_DEFAULT = """\
             JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)
                20      main needs-al     root PD       0:00      4 (Resources)
                21      main after-bi     root PD       0:00      4 (Priority)
                23      main      dep     root PD       0:00      1 (Dependency)
                22      main     held     root PD       0:00      1 (JobHeldUser)
                14      main train-gp     root  R       0:04      1 n1
                15      main cpu-only     root  R       0:04      1 n1
"""


def test_squeue_default_matches_slurm_whatever_the_input_order() -> None:
    jobs = reference_jobs()
    for seed in range(5):
        random.Random(seed).shuffle(jobs)
        assert squeue(jobs) == SQUEUE_DEFAULT


def test_squeue_noheader() -> None:
    assert squeue(reference_jobs(), header=False) == SQUEUE_DEFAULT.split("\n", 1)[1]


def test_squeue_long_columns_and_date_line() -> None:
    assert formats.date_line(NOW) == "Wed Nov 25 18:37:50 2026"
    assert (
        squeue(reference_jobs(), formats.SQUEUE_LONG_FORMAT)
        == """\
             JOBID PARTITION     NAME     USER    STATE       TIME TIME_LIMI  NODES NODELIST(REASON)
                20      main needs-al     root  PENDING       0:00 UNLIMITED      4 (Resources)
                21      main after-bi     root  PENDING       0:00 UNLIMITED      4 (Priority)
                23      main      dep     root  PENDING       0:00 UNLIMITED      1 (Dependency)
                22      main     held     root  PENDING       0:00 UNLIMITED      1 (JobHeldUser)
                14      main train-gp     root  RUNNING       0:04     30:00      1 n1
                15      main cpu-only     root  RUNNING       0:04 UNLIMITED      1 n1
"""
    )


def test_squeue_user_states_format_with_separators() -> None:
    # squeue -u root -t PENDING,RUNNING -o '%i|%j|%T|%r|%b|%C|%D|%N'
    assert (
        squeue(reference_jobs(), "%i|%j|%T|%r|%b|%C|%D|%N")
        == """\
JOBID|NAME|STATE|REASON|TRES_PER_NODE|CPUS|NODES|NODELIST
20|needs-all|PENDING|Resources|gres:gpu:8|4|4|
21|after-big|PENDING|Priority|gres:gpu:8|4|4|
23|dep|PENDING|Dependency|N/A|1|1|
22|held|PENDING|JobHeldUser|N/A|1|1|
14|train-gpu|RUNNING|None|gres:gpu:2|2|1|n1
15|cpu-only|RUNNING|None|N/A|4|1|n1
"""
    )


def test_squeue_start_view() -> None:
    pending = [j for j in reference_jobs() if j.state == "PENDING"]
    assert (
        squeue(pending, formats.SQUEUE_START_FORMAT, sort="S")
        == """\
             JOBID PARTITION     NAME     USER ST          START_TIME  NODES SCHEDNODES           NODELIST(REASON)
                20      main needs-al     root PD                 N/A      4 (null)               (Resources)
                21      main after-bi     root PD                 N/A      4 (null)               (Priority)
                22      main     held     root PD                 N/A      1 (null)               (JobHeldUser)
                23      main      dep     root PD                 N/A      1 (null)               (Dependency)
"""
    )


def test_squeue_all_states_sorted_by_compact_state_text_and_reasons_cut() -> None:
    # squeue -t all -o '%.10i %.12j %.2t %.12T %.10r': CA < CD < F < PD < R
    done = {"nodes": ("n1",), "started": NOW - 30, "ended": NOW - 20}
    jobs = [
        make_job(2, "envjob", "COMPLETED", priority=999, **done),
        make_job(4, "wrap", "CANCELLED", priority=997, **done),
        make_job(6, "wrap", "FAILED", reason="NonZeroExitCode", priority=995, **done),
        make_job(7, "wrap", "FAILED", reason="BadConstraints", priority=994),
        make_job(9, "wrap", "CANCELLED", reason="PartitionNodeLimit", priority=992),
        make_job(14, "train-gpu", "RUNNING", nodes=("n1",), started=NOW - 4, priority=986),
        make_job(20, "needs-all", reason="Resources", priority=980),
        make_job(22, "held", reason="JobHeldUser", priority=0),
    ]
    assert (
        squeue(jobs, "%.10i %.12j %.2t %.12T %.10r")
        == """\
     JOBID         NAME ST        STATE     REASON
         4         wrap CA    CANCELLED       None
         9         wrap CA    CANCELLED PartitionN
         2       envjob CD    COMPLETED       None
         6         wrap  F       FAILED NonZeroExi
         7         wrap  F       FAILED BadConstra
        20    needs-all PD      PENDING  Resources
        22         held PD      PENDING JobHeldUse
        14    train-gpu  R      RUNNING       None
"""
    )


def test_squeue_reason_list_per_state() -> None:
    jobs = [
        make_job(
            1, state="TIMEOUT", reason="TimeLimit", nodes=("n1",), started=NOW - 9, ended=NOW - 1
        ),
        make_job(
            2, state="COMPLETED", nodes=("n2", "n3", "n4"), num_nodes=3, started=NOW - 9, ended=NOW
        ),
        make_job(3, state="COMPLETING", reason="None", nodes=("n1",), started=NOW - 9, ended=NOW),
        make_job(
            4,
            state="OUT_OF_MEMORY",
            reason="OutOfMemory",
            nodes=("n1",),
            started=NOW - 9,
            ended=NOW,
        ),
    ]
    out = squeue(jobs, "%i %t %R", sort="i").splitlines()
    assert out == [
        "JOBID ST NODELIST(REASON)",
        "1 TO (TimeLimit)",
        "2 CD n[2-4]",
        "3 CG n1",
        "4 OOM (OutOfMemory)",
    ]


def test_squeue_node_list_is_never_cut_but_reason_is() -> None:
    jobs = [
        make_job(1, "a", "RUNNING", nodes=("gpu-node-01", "gpu-node-07"), num_nodes=2, started=NOW),
        make_job(2, "b", reason="ReqNodeNotAvail"),
    ]
    assert squeue(jobs, "%.3i %.6R|", sort="i").splitlines() == [
        "JOB NODELIST(REASON)|",
        "  1 gpu-node-[01,07]|",
        "  2 (ReqNo|",
    ]


# ---------------------------------------------------------------- format strings


def test_parse_format_fields_prefix_and_literals() -> None:
    fmt = formats.parse_format("id=%.5i|%-5j%%x %10u%")
    assert fmt.prefix == "id="
    assert fmt.fields == (
        formats.Field("i", 5, True, "|", "%.5i"),
        formats.Field("-", 0, False, "5j%x ", "%-"),
        formats.Field("u", 10, False, "", "%10u"),
    )
    assert formats.unknown_codes(fmt) == ["-"]


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        ("%5i|", "14   |"),  # left-justified, padded
        ("%.5i|", "   14|"),  # right-justified
        ("%i|", "14|"),  # no width: as is
        ("%.3j|", "tra|"),  # cut to the width, keeping the start (like squeue)
        ("%3j|", "tra|"),
        ("%.2i", "14"),
        ("%.1i", "1"),
        ("<%j>", "<train-gpu>"),  # literal text around
        ("%j%%", "train-gpu%"),  # %% is one %
        ("%-5i", "%-5i"),  # unknown type echoed
        ("%z", "*:*:*"),
        ("x%", "x"),  # dangling %
        ("%.4M|%.4l", "0:04|30:00"),  # times are never cut
        ("%.10L", "     29:56"),
    ],
)
def test_format_widths_and_edges(spec: str, line: str) -> None:
    job = reference_jobs()[0]
    assert formats.render_jobs([job], formats.parse_format(spec), NOW, header=False) == [line]


def test_header_is_cut_to_the_width_except_node_lists() -> None:
    lines = formats.render_jobs([], formats.parse_format("%.4l %.4R %.4N %2t"), NOW)
    assert lines == ["TIME NODELIST(REASON) NODELIST ST"]


def test_auto_width() -> None:
    jobs = reference_jobs()
    assert formats.render_jobs(jobs[:2], formats.parse_format("%#j|%.#P|"), NOW) == [
        "NAME     |PARTITION|",
        "train-gpu|     main|",
        "cpu-only |     main|",
    ]


def test_squeue_long_format_option() -> None:
    fmt = formats.parse_squeue_long_format("jobid:.6,name:12 ,statecompact,bogus")
    assert [f.code for f in fmt.fields] == ["A", "j", "t", "?bogus"]
    assert formats.unknown_codes(fmt) == ["bogus"]
    lines = formats.render_jobs(reference_jobs()[:1], fmt, NOW)
    assert lines[1] == "    14train-gpu    R                   %bogus"


def test_times_in_tables() -> None:
    day = 86400
    jobs = [
        make_job(
            1, state="RUNNING", nodes=("n1",), started=NOW - (3600 + 5 * 60 + 7), limit=2 * 3600
        ),
        make_job(2, state="RUNNING", nodes=("n1",), started=NOW - (2 * day + 3600 + 5 * 60 + 7)),
        make_job(3, state="COMPLETED", nodes=("n1",), started=NOW - 100, ended=NOW - 40, limit=60),
        make_job(4, state="RUNNING", nodes=("n1",), started=NOW - 90, limit=60),
        make_job(5),
    ]
    lines = formats.render_jobs(jobs, formats.parse_format("%i %M %l %L %S %e"), NOW, header=False)
    start1 = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(NOW - 3907))
    end1 = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(NOW - 3907 + 7200))
    assert lines[0] == f"1 1:05:07 2:00:00 54:53 {start1} {end1}"
    assert lines[1].startswith("2 2-01:05:07 UNLIMITED UNLIMITED ") and lines[1].endswith(" NONE")
    assert lines[2].split()[1:4] == ["1:00", "1:00", "0:00"]
    assert lines[3].split()[1:4] == ["1:30", "1:00", "INVALID"]  # overran its limit
    assert lines[4] == "5 0:00 UNLIMITED UNLIMITED N/A N/A"


def test_memory_priority_and_spec_columns() -> None:
    job = make_job(
        7,
        mem_mb=2048,
        spec=pb.JobSpec(workdir="/w", comment="hi", gpus_per_node=2, gpu_type="a100"),
    )
    plain = make_job(8, mem_mb=64000)
    fmt = formats.parse_format("%m|%Q|%Z|%k|%b|%a")
    assert formats.render_jobs([job, plain], fmt, NOW, header=False) == [
        "2G|1000|/w|hi|gres:gpu:a100:2|(null)",
        "64000M|1000|(null)|(null)|N/A|(null)",
    ]
    assert formats.needs_spec(fmt) and not formats.needs_spec(formats.parse_format("%i %b"))


# ---------------------------------------------------------------- states and sorting


def test_job_states() -> None:
    assert formats.parse_job_states("pd,R,running,CG") == (
        ["PENDING", "RUNNING", "COMPLETING"],
        False,
    )
    assert formats.parse_job_states("ALL") == ([], True)
    assert formats.job_state_code("OUT_OF_MEMORY") == "OOM"
    with pytest.raises(formats.OptionError, match=r"^Invalid job state specified: bogus$"):
        formats.parse_job_states("PD,bogus")


def test_sort_spec() -> None:
    assert formats.parse_sort("P,t,-p") == [("P", False), ("t", False), ("p", True)]
    assert formats.parse_sort("-i,+u") == [("i", True), ("u", False)]
    with pytest.raises(formats.OptionError, match="Invalid sort specification: #"):
        formats.parse_sort("i,#")
    jobs = reference_jobs()
    assert [j.job_id for j in formats.sort_jobs(jobs, "-i", NOW)] == [23, 22, 21, 20, 15, 14]
    assert [j.job_id for j in formats.sort_jobs(jobs, "j", NOW)][:2] == [21, 15]


def test_ties_keep_the_controller_order_and_latest_start_first() -> None:
    a = make_job(1, state="RUNNING", nodes=("n1",), started=NOW - 10)
    b = make_job(2, state="RUNNING", nodes=("n1",), started=NOW - 5)
    c = make_job(3, state="RUNNING", nodes=("n1",), started=NOW - 5)
    assert [j.job_id for j in formats.sort_jobs([a, b, c], "P,t,-p", NOW)] == [2, 3, 1]


# ---------------------------------------------------------------- squeue --json


def test_squeue_json_shape() -> None:
    job = make_job(
        14,
        "train-gpu",
        "RUNNING",
        nodes=("n1",),
        cpus=2,
        gpus=2,
        limit=1800,
        started=NOW - 4,
        batch_host="n1",
        stdout_path="/dev/null",
        gpu_alloc=[pb.NodeGpus(node="n1", indices=[0, 1], cpus=2)],
        spec=pb.JobSpec(workdir="/var/tmp/anchor-slurm/refwork", gpus_per_node=2),
    )
    text = formats.jobs_json([job], NOW, cluster="anchor")
    assert '"type": "openapi\\/v0.0.38"' in text  # slashes escaped like SLURM
    doc = json.loads(text)
    assert doc["meta"]["Slurm"]["release"] == "22.05.8"
    assert doc["errors"] == []
    j = doc["jobs"][0]
    assert {
        k: j[k] for k in ("job_id", "name", "user_name", "job_state", "state_reason", "partition")
    } == {
        "job_id": 14,
        "name": "train-gpu",
        "user_name": "root",
        "job_state": "RUNNING",
        "state_reason": "None",
        "partition": "main",
    }
    assert (j["nodes"], j["node_count"], j["cpus"], j["batch_host"], j["cluster"]) == (
        "n1",
        1,
        2,
        "n1",
        "anchor",
    )
    assert j["time_limit"] == 30
    assert j["start_time"] == int(NOW - 4) and j["end_time"] == int(NOW - 4 + 1800)
    assert j["submit_time"] == int(NOW - 60)
    assert j["tres_per_node"] == "gres:gpu:2"
    assert j["gres_detail"] == ["gpu:2(IDX:0-1)"]
    assert j["tres_alloc_str"] == "cpu=2,node=1,billing=2,gres/gpu=2"
    assert (j["exit_code"], j["restart_cnt"], j["requeue"]) == (0, 0, True)
    assert j["current_working_directory"] == "/var/tmp/anchor-slurm/refwork"
    assert (j["standard_output"], j["standard_error"], j["standard_input"]) == ("/dev/null",) * 3
    assert j["job_resources"]["allocated_nodes"][0]["nodename"] == "n1"
    assert len(j["job_resources"]["allocated_nodes"][0]["sockets"]["0"]["cores"]) == 2

    failed = make_job(9, state="FAILED", exit_code=1, exit_signal=0)
    pend = json.loads(formats.jobs_json([failed, make_job(10)], NOW))["jobs"]
    assert pend[0]["exit_code"] == 256  # raw wait status, as SLURM
    assert pend[1]["time_limit"] == 4294967295 and pend[1]["job_resources"] == {}
    assert pend[1]["tres_alloc_str"] == "" and pend[1]["tres_per_node"] == ""


# ---------------------------------------------------------------- sinfo


def make_node(
    name: str,
    state: str = "IDLE",
    *,
    alloc: int = 0,
    gpus_alloc: int = 0,
    gpu_type: str = "",
    partitions: tuple[str, ...] = ("main",),
    connected: bool = True,
    **kw: object,
) -> pb.NodeInfo:
    return pb.NodeInfo(
        name=name,
        state=state,
        cpus=16,
        cpus_alloc=alloc,
        mem_mb=64000,
        gpus=[pb.GpuInfo(index=i, type=gpu_type) for i in range(8)],
        gpus_alloc=gpus_alloc,
        partitions=list(partitions),
        connected=connected,
        **kw,
    )


MAIN = pb.PartitionInfo(
    name="main",
    is_default=True,
    state="UP",
    nodes=["n1", "n2", "n3", "n4"],
    default_time=-1,
    max_time=-1,
)


def cluster(n4: pb.NodeInfo | None = None) -> pb.ListNodesReply:
    nodes = [make_node("n1", "MIXED", alloc=10, gpus_alloc=2), make_node("n2"), make_node("n3")]
    nodes.append(n4 or make_node("n4"))
    random.Random(1).shuffle(nodes)
    return pb.ListNodesReply(nodes=nodes, partitions=[MAIN], now=NOW)


def drained_n4() -> pb.NodeInfo:
    return make_node(
        "n4", "DRAINED", reason="maintenance test", reason_time=NOW - 1, reason_user="root"
    )


def sinfo(reply: pb.ListNodesReply, spec: str, **kw) -> str:
    return "\n".join(formats.render_nodes(reply, formats.parse_format(spec), **kw)) + "\n"


def test_sinfo_default() -> None:
    assert (
        sinfo(cluster(), formats.SINFO_DEFAULT_FORMAT)
        == """\
PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST
main*        up   infinite      1    mix n1
main*        up   infinite      3   idle n[2-4]
"""
    )


def test_sinfo_with_drain() -> None:
    assert (
        sinfo(cluster(drained_n4()), formats.SINFO_DEFAULT_FORMAT)
        == """\
PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST
main*        up   infinite      1  drain n4
main*        up   infinite      1    mix n1
main*        up   infinite      2   idle n[2-3]
"""
    )


def test_sinfo_summarize() -> None:
    assert (
        sinfo(cluster(), formats.SINFO_SUMMARIZE_FORMAT, mode="summarize")
        == """\
PARTITION AVAIL  TIMELIMIT   NODES(A/I/O/T) NODELIST
main*        up   infinite          1/3/0/4 n[1-4]
"""
    )


def test_sinfo_reasons() -> None:
    down = frozenset({"DOWN", "DRAINED", "DRAINING"})
    assert (
        sinfo(cluster(drained_n4()), formats.SINFO_REASONS_FORMAT, mode="reasons", states=down)
        == """\
REASON               USER      TIMESTAMP           NODELIST
maintenance test     root      2026-11-25T18:37:49 n4
"""
    )


# sinfo -N -l (sinfo_N_l_with_drain.txt); gsched appends GRES and GRES_USED after REASON
SINFO_N_L = """\
NODELIST   NODES PARTITION       STATE CPUS    S:C:T MEMORY TMP_DISK WEIGHT AVAIL_FE REASON              $
n1             1     main*       mixed 16     1:16:1  64000        0      1   (null) none                $
n2             1     main*        idle 16     1:16:1  64000        0      1   (null) none                $
n3             1     main*        idle 16     1:16:1  64000        0      1   (null) none                $
n4             1     main*     drained 16     1:16:1  64000        0      1   (null) maintenance test    $
""".replace("$", "")


def test_sinfo_node_long_keeps_slurm_columns_then_gpus() -> None:
    out = sinfo(cluster(drained_n4()), formats.SINFO_NODE_LONG_FORMAT, mode="node").splitlines()
    slurm = SINFO_N_L.splitlines()
    assert [line[: len(ref)] for line, ref in zip(out, slurm, strict=True)] == slurm
    assert [line[len(ref) :] for line, ref in zip(out, slurm, strict=True)] == [
        " GRES  GRES_USED",
        " gpu:8 gpu:2",
        " gpu:8 gpu:0",
        " gpu:8 gpu:0",
        " gpu:8 gpu:0",
    ]


def test_sinfo_gres_types_and_no_gpus() -> None:
    typed = make_node(
        "g1", "ALLOCATED", alloc=16, gpus_alloc=8, gpu_type="a100", partitions=("gpu",)
    )
    cpu = pb.NodeInfo(
        name="c1", state="IDLE", cpus=4, mem_mb=1000, partitions=["gpu"], connected=True
    )
    part = pb.PartitionInfo(
        name="gpu", state="UP", nodes=["g1", "c1"], max_time=3600, default_time=-1
    )
    reply = pb.ListNodesReply(nodes=[typed, cpu], partitions=[part], now=NOW)
    assert (
        sinfo(reply, "%N %G %K %t %l", mode="node")
        == """\
NODELIST GRES GRES_USED STATE TIMELIMIT
c1 (null) (null) idle 01:00:00
g1 gpu:a100:8 gpu:a100:8 alloc 01:00:00
"""
    )


def test_sinfo_node_short_and_not_responding() -> None:
    reply = cluster(make_node("n4", "DOWN", connected=False))
    assert (
        sinfo(reply, formats.SINFO_NODE_FORMAT, mode="node")
        == """\
NODELIST   NODES PARTITION STATE 
n1             1     main* mix   
n2             1     main* idle  
n3             1     main* idle  
n4             1     main* down* 
"""
    )


def test_sinfo_filters() -> None:
    reply = cluster(drained_n4())
    spec = "%P %t %N"
    states = formats.parse_node_states("drain,mix")
    assert (
        sinfo(reply, spec, states=states)
        == "PARTITION STATE NODELIST\nmain* drain n4\nmain* mix n1\n"
    )
    assert sinfo(reply, spec, nodes=["n2", "n3"], header=False) == "main* idle n[2-3]\n"
    assert sinfo(reply, spec, partitions=["nope"]) == "PARTITION STATE NODELIST\n"


def test_sinfo_cpu_and_node_counts() -> None:
    reply = cluster(drained_n4())
    assert (
        sinfo(reply, "%C %F %A %D", mode="summarize", header=False) == "10/38/16/64 1/2/1/4 1/2 4\n"
    )


def test_node_state_names() -> None:
    assert formats.node_state_names(make_node("x", "DRAINING")) == ("drng", "draining")
    assert formats.node_state_names(make_node("x", "UNKNOWN", connected=False)) == (
        "unk*",
        "unknown*",
    )
    assert formats.parse_node_states("idle,DRAIN") == {"IDLE", "DRAINED", "DRAINING"}
    assert formats.parse_node_states("al,drng") == {"ALLOCATED", "DRAINING"}
    assert formats.parse_node_states("all") is None
    with pytest.raises(formats.OptionError, match='Bad state string: "sleepy"'):
        formats.parse_node_states("sleepy")


def test_sinfo_json() -> None:
    doc = json.loads(formats.nodes_json(cluster(drained_n4())))
    assert doc["meta"]["plugin"]["type"] == "openapi/v0.0.38"
    n1, n4 = doc["nodes"][0], doc["nodes"][3]
    assert (n1["name"], n1["state"], n1["state_flags"]) == ("n1", "mixed", [])
    assert (n1["gres"], n1["gres_used"], n1["alloc_cpus"], n1["idle_cpus"]) == (
        "gpu:8",
        "gpu:2",
        10,
        6,
    )
    assert (n1["real_memory"], n1["cpus"], n1["partitions"]) == (64000, 16, ["main"])
    assert (n4["state"], n4["state_flags"], n4["reason"]) == ("idle", ["DRAIN"], "maintenance test")
    assert doc["partitions"][0]["name"] == "main" and doc["partitions"][0]["nodes"] == "n[1-4]"


def test_partition_without_nodes() -> None:
    empty = pb.PartitionInfo(name="spare", state="DOWN", max_time=-1, default_time=-1)
    reply = pb.ListNodesReply(nodes=list(cluster().nodes), partitions=[MAIN, empty], now=NOW)
    lines = sinfo(reply, formats.SINFO_DEFAULT_FORMAT).splitlines()
    assert lines[-1] == "spare      down   infinite      0    n/a "


def test_partitions_derived_when_the_controller_sends_none() -> None:
    reply = pb.ListNodesReply(nodes=list(cluster().nodes), now=NOW)
    assert (
        sinfo(reply, formats.SINFO_DEFAULT_FORMAT).splitlines()[1]
        == "main*        up   infinite      1    mix n1"
    )


# ---------------------------------------------------------------- argv


def test_normalize_argv_glues_values_that_look_like_options() -> None:
    takes = {"-S", "--sort", "-o", "--format"}
    longs = ["--sort", "--format", "--start"]
    assert formats.normalize_argv(["-S", "-p", "-h"], takes, longs) == ["-S-p", "-h"]
    assert formats.normalize_argv(["--sort", "-p,i"], takes, longs) == ["--sort=-p,i"]
    assert formats.normalize_argv(["--so", "-p"], takes, longs) == ["--sort=-p"]
    assert formats.normalize_argv(["-hS", "-t"], takes, longs) == ["-hS-t"]
    assert formats.normalize_argv(["-o%i", "--", "-S"], takes, longs) == ["-o%i", "--", "-S"]
    # ambiguous: left for argparse to report
    assert formats.normalize_argv(["--st"], takes, longs) == ["--st"]


def test_render_5000_jobs_is_fast() -> None:
    jobs = [make_job(i, f"job{i}", reason="Priority", priority=5000 - i) for i in range(5000)]
    reply = pb.ListJobsReply(jobs=jobs, now=NOW)
    t0 = time.perf_counter()
    ordered = formats.sort_jobs(reply.jobs, "P,t,-p", NOW)
    lines = formats.render_jobs(ordered, formats.parse_format(formats.SQUEUE_DEFAULT_FORMAT), NOW)
    elapsed = time.perf_counter() - t0
    assert len(lines) == 5001
    assert elapsed < 0.25, elapsed  # ~20 ms here; generous for slow CI
