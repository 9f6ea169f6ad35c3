"""Accounts, QOS and their limits (pure: no I/O, time is a parameter).

Mirrors the part of SLURM's accounting associations and QOS that a GPU lab needs:

- **Accounts** hold users. Each account has ``Fairshare`` (its shares among
  accounts), each user its shares within the account, and the account may carry
  ``GrpTRES`` (GPUs/CPUs all its running jobs together may hold). A user has a default
  account; ``--account`` picks another the user belongs to.
- **QOS** carry ``Priority`` (the QOS factor), ``MaxWall``, ``MaxTRESPerUser``
  (``gres/gpu=N``, ``cpu=N``), ``MaxJobsPerUser`` (running), ``MaxSubmitJobsPerUser``
  (pending + running), ``GrpTRES`` (all the QOS's running jobs), ``Preempt`` (the QOS
  this one may preempt), ``PreemptMode`` (``REQUEUE``, ``CANCEL`` or ``OFF``),
  ``GraceTime`` (seconds between the preemption signal and the kill) and
  ``UsageFactor`` (multiplies the usage charged for fair share).

When no account is configured at all, accounts are not enforced: any name is
accepted and a job without one is charged to ``default``. A ``normal`` QOS always
exists (SLURM's default QOS) unless configured otherwise.

:class:`Policy` is configuration plus runtime changes (``gctl create/modify/delete``);
it round-trips through a JSON-able dict that the store keeps. :class:`LimitGate`
checks a pass's pending jobs against the limits, counting what the running jobs (and
the ones the pass starts) hold, and gives SLURM's pending reasons.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gsched.controller.errors import InvalidRequest
from gsched.controller.priority import Account, ShareTree

__all__ = [
    "DEFAULT_QOS",
    "INVALID_ACCOUNT",
    "INVALID_QOS",
    "POLICY_VIOLATION",
    "AccountDef",
    "LimitGate",
    "Policy",
    "Qos",
    "Tres",
    "format_tres",
    "parse_tres",
]

DEFAULT_QOS = "normal"
INVALID_ACCOUNT = "Invalid account or account/partition combination specified"
INVALID_QOS = "Invalid qos specification"
POLICY_VIOLATION = (
    "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"
)
PREEMPT_MODES = ("OFF", "REQUEUE", "CANCEL")


@dataclasses.dataclass(frozen=True)
class Tres:
    """A TRES limit: ``-1`` means no limit."""

    gpu: int = -1
    cpu: int = -1

    @property
    def unlimited(self) -> bool:
        return self.gpu < 0 and self.cpu < 0


_TRES_KEYS = {"gres/gpu": "gpu", "gpu": "gpu", "cpu": "cpu"}


def parse_tres(text: str) -> Tres:
    """``"gres/gpu=8,cpu=64"`` → :class:`Tres`; ``""`` or ``-1`` values clear a limit.

    Raises:
        InvalidRequest: an unknown TRES name or a bad count.
    """
    got: dict[str, int] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        name = _TRES_KEYS.get(key.strip().lower())
        if not sep or name is None or not re.fullmatch(r"-?\d+", value.strip()):
            raise InvalidRequest(f"Invalid TRES specification: {part}")
        got[name] = max(-1, int(value))
    return Tres(**got)


def format_tres(t: Tres) -> str:
    """SLURM's display: ``cpu=64,gres/gpu=8`` (``""`` when unlimited)."""
    parts = []
    if t.cpu >= 0:
        parts.append(f"cpu={t.cpu}")
    if t.gpu >= 0:
        parts.append(f"gres/gpu={t.gpu}")
    return ",".join(parts)


@dataclasses.dataclass(frozen=True)
class Qos:
    """One QOS (SLURM names in the comments; -1 = no limit)."""

    name: str
    priority: int = 0  # Priority
    max_wall: int = -1  # MaxWall, seconds
    max_tres_per_user: Tres = Tres()  # MaxTRESPerUser
    max_jobs_per_user: int = -1  # MaxJobsPerUser (running)
    max_submit_jobs_per_user: int = -1  # MaxSubmitJobsPerUser (pending + running)
    grp_tres: Tres = Tres()  # GrpTRES
    preempt: tuple[str, ...] = ()  # Preempt
    preempt_mode: str = "REQUEUE"  # PreemptMode
    grace_time: int = 0  # GraceTime, seconds
    usage_factor: float = 1.0  # UsageFactor

    @property
    def limited(self) -> bool:
        """Whether any limit of this QOS can keep a job pending."""
        return (self.max_wall >= 0 or self.max_jobs_per_user >= 0
                or not self.max_tres_per_user.unlimited or not self.grp_tres.unlimited)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["max_tres_per_user"] = format_tres(self.max_tres_per_user)
        d["grp_tres"] = format_tres(self.grp_tres)
        d["preempt"] = list(self.preempt)
        return d

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Qos:
        raw = dict(raw)
        if "name" not in raw:
            raise InvalidRequest("a QOS needs a name")
        return _qos_set(cls(str(raw.pop("name"))), raw)


@dataclasses.dataclass(frozen=True)
class AccountDef:
    """One account: its shares among accounts, its users with their shares, GrpTRES."""

    name: str
    shares: int = 1  # Fairshare
    users: Mapping[str, int] = dataclasses.field(default_factory=dict)
    grp_tres: Tres = Tres()  # GrpTRES

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shares": self.shares, "users": dict(self.users),
                "grp_tres": format_tres(self.grp_tres)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AccountDef:
        users = raw.get("users", {})
        if isinstance(users, (list, tuple)):
            users = {u: 1 for u in users}
        return cls(str(raw["name"]), _int(raw.get("shares", 1), "Fairshare", 0),
                   {str(u): _int(s, "Fairshare", 0) for u, s in users.items()},
                   parse_tres(str(raw.get("grp_tres", ""))))


# --------------------------------------------------------------- the policy
class Policy:
    """Accounts, users' default accounts and QOS; the share tree derives from it."""

    def __init__(
        self,
        qos: Iterable[Qos] = (),
        accounts: Iterable[AccountDef] = (),
        default_accounts: Mapping[str, str] | None = None,
        default_qos: str = DEFAULT_QOS,
    ) -> None:
        self.qos: dict[str, Qos] = {q.name: q for q in qos}
        if default_qos not in self.qos:
            self.qos[default_qos] = Qos(default_qos)
        self.default_qos = default_qos
        self.accounts: dict[str, AccountDef] = {a.name: a for a in accounts}
        self.default_accounts: dict[str, str] = dict(default_accounts or {})
        self.version = 0  # bumped on every change: keys caches

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "default_qos": self.default_qos,
            "qos": [q.to_dict() for q in self.qos.values()],
            "accounts": [a.to_dict() for a in self.accounts.values()],
            "default_accounts": dict(self.default_accounts),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Policy:
        return cls(
            [Qos.from_dict(q) for q in raw.get("qos", ())],
            [AccountDef.from_dict(a) for a in raw.get("accounts", ())],
            {str(k): str(v) for k, v in raw.get("default_accounts", {}).items()},
            str(raw.get("default_qos", DEFAULT_QOS)),
        )

    # ------------------------------------------------------------ derived
    @property
    def enforced(self) -> bool:
        """Whether accounts are configured (and so checked at submit)."""
        return bool(self.accounts)

    def share_tree(self) -> ShareTree:
        return ShareTree(
            tuple(Account(a.name, a.shares, dict(a.users)) for a in self.accounts.values()),
            default_account="default",
        )

    def accounts_of(self, user: str) -> list[str]:
        return sorted(a.name for a in self.accounts.values() if user in a.users)

    def default_account(self, user: str) -> str:
        """The account a job of ``user`` is charged to when it names none."""
        if not self.enforced:
            return "default"
        acct = self.default_accounts.get(user)
        if acct and acct in self.accounts and user in self.accounts[acct].users:
            return acct
        mine = self.accounts_of(user)
        return mine[0] if mine else ""

    def max_qos_priority(self) -> int:
        return max((q.priority for q in self.qos.values()), default=0)

    def resolve(self, user: str, account: str, qos: str) -> tuple[str, str]:
        """The (account, qos) a submission of ``user`` runs under.

        Raises:
            InvalidRequest: an account the user does not belong to, or an unknown QOS.
        """
        account = account.strip()
        if self.enforced:
            account = account or self.default_account(user)
            a = self.accounts.get(account)
            if a is None or user not in a.users:
                raise InvalidRequest(INVALID_ACCOUNT)
        else:
            account = account or "default"
        qos = qos.strip() or self.default_qos
        if qos not in self.qos:
            raise InvalidRequest(INVALID_QOS)
        return account, qos

    def never_runs(self, qos: str, account: str, gpus: int, cpus: int, time_limit: int) -> bool:
        """Whether a job's size alone exceeds its QOS's or account's limits.

        ``time_limit`` in seconds (-1 unlimited, 0 = partition default: not checked).
        """
        q = self.qos.get(qos)
        a = self.accounts.get(account)
        limits = [a.grp_tres] if a else []
        if q is not None:
            limits += [q.max_tres_per_user, q.grp_tres]
            if q.max_wall >= 0 and (time_limit < 0 or time_limit > q.max_wall):
                return True
            if q.max_jobs_per_user == 0 or q.max_submit_jobs_per_user == 0:
                return True
        return any(
            (t.gpu >= 0 and gpus > t.gpu) or (t.cpu >= 0 and cpus > t.cpu) for t in limits
        )

    # ------------------------------------------------------------ changes (gctl)
    def change(self, verb: str, entity: str, name: str, fields: Mapping[str, str]) -> None:
        """Apply one ``gctl create|modify|delete qos|account|user NAME K=V...`` command.

        Raises:
            InvalidRequest: unknown entity, name, or field, or a bad value.
        """
        verb, entity = verb.lower(), entity.lower()
        if not name:
            raise InvalidRequest(f"No {entity} name given")
        if entity == "qos":
            self._change_qos(verb, name, fields)
        elif entity == "account":
            self._change_account(verb, name, fields)
        elif entity == "user":
            self._change_user(verb, name, fields)
        else:
            raise InvalidRequest(f"Unknown entity {entity!r} (qos, account, user)")
        self.version += 1

    def _change_qos(self, verb: str, name: str, fields: Mapping[str, str]) -> None:
        if verb == "create":
            if name in self.qos:
                raise InvalidRequest(f"QOS {name} already exists")
            self.qos[name] = _qos_set(Qos(name), fields)
        elif verb == "modify":
            if name not in self.qos:
                raise InvalidRequest(INVALID_QOS)
            self.qos[name] = _qos_set(self.qos[name], fields)
        elif verb == "delete":
            if name not in self.qos:
                raise InvalidRequest(INVALID_QOS)
            if name == self.default_qos:
                raise InvalidRequest(f"QOS {name} is the default QOS and cannot be deleted")
            del self.qos[name]
        else:
            raise InvalidRequest(f"Unknown command {verb!r}")
        for q in self.qos.values():
            missing = [p for p in q.preempt if p not in self.qos]
            if missing:
                raise InvalidRequest(f"QOS {q.name}: Preempt names unknown QOS {missing[0]}")

    def _change_account(self, verb: str, name: str, fields: Mapping[str, str]) -> None:
        a = self.accounts.get(name)
        if verb == "create":
            if a is not None:
                raise InvalidRequest(f"Account {name} already exists")
            a = AccountDef(name)
        elif a is None:
            raise InvalidRequest(INVALID_ACCOUNT)
        elif verb == "delete":
            del self.accounts[name]
            for user, acct in list(self.default_accounts.items()):
                if acct == name:
                    del self.default_accounts[user]
            return
        elif verb != "modify":
            raise InvalidRequest(f"Unknown command {verb!r}")
        for key, value in fields.items():
            k = key.lower()
            if k in ("fairshare", "shares"):
                a = dataclasses.replace(a, shares=_int(value, key, 0))
            elif k == "grptres":
                a = dataclasses.replace(a, grp_tres=parse_tres(value))
            else:
                raise InvalidRequest(f"Unknown account field {key}")
        self.accounts[name] = a

    def _change_user(self, verb: str, name: str, fields: Mapping[str, str]) -> None:
        f = {k.lower(): v for k, v in fields.items()}
        unknown = set(f) - {"account", "defaultaccount", "fairshare", "shares"}
        if unknown:
            raise InvalidRequest(f"Unknown user field {sorted(unknown)[0]}")
        accounts = [x for x in f.get("account", "").split(",") if x]
        if verb == "delete":
            accounts = accounts or self.accounts_of(name)
        elif verb == "create" and not accounts:
            accounts = [f["defaultaccount"]] if f.get("defaultaccount") else []
        elif verb == "modify" and not accounts:
            accounts = self.accounts_of(name)
        if not accounts:
            raise InvalidRequest("Need an Account= for the user")
        for acct in accounts:
            if acct not in self.accounts:
                raise InvalidRequest(INVALID_ACCOUNT)
        shares = _int(f.get("fairshare", f.get("shares", "1")), "Fairshare", 0)
        for acct in accounts:
            a = self.accounts[acct]
            users = dict(a.users)
            if verb == "delete":
                users.pop(name, None)
            elif verb == "create" or "fairshare" in f or "shares" in f:
                users[name] = shares
            elif verb != "modify":
                raise InvalidRequest(f"Unknown command {verb!r}")
            self.accounts[acct] = dataclasses.replace(a, users=users)
        if verb == "delete":
            if self.default_accounts.get(name) in accounts:
                del self.default_accounts[name]
        elif f.get("defaultaccount"):
            d = f["defaultaccount"]
            if d not in self.accounts or name not in self.accounts[d].users:
                raise InvalidRequest(INVALID_ACCOUNT)
            self.default_accounts[name] = d


def _int(value: Any, key: str, minimum: int = -1) -> int:
    try:
        n = int(str(value).strip())
    except ValueError as exc:
        raise InvalidRequest(f"Invalid value for {key}: {value}") from exc
    if n < minimum:
        raise InvalidRequest(f"Invalid value for {key}: {value}")
    return n


def _wall(value: Any, key: str) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.upper() in ("", "-1", "NONE", "UNLIMITED", "INFINITE"):
        return -1
    from gsched.common.durations import DurationError, parse_time_limit

    try:
        return parse_time_limit(text)
    except DurationError as exc:
        raise InvalidRequest(f"Invalid value for {key}: {value}") from exc


def _qos_set(q: Qos, fields: Mapping[str, Any]) -> Qos:
    """``q`` with the fields changed (sacctmgr names or the snake_case config names)."""
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        k = key.lower().replace("_", "")
        if k == "priority":
            changes["priority"] = _int(value, key, 0)
        elif k == "maxwall":
            changes["max_wall"] = _wall(value, key)
        elif k == "maxtresperuser":
            changes["max_tres_per_user"] = parse_tres(value)
        elif k == "maxjobsperuser":
            changes["max_jobs_per_user"] = _int(value, key)
        elif k == "maxsubmitjobsperuser":
            changes["max_submit_jobs_per_user"] = _int(value, key)
        elif k == "grptres":
            changes["grp_tres"] = parse_tres(value)
        elif k == "preempt":
            items = value if isinstance(value, (list, tuple)) else str(value).split(",")
            changes["preempt"] = tuple(sorted({str(p).strip() for p in items if str(p).strip()}))
        elif k == "preemptmode":
            mode = str(value).upper()
            if mode not in PREEMPT_MODES:
                raise InvalidRequest(f"Invalid value for {key}: {value}")
            changes["preempt_mode"] = mode
        elif k == "gracetime":
            changes["grace_time"] = _int(value, key, 0)
        elif k == "usagefactor":
            try:
                factor = float(value)
            except ValueError as exc:
                raise InvalidRequest(f"Invalid value for {key}: {value}") from exc
            if factor < 0:
                raise InvalidRequest(f"Invalid value for {key}: {value}")
            changes["usage_factor"] = factor
        else:
            raise InvalidRequest(f"Unknown QOS field {key}")
    return dataclasses.replace(q, **changes)


# --------------------------------------------------------------- limits
@dataclasses.dataclass(frozen=True)
class Held:
    """What a running (or to-be-started) job holds, for limit accounting."""

    user: str
    account: str
    qos: str
    gpus: int
    cpus: int


class LimitGate:
    """Running totals for one scheduling pass; tells whether a job may start.

    Counts per (qos, user): jobs, GPUs, CPUs; per qos and per account: GPUs, CPUs.
    """

    def __init__(self, policy: Policy, running: Iterable[Held]) -> None:
        self.policy = policy
        # only these can hold a job back (checking the others is skipped)
        self.limited_qos = {q.name for q in policy.qos.values() if q.limited}
        self.limited_accounts = {a.name for a in policy.accounts.values()
                                 if not a.grp_tres.unlimited}
        self.user_jobs: dict[tuple[str, str], int] = {}
        self.user_tres: dict[tuple[str, str], list[int]] = {}
        self.qos_tres: dict[str, list[int]] = {}
        self.acct_tres: dict[str, list[int]] = {}
        for h in running:
            self.add(h)

    def add(self, h: Held) -> None:
        key = (h.qos, h.user)
        self.user_jobs[key] = self.user_jobs.get(key, 0) + 1
        for table, k in ((self.user_tres, key), (self.qos_tres, h.qos),
                         (self.acct_tres, h.account)):
            t = table.setdefault(k, [0, 0])  # type: ignore[attr-defined]
            t[0] += h.gpus
            t[1] += h.cpus

    def reason(self, h: Held, time_limit: int) -> str:
        """SLURM's pending reason if starting ``h`` now breaks a limit, else ``""``.

        ``time_limit``: the job's own limit in seconds (0: partition default, -1:
        unlimited).
        """
        q = self.policy.qos.get(h.qos)
        if q is not None:
            if q.max_wall >= 0 and (time_limit < 0 or time_limit > q.max_wall):
                return "QOSMaxWallDurationPerJobLimit"
            key = (h.qos, h.user)
            if q.max_jobs_per_user >= 0 and self.user_jobs.get(key, 0) + 1 > q.max_jobs_per_user:
                return "QOSMaxJobsPerUserLimit"
            why = _over(q.max_tres_per_user, self.user_tres.get(key), h,
                        "QOSMaxGRESPerUser", "QOSMaxCpuPerUserLimit")
            if why:
                return why
            why = _over(q.grp_tres, self.qos_tres.get(h.qos), h, "QOSGrpGRES", "QOSGrpCpuLimit")
            if why:
                return why
        a = self.policy.accounts.get(h.account)
        if a is not None:
            return _over(a.grp_tres, self.acct_tres.get(h.account), h, "AssocGrpGRES",
                         "AssocGrpCpuLimit")
        return ""


def _over(limit: Tres, used: list[int] | None, h: Held, gpu_reason: str,
          cpu_reason: str) -> str:
    if limit.unlimited:
        return ""
    g, c = used or (0, 0)
    if limit.gpu >= 0 and g + h.gpus > limit.gpu:
        return gpu_reason
    if limit.cpu >= 0 and c + h.cpus > limit.cpu:
        return cpu_reason
    return ""
