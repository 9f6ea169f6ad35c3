"""grun: run a job step (SLURM srun).

Inside a job (``SLURM_JOB_ID`` set, or ``--jobid``) it launches the step on the job's
allocation. Outside one it first allocates (a job that holds the resources), runs
the step, and releases the allocation. Output of every task comes back on grun's
stdout/stderr (``-l`` labels lines with the task rank); grun exits with the step's
exit code: the highest task exit code, or 128+signal.

Only processes of the job may start steps in it: grun sends the job's
``GSCHED_STEP_TOKEN`` (set in the batch script's environment, inherited by steps; for
an allocation grun made, returned by the controller to grun alone). Without it a user's
``grun --jobid N`` from elsewhere is refused; operators need none (docs/security.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import IO, Any

from gsched.cli.client import ClientError, connect, fail, finish
from gsched.common.shims import prog_name

__all__ = ["main", "parse_args"]


def _bool_flag(value: str | None) -> bool:
    return value is None or value not in ("0", "no", "false")


def parse_args(argv: list[str], prog: str = "grun") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False,
                                description="Run a job step (SLURM srun).")
    a = p.add_argument
    a("-N", "--nodes", type=str, default="", help="nodes of the allocation to use (N or N-M)")
    a("-n", "--ntasks", type=int, default=0, help="number of tasks")
    a("--ntasks-per-node", type=int, default=0, help="tasks on each node")
    a("-w", "--nodelist", default="", help="run on these nodes (hostlist)")
    a("-x", "--exclude", default="", help="do not run on these nodes (hostlist)")
    a("-c", "--cpus-per-task", type=int, default=0, help="CPUs per task")
    a("--gpus-per-task", type=int, default=0, help="GPUs per task (CUDA_VISIBLE_DEVICES per task)")
    a("--gpus-per-node", type=int, default=0, help="(outside a job) GPUs per node to allocate")
    a("--gpu-bind", default="", help="none | per_task:N")
    a("--jobid", type=int, default=0, help="run the step in this job (default $SLURM_JOB_ID); only from inside "
      "it (its GSCHED_STEP_TOKEN), unless you are an operator")
    a("--export", default="ALL", help="ALL | NONE | ALL,VAR=value,...")
    a("-l", "--label", action="store_true", help="prefix each output line with the task rank")
    a("-u", "--unbuffered", action="store_true",
      help="pass output on as it comes (default: whole lines, like srun)")
    a("-o", "--output", default="", help="write stdout to this file pattern (%%j %%s %%t %%n %%N)")
    a("-e", "--error", default="", help="write stderr to this file pattern")
    a("-K", "--kill-on-bad-exit", nargs="?", const="1", default="0",
      help="kill the step when a task exits non-zero")
    a("-W", "--wait", type=int, default=0, help="kill the rest this many seconds after a task exits")
    a("--cpu-bind", default="", help="accepted (CPU binding is not enforced yet)")
    a("-m", "--distribution", default="", help="accepted (tasks are placed block-wise)")
    a("--mpi", default="none", help="none (pmix is not supported)")
    a("-J", "--job-name", default="", help="job name (outside a job)")
    a("-t", "--time", default="", help="time limit (outside a job)")
    a("-p", "--partition", default="", help="partition (outside a job)")
    a("--pty", action="store_true",
      help="run task 0 on a pseudo-terminal: an interactive shell (grun --pty bash)")
    a("-h", "--help", action="help", help="show this help and exit")
    a("command", nargs=argparse.REMAINDER, help="program and its arguments")
    return p.parse_args(argv)


def _expand(pattern: str, job_id: int, step_id: int, rank: int, node_index: int, node: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            rep = {"j": str(job_id), "s": str(step_id), "t": str(rank), "n": str(node_index),
                   "N": node, "%": "%"}.get(code)
            if rep is not None:
                out.append(rep)
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Sink:
    """Where task output goes: grun's own stdout/stderr (optionally labelled) or files."""

    def __init__(self, opts: argparse.Namespace, job_id: int) -> None:
        self.opts = opts
        self.job_id = job_id
        self.step_id = 0
        self.tasks: dict[int, tuple[int, str]] = {}
        self.partial: dict[tuple[int, int], bytes] = {}
        self.files: dict[tuple[int, int], IO[bytes]] = {}

    def write(self, rank: int, stream: int, data: bytes) -> None:
        pattern = self.opts.output if stream == 1 else self.opts.error or self.opts.output
        if pattern:
            key = (rank, stream)
            fh = self.files.get(key)
            if fh is None:
                node_index, node = self.tasks.get(rank, (0, ""))
                path = _expand(pattern, self.job_id, self.step_id, rank, node_index, node)
                same = [f for (r, s), f in self.files.items() if f.name == path]
                fh = same[0] if same else open(path, "ab")
                self.files[key] = fh
            fh.write(data)
            fh.flush()
            return
        out = sys.stdout.buffer if stream == 1 else sys.stderr.buffer
        if self.opts.label or not self.opts.unbuffered:
            # like srun: whole lines only, so tasks' lines never interleave mid-line
            # (-u passes chunks on as they come, unless -l needs lines to label)
            buf = self.partial.get((rank, stream), b"") + data
            *lines, rest = buf.split(b"\n")
            self.partial[(rank, stream)] = rest
            prefix = f"{rank}: ".encode() if self.opts.label else b""
            data = b"".join(prefix + line + b"\n" for line in lines)
            if not data:
                return
        out.write(data)
        out.flush()

    def close(self) -> None:
        for (rank, stream), rest in self.partial.items():
            if rest:
                out = sys.stdout.buffer if stream == 1 else sys.stderr.buffer
                prefix = f"{rank}: ".encode() if self.opts.label else b""
                out.write(prefix + rest + (b"\n" if self.opts.label else b""))
        for fh in set(self.files.values()):
            fh.close()
        sys.stdout.flush()
        sys.stderr.flush()


def _environment(export: str) -> dict[str, str]:
    if export.upper() == "NONE":
        return {k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "GSCHED_"))}
    parts = export.split(",")
    env = dict(os.environ) if parts[0].upper() == "ALL" else {
        k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "GSCHED_"))}
    for item in parts[1:] if parts[0].upper() == "ALL" else parts:
        if "=" in item:
            k, v = item.split("=", 1)
            env[k] = v
        elif item in os.environ:
            env[item] = os.environ[item]
    return env


def _job_environment(job: Any, cluster: str) -> dict[str, str]:
    """The job's variables for a step in an allocation grun made (srun sets them too)."""
    from gsched.common.hostlist import compress

    nodelist = compress(list(job.nodes))
    return {
        "SLURM_JOB_ID": str(job.job_id), "SLURM_JOBID": str(job.job_id),
        "SLURM_JOB_NAME": job.name, "SLURM_JOB_PARTITION": job.partition,
        "SLURM_JOB_NODELIST": nodelist, "SLURM_NODELIST": nodelist,
        "SLURM_JOB_NUM_NODES": str(len(job.nodes)), "SLURM_NNODES": str(len(job.nodes)),
        "SLURM_JOB_USER": job.user, "SLURM_JOB_UID": str(job.uid),
        "SLURM_SUBMIT_DIR": os.getcwd(), "SLURM_CLUSTER_NAME": cluster,
        "GSCHED_JOB_ID": str(job.job_id),
    }


def _allocate(client: Any, opts: argparse.Namespace, prog: str, nodes: int) -> Any:
    """Outside a job: submit a job that holds the resources, wait until it runs."""
    from gsched.protos import gsched_pb2 as pb

    spec = pb.JobSpec(
        name=opts.job_name or os.path.basename(opts.command[0]),
        script="#!/bin/sh\n# allocation held by grun\nexec sleep 2147483647\n",
        workdir=os.getcwd(), submit_dir=os.getcwd(), output="/dev/null",
        environment=dict(os.environ), nodes_min=nodes, ntasks=opts.ntasks,
        ntasks_per_node=opts.ntasks_per_node, cpus_per_task=opts.cpus_per_task,
        gpus_per_node=opts.gpus_per_node, gpus_per_task=opts.gpus_per_task,
        partitions=[p for p in opts.partition.split(",") if p], requeue=2,
        nodelist=opts.nodelist, exclude=opts.exclude,
    )
    if opts.time:
        from gsched.common.durations import parse_time_limit

        spec.time_limit = parse_time_limit(opts.time)
    reply = client.call("Submit", pb.SubmitRequest(spec=spec, allocation=True))
    job_id = reply.job_id
    # the allocation's step credential: the controller hands it only to its submitter
    os.environ["GSCHED_STEP_TOKEN"] = reply.step_token
    announced = False
    while True:
        reply = client.call("ListJobs", pb.ListJobsRequest(filter=pb.JobFilter(job_ids=[job_id])))
        job = reply.jobs[0]
        if job.state == "RUNNING":
            if announced:
                sys.stderr.write(f"{prog}: job {job_id} has been allocated resources\n")
            return job
        if job.state not in ("PENDING", "REQUEUED"):
            fail(prog, f"job {job_id} ended {job.state} before it could run")
        if not announced:
            sys.stderr.write(f"{prog}: job {job_id} queued and waiting for resources\n")
            announced = True
        time.sleep(0.1)


def main() -> None:
    prog = prog_name("grun")
    opts = parse_args(sys.argv[1:], prog)
    if not opts.command:
        fail(prog, "No command given to execute.")
    if opts.pty and opts.ntasks > 1:
        fail(prog, "--pty runs one task: use -n1")
    if opts.mpi not in ("none", ""):
        fail(prog, f"--mpi={opts.mpi} is not supported (only --mpi=none)")
    nodes = 0
    if opts.nodes:
        try:
            nodes = int(opts.nodes.split("-")[0])
        except ValueError:
            fail(prog, f'Invalid node count "{opts.nodes}"')
    if opts.gpu_bind.startswith("per_task:") and not opts.gpus_per_task:
        try:
            opts.gpus_per_task = int(opts.gpu_bind.split(":", 1)[1])
        except ValueError:
            fail(prog, f"Invalid --gpu-bind specification: {opts.gpu_bind}")
    from gsched.common import hostlist
    from gsched.protos import gsched_pb2 as pb

    try:
        nodelist = hostlist.expand(opts.nodelist) if opts.nodelist else []
        exclude = hostlist.expand(opts.exclude) if opts.exclude else []
    except ValueError as exc:
        fail(prog, f"Invalid hostlist: {exc}")
    client = connect(prog)
    job_id = opts.jobid or int(os.environ.get("SLURM_JOB_ID", "0") or 0)
    own_allocation = False
    env = _environment(opts.export)
    try:
        if not job_id:
            job = _allocate(client, opts, prog, nodes)
            job_id = job.job_id
            own_allocation = True
            env.update(_job_environment(job, client.cluster_name))
            env["GSCHED_STEP_TOKEN"] = os.environ.get("GSCHED_STEP_TOKEN", "")
        request = pb.StepRequest(
            job_id=job_id, argv=opts.command, nodes=nodes, ntasks=opts.ntasks,
            ntasks_per_node=opts.ntasks_per_node, nodelist=nodelist, exclude=exclude,
            cpus_per_task=opts.cpus_per_task, gpus_per_task=opts.gpus_per_task,
            environment=env, cwd=os.getcwd(),
            kill_on_bad_exit=_bool_flag(opts.kill_on_bad_exit), wait=opts.wait,
            gpu_bind=opts.gpu_bind, label=opts.label, pty=opts.pty,
            step_token=os.environ.get("GSCHED_STEP_TOKEN", ""),
        )
        if opts.pty:
            request.ntasks = 1
            request.rows, request.cols = _winsize()
        code = _run_step(client, request, opts, prog, job_id)
    except ClientError as exc:
        sys.stderr.write(f"{prog}: error: {exc.message}\n")
        code = 1
    finally:
        if own_allocation:
            try:
                client.call("Cancel", pb.CancelRequest(filter=pb.JobFilter(job_ids=[job_id])))
            except ClientError:
                pass
    finish(code)


def _winsize() -> tuple[int, int]:
    """grun's terminal size (rows, cols), or (0, 0) without one."""
    import fcntl
    import struct
    import termios

    for fd in (0, 1, 2):
        try:
            rows, cols, _, _ = struct.unpack(
                "HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
            )
        except OSError:
            continue
        return rows, cols
    return 0, 0


class _Terminal:
    """--pty: grun's terminal in raw mode, keyboard input sent to the step's task 0."""

    def __init__(self, client: Any, lock: threading.Lock, job_id: int) -> None:
        self.client, self.lock, self.job_id = client, lock, job_id
        self.step_id = -1
        self.saved: Any = None
        self.started = threading.Event()

    def __enter__(self) -> _Terminal:
        import termios
        import tty

        if os.isatty(0):
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        threading.Thread(target=self._pump, name="grun-stdin", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self.saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)

    def send(self, data: bytes = b"", rows: int = 0, cols: int = 0, eof: bool = False) -> None:
        from gsched.protos import gsched_pb2 as pb

        req = pb.StepInputRequest(job_id=self.job_id, step_id=self.step_id, data=data,
                                  rows=rows, cols=cols, eof=eof,
                                  step_token=os.environ.get("GSCHED_STEP_TOKEN", ""))
        try:
            with self.lock:
                self.client.call("StepInput", req)
        except ClientError:
            pass  # the step is gone: its end comes on the stream

    def resize(self) -> None:
        if self.started.is_set():
            rows, cols = _winsize()
            self.send(rows=rows, cols=cols)

    def _pump(self) -> None:
        self.started.wait()
        while True:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                self.send(eof=True)
                return
            self.send(data)


def _run_step(client: Any, request: Any, opts: argparse.Namespace, prog: str, job_id: int) -> int:
    sink = _Sink(opts, job_id)
    call = client.stream("RunStep", request)
    stopped: list[int] = []
    lock = threading.Lock()  # the client's local socket carries one call at a time
    term = _Terminal(client, lock, job_id) if opts.pty else None

    def on_signal(signum: int, _frame: Any) -> None:
        stopped.append(signum)
        sys.stderr.write(f"{prog}: interrupt: killing job step\n")
        call.cancel()

    def forward(signum: int, _frame: Any) -> None:
        # e.g. the job's --signal=USR1@60 (without B:): every task gets it, to checkpoint
        from gsched.protos import gsched_pb2 as pb

        if term is not None and signum == signal.SIGWINCH:
            term.resize()
            return
        try:
            with lock:
                client.call("SignalStep", pb.SignalStepRequest(
                    job_id=job_id, step_id=sink.step_id, signal=signum,
                    step_token=request.step_token))
        except ClientError as exc:
            sys.stderr.write(f"{prog}: error: cannot forward signal {signum}: {exc.message}\n")

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT, signal.SIGALRM,
                    signal.SIGWINCH):
            signal.signal(sig, forward)
    code = 1
    if term is not None:
        term.__enter__()
    try:
        for ev in call:
            kind = ev.WhichOneof("ev")
            if kind == "output":
                if term is not None:  # a terminal's bytes as they come, no line handling
                    sys.stdout.buffer.write(ev.output.data)
                    sys.stdout.buffer.flush()
                    continue
                sink.write(ev.output.rank, ev.output.stream, ev.output.data)
            elif kind == "started":
                sink.step_id = ev.started.step_id
                sink.tasks = {t.rank: (t.node_index, t.node) for t in ev.started.tasks}
                if term is not None:
                    term.step_id = ev.started.step_id
                    term.started.set()
            elif kind == "task_exit":
                te = ev.task_exit
                if te.signal or te.exit_code:
                    node = sink.tasks.get(te.rank, (0, "?"))[1]
                    what = f"signal {te.signal}" if te.signal else f"exit code {te.exit_code}"
                    sys.stderr.write(f"{prog}: error: {node}: task {te.rank}: {what}\n")
            elif kind == "done":
                code = ev.done.exit_code
                if ev.done.message:
                    sys.stderr.write(f"{prog}: error: {ev.done.message}\n")
    except Exception as exc:  # grpc errors while streaming
        err = client.rpc_error(exc)
        if err is None:
            raise
        if not stopped:
            sink.close()
            raise err from None
    finally:
        if term is not None:
            term.__exit__()
        sink.close()
    if stopped:
        return 128 + stopped[0]
    return code
