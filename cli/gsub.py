"""gsub: submit a batch script (sbatch).

Kept fast on purpose: no click; grpc is imported only once the options and the
script have been checked, inside :func:`gsched.cli.client.connect`. On the
controller's host (its Unix socket reachable, ``GSCHED_TRANSPORT`` not ``grpc``)
not even protobuf is imported: the request is encoded and the reply decoded by
:mod:`gsched.common.jobspec_wire` (~18 ms saved per call).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)

if TYPE_CHECKING:
    import socket

    from gsched.cli.directives import Submission
    from gsched.common.jobspec_wire import JobSpecLite

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

    sock, address = _local_socket(prog)
    if sub.verbose:
        sys.stderr.write(f"{prog}: submitting job {sub.lite.name!r} to {address}\n")
    try:
        if sock is not None:
            job_id = _submit_local(sock, sub.lite, address)
        else:
            job_id = _submit_grpc(prog, sub)
    except client.ClientError as exc:
        if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            client.fail(prog, exc.message)
        if exc.message == "Invalid partition name specified" and sub.lite.partitions:
            sys.stderr.write(
                f"{prog}: error: invalid partition specified: {','.join(sub.lite.partitions)}\n"
            )
        client.fail(prog, f"Batch job submission failed: {exc.message}")
    if not sub.quiet:
        if sub.parsable:
            sys.stdout.write(f"{job_id}\n")
        else:
            sys.stdout.write(f"Submitted batch job {job_id}\n")
    client.finish(0)


def _local_socket(prog: str) -> tuple[socket.socket | None, str]:
    """A connection to the controller's Unix socket, or None to use gRPC; and its address.

    A fresh :mod:`gsched.common.confcache` entry answers without parsing the
    configuration; anything else (no entry, no socket, a refused connect) falls back
    to :func:`gsched.common.config.load` and then to gRPC.
    """
    from gsched.cli import client
    from gsched.common import confcache
    from gsched.common.localrpc import connect_local

    use_socket = os.environ.get("GSCHED_TRANSPORT") != "grpc"
    if use_socket and not os.environ.get("GSCHED_CONTROLLER"):
        facts = confcache.lookup(confcache.conf_path())
        if facts and facts.get("socket"):
            try:
                return connect_local(facts["socket"], client.RPC_TIMEOUT), facts["address"]
            except OSError:
                pass  # the controller moved or is down: read the configuration again
    from gsched.common import config

    try:
        cfg = config.load()
    except config.ConfigError as exc:
        client.fail(prog, str(exc))
    address = cfg.controller.address
    if use_socket and cfg.socket_path:
        try:
            return connect_local(cfg.socket_path, client.RPC_TIMEOUT), address
        except OSError:
            pass  # not on the controller's host, or it is down: gRPC
    return None, address


def _submit_local(sock: socket.socket, spec: JobSpecLite, address: str) -> int:
    """Submit over the controller's Unix socket with hand-encoded protobuf bytes.

    Raises:
        ClientError: as :meth:`gsched.cli.client.Client.call` raises it.
    """
    from gsched.cli.client import ClientError
    from gsched.common import jobspec_wire
    from gsched.common.localrpc import LocalError

    payload = spec.wire()
    try:
        body = jobspec_wire.call_raw(sock, "Submit", payload)
    except LocalError as exc:
        raise ClientError(exc.code, exc.message) from None
    except OSError:
        msg = f"unable to contact the gsched controller at {address}"
        raise ClientError("UNAVAILABLE", msg) from None
    finally:
        sock.close()
    try:
        return jobspec_wire.decode_submit_reply(body)
    except ValueError as exc:
        raise ClientError("INTERNAL", f"bad reply from the gsched controller: {exc}") from None


def _submit_grpc(prog: str, sub: Submission) -> int:
    """Submit through :class:`gsched.cli.client.Client` (gRPC off the controller's host)."""
    from gsched.cli import client
    from gsched.protos import gsched_pb2

    conn = client.connect(prog)
    return int(conn.call("Submit", gsched_pb2.SubmitRequest(spec=sub.spec)).job_id)


if __name__ == "__main__":
    main()
