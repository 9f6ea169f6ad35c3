"""The hand-written SubmitRequest encoder / SubmitReply decoder against protobuf itself."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gsched.cli.directives import parse_submission
from gsched.common import jobspec_wire as jw
from gsched.common.jobspec_wire import JOBSPEC_FIELDS, JobSpecLite
from gsched.common.localrpc import STATUS_CODES, LocalError, decode_request, encode_reply
from gsched.protos import gsched_pb2 as pb

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def proto_wire(fields: dict[str, Any], deterministic: bool = True) -> bytes:
    return pb.SubmitRequest(spec=pb.JobSpec(**fields)).SerializeToString(
        deterministic=deterministic
    )


def check(fields: dict[str, Any]) -> bytes:
    """JobSpecLite(**fields) serializes exactly as protobuf does, and parses back equal."""
    lite = JobSpecLite(**fields)
    wire = lite.wire()
    assert wire == proto_wire(fields)
    assert wire == jw.encode_submit_request(fields)  # the mapping form too
    maps = [fields.get("environment", {}), fields.get("extra", {})]
    if all(len(m) <= 1 for m in maps):  # map order is the only non-deterministic part
        assert wire == proto_wire(fields, deterministic=False)
    parsed = pb.SubmitRequest.FromString(wire)
    assert parsed.HasField("spec")
    assert parsed.spec == pb.JobSpec(**fields)
    assert lite.spec_bytes() == pb.JobSpec(**fields).SerializeToString(deterministic=True)
    assert lite.to_proto() == pb.JobSpec(**fields)
    assert JobSpecLite.from_proto(parsed.spec).wire() == wire
    return wire


# ---------------------------------------------------------------- the field table


def test_field_table_matches_the_proto() -> None:
    fd = pb.JobSpec.DESCRIPTOR.fields_by_name
    assert set(JOBSPEC_FIELDS) == set(fd)
    scalar = {
        jw.STRING: pb.JobSpec.DESCRIPTOR.fields_by_name["name"].type,
        jw.INT32: fd["nice"].type,
        jw.INT64: fd["time_limit"].type,
        jw.BOOL: fd["hold"].type,
    }
    from google.protobuf.descriptor import FieldDescriptor as F

    assert scalar == {
        jw.STRING: F.TYPE_STRING,
        jw.INT32: F.TYPE_INT32,
        jw.INT64: F.TYPE_INT64,
        jw.BOOL: F.TYPE_BOOL,
    }
    for name, (number, kind) in JOBSPEC_FIELDS.items():
        field = fd[name]
        assert field.number == number, name
        repeated = field.is_repeated
        if kind == jw.MAP_STRING:
            entry = field.message_type
            assert repeated and entry.GetOptions().map_entry, name
            assert entry.fields_by_name["key"].number == 1
            assert entry.fields_by_name["value"].number == 2
            assert entry.fields_by_name["key"].type == F.TYPE_STRING
            assert entry.fields_by_name["value"].type == F.TYPE_STRING
        elif kind == jw.REPEATED_STRING:
            assert repeated and field.type == F.TYPE_STRING, name
        else:
            assert not repeated and field.type == scalar[kind], name
    req = pb.SubmitRequest.DESCRIPTOR.fields_by_name
    # gsub leaves SubmitRequest.allocation (grun's) unset, and the reply decoder skips
    # SubmitReply.step_token (only set for allocations)
    assert list(req) == ["spec", "allocation"] and req["spec"].number == jw.SUBMIT_REQUEST_SPEC
    rep = pb.SubmitReply.DESCRIPTOR.fields_by_name
    assert list(rep) == ["job_id", "step_token"]
    assert rep["job_id"].number == jw.SUBMIT_REPLY_JOB_ID
    assert jw.decode_submit_reply(
        pb.SubmitReply(job_id=77, step_token="ab" * 32).SerializeToString()) == 77
    assert rep["job_id"].type == F.TYPE_INT64


def test_defaults_match_the_proto() -> None:
    lite, proto = JobSpecLite(), pb.JobSpec()
    for name in JOBSPEC_FIELDS:
        value = getattr(proto, name)
        if name in ("argv", "partitions"):
            value = list(value)
        elif name in ("environment", "extra"):
            value = dict(value)
        assert getattr(lite, name) == value, name
        assert type(getattr(lite, name)) is type(value), name
    assert check({}) == b"\x0a\x00"


# ---------------------------------------------------------------- hand-picked cases


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "job"},
        {"nice": -1},
        {"nice": INT32_MIN, "requeue": INT32_MAX, "nodes_min": 1, "nodes_max": 127},
        {"time_limit": -1, "mem_mb": INT64_MAX, "mem_per_cpu_mb": INT64_MIN},
        {"time_limit": 128, "ntasks": 16383, "cpus_per_task": 16384, "gpus": 2**21},
        {"hold": True, "exclusive": True, "mem_whole_node": True, "wrapped": True},
        {"hold": False, "name": "", "nice": 0, "argv": [], "environment": {}},
        {"name": "日本語 ✓ émoji 🚀", "comment": "tab\tnl\nnul\0", "shell": "/bin/sh"},
        {"argv": ["", "a", "", "ü"], "partitions": ["p1", "p2"]},
        {"environment": {"": ""}},
        {"environment": {"A": ""}, "extra": {"": "v"}},
        {"environment": {"Z": "1", "A": "2", "a": "3", "é": "4", "🚀": "5", "\uffff": "6"}},
        {"extra": {"qos": "high", "signal": "B:USR1@60", "exclusive": "user", "oversubscribe": ""}},
        {"script": "#!/bin/sh\n" + "x" * (4 * 1024 * 1024)},
        {"argv": [f"arg{i}" * 3 for i in range(10000)]},
        {"environment": {f"VAR_{i}": "v" * (i % 300) for i in range(2000)}},
        {"name": "x" * 127, "workdir": "y" * 128, "output": "z" * 16384},
        {"hold": 2},  # any true value is True, as on the proto
    ],
    ids=lambda f: ",".join(f)[:40] or "empty",
)
def test_hand_picked(fields: dict[str, Any]) -> None:
    check(fields)


def test_every_field_set() -> None:
    fields: dict[str, Any] = {}
    for i, (name, (_, kind)) in enumerate(JOBSPEC_FIELDS.items()):
        fields[name] = {
            jw.STRING: f"s{i}",
            jw.INT32: -i,
            jw.INT64: -(10**i),
            jw.BOOL: True,
            jw.REPEATED_STRING: [f"r{i}", ""],
            jw.MAP_STRING: {f"k{i}": f"v{i}", "": ""},
        }[kind]
    check(fields)


def test_operations_directives_uses() -> None:
    """Attribute assignment, list append/extend, dict update/item assignment/clear."""
    lite, proto = JobSpecLite(name="a", argv=["x"]), pb.JobSpec(name="a", argv=["x"])
    for spec in (lite, proto):
        spec.nodes_min, spec.nodes_max = (2, 4)
        spec.nodes_min = max(spec.nodes_min, 3)
        spec.argv.append("y")
        spec.argv.extend(["z"])
        spec.partitions.extend(["p"])
        spec.environment.update({"A": "1", "B": "2"})
        spec.environment["C"] = "3"
        spec.extra["qos"] = "q"
        spec.extra.clear()
        spec.extra.update({"account": "acct"})
        spec.gpu_type = "a100"
        spec.mem_whole_node = True
    assert lite.wire() == pb.SubmitRequest(spec=proto).SerializeToString(deterministic=True)
    assert lite.to_proto() == proto
    with pytest.raises(AttributeError):
        lite.no_such_field = 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no_such_field"):
        JobSpecLite(no_such_field=1)


def test_constructor_copies_containers() -> None:
    argv, env = ["a"], {"K": "V"}
    lite = JobSpecLite(argv=argv, environment=env, partitions=("p", "q"))
    argv.append("b")
    env["X"] = "Y"
    assert lite.argv == ["a"] and lite.environment == {"K": "V"}
    assert lite.partitions == ["p", "q"]
    assert lite.fields()["argv"] is not lite.argv


# ---------------------------------------------------------------- refused values


@pytest.mark.parametrize(
    "fields",
    [
        {"nice": INT32_MAX + 1},
        {"nice": INT32_MIN - 1},
        {"time_limit": INT64_MAX + 1},
        {"mem_mb": INT64_MIN - 1},
    ],
)
def test_out_of_range(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Value out of range"):
        pb.JobSpec(**fields)
    with pytest.raises(ValueError, match="Value out of range"):
        JobSpecLite(**fields).wire()


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "\udcff"},
        {"argv": ["ok", "\udc80"]},
        {"environment": {"BAD": "\udcff"}},
        {"extra": {"\udcff": "x"}},
    ],
)
def test_surrogates_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(UnicodeEncodeError):
        pb.JobSpec(**fields)
    with pytest.raises(UnicodeEncodeError):
        JobSpecLite(**fields).wire()


@pytest.mark.parametrize(
    "fields",
    [{"name": 5}, {"nice": "5"}, {"nice": 1.0}, {"hold": "yes"}, {"argv": [1]}],
)
def test_wrong_types_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        pb.JobSpec(**fields)
    with pytest.raises(TypeError):
        JobSpecLite(**fields).wire()


def test_repeated_field_assigned_a_string() -> None:
    assert JobSpecLite(argv="ab").argv == ["a", "b"]  # any iterable, as the proto takes it
    lite = JobSpecLite()
    lite.argv = "ab"  # the proto refuses the assignment; the lite, the encoding
    with pytest.raises(TypeError):
        lite.wire()


# ---------------------------------------------------------------- random specs


def _random_text(rng: random.Random) -> str:
    pools = [
        "abcxyz_-./=",
        "ABCDEFGHIJ0123456789",
        "äöüéñçß",
        "日本語中文한국어",
        "🚀🎉\U0010fffd",
        " \t\n\0\x7f\x80",
    ]
    n = rng.choice([0, 0, 1, 2, 5, 20, 130, 300])
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def _random_int(rng: random.Random, kind: str) -> int:
    low, high = (INT32_MIN, INT32_MAX) if kind == jw.INT32 else (INT64_MIN, INT64_MAX)
    return rng.choice(
        [
            0,
            0,
            1,
            -1,
            low,
            high,
            rng.randint(-200, 200),
            rng.randint(low, high),
            2 ** rng.randint(0, 30),
            -(2 ** rng.randint(0, 30)),
        ]
    )


def _random_fields(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, (_, kind) in JOBSPEC_FIELDS.items():
        if rng.random() < 0.3:
            continue  # left at its default
        if kind == jw.STRING:
            fields[name] = _random_text(rng)
        elif kind in (jw.INT32, jw.INT64):
            fields[name] = _random_int(rng, kind)
        elif kind == jw.BOOL:
            fields[name] = rng.random() < 0.5
        elif kind == jw.REPEATED_STRING:
            fields[name] = [_random_text(rng) for _ in range(rng.choice([0, 1, 3, 40]))]
        else:
            fields[name] = {
                _random_text(rng): _random_text(rng) for _ in range(rng.choice([0, 1, 2, 25]))
            }
    return fields


@pytest.mark.parametrize("seed", range(8))
def test_random_specs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        check(_random_fields(rng))


# ---------------------------------------------------------------- SubmitReply


@pytest.mark.parametrize(
    "job_id", [0, 1, 127, 128, 300, INT32_MAX, 2**32, INT64_MAX, -1, INT64_MIN, -12345]
)
def test_decode_submit_reply(job_id: int) -> None:
    data = pb.SubmitReply(job_id=job_id).SerializeToString()
    assert jw.decode_submit_reply(data) == job_id


def test_decode_skips_unknown_fields_and_last_wins() -> None:
    def varint(n: int) -> bytes:
        return jw._varint(n)

    data = (
        varint((7 << 3) | 0) + varint(99)  # unknown varint
        + varint((1 << 3) | 0) + varint(5)
        + varint((8 << 3) | 1) + b"\x01" * 8  # unknown fixed64
        + varint((9 << 3) | 2) + varint(3) + b"abc"  # unknown bytes
        + varint((10 << 3) | 5) + b"\x02" * 4  # unknown fixed32
        + varint((1 << 3) | 0) + varint(4242)
    )  # fmt: skip
    assert pb.SubmitReply.FromString(data).job_id == 4242
    assert jw.decode_submit_reply(data) == 4242
    assert jw.decode_submit_reply(b"") == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # truncated varint
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # 11-byte varint
        b"\x12\x05ab",  # truncated bytes field
        b"\x09\x01\x02",  # truncated fixed64
        b"\x0b",  # group start: not in proto3
        b"\x00\x01",  # field number 0
    ],
)
def test_decode_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        jw.decode_submit_reply(data)


# ---------------------------------------------------------------- the local socket call


def _serve_once(server: socket.socket, reply: bytes | None, seen: list[bytes]) -> None:
    conn, _ = server.accept()
    with conn:
        header = conn.recv(4, socket.MSG_WAITALL)
        (length,) = struct.unpack(">I", header)
        seen.append(conn.recv(length, socket.MSG_WAITALL))
        if reply is not None:
            conn.sendall(reply)


@pytest.fixture
def sockdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="jw", dir="/tmp")  # AF_UNIX paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _server(path: str, reply: bytes | None, seen: list[bytes]) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        with server:
            _serve_once(server, reply, seen)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_call_raw_ok(sockdir: str) -> None:
    path, seen = os.path.join(sockdir, "c.sock"), []
    body = pb.SubmitReply(job_id=77).SerializeToString()
    thread = _server(path, encode_reply(0, body), seen)
    payload = JobSpecLite(name="n", hold=True).wire()
    sock = jw.connect_local(path, 5)
    assert jw.call_raw(sock, "Submit", payload) == body
    sock.close()
    thread.join(5)
    assert decode_request(seen[0]) == ("Submit", payload)
    assert pb.SubmitRequest.FromString(decode_request(seen[0])[1]).spec.name == "n"


def test_call_raw_error_status(sockdir: str) -> None:
    path, seen = os.path.join(sockdir, "c.sock"), []
    msg = "Invalid partition name specified ✗"
    thread = _server(path, encode_reply(STATUS_CODES["INVALID_ARGUMENT"], msg.encode()), seen)
    with contextlib.closing(jw.connect_local(path, 5)) as sock, pytest.raises(LocalError) as info:
        jw.call_raw(sock, "Submit", b"\x0a\x00")
    thread.join(5)
    assert (info.value.code, info.value.message) == ("INVALID_ARGUMENT", msg)


def test_call_raw_closed(sockdir: str) -> None:
    path, seen = os.path.join(sockdir, "c.sock"), []
    thread = _server(path, None, seen)
    with contextlib.closing(jw.connect_local(path, 5)) as sock, pytest.raises(ConnectionError):
        jw.call_raw(sock, "Submit", b"\x0a\x00")
    thread.join(5)


def test_connect_local_missing(sockdir: str) -> None:
    with pytest.raises(OSError):
        jw.connect_local(os.path.join(sockdir, "nothing.sock"), 5)


# ---------------------------------------------------------------- with the parser and gsub


@pytest.mark.parametrize(
    "argv",
    [
        ["--wrap=true"],
        ["-H", "-o", "/dev/null", "--wrap=true"],
        ["-J", "nämé", "-p", "a,b", "-N", "2-4", "-n", "8", "-c", "2", "--mem=0", "--wrap=x"],
        ["--nice=-5", "-t", "UNLIMITED", "--gres=gpu:a100:2", "--qos=hi", "--wrap=x"],
        ["--export=NONE,A=1", "--exclusive=user", "-w", "n[1-3]", "--wrap=x"],
    ],
)
def test_parsed_submission_wire(tmp_path: Path, argv: list[str]) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/h", "SLURM_X": "1", "Ü": "ü", "EMPTY": ""}
    sub = parse_submission(argv, env, str(tmp_path), None, "gsub")
    assert isinstance(sub.lite, JobSpecLite)
    assert isinstance(sub.spec, pb.JobSpec)
    assert sub.spec is sub.spec  # built once
    expected = pb.SubmitRequest(spec=sub.spec).SerializeToString(deterministic=True)
    assert sub.lite.wire() == expected
    assert pb.SubmitRequest.FromString(sub.lite.wire()).spec == sub.spec


def _write_conf(directory: str, socket_path: str) -> str:
    conf = os.path.join(directory, "gsched.toml")
    with open(conf, "w") as fh:
        fh.write(
            f'state_dir = "{directory}"\n[controller]\naddress = "127.0.0.1:1"\n'
            f'socket = "{socket_path}"\n'
        )
    return conf


def _gsub(conf: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GSCHED_CONF": conf, "GSCHED_RPC_TIMEOUT": "10"}
    env.pop("GSCHED_TRANSPORT", None)
    code = "import sys; from gsched.cli.gsub import main; sys.argv[0] = 'gsub'; main()"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def _messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def test_gsub_local_path_without_protobuf(sockdir: str) -> None:
    path, seen = os.path.join(sockdir, "c.sock"), []
    body = pb.SubmitReply(job_id=4242).SerializeToString()
    thread = _server(path, encode_reply(0, body), seen)
    p = _gsub(_write_conf(sockdir, path), "-H", "-o", "/dev/null", "--wrap=true")
    thread.join(5)
    assert (p.returncode, p.stdout, _messages(p.stderr)) == (0, "Submitted batch job 4242\n", [])
    assert "google.protobuf" not in p.stderr and "gsched_pb2" not in p.stderr
    assert "grpc" not in p.stderr
    method, payload = decode_request(seen[0])
    spec = pb.SubmitRequest.FromString(payload).spec
    assert (method, spec.hold, spec.output, spec.wrapped, spec.name) == (
        "Submit",
        True,
        "/dev/null",
        True,
        "wrap",
    )


def test_gsub_local_path_parsable(sockdir: str) -> None:
    path = os.path.join(sockdir, "c.sock")
    thread = _server(path, encode_reply(0, pb.SubmitReply(job_id=9).SerializeToString()), [])
    p = _gsub(_write_conf(sockdir, path), "--parsable", "--wrap=true")
    thread.join(5)
    assert (p.returncode, p.stdout) == (0, "9\n")


def test_gsub_local_path_invalid_partition(sockdir: str) -> None:
    path = os.path.join(sockdir, "c.sock")
    reply = encode_reply(STATUS_CODES["INVALID_ARGUMENT"], b"Invalid partition name specified")
    thread = _server(path, reply, [])
    p = _gsub(_write_conf(sockdir, path), "-p", "nope,other", "--wrap=true")
    thread.join(5)
    assert p.returncode == 1 and p.stdout == ""
    assert _messages(p.stderr) == [
        "gsub: error: invalid partition specified: nope,other",
        "gsub: error: Batch job submission failed: Invalid partition name specified",
    ]


def test_gsub_local_path_other_error(sockdir: str) -> None:
    path = os.path.join(sockdir, "c.sock")
    reply = encode_reply(STATUS_CODES["PERMISSION_DENIED"], b"Access/permission denied")
    thread = _server(path, reply, [])
    p = _gsub(_write_conf(sockdir, path), "--wrap=true")
    thread.join(5)
    assert (p.returncode, _messages(p.stderr)) == (
        1,
        ["gsub: error: Batch job submission failed: Access/permission denied"],
    )


def test_gsub_local_path_unavailable(sockdir: str) -> None:
    path = os.path.join(sockdir, "c.sock")
    thread = _server(path, None, [])  # accepts, reads, hangs up
    p = _gsub(_write_conf(sockdir, path), "--wrap=true")
    thread.join(5)
    assert (p.returncode, _messages(p.stderr)) == (
        1,
        ["gsub: error: unable to contact the gsched controller at 127.0.0.1:1"],
    )


def test_gsub_without_socket_falls_back_to_grpc(sockdir: str) -> None:
    p = _gsub(_write_conf(sockdir, os.path.join(sockdir, "absent.sock")), "--wrap=true")
    assert (p.returncode, _messages(p.stderr)) == (
        1,
        ["gsub: error: unable to contact the gsched controller at 127.0.0.1:1"],
    )
    assert "grpc" in p.stderr  # it took the gRPC path (and imported protobuf for it)
