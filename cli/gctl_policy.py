"""gctl's scheduling-policy commands (modelled on ``sacctmgr`` and ``scontrol``).

::

    gctl create qos|account|user NAME [Key=Value ...]
    gctl modify qos|account|user NAME [set] Key=Value ...
    gctl modify qos where name=NAME set Key=Value ...      (sacctmgr's form)
    gctl delete qos|account|user NAME [Account=A]
    gctl reset usage
    gctl show qos [NAME] | account [NAME] | assoc [NAME]

Keys (case-insensitive, sacctmgr's names):

- qos: ``Priority``, ``MaxWall``, ``MaxTRESPerUser``, ``MaxJobsPerUser``,
  ``MaxSubmitJobsPerUser``, ``GrpTRES``, ``Preempt``, ``PreemptMode``, ``GraceTime``,
  ``UsageFactor`` (``-1`` or an empty value clears a limit);
- account: ``Fairshare``, ``GrpTRES``;
- user: ``Account`` (required on create; a comma list), ``DefaultAccount``,
  ``Fairshare``.

Changes need an operator, take effect at the next scheduling pass and are kept in
the database (they survive restarts and win over the configuration file from then on).
"""

from __future__ import annotations

from typing import Any

from gsched.cli.client import ClientError

__all__ = ["ENTITIES", "VERBS", "parse_policy", "run_policy", "show_account", "show_qos"]

VERBS = ("create", "modify", "delete", "reset")
ENTITIES = ("qos", "account", "user", "usage")
_ALIASES = {"add": "create", "remove": "delete", "update": "modify", "associations": "account",
            "assoc": "account", "accounts": "account", "users": "user", "qoses": "qos"}


class PolicyArgs:
    def __init__(self, verb: str, entity: str, name: str, fields: dict[str, str]) -> None:
        self.verb, self.entity, self.name, self.fields = verb, entity, name, fields


def parse_policy(verb: str, words: list[str]) -> PolicyArgs:
    """Parse ``create|modify|delete|reset`` arguments.

    Raises:
        ValueError: the message to print.
    """
    verb = _ALIASES.get(verb.lower(), verb.lower())
    if not words:
        raise ValueError(f"too few arguments for keyword:{verb}")
    entity = _ALIASES.get(words[0].lower(), words[0].lower())
    if entity not in ENTITIES:
        raise ValueError(f"invalid entity:{words[0]} for keyword:{verb} (qos, account, user)")
    if verb == "reset":
        if entity != "usage" or len(words) > 1:
            raise ValueError("usage: reset usage")
        return PolicyArgs(verb, entity, "", {})
    if entity == "usage":
        raise ValueError(f"invalid entity:usage for keyword:{verb}")
    name = ""
    fields: dict[str, str] = {}
    for word in words[1:]:
        low = word.lower()
        if low in ("set", "where"):
            continue
        key, sep, value = word.partition("=")
        if not sep:
            if name:
                raise ValueError(f"Unknown argument: {word}")
            name = word
        elif key.lower() in ("name", "names") and not name:
            name = value
        else:
            fields[key] = value
    if not name:
        raise ValueError(f"No {entity} name given")
    if verb == "modify" and not fields:
        raise ValueError("No changes specified")
    return PolicyArgs(verb, entity, name, fields)


def run_policy(client: Any, args: PolicyArgs, out: Any) -> None:
    """Send the change; print what sacctmgr would (a short confirmation).

    Raises:
        ClientError: the controller refused it (permission, unknown name, bad value).
    """
    from gsched.protos import gsched_pb2 as pb

    client.call("UpdatePolicy", pb.UpdatePolicyRequest(
        verb=args.verb, entity=args.entity, name=args.name, fields=args.fields))
    if args.verb == "reset":
        out.write(" Fair-share usage reset\n")
        return
    past = {"create": "Added", "modify": "Modified", "delete": "Deleted"}[args.verb]
    out.write(f" {past} {args.entity} {args.name}\n")


def _limit(n: int) -> str:
    return "" if n < 0 else str(n)


def show_qos(client: Any, target: str | None, out: Any) -> int:
    """``gctl show qos``: sacctmgr's ``show qos`` columns, ``|``-free fixed width."""
    from gsched.common.durations import format_hms
    from gsched.protos import gsched_pb2 as pb

    reply = client.call("GetPolicy", pb.GetPolicyRequest())
    rows = [q for q in reply.qos if target is None or q.name == target]
    if target is not None and not rows:
        raise ClientError("NOT_FOUND", f"Invalid qos specification: {target}")
    head = ("Name", "Priority", "GraceTime", "Preempt", "PreemptMode", "UsageFactor",
            "GrpTRES", "MaxWall", "MaxTRESPU", "MaxJobsPU", "MaxSubmitPU")
    table = [head]
    for q in rows:
        table.append((
            q.name, str(q.priority), format_hms(q.grace_time), ",".join(q.preempt),
            q.preempt_mode, f"{q.usage_factor:.6f}", q.grp_tres,
            format_hms(q.max_wall) if q.max_wall >= 0 else "", q.max_tres_per_user,
            _limit(q.max_jobs_per_user), _limit(q.max_submit_jobs_per_user),
        ))
    _print(table, out)
    return 0


def show_account(client: Any, target: str | None, out: Any) -> int:
    """``gctl show account``: sacctmgr ``show assoc``-like: account lines then users."""
    from gsched.protos import gsched_pb2 as pb

    reply = client.call("GetPolicy", pb.GetPolicyRequest())
    rows = [a for a in reply.accounts if target is None or a.name == target]
    if target is not None and not rows:
        raise ClientError("NOT_FOUND", f"Invalid account: {target}")
    table = [("Account", "User", "Share", "GrpTRES", "Def Acct")]
    defaults = dict(reply.default_accounts)
    for a in rows:
        table.append((a.name, "", str(a.shares), a.grp_tres, ""))
        for user in sorted(a.users):
            table.append((a.name, user, str(a.users[user]), "", defaults.get(user, "")))
    _print(table, out)
    return 0


def _print(table: list[tuple[str, ...]], out: Any) -> None:
    widths = [max(10, *(len(r[i]) for r in table)) for i in range(len(table[0]))]
    out.write(" ".join(h.rjust(w) for h, w in zip(table[0], widths, strict=True)) + "\n")
    out.write(" ".join("-" * w for w in widths) + "\n")
    for row in table[1:]:
        out.write(" ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + "\n")
