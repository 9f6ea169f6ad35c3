"""The controller's database on PostgreSQL: a private server per test module.

The server is started from the machine's PostgreSQL binaries (``initdb``, ``pg_ctl``) in
a temporary directory, on a free loopback port, as the ``postgres`` user when the tests
run as root; it never touches the machine's own clusters. Without PostgreSQL installed
the module is skipped (``.ci/run`` installs it).
"""

from __future__ import annotations

import glob
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

from .conftest import restart_controller, start_cluster, stop_cluster


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, root: Path) -> None:
        initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or self.pg_ctl is None:
            pytest.skip("PostgreSQL is not installed (initdb, pg_ctl)")
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user")
            shutil.chown(root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.root, self.port = root, _free_port()
        self.data = root / "data"
        subprocess.run([*self.as_user, initdb, "-D", str(self.data), "-A", "trust", "-N",
                        "-U", "gsched"], check=True, capture_output=True, timeout=120)
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", str(self.data), "-w", "-l", str(root / "log"),
             "-o", f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
             "start"], check=True, capture_output=True, timeout=120)
        self.databases = 0

    def new_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"gsched{self.databases}"
        with psycopg.connect(f"postgresql://gsched@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://gsched@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run([*self.as_user, self.pg_ctl, "-D", str(self.data), "-m", "fast",
                        "stop"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def postgres() -> Iterator[_Server]:
    pytest.importorskip("psycopg")
    # not under pytest's own temporary directory: the postgres user cannot enter it
    root = Path(tempfile.mkdtemp(prefix="gsched-pg-"))
    try:
        server = _Server(root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_store_round_trip_on_postgres(postgres: _Server) -> None:
    from gsched.common.config import from_dict
    from gsched.controller.cluster import Cluster
    from gsched.controller.jobs import Job, Request
    from gsched.controller.nodes import Gpu, Node
    from gsched.controller.scheduler import Partition
    from gsched.controller.store import Store, job_to_row, node_to_row

    url = from_dict({"controller": {"database": postgres.new_database()}}).database_url
    assert url.startswith("postgresql+psycopg://")

    def job(i: int, **kw: object) -> Job:
        return Job(job_id=i, user="alice", uid=1000, gid=1000, group="alice", name=f"j{i}",
                   request=Request(gpus_per_node=1, partitions=("main",)),
                   spec=bytes(range(256)) * 8, submit_time=float(i), **kw)  # type: ignore[arg-type]

    store = Store(url)
    node = Node("n1", cpus=8, mem_mb=1000, gpus=[Gpu(0), Gpu(1)], ever_registered=True)
    for i in range(1, 41):  # one commit each, as the controller makes them
        store.write([job_to_row(job(i, hold=True))], [node_to_row(node)], i + 1,
                    {"usage": '{"alice": 1.5}'})
    store.write([job_to_row(job(7, comment="updated"))], [], 41)  # an update of a row
    store.write_step({"job_id": 7, "step_id": 0, "attempt": 0, "name": "py", "nodes": ["n1"],
                      "ntasks": 1, "start_time": 1.0, "end_time": 0.0, "state": "RUNNING",
                      "exit_code": 0, "exit_signal": 0})
    assert store.meta_secret("k", lambda: "first") == store.meta_secret("k", lambda: "x")
    store.close()

    again = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    reopened = Store(url)
    reopened.load(again, keep_finished_since=0.0)
    assert sorted(again.jobs) == list(range(1, 41)) and again.next_job_id == 41
    assert again.jobs[7].comment == "updated" and not again.jobs[7].hold
    assert again.jobs[8].hold and again.jobs[8].spec == bytes(range(256)) * 8  # bytea
    assert [g.index for g in again.nodes["n1"].gpus] == [0, 1]
    assert reopened.next_step_ids() == {7: 1}
    assert reopened.end_running_steps(9.0) == 1
    reopened.close()


def test_cluster_on_postgres_loses_nothing_across_a_controller_kill(
    postgres: _Server, tmp_path: Path
) -> None:
    url = postgres.new_database()
    c = start_cluster(tmp_path, agents=2, gpus=2, extra=("--database", url))
    try:
        assert "database postgresql+psycopg://" in c.logs()
        done = c.submit("--wrap", "echo ran on $SLURMD_NODENAME")
        assert c.wait_state(done, "COMPLETED") == "COMPLETED"
        running = c.submit("--wrap", "echo start >> starts-$SLURM_JOB_ID; sleep 3; exit 5")
        held = c.submit("-H", "--gres=gpu:1", "--wrap", "true")
        c.wait_state(running, "RUNNING")
        os.kill(c.pid("controller"), signal.SIGKILL)
        time.sleep(0.5)
        restart_controller(c)
        c.wait_for(lambda: c.run("gctl", "ping").rc == 0, what="controller back")
        assert c.state_of(held) == "PENDING"
        assert c.wait_state(running, {"FAILED", "COMPLETED"}, timeout=40) == "FAILED"
        assert (c.workdir / f"starts-{running}").read_text() == "start\n"  # ran once
        c.run("gctl", "release", str(held))
        assert c.wait_state(held, "COMPLETED") == "COMPLETED"
        acct = c.run("gacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode").out.split()
        assert acct == [f"{done}|COMPLETED|0:0", f"{running}|FAILED|5:0",
                        f"{held}|COMPLETED|0:0"]
        assert c.submit("--wrap", "true") > held  # the job id counter survived too
    finally:
        stop_cluster(c)


def test_postgres_without_its_driver_is_refused_clearly(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    state = tmp_path / "state"
    state.mkdir()
    conf = state / "gsched.toml"
    conf.write_text(f'state_dir = "{state}"\n[controller]\naddress = "127.0.0.1:{_free_port()}"\n'
                    'database = "postgresql+psycopg2://nobody@127.0.0.1:1/none"\n')
    p = subprocess.run([sys.executable, "-m", "gsched.cli.main", "controller", "--config",
                        str(conf)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "GSCHED_CONF": str(conf)})
    if p.returncode == 0 or "psycopg2 driver is not installed" not in p.stderr:
        pytest.fail(f"rc={p.returncode}: {p.stderr[-500:]}")
    bad = state / "bad.toml"
    bad.write_text('[controller]\ndatabase = "mysql://x/y"\n')
    p = subprocess.run([sys.executable, "-m", "gsched.cli.main", "controller", "--config",
                        str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "neither sqlite:///PATH nor postgresql://" in p.stderr
