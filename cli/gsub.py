"""gsub: submit a batch script (sbatch).

Kept fast on purpose: no click; grpc is imported only once the options and the
script have been checked, inside :func:`gsched.cli.client.connect`.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main() -> None:
    """Console entry point: ``gsub [options] [script [args...]]``."""
    from gsched.cli import client
    from gsched.common.shims import prog_name

    prog = prog_name("gsub")  # also drops GSCHED_PROG so the job does not inherit it

    from gsched.cli import directives

    try:
        cwd = os.getcwd()
    except OSError as exc:
        client.fail(prog, f"getcwd failed: {exc.strerror}", 255)
    try:
        sub = directives.parse_submission(
            sys.argv[1:], os.environ, cwd, getattr(sys.stdin, "buffer", None), prog
        )
    except directives.DirectiveExit as exc:
        sys.stdout.write(exc.text)
        client.finish(exc.exit_code)
    except directives.DirectiveError as exc:
        for line in exc.render(prog):
            sys.stderr.write(line + "\n")
        client.finish(exc.exit_code)

    from gsched.protos import gsched_pb2

    conn = client.connect(prog)
    if sub.verbose:
        sys.stderr.write(f"{prog}: submitting job {sub.spec.name!r} to {conn.address}\n")
    try:
        reply = conn.call("Submit", gsched_pb2.SubmitRequest(spec=sub.spec))
    except client.ClientError as exc:
        if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            client.fail(prog, exc.message)
        if exc.message == "Invalid partition name specified" and sub.spec.partitions:
            sys.stderr.write(
                f"{prog}: error: invalid partition specified: {','.join(sub.spec.partitions)}\n"
            )
        client.fail(prog, f"Batch job submission failed: {exc.message}")
    if not sub.quiet:
        if sub.parsable:
            sys.stdout.write(f"{reply.job_id}\n")
        else:
            sys.stdout.write(f"Submitted batch job {reply.job_id}\n")
    client.finish(0)


if __name__ == "__main__":
    main()
