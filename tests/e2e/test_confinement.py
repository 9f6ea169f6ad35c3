"""Jobs confined to what they asked for: real users, real cgroups, real processes.

Needs root (the CI machine runs the tests as root). Test users are created with
``useradd`` and removed afterwards. Each test says with ``pytest.skip`` when the
host lacks what it checks (for example a cgroup2 mount with the memory
controller: on a hybrid host the controllers belong to cgroup v1).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import BIN, LocalCluster, start_cluster, stop_cluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (test users, cgroups)")


def _stop(agent: subprocess.Popen[bytes]) -> None:
    """End an agent this test started: SIGTERM, then SIGKILL after 15 s."""
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout=15)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()

def _retry(cmd: list[str]) -> None:
    # Other test runs on this machine may hold the passwd lock for a moment.
    for _ in range(50):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{cmd}: {p.stderr}")


@pytest.fixture
def users() -> Iterator[dict[str, object]]:
    """Two test users; the first is also in a supplementary group."""
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed: cannot create test users")
    tag = f"{os.getpid() % 100000}"
    group, alice, bob = f"gsg{tag}", f"gsa{tag}", f"gsb{tag}"
    _retry(["groupadd", group])
    try:
        _retry(["useradd", "-M", "-s", "/bin/sh", "-G", group, alice])
        _retry(["useradd", "-M", "-s", "/bin/sh", bob])
        yield {
            "alice": pwd.getpwnam(alice),
            "bob": pwd.getpwnam(bob),
            "group": grp.getgrnam(group),
        }
    finally:
        for name in (alice, bob):
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    # Not pytest's tmp_path (0700 root): the test users must reach the config.
    tmp = Path(tempfile.mkdtemp(prefix="gsched-conf-"))
    tmp.chmod(0o755)
    c = start_cluster(tmp, agents=1, gpus=4, cpus=4)
    c.state.chmod(0o755)
    c.workdir.chmod(0o1777)
    try:
        yield c
    finally:
        stop_cluster(c)
        shutil.rmtree(tmp, ignore_errors=True)


def _as(user: pwd.struct_passwd) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]


def _submit_as(c: LocalCluster, user: pwd.struct_passwd, *args: str, cwd: Path) -> int:
    env = dict(c.env, HOME="/", USER=user.pw_name, LOGNAME=user.pw_name, LEAKME="secret")
    p = subprocess.run(
        [*_as(user), str(BIN / "gsub"), "--parsable", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=cwd,
    )
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip().split(";")[0])


def _confinement(c: LocalCluster) -> str:
    r = c.run("ginfo", "-h", "-N", "-o", "%k")
    assert r.rc == 0, r.err
    return r.out.strip()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b") ")[1][:1] != b"Z"
    except OSError:
        return False


def _wait_file(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


# ---------------------------------------------------------------- identity


def test_job_runs_as_submitter_with_groups_and_creates_files_as_user(
    cluster: LocalCluster, users: dict[str, object]
) -> None:
    alice = users["alice"]
    group = users["group"]
    assert isinstance(alice, pwd.struct_passwd) and isinstance(group, grp.struct_group)
    home = cluster.workdir / "alice"
    home.mkdir()
    os.chown(home, alice.pw_uid, alice.pw_gid)
    script = "#!/bin/sh\nid -u; id -g; id -G\n"
    job = _submit_as(cluster, alice, "-o", "out.txt", "--wrap", script.split("\n", 1)[1], cwd=home)
    assert cluster.wait_state(job, "COMPLETED") == "COMPLETED"
    out = home / "out.txt"
    lines = out.read_text().split("\n")
    assert lines[0] == str(alice.pw_uid)
    assert lines[1] == str(alice.pw_gid)
    assert str(group.gr_gid) in lines[2].split()  # supplementary group from initgroups
    assert "0" not in lines[2].split()  # nothing of root's
    st = out.stat()
    assert (st.st_uid, st.st_gid) == (alice.pw_uid, alice.pw_gid)
    # --export=NONE: the user's own passwd entry, nothing of the submitter's
    # environment; the job runs in the submit directory
    job = _submit_as(cluster, alice, "-o", "env.txt", "--export=NONE", "--wrap",
                     "echo user=$USER home=$HOME leak=$LEAKME; pwd", cwd=home)
    assert cluster.wait_state(job, "COMPLETED") == "COMPLETED"
    env_out = (home / "env.txt").read_text().split("\n")
    assert env_out[0] == f"user={alice.pw_name} home={alice.pw_dir} leak="
    assert env_out[1] == str(home)


def test_output_where_the_user_cannot_write_fails_and_writes_nothing(
    cluster: LocalCluster, users: dict[str, object]
) -> None:
    alice = users["alice"]
    assert isinstance(alice, pwd.struct_passwd)
    private = cluster.workdir / "root-only"
    private.mkdir(mode=0o755)  # root's, not writable by alice
    home = cluster.workdir / "alice"
    home.mkdir()
    os.chown(home, alice.pw_uid, alice.pw_gid)
    job = _submit_as(cluster, alice, "-o", str(private / "stolen.out"), "--wrap", "echo hi",
                     cwd=home)
    assert cluster.wait_state(job, {"FAILED"}) == "FAILED"
    assert not (private / "stolen.out").exists()


def test_a_user_cannot_touch_another_users_files(
    cluster: LocalCluster, users: dict[str, object]
) -> None:
    alice, bob = users["alice"], users["bob"]
    assert isinstance(alice, pwd.struct_passwd) and isinstance(bob, pwd.struct_passwd)
    secret = cluster.workdir / "alice-secret"
    secret.write_text("mine\n")
    os.chown(secret, alice.pw_uid, alice.pw_gid)
    secret.chmod(0o600)
    home = cluster.workdir / "bob"
    home.mkdir()
    os.chown(home, bob.pw_uid, bob.pw_gid)
    job = _submit_as(cluster, bob, "-o", "o.txt", "--wrap",
                     f"cat {secret}; echo rc=$?; rm -f {secret}; echo rm=$?", cwd=home)
    assert cluster.wait_state(job, {"COMPLETED", "FAILED"})
    out = (home / "o.txt").read_text()
    assert "mine" not in out
    assert "rc=1" in out
    assert secret.read_text() == "mine\n"


# ---------------------------------------------------------------- cgroups


def _cgroup_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def _needs_cgroups(c: LocalCluster) -> str:
    what = _confinement(c)
    if not what.startswith("cgroup2"):
        pytest.skip(f"no cgroup v2 confinement on this host: {what}")
    return what


_DAEMON = (
    "#!/bin/sh\n"
    # a double-forked daemon in a session of its own: outside the job's process group
    "setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' </dev/null >/dev/null 2>&1 &\n"
    "sleep 300\n"
)


def test_job_and_its_daemon_live_in_the_jobs_cgroup_and_die_with_gcancel(
    cluster: LocalCluster,
) -> None:
    _needs_cgroups(cluster)
    pidfile = cluster.workdir / "daemon.pid"
    script = cluster.workdir / "daemon.sh"
    script.write_text(_DAEMON.format(pidfile=pidfile))
    job = cluster.submit("-o", "/dev/null", str(script))
    daemon = int(_wait_file(pidfile))
    cg = _cgroup_of(daemon)
    assert cg.endswith(f"/node1/job_{job}_0"), cg
    wrapper = int(
        _wait_file(cluster.state / "agent-node1" / "jobs" / f"{job}.0" / "wrapper.pid")
        .split('"pid": ')[1].split(",")[0].split("}")[0]
    )
    assert _cgroup_of(wrapper).endswith("/node1/wrappers")  # the wrapper is not in the job
    assert os.getsid(daemon) != os.getpgid(wrapper)
    assert cluster.run("gcancel", str(job)).rc == 0
    cluster.wait_state(job, "CANCELLED")
    cluster.wait_for(lambda: not _alive(daemon), 15, "the daemon to die")
    mount = _mount()
    assert not (Path(mount + cg)).exists()  # the job's cgroup is removed


def _mount() -> str:
    from gsched.agent.cgroups import find_mount

    mount = find_mount()
    assert mount
    return mount


def test_daemon_dies_even_when_the_wrapper_is_killed(cluster: LocalCluster) -> None:
    """Without a wrapper (no subreaper) only the cgroup still knows the daemon."""
    _needs_cgroups(cluster)
    pidfile = cluster.workdir / "daemon.pid"
    script = cluster.workdir / "daemon.sh"
    script.write_text(_DAEMON.format(pidfile=pidfile))
    job = cluster.submit("-o", "/dev/null", str(script))
    daemon = int(_wait_file(pidfile))
    info = _wait_file(cluster.state / "agent-node1" / "jobs" / f"{job}.0" / "wrapper.pid")
    wrapper = int(info.split('"pid": ')[1].split(",")[0].split("}")[0])
    os.kill(wrapper, signal.SIGKILL)
    cluster.wait_state(job, {"CANCELLED", "FAILED", "NODE_FAIL", "PENDING", "REQUEUED"})
    cluster.wait_for(lambda: not _alive(daemon), 15, "the daemon to die")
    cluster.run("gcancel", str(job))


def test_grun_tasks_run_inside_the_jobs_cgroup(cluster: LocalCluster) -> None:
    _needs_cgroups(cluster)
    script = cluster.workdir / "steps.sh"
    script.write_text("#!/bin/sh\ngrun -n 2 sh -c 'grep ^0:: /proc/self/cgroup'\n")
    out = cluster.workdir / "steps.out"
    job = cluster.submit("-o", str(out), str(script))
    assert cluster.wait_state(job, {"COMPLETED", "FAILED"}) == "COMPLETED", out.read_text()
    lines = [ln for ln in out.read_text().splitlines() if ln.startswith("0::")]
    assert len(lines) == 2, out.read_text()
    assert all(ln.endswith(f"/node1/job_{job}_0") for ln in lines), lines


def test_memory_limit_ends_the_job_out_of_memory(cluster: LocalCluster) -> None:
    what = _needs_cgroups(cluster)
    if "memory" not in what.split(":", 1)[1].split("+")[0].split(","):
        pytest.skip(f"the cgroup2 memory controller is not available here ({what}); "
                    "memory.max and OOM detection are unit-tested in test_cgroups.py")
    out = cluster.workdir / "oom.out"
    hog = f"{sys.executable} -c \"b = [bytearray(1 << 20) for _ in range(400)]\""
    job = cluster.submit("--mem=64M", "-o", str(out), "--wrap", hog)
    assert cluster.wait_state(job, {"OUT_OF_MEMORY", "FAILED", "COMPLETED"}) == "OUT_OF_MEMORY"
    assert "oom-kill" in out.read_text()
    r = cluster.run("gacct", "-n", "-X", "-P", "-j", str(job), "-o", "State")
    assert r.out.split()[0] == "OUT_OF_MEMORY", r.out + r.err
    assert cluster.run("gqueue", "-h", "-t", "all", "-j", str(job), "-o", "%t").out.strip() == "OOM"


# ---------------------------------------------------------------- devices


def test_other_jobs_gpu_device_nodes_are_hidden(tmp_path: Path, users: dict[str, object]) -> None:
    """Stand-in device files: a job can open its own GPUs' nodes and not the others'."""
    alice = users["alice"]
    assert isinstance(alice, pwd.struct_passwd)
    base = Path(tempfile.mkdtemp(prefix="gsched-dev-"))
    base.chmod(0o755)
    dev = base / "dev"
    dev.mkdir()
    for i in range(4):
        (dev / f"nvidia{i}").write_text(f"gpu{i}\n")
        (dev / f"nvidia{i}").chmod(0o666)
    c = start_cluster(base, agents=0, gpus=4, cpus=4)
    c.state.chmod(0o755)
    c.workdir.chmod(0o1777)
    conf = c.state / "agent.toml"
    conf.write_text(
        (c.state / "gsched.toml").read_text()
        + f'gpu_device_path = "{dev}/nvidia{{index}}"\n'
    )
    agent = subprocess.Popen(
        [str(BIN / "gsched"), "agent", "--config", str(conf), "--name", "gpunode",
         "--cpus", "4", "--mem-mb", "8000"],
        stdout=subprocess.DEVNULL, stderr=open(c.state / "gpunode.log", "wb"), env=c.env,
    )
    try:
        c.wait_for(lambda: "+devns" in c.run("ginfo", "-h", "-N", "-o", "%k").out, 30,
                   "the agent to register")
        home = c.workdir / "alice"
        home.mkdir()
        os.chown(home, alice.pw_uid, alice.pw_gid)
        probe = "; ".join(
            f"cat {dev}/nvidia{i} 2>/dev/null || echo no{i}" for i in range(4)
        )
        job = _submit_as(c, alice, "--gpus=1", "-o", "o.txt", "--wrap",
                         f"echo cvd=$CUDA_VISIBLE_DEVICES; unset CUDA_VISIBLE_DEVICES; {probe}",
                         cwd=home)
        assert c.wait_state(job, "COMPLETED") == "COMPLETED"
        out = (home / "o.txt").read_text().split()
        mine = int(out[0].removeprefix("cvd="))
        for i in range(4):
            assert (f"gpu{i}" if i == mine else f"no{i}") in out, out
        # the host's view is unchanged
        assert (dev / "nvidia1").read_text() == "gpu1\n"
    finally:
        _stop(agent)
        stop_cluster(c)
        shutil.rmtree(base, ignore_errors=True)


def test_root_jobs_can_be_refused(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="gsched-root-"))
    c = start_cluster(base, agents=0, gpus=0, cpus=2)
    conf = c.state / "agent.toml"
    conf.write_text((c.state / "gsched.toml").read_text() + "allow_root_jobs = false\n")
    agent = subprocess.Popen(
        [str(BIN / "gsched"), "agent", "--config", str(conf), "--name", "nroot"],
        stdout=subprocess.DEVNULL, stderr=open(c.state / "nroot.log", "wb"), env=c.env,
    )
    try:
        c.wait_for(lambda: "nroot" in c.run("ginfo", "-h", "-N", "-o", "%N").out, 30,
                   "the agent to register")
        marker = c.workdir / "ran"
        job = c.submit("-o", "/dev/null", "--wrap", f"touch {marker}")
        assert c.wait_state(job, {"FAILED", "COMPLETED"}) == "FAILED"
        assert not marker.exists()
        r = c.run("gctl", "show", "job", str(job))
        assert "allow_root_jobs" in r.out + c.logs(), r.out
    finally:
        _stop(agent)
        stop_cluster(c)
        shutil.rmtree(base, ignore_errors=True)


def test_gcancel_signal_reaches_processes_that_left_the_group(cluster: LocalCluster) -> None:
    _needs_cgroups(cluster)
    w = cluster.workdir
    script = w / "sig.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"trap 'echo usr1 >> {w}/main.sig' USR1\n"
        f"trap 'echo term >> {w}/main.term' TERM\n"
        f"setsid bash -c 'trap \"echo usr1 >> {w}/daemon.sig\" USR1;"
        f" trap \"echo term >> {w}/daemon.term\" TERM; echo $$ > {w}/daemon.pid;"
        " while true; do sleep 0.1; done' </dev/null >/dev/null 2>&1 &\n"
        "while true; do sleep 0.1; done\n"
    )
    job = cluster.submit("-o", "/dev/null", str(script))
    daemon = int(_wait_file(w / "daemon.pid"))
    assert cluster.run("gcancel", "-s", "USR1", str(job)).rc == 0
    assert _wait_file(w / "main.sig").startswith("usr1")
    assert _wait_file(w / "daemon.sig").startswith("usr1")  # outside the process group
    # SIGTERM with -s goes from the agent straight to the job (not through the wrapper)
    assert cluster.run("gcancel", "-s", "TERM", str(job)).rc == 0
    assert _wait_file(w / "main.term").startswith("term")
    assert _wait_file(w / "daemon.term").startswith("term")
    assert cluster.state_of(job) == "RUNNING"
    assert cluster.run("gcancel", str(job)).rc == 0
    cluster.wait_state(job, "CANCELLED")
    cluster.wait_for(lambda: not _alive(daemon), 15, "the daemon to die")


def test_without_cgroups_ginfo_and_the_log_say_so_and_jobs_still_run() -> None:
    base = Path(tempfile.mkdtemp(prefix="gsched-nocg-"))
    c = start_cluster(base, agents=0, gpus=0, cpus=2)
    conf = c.state / "agent.toml"
    conf.write_text((c.state / "gsched.toml").read_text() + "cgroups = false\n")
    log = c.state / "nocg.log"
    agent = subprocess.Popen(
        [str(BIN / "gsched"), "agent", "--config", str(conf), "--name", "nocg"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=c.env,
    )
    try:
        c.wait_for(lambda: "nocg" in c.run("ginfo", "-h", "-N", "-o", "%N").out, 30,
                   "the agent to register")
        r = c.run("ginfo", "-N", "-o", "%N %k")
        assert r.out.splitlines() == [
            "NODELIST CONFINEMENT",
            "nocg none+devns (cgroups disabled in the configuration)",
        ], r.out
        assert "process groups only" in log.read_text()
        pidfile = c.workdir / "daemon.pid"
        script = c.workdir / "daemon.sh"
        script.write_text(_DAEMON.format(pidfile=pidfile))
        job = c.submit("-o", "/dev/null", str(script))
        daemon = int(_wait_file(pidfile))
        assert "/job_" not in _cgroup_of(daemon)
        assert c.run("gcancel", str(job)).rc == 0
        c.wait_state(job, "CANCELLED")
        # the wrapper's subreaper still finds the daemon
        c.wait_for(lambda: not _alive(daemon), 15, "the daemon to die")
    finally:
        _stop(agent)
        stop_cluster(c)
        shutil.rmtree(base, ignore_errors=True)
