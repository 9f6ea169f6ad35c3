"""End-to-end fixtures: the installed console scripts as real processes.

``local_cluster`` runs ``gsched up`` into a temporary state directory (controller,
SQLite, agents with fake GPUs on 127.0.0.1) and ``gsched down`` afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _exe(name: str) -> str:
    path = BIN / name
    if not path.exists():  # pragma: no cover - not installed into this interpreter's bin
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"console script {name} is not installed")
        return found
    return str(path)


@dataclasses.dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclasses.dataclass
class LocalCluster:
    state: Path
    env: dict[str, str]
    workdir: Path
    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", NS): where commands run

    def run(self, *args: str, input: str | None = None, timeout: float = 60,
            env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
        """Run an installed command (gsub, gqueue, ...) against this cluster."""
        full_env = dict(self.env, **(env or {}))
        p = subprocess.run(
            [*self.prefix, _exe(args[0]), *args[1:]],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd or self.workdir,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def open_to_other_users(self) -> None:
        """Let other users reach the controller's socket (auth_type local), as under
        /var/lib/gsched: search permission on the state dir and its parents below /tmp."""
        for d in [self.state, *self.state.parents]:
            if d == Path("/tmp"):
                break
            d.chmod(d.stat().st_mode | 0o011)

    def submit(self, *args: str, **kw: object) -> int:
        r = self.run("gsub", "--parsable", *args, **kw)  # type: ignore[arg-type]
        assert r.rc == 0, r.err
        return int(r.out.strip().split(";")[0])

    def state_of(self, job_id: int) -> str:
        r = self.run("gqueue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T")
        assert r.rc == 0, r.err
        return r.out.strip()

    def wait_state(self, job_id: int, states: set[str] | str, timeout: float = 30) -> str:
        want = {states} if isinstance(states, str) else states
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.state_of(job_id)
            if state in want:
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} is {state}, wanted {want}; log:\n{self.logs()}")

    def wait_for(self, pred: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for f in sorted(self.state.glob("*.log")):
            out.append(f"--- {f.name}\n" + f.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    def pid(self, tag: str) -> int:
        return int((self.state / f"{tag}.pid").read_text())


def start_cluster(tmp: Path, agents: int = 2, gpus: int = 4, extra: tuple[str, ...] = (),
                  prefix: tuple[str, ...] = (), cpus: int = 8) -> LocalCluster:
    state = tmp / "state"
    work = tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GSCHED_"))}
    env["GSCHED_CONF"] = str(state / "gsched.toml")
    env["XDG_CACHE_HOME"] = str(state / "cache")  # the CLI's config cache, per test cluster
    # as for a user with the environment activated: jobs find python, torchrun, ...
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    p = subprocess.run(
        [*prefix, _exe("gsched"), "up", "--state-dir", str(state), "--agents", str(agents),
         "--fake-gpus", str(gpus), "--port", "0", "--cpus", str(cpus), "--mem-mb", "32000",
         *extra],
        capture_output=True, text=True, timeout=90, env=env,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"export GSCHED_CONF={state / 'gsched.toml'}" in p.stdout
    return LocalCluster(state, env, work, prefix)


def restart_controller(c: LocalCluster) -> None:
    """Start the cluster's controller again (after a kill), logging where it did."""
    log = open(c.state / "controller.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gsched.cli.main", "controller", "--config",
         str(c.state / "gsched.toml")],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=c.env,
    )
    log.close()
    (c.state / "controller.pid").write_text(f"{proc.pid}\n")


def stop_cluster(c: LocalCluster) -> None:
    # not through _exe(): a skip raised while tearing down would leak the cluster
    subprocess.run([*c.prefix, sys.executable, "-m", "gsched.cli.main", "down",
                    "--state-dir", str(c.state)],
                   capture_output=True, text=True, timeout=60, env=c.env)


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = start_cluster(tmp_path)
    try:
        yield c
    finally:
        stop_cluster(c)
