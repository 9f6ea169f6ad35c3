"""Multifactor job priority with classic fair share (pure: no I/O, time is a parameter).

Mirrors SLURM's ``priority/multifactor``::

    priority = w_age*age + w_fairshare*fs + w_jobsize*size + w_partition*part + w_qos*qos - nice

Every factor lies in [0, 1]:

- **age**: ``min(1, (now - eligible) / PriorityMaxAge)``, counted from when the job
  became eligible (the later of submit time and ``--begin``/requeue delay).
- **job size**: the job's share of the cluster, the largest of its node, CPU and GPU
  fractions; ``PriorityFavorSmall`` flips it to ``1 - share``.
- **partition**: ``PriorityJobFactor / max PriorityJobFactor`` over the partitions.
- **QOS**: ``qos Priority / max qos Priority``.
- **fair share**: SLURM's classic ``F = 2^(-U_E / S)`` over the tree root → accounts →
  users, where ``S`` is the normalized shares (the product of the share fractions on
  the path) and ``U_E`` the effective usage: for an account its normalized usage, for a
  user ``U_N + (U_E(account) - U_N) * shares / sibling shares``. Usage is TRES-weighted
  (GPU-seconds dominant by default) and decays with half-life ``PriorityDecayHalfLife``.

The total is truncated to an int and clamped to SLURM's 32-bit range, with 0 kept
for held jobs (so a pending, unheld job always has priority >= 1).

:class:`UsageLedger` is the one piece of state: raw usage per (account, user)
association plus the time it was last decayed. It round-trips through a plain
JSON-able dict so the store can persist it; shares are configuration and are handed
to it, not persisted by it.

How it is wired (see :mod:`gsched.controller.prioritize` and
:mod:`gsched.controller.cluster_policy`):

1. ``Job`` carries ``account``, ``qos`` and ``admin_priority``; ``Partition`` carries
   ``priority_job_factor`` and ``priority_tier``; QOS (with ``priority`` and
   ``usage_factor``) live in :class:`gsched.controller.policy.Policy`.
2. The Cluster's ``Prioritizer`` holds the ``UsageLedger``, restored with ``from_dict``
   from one JSON row of the store that is written in the same transaction as job
   changes, with how far each running job has been charged.
3. ``Cluster.schedule`` recomputes every pending job's priority with :func:`rank` at
   most every ``calc_period`` seconds and schedules tier first, then priority.
4. Running jobs are charged on the tick (every ``calc_period``) and the rest when an
   attempt ends, times the QOS ``UsageFactor``.
5. ``gprio`` shows ``Factors.weighted(cfg)``; ``gshare`` shows ``ledger.report()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_TRES_WEIGHTS",
    "MAX_PRIORITY",
    "Account",
    "ClusterView",
    "Factors",
    "JobView",
    "PriorityConfig",
    "ShareRow",
    "ShareTree",
    "UsageLedger",
    "Weights",
    "factors",
    "rank",
    "tres_seconds",
]

DAY = 86400.0
MAX_PRIORITY = 2**32 - 1

# Usage is counted in "GPU-equivalent seconds": a GPU-second weighs 1, 16 CPU-seconds
# weigh as much as a GPU-second, and so do 256 GiB of memory for a second (memory in MB).
DEFAULT_TRES_WEIGHTS: Mapping[str, float] = {"gpu": 1.0, "cpu": 1 / 16, "mem": 1 / (256 * 1024)}


@dataclasses.dataclass(frozen=True)
class Weights:
    """SLURM's ``PriorityWeight*`` integers."""

    age: int = 1000
    fairshare: int = 10000
    jobsize: int = 0
    partition: int = 1000
    qos: int = 1000


@dataclasses.dataclass(frozen=True)
class PriorityConfig:
    """The priority knobs (SLURM names in the comments).

    Attributes:
        weights: ``PriorityWeightAge``, ``...FairShare``, ``...JobSize``,
            ``...Partition``, ``...QOS``.
        max_age: ``PriorityMaxAge`` in seconds; the age factor saturates there
            (<= 0 disables the age factor).
        decay_half_life: ``PriorityDecayHalfLife`` in seconds (<= 0: usage never decays).
        tres_weights: weight per TRES key (``gpu``: GPU-seconds, ``cpu``: CPU-seconds,
            ``mem``: MB-seconds) turning a job's TRES-seconds into usage.
        favor_small: ``PriorityFavorSmall``: smaller jobs get the larger size factor.
    """

    weights: Weights = Weights()
    max_age: float = 7 * DAY
    decay_half_life: float = 7 * DAY
    tres_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_TRES_WEIGHTS)
    )
    favor_small: bool = False


@dataclasses.dataclass(frozen=True)
class Account:
    """One account of the share tree: its shares among accounts, its users' shares."""

    name: str
    shares: int = 1
    users: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ShareTree:
    """Shares configuration: root → accounts → users.

    Associations that are not configured (an account or user seen only in usage or in
    the pending queue) get ``default_shares``; a job with no account is charged to
    ``default_account``.
    """

    accounts: tuple[Account, ...] = ()
    default_account: str = "default"
    default_shares: int = 1

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ShareTree:
        """Build from ``{"accounts": {"lab": {"shares": 2, "users": {"alice": 1}}}, ...}``."""
        accounts = tuple(
            Account(name, int(a.get("shares", 1)), {u: int(s) for u, s in a.get("users", {}).items()})
            for name, a in raw.get("accounts", {}).items()
        )
        return cls(
            accounts,
            str(raw.get("default_account", "default")),
            int(raw.get("default_shares", 1)),
        )

    def account_of(self, account: str) -> str:
        return account or self.default_account


@dataclasses.dataclass(frozen=True)
class ShareRow:
    """One line of ``gshare`` (like sshare): an account (user ``""``) or a user."""

    account: str
    user: str
    raw_shares: int
    norm_shares: float
    raw_usage: float
    norm_usage: float
    effective_usage: float
    fairshare: float


Assoc = tuple[str, str]  # (account, user)


class UsageLedger:
    """Decaying raw usage per (account, user) association; serialisable to a dict.

    Usage is a single TRES-weighted number per association (what fair share reads),
    with the per-TRES amounts kept alongside for display. All associations decay
    together from ``last_decay``, so ratios between them (and thus fair share) do not
    depend on when decay last ran.
    """

    def __init__(
        self,
        cfg: PriorityConfig | None = None,
        shares: ShareTree | None = None,
        last_decay: float | None = None,
    ) -> None:
        self.cfg = cfg or PriorityConfig()
        self.shares = shares or ShareTree()
        self.last_decay = last_decay
        self._raw: dict[Assoc, float] = {}
        self._tres: dict[Assoc, dict[str, float]] = {}

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot: ``{"version", "last_decay", "assocs": [...]}``."""
        return {
            "version": 1,
            "last_decay": self.last_decay,
            "assocs": [
                {"account": a, "user": u, "raw": raw, "tres": dict(self._tres.get((a, u), {}))}
                for (a, u), raw in sorted(self._raw.items())
            ],
        }

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], cfg: PriorityConfig | None = None,
        shares: ShareTree | None = None,
    ) -> UsageLedger:
        """Inverse of :meth:`to_dict` (shares and config come from configuration)."""
        last = raw.get("last_decay")
        ledger = cls(cfg, shares, None if last is None else float(last))
        for row in raw.get("assocs", ()):
            key = (str(row["account"]), str(row["user"]))
            ledger._raw[key] = float(row["raw"])
            ledger._tres[key] = {k: float(v) for k, v in row.get("tres", {}).items()}
        return ledger

    # ------------------------------------------------------------ changes
    def decay(self, now: float) -> None:
        """Decay every association's usage from ``last_decay`` to ``now``."""
        if self.last_decay is None or now <= self.last_decay:
            if self.last_decay is None:
                self.last_decay = now
            return
        half = self.cfg.decay_half_life
        if half > 0:
            f = 2.0 ** (-(now - self.last_decay) / half)
            for key in self._raw:
                self._raw[key] *= f
                tres = self._tres[key]
                for k in tres:
                    tres[k] *= f
        self.last_decay = now

    def charge(
        self, user: str, account: str, tres_secs: Mapping[str, float], now: float,
        usage_factor: float = 1.0,
    ) -> float:
        """Add a job's TRES-seconds (e.g. from :func:`tres_seconds`) as of ``now``.

        ``usage_factor`` is the QOS ``UsageFactor``. Returns the weighted usage added.
        """
        self.decay(now)
        key = (self.shares.account_of(account), user)
        weights = self.cfg.tres_weights
        added = usage_factor * sum(weights.get(k, 0.0) * v for k, v in tres_secs.items())
        self._raw[key] = self._raw.get(key, 0.0) + added
        tres = self._tres.setdefault(key, {})
        for k, v in tres_secs.items():
            tres[k] = tres.get(k, 0.0) + usage_factor * v
        return added

    def reset(self) -> None:
        """Forget all usage (``gctl`` admin reset)."""
        self._raw.clear()
        self._tres.clear()

    # ------------------------------------------------------------ queries
    def usage(self, user: str, account: str | None = None) -> float:
        """Raw (decayed as of ``last_decay``) usage of ``user``, in one account or all."""
        if account is not None:
            return self._raw.get((self.shares.account_of(account), user), 0.0)
        return sum(v for (_, u), v in self._raw.items() if u == user)

    def account_usage(self, account: str) -> float:
        account = self.shares.account_of(account)
        return sum(v for (a, _), v in self._raw.items() if a == account)

    def tres_usage(self, user: str, account: str) -> dict[str, float]:
        return dict(self._tres.get((self.shares.account_of(account), user), {}))

    def fairshare_table(self, extra: Iterable[Assoc] = ()) -> dict[Assoc, float]:
        """Fair-share factor of every known association (plus ``extra`` ones)."""
        return {(r.account, r.user): r.fairshare for r in self.report(extra) if r.user}

    def fairshare(self, user: str, account: str) -> float:
        key = (self.shares.account_of(account), user)
        return self.fairshare_table((key,))[key]

    def report(self, extra: Iterable[Assoc] = ()) -> list[ShareRow]:
        """The share tree with usage, like ``sshare -a``: each account then its users."""
        tree = self._tree(extra)
        total = sum(self._raw.values())
        acct_shares = sum(s for s, _ in tree.values())
        rows: list[ShareRow] = []
        for account in sorted(tree):
            a_shares, users = tree[account]
            a_raw = sum(self._raw.get((account, u), 0.0) for u in users)
            a_norm_sh = a_shares / acct_shares if acct_shares else 0.0
            a_un = a_raw / total if total > 0 else 0.0
            a_ue = a_un  # children of root: effective usage is their normalized usage
            rows.append(ShareRow(account, "", a_shares, a_norm_sh, a_raw, a_un, a_ue,
                                 _fs(a_ue, a_norm_sh)))
            level = sum(users.values())
            for user in sorted(users):
                u_shares = users[user]
                frac = u_shares / level if level else 0.0
                u_raw = self._raw.get((account, user), 0.0)
                u_un = u_raw / total if total > 0 else 0.0
                u_ue = u_un + (a_ue - u_un) * frac
                u_norm_sh = a_norm_sh * frac
                rows.append(ShareRow(account, user, u_shares, u_norm_sh, u_raw, u_un, u_ue,
                                     _fs(u_ue, u_norm_sh)))
        return rows

    def _tree(self, extra: Iterable[Assoc]) -> dict[str, tuple[int, dict[str, int]]]:
        """account -> (shares, {user: shares}) over configured, used and ``extra`` ones."""
        d = self.shares.default_shares
        tree: dict[str, tuple[int, dict[str, int]]] = {
            a.name: (a.shares, dict(a.users)) for a in self.shares.accounts
        }
        for account, user in (*self._raw, *extra):
            account = self.shares.account_of(account)
            if account not in tree:
                tree[account] = (d, {})
            tree[account][1].setdefault(user, d)
        return tree


def _fs(effective_usage: float, norm_shares: float) -> float:
    if norm_shares <= 0:
        return 0.0
    return 2.0 ** (-effective_usage / norm_shares)


def tres_seconds(cpus: int, mem_mb: int, gpus: int, seconds: float) -> dict[str, float]:
    """TRES-seconds of an allocation held for ``seconds`` (summed over its nodes)."""
    seconds = max(0.0, seconds)
    return {"cpu": cpus * seconds, "mem": mem_mb * seconds, "gpu": gpus * seconds}


# ------------------------------------------------------------------ factors
@dataclasses.dataclass(frozen=True)
class JobView:
    """What priority needs to know about a pending job.

    Attributes:
        eligible_time: when the job may first start (``--begin``, requeue delay);
            age counts from the later of this and ``submit_time``.
        nodes, cpus, gpus: totals requested (over all nodes).
        partition_factor: ``PriorityJobFactor`` of the job's partition (for a job
            naming several, the largest).
        priority_tier: the partition's ``PriorityTier``: higher tiers sort first
            whatever the priority.
        admin_priority: a priority set by an administrator (``Priority=``): used
            as is instead of the factors.
    """

    job_id: int
    user: str
    account: str = ""
    submit_time: float = 0.0
    eligible_time: float = 0.0
    nodes: int = 1
    cpus: int = 1
    gpus: int = 0
    partition_factor: int = 1
    qos_priority: int = 0
    nice: int = 0
    priority_tier: int = 0
    hold: bool = False
    admin_priority: int | None = None


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """Cluster-wide normalisers for the job-size, partition and QOS factors."""

    total_nodes: int = 0
    total_cpus: int = 0
    total_gpus: int = 0
    max_partition_factor: int = 1
    max_qos_priority: int = 0


@dataclasses.dataclass(frozen=True)
class Factors:
    """A job's normalised factors (each in [0, 1]), its nice, and the total priority."""

    age: float
    fairshare: float
    jobsize: float
    partition: float
    qos: float
    nice: int
    total: int

    def weighted(self, cfg: PriorityConfig) -> dict[str, float]:
        """Each factor times its weight, as ``sprio`` shows them."""
        w = cfg.weights
        return {
            "age": w.age * self.age,
            "fairshare": w.fairshare * self.fairshare,
            "jobsize": w.jobsize * self.jobsize,
            "partition": w.partition * self.partition,
            "qos": w.qos * self.qos,
            "nice": float(-self.nice),
        }


def factors(
    job: JobView, cluster: ClusterView, ledger: UsageLedger, cfg: PriorityConfig, now: float,
    *, fairshare: Mapping[Assoc, float] | None = None,
) -> Factors:
    """The factors and total priority of ``job`` at ``now``.

    ``fairshare`` is a precomputed :meth:`UsageLedger.fairshare_table` (pass one when
    computing many jobs at once; :func:`rank` does).
    """
    key = (ledger.shares.account_of(job.account), job.user)
    if fairshare is None or key not in fairshare:
        fairshare = ledger.fairshare_table((key,))
    return _Scorer(cluster, cfg, now).score(job, fairshare[key])


class _Scorer:
    """The per-pass constants of :func:`factors`, worked out once for many jobs."""

    def __init__(self, cluster: ClusterView, cfg: PriorityConfig, now: float) -> None:
        self.now = now
        self.weights = cfg.weights
        self.inv_age = 1.0 / cfg.max_age if cfg.max_age > 0 else 0.0
        self.inv = [(1.0 / t if t > 0 else 0.0)
                    for t in (cluster.total_nodes, cluster.total_cpus, cluster.total_gpus)]
        self.inv_part = 1.0 / cluster.max_partition_factor if cluster.max_partition_factor > 0 \
            else 0.0
        self.inv_qos = 1.0 / cluster.max_qos_priority if cluster.max_qos_priority > 0 else 0.0
        self.favor_small = cfg.favor_small

    def score(self, job: JobView, fs: float) -> Factors:
        age = 0.0
        if self.inv_age:
            age = min(1.0, max(0.0, self.now - max(job.submit_time, job.eligible_time))
                      * self.inv_age)
        inv_n, inv_c, inv_g = self.inv
        share = min(1.0, max(job.nodes * inv_n, job.cpus * inv_c, job.gpus * inv_g))
        size = 1.0 - share if self.favor_small else share
        part = min(1.0, max(0.0, job.partition_factor * self.inv_part))
        qos = min(1.0, max(0.0, job.qos_priority * self.inv_qos))
        if job.hold:
            total = 0
        elif job.admin_priority is not None:
            total = max(0, min(MAX_PRIORITY, job.admin_priority))
        else:
            w = self.weights
            value = (w.age * age + w.fairshare * fs + w.jobsize * size + w.partition * part
                     + w.qos * qos - job.nice)
            # truncate like SLURM's uint32 cast; the epsilon keeps 2999.9999999 at 3000
            total = max(1, min(MAX_PRIORITY, math.floor(value + 1e-6)))
        return Factors(age, fs, size, part, qos, job.nice, total)


def rank(
    jobs: Iterable[JobView], cluster: ClusterView, ledger: UsageLedger, cfg: PriorityConfig,
    now: float,
) -> list[tuple[int, Factors]]:
    """``(job_id, factors)`` in scheduling order.

    Order: partition ``PriorityTier`` (high first), priority (high first), submit time,
    job id.
    """
    views = list(jobs)
    account_of = ledger.shares.account_of
    table = ledger.fairshare_table({(account_of(j.account), j.user) for j in views})
    scorer = _Scorer(cluster, cfg, now)
    scored = [(j, scorer.score(j, table[account_of(j.account), j.user])) for j in views]
    scored.sort(key=lambda jf: (-jf[0].priority_tier, -jf[1].total, jf[0].submit_time,
                                jf[0].job_id))
    return [(j.job_id, f) for j, f in scored]
