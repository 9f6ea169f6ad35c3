"""Step launch latency: `grun -N4 true` inside a 4-node allocation, 4x8 fan-out, no allocation.

Run: .venv/bin/python bench/bench_steps.py [--samples N] [--out bench/results/steps.json]

Starts its own 4-agent cluster (`gsched up`, 8 CPUs per agent), prints a table to
stderr and one JSON object to stdout. SLURM's figures on this kind of machine
(../shared/slurm-reference/README.md): `srun -N4 true` in an allocation 46 ms,
`srun -N4 --ntasks-per-node=8 true` 166 ms, `srun -N4 true` without one 55 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def timed(args: list[str], env: dict[str, str], n: int) -> dict[str, object]:
    samples, failures = [], 0
    for _ in range(n):
        t = time.perf_counter()
        p = run(args, env)
        samples.append((time.perf_counter() - t) * 1000)
        failures += p.returncode != 0
    return {
        "ms_p50": round(statistics.median(samples), 1),
        "ms_min": round(min(samples), 1),
        "ms_max": round(max(samples), 1),
        "samples": len(samples),
        "failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--out", default="")
    opts = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="gsched-bench-steps-"))
    env = dict(os.environ, GSCHED_CONF=str(state / "gsched.toml"))
    up = run([str(BIN / "gsched"), "up", "--state-dir", str(state), "--agents", "4",
              "--cpus", "8", "--mem-mb", "16000", "--port", "0"], env)
    if up.returncode != 0:
        sys.exit(f"gsched up failed: {up.stderr}")
    result: dict[str, object] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "nproc": os.cpu_count(), "agents": 4}
    try:
        sub = run([str(BIN / "gsub"), "--parsable", "-N4", "--ntasks-per-node=8", "-o",
                   "/dev/null", "--wrap", "sleep 600"], env)
        job = sub.stdout.strip()
        for _ in range(200):
            q = run([str(BIN / "gqueue"), "-h", "-j", job, "-o", "%T"], env)
            if q.stdout.strip() == "RUNNING":
                break
            time.sleep(0.1)
        grun = str(BIN / "grun")
        run([grun, "--jobid", job, "-N4", "true"], env)  # warm-up
        result["grun_N4_in_allocation"] = timed([grun, "--jobid", job, "-N4", "true"], env,
                                                opts.samples)
        result["grun_N4x8_in_allocation"] = timed(
            [grun, "--jobid", job, "-N4", "--ntasks-per-node=8", "true"], env,
            max(3, opts.samples // 2))
        run([str(BIN / "gcancel"), job], env)
        time.sleep(1)
        result["grun_N4_no_allocation"] = timed([grun, "-N4", "true"], env,
                                                max(3, opts.samples // 2))
    finally:
        run([str(BIN / "gsched"), "down", "--state-dir", str(state)], env)
    for key in ("grun_N4_in_allocation", "grun_N4x8_in_allocation", "grun_N4_no_allocation"):
        print(f"{key:28s} {result[key]}", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if opts.out:
        Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
