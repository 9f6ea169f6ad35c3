"""Configuration: one TOML file (``gsched.toml``) plus ``GSCHED_*`` environment.

Loaded once in each entry point into frozen dataclasses and passed down; nothing
deep in the code looks configuration up by itself.

Layout of the file (every key optional)::

    cluster_name = "gsched"
    state_dir = "/var/lib/gsched"          # all other paths derive from it

    [controller]
    address = "127.0.0.1:6817"            # where clients and agents dial
    listen = "127.0.0.1:6817"             # where the controller binds (default: address)
    database = "sqlite:///..."            # default: sqlite file in state_dir
    kill_wait = 30                        # seconds from SIGTERM to SIGKILL
    heartbeat_interval = 2.0
    suspect_after = 4.0                   # silent: SUSPECT, no new jobs
    node_timeout = 10.0                   # silent: DOWN ("Not responding"), jobs requeued
    fence_after = 7.0                     # agents kill their jobs after this long cut off (0 = off)
    fence_grace = 2.0
    requeue_delay = 0.0
    max_requeue = 5
    return_to_service = 1
    gpu_drain_share = 0.5
    backfill_depth = 100                  # EASY backfill: reservations for the first N blocked jobs
    backfill_window = 86400.0
    accept_unknown_nodes = true           # agents not named by any partition may register (they join partitions with nodes = "ALL")
    socket = ""                           # local Unix socket (default <state_dir>/controller.sock; "none": off)
    key_file = ""                         # cluster secret (gsched keygen); default <state_dir>/cluster.key
    submit_rate = 0.0                     # jobs/s per user (token bucket; operators exempt); 0 = off
    submit_burst = 0                      # jobs a user may submit at once; 0 = 10 s worth
    default_partition = "main"

    [[partitions]]
    name = "main"
    nodes = "node[1-4]"                   # hostlist; "ALL" = every node
    default = true
    default_time = "NONE"                 # SLURM duration or NONE
    max_time = "UNLIMITED"
    max_nodes = 0                         # 0 = UNLIMITED
    state = "UP"

    [agent]
    name = "node1"                        # default: short hostname
    gpus = "auto"                         # auto | nvml | none | fake:N[:TYPE]
    cpus = 0                              # 0 = detect
    mem_mb = 0                            # 0 = detect
    address = ""                          # address other nodes should use
    state_dir = ""                        # default: <state_dir>/agent-<name>
    gpu_max_temp_c = 0                    # hotter GPUs are unhealthy; 0 = no limit
    cgroups = true                        # confine jobs in cgroup v2 (when root and mounted)
    cgroup_root = "gsched"                # under the cgroup2 mount; the node name is added
    gpu_device_path = "/dev/nvidia{index}" # device node of GPU {index}; "" = do not hide
    allow_root_jobs = true                # false: refuse jobs submitted by root
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_CONF",
    "AgentConfig",
    "Config",
    "ConfigError",
    "ControllerConfig",
    "PartitionConfig",
    "conf_path",
    "load",
]

DEFAULT_CONF = "/etc/gsched/gsched.toml"
DEFAULT_PORT = 6817


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


# NamedTuples rather than dataclasses: importing dataclasses pulls in ``inspect``,
# which every CLI call would pay for (~7 ms).
class PartitionConfig(NamedTuple):
    name: str
    nodes: str = "ALL"
    default: bool = False
    default_time: int = -1  # seconds; -1 = NONE
    max_time: int = -1  # seconds; -1 = UNLIMITED
    max_nodes: int = 0
    state: str = "UP"


class ControllerConfig(NamedTuple):
    address: str = f"127.0.0.1:{DEFAULT_PORT}"
    listen: str = ""
    database: str = ""
    kill_wait: int = 30
    heartbeat_interval: float = 2.0
    suspect_after: float = 4.0  # silent this long: SUSPECT (no new jobs)
    node_timeout: float = 10.0  # silent this long: DOWN, its jobs requeued
    fence_after: float = 7.0  # agents kill their jobs after this long without contact; 0 = off
    fence_grace: float = 2.0  # SIGTERM -> SIGKILL when fencing
    requeue_delay: float = 0.0  # seconds a requeued job waits before it may start again
    max_requeue: int = 5  # infrastructure requeues per job before it ends NODE_FAIL
    return_to_service: int = 1  # 0: a DOWN node stays DOWN until RESUME; 1: back when healthy
    gpu_drain_share: float = 0.5  # drain a node when this share of its GPUs is faulty
    backfill_depth: int = 100  # blocked jobs that get a reservation per pass (0 = no backfill)
    backfill_window: float = 86400.0  # no reservations further ahead than this (seconds)
    accept_unknown_nodes: bool = True
    default_partition: str = "main"
    socket: str = ""  # local fast-path Unix socket; default <state_dir>/controller.sock; "none" = off
    key_file: str = ""  # cluster secret agents must prove; default <state_dir>/cluster.key if present
    submit_rate: float = 0.0  # jobs/s each user may keep submitting (token bucket); 0 = no limit
    submit_burst: int = 0  # submissions a user may make at once; 0 = ten seconds' worth


class AgentConfig(NamedTuple):
    name: str = ""
    gpus: str = "auto"
    cpus: int = 0
    mem_mb: int = 0
    address: str = ""
    state_dir: str = ""
    gpu_max_temp_c: int = 0  # a GPU hotter than this is unhealthy; 0 = no limit
    cgroups: bool = True  # confine jobs in cgroup v2 where the agent is root and it is mounted
    cgroup_root: str = "gsched"  # relative to the cgroup2 mount; the node name is appended
    gpu_device_path: str = "/dev/nvidia{index}"  # other jobs' GPU nodes are hidden; "" = off
    allow_root_jobs: bool = True  # False: jobs submitted by root fail to launch


class Config(NamedTuple):
    path: str
    cluster_name: str = "gsched"
    state_dir: str = ""
    controller: ControllerConfig = ControllerConfig()
    partitions: tuple[PartitionConfig, ...] = ()
    agent: AgentConfig = AgentConfig()

    @property
    def listen(self) -> str:
        return self.controller.listen or self.controller.address

    @property
    def socket_path(self) -> str:
        """The controller's Unix socket ("" when disabled)."""
        if self.controller.socket == "none":
            return ""
        return self.controller.socket or os.path.join(self.state_dir, "controller.sock")

    @property
    def database_url(self) -> str:
        if self.controller.database:
            return self.controller.database
        return f"sqlite:///{os.path.join(self.state_dir, 'gsched.db')}"


def conf_path() -> str:
    """The configuration file the CLI and daemons use: $GSCHED_CONF or /etc/gsched/gsched.toml."""
    return os.environ.get("GSCHED_CONF") or DEFAULT_CONF


def _duration(value: Any, key: str) -> int:
    from gsched.common.durations import DurationError, parse_time_limit

    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.upper() in ("NONE", "UNLIMITED", "INFINITE"):
        return -1
    try:
        return parse_time_limit(str(value))
    except DurationError as exc:
        raise ConfigError(f"{key}: invalid duration {value!r}") from exc


def _section(cls: type, raw: dict[str, Any], where: str) -> Any:
    names = set(cls._fields)
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(f"[{where}]: unknown key(s) {', '.join(sorted(unknown))}")
    for key, value in raw.items():
        default = cls._field_defaults.get(key)
        if default is None:
            continue
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            raw[key] = float(value)
        elif type(value) is not type(default):
            raise ConfigError(
                f"[{where}] {key}: expected {type(default).__name__}, got {value!r}"
            )
    return cls(**raw)


def _check_agent(agent: AgentConfig) -> None:
    root = agent.cgroup_root
    if not root.strip("/") or ".." in root.split("/") or "\0" in root or "\n" in root:
        raise ConfigError(f"[agent] cgroup_root: invalid path {root!r}")
    dev = agent.gpu_device_path
    if dev and ("{index}" not in dev or not dev.startswith("/")):
        raise ConfigError(
            f"[agent] gpu_device_path: expected an absolute path with {{index}}, got {dev!r}"
        )


def load(path: str | None = None) -> Config:
    """Read and validate the configuration file.

    Raises:
        ConfigError: the file is missing, is not TOML, or has unknown/invalid keys.
    """
    path = path or conf_path()
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} not found (set GSCHED_CONF)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return from_dict(raw, path)


def from_dict(raw: dict[str, Any], path: str = "<memory>") -> Config:
    """Build a Config from parsed TOML (also used by tests)."""
    raw = dict(raw)
    base = os.path.dirname(os.path.realpath(path)) if path != "<memory>" else os.getcwd()
    state_dir = str(raw.pop("state_dir", "") or base)
    cluster_name = str(raw.pop("cluster_name", "gsched"))
    ctl = _section(ControllerConfig, dict(raw.pop("controller", {})), "controller")
    agent = _section(AgentConfig, dict(raw.pop("agent", {})), "agent")
    _check_agent(agent)
    if ctl.submit_rate < 0 or ctl.submit_burst < 0:
        raise ConfigError("[controller] submit_rate and submit_burst must not be negative")
    parts = []
    for i, p in enumerate(raw.pop("partitions", [])):
        p = dict(p)
        for key in ("default_time", "max_time"):
            if key in p:
                p[key] = _duration(p[key], f"partitions[{i}].{key}")
        if "name" not in p:
            raise ConfigError(f"partitions[{i}]: missing name")
        part = _section(PartitionConfig, p, f"partitions[{i}]")
        if part.state not in ("UP", "DOWN", "DRAIN", "INACTIVE"):
            raise ConfigError(f"partitions[{i}].state: invalid state {part.state!r}")
        parts.append(part)
    if raw:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(raw))}")
    env_addr = os.environ.get("GSCHED_CONTROLLER")
    if env_addr:
        ctl = ctl._replace(address=env_addr)
    return Config(
        path=path,
        cluster_name=cluster_name,
        state_dir=state_dir,
        controller=ctl,
        partitions=tuple(parts),
        agent=agent,
    )
