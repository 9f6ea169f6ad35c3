"""Durable API submissions alone: rate and the controller's CPU per submission.

Run: .venv/bin/python bench/bench_api.py [--jobs 5000] [--callers 64] [--rounds 3]
     [--agents 0] [--pythonpath DIR] [--database URL] [--out FILE]

The same load as `bench_core.py`'s `api` part (held `gsub --wrap=true -o /dev/null`
specs through `grpc.aio`, `--callers` concurrent callers on one channel, after 1,000
sequential submissions and a cancel of them), without the rest of that benchmark: a
quick way to compare two versions of the controller back to back. Each round starts
its own controller (`gsched up --agents N --auth-type none` in a temporary state dir,
stopped by pid) and prints the rate, the rate in each fifth of the submissions, and the
controller's CPU per submission (from /proc: all its threads), which moves much less
than the rate on a shared machine. `--pythonpath DIR` runs the controller from another
installation of gsched (`pip install --no-deps --target DIR ...`); `--database URL`
keeps the controller's state in that database (``gsched up --database``; each round
needs an empty one: ``{round}`` in the URL is replaced by the round's number).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(args: argparse.Namespace) -> dict[str, object]:
    import grpc

    from gsched.cli import directives
    from gsched.protos import gsched_pb2 as pb
    from gsched.protos import gsched_pb2_grpc as rpc

    state = Path(tempfile.mkdtemp(prefix="gsched-bench-api-"))
    env = {k: v for k, v in os.environ.items() if k != "GSCHED_CONF"}
    env["XDG_CACHE_HOME"] = str(state / "cache")
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    up = subprocess.run(
        [str(BIN / "gsched"), "up", "--state-dir", str(state), "--agents", str(args.agents),
         "--fake-gpus", "8", "--port", "0", "--auth-type", "none",
         *(["--database", args.database.replace("{round}", str(args.round))]
           if args.database else [])],
        capture_output=True, text=True, env=env, timeout=120)
    if up.returncode != 0:
        raise SystemExit(f"gsched up failed: {up.stderr.strip()[-300:]}")
    address = up.stdout.split("controller ", 1)[1].split(",", 1)[0]
    pids = {p.stem: int(p.read_text()) for p in state.glob("*.pid")}
    spec = directives.parse_submission(["--wrap=true", "-o", "/dev/null", "-J", "bench-api",
                                        "--hold"], env, os.getcwd(), None, "gsub").spec
    md = [("x-gsched-uid", str(os.getuid())), ("x-gsched-gid", str(os.getgid())),
          ("x-gsched-user", "bench")]

    async def go() -> dict[str, object]:
        async with grpc.aio.insecure_channel(address) as ch:
            stub = rpc.JobServiceStub(ch)
            req = pb.SubmitRequest(spec=spec)
            for _ in range(1000):
                await stub.Submit(req, metadata=md, timeout=30)
            await stub.Cancel(pb.CancelRequest(filter=pb.JobFilter(users=["bench"])),
                              metadata=md, timeout=60)
            left = [args.jobs]
            done_at: list[float] = []

            async def caller() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    await stub.Submit(req, metadata=md, timeout=60)
                    done_at.append(time.perf_counter())

            cpu0, t0 = _cpu_s(pids["controller"]), time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(args.callers)))
            wall, cpu = time.perf_counter() - t0, _cpu_s(pids["controller"]) - cpu0
            done_at.sort()
            k = len(done_at) // 5
            edges = [t0] + [done_at[i * k - 1] for i in range(1, 6)]
            return {
                "submits_per_s": round(args.jobs / wall, 1),
                "by_fifth": [round(k / (edges[i + 1] - edges[i]), 1) for i in range(5)],
                "controller_cpu_ms_per_submit": round(cpu / args.jobs * 1000, 3),
            }

    try:
        return asyncio.run(go())
    finally:
        for pid in pids.values():  # only what this round started
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(1.0)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--callers", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", type=int, default=0)
    ap.add_argument("--pythonpath", default="", help="run the controller from this gsched")
    ap.add_argument("--database", default="", help="the controller's database URL "
                    "({round}: the round's number)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    rounds = []
    for i in range(args.rounds):
        args.round = i + 1
        r = one_round(args)
        rounds.append(r)
        print(f"round {i + 1}: {r['submits_per_s']}/s, by fifth {r['by_fifth']}, controller "
              f"{r['controller_cpu_ms_per_submit']} ms CPU per submission", file=sys.stderr)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "jobs": args.jobs, "callers": args.callers, "agents": args.agents,
        "pythonpath": args.pythonpath, "database": args.database, "load_after": os.getloadavg(), "rounds": rounds,
        "submits_per_s_median": statistics.median(r["submits_per_s"] for r in rounds),
        "controller_cpu_ms_median": statistics.median(
            r["controller_cpu_ms_per_submit"] for r in rounds),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
