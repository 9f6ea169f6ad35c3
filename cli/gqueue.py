"""gqueue: the jobs in the queue, as SLURM's squeue shows them.

Filters go to the controller in a ``JobFilter`` and are applied again here, so an
older controller that ignores one still gives the right answer. Without ``-t``
the controller returns active jobs only; ``-t all`` and ``-j`` (squeue shows a
requested job whatever its state) ask for finished jobs still in memory too.

Only ``-j`` with a single id that does not exist is an error (``Invalid job id
specified``, exit 1): squeue fetches one job in that case and lists whatever it
finds otherwise, so ``-j 1,999999`` prints job 1 and exits 0 (scripts poll that way).

Startup matters (``squeue`` takes ~40 ms with 5,000 jobs): argparse and the format
engine only; grpc is imported by the client once the options are known good.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from gsched.cli import formats

if TYPE_CHECKING:
    from gsched.protos import gsched_pb2 as pb

__all__ = ["build_request", "filter_jobs", "main", "parse_args", "render"]


class _Parser(argparse.ArgumentParser):
    """argparse that fails like squeue: one line, a hint, exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(
            1, f'{self.prog}: error: {message}\nTry "{self.prog} --help" for more information\n'
        )


def _parser(prog: str) -> _Parser:
    p = _Parser(
        prog=prog,
        add_help=False,
        description="View the jobs in the gsched queue (SLURM squeue).",
        epilog="-s/--steps lists running job steps (grun/srun) as JOBID.STEPID.",
    )
    a = p.add_argument
    a("-a", "--all", action="store_true", help="all partitions (accepted; gsched hides none)")
    a("-A", "--account", help="only jobs charged to these accounts (comma separated)")
    a("-h", "--noheader", action="store_true", help="no header line")
    a("-i", "--iterate", metavar="SECONDS", help="repeat every SECONDS seconds")
    a("-j", "--jobs", nargs="?", const="", metavar="JOBS", help="comma separated job ids")
    a("-l", "--long", action="store_true", help="long report (state, time limit, date line)")
    a("-M", "--clusters", help="accepted for compatibility; no effect")
    a("--me", action="store_true", help="only my jobs")
    a("-n", "--name", help="comma separated job names")
    a("-o", "--format", help="squeue format string, e.g. '%%.18i %%.9P %%j'")
    a("-O", "--Format", dest="long_format", help="squeue -O field list, e.g. jobid,name:30")
    a("-p", "--partition", "--partitions", dest="partition", help="comma separated partitions")
    a("-q", "--qos", help="only jobs of these QOS (comma separated)")
    a("-r", "--array", action="store_true",
      help="one line per pending array task (default: A_[0-99] on one line)")
    a("-s", "--steps", nargs="?", const="", metavar="STEPS",
      help="running job steps (optionally only these JOBID.STEPID, comma separated)")
    a("-S", "--sort", help="sort fields, e.g. '-p,i' (squeue letters)")
    a("--start", action="store_true", help="pending jobs with their expected start")
    a("-t", "--states", help="comma separated states (names or codes) or 'all'")
    a("-u", "--user", "--users", dest="user", help="comma separated user names or ids")
    a("-v", "--verbose", action="count", default=0, help="print the options used on stderr")
    a("-V", "--version", action="store_true", help="print the version and exit")
    a("-w", "--nodelist", "--nodes", dest="nodelist", help="jobs on these nodes (hostlist)")
    a("--json", action="store_true", help="SLURM's JSON document instead of a table")
    a("--help", action="help", help="show this help and exit")
    a("--usage", action="store_true", help="show a brief usage line and exit")
    a("extra", nargs="*", help=argparse.SUPPRESS)
    return p


def _split(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def _job_ids(text: str) -> list[int]:
    ids = []
    for token in _split(text):
        head = token.split("_", 1)[0].split(".", 1)[0]
        if not head.isdigit() or int(head) <= 0:
            raise formats.OptionError(f"Invalid job id: {token}")
        ids.append(int(head))
    return ids


def _me() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, prog: str = "gqueue"
) -> argparse.Namespace:
    """Parse gqueue's command line (and the SQUEUE_* environment) into options.

    Besides the raw options the result carries what :func:`build_request` and
    :func:`render` need: ``fmt`` (a :class:`formats.Format`), ``sort``, ``job_ids``,
    ``users``, ``states``, ``all_states``, ``partitions``, ``names``, ``nodes``,
    ``date_line``, ``detail`` and ``warnings`` (lines to print on stderr).

    Raises:
        formats.OptionError: invalid values (the message is squeue's).
        SystemExit: unknown options (exit 1), ``--help`` (exit 0).
    """
    env = os.environ if env is None else env
    parser = _parser(prog)
    takes = {
        s
        for act in parser._actions
        if act.nargs is None and act.option_strings
        for s in act.option_strings
    }
    longs = [s for act in parser._actions for s in act.option_strings if s.startswith("--")]
    raw = list(sys.argv[1:] if argv is None else argv)
    opts = parser.parse_args(formats.normalize_argv(raw, takes, longs))

    if opts.format is not None and opts.long_format is not None:
        raise formats.OptionError("-o (--format) is incompatible with -O (--Format)")
    if opts.long and opts.format is not None:
        raise formats.OptionError(
            "Options -o(--format) and -l(--long) are mutually exclusive. Please remove one and retry."
        )
    opts.warnings = []

    # job ids: -j LIST, or -j followed by the list as a plain word (squeue's optional argument)
    jobs_text = opts.jobs or ""
    extra = list(opts.extra)
    if opts.jobs is not None and not jobs_text and extra:
        jobs_text = extra.pop(0)
    if opts.steps is not None and not opts.steps and extra:
        opts.steps = extra.pop(0)
    if extra:
        raise formats.OptionError(f"Unrecognized option: {extra[0]}")
    # 12_[1,3] is one id: split on commas outside brackets
    tokens = [t for t in re.split(r",(?![^\[]*\])", jobs_text) if t]
    opts.job_ids = _job_ids(",".join(t.split("_", 1)[0] for t in tokens))
    # array tasks (12_3, 12_[1-5]) are resolved by the controller
    opts.job_refs = [t for t in tokens if "_" in t and "." not in t]
    opts.job_refs_all = [t if "_" in t else t.split(".", 1)[0] for t in tokens]

    users = _split(opts.user) or _split(env.get("SQUEUE_USERS"))
    if opts.me:
        users = [_me()]
    opts.users = users
    opts.partitions = _split(opts.partition) or _split(env.get("SQUEUE_PARTITION"))
    opts.names = _split(opts.name) or _split(env.get("SQUEUE_NAMES"))
    opts.nodes = []
    if opts.nodelist:
        from gsched.common.hostlist import expand

        try:
            opts.nodes = expand(opts.nodelist)
        except ValueError:
            raise formats.OptionError(f"'{opts.nodelist}' invalid entry for --nodelist") from None

    states_text = opts.states if opts.states is not None else env.get("SQUEUE_STATES")
    if states_text is None and opts.start:
        states_text = "PD"
    opts.states_list, opts.all_states = formats.parse_job_states(states_text or "")
    # squeue shows explicitly requested jobs in any state
    if opts.job_ids and states_text is None:
        opts.all_states = True

    if opts.iterate is not None:
        if not opts.iterate.isdigit() or int(opts.iterate) <= 0:
            raise formats.OptionError(f"--iterate={opts.iterate}")
        opts.iterate = int(opts.iterate)

    # output format: explicit options first, then the environment, then squeue's default
    if opts.format is not None:
        spec = opts.format
    elif opts.long_format is not None:
        spec = None
    elif opts.start:
        spec = formats.SQUEUE_START_FORMAT
    elif opts.long:
        spec = formats.SQUEUE_LONG_FORMAT
    elif env.get("SQUEUE_FORMAT"):
        spec = env["SQUEUE_FORMAT"]
    elif env.get("SQUEUE_FORMAT2"):
        spec, opts.long_format = None, env["SQUEUE_FORMAT2"]
    else:
        spec = formats.SQUEUE_DEFAULT_FORMAT
    if spec is not None and spec.strip().lower() == "%all":
        spec = formats.squeue_all_format()
    if spec is not None:
        opts.fmt = formats.parse_format(spec)
    else:
        opts.fmt = formats.parse_squeue_long_format(opts.long_format)
    for code in formats.unknown_codes(opts.fmt, "squeue"):
        opts.warnings.append(f"Invalid job format specification: {code}")

    opts.sort = opts.sort or env.get("SQUEUE_SORT") or ("S" if opts.start else "P,t,-p")
    formats.parse_sort(opts.sort)  # validate now, fail before connecting
    opts.date_line = (opts.long or opts.iterate is not None) and not opts.noheader
    opts.detail = opts.json or formats.needs_spec(opts.fmt)
    return opts


def build_request(opts: argparse.Namespace) -> pb.ListJobsRequest:
    """The ``ListJobsRequest`` for ``opts``."""
    from gsched.protos import gsched_pb2 as pbm

    return pbm.ListJobsRequest(
        filter=pbm.JobFilter(
            job_ids=[] if opts.job_refs else opts.job_ids,
            job_refs=opts.job_refs_all if opts.job_refs else [],
            users=opts.users,
            states=opts.states_list,
            partitions=opts.partitions,
            names=opts.names,
            all_states=opts.all_states,
            detail=opts.detail,
        ),
        with_steps=opts.steps is not None,
        with_start=bool(opts.start),
    )


def filter_jobs(jobs: Iterable[pb.JobInfo], opts: argparse.Namespace) -> list[pb.JobInfo]:
    """Apply ``opts``'s filters again on this side (the controller should have)."""
    ids = set() if opts.job_refs else set(opts.job_ids)
    users = set(opts.users)
    states = set(opts.states_list)
    parts = set(opts.partitions)
    names = set(opts.names)
    nodes = set(opts.nodes)
    accounts = set(_split(getattr(opts, "account", None)))
    qos = set(_split(getattr(opts, "qos", None)))
    finished = formats.FINISHED_JOB_STATES
    out = []
    for j in jobs:
        if ids and j.job_id not in ids and j.array_job_id not in ids:
            continue
        if users and j.user not in users and str(j.uid) not in users:
            continue
        if states:
            if j.state not in states:
                continue
        elif not opts.all_states and j.state in finished:
            continue
        if parts and j.partition not in parts and not parts.intersection(j.partition.split(",")):
            continue
        if names and j.name not in names:
            continue
        if nodes and not nodes.intersection(j.nodes):
            continue
        if accounts and j.account not in accounts:
            continue
        if qos and j.qos not in qos:
            continue
        out.append(j)
    return out


def render(reply: pb.ListJobsReply, opts: argparse.Namespace, *, cluster: str = "gsched") -> str:
    """The text gqueue prints for ``reply`` (ends with a newline unless empty)."""
    import time

    now = reply.now or time.time()
    formats.apply_planned(reply)
    jobs = filter_jobs(reply.jobs, opts)
    if opts.array:
        jobs = formats.expand_array_tasks(jobs)
    if opts.json:
        return formats.jobs_json(formats.sort_jobs(jobs, opts.sort, now), now, cluster=cluster)
    lines = [formats.date_line(now)] if opts.date_line else []
    if opts.steps is not None:
        wanted = {s.strip() for s in opts.steps.split(",") if s.strip()}
        shown = {j.job_id for j in jobs}
        steps = [
            s for s in reply.steps
            if s.job_id in shown and (not wanted or f"{s.job_id}.{s.step_id}" in wanted)
        ]
        fmt = formats.parse_format(opts.format) if opts.format else None
        lines.extend(formats.render_steps(steps, jobs, fmt, now, header=not opts.noheader))
    else:
        jobs = formats.sort_jobs(jobs, opts.sort, now)
        lines.extend(formats.render_jobs(jobs, opts.fmt, now, header=not opts.noheader))
    return "\n".join(lines) + "\n" if lines else ""


def _print_options(opts: argparse.Namespace) -> None:
    sys.stderr.write(
        "-----------------------------\n"
        f"all         = {str(opts.all).lower()}\n"
        f"format      = {opts.format}\n"
        f"iterate     = {opts.iterate or 0}\n"
        f"jobs        = {','.join(map(str, opts.job_ids)) or '(null)'}\n"
        f"names       = {','.join(opts.names) or '(null)'}\n"
        f"partitions  = {','.join(opts.partitions) or '(null)'}\n"
        f"sort        = {opts.sort}\n"
        f"start_flag  = {int(opts.start)}\n"
        f"states      = {','.join(opts.states_list) or ('all' if opts.all_states else '(null)')}\n"
        f"users       = {','.join(opts.users) or '(null)'}\n"
        f"verbose     = {opts.verbose}\n"
        "-----------------------------\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``gqueue`` (and of the ``squeue`` shim)."""
    from gsched.cli.client import ClientError, connect, fail, finish
    from gsched.common.shims import prog_name

    prog = prog_name("gqueue")
    try:
        opts = parse_args(argv, prog=prog)
    except formats.OptionError as exc:
        fail(prog, str(exc))
    if opts.usage:
        sys.stdout.write(
            f"Usage: {prog} [-j jobs] [-n name] [-o format] [-p partitions] [--sort fields]\n"
            "              [--start] [-t states] [-u user_name] [--me] [-i seconds] [-ahlrsv]\n"
        )
        finish(0)
    if opts.version:
        import gsched

        sys.stdout.write(f"gsched {gsched.__version__}\n")
        finish(0)
    for line in opts.warnings:
        sys.stderr.write(f"{prog}: error: {line}\n")
    if opts.verbose:
        _print_options(opts)

    client = connect(prog)
    request = build_request(opts)
    first = True
    while True:
        try:
            reply = client.call("ListJobs", request)
        except ClientError as exc:
            if exc.code == "NOT_FOUND" and opts.job_ids:
                fail(prog, "Invalid job id specified")
            fail(prog, exc.message)
        if len(opts.job_ids) == 1 and not opts.job_refs and not any(
            opts.job_ids[0] in (j.job_id, j.array_job_id) for j in reply.jobs
        ):
            fail(prog, "Invalid job id specified")
        text = render(reply, opts, cluster=client.cluster_name)
        if not first:
            text = "\n" + text
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            finish(0)
        if opts.iterate is None:
            break
        first = False
        import time

        time.sleep(opts.iterate)
    finish(0)


if __name__ == "__main__":
    main()
