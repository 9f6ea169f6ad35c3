"""``gsched``: run the daemons and manage a local cluster.

gsched controller --config FILE     run the controller in the foreground
gsched agent --config FILE          run an agent in the foreground
gsched up [--state-dir DIR] ...     start a local cluster in the background
gsched down [--state-dir DIR]       stop it
gsched shims DIR                    install sbatch/squeue/... commands into DIR
gsched keygen [--config FILE]       create the cluster key agents prove
gsched certs --out DIR --hosts H,.. a small CA and per-host TLS certificates
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click

DEFAULT_STATE_DIR = os.path.join(os.path.expanduser("~"), ".gsched")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config(path: str | None):  # type: ignore[no-untyped-def]
    from gsched.common import config

    try:
        return config.load(path)
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="gsched")
def cli() -> None:
    """gsched: a SLURM-compatible batch scheduler for GPU clusters."""


@cli.command()
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="gsched.toml (default: $GSCHED_CONF or /etc/gsched/gsched.toml)",
)
@click.option("--log-level", default="INFO", show_default=True)
def controller(config_path: str | None, log_level: str) -> None:
    """Run the controller in the foreground (logs to stderr; SIGTERM stops it cleanly).

    It refuses to start with auth_type = "none" unless it listens on loopback only,
    and with auth_type = "munge" when MUNGE is not usable (see docs/security.md).
    """
    cfg = _config(config_path)
    _logging(log_level)
    from gsched.common.config import ConfigError
    from gsched.controller.main import serve

    try:
        serve(cfg)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        if cfg.controller.auth_type == "munge":
            raise click.ClickException(f"auth_type munge: cannot use MUNGE: {exc}") from None
        raise


@cli.command()
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="gsched.toml (default: $GSCHED_CONF or /etc/gsched/gsched.toml)",
)
@click.option("--name", help="node name (default: [agent].name or the short hostname)")
@click.option("--state-dir", help="where job records live (default: STATE_DIR/agent-NAME)")
@click.option("--gpus", help="auto | nvml | none | fake:N[:TYPE] (default: [agent].gpus)")
@click.option("--cpus", type=int, help="CPUs to offer (default: detected)")
@click.option("--mem-mb", type=int, help="memory to offer in MB (default: detected)")
@click.option("--log-level", default="INFO", show_default=True)
def agent(
    config_path: str | None,
    name: str | None,
    state_dir: str | None,
    gpus: str | None,
    cpus: int | None,
    mem_mb: int | None,
    log_level: str,
) -> None:
    """Run an agent in the foreground; its jobs survive an agent restart."""
    cfg = _config(config_path)
    _logging(log_level)
    import pynvml

    from gsched.agent.gpus import GpuError
    from gsched.agent.main import run_agent

    try:
        run_agent(cfg, name=name, state_dir=state_dir, gpus=gpus, cpus=cpus, mem_mb=mem_mb)
    except (GpuError, pynvml.NVMLError) as exc:
        raise click.ClickException(f"GPUs ({gpus or cfg.agent.gpus}): {exc}") from None


@cli.command()
@click.option("--config", "config_path", metavar="FILE", help="gsched.toml (the key goes to [controller] key_file or STATE_DIR/cluster.key)")
@click.option("--out", "out", metavar="PATH", help="write the key here instead")
def keygen(config_path: str | None, out: str | None) -> None:
    """Create the cluster key agents must hold to register (mode 0600)."""
    from gsched.common import clusterkey

    if out is None:
        cfg = _config(config_path)
        out = clusterkey.key_path(cfg.state_dir, cfg.controller.key_file)
    try:
        clusterkey.write_key(out)
    except FileExistsError:
        raise click.ClickException(f"{out} exists; remove it first to make a new key") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out}; copy it (mode 0600) to every agent host's key_file")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
def shims(directory: str) -> None:
    """Install sbatch, squeue, scancel, scontrol, sinfo, sacct, srun into DIRECTORY."""
    from gsched.common.shims import install_shims

    for path in install_shims(directory):
        click.echo(path)


@cli.command()
@click.option("--out", "out", required=True, metavar="DIR",
              help="directory for ca.pem/ca.key and HOST.pem/HOST.key (an existing CA there "
                   "is reused)")
@click.option("--hosts", required=True, metavar="H1,H2,...",
              help="host names or IP addresses to make certificates for (the controller's "
                   "address host, and agents that should present one)")
@click.option("--days", default=3650, show_default=True, help="validity of new certificates")
def certs(out: str, hosts: str, days: int) -> None:
    """Create a small CA and a TLS certificate per host (for sites without their own PKI).

    Point [controller] tls_cert/tls_key at the controller host's files and tls_ca
    at ca.pem on every host; keep ca.key off the cluster once you are done.
    """
    from gsched.common.tls import make_certs

    names = [h.strip() for h in hosts.split(",") if h.strip()]
    if not names:
        raise click.UsageError("--hosts: give at least one host name or address")
    try:
        for path in make_certs(out, names, days=days):
            click.echo(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot write certificates to {out}: {exc}") from None


# ------------------------------------------------------------------ local cluster
def _free_port(preferred: int) -> int:
    for port in dict.fromkeys((preferred, 0)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise click.ClickException("no free port on 127.0.0.1")


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live gsched process (not a zombie, not a reused pid)."""
    import psutil

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = p.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True
    # an empty command line is a process caught mid-exec: still ours
    return not cmd or "gsched" in " ".join(cmd)


def _pids(state: Path) -> dict[str, int]:
    out = {}
    for f in sorted(state.glob("*.pid")):
        try:
            out[f.stem] = int(f.read_text().strip())
        except (OSError, ValueError):
            continue
    return out


def _spawn(state: Path, tag: str, args: list[str]) -> int:
    log = open(state / f"{tag}.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gsched.cli.main", *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    log.close()
    (state / f"{tag}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


@cli.command()
@click.option(
    "--state-dir",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="where config, database, logs and job records go",
)
@click.option(
    "--agents",
    default=1,
    show_default=True,
    help="number of agents (nodes node1..nodeN) on this host",
)
@click.option(
    "--fake-gpus",
    type=int,
    default=None,
    help="give each agent G fake GPUs (default: real GPUs via NVML if present, else none)",
)
@click.option("--gpu-type", default="", help="type name for fake GPUs (e.g. a100)")
@click.option(
    "--port",
    type=int,
    default=None,
    help="controller port on 127.0.0.1 (default: 6817, or a free one)",
)
@click.option(
    "--cpus", type=int, default=None, help="CPUs each agent offers (default: this host's)"
)
@click.option(
    "--mem-mb", type=int, default=None, help="memory each agent offers in MB (default: this host's)"
)
@click.option(
    "--timeout", default=60.0, show_default=True, help="seconds to wait for the agents to register"
)
@click.option(
    "--database",
    default="",
    metavar="URL",
    help="the controller's database: postgresql://USER@HOST[:PORT]/DB (needs "
    "pip install 'gsched[postgresql]'); default: SQLite in the state dir",
)
@click.option(
    "--auth-type",
    type=click.Choice(["local", "none"]),
    default="local",
    show_default=True,
    help="local: identity from the kernel (the socket, and socket-issued credentials for "
    "gRPC); none: believe what callers claim (tests and benchmarks only)",
)
def up(
    state_dir: str,
    agents: int,
    fake_gpus: int | None,
    gpu_type: str,
    port: int | None,
    cpus: int | None,
    mem_mb: int | None,
    timeout: float,
    database: str,
    auth_type: str,
) -> None:
    """Start a local cluster (controller + agents; SQLite, or PostgreSQL with --database) in
    the background."""
    state = Path(state_dir).expanduser().resolve()
    state.mkdir(parents=True, exist_ok=True)
    running = {k: v for k, v in _pids(state).items() if _alive(v)}
    if running:
        raise click.ClickException(
            f"a cluster is already running from {state} ({', '.join(sorted(running))}); "
            f"run: gsched down --state-dir {state}"
        )
    conf = state / "gsched.toml"
    if conf.exists() and port is None:
        from gsched.common import config

        try:
            old = config.load(str(conf)).controller.address
            port = int(old.rsplit(":", 1)[1])
        except (config.ConfigError, ValueError, IndexError):
            port = None
    port = _free_port(6817 if port is None else port)
    gpus = (
        "auto" if fake_gpus is None else f"fake:{fake_gpus}" + (f":{gpu_type}" if gpu_type else "")
    )
    conf.write_text(
        "# Written by `gsched up`.\n"
        f'cluster_name = "gsched"\n'
        f'state_dir = "{state}"\n\n'
        "[controller]\n"
        f'address = "127.0.0.1:{port}"\n'
        f'auth_type = "{auth_type}"\n'
        + (f"database = {json.dumps(database)}\n" if database else "")
        + "kill_wait = 5\n\n"
        "[[partitions]]\n"
        'name = "main"\n'
        'nodes = "ALL"\n'
        "default = true\n\n"
        "[agent]\n"
        f'gpus = "{gpus}"\n'
        # one cgroup subtree per local cluster: several may run on one host
        f'cgroup_root = "gsched/up-{hashlib.sha1(str(state).encode()).hexdigest()[:10]}"\n'
    )
    from gsched.common import clusterkey

    if not (state / "cluster.key").exists():
        clusterkey.write_key(str(state / "cluster.key"))
    _spawn(state, "controller", ["controller", "--config", str(conf)])
    _wait_registered([], state, timeout)
    names = [f"node{i}" for i in range(1, agents + 1)]
    for name in names:
        extra = ["--cpus", str(cpus)] if cpus else []
        extra += ["--mem-mb", str(mem_mb)] if mem_mb else []
        _spawn(state, name, ["agent", "--config", str(conf), "--name", name, *extra])
    os.environ["GSCHED_CONF"] = str(conf)
    _wait_registered(names, state, timeout)
    click.echo(
        f"gsched is up: controller 127.0.0.1:{port}, nodes {', '.join(names)}; logs in {state}"
    )
    click.echo(f"export GSCHED_CONF={conf}")


def _wait_registered(names: list[str], state: Path, timeout: float) -> None:
    from gsched.cli.client import ClientError, from_config
    from gsched.common import config
    from gsched.protos import gsched_pb2 as pb

    cfg = config.load(str(state / "gsched.toml"))
    client = from_config(cfg)
    deadline = time.monotonic() + timeout
    missing = set(names)
    while time.monotonic() < deadline:
        for tag, pid in _pids(state).items():
            if not _alive(pid):
                raise click.ClickException(f"{tag} exited at start; see {state / (tag + '.log')}")
        try:
            reply = client.call("ListNodes", pb.ListNodesRequest(), timeout=2)
            missing = set(names) - {n.name for n in reply.nodes if n.connected}
            if not missing:
                return
        except ClientError:
            pass
        time.sleep(0.1)
    raise click.ClickException(
        f"agents not registered after {timeout:.0f}s: {', '.join(sorted(missing))}"
    )


@cli.command()
@click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True)
@click.option("--keep-jobs", is_flag=True, help="leave running job processes alive")
def down(state_dir: str, keep_jobs: bool) -> None:
    """Stop the local cluster started by `gsched up` (and, by default, its jobs)."""
    state = Path(state_dir).expanduser().resolve()
    pids = _pids(state)
    if not pids:
        raise click.ClickException(f"no cluster started from {state}")
    live = {tag: pid for tag, pid in pids.items() if _alive(pid)}
    for pid in live.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in live.values()):
        time.sleep(0.05)
    for pid in live.values():
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    if not keep_jobs:
        _stop_jobs(state)
        _remove_cgroups(state)
    for tag in pids:
        (state / f"{tag}.pid").unlink(missing_ok=True)
    click.echo(f"gsched stopped ({', '.join(sorted(live)) or 'nothing was running'})")


def _stop_jobs(state: Path) -> None:
    import psutil

    for pidfile in state.glob("agent-*/jobs/*/wrapper.pid"):
        try:
            text = pidfile.read_text().strip()
            pid = int(json.loads(text)["pid"]) if text.startswith("{") else int(text.split()[0])
            proc = psutil.Process(pid)
            if "wrap.py" in " ".join(proc.cmdline()):
                proc.terminate()
        except (OSError, ValueError, IndexError, KeyError, TypeError, psutil.Error):
            continue


def _remove_cgroups(state: Path, wait: float = 10.0) -> None:
    """Remove this cluster's cgroup subtree once its wrappers are gone (best effort)."""
    from gsched.agent.cgroups import find_mount
    from gsched.common import config

    mount = find_mount()
    try:
        root = config.load(str(state / "gsched.toml")).agent.cgroup_root
    except config.ConfigError:
        return
    if mount is None or not root.startswith("gsched/up-"):
        return  # only the subtree `gsched up` made for this cluster
    top = Path(mount) / root
    deadline = time.monotonic() + wait
    while top.is_dir():
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
        if not top.is_dir() or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def main() -> None:
    cli(prog_name="gsched")


if __name__ == "__main__":
    main()
