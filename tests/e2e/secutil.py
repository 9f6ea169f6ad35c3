"""Helpers for the security tests: test users, a cluster with a chosen config, munged.

The cluster here is started from a config the test writes (``gsched up`` writes
its own), as real processes: ``gsched controller`` and ``gsched agent``. Its state
directory is reachable by other users (mode 0755 up to /tmp), as /var/lib/gsched is
on a real host, so test users can reach the controller's socket and read the config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
OPS_GROUP = "gsched-ops"
OPERATOR = "gsched-op"


def need_root_users() -> None:
    if os.getuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, useradd and setpriv to act as other users")


def ensure_user(name: str, group: str | None = None) -> pwd.struct_passwd:
    """A system user (created once on this machine by the test suite)."""
    if group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", "--system", group], check=False, capture_output=True)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        args = ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh"]
        if group is not None:
            args += ["--groups", group]
        subprocess.run([*args, name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclasses.dataclass
class SecCluster:
    root: Path  # world-traversable temp dir
    state: Path
    conf: Path
    port: int
    procs: dict[str, subprocess.Popen[bytes]]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GSCHED_"))}
        env["GSCHED_CONF"] = str(self.conf)
        env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def workdir(self, user: str) -> Path:
        """A directory ``user`` owns (job output goes there)."""
        d = self.root / f"work-{user}"
        d.mkdir(exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def run(self, *args: str, user: str | None = None, timeout: float = 60,
            **extra_env: str) -> Result:
        """An installed command, as ``user`` (setpriv, with that user's groups) or as us."""
        prefix: list[str] = []
        cwd = self.root
        if user is not None:
            pw = pwd.getpwnam(user)
            prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                      "--init-groups"]
            cwd = self.workdir(user)
        env = self.env(**extra_env)
        if user is not None:
            env.update(HOME=str(cwd), USER=user, LOGNAME=user)
        p = subprocess.run([*prefix, str(BIN / args[0]), *args[1:]], capture_output=True,
                           text=True, timeout=timeout, env=env, cwd=cwd)
        return Result(p.returncode, p.stdout, p.stderr)

    def submit(self, *args: str, user: str | None = None, **extra_env: str) -> int:
        r = self.run("gsub", "--parsable", *args, user=user, **extra_env)
        assert r.rc == 0, r.err
        return int(r.out.strip().split(";")[0])

    def log(self, tag: str = "controller") -> str:
        return (self.state / f"{tag}.log").read_text(errors="replace")


def write_config(root: Path, port: int, controller: str = "", agent: str = "",
                 extra: str = "") -> Path:
    state = root / "state"
    state.mkdir(exist_ok=True)
    state.chmod(0o755)
    conf = state / "gsched.toml"
    conf.write_text(
        'cluster_name = "gsched"\n'
        f'state_dir = "{state}"\n\n'
        "[controller]\n"
        f'address = "127.0.0.1:{port}"\n'
        "kill_wait = 5\n"
        f"{controller}\n"
        "[[partitions]]\n"
        'name = "main"\n'
        'nodes = "ALL"\n'
        "default = true\n\n"
        "[agent]\n"
        'gpus = "fake:2"\n'
        "cpus = 4\n"
        "mem_mb = 4000\n"
        f"{agent}\n{extra}"
    )
    conf.chmod(0o644)
    return conf


def spawn(state: Path, tag: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(state / f"{tag}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "gsched.cli.main", *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)


def wait_nodes(c: SecCluster, names: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tag, p in c.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"{tag} exited {p.returncode}:\n{c.log(tag)}")
        r = c.run("ginfo", "-h", "-N", "-o", "%N %T")
        if r.rc == 0 and all(f"{n} " in r.out and "down" not in r.out for n in names):
            return
        time.sleep(0.2)
    raise AssertionError(f"nodes {names} not up:\n{c.log()}\n{c.log('node1')}")


@contextlib.contextmanager
def sec_cluster(controller: str = "", agents: tuple[str, ...] = ("node1",),
                agent: str = "", extra: str = "", keygen: bool = True) -> Iterator[SecCluster]:
    root = Path(tempfile.mkdtemp(prefix="gsched-sec-"))
    root.chmod(0o755)
    port = free_port()
    conf = write_config(root, port, controller, agent, extra)
    c = SecCluster(root, root / "state", conf, port, {})
    try:
        if keygen:
            subprocess.run([str(BIN / "gsched"), "keygen", "--config", str(conf)], check=True,
                           capture_output=True)
        c.procs["controller"] = spawn(c.state, "controller",
                                      ["controller", "--config", str(conf)], c.env())
        for name in agents:
            c.procs[name] = spawn(c.state, name,
                                  ["agent", "--config", str(conf), "--name", name], c.env())
        wait_nodes(c, list(agents))  # with no agents: until the controller answers
        yield c
    finally:
        stop(c)
        shutil.rmtree(root, ignore_errors=True)


def stop(c: SecCluster) -> None:
    for p in c.procs.values():
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    for p in c.procs.values():
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
    # job wrappers started by these agents (each in its own session)
    from gsched.cli.main import _stop_jobs

    _stop_jobs(c.state)
