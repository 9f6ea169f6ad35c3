"""Hostile input against a real controller process: limits, malformed bytes, rate limit, fuzz.

The controller runs as ``gsched up`` starts it; requests go over gRPC with raw
bytes (generic calls), over the local socket, and through the installed CLI.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gsched.common import config, localrpc
from gsched.protos import gsched_pb2 as pb

from .conftest import BIN, LocalCluster, start_cluster, stop_cluster

# These tests speak raw gRPC as whoever they like: the test-only auth_type = "none"
# (loopback only) believes the claimed identity in the metadata below.
_CLAIMED = ("--auth-type", "none")
ROOT_MD = (("x-gsched-uid", "0"), ("x-gsched-user", "root"))
USER_MD = (("x-gsched-uid", "4242"), ("x-gsched-user", "someone"))
_ident = lambda b: b  # noqa: E731 - raw bytes both ways


def _fuzz_module() -> Any:
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_rpc.py"
    spec = importlib.util.spec_from_file_location("gsched_bench_fuzz_rpc", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[LocalCluster]:
    c = start_cluster(tmp_path, agents=0, gpus=0, extra=_CLAIMED)
    try:
        yield c
    finally:
        stop_cluster(c)


def _address(c: LocalCluster) -> str:
    return config.load(str(c.state / "gsched.toml")).controller.address


def _submit(ch: grpc.Channel, spec: pb.JobSpec, md: Any = ROOT_MD) -> int:
    call = ch.unary_unary("/gsched.v1.JobService/Submit",
                          pb.SubmitRequest.SerializeToString, pb.SubmitReply.FromString)
    return call(pb.SubmitRequest(spec=spec), metadata=md, timeout=10).job_id


def _job_ids(ch: grpc.Channel) -> list[int]:
    call = ch.unary_unary("/gsched.v1.JobService/ListJobs",
                          pb.ListJobsRequest.SerializeToString, pb.ListJobsReply.FromString)
    reply = call(pb.ListJobsRequest(filter=pb.JobFilter(all_states=True)), metadata=ROOT_MD,
                 timeout=10)
    return sorted(j.job_id for j in reply.jobs)


def _spec(**kw: Any) -> pb.JobSpec:
    env = kw.pop("environment", {"PATH": "/bin"})
    fields = {"script": "#!/bin/sh\ntrue\n", "name": "j", "submit_dir": "/tmp", "hold": True}
    spec = pb.JobSpec(**{**fields, **kw})
    spec.environment.update(env)
    return spec


def test_malformed_bytes_get_invalid_argument_on_every_method(ctl: LocalCluster) -> None:
    fz = _fuzz_module()
    ch = grpc.insecure_channel(_address(ctl))
    for service, method, cls, kind in fz.METHODS:
        for data in (b"\xff\xff\xff", fz._bad_utf8(b"", cls.DESCRIPTOR), b"\x0a\x10\x12"):
            path = f"/{service}/{method}"
            with pytest.raises(grpc.RpcError) as exc:
                if kind == "unary_unary":
                    ch.unary_unary(path, _ident, _ident)(data, metadata=USER_MD, timeout=10)
                elif kind == "unary_stream":
                    list(ch.unary_stream(path, _ident, _ident)(data, metadata=USER_MD, timeout=10))
                else:
                    list(ch.stream_stream(path, _ident, _ident)(iter([data]), metadata=USER_MD,
                                                                timeout=10))
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, data)
            assert "malformed message" in exc.value.details()
    # the same through the local socket
    sock = localrpc.connect_local(str(ctl.state / "controller.sock"), 5)
    try:
        for method in localrpc.METHODS:
            with pytest.raises(localrpc.LocalError) as lexc:
                localrpc.call_raw(sock, method, b"\xff\xff\xff")
            assert lexc.value.code == "INVALID_ARGUMENT"
    finally:
        sock.close()


def test_local_socket_framing(ctl: LocalCluster) -> None:
    """Calls sent together are answered in order; a half-closed connection still gets
    its answers; a bad frame length closes the connection without an answer."""
    import socket

    path = str(ctl.state / "controller.sock")
    ping = localrpc.encode_request("Ping", pb.PingRequest().SerializeToString())
    listing = localrpc.encode_request("ListJobs", pb.ListJobsRequest().SerializeToString())

    def replies(sock: socket.socket) -> list[int]:
        got, data = [], b""
        while chunk := sock.recv(65536):
            data += chunk
        while data:
            n = int.from_bytes(data[:4], "big")
            got.append(data[4])  # the status byte
            data = data[4 + n:]
        return got

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(ping + listing + ping)
        sock.shutdown(socket.SHUT_WR)  # half-closed: the answers still come, then EOF
        assert replies(sock) == [0, 0, 0]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall((0).to_bytes(4, "big") + ping)  # length 0: not a frame
        assert replies(sock) == []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(ping[:7])  # half a frame, then the rest: one answer
        time.sleep(0.05)
        sock.sendall(ping[7:])
        sock.shutdown(socket.SHUT_WR)
        assert replies(sock) == [0]
    assert localrpc.call_raw(localrpc.connect_local(path, 5), "Ping",
                             pb.PingRequest().SerializeToString()) is not None


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (lambda: _spec(script="#!/bin/sh\n" + "#" * (5 * 1024 * 1024)), "script is"),
        (lambda: _spec(name="a\0b"), "contains a NUL"),
        (lambda: _spec(nodelist="node[1-99999999]"), "names 99999999 hosts"),
        (lambda: _spec(ntasks=-1), "ntasks is -1"),
        (lambda: _spec(ntasks=1_000_000, cpus_per_task=1_000_000), "CPUs in all"),
        (lambda: _spec(open_mode="sideways"), "unknown value"),
        (lambda: _spec(environment={f"V{i}": "x" for i in range(5000)}), "variables"),
        (lambda: _spec(environment={"BAD=NAME": "1"}), "invalid variable name"),
    ],
)
def test_out_of_bounds_submissions_are_refused_and_change_nothing(
    ctl: LocalCluster, spec: Any, words: str
) -> None:
    ch = grpc.insecure_channel(_address(ctl))
    kept = _submit(ch, _spec(name="kept"))
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as exc:
        _submit(ch, spec(), USER_MD)
    assert time.monotonic() - start < 5  # no billion-name expansion
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in exc.value.details()
    assert _job_ids(ch) == [kept]


def test_gsub_prints_one_line_for_a_refused_request(ctl: LocalCluster) -> None:
    script = ctl.workdir / "big.sh"
    script.write_text("#!/bin/sh\n" + "# padding\n" * 500_000)  # 5 MB
    r = ctl.run("gsub", str(script))  # gsub itself refuses it, as sbatch does
    assert r.rc == 1 and r.err.startswith("gsub: error:") and "too big" in r.err
    r = ctl.run("gsub", "-w", "node[1-99999999]", "--wrap", "true")
    assert r.rc == 1
    assert r.err.startswith("gsub: error:") and "too many hosts" in r.err, r.err
    assert r.err.count("\n") == 1
    r = ctl.run("gsub", "--open-mode=sideways", "--wrap", "true")
    assert r.rc != 0 and r.err.count("\n") == 1, r.err
    assert ctl.run("gqueue", "-h", "-t", "all").out.strip() == ""


def _retry(cmd: list[str]) -> None:
    for _ in range(50):
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{cmd} failed")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                    reason="needs root and useradd to create a test user")
def test_submission_rate_limit_per_user() -> None:
    name = f"gsr{os.getpid() % 100000}"
    _retry(["useradd", "-M", "-s", "/bin/sh", name])
    base = Path(tempfile.mkdtemp(prefix="gsched-rate-"))
    base.chmod(0o755)
    c = start_cluster(base, agents=0, gpus=0, extra=_CLAIMED)
    stop_cluster(c)
    conf = c.state / "gsched.toml"
    conf.write_text(conf.read_text().replace(
        "kill_wait = 5\n", "kill_wait = 5\nsubmit_rate = 0.5\nsubmit_burst = 3\n"))
    c.state.chmod(0o755)
    c.workdir.chmod(0o1777)
    proc = subprocess.Popen([str(BIN / "gsched"), "controller", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(c.state / "ctl2.log", "wb"),
                            env=c.env)
    user = pwd.getpwnam(name)
    try:
        c.wait_for(lambda: c.run("gqueue").rc == 0, 30, "the controller")
        env = dict(c.env, HOME="/", USER=name, LOGNAME=name)

        def gsub() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                 "--init-groups", str(BIN / "gsub"), "-H", "--wrap", "true"],
                capture_output=True, text=True, timeout=60, env=env, cwd=c.workdir)

        results = [gsub() for _ in range(4)]
        assert [r.returncode for r in results[:3]] == [0, 0, 0], results[0].stderr
        assert results[3].returncode == 1
        assert "rate limit" in results[3].stderr and "retry in" in results[3].stderr
        # only the accepted ones exist; root (an operator) is not limited
        assert len(c.run("gqueue", "-h", "-u", name).out.split("\n")) - 1 == 3
        for _ in range(5):
            assert c.run("gsub", "-H", "--wrap", "true").rc == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_fuzz_every_rpc_briefly(ctl: LocalCluster) -> None:
    """A bounded run of bench/fuzz_rpc.py (a few seconds): no crash, nothing lost."""
    fz = _fuzz_module()
    address = _address(ctl)
    before = fz.baseline(address, 3)
    f = fz.Fuzzer(address, str(ctl.state / "controller.sock"))
    f.run(examples=150, seed=None)
    assert f.total >= 150
    assert f.crashes == [], f.crashes[:3]
    checks = fz.end_checks(address, before)
    assert checks["alive"] and checks["accepted_jobs_intact"], checks
    assert checks["all_jobs_listable"] and checks["new_submission_ok"], checks
