#!/usr/bin/env python3
"""Core speed figures of gsched, optionally side by side with a real SLURM in the same run.

    .venv/bin/python bench/bench_core.py [--quick] [--out bench/results/core.json] [--slurm]

Starts its own cluster (``gsched up`` into a temporary state dir: 4 agents with 16 CPUs,
64000 MB and 8 fake GPUs each, like the SLURM anchor's n1..n4), measures, stops it, prints
a table on stderr and ONE JSON object on stdout (and into ``--out``).

Parts (each bounded in time; a failing part records null and an error string; jobs are
cancelled and the queue drained between parts):

  api      api_submit_per_s: held submissions through the gRPC API, 64 concurrent
           grpc.aio callers (each reply comes after the controller's commit, so every
           counted job is durable); api_submit_seq_per_s: one caller, one at a time.
  gqueue   gqueue_ms_p50_5000: one default ``gqueue`` with the held jobs queued (median);
           gqueue_ms_p50_empty: the same on an empty queue.
  gcancel  gcancel_u_5000_s: ``gcancel -u $USER`` of those held jobs, until the queue is empty.
  gsub     gsub_ms_p50/p90/min: one ``gsub --parsable --wrap=true -o /dev/null`` process on
           an idle cluster; gsub_seq_per_s / gsub_par_per_s: N sequential processes, and N
           over 4 concurrent shell loops (SLURM bench.sh parts a and b).
  tput     throughput_jobs_per_s: N one-CPU ``--wrap=true`` jobs submitted by a shell loop
           of gsub processes, first submit until ``gqueue`` shows no job of ours
           (SLURM bench.sh part c); throughput_api_jobs_per_s: the same N jobs submitted
           through the API by 16 async callers (no process start per job).

With ``--slurm`` the SLURM anchor (up.sh, bench.sh, down.sh from shared/slurm-anchor) is
run afterwards with the same sizes and its JSON is stored under ``"slurm"``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ANCHOR = REPO.parent / "shared" / "slurm-anchor"
AGENTS, CPUS, MEM_MB, GPUS = 4, 16, 64000, 8

FULL = {
    "api_jobs": 5000,  # concurrent API submissions; these stay queued for gqueue/gcancel
    "api_concurrency": 64,
    "api_seq_jobs": 1000,
    "gsub_warmups": 2,
    "gsub_samples": 21,
    "gsub_idle_s": 0.5,  # like bench.sh part e: the cluster is idle before each sample
    "n": 300,  # gsub_seq / gsub_par / throughput jobs (bench.sh N)
    "par": 4,  # bench.sh PAR
    "gqueue_samples": 5,
    "tput_drain_timeout_s": 240,  # bench.sh wait_empty 240
}
QUICK = {
    "api_jobs": 1000,
    "api_concurrency": 64,
    "api_seq_jobs": 200,
    "gsub_warmups": 2,
    "gsub_samples": 7,
    "gsub_idle_s": 0.15,
    "n": 24,
    "par": 4,
    "gqueue_samples": 3,
    "tput_drain_timeout_s": 60,
}
# (our key, SLURM bench.sh key, unit, label); scancel_all_held_ms is shown in seconds
COMPARE = [
    ("gsub_ms_p50", "sbatch_cold_ms", "ms", "one submit process, idle cluster (p50)"),
    ("gsub_seq_per_s", "submit_seq_per_s", "jobs/s", "N sequential submit processes"),
    ("gsub_par_per_s", "submit_par_per_s", "jobs/s", "N submit processes, 4 loops"),
    (
        "throughput_jobs_per_s",
        "throughput_jobs_per_s",
        "jobs/s",
        "N 1-CPU true jobs, submit->empty",
    ),
    ("gqueue_ms_p50_5000", "squeue_ms_5000", "ms", "queue listing, held jobs queued"),
    ("gqueue_ms_p50_empty", "squeue_ms_empty", "ms", "queue listing, empty queue"),
    ("gcancel_u_5000_s", "scancel_all_held_ms", "s", "cancel -u of the held jobs"),
    ("api_submit_per_s", None, "jobs/s", "API submits, 64 async callers"),
    ("api_submit_seq_per_s", None, "jobs/s", "API submits, one caller"),
    ("throughput_api_jobs_per_s", None, "jobs/s", "N 1-CPU true jobs via API, submit->empty"),
]


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)]


def r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


class PartError(Exception):
    pass


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sz = dict(QUICK if args.quick else FULL)
        self.bin = Path(args.bin_dir) if args.bin_dir else self._find_bin()
        self.python = self._find_bin() / "python"
        self.pythonpath = getattr(args, "pythonpath", None)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.state: Path | None = None
        self.conf: Path | None = None
        self.address = ""
        self.res: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.part_s: dict[str, float] = {}
        self.notes: list[str] = []
        self.breakdown: dict[str, Any] = {}
        self._channel: Any = None
        self.last_cpu_ms = 0.0
        self.loop_error = ""
        self._stub: Any = None

    # ---------------------------------------------------------------- plumbing
    @staticmethod
    def _find_bin() -> Path:
        here = Path(sys.executable).parent
        if (here / "gsub").exists():
            return here
        return REPO / ".venv" / "bin"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The CLI's time is mostly imports: measure it as a user would run it, with
        # bytecode cached. PYTHONDONTWRITEBYTECODE=1 (set on some dev machines) makes an
        # editable install recompile every gsched module on every run. The cache goes
        # to a private prefix so nothing is written into the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        assert self.state is not None
        env["PYTHONPYCACHEPREFIX"] = str(self.state / "pycache")
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        if self.pythonpath:  # --snapshot: the frozen copy comes first on sys.path
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (self.pythonpath, os.environ.get("PYTHONPATH")) if p
            )
        if self.conf is not None:
            env["GSCHED_CONF"] = str(self.conf)
        return env

    def run(
        self,
        argv: list[str],
        timeout: float,
        stdout: Any = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            env=env or self.child_env(),
            check=False,
        )

    def timed(
        self,
        argv: list[str],
        timeout: float = 60,
        stdout: Any = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        """Wall ms of one process."""
        env = env or self.child_env()
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = self.run(argv, timeout, stdout, env)
        ms = (time.perf_counter() - t0) * 1000
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU of that one process (runs are sequential, so the delta is just it)
        self.last_cpu_ms = (k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime) * 1000
        return ms, p

    def part(self, name: str, fn: Callable[[], None]) -> None:
        log(f"part {name}")
        t0 = time.monotonic()
        cpu0 = self.cpu_snapshot()
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one failing part must not sink the run
            msg = f"{type(exc).__name__}: {exc}"
            self.errors[name] = msg[:2000]
            log(f"part {name} FAILED: {msg[:500]}")
        finally:
            wall = time.monotonic() - t0
            self.part_s[name] = round(wall, 2)
            cpu1 = self.cpu_snapshot()
            if cpu0 and cpu1:
                d = {k: round(cpu1[k] - cpu0.get(k, 0.0), 2) for k in cpu1}
                d["wall"] = round(wall, 2)
                self.breakdown.setdefault("cpu_s_by_part", {})[name] = d

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far: controller, agents (+ their reaped job wrappers), this
        process (API client), and the processes it ran (gsub/gqueue/gcancel, shell loops)."""
        out: dict[str, float] = {}
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["bench_client"] = me.ru_utime + me.ru_stime
        out["cli_processes"] = kids.ru_utime + kids.ru_stime
        if self.state is None:
            return out
        try:
            import psutil
        except ImportError:
            return out
        for f in self.state.glob("*.pid"):
            try:
                t = psutil.Process(int(f.read_text().split()[0])).cpu_times()
            except (OSError, ValueError, IndexError, psutil.Error):
                continue
            if f.stem == "controller":
                out["controller"] = t.user + t.system
            else:
                out["agents"] = out.get("agents", 0.0) + t.user + t.system
                out["agent_children"] = (
                    out.get("agent_children", 0.0) + t.children_user + t.children_system
                )
        return out

    # ---------------------------------------------------------------- cluster
    def up(self) -> None:
        last = ""
        for attempt in range(1, 4):
            self.state = Path(tempfile.mkdtemp(prefix="gsched-bench-"))
            self.conf = None
            argv = [
                str(self.bin / "gsched"),
                "up",
                "--state-dir",
                str(self.state),
                "--agents",
                str(AGENTS),
                "--fake-gpus",
                str(GPUS),
                "--port",
                "0",
                "--cpus",
                str(CPUS),
                "--mem-mb",
                str(MEM_MB),
                # raw gRPC throughput with reused metadata, as before credentials existed;
                # the per-call credential cost is measured by bench/bench_munge.py
                "--auth-type",
                "none",
            ]
            t0 = time.monotonic()
            p = self.run(argv, 120, subprocess.PIPE)
            conf = self.state / "gsched.toml"
            m = re.search(r"export GSCHED_CONF=(\S+)", p.stdout or "")
            self.conf = Path(m.group(1)) if m else conf
            if p.returncode != 0:
                last = (p.stderr or p.stdout or "").strip().splitlines()[-1:] or ["?"]
                last = f"gsched up exited {p.returncode}: {last[0]}"
                self.notes.append(f"attempt {attempt}: {last}")
                log(last)
            if self.conf.exists():
                cfg = tomllib.loads(self.conf.read_text())
                self.address = cfg["controller"]["address"]
                self._connect()
                if self._wait_nodes(30):
                    self.res["cluster_up_s"] = round(time.monotonic() - t0, 2)
                    self.res["cluster_up_attempts"] = attempt
                    log(f"cluster up at {self.address} ({self.state}), attempt {attempt}")
                    return
                last = last or "agents did not register within 30 s"
            self.down()
        raise PartError(f"could not start a gsched cluster: {last}")

    def _connect(self) -> None:
        import grpc

        from gsched.protos import gsched_pb2_grpc as rpc

        if self._channel is not None:
            self._channel.close()
        self._channel = grpc.insecure_channel(self.address)
        self._stub = rpc.JobServiceStub(self._channel)

    def metadata(self) -> list[tuple[str, str]]:
        return [
            ("x-gsched-uid", str(os.getuid())),
            ("x-gsched-gid", str(os.getgid())),
            ("x-gsched-user", self.user),
        ]

    def _wait_nodes(self, timeout: float) -> bool:
        from gsched.protos import gsched_pb2 as pb

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self._stub.ListNodes(
                    pb.ListNodesRequest(), timeout=2, metadata=self.metadata()
                )
                if sum(1 for n in reply.nodes if n.connected) >= AGENTS:
                    return True
            except Exception:
                pass
            time.sleep(0.2)
        return False

    def down(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None
        if self.state is None:
            return
        if any(self.state.glob("*.pid")):
            p = self.run(
                [str(self.bin / "gsched"), "down", "--state-dir", str(self.state)],
                60,
                subprocess.PIPE,
            )
            if p.returncode != 0:
                log(f"gsched down: rc={p.returncode} {p.stderr.strip()[-300:]}")
        if not self.args.keep_state:
            shutil.rmtree(self.state, ignore_errors=True)
        else:
            log(f"state kept in {self.state}")

    # ---------------------------------------------------------------- API helpers
    def list_mine(self, **filt: Any) -> list[Any]:
        from gsched.protos import gsched_pb2 as pb

        req = pb.ListJobsRequest(filter=pb.JobFilter(users=[self.user], **filt))
        return list(self._stub.ListJobs(req, timeout=60, metadata=self.metadata()).jobs)

    def queue_len(self) -> int:
        return len(self.list_mine())

    def cleanup(self, timeout: float = 90) -> None:
        """Cancel all our jobs and wait until none is active (bench.sh cleanup_jobs)."""
        from gsched.protos import gsched_pb2 as pb

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.queue_len() == 0:
                    return
                self._stub.Cancel(
                    pb.CancelRequest(filter=pb.JobFilter(users=[self.user])),
                    timeout=60,
                    metadata=self.metadata(),
                )
            except Exception as exc:
                log(f"cleanup: {exc}")
            time.sleep(0.25)
        raise PartError(f"queue not empty after {timeout:.0f} s: {self.queue_len()} jobs")

    def max_job_id(self) -> int:
        jobs = self.list_mine(all_states=True)
        return max((j.job_id for j in jobs), default=0)

    def job_spec(self, name: str, hold: bool) -> Any:
        """The exact spec gsub builds for ``--wrap=true -o /dev/null`` (plus -H, -J)."""
        from gsched.cli import directives

        argv = ["--wrap=true", "-o", "/dev/null", "-J", name] + (["--hold"] if hold else [])
        return directives.parse_submission(argv, self.child_env(), os.getcwd(), None, "gsub").spec

    def db_count(self, lo: int, hi: int) -> int | None:
        """Rows with job ids lo..hi in the controller's SQLite database (read-only)."""
        db = self.state / "gsched.db" if self.state else None
        if db is None or not db.exists():
            return None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(
                "SELECT count(*) FROM jobs WHERE job_id BETWEEN ? AND ?", (lo, hi)
            ).fetchone()[0]
        finally:
            con.close()

    @contextlib.contextmanager
    def profiled(self, name: str) -> Iterator[None]:
        """With --py-spy: sample the controller while the block runs (collapsed stacks
        into --profile-dir, the top frames into the breakdown). Only samples holding the
        GIL count (--gil), so idle threads drop out; time in grpc's Cython shows as the
        asyncio frame that called it (Handle._run). Costs CPU: the figures of a profiled
        run are not the ones to report."""
        pidf = self.state / "controller.pid" if self.state else None
        if not self.args.py_spy or pidf is None or not pidf.exists():
            yield
            return
        outdir = Path(self.args.profile_dir)
        outdir.mkdir(parents=True, exist_ok=True)
        out = outdir / f"profile-controller-{name}.txt"
        pid = pidf.read_text().split()[0]
        proc = subprocess.Popen(
            [
                self.args.py_spy,
                "record",
                "--gil",
                "-p",
                pid,
                "-f",
                "raw",
                "-r",
                "200",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attach
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if out.exists():
                self.breakdown.setdefault("controller_profile", {})[name] = _top_frames(out)

    # ---------------------------------------------------------------- parts
    def warm_cli(self) -> None:
        """Fill the bytecode cache and the page cache for every command timed later."""
        for _ in range(2):
            for argv in (["gqueue"], ["gcancel", "-u", self.user]):
                self.run([str(self.bin / argv[0]), *argv[1:]], 60)
            self.run([str(self.python), "-c", "pass"], 60)
        # python startup alone, the floor under every CLI figure
        samples = [self.timed([str(self.python), "-c", "pass"])[0] for _ in range(5)]
        self.breakdown["python_startup_ms_p50"] = r(statistics.median(samples))

    def part_api(self) -> None:
        sz = self.sz
        spec_seq = self.job_spec("bench-api-seq", hold=True)
        spec_conc = self.job_spec("bench-api", hold=True)
        md = self.metadata()
        timeout = 300

        async def go() -> dict[str, Any]:
            import grpc

            from gsched.protos import gsched_pb2 as pb
            from gsched.protos import gsched_pb2_grpc as rpc

            out: dict[str, Any] = {}
            async with grpc.aio.insecure_channel(self.address) as ch:
                stub = rpc.JobServiceStub(ch)
                req_seq = pb.SubmitRequest(spec=spec_seq)
                req = pb.SubmitRequest(spec=spec_conc)
                for _ in range(5):  # connect + warm the server's code paths
                    await stub.Submit(req_seq, metadata=md, timeout=30)
                # sequential: one caller, one call at a time
                lat = []
                ids = []
                t0 = time.perf_counter()
                for _ in range(sz["api_seq_jobs"]):
                    a = time.perf_counter()
                    ids.append((await stub.Submit(req_seq, metadata=md, timeout=30)).job_id)
                    lat.append((time.perf_counter() - a) * 1000)
                dt_seq = time.perf_counter() - t0
                out["seq"] = (dt_seq, lat, ids)
                await stub.Cancel(
                    pb.CancelRequest(filter=pb.JobFilter(users=[self.user])),
                    metadata=md,
                    timeout=60,
                )
                # concurrent: C callers pull from one counter until N jobs are in
                n, left = sz["api_jobs"], [sz["api_jobs"]]
                lat_c: list[float] = []
                done_at: list[float] = []
                ids_c: list[int] = []
                errs: list[str] = []

                async def caller() -> None:
                    while left[0] > 0:
                        left[0] -= 1
                        a = time.perf_counter()
                        try:
                            rep = await stub.Submit(req, metadata=md, timeout=60)
                        except grpc.aio.AioRpcError as exc:
                            errs.append(f"{exc.code().name}: {exc.details()}")
                            continue
                        done_at.append(time.perf_counter())
                        lat_c.append((done_at[-1] - a) * 1000)
                        ids_c.append(rep.job_id)

                t0 = time.perf_counter()
                await asyncio.gather(*(caller() for _ in range(sz["api_concurrency"])))
                out["conc"] = (time.perf_counter() - t0, lat_c, ids_c, errs, n)
                out["done_at"] = [x - t0 for x in done_at]
            return out

        self.cleanup()
        with self.profiled("api"):
            out = asyncio.run(asyncio.wait_for(go(), timeout))
        dt_seq, lat, ids = out["seq"]
        self.res["api_submit_seq_per_s"] = r(len(ids) / dt_seq)
        self.res["api_submit_seq_ms_p50"] = r(statistics.median(lat), 2)
        self.res["api_submit_seq_ms_p99"] = r(pct(lat, 99), 2)
        dt_c, lat_c, ids_c, errs, n = out["conc"]
        self.res["api_submit_per_s"] = r(len(ids_c) / dt_c)
        self.res["api_submit_s"] = r(dt_c, 3)
        self.res["api_submit_jobs"] = len(ids_c)
        self.res["api_submit_ms_p50"] = r(pct(lat_c, 50), 2)
        self.res["api_submit_ms_p99"] = r(pct(lat_c, 99), 2)
        self.res["api_submit_failures"] = len(errs)
        if errs:
            self.res["api_submit_first_error"] = errs[0]
        # the rate by fifths of the run: does a submit get dearer as the queue grows?
        done = out["done_at"]
        if len(done) >= 50:
            k = len(done) // 5
            edges = [0.0] + [done[(i + 1) * k - 1] for i in range(5)]
            self.breakdown["api_submit_per_s_by_fifth"] = [
                r(k / (edges[i + 1] - edges[i])) for i in range(5)
            ]
        if ids_c:
            # every reply came after the commit: the rows must be in the database
            self.res["api_submit_rows_in_db"] = self.db_count(min(ids_c), max(ids_c))
        if len(ids_c) != n:
            raise PartError(f"{n - len(ids_c)} of {n} submissions failed: {errs[:1]}")

    def part_gqueue_empty(self) -> None:
        self.cleanup()
        gq = str(self.bin / "gqueue")
        samples = [self.timed([gq])[0] for _ in range(self.sz["gqueue_samples"])]
        self.res["gqueue_ms_p50_empty"] = r(statistics.median(samples))
        self.res["gqueue_ms_empty_samples"] = [r(s) for s in samples]

    def part_gqueue_full(self) -> None:
        queued = self.queue_len()
        self.res["gqueue_jobs_in_queue"] = queued
        if queued < self.sz["api_jobs"]:
            raise PartError(f"only {queued} jobs queued (api part failed?)")
        # one ListJobs RPC from here: the controller's share of a gqueue
        t0 = time.perf_counter()
        self.list_mine()
        self.breakdown["api_listjobs_ms_held"] = r((time.perf_counter() - t0) * 1000)
        gq = str(self.bin / "gqueue")
        ms, p = self.timed([gq], stdout=subprocess.PIPE)  # warm-up; count lines
        self.res["gqueue_lines"] = len(p.stdout.splitlines())
        if p.returncode != 0:
            raise PartError(f"gqueue exited {p.returncode}: {p.stderr.strip()[-300:]}")
        samples, cpu = [], []
        for _ in range(self.sz["gqueue_samples"]):
            ms, p = self.timed([gq])
            samples.append(ms)
            cpu.append(self.last_cpu_ms)
        self.res["gqueue_ms_p50_5000"] = r(statistics.median(samples))
        self.res["gqueue_ms_5000_samples"] = [r(s) for s in samples]
        self.breakdown["gqueue_cpu_ms_p50_held"] = r(statistics.median(cpu))
        total, top = self.imports([gq])
        self.breakdown["gqueue_imports_ms_total"] = total
        self.breakdown["gqueue_imports_ms_top_level"] = top

    def part_gcancel(self) -> None:
        queued = self.queue_len()
        self.res["gcancel_jobs"] = queued
        if queued < self.sz["api_jobs"]:
            raise PartError(f"only {queued} jobs queued")
        t0 = time.perf_counter()
        p = self.run([str(self.bin / "gcancel"), "-u", self.user], 120)
        t1 = time.perf_counter()
        if p.returncode != 0:
            raise PartError(f"gcancel exited {p.returncode}: {p.stderr.strip()[-300:]}")
        # confirm through the API (cheap, no process start); gcancel's RPC returns
        # after the controller committed the cancellations, so one look usually does
        polls = 0
        while True:
            polls += 1
            if self.queue_len() == 0:
                break
            if time.perf_counter() - t0 > 120:
                raise PartError(f"queue not empty 120 s after gcancel: {self.queue_len()}")
            time.sleep(0.05)
        t2 = time.perf_counter() if polls > 1 else t1
        self.res["gcancel_process_s"] = r(t1 - t0, 3)
        self.res["gcancel_u_5000_s"] = r(t2 - t0, 3)
        self.res["gcancel_empty_polls"] = polls

    def part_gsub(self) -> None:
        self.cleanup()
        sz = self.sz
        argv = [str(self.bin / "gsub"), "--parsable", "--wrap=true", "-o", "/dev/null"]
        for _ in range(sz["gsub_warmups"]):
            self.run(argv, 60)
            time.sleep(sz["gsub_idle_s"])
        samples, failures, cpu = [], 0, []
        for _ in range(sz["gsub_samples"]):
            time.sleep(sz["gsub_idle_s"])
            ms, p = self.timed(argv, stdout=subprocess.PIPE)
            cpu.append(self.last_cpu_ms)
            if p.returncode != 0 or not p.stdout.strip().isdigit():
                failures += 1
                self.res["gsub_first_error"] = (p.stderr or p.stdout).strip()[-300:]
            samples.append(ms)
        self.res["gsub_ms_p50"] = r(statistics.median(samples))
        self.res["gsub_ms_p90"] = r(pct(samples, 90))
        self.res["gsub_ms_min"] = r(min(samples))
        self.res["gsub_ms_samples"] = [r(s) for s in samples]
        self.res["gsub_failures"] = failures
        self.breakdown["gsub_cpu_ms_p50"] = r(statistics.median(cpu))
        self._gsub_breakdown(argv)
        if failures:
            raise PartError(f"{failures} gsub runs failed: {self.res['gsub_first_error']}")

    def imports(self, argv: list[str]) -> tuple[float, dict[str, float]]:
        """``-X importtime`` of one real run: total import ms, top-level modules >= 1.5 ms.
        (importtime itself adds overhead: read the shares, not the absolute sum.)"""
        p = self.run([str(self.python), "-X", "importtime", *argv], 60, subprocess.DEVNULL)
        top: dict[str, float] = {}
        for line in p.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
            if m and not m.group(3):
                top[m.group(4)] = top.get(m.group(4), 0) + int(m.group(2)) / 1000
        big = {k: round(v, 1) for k, v in sorted(top.items(), key=lambda kv: -kv[1]) if v >= 1.5}
        return round(sum(top.values()), 1), big

    def _gsub_breakdown(self, argv: list[str]) -> None:
        """Where one gsub's time goes."""
        env = self.child_env()
        time.sleep(self.sz["gsub_idle_s"])
        total, top = self.imports(argv)
        self.breakdown["gsub_imports_ms_total"] = total
        self.breakdown["gsub_imports_ms_top_level"] = top
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            # what a developer with PYTHONDONTWRITEBYTECODE=1 sees (editable install)
            env2 = dict(env)
            env2.pop("PYTHONPYCACHEPREFIX")
            env2["PYTHONDONTWRITEBYTECODE"] = os.environ["PYTHONDONTWRITEBYTECODE"]
            s = []
            for _ in range(5):
                time.sleep(self.sz["gsub_idle_s"])
                s.append(self.timed(argv, env=env2)[0])
            self.breakdown["gsub_ms_p50_dontwritebytecode"] = r(statistics.median(s))

    def _shell_loops(self, loops: int, per: int, cmd: str, timeout: float) -> tuple[float, int]:
        """``loops`` concurrent bash loops running ``cmd`` ``per`` times; (seconds, failures).

        Like bench.sh, but stderr goes to a file instead of /dev/null (same cost), so a
        failure can be shown; the part then fails rather than report a rate of jobs that
        were never submitted."""
        assert self.state is not None
        errf = self.state / "loop-stderr.txt"
        errf.write_text("")
        script = (
            f"f=0; for _ in $(seq {per}); do {cmd} >/dev/null 2>>{errf} || f=$((f+1)); done;"
            " echo $f"
        )
        env = self.child_env()
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                ["bash", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(loops)
        ]
        fails = 0
        try:
            for pr in procs:
                out, _ = pr.communicate(timeout=max(1, timeout - (time.perf_counter() - t0)))
                fails += int(out.strip() or 0)
        except subprocess.TimeoutExpired:
            for pr in procs:
                pr.kill()
                pr.wait()
            raise PartError(f"shell loops still running after {timeout:.0f} s") from None
        secs = time.perf_counter() - t0
        if fails:
            first = errf.read_text().strip().splitlines()[:3]
            self.loop_error = (
                f"{fails} of {loops * per} runs of `{cmd}` failed: {' | '.join(first)}"
            )
        return secs, fails

    def part_gsub_seq(self) -> None:
        self.cleanup()
        n = self.sz["n"]
        secs, fails = self._shell_loops(1, n, "gsub --wrap=true -o /dev/null", 600)
        self.res["gsub_seq_per_s"] = r(n / secs)
        self.res["gsub_seq_s"] = r(secs, 3)
        self.res["gsub_seq_failures"] = fails
        if fails:
            self.res["gsub_seq_per_s"] = None
            raise PartError(self.loop_error)

    def part_gsub_par(self) -> None:
        self.cleanup()
        par = self.sz["par"]
        per = self.sz["n"] // par
        secs, fails = self._shell_loops(par, per, "gsub --wrap=true -o /dev/null", 600)
        self.res["gsub_par_per_s"] = r(per * par / secs)
        self.res["gsub_par_s"] = r(secs, 3)
        self.res["gsub_par_concurrency"] = par
        self.res["gsub_par_failures"] = fails
        if fails:
            self.res["gsub_par_per_s"] = None
            raise PartError(self.loop_error)

    def part_throughput(self) -> None:
        self.cleanup()
        n = self.sz["n"]
        before = self.max_job_id()
        gq = [str(self.bin / "gqueue"), "-h", "-u", self.user, "-o", "%i"]
        with self.profiled("throughput"):
            t0 = time.perf_counter()
            _, fails = self._shell_loops(1, n, "gsub -n1 -c1 --wrap=true -o /dev/null", 600)
            t_sub = time.perf_counter()
            drained = None
            deadline = t_sub + self.sz["tput_drain_timeout_s"]
            while time.perf_counter() < deadline:  # bench.sh wait_empty: squeue every 0.1 s
                p = self.run(gq, 30, subprocess.PIPE)
                if p.returncode == 0 and not p.stdout.strip():
                    drained = time.perf_counter()
                    break
                time.sleep(0.1)
        self.res["throughput_submit_s"] = r(t_sub - t0, 3)
        self.res["throughput_submit_failures"] = fails
        if drained is None:
            self.res["throughput_left_after_timeout"] = self.queue_len()
            raise PartError(
                f"queue not empty {self.sz['tput_drain_timeout_s']} s after the last submit"
            )
        if fails:
            raise PartError(self.loop_error)
        self.res["throughput_jobs_per_s"] = r(n / (drained - t0))
        self.res["throughput_total_s"] = r(drained - t0, 3)
        self.res["throughput_drain_after_last_submit_s"] = r(drained - t_sub, 3)
        # per-job timeline from the controller (finished jobs stay in memory a while)
        jobs = [j for j in self.list_mine(all_states=True) if j.job_id > before]
        if jobs:
            wait = [j.start_time - j.submit_time for j in jobs if j.start_time]
            run = [j.end_time - j.start_time for j in jobs if j.start_time and j.end_time]
            states: dict[str, int] = {}
            for j in jobs:
                states[j.state] = states.get(j.state, 0) + 1
            self.breakdown["throughput_jobs_seen"] = len(jobs)
            self.breakdown["throughput_states"] = states
            if wait:
                self.breakdown["throughput_submit_to_start_ms_p50"] = r(pct(wait, 50) * 1000)
                self.breakdown["throughput_submit_to_start_ms_max"] = r(max(wait) * 1000)
            if run:
                self.breakdown["throughput_start_to_end_ms_p50"] = r(pct(run, 50) * 1000)
                self.breakdown["throughput_start_to_end_ms_max"] = r(max(run) * 1000)

    def _per_job_cpu(self) -> None:
        """CPU ms per job by component, robust to a noisy machine where wall times are not."""
        by_part = self.breakdown.get("cpu_s_by_part", {})
        jobs = {
            "api": self.sz["api_seq_jobs"] + 5 + self.sz["api_jobs"],
            "gsub_seq": self.sz["n"],
            "gsub_par": self.sz["n"] // self.sz["par"] * self.sz["par"],
            "throughput": self.sz["n"],
            "throughput_api": self.sz["n"],
        }
        out = {}
        for part, n in jobs.items():
            if part in by_part and part not in self.errors:
                out[part] = {
                    k: round(v * 1000 / n, 2) for k, v in by_part[part].items() if k != "wall"
                }
        self.breakdown["cpu_ms_per_job"] = out

    def part_throughput_api(self) -> None:
        """Like throughput, but submitted through the API (16 async callers): what the
        controller and agents sustain without a Python process start per job."""
        self.cleanup()
        n, conc = self.sz["n"], 16
        from gsched.cli import directives

        argv = ["-n1", "-c1", "--wrap=true", "-o", "/dev/null", "-J", "bench-tput-api"]
        spec = directives.parse_submission(argv, self.child_env(), os.getcwd(), None, "gsub").spec
        md = self.metadata()

        async def go() -> tuple[float, float, int]:
            import grpc

            from gsched.protos import gsched_pb2 as pb
            from gsched.protos import gsched_pb2_grpc as rpc

            async with grpc.aio.insecure_channel(self.address) as ch:
                stub = rpc.JobServiceStub(ch)
                req = pb.SubmitRequest(spec=spec)
                await ch.channel_ready()
                left = [n]

                async def caller() -> None:
                    while left[0] > 0:
                        left[0] -= 1
                        await stub.Submit(req, metadata=md, timeout=60)

                t0 = time.perf_counter()
                await asyncio.gather(*(caller() for _ in range(conc)))
                t_sub = time.perf_counter()
                lreq = pb.ListJobsRequest(filter=pb.JobFilter(users=[self.user]))
                deadline = t_sub + self.sz["tput_drain_timeout_s"]
                while time.perf_counter() < deadline:
                    rep = await stub.ListJobs(lreq, metadata=md, timeout=30)
                    if not rep.jobs:
                        return t0, t_sub, 0
                    await asyncio.sleep(0.05)
                rep = await stub.ListJobs(lreq, metadata=md, timeout=30)
                return t0, t_sub, len(rep.jobs)

        t0, t_sub, left = asyncio.run(asyncio.wait_for(go(), 600))
        t1 = time.perf_counter()
        self.res["throughput_api_submit_s"] = r(t_sub - t0, 3)
        if left:
            raise PartError(f"{left} jobs still queued after the drain timeout")
        self.res["throughput_api_jobs_per_s"] = r(n / (t1 - t0))
        self.res["throughput_api_total_s"] = r(t1 - t0, 3)

    # ---------------------------------------------------------------- driver
    def run_all(self) -> dict[str, Any]:
        t_all = time.monotonic()
        try:
            self.part("up", self.up)
            if "up" not in self.errors:
                self.part("warmup", self.warm_cli)
                self.part("gqueue_empty", self.part_gqueue_empty)
                self.part("api", self.part_api)
                self.part("gqueue", self.part_gqueue_full)
                self.part("gcancel", self.part_gcancel)
                self.part("gsub", self.part_gsub)
                self.part("gsub_seq", self.part_gsub_seq)
                self.part("gsub_par", self.part_gsub_par)
                self.part("throughput", self.part_throughput)
                self.part("throughput_api", self.part_throughput_api)
                with contextlib.suppress(Exception):
                    self.cleanup(30)
                self._per_job_cpu()
        finally:
            self.down()
        self.res["bench_wall_s"] = round(time.monotonic() - t_all, 1)
        return self.res


def _top_frames(path: Path, n: int = 12) -> dict[str, Any]:
    """Self and inclusive shares of the busiest frames in a py-spy raw (collapsed) file."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = [re.sub(r" \(/.*/(site-packages/|work/main/)?", " (", f) for f in stack.split(";")]
        self_c[frames[-1]] = self_c.get(frames[-1], 0) + c
        for f in set(frames):
            incl[f] = incl.get(f, 0) + c

    def top(d: dict[str, int]) -> list[str]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:n]
        return [f"{100 * v / total:.1f}% {k}" for k, v in items]

    # inclusive shares of the controller's own functions (entry points left out): what
    # each piece of gsched costs, callees included
    ours = re.compile(r"\((gsched/)?(controller|agent|common)/(?!main\.py)")
    mine = {k: v for k, v in incl.items() if ours.search(k)}
    return {
        "samples": total,
        "file": str(path),
        "self": top(self_c) if total else [],
        "inclusive_gsched": top(mine) if total else [],
    }


# ---------------------------------------------------------------- SLURM anchor
def _ports_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _anchor_ports() -> tuple[int, int]:
    if _ports_free([16817, *range(16901, 16901 + AGENTS)]):
        return 16817, 16901
    for base in range(21000, 60000, 97):
        if _ports_free([base, *range(base + 10, base + 10 + AGENTS)]):
            return base, base + 10
    raise PartError("no free ports for the SLURM anchor")


def run_slurm(args: argparse.Namespace, sz: dict[str, Any]) -> dict[str, Any]:
    """up.sh, bench.sh (same sizes as ours), down.sh; bench.sh's JSON plus what happened."""
    anchor = Path(args.anchor_dir)
    out: dict[str, Any] = {}
    if os.geteuid() != 0:
        return {"error": "the SLURM anchor needs root (up.sh installs packages, starts munged)"}
    for f in ("up.sh", "bench.sh", "down.sh"):
        if not (anchor / f).is_file():
            return {"error": f"{anchor / f} not found"}
    state = tempfile.mkdtemp(prefix="anchor-slurm-bench-", dir="/var/tmp")
    ctld, slurmd = _anchor_ports()
    env = dict(
        os.environ,
        ANCHOR_SLURM_STATE=state,
        ANCHOR_SLURM_NODES=str(AGENTS),
        ANCHOR_SLURM_CTLD_PORT=str(ctld),
        ANCHOR_SLURM_SLURMD_PORT=str(slurmd),
        N=str(sz["n"]),
        PAR=str(sz["par"]),
        HELD=str(sz["api_jobs"]),
        COLD_SAMPLES=str(sz["gsub_samples"]),
        SQUEUE_SAMPLES=str(sz["gqueue_samples"]),
        SKIP=args.slurm_skip,
    )
    logdir = Path(args.out).parent if args.out else REPO / "bench" / "results"
    logdir.mkdir(parents=True, exist_ok=True)
    logf = logdir / "slurm-anchor.log"
    logf.write_text("")
    out["log"] = str(logf)
    out["bench_env"] = {
        k: env[k] for k in ("N", "PAR", "HELD", "COLD_SAMPLES", "SQUEUE_SAMPLES", "SKIP")
    }
    started = False
    try:
        with open(logf, "a") as lf:
            log(f"slurm: up.sh (state {state}; log {logf}); may install slurm-wlm first")
            t0 = time.monotonic()
            try:
                p = subprocess.run(
                    ["bash", str(anchor / "up.sh")],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=lf,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=args.slurm_up_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                out["error"] = f"up.sh did not finish in {args.slurm_up_timeout} s"
                started = True
                return out
            started = True
            lf.write(p.stderr)
            out["up_s"] = round(time.monotonic() - t0, 1)
            out["up_stderr_tail"] = p.stderr.strip().splitlines()[-6:]
            if p.returncode != 0:
                out["error"] = f"up.sh exited {p.returncode}: " + " | ".join(
                    out["up_stderr_tail"][-3:]
                )
                return out
            log("slurm: bench.sh")
            t0 = time.monotonic()
            try:
                p = subprocess.run(
                    ["bash", str(anchor / "bench.sh")],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=lf,
                    text=True,
                    timeout=args.slurm_bench_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                out["error"] = f"bench.sh did not finish in {args.slurm_bench_timeout} s"
                return out
            out["bench_s"] = round(time.monotonic() - t0, 1)
            try:
                out.update(json.loads(p.stdout))
            except json.JSONDecodeError as exc:
                out["error"] = f"bench.sh rc={p.returncode}, no JSON: {exc}: {p.stdout[-300:]!r}"
    finally:
        if started:
            log("slurm: down.sh")
            with open(logf, "a") as lf:
                subprocess.run(
                    ["bash", str(anchor / "down.sh")],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=lf,
                    stderr=lf,
                    timeout=180,
                    check=False,
                )
        else:
            shutil.rmtree(state, ignore_errors=True)
    return out


# ---------------------------------------------------------------- report
def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "hostname": socket.gethostname(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_busy_s() -> float | None:
    """Machine-wide busy CPU seconds so far (/proc/stat), to tell a quiet run from a noisy one."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def gsched_info() -> dict[str, Any]:
    info: dict[str, Any] = {}

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(REPO), *a],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()

    with contextlib.suppress(Exception):
        info["commit"] = git("rev-parse", "HEAD") or None
        info["commit_subject"] = git("log", "-1", "--format=%s")[:120]
        dirty = git("status", "--porcelain", "--untracked-files=no")
        info["dirty_files"] = len(dirty.splitlines())
    # What the figures depend on: the Python sources of the gsched that the venv runs
    # (an editable install maps to this tree; a regular install is a copy of it).
    import importlib.util
    from importlib import metadata

    h = hashlib.sha1()
    dirs = []
    for sub in ("cli", "controller", "agent", "common", "protos"):
        with contextlib.suppress(Exception):
            spec = importlib.util.find_spec(f"gsched.{sub}")
            for d in spec.submodule_search_locations or []:
                dirs.append(d)
                for f in sorted(Path(d).rglob("*.py")):
                    with contextlib.suppress(OSError):
                        h.update(f"{sub}/{f.relative_to(d)}".encode() + b"\0" + f.read_bytes())
    info["source_sha1"] = h.hexdigest()
    info["package_dirs"] = dirs
    with contextlib.suppress(Exception):
        direct = json.loads(metadata.distribution("gsched").read_text("direct_url.json") or "{}")
        info["install"] = (
            "editable" if direct.get("dir_info", {}).get("editable") else "regular (a copy)"
        )

    for pkg in ("gsched", "grpcio", "protobuf", "sqlalchemy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            info[pkg] = metadata.version(pkg)
    with contextlib.suppress(Exception):
        from google.protobuf.internal import api_implementation

        info["protobuf_impl"] = api_implementation.Type()
    return info


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def table(doc: dict[str, Any]) -> str:
    g, s = doc["gsched"], doc.get("slurm") or {}
    rows = [("figure", "gsched", "SLURM" if s else "", "unit")]
    for ours, theirs, unit, label in COMPARE:
        sv = s.get(theirs) if theirs else None
        if theirs == "scancel_all_held_ms" and isinstance(sv, (int, float)):
            sv = sv / 1000
        rows.append((label, fmt(g.get(ours)), fmt(sv) if s else "", unit))
    extra = [
        ("gsub p90 / min", f"{fmt(g.get('gsub_ms_p90'))} / {fmt(g.get('gsub_ms_min'))}", "", "ms")
    ]
    rows += extra
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    if doc.get("errors"):
        lines.append("errors: " + "; ".join(f"{k}: {v[:160]}" for k, v in doc["errors"].items()))
    if s.get("error"):
        lines.append(f"slurm error: {s['error'][:300]}")
    return "\n".join(lines)


# where `pip install` puts each gsched package (pyproject.toml [tool.setuptools.package-dir])
PACKAGE_DIRS = {
    "gsched": "common/_root",
    "gsched/common": "common",
    "gsched/protos": "protos",
    "gsched/controller": "controller",
    "gsched/agent": "agent",
    "gsched/cli": "cli",
}
SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {func}
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit({func}())
"""


def make_snapshot(mode: str, root: Path, python: Path) -> tuple[Path, Path, dict[str, Any]]:
    """A frozen copy of gsched (git HEAD or the working tree) laid out as pip installs it,
    with console scripts like pip's: concurrent edits, commits or reinstalls of the venv
    cannot change what a run measures. Returns (bin dir, PYTHONPATH dir, info)."""
    src = root / "src"
    src.mkdir(parents=True)
    dirs = sorted(set(PACKAGE_DIRS.values()) - {"common/_root"})
    if mode == "head":
        arch = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(REPO),
                "archive",
                "--format=tar",
                "HEAD",
                *dirs,
            ],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=arch, check=True, timeout=60)
    else:
        for d in dirs:
            shutil.copytree(REPO / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    lib = root / "lib"
    for pkg, d in sorted(PACKAGE_DIRS.items()):
        dst = lib / pkg
        dst.mkdir(parents=True, exist_ok=True)
        for item in (src / d).iterdir():
            if item.name in ("_root", "__pycache__"):
                continue
            if item.is_dir():
                shutil.copytree(item, dst / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, dst / item.name)
    bindir = root / "bin"
    bindir.mkdir()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    for name, target in project["project"]["scripts"].items():
        module, func = target.split(":")
        f = bindir / name
        f.write_text(SCRIPT.format(python=python, module=module, func=func))
        f.chmod(0o755)
    # plain scripts (gsub): pip rewrites their "#!python" line to the interpreter
    for path in project.get("tool", {}).get("setuptools", {}).get("script-files", []):
        if mode == "head":
            text = subprocess.run(
                ["git", "--no-optional-locks", "-C", str(REPO), "show", f"HEAD:{path}"],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout
        else:
            text = (REPO / path).read_text()
        if text.startswith("#!python"):
            text = f"#!{python}" + text[len("#!python"):]
        f = bindir / Path(path).name
        f.write_text(text)
        f.chmod(0o755)
    return bindir, lib, {"snapshot": mode, "snapshot_dir": str(root)}


def wait_idle(limit_s: float) -> float | None:
    """Wait (at most limit_s) until the machine is nearly idle: under a quarter of one
    core busy over a 3 s window. Returns the busy share (cores) of the last window."""
    deadline = time.monotonic() + limit_s
    share = None
    while True:
        b0, t0 = cpu_busy_s(), time.monotonic()
        time.sleep(3)
        b1, t1 = cpu_busy_s(), time.monotonic()
        if b0 is None or b1 is None:
            return None
        share = (b1 - b0) / (t1 - t0)
        if share < 0.25 or time.monotonic() >= deadline:
            return round(share, 2)
        log(f"machine busy ({share:.2f} cores in use by others); waiting")


def _own_cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes; a smoke test in < 60 s")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--slurm", action="store_true", help="also run the SLURM anchor, same sizes")
    ap.add_argument(
        "--anchor-dir", default=os.environ.get("GSCHED_SLURM_ANCHOR", str(DEFAULT_ANCHOR))
    )
    ap.add_argument(
        "--slurm-skip",
        default="f",
        help="bench.sh parts to skip (default 'f': the slurmd-failure part, "
        "~4 min, has no gsched counterpart here)",
    )
    ap.add_argument("--slurm-up-timeout", type=int, default=900)
    ap.add_argument("--slurm-bench-timeout", type=int, default=1500)
    ap.add_argument("--bin-dir", help="where gsched, gsub, ... live (default: the venv's bin)")
    ap.add_argument("--keep-state", action="store_true", help="keep the temp state dir (logs)")
    ap.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy binary: profile the controller during the api and "
        "throughput parts (diagnosis only: it slows the figures)",
    )
    ap.add_argument("--profile-dir", default=str(REPO / "bench" / "results"))
    ap.add_argument(
        "--snapshot",
        choices=["head", "tree"],
        help="run a private frozen copy of gsched (git HEAD, or the working tree) instead "
        "of what the venv has installed: immune to concurrent edits and reinstalls",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be nearly idle (shared machines)",
    )
    args = ap.parse_args()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    snap_root = None
    snap_info: dict[str, Any] = {}
    if args.snapshot:
        snap_root = Path(tempfile.mkdtemp(prefix="gsched-bench-snap-"))
        bindir, lib, snap_info = make_snapshot(
            args.snapshot, snap_root, Bench._find_bin() / "python"
        )
        args.bin_dir, args.pythonpath = str(bindir), str(lib)
        sys.path.insert(0, str(lib))  # this process builds specs with the same code
    idle_share = wait_idle(args.wait_idle) if args.wait_idle > 0 else None
    bench = Bench(args)
    doc: dict[str, Any] = {
        "schema": "gsched-bench-core/1",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "gsched_build": {**gsched_info(), **snap_info},
        "cluster": {"agents": AGENTS, "cpus": CPUS, "mem_mb": MEM_MB, "gpus": GPUS},
        "sizes": bench.sz,
    }
    if idle_share is not None:
        doc["machine"]["busy_cores_before_start"] = idle_share
    log(
        f"gsched bench ({doc['mode']}), {doc['machine']['nproc']} cores, "
        f"load {doc['machine']['loadavg_start']}, commit {doc['gsched_build'].get('commit', '?')[:10]}"
    )
    busy0, ours0 = cpu_busy_s(), _own_cpu()
    try:
        doc["gsched"] = bench.run_all()
    except KeyboardInterrupt:
        log("interrupted")
        doc["gsched"] = bench.res
        bench.errors["interrupted"] = "interrupted"
    except Exception as exc:  # a bug here must still leave a document behind
        doc["gsched"] = bench.res
        bench.errors["bench"] = f"{type(exc).__name__}: {exc}"
    busy1, ours1 = cpu_busy_s(), _own_cpu()
    if busy0 is not None and busy1 is not None:
        # the cluster's daemons are our children too once reaped (gsched up detaches
        # them, so they are not): their CPU comes from the per-part accounting
        daemons = sum(
            v.get(k, 0.0)
            for v in bench.breakdown.get("cpu_s_by_part", {}).values()
            for k in ("controller", "agents", "agent_children")
        )
        doc["machine"]["cpu_busy_s_during_gsched"] = round(busy1 - busy0, 1)
        doc["machine"]["cpu_s_ours_during_gsched"] = round(ours1 - ours0 + daemons, 1)
    end = gsched_info()
    if end.get("source_sha1") != doc["gsched_build"].get("source_sha1"):
        doc["gsched_build_at_end"] = end
        bench.errors["tree_changed"] = (
            "gsched's source changed during the run (someone edited or committed): "
            "figures may mix two versions; run again"
        )
    doc["errors"] = bench.errors
    doc["parts_s"] = bench.part_s
    doc["breakdown"] = bench.breakdown
    if bench.notes:
        doc["notes"] = bench.notes
    doc["machine"]["loadavg_after_gsched"] = [round(x, 2) for x in os.getloadavg()]
    if args.slurm and "interrupted" not in bench.errors:
        try:
            doc["slurm"] = run_slurm(args, bench.sz)
        except KeyboardInterrupt:
            doc["slurm"] = {"error": "interrupted"}
        except Exception as exc:
            doc["slurm"] = {"error": f"{type(exc).__name__}: {exc}"}
        doc["machine"]["loadavg_after_slurm"] = [round(x, 2) for x in os.getloadavg()]
    sys.stderr.write("\n" + table(doc) + "\n\n")
    text = json.dumps(doc, indent=2)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        log(f"wrote {out}")
    sys.stdout.write(text + "\n")
    if snap_root is not None:
        shutil.rmtree(snap_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
