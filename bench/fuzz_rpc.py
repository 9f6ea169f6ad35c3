"""Fuzz every RPC of a running controller with hypothesis-made protobuf bytes.

Run: .venv/bin/python bench/fuzz_rpc.py [--examples N] [--seed S] [--out bench/results/fuzz.json]

Starts its own cluster (``gsched up --agents 0`` in a temporary state dir),
submits a few held jobs as root (the "accepted" jobs), then sends, as an
ordinary user (uid 4242) so nothing it sends may touch root's jobs:

* well-typed messages of every request type with hostile values (huge and
  negative numbers, NULs, long and odd Unicode strings, big repeated fields and
  maps), built from the message descriptors;
* the same bytes truncated, with bytes flipped or appended, random bytes, and
  messages whose string fields hold invalid UTF-8;

to every method of JobService, AdminService and AgentLink over gRPC, and to
every method of the local Unix socket. A *crash* is an answer of ``UNKNOWN`` or
``INTERNAL`` (an exception the servicer did not expect), a dropped local-socket
connection, or a controller that died; it must stay 0. At the end the
controller must answer, the accepted jobs must be unchanged, and a new
submission must work.

Prints a table on stderr and one JSON object on stdout (also to ``--out``):
inputs tried (per method and transport), crashes (with a reproducer each), and
the end checks. ``tests/e2e/test_fuzz_rpc.py`` runs a bounded version in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gsched.common import localrpc
from gsched.protos import gsched_pb2 as pb

BIN = Path(sys.executable).parent
FUZZ_MD = (("x-gsched-uid", "4242"), ("x-gsched-user", "fuzzer"))
ROOT_MD = (("x-gsched-uid", "0"), ("x-gsched-user", "root"))
CRASH_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}

# (service, method, request type, kind)
METHODS: list[tuple[str, str, Any, str]] = []
for _svc in pb.DESCRIPTOR.services_by_name.values():
    for _m in _svc.methods:
        kind = ("stream" if _m.client_streaming else "unary") + "_" + (
            "stream" if _m.server_streaming else "unary"
        )
        METHODS.append((_svc.full_name, _m.name, getattr(pb, _m.input_type.name), kind))

_INTS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([-(2**31), 2**31 - 1, -(2**63), 2**63 - 1, 2**53, 65536, 99_999_999]),
    st.integers(-(2**31), 2**31 - 1),
)
_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from("n[]-,0123456789:=%\0\n/"), max_size=40),
    st.sampled_from(["node[1-99999999]", "n[1-3", "ALL", "\0", "../../etc/passwd", "x" * 5000,
                     "ÿ" * 300, "\ud7ff\ue000", "RUNNING", "PENDING", "DRAIN", "append"]),
)


def _value(field: Any, depth: int) -> st.SearchStrategy[Any]:
    t = field.type
    if field.message_type is not None:
        return _message(field.message_type, depth + 1)
    if t == field.TYPE_STRING:
        return _TEXT
    if t == field.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == field.TYPE_BOOL:
        return st.booleans()
    if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(-1.0))
    if t in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32):
        return _INTS.map(lambda v: max(-(2**31), min(2**31 - 1, v)))
    if t in (field.TYPE_UINT32, field.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (field.TYPE_UINT64, field.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    return _INTS  # int64


def _message(desc: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Field values for a message of type ``desc`` (a dict; see :func:`_build`)."""
    if depth > 3:
        return st.just({})
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _value(field.message_type.fields_by_name["key"], depth)
            val = _value(field.message_type.fields_by_name["value"], depth)
            parts[field.name] = st.one_of(
                st.dictionaries(key, val, max_size=4),
                st.builds(lambda n: {f"K{i}": "v" for i in range(n)}, st.sampled_from([300, 5000])),
            )
        elif field.is_repeated and field.message_type is not None:
            parts[field.name] = st.lists(_value(field, depth), max_size=3)
        elif field.is_repeated:
            parts[field.name] = st.one_of(
                st.lists(_value(field, depth), max_size=4),
                st.integers(0, 3).map(lambda n: [None] * n * 40000),  # huge, filled below
            )
        else:
            parts[field.name] = _value(field, depth)
    return st.fixed_dictionaries({}, optional=parts)


def _build(cls: Any, values: dict[str, Any]) -> Any:
    msg = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        try:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target = getattr(msg, name)
                sub = field.message_type.fields_by_name["value"].message_type
                for k, v in value.items():
                    if sub is not None:
                        target[k].CopyFrom(_build(getattr(pb, sub.name), v))
                    else:
                        target[k] = v
            elif field.is_repeated:
                if value and value[0] is None:  # a huge list of one default value
                    value = [_default(field)] * len(value)
                if field.message_type is not None:
                    getattr(msg, name).extend(
                        _build(getattr(pb, field.message_type.name), v) for v in value
                    )
                else:
                    getattr(msg, name).extend(value)
            elif field.message_type is not None:
                getattr(msg, name).CopyFrom(_build(getattr(pb, field.message_type.name), value))
            else:
                setattr(msg, name, value)
        except (ValueError, TypeError):
            continue  # a value this field's type cannot hold (e.g. a surrogate in a string)
    return msg


def _default(field: Any) -> Any:
    if field.message_type is not None:
        return {}
    if field.type == field.TYPE_STRING:
        return "x"
    if field.type == field.TYPE_BYTES:
        return b"x"
    if field.type == field.TYPE_BOOL:
        return True
    if field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return 1.0
    return 1


def _bad_utf8(msg_bytes: bytes, desc: Any) -> bytes:
    """``msg_bytes`` plus a string (or map key) field holding invalid UTF-8."""
    bad = b"\x03\xff\xfe\xc0"
    for field in desc.fields:
        if field.type == field.TYPE_STRING:
            return msg_bytes + _varint((field.number << 3) | 2) + bad
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = b"\x0a" + bad  # key (field 1) of the map entry
            return msg_bytes + _varint((field.number << 3) | 2) + bytes([len(entry)]) + entry
    for field in desc.fields:
        if field.message_type is not None:  # a nested message with a bad string inside
            inner = _bad_utf8(b"", field.message_type)
            return msg_bytes + _varint((field.number << 3) | 2) + _varint(len(inner)) + inner
    return msg_bytes + b"\xff"  # no strings anywhere: a truncated varint instead


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


_CHANGES = {"Submit", "Cancel", "Hold", "Release", "Requeue", "UpdateJob", "UpdateNode",
            "SignalStep"}
_MUTATIONS = ["none", "truncate", "flip", "append", "random", "bad_utf8", "empty"]


def payload_strategy() -> st.SearchStrategy[tuple[int, str, bytes]]:
    """(method index, mutation, request bytes)."""

    @st.composite
    def make(draw: Callable[..., Any]) -> tuple[int, str, bytes]:
        i = draw(st.integers(0, len(METHODS) - 1))
        cls = METHODS[i][2]
        if cls is pb.SubmitRequest and draw(st.booleans()):
            # a valid job with one or two hostile fields, so submissions get deep
            spec = pb.JobSpec(name="fz", script="#!/bin/sh\ntrue\n", submit_dir="/tmp",
                              hold=True, environment={"PATH": "/bin"})
            values = draw(_message(pb.JobSpec.DESCRIPTOR))
            keep = dict(sorted(values.items())[: draw(st.integers(1, 2))])
            spec.MergeFrom(_build(pb.JobSpec, keep))
            data = pb.SubmitRequest(spec=spec).SerializeToString()
        else:
            data = _build(cls, draw(_message(cls.DESCRIPTOR))).SerializeToString()
        how = draw(st.sampled_from(_MUTATIONS))
        if how == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif how == "flip" and data:
            pos = draw(st.integers(0, len(data) - 1))
            data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
        elif how == "append":
            data += draw(st.binary(min_size=1, max_size=16))
        elif how == "random":
            data = draw(st.binary(max_size=256))
        elif how == "bad_utf8":
            data = _bad_utf8(data, cls.DESCRIPTOR)
        elif how == "empty":
            data = b""
        return i, how, data

    return make()


class Fuzzer:
    """Sends payloads to a controller and keeps the score."""

    def __init__(self, address: str, socket_path: str, timeout: float = 5.0) -> None:
        self.channel = grpc.insecure_channel(address)
        self.socket_path = socket_path
        self.timeout = timeout
        self.tried: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.crashes: list[dict[str, Any]] = []

    def send(self, index: int, how: str, data: bytes) -> None:
        service, method, _, kind = METHODS[index]
        self._grpc(service, method, kind, how, data)
        if method in localrpc.METHODS:
            self._local(method, how, data)

    def _grpc(self, service: str, method: str, kind: str, how: str, data: bytes) -> None:
        path = f"/{service}/{method}"
        ident = lambda b: b  # noqa: E731 - raw bytes in, raw bytes out
        self.tried[f"grpc {method}"] += 1
        try:
            if kind == "unary_unary":
                self.channel.unary_unary(path, ident, ident)(
                    data, metadata=FUZZ_MD, timeout=self.timeout
                )
            elif kind == "unary_stream":
                for _ in self.channel.unary_stream(path, ident, ident)(
                    data, metadata=FUZZ_MD, timeout=self.timeout
                ):
                    pass
            else:
                for _ in self.channel.stream_stream(path, ident, ident)(
                    iter([data]), metadata=FUZZ_MD, timeout=self.timeout
                ):
                    pass
            self.codes["OK"] += 1
        except grpc.RpcError as exc:
            code = exc.code()
            self.codes[code.name] += 1
            if code in CRASH_CODES or code == grpc.StatusCode.UNAVAILABLE:
                self.crashes.append({"transport": "grpc", "method": method, "mutation": how,
                                     "code": code.name, "details": exc.details(),
                                     "bytes": data.hex()[:2000]})

    def _local(self, method: str, how: str, data: bytes) -> None:
        # The local socket takes the caller's uid from the kernel, and this process
        # is root (an operator): requests that could change jobs or nodes are sent
        # there only when they cannot be decoded, so the accepted jobs stay untouched.
        if method in _CHANGES:
            try:
                getattr(pb, localrpc.METHODS[method][0]).FromString(data)
                return
            except Exception:  # undecodable: safe to send
                pass
        self.tried[f"local {method}"] += 1
        try:
            sock = localrpc.connect_local(self.socket_path, self.timeout)
        except OSError as exc:
            self.crashes.append({"transport": "local", "method": method, "mutation": how,
                                 "code": "CONNECT", "details": str(exc), "bytes": ""})
            return
        try:
            localrpc.call_raw(sock, method, data)
            self.codes["OK"] += 1
        except localrpc.LocalError as exc:
            self.codes[exc.code] += 1
            if exc.code in ("UNKNOWN", "INTERNAL"):
                self.crashes.append({"transport": "local", "method": method, "mutation": how,
                                     "code": exc.code, "details": exc.message,
                                     "bytes": data.hex()[:2000]})
        except OSError as exc:
            self.crashes.append({"transport": "local", "method": method, "mutation": how,
                                 "code": "DROPPED", "details": str(exc),
                                 "bytes": data.hex()[:2000]})
        finally:
            sock.close()

    def run(self, examples: int, seed: int | None) -> None:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is None,
                  suppress_health_check=list(HealthCheck))
        @given(payload_strategy())
        def one(item: tuple[int, str, bytes]) -> None:
            self.send(*item)

        if seed is not None:
            one = hypothesis.seed(seed)(one)
        one()

    @property
    def total(self) -> int:
        return sum(self.tried.values())


def baseline(address: str, n: int = 5) -> list[pb.JobInfo]:
    """Submit ``n`` held jobs as root; returns them as the controller has them."""
    ch = grpc.insecure_channel(address)
    submit = ch.unary_unary("/gsched.v1.JobService/Submit",
                            pb.SubmitRequest.SerializeToString, pb.SubmitReply.FromString)
    ids = []
    for i in range(n):
        spec = pb.JobSpec(name=f"accepted{i}", script=f"#!/bin/sh\necho {i}\n", hold=True,
                          submit_dir="/tmp", environment={"PATH": "/bin"})
        ids.append(submit(pb.SubmitRequest(spec=spec), metadata=ROOT_MD, timeout=10).job_id)
    return jobs(address, ids)


def jobs(address: str, ids: list[int]) -> list[pb.JobInfo]:
    ch = grpc.insecure_channel(address)
    listing = ch.unary_unary("/gsched.v1.JobService/ListJobs",
                             pb.ListJobsRequest.SerializeToString, pb.ListJobsReply.FromString)
    reply = listing(pb.ListJobsRequest(filter=pb.JobFilter(job_ids=ids, all_states=True,
                                                           detail=True)),
                    metadata=ROOT_MD, timeout=10)
    return sorted(reply.jobs, key=lambda j: j.job_id)


def _essentials(j: pb.JobInfo) -> tuple[Any, ...]:
    return (j.job_id, j.name, j.user, j.uid, j.state, j.reason, j.spec.script, j.priority)


def end_checks(address: str, before: list[pb.JobInfo]) -> dict[str, Any]:
    """The controller answers, the accepted jobs are unchanged, a new job is accepted."""
    ch = grpc.insecure_channel(address)
    ping = ch.unary_unary("/gsched.v1.JobService/Ping",
                          pb.PingRequest.SerializeToString, pb.PingReply.FromString)
    alive = bool(ping(pb.PingRequest(), metadata=ROOT_MD, timeout=10).version)
    after = jobs(address, [j.job_id for j in before])
    intact = [_essentials(j) for j in after] == [_essentials(j) for j in before]
    listing = ch.unary_unary("/gsched.v1.JobService/ListJobs",
                             pb.ListJobsRequest.SerializeToString, pb.ListJobsReply.FromString)
    try:  # everything the fuzzer got accepted must still be listable, by anyone
        every = listing(pb.ListJobsRequest(filter=pb.JobFilter(all_states=True, detail=True)),
                        metadata=FUZZ_MD, timeout=30)
        listable: Any = len(every.jobs)
    except grpc.RpcError as exc:
        listable = f"{exc.code().name}: {exc.details()}"
    new = baseline(address, 1)
    return {"alive": alive, "accepted_jobs_intact": intact, "accepted_jobs": len(before),
            "all_jobs_listable": isinstance(listable, int), "jobs_listed": listable,
            "new_submission_ok": len(new) == 1 and new[0].state == "PENDING"}


def start(tmp: Path) -> tuple[dict[str, str], Path]:
    state = tmp / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GSCHED_"))}
    env["GSCHED_CONF"] = str(state / "gsched.toml")
    p = subprocess.run(
        # auth_type none (loopback, test-only): the fuzzer claims its identity in metadata
        [str(BIN / "gsched"), "up", "--state-dir", str(state), "--agents", "0", "--port", "0",
         "--auth-type", "none"],
        capture_output=True, text=True, timeout=90, env=env,
    )
    if p.returncode != 0:
        raise RuntimeError(p.stdout + p.stderr)
    return env, state


def stop(env: dict[str, str], state: Path) -> None:
    subprocess.run([str(BIN / "gsched"), "down", "--state-dir", str(state)],
                   capture_output=True, text=True, timeout=60, env=env)


def address_of(state: Path) -> str:
    from gsched.common import config

    return config.load(str(state / "gsched.toml")).controller.address


def controller_alive(state: Path) -> bool:
    try:
        pid = int((state / "controller.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=3000, help="hypothesis examples")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: derandomized)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gsched-fuzz-"))
    env, state = start(tmp)
    t0 = time.perf_counter()
    try:
        address = address_of(state)
        before = baseline(address)
        fz = Fuzzer(address, str(state / "controller.sock"))
        fz.run(args.examples, args.seed)
        elapsed = time.perf_counter() - t0
        died = not controller_alive(state)
        checks = end_checks(address, before) if not died else {"alive": False}
    finally:
        stop(env, state)
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "inputs_tried": fz.total,
        "crashes": len(fz.crashes) + (1 if died else 0),
        "controller_died": died,
        "seconds": round(elapsed, 1),
        "inputs_per_s": round(fz.total / elapsed, 1) if elapsed else None,
        "by_method": dict(sorted(fz.tried.items())),
        "status_codes": dict(sorted(fz.codes.items())),
        "end_checks": checks,
        "crash_samples": fz.crashes[:20],
    }
    print(f"inputs tried   {result['inputs_tried']}", file=sys.stderr)
    print(f"crashes        {result['crashes']}", file=sys.stderr)
    print(f"seconds        {result['seconds']}", file=sys.stderr)
    print(f"status codes   {result['status_codes']}", file=sys.stderr)
    print(f"end checks     {checks}", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    ok = result["crashes"] == 0 and all(
        checks.get(k) for k in ("alive", "accepted_jobs_intact", "all_jobs_listable",
                                "new_submission_ok")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
