"""ginfo: partitions and nodes, as SLURM's sinfo shows them.

Views: the default partition view (one line per partition and node state),
``-s`` (one line per partition, ``NODES(A/I/O/T)``), ``-N`` (one line per node and
partition; ``-N -l`` adds GRES and GRES_USED after REASON, see
:mod:`gsched.cli.formats`), ``-R`` (down and drained nodes by reason) and ``-o``
formats with sinfo's letters. ``--json`` prints SLURM's v0.0.38 document.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gsched.cli import formats

if TYPE_CHECKING:
    from gsched.protos import gsched_pb2 as pb

__all__ = ["build_request", "main", "parse_args", "render"]

# -R lists the nodes that cannot run jobs
_REASON_STATES = frozenset({"DOWN", "DRAINED", "DRAINING"})


class _Parser(argparse.ArgumentParser):
    """argparse that fails like sinfo: one line, a hint, exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(
            1, f'{self.prog}: error: {message}\nTry "{self.prog} --help" for more information\n'
        )


def _parser(prog: str) -> _Parser:
    p = _Parser(
        prog=prog, add_help=False, description="View gsched nodes and partitions (SLURM sinfo)."
    )
    a = p.add_argument
    a("-a", "--all", action="store_true", help="all partitions (accepted; gsched hides none)")
    a("-d", "--dead", action="store_true", help="only nodes whose agent is not connected")
    a("-e", "--exact", action="store_true", help="group only exactly alike nodes (always so)")
    a("-h", "--noheader", action="store_true", help="no header line")
    a("-i", "--iterate", metavar="SECONDS", help="repeat every SECONDS seconds")
    a("-l", "--long", action="store_true", help="long report")
    a("-M", "--clusters", help="accepted for compatibility; no effect")
    a("-n", "--nodes", help="only these nodes (hostlist, e.g. n[1-4])")
    a("-N", "--Node", dest="node_view", action="store_true", help="one line per node")
    a(
        "-o",
        "--format",
        help="sinfo format string; gsched extensions: %%K is GRES_USED, %%k is CONFINEMENT "
        "(cgroup2:CONTROLLERS, +devns: other GPUs hidden; none (why): process groups only)",
    )
    a("-p", "--partition", help="comma separated partitions")
    a("-r", "--responding", action="store_true", help="only nodes whose agent is connected")
    a(
        "-R",
        "--list-reasons",
        dest="reasons",
        action="store_true",
        help="why nodes are down or drained",
    )
    a("-s", "--summarize", action="store_true", help="one line per partition")
    a("-S", "--sort", help="accepted for compatibility; no effect")
    a("-t", "--states", help="comma separated node states (idle, mix, alloc, drain, down...)")
    a("-v", "--verbose", action="count", default=0, help="print the options used on stderr")
    a("-V", "--version", action="store_true", help="print the version and exit")
    a("--json", action="store_true", help="SLURM's JSON document instead of a table")
    a("--help", action="help", help="show this help and exit")
    a("--usage", action="store_true", help="show a brief usage line and exit")
    return p


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, prog: str = "ginfo"
) -> argparse.Namespace:
    """Parse ginfo's command line (and SINFO_* environment) into options.

    Adds ``fmt``, ``mode`` (partition, summarize, node, reasons), ``partitions``,
    ``node_names``, ``state_set`` (gsched states or None), ``responding_only``
    (True, False or None), ``date_line`` and ``warnings``.

    Raises:
        formats.OptionError: invalid values.
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
    opts.warnings = []

    partition = opts.partition if opts.partition is not None else env.get("SINFO_PARTITION")
    opts.partitions = [p for p in (partition or "").split(",") if p]
    opts.node_names = []
    if opts.nodes:
        from gsched.common.hostlist import expand

        try:
            opts.node_names = expand(opts.nodes)
        except ValueError:
            raise formats.OptionError(f"'{opts.nodes}' invalid entry for --nodes") from None
    opts.state_set = formats.parse_node_states(opts.states) if opts.states else None
    if opts.reasons and opts.states is None:
        opts.state_set = _REASON_STATES
    opts.responding_only = True if opts.responding else (False if opts.dead else None)

    if opts.iterate is not None:
        if not opts.iterate.isdigit() or int(opts.iterate) <= 0:
            raise formats.OptionError(f"invalid entry for --iterate={opts.iterate}")
        opts.iterate = int(opts.iterate)

    if opts.summarize:
        opts.mode = "summarize"
    elif opts.node_view:
        opts.mode = "node"
    elif opts.reasons:
        opts.mode = "reasons"
    else:
        opts.mode = "partition"
    if opts.format is not None:
        spec = opts.format
    elif opts.summarize:
        spec = formats.SINFO_SUMMARIZE_FORMAT
    elif opts.node_view:
        spec = formats.SINFO_NODE_LONG_FORMAT if opts.long else formats.SINFO_NODE_FORMAT
    elif opts.reasons:
        spec = formats.SINFO_REASONS_LONG_FORMAT if opts.long else formats.SINFO_REASONS_FORMAT
    elif env.get("SINFO_FORMAT"):
        spec = env["SINFO_FORMAT"]
    else:
        spec = formats.SINFO_LONG_FORMAT if opts.long else formats.SINFO_DEFAULT_FORMAT
    opts.fmt = formats.parse_format(spec)
    for code in formats.unknown_codes(opts.fmt, "sinfo"):
        opts.warnings.append(f"Invalid node format specification: {code}")
    opts.date_line = (opts.long or opts.iterate is not None) and not opts.noheader
    return opts


def build_request(opts: argparse.Namespace) -> pb.ListNodesRequest:
    """The ``ListNodesRequest`` for ``opts``."""
    from gsched.protos import gsched_pb2 as pbm

    return pbm.ListNodesRequest(names=opts.node_names)


def render(reply: pb.ListNodesReply, opts: argparse.Namespace, *, cluster: str = "gsched") -> str:
    """The text ginfo prints for ``reply`` (ends with a newline unless empty)."""
    import time

    if opts.json:
        return formats.nodes_json(reply, partitions=opts.partitions, nodes=opts.node_names)
    lines = [formats.date_line(reply.now or time.time())] if opts.date_line else []
    lines += formats.render_nodes(
        reply,
        opts.fmt,
        mode=opts.mode,
        partitions=opts.partitions,
        nodes=opts.node_names,
        states=opts.state_set,
        responding=opts.responding_only,
        header=not opts.noheader,
        cluster=cluster,
    )
    return "\n".join(lines) + "\n" if lines else ""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``ginfo`` (and of the ``sinfo`` shim)."""
    from gsched.cli.client import ClientError, connect, fail, finish
    from gsched.common.shims import prog_name

    prog = prog_name("ginfo")
    try:
        opts = parse_args(argv, prog=prog)
    except formats.OptionError as exc:
        if str(exc).startswith("Bad state string"):
            sys.stderr.write(f"{prog}: error: {exc}\n")
            fail(prog, "valid states: unk,down,idle,alloc,mix,drain,drained,drng,comp")
        fail(prog, str(exc))
    if opts.usage:
        sys.stdout.write(
            f"Usage: {prog} [-o format] [-p partition] [-n nodes] [-t states] [-i seconds]\n"
            "             [--json] [-adehlNrRsv]\n"
        )
        finish(0)
    if opts.version:
        import gsched

        sys.stdout.write(f"gsched {gsched.__version__}\n")
        finish(0)
    for line in opts.warnings:
        sys.stderr.write(f"{prog}: error: {line}\n")
    if opts.verbose:
        sys.stderr.write(f"format = {opts.format or ''}\nmode = {opts.mode}\n")

    client = connect(prog)
    request = build_request(opts)
    first = True
    while True:
        try:
            reply = client.call("ListNodes", request)
        except ClientError as exc:
            fail(prog, exc.message)
        text = render(reply, opts, cluster=client.cluster_name)
        if first and reply.auth_type == "none":
            sys.stderr.write(f"{prog}: warning: authentication is OFF on this cluster "
                             "(auth_type = \"none\"): any user can act as any other; "
                             "for tests only\n")
        try:
            sys.stdout.write(text if first else "\n" + text)
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
