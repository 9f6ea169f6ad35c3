"""gprio: gsched's ``sprio`` (the factors of each pending job's priority).

::

    gprio [-h|--noheader] [-l|--long] [-n|--norm] [-w|--weights]
          [-j|--jobs=ID[,ID...]] [-u|--user=USER[,USER...]] [--help]

Columns (``%.15i %9r %.8u %.10Y %.10A %.10F %.10J %.10P %.10Q %.6N``): JOBID,
PARTITION, USER, PRIORITY, AGE, FAIRSHARE, JOBSIZE, PARTITION, QOS, NICE, each factor
already multiplied by its ``PriorityWeight*`` (``-n``: the normalised factor in
[0, 1]). ``-l`` adds ACCOUNT, the QOS name and the partition's PriorityTier. ``-w``
prints the configured weights. Jobs appear in scheduling order (tier, priority).
A priority set by an operator (``gctl update JobId=N Priority=P``) replaces the sum.
"""

from __future__ import annotations

import getopt
import sys
from typing import IO, Any

from gsched.cli.client import ClientError, fail, finish
from gsched.common.shims import prog_name

__all__ = ["main", "parse_args", "render", "show"]

USAGE = """\
Usage: {prog} [OPTIONS]
  -h, --noheader        no header line
  -j, --jobs=LIST       only these job ids (comma separated)
  -l, --long            more columns: ACCOUNT, QOSNAME, TIER
  -n, --norm            normalised factors (0..1) instead of weighted ones
  -u, --user=LIST       only these users' jobs (names or uids, comma separated)
  -w, --weights         print the configured weights
      --help            this text
"""


class Args:
    def __init__(self) -> None:
        self.noheader = False
        self.long = False
        self.norm = False
        self.weights = False
        self.jobs: list[int] = []
        self.users: list[str] = []
        self.help = False


def parse_args(argv: list[str], prog: str = "gprio") -> Args:
    """Raises ValueError with the message to print."""
    try:
        opts, rest = getopt.gnu_getopt(argv, "hj:lnu:wv",
                                       ["noheader", "jobs=", "long", "norm", "user=",
                                        "weights", "help", "usage", "verbose"])
    except getopt.GetoptError as exc:
        raise ValueError(str(exc)) from None
    if rest:
        raise ValueError(f"unrecognized argument: {rest[0]}")
    a = Args()
    for opt, value in opts:
        if opt in ("-h", "--noheader"):
            a.noheader = True
        elif opt in ("-l", "--long"):
            a.long = True
        elif opt in ("-n", "--norm"):
            a.norm = True
        elif opt in ("-w", "--weights"):
            a.weights = True
        elif opt in ("-j", "--jobs"):
            for tok in value.split(","):
                if not tok.strip().isdigit():
                    raise ValueError(f"Invalid job id: {tok}")
                a.jobs.append(int(tok))
        elif opt in ("-u", "--user"):
            a.users.extend(u for u in value.split(",") if u)
        elif opt in ("--help", "--usage"):
            a.help = True
    return a


def _num(x: float, norm: bool) -> str:
    return f"{x:.7f}" if norm else str(round(x))


def render(reply: Any, args: Args) -> str:
    norm = args.norm
    head = ["JOBID".rjust(15), "PARTITION".ljust(9), "USER".rjust(8)]
    if args.long:
        head.append("ACCOUNT".rjust(10))
    head += [c.rjust(10) for c in ("PRIORITY", "AGE", "FAIRSHARE", "JOBSIZE", "PARTITION",
                                   "QOS")]
    head.append("NICE".rjust(6))
    if args.long:
        head += ["QOSNAME".rjust(10), "TIER".rjust(5)]
    lines = []
    if not args.noheader:
        lines.append(" ".join(head))
    w = reply.weights
    if args.weights:
        row = ["Weights".rjust(15), "".ljust(9), "".rjust(8)]
        if args.long:
            row.append("".rjust(10))
        row += [str(v).rjust(10) for v in ("", w.age, w.fairshare, w.jobsize, w.partition,
                                           w.qos)]
        lines.append(" ".join(row).rstrip())
    for j in reply.jobs:
        prio = f"{j.priority / 4294967295:.7f}" if norm else str(j.priority)
        factors = ((j.age_norm, j.fairshare_norm, j.jobsize_norm, j.partition_norm, j.qos_norm)
                   if norm else (j.age, j.fairshare, j.jobsize, j.partition_factor,
                                 j.qos_factor))
        row = [str(j.job_id).rjust(15), j.partition[:9].ljust(9), j.user[:8].rjust(8)]
        if args.long:
            row.append(j.account[:10].rjust(10))
        row.append(prio.rjust(10))
        row += [_num(f, norm).rjust(10) for f in factors]
        row.append(str(j.nice).rjust(6))
        if args.long:
            row += [j.qos[:10].rjust(10), str(j.tier).rjust(5)]
        lines.append(" ".join(row))
    return "".join(line + "\n" for line in lines)


def show(client: Any, job_ids: list[int], users: list[str], out: IO[str],
         long: bool = False) -> int:
    """Print the table (also used by ``gctl show priority``)."""
    from gsched.protos import gsched_pb2 as pb

    reply = client.call("Priorities", pb.PrioritiesRequest(job_ids=job_ids, users=users))
    args = Args()
    args.long = long
    out.write(render(reply, args))
    return 0


def run(argv: list[str], prog: str = "gprio", client: Any = None,
        out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    from gsched.protos import gsched_pb2 as pb

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parse_args(argv, prog)
    except ValueError as exc:
        err.write(f"{prog}: error: {exc}\n")
        return 1
    if args.help:
        out.write(USAGE.format(prog=prog))
        return 0
    if client is None:
        from gsched.cli.client import connect

        client = connect(prog)
    try:
        reply = client.call("Priorities", pb.PrioritiesRequest(job_ids=args.jobs,
                                                               users=args.users))
    except ClientError as exc:
        err.write(f"{prog}: error: {exc.message}\n")
        return 1
    if args.jobs and not reply.jobs:
        err.write(f"{prog}: error: Unable to find jobs matching user/id(s) specified\n")
        return 1
    out.write(render(reply, args))
    return 0


def main() -> None:
    prog = prog_name("gprio")
    try:
        finish(run(sys.argv[1:], prog))
    except BrokenPipeError:
        fail(prog, "broken pipe")
