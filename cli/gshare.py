"""gshare: gsched's ``sshare`` (fair-share: shares, usage and factor per association).

::

    gshare [-a|--all] [-A|--accounts=LIST] [-u|--users=LIST] [-l|--long]
           [-n|--noheader] [-P|--parsable2] [--help]

Columns: Account, User, RawShares, NormShares, RawUsage, EffectvUsage, FairShare
(``-l`` adds NormUsage). RawUsage is the decayed usage in GPU-equivalent seconds
(TRES-weighted: a GPU-second is 1, see docs/policy.md). Without ``-a`` or ``-u`` the
accounts are shown with the calling user's own lines, as sshare does.
"""

from __future__ import annotations

import getopt
import os
import sys
from typing import IO, Any

from gsched.cli.client import ClientError, finish
from gsched.common.shims import prog_name

__all__ = ["main", "parse_args", "render", "run"]

USAGE = """\
Usage: {prog} [OPTIONS]
  -a, --all             every user of every account
  -A, --accounts=LIST   only these accounts (comma separated)
  -u, --users=LIST      only these users (comma separated)
  -l, --long            add NormUsage
  -n, --noheader        no header lines
  -P, --parsable2       '|'-separated output
      --help            this text
"""


class Args:
    def __init__(self) -> None:
        self.all = False
        self.accounts: list[str] = []
        self.users: list[str] = []
        self.long = False
        self.noheader = False
        self.parsable = False
        self.help = False


def parse_args(argv: list[str]) -> Args:
    """Raises ValueError with the message to print."""
    try:
        opts, rest = getopt.gnu_getopt(argv, "aA:u:lnPv", [
            "all", "accounts=", "users=", "long", "noheader", "parsable2", "help", "usage",
            "verbose"])
    except getopt.GetoptError as exc:
        raise ValueError(str(exc)) from None
    if rest:
        raise ValueError(f"unrecognized argument: {rest[0]}")
    a = Args()
    for opt, value in opts:
        if opt in ("-a", "--all"):
            a.all = True
        elif opt in ("-A", "--accounts"):
            a.accounts.extend(x for x in value.split(",") if x)
        elif opt in ("-u", "--users"):
            a.users.extend(x for x in value.split(",") if x)
        elif opt in ("-l", "--long"):
            a.long = True
        elif opt in ("-n", "--noheader"):
            a.noheader = True
        elif opt in ("-P", "--parsable2"):
            a.parsable = True
        elif opt in ("--help", "--usage"):
            a.help = True
    return a


_COLS = (("Account", 20, True), ("User", 10, False), ("RawShares", 10, False),
         ("NormShares", 11, False), ("RawUsage", 11, False), ("NormUsage", 11, False),
         ("EffectvUsage", 13, False), ("FairShare", 10, False))


def render(rows: list[Any], args: Args) -> str:
    cols = [c for c in _COLS if args.long or c[0] != "NormUsage"]
    table: list[list[str]] = []
    for r in rows:
        values = {
            "Account": (" " if r.user else "") + r.account if not args.parsable else r.account,
            "User": r.user,
            "RawShares": str(r.raw_shares),
            "NormShares": f"{r.norm_shares:.6f}",
            "RawUsage": str(round(r.raw_usage)),
            "NormUsage": f"{r.norm_usage:.6f}",
            "EffectvUsage": f"{r.effective_usage:.6f}",
            "FairShare": f"{r.fairshare:.6f}",
        }
        table.append([values[c[0]] for c in cols])
    lines = []
    if args.parsable:
        if not args.noheader:
            lines.append("|".join(c[0] for c in cols))
        lines += ["|".join(row) for row in table]
    else:
        if not args.noheader:
            lines.append(" ".join(n.ljust(w) if left else n.rjust(w) for n, w, left in cols))
            lines.append(" ".join("-" * w for _, w, _ in cols))
        for row in table:
            lines.append(" ".join(v.ljust(w) if left else v.rjust(w)
                                  for v, (_, w, left) in zip(row, cols, strict=True)))
    return "".join(line + "\n" for line in lines)


def _me() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def run(argv: list[str], prog: str = "gshare", client: Any = None,
        out: IO[str] | None = None, err: IO[str] | None = None, me: str | None = None) -> int:
    from gsched.protos import gsched_pb2 as pb

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parse_args(argv)
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
        reply = client.call("Shares", pb.SharesRequest(users=args.users,
                                                       accounts=args.accounts))
    except ClientError as exc:
        err.write(f"{prog}: error: {exc.message}\n")
        return 1
    rows = list(reply.rows)
    if not args.all and not args.users:
        who = me if me is not None else _me()
        rows = [r for r in rows if not r.user or r.user == who]
    out.write(render(rows, args))
    return 0


def main() -> None:
    finish(run(sys.argv[1:], prog_name("gshare")))
