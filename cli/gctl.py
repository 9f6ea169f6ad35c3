"""gctl: gsched's ``scontrol``.

Supported (keywords and entities case-insensitive, abbreviated as scontrol allows)::

    gctl [-o] [-d] [-Q] [-v] show job [ID] | node [NAME|LIST] | partition [NAME]
                              | hostnames [LIST] | hostlist LIST | config
    gctl hold|release|requeue ID[,ID...] [ID...]
    gctl update JobId=ID[,ID] [TimeLimit=[+|-]T] [Partition=P] [Name=N] [Nice[=N]] [Comment=C]
                [Dependency=LIST] [StartTime=TIME]
    gctl update NodeName=LIST State=DRAIN|RESUME|DOWN|IDLE|UNDRAIN [Reason="..."]
    gctl update NodeName=LIST AllowHost=HOST|-
    gctl ping | version | -V | help
    gctl create|modify|delete qos|account|user NAME [Key=Value...]   (see gctl_policy)
    gctl reset usage
    gctl show qos [NAME] | account [NAME] | priority [JOBID]

Messages: run as ``scontrol`` (through the shim) every message is SLURM 22.05's text
byte for byte, bare lines and ``slurm_load_jobs error: ...`` included; run as
``gctl`` the same text is printed as ``gctl: error: ...``. Parsing (:func:`parse_args`)
needs no controller; :func:`run` takes the client as a parameter so tests can fake it.
"""

from __future__ import annotations

import dataclasses
import getopt
import os
import re
import sys
from typing import IO, Any

from gsched.cli.client import ClientError, finish
from gsched.common.shims import prog_name

__all__ = ["Args", "CtlError", "JobUpdate", "NodeUpdate", "main", "parse_args", "run"]

SLURM_PROG = "scontrol"
# scontrol's limit on |Nice|: NICE_OFFSET - 3.
NICE_LIMIT = 2147483645
NODE_STATES = ("DRAIN", "DOWN", "IDLE", "RESUME", "UNDRAIN")

USAGE = """\
Usage: {prog} [-o] [-d] [-Q] [-v] [-V] COMMAND
  show job [ID]            show one or all jobs
  show node [NAME]         show one or all nodes (NAME may be a hostlist)
  show partition [NAME]    show one or all partitions
  show hostnames [LIST]    expand a hostlist (default: $SLURM_JOB_NODELIST)
  show hostlist LIST       compress a list of host names
  show config              controller configuration
  hold|uhold|release|requeue|requeuehold ID[,ID...]   (ID: N, A_a, A_[1-5])
                           hold by an operator is an admin hold (JobHeldAdmin)
                           that only an operator can release; uhold: a user hold
  update JobId=ID [TimeLimit=[+|-]T] [Partition=P] [Name=N] [Nice=N] [Comment=C]
                  [Dependency=LIST] [StartTime=TIME]
  update NodeName=LIST State=DRAIN|RESUME|DOWN|IDLE|UNDRAIN [Reason=TEXT]
  update NodeName=LIST AllowHost=HOST|-   admins: let a pinned node name (pin_nodes)
                           register from HOST ("-" withdraws; see docs/security.md)
  ping                     report whether the controller is up
  version                  print the version
  update JobId=ID [Priority=N] [QOS=Q] [Account=A]   (Priority: operators only)
  show qos [NAME]          QOS and their limits
  show account [NAME]      accounts, their users and shares
  show priority [JOBID]    pending jobs' priority factors (like sprio)
  create qos|account|user NAME [Key=Value...]       (operators; see docs/policy.md)
  modify qos|account|user NAME set Key=Value...
  delete qos|account|user NAME [Account=A]
  reset usage              forget all fair-share usage
"""


class CtlError(Exception):
    """Something scontrol reports on stderr, then exits 1.

    Args:
        lines: the message, one or more lines.
        bare: scontrol prints these with plain ``fprintf`` (no ``scontrol: error:``).
        perror: scontrol prints ``{perror}: {line}`` (``slurm_perror`` style).
        raw: printed as is whatever the program name (getopt's messages, which
            already start with the program name).
    """

    def __init__(
        self, *lines: str, bare: bool = False, perror: str = "", raw: bool = False
    ) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = lines
        self.bare = bare
        self.perror = perror
        self.raw = raw

    def render(self, prog: str) -> str:
        """The text to write on stderr for ``prog``."""
        if self.raw:
            return "".join(f"{line}\n" for line in self.lines)
        if prog == SLURM_PROG:
            if self.perror:
                return "".join(f"{self.perror}: {line}\n" for line in self.lines)
            if self.bare:
                return "".join(f"{line}\n" for line in self.lines)
        return "".join(f"{prog}: error: {line.rstrip()}\n" for line in self.lines)


@dataclasses.dataclass
class JobUpdate:
    """``update JobId=...``: ``fields`` is what UpdateJobRequest carries.

    ``time_delta`` is +1/-1 for ``TimeLimit=+T``/``-T`` (``fields["TimeLimit"]`` then
    holds the increment, resolved against the job's limit at run time), else 0.
    """

    job_ids: list[int]
    fields: dict[str, str]
    time_delta: int = 0
    job_refs: list[str] = dataclasses.field(default_factory=list)  # 12_3, 12_[1-5]


@dataclasses.dataclass
class NodeUpdate:
    """``update NodeName=...``."""

    names: str
    state: str = ""
    reason: str = ""
    allow_host: str = ""  # admin consent for a pinned node name (docs/security.md)


@dataclasses.dataclass
class Args:
    """The parsed command line."""

    command: str  # show, hold, release, requeue, update, ping, version, help, exit
    entity: str = ""  # for show: job, node, partition, hostnames, hostlist, config
    target: str | None = None
    ids: list[str] = dataclasses.field(default_factory=list)
    job_update: JobUpdate | None = None
    node_update: NodeUpdate | None = None
    oneliner: bool = False
    details: bool = False
    quiet: bool = False
    verbose: int = 0
    user_hold: bool = False  # uhold/holdu: a user hold even for an operator
    policy: Any = None  # gctl_policy.PolicyArgs for create/modify/delete/reset


# An array task or a set of tasks: 12_3, 12_[1-5,7], 12_*
_ARRAY_REF = re.compile(r"[0-9]+_([0-9]+|\[[0-9,:%\-]+\]|\*)\Z")


def _abbrev(word: str, keyword: str, minimum: int) -> bool:
    """scontrol's ``xstrncasecmp(word, keyword, MAX(len(word), minimum)) == 0``."""
    return len(word) >= minimum and keyword.lower().startswith(word.lower())


# ------------------------------------------------------------------ parsing

_KEYWORDS = (
    ("show", "show", 3),
    ("hold", "hold", 4),
    ("hold", "holdu", 5),
    ("hold", "uhold", 5),
    ("release", "release", 3),
    ("requeuehold", "requeuehold", 8),
    ("requeue", "requeue", 3),
    ("update", "update", 1),
    ("ping", "ping", 2),
    ("version", "version", 4),
    ("help", "help", 2),
    ("exit", "exit", 4),
    ("exit", "quit", 4),
)

_ENTITIES = (
    ("config", "config", 1),
    ("hostnames", "hostnames", 5),
    ("hostlist", "hostlist", 5),
    ("job", "jobs", 1),
    ("job", "jobid", 1),
    ("node", "nodes", 1),
    ("node", "nodename", 1),
    ("partition", "partitions", 2),
    ("partition", "partitionname", 2),
    ("qos", "qos", 1),
    ("account", "accounts", 2),
    ("account", "associations", 2),
    ("priority", "priority", 2),
)


def parse_args(argv: list[str], prog: str = "gctl") -> Args:
    """Parse a gctl command line (without the program name).

    ``prog`` only names the program in getopt's messages.

    Raises:
        CtlError: bad options, unknown keyword or entity, or invalid update input;
            nothing was sent to the controller.
    """
    try:
        opts, words = getopt.gnu_getopt(
            argv,
            "adhoQvV",
            ["all", "details", "help", "hide", "oneliner", "quiet", "usage", "verbose", "version"],
        )
    except getopt.GetoptError as exc:
        raise CtlError(
            f"{prog}: {_getopt_message(exc)}",
            f'Try "{prog} --help" for more information',
            raw=True,
        ) from None
    args = Args(command="")
    for opt, _ in opts:
        if opt in ("-o", "--oneliner"):
            args.oneliner = True
        elif opt in ("-d", "--details"):
            args.details = True
        elif opt in ("-Q", "--quiet"):
            args.quiet = True
        elif opt in ("-v", "--verbose"):
            args.verbose += 1
        elif opt in ("-h", "--help", "--usage"):
            args.command = "help"
        elif opt in ("-V", "--version"):
            args.command = "version"
    if args.command:
        return args
    if not words:
        raise CtlError("no command given (interactive mode is not supported)")
    keyword, rest = words[0], words[1:]
    from gsched.cli import gctl_policy

    if keyword.lower() in (*gctl_policy.VERBS, "add", "remove"):
        try:
            args.policy = gctl_policy.parse_policy(keyword, rest)
        except ValueError as exc:
            raise CtlError(str(exc), bare=True) from None
        args.command = "policy"
        return args
    for name, full, minimum in _KEYWORDS:
        if _abbrev(keyword, full, minimum):
            args.command = name
            args.user_hold = full in ("holdu", "uhold")
            break
    else:
        raise CtlError(f"invalid keyword: {keyword}", bare=True)
    if args.command == "show":
        _parse_show(keyword, rest, args)
    elif args.command in ("hold", "release", "requeue", "requeuehold"):
        if not rest:
            raise CtlError(f"too few arguments for keyword:{keyword}", bare=True)
        args.ids = _split_ids(rest)
    elif args.command == "update":
        if not rest:
            raise CtlError(f"too few arguments for {keyword} keyword", bare=True)
        _parse_update(rest, args)
    elif rest:
        raise CtlError(f"too many arguments for keyword:{keyword}", bare=True)
    return args


def _getopt_message(exc: getopt.GetoptError) -> str:
    opt = exc.opt
    long = len(opt) > 1
    if "requires argument" in exc.msg:
        return (
            f"option '--{opt}' requires an argument"
            if long
            else f"option requires an argument -- '{opt}'"
        )
    if "must not have an argument" in exc.msg:
        return f"option '--{opt}' doesn't allow an argument"
    return f"unrecognized option '--{opt}'" if long else f"invalid option -- '{opt}'"


def _parse_show(keyword: str, rest: list[str], args: Args) -> None:
    if not rest:
        raise CtlError(f"too few arguments for keyword:{keyword}", bare=True)
    if len(rest) > 2:
        raise CtlError(f"too many arguments for keyword:{keyword}", bare=True)
    tag, sep, value = rest[0].partition("=")
    target: str | None = value if sep else (rest[1] if len(rest) == 2 else None)
    for name, full, minimum in _ENTITIES:
        if _abbrev(tag, full, minimum):
            args.entity = name
            break
    else:
        # scontrol's message ends with a space before the newline.
        raise CtlError(f"invalid entity:{tag} for keyword:{keyword} ", bare=True)
    args.target = target


def _split_ids(words: list[str]) -> list[str]:
    """Job id tokens from ``hold 1,2 3`` / ``hold JobId=4``: split on commas, in order."""
    out: list[str] = []
    for word in words:
        for prefix in ("jobid=", "job="):
            if word.lower().startswith(prefix):
                word = word[len(prefix) :]
                break
        out.extend(tok for tok in word.replace(" ", ",").split(",") if tok)
    return out


def _key_values(rest: list[str], allow_bare_nice: bool) -> list[tuple[str, str, str]]:
    """``(tag, value, original)`` for ``Tag=value`` and ``Tag value`` words, as scontrol reads them."""
    out: list[tuple[str, str, str]] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        tag, sep, value = word.partition("=")
        if sep:
            out.append((tag, value, word))
        elif allow_bare_nice and _abbrev(word, "nice", 2):
            out.append((word, "", word))
        elif i + 1 < len(rest):
            i += 1
            out.append((word, rest[i], f"{word} {rest[i]}"))
        else:
            raise CtlError(f"Invalid input: {word}", "Request aborted", bare=True)
        i += 1
    return out


def _parse_update(rest: list[str], args: Args) -> None:
    job = node = False
    for word in rest:
        tag = word.partition("=")[0]
        if _abbrev(tag, "jobid", 3) or _abbrev(tag, "jobname", 3):
            job = True
        elif _abbrev(tag, "nodename", 3):
            node = True
    if job:
        args.job_update = _parse_job_update(rest)
    elif node:
        args.node_update = _parse_node_update(rest)
    else:
        raise CtlError(
            "No valid entity in update command",
            'Input line must include "NodeName", "PartitionName", "Reservation", "JobId", '
            'or "SlurmctldDebug"',
            bare=True,
        )


def _parse_job_update(rest: list[str]) -> JobUpdate:
    from gsched.common.durations import format_hms, parse_time_limit

    ids_text: str | None = None
    fields: dict[str, str] = {}
    delta = 0
    for tag, value, original in _key_values(rest, allow_bare_nice=True):
        if _abbrev(tag, "jobid", 3):
            ids_text = value
        elif _abbrev(tag, "comment", 3):
            fields["Comment"] = value
        elif _abbrev(tag, "timelimit", 5):
            sign = value[0] if value and value[0] in "+-" else ""
            if sign and ids_text is None:
                raise CtlError("JobId must precede TimeLimit increment or decrement")
            try:
                seconds = parse_time_limit(value[1:] if sign else value)
            except ValueError:
                raise CtlError("Invalid TimeLimit value") from None
            if sign and seconds < 0:
                raise CtlError("Invalid TimeLimit value")
            delta = {"+": 1, "-": -1}.get(sign, 0)
            # Sent in canonical SLURM form: the controller parses it with the same
            # parse_time_limit, and a bare number there would mean minutes.
            fields["TimeLimit"] = "UNLIMITED" if seconds < 0 else format_hms(seconds)
        elif _abbrev(tag, "nice", 2):
            if not value:
                nice = 100
            else:
                try:
                    nice = int(value)
                except ValueError:
                    raise CtlError(f"Invalid Nice value: {value}") from None
            if abs(nice) > NICE_LIMIT:
                raise CtlError(f"Nice value out of range (+/- {NICE_LIMIT}). Value ignored")
            fields["Nice"] = str(nice)
        elif _abbrev(tag, "dependency", 3):
            fields["Dependency"] = value
        elif _abbrev(tag, "starttime", 3) or _abbrev(tag, "begintime", 3):
            fields["StartTime"] = value
        elif _abbrev(tag, "partition", 2):
            fields["Partition"] = value
        elif _abbrev(tag, "priority", 2):
            if not value.isdigit():
                raise CtlError(f"Invalid Priority value: {value}")
            fields["Priority"] = value
        elif _abbrev(tag, "qos", 1):
            fields["QOS"] = value
        elif _abbrev(tag, "account", 1):
            fields["Account"] = value
        elif _abbrev(tag, "name", 2) or _abbrev(tag, "jobname", 4):
            fields["Name"] = value
        else:
            raise CtlError(
                f"Update of this parameter is not supported: {original}",
                "Request aborted",
                bare=True,
            )
    if not fields:
        raise CtlError("No changes specified", bare=True)
    if ids_text is None:
        raise CtlError("No job ID specified")
    tokens = [t for t in re.split(r",(?![^\[]*\])", ids_text) if t]
    if not tokens or not all(
        (t.isdigit() and int(t) > 0) or _ARRAY_REF.match(t) for t in tokens
    ):
        raise CtlError(f"Invalid job id specified for job {ids_text}", bare=True)
    return JobUpdate(
        job_ids=[int(t) for t in tokens if t.isdigit()],
        fields=fields,
        time_delta=delta,
        job_refs=[t for t in tokens if not t.isdigit()],
    )


def _parse_node_update(rest: list[str]) -> NodeUpdate:
    update = NodeUpdate(names="")
    changes = 0
    for word in rest:
        tag, sep, value = word.partition("=")
        if not sep:
            raise CtlError(f"Invalid input: {word}  Request aborted")
        if _abbrev(tag, "nodename", 1):
            update.names = value
        elif _abbrev(tag, "reason", 1):
            if value.startswith('"'):
                value = value[1:]
            if value.endswith('"'):
                value = value[:-1]
            update.reason = value
            changes += 1
        elif _abbrev(tag, "state", 1):
            for state in NODE_STATES:
                if _abbrev(value, state, 3):
                    update.state = state
                    break
            else:
                raise CtlError(
                    f"Invalid input: {word}",
                    "Request aborted",
                    f"Valid states are: {' '.join(NODE_STATES)}",
                    "Not all states are valid given a node's prior state",
                    bare=True,
                )
            changes += 1
        elif _abbrev(tag, "allowhost", 5):
            if not value:
                raise CtlError(f"Invalid input: {word}  Request aborted")
            update.allow_host = value
            changes += 1
        else:
            raise CtlError(
                f"Update of this parameter is not supported: {word}", "Request aborted", bare=True
            )
    if update.state in ("DOWN", "DRAIN") and not update.reason:
        raise CtlError(
            "You must specify a reason when DOWNING or DRAINING a node. Request denied", bare=True
        )
    if not changes:
        raise CtlError("No changes specified", bare=True)
    try:
        from gsched.common.hostlist import expand

        names = expand(update.names)
    except ValueError:
        names = []
    if not names:
        raise CtlError("Invalid node name specified", perror="slurm_update error")
    return update


# ------------------------------------------------------------------ running


class _Session:
    """One invocation: where output goes, and the client, connected on first use."""

    def __init__(
        self,
        prog: str,
        args: Args,
        client: Any,
        out: IO[str],
        err: IO[str],
        environ: dict[str, str],
    ) -> None:
        self.prog = prog
        self.args = args
        self._client = client
        self.out = out
        self.err = err
        self.environ = environ

    @property
    def client(self) -> Any:
        if self._client is None:
            from gsched.cli.client import connect

            self._client = connect(self.prog)
        return self._client

    def call(self, method: str, request: Any) -> Any:
        return self.client.call(method, request)

    def report(self, error: CtlError) -> None:
        """A runtime (controller-side) error: suppressed by -Q, like scontrol's quiet_flag."""
        if not self.args.quiet:
            self.err.write(error.render(self.prog))


def run(
    argv: list[str],
    prog: str = "gctl",
    client: Any = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """Run one gctl command; return the exit status.

    Args:
        argv: the arguments (without the program name).
        prog: name for messages; ``scontrol`` switches to SLURM's exact texts.
        client: a :class:`gsched.cli.client.Client` (or a fake with ``call``);
            connected from the configuration on first use when None.
        out, err: streams (default: sys.stdout / sys.stderr).
        environ: environment for ``show hostnames`` (default: os.environ).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parse_args(argv, prog)
    except CtlError as exc:
        err.write(exc.render(prog))
        return 1
    session = _Session(
        prog, args, client, out, err, dict(os.environ if environ is None else environ)
    )
    handler = _HANDLERS[args.command]
    try:
        return handler(session)
    except CtlError as exc:
        session.report(exc)
        return 1
    except ClientError as exc:
        session.report(CtlError(exc.message))
        return 1


def _cmd_help(s: _Session) -> int:
    s.out.write(USAGE.format(prog=s.prog))
    return 0


def _cmd_version(s: _Session) -> int:
    from gsched import __version__

    s.out.write(f"gsched {__version__}\n")
    return 0


def _cmd_exit(s: _Session) -> int:
    return 0


def _cmd_ping(s: _Session) -> int:
    from gsched.cli.show import ping_line
    from gsched.protos import gsched_pb2 as pb

    try:
        s.call("Ping", pb.PingRequest())
    except ClientError:
        s.out.write(ping_line(s.client.address, up=False))
        return 1
    s.out.write(ping_line(s.client.address, up=True))
    return 0


def _cmd_show(s: _Session) -> int:
    return _SHOW[s.args.entity](s, s.args.target)


def _show_job(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_job
    from gsched.protos import gsched_pb2 as pb

    perror = "slurm_load_jobs error"
    if target is None:
        flt = pb.JobFilter(all_states=True, detail=True)
    elif target.isdigit() and int(target) > 0:
        flt = pb.JobFilter(job_ids=[int(target)], all_states=True, detail=True)
    elif _ARRAY_REF.match(target):
        flt = pb.JobFilter(job_refs=[target], all_states=True, detail=True)
    else:
        raise CtlError("Invalid job id specified", perror=perror)
    try:
        reply = s.call("ListJobs", pb.ListJobsRequest(filter=flt))
    except ClientError as exc:
        raise CtlError(exc.message, perror=perror) from None
    from gsched.cli.formats import apply_planned

    apply_planned(reply)
    jobs = list(reply.jobs)
    if target is not None and not jobs:
        raise CtlError("Invalid job id specified", perror=perror)
    if not jobs:
        s.out.write("No jobs in the system\n")
        return 0
    now = reply.now or None
    for job in jobs:
        s.out.write(show_job(job, oneliner=s.args.oneliner, now=now, details=s.args.details))
    return 0


def _list_nodes(s: _Session) -> Any:
    from gsched.protos import gsched_pb2 as pb

    try:
        return s.call("ListNodes", pb.ListNodesRequest())
    except ClientError as exc:
        raise CtlError(exc.message, perror="slurm_load_node error") from None


def _show_node(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_node

    wanted: list[str] | None = None
    if target is not None:
        try:
            from gsched.common.hostlist import expand

            wanted = expand(target)
        except ValueError:
            raise CtlError(f"unable to parse node list {target}", bare=True) from None
    reply = _list_nodes(s)
    now = reply.now or None
    by_name = {n.name: n for n in reply.nodes}
    if wanted is None:
        if not reply.nodes:
            s.out.write("No nodes in the system\n")
        for node in reply.nodes:
            s.out.write(show_node(node, s.args.oneliner, s.args.details, now))
        return 0
    status = 0
    for name in wanted:
        node = by_name.get(name)
        if node is None:
            status = 1
            if not s.args.quiet:
                s.out.write(f"Node {name} not found\n")
            continue
        s.out.write(show_node(node, s.args.oneliner, s.args.details, now))
    return status


def _show_partition(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_partition

    reply = _list_nodes(s)
    parts = list(reply.partitions)
    if target is not None:
        parts = [p for p in parts if p.name == target]
        if not parts:
            if not s.args.quiet:
                s.out.write(f"Partition {target} not found\n")
            return 1
    if not parts:
        s.out.write("No partitions in the system\n")
    for p in parts:
        s.out.write(show_partition(p, list(reply.nodes), s.args.oneliner))
    return 0


def _show_hostnames(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_hostnames

    expr = target
    if expr is None:
        expr = s.environ.get("SLURM_JOB_NODELIST") or s.environ.get("SLURM_NODELIST")
    if not expr:
        raise CtlError("host list is empty")
    try:
        s.out.write(show_hostnames(expr))
    except ValueError:
        raise CtlError(f"Invalid hostlist: {expr}", bare=True) from None
    return 0


def _show_hostlist(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_hostlist

    if not target:
        raise CtlError("invalid encode argument", bare=True)
    try:
        s.out.write(show_hostlist(target))
    except ValueError:
        raise CtlError(f"Invalid hostlist: {target}", bare=True) from None
    return 0


def _show_config(s: _Session, target: str | None) -> int:
    from gsched.cli.show import show_config
    from gsched.common.config import conf_path
    from gsched.protos import gsched_pb2 as pb

    try:
        reply = s.call("Ping", pb.PingRequest())
    except ClientError as exc:
        raise CtlError(exc.message, perror="slurm_load_ctl_conf error") from None
    s.out.write(show_config(reply, s.client.address, conf_path()))
    return 0


def _cmd_job_ids(s: _Session) -> int:
    from gsched.protos import gsched_pb2 as pb

    method = {"hold": "Hold", "release": "Release", "requeue": "Requeue",
              "requeuehold": "Requeue"}[s.args.command]
    status = 0
    ids: list[int] = []
    refs: list[str] = []
    for token in s.args.ids:
        if token.isdigit() and int(token) > 0:
            ids.append(int(token))
        elif _ARRAY_REF.match(token):
            refs.append(token)
        else:
            status = 1
            s.report(CtlError(f"Invalid job id specified for job {token}", bare=True))
    if not ids and not refs:
        return status
    try:
        reply = s.call(method, pb.JobIdsRequest(job_ids=ids, job_refs=refs,
                                                hold=s.args.command == "requeuehold",
                                                user_hold=s.args.user_hold))
    except ClientError as exc:
        for job_id in ids:
            s.report(CtlError(f"{exc.message} for job {job_id}", bare=True))
        return 1
    for result in reply.results:
        if not result.ok:
            status = 1
            s.report(CtlError(f"{result.error} for job {result.job_label or result.job_id}",
                              bare=True))
    return status


def _cmd_update(s: _Session) -> int:
    if s.args.node_update is not None:
        return _update_node(s, s.args.node_update)
    assert s.args.job_update is not None
    return _update_job(s, s.args.job_update)


def _update_node(s: _Session, update: NodeUpdate) -> int:
    from gsched.protos import gsched_pb2 as pb

    request = pb.UpdateNodeRequest(names=[update.names], state=update.state, reason=update.reason,
                                   allow_host=update.allow_host)
    try:
        s.call("UpdateNode", request)
    except ClientError as exc:
        raise CtlError(exc.message, perror="slurm_update error") from None
    return 0


def _current_limit(s: _Session, job_id: int) -> int:
    from gsched.protos import gsched_pb2 as pb

    reply = s.call("ListJobs", pb.ListJobsRequest(filter=pb.JobFilter(job_ids=[job_id])))
    for job in reply.jobs:
        if job.job_id == job_id:
            return int(job.time_limit)
    raise ClientError("NOT_FOUND", "Invalid job id specified")


def _update_job(s: _Session, update: JobUpdate) -> int:
    from gsched.common.durations import format_hms, parse_time_limit
    from gsched.protos import gsched_pb2 as pb

    status = 0
    for ref in update.job_refs:
        try:
            s.call("UpdateJob", pb.UpdateJobRequest(job_ref=ref, fields=dict(update.fields)))
        except ClientError as exc:
            status = 1
            s.report(CtlError(f"{exc.message} for job {ref}", bare=True))
    for job_id in update.job_ids:
        fields = dict(update.fields)
        try:
            if update.time_delta:
                step = parse_time_limit(fields["TimeLimit"])
                current = _current_limit(s, job_id)
                if current < 0:
                    raise CtlError(
                        "TimeLimit increment/decrement not possible for an UNLIMITED time limit"
                    )
                if update.time_delta < 0 and step > current:
                    raise CtlError(
                        "TimeLimit decrement larger than current time limit "
                        f"({step // 60} > {current // 60})"
                    )
                fields["TimeLimit"] = format_hms(current + update.time_delta * step)
            s.call("UpdateJob", pb.UpdateJobRequest(job_id=job_id, fields=fields))
        except ClientError as exc:
            status = 1
            s.report(CtlError(f"{exc.message} for job {job_id}", bare=True))
        except CtlError as exc:
            status = 1
            s.report(exc)
    return status


def _show_policy(s: _Session, target: str | None) -> int:
    from gsched.cli import gctl_policy

    fn = gctl_policy.show_qos if s.args.entity == "qos" else gctl_policy.show_account
    return fn(s.client, target, s.out)


def _show_priority(s: _Session, target: str | None) -> int:
    from gsched.cli import gprio

    if target is not None and not target.isdigit():
        raise CtlError("Invalid job id specified")
    return gprio.show(s.client, [int(target)] if target else [], [], s.out, long=True)


def _cmd_policy(s: _Session) -> int:
    from gsched.cli import gctl_policy

    gctl_policy.run_policy(s.client, s.args.policy, s.out)
    return 0


_SHOW = {
    "qos": _show_policy,
    "account": _show_policy,
    "priority": _show_priority,
    "job": _show_job,
    "node": _show_node,
    "partition": _show_partition,
    "hostnames": _show_hostnames,
    "hostlist": _show_hostlist,
    "config": _show_config,
}

_HANDLERS = {
    "help": _cmd_help,
    "version": _cmd_version,
    "exit": _cmd_exit,
    "ping": _cmd_ping,
    "show": _cmd_show,
    "hold": _cmd_job_ids,
    "release": _cmd_job_ids,
    "requeue": _cmd_job_ids,
    "requeuehold": _cmd_job_ids,
    "update": _cmd_update,
    "policy": _cmd_policy,
}


def main() -> None:
    """Console entry point for ``gctl`` (and the ``scontrol`` shim)."""
    prog = prog_name("gctl")
    finish(run(sys.argv[1:], prog))
