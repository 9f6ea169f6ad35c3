"""agent/cgroups.py and the wrapper's cgroup side, on a stand-in tree and on the real one."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from gsched.agent import wrap
from gsched.agent.cgroups import CgroupTree, find_mount
from gsched.common.config import ConfigError, from_dict


def test_find_mount_picks_the_cgroup2_line(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
    )
    assert find_mount(str(mounts)) == "/sys/fs/cgroup/unified"
    mounts.write_text("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    assert find_mount(str(mounts)) is None
    assert find_mount(str(tmp_path / "missing")) is None


def test_setup_says_why_there_is_no_confinement(tmp_path: Path) -> None:
    tree, what = CgroupTree.setup("gsched", "n1", enabled=False)
    assert tree is None and what == "none (cgroups disabled in the configuration)"
    if os.geteuid() == 0:
        (tmp_path / "file").write_text("")
        tree, what = CgroupTree.setup("gsched", "n1", mount=str(tmp_path / "file"))
        assert tree is None and what.startswith("none (cannot create")


def _fake_mount(tmp_path: Path, controllers: str) -> Path:
    mount = tmp_path / "cg"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text(controllers + "\n")
    (mount / "cgroup.subtree_control").write_text("")
    return mount


@pytest.mark.skipif(os.geteuid() != 0, reason="setup needs root")
def test_limits_written_from_the_allocation(tmp_path: Path) -> None:
    mount = _fake_mount(tmp_path, "cpuset cpu io memory pids")
    tree, what = CgroupTree.setup("gsched/site", "node7", mount=str(mount))
    assert tree is not None
    assert what == "cgroup2:memory,cpu,pids"
    assert tree.base == mount / "gsched" / "site" / "node7"
    # every level from the mount down enables the controllers for its children
    for d in (mount, mount / "gsched", mount / "gsched" / "site", tree.base):
        assert (d / "cgroup.subtree_control").read_text() in ("+memory", "+cpu", "+pids")
    job = tree.job_path(12, 3)
    job.mkdir()
    (job / "memory.swap.max").write_text("max\n")
    assert tree.create_job(12, 3, cpus=2, mem_mb=512) == job
    assert (job / "memory.max").read_text() == str(512 * 1024 * 1024)
    assert (job / "memory.swap.max").read_text() == "0"
    assert (job / "cpu.max").read_text() == "200000 100000"
    # no limit asked: nothing written
    other = tree.create_job(13, 0, cpus=0, mem_mb=0)
    assert not (other / "memory.max").exists() and not (other / "cpu.max").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="setup needs root")
def test_without_controllers_only_tracking(tmp_path: Path) -> None:
    mount = _fake_mount(tmp_path, "hugetlb")
    tree, what = CgroupTree.setup("gsched", "n1", mount=str(mount))
    assert tree is not None and what == "cgroup2:track"
    job = tree.create_job(1, 0, cpus=4, mem_mb=100)
    assert not (job / "memory.max").exists() and not (job / "cpu.max").exists()


def test_oom_kills_read_from_memory_events(tmp_path: Path) -> None:
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    assert CgroupTree.oom_kills(tmp_path) == 2
    (tmp_path / "memory.events").write_text("oom 0\noom_kill 0\n")
    assert CgroupTree.oom_kills(tmp_path) == 0
    assert CgroupTree.oom_kills(tmp_path / "gone") == 0


def test_wrapper_records_oom_unless_cancelled(tmp_path: Path) -> None:
    cg = tmp_path / "job"
    cg.mkdir()
    (cg / "memory.events").write_text("oom 1\noom_kill 1\n")
    err = tmp_path / "err"
    w = wrap.Wrapper(str(tmp_path))
    w.cgroup = str(cg)
    w.launch = {"job_id": 9}
    w.err_fd = os.open(err, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        w.check_oom()
    finally:
        os.close(w.err_fd)
    assert w.reason == "oom"
    assert "oom-kill event(s) in StepId=9.batch" in err.read_text()
    # a cancelled (or timed out) job keeps its reason
    w2 = wrap.Wrapper(str(tmp_path))
    w2.cgroup, w2.reason = str(cg), "timeout"
    w2.check_oom()
    assert w2.reason == "timeout"
    # no OOM kill: no reason
    (cg / "memory.events").write_text("oom 0\noom_kill 0\n")
    w3 = wrap.Wrapper(str(tmp_path))
    w3.cgroup = str(cg)
    w3.check_oom()
    assert w3.reason == ""


def test_config_keys_are_validated() -> None:
    cfg = from_dict({"agent": {"cgroup_root": "lab/gsched", "cgroups": False}})
    assert cfg.agent.cgroup_root == "lab/gsched" and cfg.agent.cgroups is False
    assert from_dict({}).agent.gpu_device_path == "/dev/nvidia{index}"
    assert from_dict({"agent": {"gpu_device_path": ""}}).agent.gpu_device_path == ""
    for bad in (
        {"cgroup_root": "../escape"},
        {"cgroup_root": "/"},
        {"cgroup_root": ""},
        {"cgroups": 1},
        {"allow_root_jobs": "no"},
        {"gpu_device_path": "/dev/nvidia0"},
        {"gpu_device_path": "dev/nvidia{index}"},
    ):
        with pytest.raises(ConfigError, match=r"\[agent\]"):
            from_dict({"agent": bad})


def _real_tree() -> tuple[CgroupTree, str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create cgroups")
    if find_mount() is None:
        pytest.skip("no cgroup2 filesystem mounted here")
    tree, what = CgroupTree.setup(f"gsched-test-{uuid.uuid4().hex[:8]}", "n1")
    if tree is None:
        pytest.skip(f"cgroups unavailable: {what}")
    return tree, what


def test_real_cgroup_tracks_and_kills_a_process_tree() -> None:
    tree, _ = _real_tree()
    job = tree.create_job(1, 0, cpus=1, mem_mb=0)
    try:
        # a shell joins the cgroup, then starts a session-leaving grandchild
        p = subprocess.Popen(
            ["sh", "-c", f"echo $$ > {job}/cgroup.procs; setsid sleep 300 & exec sleep 300"],
        )
        deadline = time.monotonic() + 10
        while len(CgroupTree.procs(job)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = CgroupTree.procs(job)
        assert p.pid in pids and len(pids) == 2
        CgroupTree.kill(job)
        p.wait(timeout=10)
        assert CgroupTree.remove(job)
        assert not job.exists()
    finally:
        CgroupTree.remove(job)
        tree.release()
    assert not tree.root.exists()


def test_an_oom_exit_record_ends_the_job_out_of_memory() -> None:
    """What the wrapper records after an OOM kill (reason "oom") in the controller's core."""
    from gsched.controller.cluster import Caller, Cluster, NodeReport
    from gsched.controller.jobs import Job, JobState, Request
    from gsched.controller.scheduler import Partition

    c = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    c.node_hello("node1", NodeReport(4, 8000, (), {}), [], [], 0.0)
    alice = Caller(uid=1000, user="alice")
    job = c.submit(Job(job_id=0, user=alice.user, uid=alice.uid, gid=alice.uid, group="alice",
                       name="hog", request=Request(mem_per_node_mb=64), spec=b"",
                       submit_time=0.0), 0.0)
    c.schedule(0.0)
    assert job.state == JobState.RUNNING
    c.job_exited("node1", job.job_id, 0, 0, 9, "oom", 1.0)
    assert (job.state, job.reason) == (JobState.OUT_OF_MEMORY, "OutOfMemory")
    c.validate()
