"""gcancel: gsched's ``scancel``.

::

    gcancel [-b] [-f] [-i] [-Q] [-v] [-s SIGNAL] [-u USER | --me] [-n NAME]
            [-t PENDING|RUNNING|SUSPENDED] [-p PARTITION] [JOB_ID[,JOB_ID...] ...]

Behaviour copied from SLURM 22.05's scancel:

* cancelling a job that does not exist or has already finished prints nothing and
  exits 0; with ``-v`` it prints ``Terminating job N`` and the error, still exit 0;
* any other per-job error (``Access/permission denied``) is printed as
  ``scancel: error: Kill job error on job id N: ...`` and makes the exit status 1;
* with ``-s SIGNAL`` (other than KILL) those "already done" errors are not ignored:
  silent without ``-v``, but exit 1;
* ``-s KILL`` / ``-s 9`` is a plain cancel (SIGKILL is scancel's default);
* filters with ids restrict the ids; filters alone pick the caller's matching jobs.

Filters gsched cannot apply (``-A``, ``-q``, ``-R``, ``-w``, ...) are refused rather
than ignored: ignoring a filter would cancel more jobs than asked for.
"""

from __future__ import annotations

import dataclasses
import getopt
import re
import signal as signal_mod
import sys
from typing import IO, Any

from gsched.cli.client import ClientError, finish
from gsched.common.shims import prog_name

__all__ = ["CancelArgs", "CancelError", "main", "parse_args", "parse_signal", "run"]

SLURM_PROG = "scancel"

# sig_name2num's table (src/common/proc_args.c), in SLURM's order.
SIGNAL_NAMES = (
    "HUP", "INT", "QUIT", "ABRT", "KILL", "ALRM", "TERM", "USR1", "USR2",
    "URG", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "XCPU",
)  # fmt: skip

STATES = {
    "PENDING": "PENDING",
    "PD": "PENDING",
    "RUNNING": "RUNNING",
    "R": "RUNNING",
    "SUSPENDED": "SUSPENDED",
    "S": "SUSPENDED",
}

# Errors scancel stays quiet about when cancelling (SIGKILL): the job is gone anyway.
IGNORED_WHEN_CANCELLING = frozenset(
    {"Invalid job id specified", "Job/step already completing or completed"}
)

_SHORT = "A:bfHiM:n:p:Qq:R:s:t:u:vVw:"
_LONG = [
    "account=", "batch", "ctld", "full", "help", "hurry", "interactive", "cluster=",
    "clusters=", "jobname=", "me", "name=", "nodelist=", "partition=", "qos=", "quiet",
    "reservation=", "sibling=", "signal=", "state=", "usage", "user=", "verbose",
    "version", "wckey=",
]  # fmt: skip
_UNSUPPORTED = {
    "-A": "--account", "--account": "--account",
    "-M": "--clusters", "--cluster": "--clusters", "--clusters": "--clusters",
    "-q": "--qos", "--qos": "--qos",
    "-R": "--reservation", "--reservation": "--reservation",
    "-w": "--nodelist", "--nodelist": "--nodelist",
    "--sibling": "--sibling",
    "--wckey": "--wckey",
}  # fmt: skip

USAGE = """\
Usage: {prog} [OPTIONS] [job_id[,job_id...]]
  -b, --batch                     signal batch shell for specified job
  -f, --full                      signal batch shell and all steps for specified job
  -i, --interactive               require response from user for each job
  -n, --name=job_name             act only on jobs with this name
  -p, --partition=partition       act only on jobs in this partition
  -Q, --quiet                     disable warnings
  -s, --signal=name | integer     signal to send to job, default is SIGKILL
  -t, --state=states              act only on jobs in this state.  Valid job
                                  states are PENDING, RUNNING and SUSPENDED
  -u, --user=user_name            act only on jobs of this user
      --me                        act only on your own jobs
  -V, --version                   output version information and exit
  -v, --verbose                   verbosity level
"""


class CancelError(Exception):
    """A usage error: printed, exit 1, nothing sent to the controller.

    Args:
        lines: the message.
        bare: scancel prints it with plain ``fprintf`` (no ``scancel: error:``).
        raw: printed as is for every program name (getopt's messages).
    """

    def __init__(self, *lines: str, bare: bool = False, raw: bool = False) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = lines
        self.bare = bare
        self.raw = raw

    def render(self, prog: str) -> str:
        """The text to write on stderr for ``prog``."""
        if self.raw or (self.bare and prog == SLURM_PROG):
            return "".join(f"{line}\n" for line in self.lines)
        return "".join(f"{prog}: error: {line}\n" for line in self.lines)


@dataclasses.dataclass
class CancelArgs:
    """The parsed command line. ``signal`` 0 means cancel (SIGKILL semantics)."""

    job_ids: list[int] = dataclasses.field(default_factory=list)
    unsupported_ids: list[str] = dataclasses.field(default_factory=list)  # step ids
    job_refs: list[str] = dataclasses.field(default_factory=list)  # 12_3, 12_[1-5], 12_*
    users: list[str] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)
    states: list[str] = dataclasses.field(default_factory=list)
    partitions: list[str] = dataclasses.field(default_factory=list)
    signal: int = 0
    signal_name: str = ""  # as given, for messages
    batch: bool = False
    full: bool = False
    interactive: bool = False
    verbose: int = 0
    quiet: bool = False
    help: bool = False
    version: bool = False

    @property
    def has_filters(self) -> bool:
        return bool(self.users or self.names or self.states or self.partitions)


def parse_signal(text: str) -> int:
    """SLURM's ``sig_name2num``: ``KILL``, ``SIGKILL``, ``kill``, ``9`` -> 9; 0 if unknown."""
    stripped = text.strip()
    try:
        num = int(stripped)
    except ValueError:
        pass
    else:
        return num if 0 < num < 65 else 0
    name = stripped.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in SIGNAL_NAMES:
        return int(getattr(signal_mod, f"SIG{name}"))
    return 0


def _split_ids(word: str) -> list[str]:
    """Split on commas outside ``[...]`` (``12_[1,3],14`` is two ids)."""
    out, depth, cur = [], 0, ""
    for ch in word:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


_PLAIN_ID = re.compile(r"\d+")
# 12_[1-3], 12_*, 12_3, 12_3.0, 12.0: SLURM syntax for array tasks and steps.
_ARRAY_OR_STEP_ID = re.compile(r"(\d+)(?:_\[[^\]]+\]|(?:_\*|_\d+)(?:\.\d+)?|\.\d+)")


def _parse_id(token: str) -> tuple[int, bool]:
    """``(job_id, plain)``; plain is False for array/step ids.

    Raises:
        CancelError: not a job id (``Invalid job id X`` as scancel says).
    """
    if _PLAIN_ID.fullmatch(token) and int(token) > 0:
        return int(token), True
    match = _ARRAY_OR_STEP_ID.fullmatch(token)
    if match and int(match.group(1)) > 0:
        return int(match.group(1)), False
    raise CancelError(f"Invalid job id {token}")


def _user(name: str) -> str:
    import pwd

    try:
        if name.isdigit():
            try:
                return pwd.getpwuid(int(name)).pw_name
            except KeyError:
                return name
        return pwd.getpwnam(name).pw_name
    except KeyError:
        raise CancelError(f"Invalid user name: {name}") from None


def _me() -> str:
    import os
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def parse_args(argv: list[str], prog: str = "gcancel") -> CancelArgs:
    """Parse a gcancel command line (without the program name).

    Raises:
        CancelError: bad option, signal, state, user or job id, or no job identification.
    """
    try:
        opts, words = getopt.gnu_getopt(argv, _SHORT, _LONG)
    except getopt.GetoptError as exc:
        raise CancelError(
            f"{prog}: {_getopt_message(exc)}",
            f'Try "{prog} --help" for more information',
            raw=True,
        ) from None
    args = CancelArgs()
    for opt, value in opts:
        if opt in _UNSUPPORTED:
            raise CancelError(f"{_UNSUPPORTED[opt]} is not supported by gsched")
        if opt in ("-b", "--batch"):
            args.batch = True
        elif opt in ("-f", "--full"):
            args.full = True
        elif opt in ("-H", "--hurry", "--ctld"):
            pass  # accepted: nothing to hurry (no burst buffers), always via the controller
        elif opt in ("-i", "--interactive"):
            args.interactive = True
        elif opt in ("-n", "--name", "--jobname"):
            args.names.append(value)
        elif opt in ("-p", "--partition"):
            args.partitions.extend(p for p in value.split(",") if p)
        elif opt in ("-Q", "--quiet"):
            args.quiet = True
        elif opt in ("-s", "--signal"):
            num = parse_signal(value)
            if not num:
                raise CancelError(f"Unknown job signal: {value}", bare=True)
            args.signal = 0 if num == signal_mod.SIGKILL else num
            args.signal_name = value
        elif opt in ("-t", "--state"):
            for state in value.split(","):
                full = STATES.get(state.strip().upper())
                if full is None:
                    raise CancelError(
                        f"Invalid job state specified: {state}",
                        "Valid job states are PENDING, RUNNING, and SUSPENDED",
                        bare=True,
                    )
                args.states.append(full)
        elif opt in ("-u", "--user"):
            args.users.extend(_user(u) for u in value.split(",") if u)
        elif opt == "--me":
            args.users.append(_me())
        elif opt in ("-v", "--verbose"):
            args.verbose += 1
        elif opt in ("-V", "--version"):
            args.version = True
        elif opt in ("--help", "--usage"):
            args.help = True
    if args.help or args.version:
        return args
    for word in words:
        for token in _split_ids(word):
            job_id, plain = _parse_id(token)
            if plain:
                args.job_ids.append(job_id)
            elif "." in token:
                args.unsupported_ids.append(token)
            else:
                args.job_refs.append(token)
    if not (args.job_ids or args.job_refs or args.unsupported_ids or args.has_filters):
        raise CancelError("No job identification provided")
    return args


def _getopt_message(exc: getopt.GetoptError) -> str:
    opt = exc.opt
    long = len(opt) > 1
    if "requires argument" in exc.msg:
        if long:
            return f"option '--{opt}' requires an argument"
        return f"option requires an argument -- '{opt}'"
    if "must not have an argument" in exc.msg:
        return f"option '--{opt}' doesn't allow an argument"
    return f"unrecognized option '--{opt}'" if long else f"invalid option -- '{opt}'"


# ------------------------------------------------------------------ running


def _confirm(args: CancelArgs, job: Any, out: IO[str], inp: IO[str]) -> bool:
    verb = "Signal" if args.signal else "Cancel"
    while True:
        out.write(f"{verb} job_id={job.job_id} name={job.name} partition={job.partition} [y/n]? ")
        out.flush()
        line = inp.readline()
        if not line:
            return False
        if line[:1] in ("y", "Y"):
            return True
        if line[:1] in ("n", "N"):
            return False


def run(
    argv: list[str],
    prog: str = "gcancel",
    client: Any = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    inp: IO[str] | None = None,
) -> int:
    """Run one gcancel command; return the exit status.

    Args:
        argv: the arguments (without the program name).
        prog: name for messages; ``scancel`` switches to SLURM's exact texts.
        client: a :class:`gsched.cli.client.Client` (or a fake with ``call``);
            connected from the configuration when None.
        out, err, inp: streams (default: sys.stdout / sys.stderr / sys.stdin).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    inp = inp or sys.stdin
    try:
        args = parse_args(argv, prog)
    except CancelError as exc:
        err.write(exc.render(prog))
        return 1
    if args.help:
        out.write(USAGE.format(prog=prog))
        return 0
    if args.version:
        from gsched import __version__

        out.write(f"gsched {__version__}\n")
        return 0

    def say(line: str) -> None:
        if not args.quiet:
            err.write(line)

    status = 0
    for token in args.unsupported_ids:
        # Batch job steps cannot be cancelled on their own yet; say so instead of a silent 0.
        status = 1
        say(
            f"{prog}: error: Kill job error on job id {token}: "
            "Requested operation is presently disabled\n"
        )
    if not (args.job_ids or args.job_refs or args.has_filters):
        return status

    from gsched.protos import gsched_pb2 as pb

    if client is None:
        from gsched.cli.client import connect

        client = connect(prog)
    flt = pb.JobFilter(
        job_ids=args.job_ids,
        job_refs=args.job_refs,
        users=args.users,
        names=args.names,
        states=args.states,
        partitions=args.partitions,
    )
    if args.interactive:
        try:
            listed = client.call("ListJobs", pb.ListJobsRequest(filter=flt)).jobs
        except ClientError as exc:
            if exc.code != "NOT_FOUND":
                say(f"{prog}: error: {exc.message}\n")
                return 1
            listed = []
        chosen = [j.job_id for j in listed if _confirm(args, j, out, inp)]
        if not chosen:
            return status
        flt = pb.JobFilter(job_ids=chosen)
    request = pb.CancelRequest(filter=flt, signal=args.signal, batch_only=args.batch)
    try:
        results = list(client.call("Cancel", request).results)
    except ClientError as exc:
        per_job = ("NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION")
        if not (exc.code in per_job and (flt.job_ids or flt.job_refs)):
            say(f"{prog}: error: {exc.message}\n")
            return 1
        results = [pb.JobResult(job_id=i, ok=False, error=exc.message) for i in flt.job_ids]
    for result in results:
        if args.verbose:
            if args.signal:
                num = args.signal
                say(f"{prog}: Signal {num} to job {result.job_label or result.job_id}\n")
            else:
                say(f"{prog}: Terminating job {result.job_label or result.job_id}\n")
        if result.ok:
            continue
        gone = result.error in IGNORED_WHEN_CANCELLING
        if args.verbose or not gone:
            say(f"{prog}: error: Kill job error on job id {result.job_label or result.job_id}: "
                f"{result.error}\n")
        if not (gone and args.signal == 0):
            status = 1
    return status


def main() -> None:
    """Console entry point for ``gcancel`` (and the ``scancel`` shim)."""
    prog = prog_name("gcancel")
    finish(run(sys.argv[1:], prog))
