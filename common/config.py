"""Configuration: one TOML file (``gsched.toml``) plus ``GSCHED_*`` environment.

Loaded once in each entry point into frozen dataclasses and passed down; nothing
deep in the code looks configuration up by itself.

Layout of the file (every key optional)::

    cluster_name = "gsched"
    state_dir = "/var/lib/gsched"          # all other paths derive from it

    [controller]
    address = "127.0.0.1:6817"            # where clients and agents dial
    listen = "127.0.0.1:6817"             # where the controller binds (default: address)
    database = "sqlite:///..."            # default: sqlite file in state_dir; or
                                          # "postgresql://user@host/db" (pip install 'gsched[postgresql]')
    kill_wait = 30                        # seconds from SIGTERM to SIGKILL
    heartbeat_interval = 2.0
    suspect_after = 4.0                   # silent: SUSPECT, no new jobs
    node_timeout = 10.0                   # silent: DOWN ("Not responding"), jobs requeued
    fence_after = 7.0                     # agents kill their jobs after this long cut off (0 = off)
    fence_grace = 2.0
    requeue_delay = 0.0
    max_requeue = 5
    requeue_exit = ""                     # exit codes that requeue (RequeueExit), e.g. "75,99-101"
    max_requeue_exit = 3                  # budget for those requeues, per job
    return_to_service = 1
    gpu_drain_share = 0.5
    failure_drain_count = 3               # drain a node whose failures ended jobs this often ...
    failure_window = 3600.0               # ... within this window (0 count = never)
    max_stop_warning = 300.0              # --signal lead time honoured before a forced requeue
    backfill_depth = 100                  # EASY backfill: reservations for the first N blocked jobs
    backfill_window = 86400.0
    accept_unknown_nodes = true           # agents not named by any partition may register (they join partitions with nodes = "ALL")
    socket = ""                           # local Unix socket (default <state_dir>/controller.sock; "none": off)
    key_file = ""                         # cluster secret (gsched keygen); default <state_dir>/cluster.key
    submit_rate = 0.0                     # jobs/s per user (token bucket; operators exempt); 0 = off
    submit_burst = 0                      # jobs a user may submit at once; 0 = 10 s worth
    default_partition = "main"
    auth_type = "local"                   # local | munge | none (see docs/security.md)
    munge_socket = ""                     # munged's socket (default: libmunge's)
    credential_ttl = 300                  # seconds a user credential stays valid
    operators = []                        # users (or "%group") who act on every job and node
    admins = []                           # as operators; root and the controller's uid always are
    private_data = []                     # ["jobs"]: users see only their own jobs
    tls_cert = ""                         # PEM cert/key: serve gRPC over TLS
    tls_key = ""
    tls_ca = ""                           # CA clients and agents verify the controller with
    pin_nodes = {}                        # node name -> host/address it must connect from

    [[partitions]]
    name = "main"
    nodes = "node[1-4]"                   # hostlist; "ALL" = every node
    default = true
    default_time = "NONE"                 # SLURM duration or NONE
    max_time = "UNLIMITED"
    max_nodes = 0                         # 0 = UNLIMITED
    state = "UP"                          # UP | DOWN | DRAIN | INACTIVE
    priority_tier = 1                     # PriorityTier: higher tiers are scheduled first
    priority_job_factor = 1               # PriorityJobFactor: the partition priority factor
    allow_accounts = "ALL"                # AllowAccounts: comma list or ALL
    allow_groups = "ALL"                  # AllowGroups: comma list or ALL
    oversubscribe = "NO"                  # OverSubscribe: NO | EXCLUSIVE (whole nodes per job)

    [priority]                            # multifactor priority (docs/policy.md)
    weight_age = 1000                     # PriorityWeightAge
    weight_fairshare = 10000              # PriorityWeightFairshare
    weight_jobsize = 0                    # PriorityWeightJobSize
    weight_partition = 1000               # PriorityWeightPartition
    weight_qos = 1000                     # PriorityWeightQOS
    max_age = "7-0"                       # PriorityMaxAge
    decay_half_life = "7-0"               # PriorityDecayHalfLife (0: no decay)
    favor_small = false                   # PriorityFavorSmall
    calc_period = 5.0                     # seconds between priority recomputations
    default_qos = "normal"

    [[qos]]                               # sacctmgr's QOS (docs/policy.md)
    name = "high"
    priority = 100
    max_wall = "1-0"
    max_tres_per_user = "gres/gpu=8,cpu=64"
    max_jobs_per_user = -1
    max_submit_jobs_per_user = -1
    grp_tres = ""
    preempt = ["normal"]
    preempt_mode = "REQUEUE"              # REQUEUE | CANCEL | OFF
    grace_time = 0
    usage_factor = 1.0

    [[accounts]]
    name = "lab"
    shares = 1                            # Fairshare
    users = { alice = 1, bob = 2 }        # user -> shares (or a list: equal shares)
    grp_tres = "gres/gpu=16"

    [[users]]
    name = "alice"
    default_account = "lab"

    [agent]
    name = "node1"                        # default: short hostname
    gpus = "auto"                         # auto | nvml | none | fake:N[:TYPE]
    cpus = 0                              # 0 = detect
    mem_mb = 0                            # 0 = detect
    address = ""                          # address other nodes should use
    state_dir = ""                        # default: <state_dir>/agent-<name>
    gpu_max_temp_c = 0                    # hotter GPUs are unhealthy; 0 = no limit
    tls_ca = ""                           # default: [controller] tls_ca
    cgroups = true                        # confine jobs in cgroup v2 (when root and mounted)
    cgroup_root = "gsched"                # under the cgroup2 mount; the node name is added
    gpu_device_path = "/dev/nvidia{index}" # device node of GPU {index}; "" = do not hide
    allow_root_jobs = true                # false: refuse jobs submitted by root
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, NamedTuple

from gsched.common.confcache import DEFAULT_CONF, conf_path

__all__ = [
    "DEFAULT_CONF",
    "AgentConfig",
    "Config",
    "ConfigError",
    "ControllerConfig",
    "PartitionConfig",
    "PriorityConfigToml",
    "conf_path",
    "load",
]

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
    priority_tier: int = 1
    priority_job_factor: int = 1
    allow_accounts: str = "ALL"
    allow_groups: str = "ALL"
    oversubscribe: str = "NO"


class PriorityConfigToml(NamedTuple):
    """The ``[priority]`` section (durations already in seconds)."""

    weight_age: int = 1000
    weight_fairshare: int = 10000
    weight_jobsize: int = 0
    weight_partition: int = 1000
    weight_qos: int = 1000
    max_age: int = 7 * 86400
    decay_half_life: int = 7 * 86400
    favor_small: bool = False
    calc_period: float = 5.0
    default_qos: str = "normal"


_QOS_KEYS = frozenset({
    "name", "priority", "max_wall", "max_tres_per_user", "max_jobs_per_user",
    "max_submit_jobs_per_user", "grp_tres", "preempt", "preempt_mode", "grace_time",
    "usage_factor",
})
_ACCOUNT_KEYS = frozenset({"name", "shares", "users", "grp_tres"})
_USER_KEYS = frozenset({"name", "default_account"})


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
    requeue_exit: str = ""  # exit codes that requeue a job by default, e.g. "1,3,10-12"
    max_requeue_exit: int = 3  # requeues per job for an exit code (separate budget)
    return_to_service: int = 1  # 0: DOWN stays DOWN until RESUME; 1: not responding comes back; 2: any DOWN comes back
    gpu_drain_share: float = 0.5  # drain a node when this share of its GPUs is faulty
    failure_drain_count: int = 3  # drain a node after this many job-ending failures (0 = never)
    failure_window: float = 3600.0  # ... within this many seconds
    max_stop_warning: float = 300.0  # longest --signal lead time honoured before a forced stop
    backfill_depth: int = 100  # blocked jobs that get a reservation per pass (0 = no backfill)
    backfill_window: float = 86400.0  # no reservations further ahead than this (seconds)
    accept_unknown_nodes: bool = True
    default_partition: str = "main"
    socket: str = ""  # local fast-path Unix socket; default <state_dir>/controller.sock; "none" = off
    key_file: str = ""  # cluster secret agents must prove; default <state_dir>/cluster.key if present
    max_array_size: int = 1001  # SLURM's MaxArraySize: array task ids must be below this
    kill_invalid_depend: bool = False  # SLURM's DependencyParameters=kill_invalid_depend
    # --- security (docs/security.md)
    auth_type: str = "local"  # local | munge | none
    munge_socket: str = ""  # munged's socket; "" = libmunge's default
    credential_ttl: int = 300  # seconds a user credential (local token, MUNGE) is accepted
    operators: tuple[str, ...] = ()  # user names, uids or "%group": act on every job and node
    admins: tuple[str, ...] = ()  # as operators (root and the controller's own uid always are)
    private_data: tuple[str, ...] = ()  # ("jobs",): users see only their own jobs
    tls_cert: str = ""  # PEM certificate and key: gRPC is served over TLS
    tls_key: str = ""
    tls_ca: str = ""  # PEM CA that clients and agents verify the controller with
    pin_nodes: tuple[tuple[str, str], ...] = ()  # (node, host): where that node must connect from
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
    tls_ca: str = ""  # CA to verify the controller with; default [controller] tls_ca
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
    priority: PriorityConfigToml = PriorityConfigToml()
    # [[qos]], [[accounts]], [[users]] tables (keys checked; values by the controller)
    qos: tuple[dict[str, Any], ...] = ()
    accounts: tuple[dict[str, Any], ...] = ()
    users: tuple[dict[str, Any], ...] = ()

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
        """The SQLAlchemy URL of the database; ``postgresql://`` means the psycopg driver."""
        url = self.controller.database
        if not url:
            return f"sqlite:///{os.path.join(self.state_dir, 'gsched.db')}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain):]
        return url


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
    cfg = from_dict(raw, path)
    if not os.environ.get("GSCHED_CONTROLLER"):
        from gsched.common import confcache

        c = cfg.controller
        confcache.store(path, {
            "socket": cfg.socket_path, "address": c.address, "cluster_name": cfg.cluster_name,
            "auth_type": c.auth_type, "munge_socket": c.munge_socket, "tls_ca": c.tls_ca,
        })
    return cfg


def from_dict(raw: dict[str, Any], path: str = "<memory>") -> Config:
    """Build a Config from parsed TOML (also used by tests)."""
    raw = dict(raw)
    base = os.path.dirname(os.path.realpath(path)) if path != "<memory>" else os.getcwd()
    state_dir = str(raw.pop("state_dir", "") or base)
    cluster_name = str(raw.pop("cluster_name", "gsched"))
    ctl = _section(ControllerConfig, _security(dict(raw.pop("controller", {}))), "controller")
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
        if part.oversubscribe.upper() not in ("NO", "EXCLUSIVE"):
            raise ConfigError(f"partitions[{i}].oversubscribe: must be NO or EXCLUSIVE")
        parts.append(part)
    prio_raw = dict(raw.pop("priority", {}))
    for key in ("max_age", "decay_half_life"):
        if key in prio_raw:
            prio_raw[key] = max(0, _duration(prio_raw[key], f"priority.{key}"))
    prio = _section(PriorityConfigToml, prio_raw, "priority")
    tables: dict[str, tuple[dict[str, Any], ...]] = {}
    for section, keys in (("qos", _QOS_KEYS), ("accounts", _ACCOUNT_KEYS),
                          ("users", _USER_KEYS)):
        rows = []
        for i, row in enumerate(raw.pop(section, [])):
            if not isinstance(row, dict) or "name" not in row:
                raise ConfigError(f"{section}[{i}]: missing name")
            unknown = set(row) - keys
            if unknown:
                raise ConfigError(f"[[{section}]] {row['name']}: unknown key(s) "
                                  f"{', '.join(sorted(unknown))}")
            rows.append(dict(row))
        tables[section] = tuple(rows)
    if raw:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(raw))}")
    if ctl.requeue_exit:
        from gsched.common.exitcodes import parse_exit_codes

        try:
            parse_exit_codes(ctl.requeue_exit)
        except ValueError as exc:
            raise ConfigError(f"[controller] requeue_exit: {exc}") from exc
    if ctl.database and not ctl.database.startswith(
        ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://",
         "postgresql+psycopg2://")
    ):
        raise ConfigError(
            f"[controller] database: {ctl.database!r} is neither sqlite:///PATH nor "
            "postgresql://..."
        )
    if ctl.return_to_service not in (0, 1, 2):
        raise ConfigError(f"[controller] return_to_service: 0, 1 or 2, not {ctl.return_to_service}")
    _check_security(ctl)
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
        priority=prio,
        qos=tables["qos"],
        accounts=tables["accounts"],
        users=tables["users"],
    )


AUTH_TYPES = ("local", "munge", "none")
PRIVATE_DATA = ("jobs",)


def _security(raw: dict[str, Any]) -> dict[str, Any]:
    """TOML lists and tables of the security keys -> the tuples ControllerConfig holds."""
    for key in ("operators", "admins", "private_data"):
        if key in raw:
            value = raw[key]
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                raise ConfigError(f"[controller] {key}: expected a list of names, got {value!r}")
            raw[key] = tuple(str(v) for v in value)
    if "pin_nodes" in raw:
        value = raw["pin_nodes"]
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(
                f"[controller] pin_nodes: expected a table of node = \"host\", got {value!r}"
            )
        raw["pin_nodes"] = tuple(sorted((str(k), v) for k, v in value.items()))
    return raw


def _check_security(ctl: ControllerConfig) -> None:
    if ctl.auth_type not in AUTH_TYPES:
        raise ConfigError(
            f"[controller] auth_type: {ctl.auth_type!r} is not one of {', '.join(AUTH_TYPES)}"
        )
    bad = [v for v in ctl.private_data if v not in PRIVATE_DATA]
    if bad:
        raise ConfigError(
            f"[controller] private_data: unknown value {bad[0]!r} (known: {', '.join(PRIVATE_DATA)})"
        )
    if ctl.credential_ttl <= 0:
        raise ConfigError("[controller] credential_ttl: must be a positive number of seconds")
    if bool(ctl.tls_cert) != bool(ctl.tls_key):
        raise ConfigError("[controller] tls_cert and tls_key: set both or neither")
