"""Per-call cost of user credentials: libmunge (ctypes) vs the munge/unmunge commands.

Run: .venv/bin/python bench/bench_munge.py [--calls N] [--out bench/results/munge.json]

Starts a private munged (own key/socket/pid/log/seed in a temp dir; needs root and
Debian's munge package), then times, per call, in microseconds (median of N):

* ``encode``/``decode`` for each backend (what the CLI and the controller pay);
* ``credential`` — the CLI's whole step for one gRPC call with auth_type munge
  (``Client.metadata_for``: payload + encode), and the controller's check
  (``Authenticator.verify_munge``: decode + payload + replay cache);
* ``local_token`` — auth_type local: issuing and verifying one socket-issued token
  in process (the socket round trip itself is ~0.1 ms more).

Prints a table on stderr and one JSON object on stdout (also to --out). The backend
chosen by default (gsched.common.munge.open_munge) is the faster one: libmunge.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _median_us(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return round(statistics.median(samples) * 1e6, 1)


def _start_munged(d: Path) -> tuple[str, int]:
    exe = shutil.which("munged") or "/usr/sbin/munged"
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock, pid = d / "sock", d / "pid"
    subprocess.run([exe, "--force", f"--key-file={key}", f"--socket={sock}",
                    f"--pid-file={pid}", f"--log-file={d / 'log'}", f"--seed-file={d / 'seed'}"],
                   check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while not pid.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return str(sock), int(pid.read_text().split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not (shutil.which("munged") or Path("/usr/sbin/munged").exists()):
        sys.exit("munged is not installed (apt-get install munge)")

    from gsched.cli.client import Client
    from gsched.common import auth, config, munge
    from gsched.controller.auth import Authenticator

    n = args.calls
    d = Path(tempfile.mkdtemp(prefix="gsched-bench-munge-"))
    sock, pid = _start_munged(d)
    res: dict[str, object] = {"calls": n}
    try:
        for name in ("libmunge", "commands"):
            m = munge.open_munge(sock, backend=name)
            calls = n if name == "libmunge" else max(20, n // 10)
            creds = [m.encode(b"x") for _ in range(calls + 1)]
            it = iter(creds)
            res[name] = {
                "encode_us": _median_us(lambda m=m: m.encode(b"gsched/1\nmethod\nnonce\n0"),
                                        calls),
                "decode_us": _median_us(lambda m=m, it=it: m.decode(next(it)), calls),
            }
        method = auth.full_method("ListJobs")
        client = Client("127.0.0.1:1", auth_type="munge", munge_socket=sock)
        res["credential_client_us"] = _median_us(lambda: client.metadata_for("ListJobs"), n)
        cfg = config.from_dict({"controller": {"auth_type": "munge", "munge_socket": sock}})
        a = Authenticator(cfg)
        a.start()
        mds = [client.metadata_for("ListJobs")[0][1][6:] for _ in range(n + 1)]
        it2 = iter(mds)
        res["credential_controller_us"] = _median_us(
            lambda: a.verify_munge(next(it2), method, time.time()), n)
        a.close()
        tokens = auth.LocalTokens()
        toks = [tokens.issue(1000, 1000, method) for _ in range(n + 1)]
        it3 = iter(toks)
        res["local_token_issue_us"] = _median_us(lambda: tokens.issue(1000, 1000, method), n)
        res["local_token_verify_us"] = _median_us(lambda: tokens.verify(next(it3), method), n)
        res["default_backend"] = munge.open_munge(sock).name
    finally:
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(d, ignore_errors=True)
    lib, cmd = res["libmunge"], res["commands"]
    assert isinstance(lib, dict) and isinstance(cmd, dict)
    sys.stderr.write(
        f"per call (median of {n}), microseconds:\n"
        f"  libmunge  encode {lib['encode_us']:>8}   decode {lib['decode_us']:>8}\n"
        f"  commands  encode {cmd['encode_us']:>8}   decode {cmd['decode_us']:>8}\n"
        f"  CLI credential (munge) {res['credential_client_us']}, "
        f"controller check {res['credential_controller_us']}\n"
        f"  local token issue {res['local_token_issue_us']}, "
        f"verify {res['local_token_verify_us']}\n"
        f"  default backend: {res['default_backend']}\n")
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
