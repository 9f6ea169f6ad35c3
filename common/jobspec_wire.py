"""gsub's submit path without google.protobuf: a hand-written JobSpec wire encoder.

Importing the generated ``gsched_pb2`` (the protobuf runtime, descriptor pool and
all) costs ~18 ms, a third of a whole ``gsub``. On the controller's host gsub
talks to the controller over its Unix socket (:mod:`gsched.common.localrpc`),
which carries plain serialized messages, so it only has to *write* one message,
``SubmitRequest{JobSpec spec = 1}``, and *read* one, ``SubmitReply{int64 job_id
= 1}``. This module does both by hand:

* :class:`JobSpecLite` has JobSpec's attribute names and supports what
  :mod:`gsched.cli.directives` does to a spec (keyword construction, attribute
  assignment, ``argv``/``partitions`` as lists, ``environment``/``extra`` as
  dicts). :meth:`JobSpecLite.wire` gives the serialized ``SubmitRequest``;
  :meth:`JobSpecLite.to_proto` the real ``gsched_pb2.JobSpec`` (imported lazily)
  for gRPC and other callers.
* :func:`decode_submit_reply` reads ``SubmitReply``.
* :func:`connect_local` / :func:`call_raw` do one call on the local socket with
  bytes in and bytes out (the framing of :mod:`gsched.common.localrpc`).

The encoding is proto3's, byte for byte what ``SerializeToString(deterministic=True)``
writes: fields in number order, default values (0, "", False, empty) left out,
negative int32/int64 as 10-byte two's complement varints, map entries in upb's
deterministic key order (see :func:`_map_order`) with both key (1) and value (2)
always written (any order parses the same; a fixed one makes the bytes testable).
``tests/unit/test_jobspec_wire.py`` checks it against the protobuf runtime;
:data:`JOBSPEC_FIELDS` must follow ``protos/gsched.proto`` (the test checks that too).
"""

from __future__ import annotations

from gsched.common.localrpc import call_raw, connect_local  # re-exported for gsub

TYPE_CHECKING = False  # not importing typing keeps gsub's start fast
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "JOBSPEC_FIELDS",
    "JobSpecLite",
    "call_raw",
    "connect_local",
    "decode_submit_reply",
    "encode_jobspec",
    "encode_submit_request",
]

# Field kinds.
STRING, INT32, INT64, BOOL, REPEATED_STRING, MAP_STRING = (
    "string", "int32", "int64", "bool", "repeated string", "map<string,string>",
)  # fmt: skip

# gsched.v1.JobSpec: name -> (field number, kind). Keep in step with protos/gsched.proto.
JOBSPEC_FIELDS: dict[str, tuple[int, str]] = {
    "name": (1, STRING),
    "script": (2, STRING),
    "argv": (3, REPEATED_STRING),
    "workdir": (4, STRING),
    "environment": (5, MAP_STRING),
    "export_mode": (6, STRING),
    "output": (7, STRING),
    "error": (8, STRING),
    "input": (9, STRING),
    "open_mode": (10, STRING),
    "time_limit": (11, INT64),
    "nodes_min": (12, INT32),
    "nodes_max": (13, INT32),
    "ntasks": (14, INT32),
    "ntasks_per_node": (15, INT32),
    "cpus_per_task": (16, INT32),
    "mem_mb": (17, INT64),
    "mem_whole_node": (18, BOOL),
    "mem_per_cpu_mb": (19, INT64),
    "gpus": (20, INT32),
    "gpus_per_node": (21, INT32),
    "gpus_per_task": (22, INT32),
    "gpu_type": (23, STRING),
    "partitions": (24, REPEATED_STRING),
    "hold": (25, BOOL),
    "exclusive": (26, BOOL),
    "nodelist": (27, STRING),
    "exclude": (28, STRING),
    "requeue": (29, INT32),
    "comment": (30, STRING),
    "submit_host": (31, STRING),
    "submit_dir": (32, STRING),
    "nice": (33, INT32),
    "extra": (34, MAP_STRING),
    "wrapped": (35, BOOL),
    "shell": (36, STRING),
}
SUBMIT_REQUEST_SPEC = 1  # SubmitRequest.spec
SUBMIT_REPLY_JOB_ID = 1  # SubmitReply.job_id

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5  # wire types
_RANGES = {INT32: (-(2**31), 2**31 - 1), INT64: (-(2**63), 2**63 - 1)}


def _varint(n: int) -> bytes:
    """Base-128 varint of ``n`` (negative: its 64-bit two's complement, 10 bytes)."""
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _utf8(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")  # surrogates raise UnicodeEncodeError, as protobuf does
    raise TypeError(f"{value!r} has type {type(value).__name__}, but expected one of: str")


def _int(value: Any, kind: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    low, high = _RANGES[kind]
    if not low <= value <= high:
        raise ValueError(f"Value out of range: {value}")
    return int(value)


def _len_field(tag: bytes, data: bytes) -> bytes:
    return tag + _varint(len(data)) + data


# (name, kind, tag bytes) in field-number order: the serialization order.
_PLAN = tuple(
    (name, kind, _tag(number, _VARINT if kind in (INT32, INT64, BOOL) else _LEN))
    for name, (number, kind) in sorted(JOBSPEC_FIELDS.items(), key=lambda item: item[1][0])
)
_MAP_KEY, _MAP_VALUE = _tag(1, _LEN), _tag(2, _LEN)


def _map_order(entry: tuple[bytes, bytes]) -> bytes:
    """The protobuf runtime's (upb's) deterministic map order: keys compared as bytes
    over their common length, then the longer first ("ab" before "a"). 0xFF never
    occurs in UTF-8, so appending it makes plain bytes order do exactly that."""
    return entry[0] + b"\xff"


def encode_jobspec(fields: Mapping[str, Any] | JobSpecLite) -> bytes:
    """Serialize a JobSpec given as a :class:`JobSpecLite` or a name -> value mapping.

    Missing names take their default. Raises TypeError/ValueError/UnicodeEncodeError
    for values the protobuf runtime would refuse.
    """
    get = (
        (lambda n, d=None: getattr(fields, n, d)) if isinstance(fields, JobSpecLite)
        else fields.get
    )
    parts: list[bytes] = []
    for name, kind, tag in _PLAN:
        value = get(name, None)
        if value is None:
            continue
        if kind == STRING:
            if value:
                parts.append(_len_field(tag, _utf8(value)))
            elif not isinstance(value, str):
                _utf8(value)  # the TypeError
        elif kind == INT32 or kind == INT64:
            number = _int(value, kind)
            if number:
                parts.append(tag + _varint(number))
        elif kind == BOOL:
            if not isinstance(value, int):
                raise TypeError(
                    f"{value!r} has type {type(value).__name__}, but expected one of: int, bool"
                )
            if value:
                parts.append(tag + b"\x01")
        elif kind == REPEATED_STRING:
            if isinstance(value, str):
                raise TypeError(f"{name}: expected a list of str, got a str")
            parts.extend(_len_field(tag, _utf8(item)) for item in value)
        else:  # MAP_STRING
            entries = sorted(((_utf8(k), _utf8(v)) for k, v in value.items()), key=_map_order)
            for key, val in entries:
                entry = _len_field(_MAP_KEY, key) + _len_field(_MAP_VALUE, val)
                parts.append(_len_field(tag, entry))
    return b"".join(parts)


def encode_submit_request(spec: Mapping[str, Any] | JobSpecLite) -> bytes:
    """Serialize ``SubmitRequest{spec}`` (the spec is always present, even if empty)."""
    return _len_field(_tag(SUBMIT_REQUEST_SPEC, _LEN), encode_jobspec(spec))


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("malformed varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_submit_reply(data: bytes) -> int:
    """``SubmitReply.job_id`` from its serialized form (unknown fields skipped).

    Raises:
        ValueError: the bytes are not a valid message.
    """
    job_id, pos, end = 0, 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("malformed SubmitReply: field number 0")
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
            if number == SUBMIT_REPLY_JOB_ID:
                value &= (1 << 64) - 1
                job_id = value - (1 << 64) if value >= 1 << 63 else value
        elif wire_type == _I64:
            pos += 8
        elif wire_type == _I32:
            pos += 4
        elif wire_type == _LEN:
            length, pos = _read_varint(data, pos)
            pos += length
        else:
            raise ValueError(f"malformed SubmitReply: wire type {wire_type}")
        if pos > end:
            raise ValueError("malformed SubmitReply: truncated")
    return job_id


class JobSpecLite:
    """A ``gsched_pb2.JobSpec`` stand-in that needs no protobuf import.

    Same attribute names and defaults; repeated fields are lists and maps are
    dicts (so ``append``/``extend``/``update``/item assignment work as on the
    proto). Unlike the proto, values are checked when serialized, not when set.
    """

    __slots__ = tuple(JOBSPEC_FIELDS)

    def __init__(self, **fields: Any) -> None:
        for name, (_, kind) in JOBSPEC_FIELDS.items():
            if kind == REPEATED_STRING:
                value: Any = []
            elif kind == MAP_STRING:
                value = {}
            elif kind == STRING:
                value = ""
            elif kind == BOOL:
                value = False
            else:
                value = 0
            setattr(self, name, value)
        for name, value in fields.items():
            kind = JOBSPEC_FIELDS.get(name, (0, ""))[1]
            if not kind:
                raise ValueError(f'Protocol message JobSpec has no "{name}" field.')
            if kind == REPEATED_STRING:
                value = list(value)
            elif kind == MAP_STRING:
                value = dict(value)
            setattr(self, name, value)

    def fields(self) -> dict[str, Any]:
        """Every field, name -> value (lists and dicts copied)."""
        out: dict[str, Any] = {}
        for name in JOBSPEC_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[name] = value
        return out

    def spec_bytes(self) -> bytes:
        """The serialized ``JobSpec``."""
        return encode_jobspec(self)

    def wire(self) -> bytes:
        """The serialized ``SubmitRequest{spec: self}``, as the controller reads it."""
        return encode_submit_request(self)

    def to_proto(self) -> Any:
        """A real ``gsched_pb2.JobSpec`` with the same fields (imports protobuf)."""
        from gsched.protos import gsched_pb2

        return gsched_pb2.JobSpec(**self.fields())

    @classmethod
    def from_proto(cls, proto: Any) -> JobSpecLite:
        """The lite copy of a ``gsched_pb2.JobSpec``."""
        return cls(**{name: getattr(proto, name) for name in JOBSPEC_FIELDS})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JobSpecLite):
            return self.fields() == other.fields()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the proto

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.fields().items() if value)
        return f"JobSpecLite({shown})"


