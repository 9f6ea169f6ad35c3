"""Limits on what a request may carry, checked before anything else looks at it.

Pure (no I/O): :func:`check` walks a decoded request message through its
descriptor, so every field of every RPC is covered, including fields added
later, and raises :class:`~gsched.controller.errors.InvalidRequest` (gRPC
``INVALID_ARGUMENT``) with a message naming the field. The service layer calls it
once per call, for both transports (gRPC and the local socket), before the
request reaches the core; a request that fails changes nothing.

Rules, for every field unless a rule below names it:

* strings: at most :attr:`Limits.max_string` characters, no NUL character
  (C strings, paths and environment blocks would be cut at it);
* repeated fields: at most :attr:`Limits.max_items` items; maps at most
  :attr:`Limits.max_map_entries` entries;
* integers: not negative, at most :attr:`Limits.max_count` (int32) or
  :attr:`Limits.max_int64`; doubles finite and not negative;
* products: tasks, CPUs and GPUs in all at most :attr:`Limits.max_count`,
  ``--mem-per-cpu`` times the CPUs at most :attr:`Limits.max_mem_mb`;
* per-field rules: the batch script (:attr:`Limits.max_script_bytes`), the
  environment (entries, name and value sizes, total), argv, ``--nodelist`` /
  ``--exclude`` hostlists (counted, never expanded, at most
  :attr:`Limits.max_hosts` names), ``time_limit`` (-1 = UNLIMITED), ``nice``,
  signals (0-64), ``requeue`` (0-2), ``open_mode`` (truncate | append).

Malformed bytes (truncated messages, invalid UTF-8 in string fields) never get
this far: decoding fails and the transport answers ``INVALID_ARGUMENT``
(``controller/guard.py`` for gRPC, ``controller/local.py`` for the socket).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gsched.common.hostlist import HostlistError, count
from gsched.controller.errors import InvalidRequest

__all__ = ["DEFAULT", "Limits", "check"]

_MAX_ARG_STRLEN = 128 * 1024  # Linux: the longest single argument or environment string


@dataclass(frozen=True)
class Limits:
    """The limits (see the module docstring); ``DEFAULT`` is what the controller uses."""

    max_string: int = 4096  # PATH_MAX: names, paths, patterns, comments...
    max_items: int = 100_000  # repeated fields (job ids, names, ...)
    max_map_entries: int = 256  # --extra options, UpdateJob fields, ...
    max_count: int = 1_000_000  # int32 counts: nodes, tasks, CPUs, GPUs...
    max_int64: int = 1 << 53  # ids, MB, seconds: exact in a double, safe in SQL
    max_mem_mb: int = 1 << 31  # 2 PiB per node
    max_time_s: int = 100 * 366 * 86400  # a hundred years
    max_script_bytes: int = 4 * 1024 * 1024  # SLURM's default max_script_size
    max_env_entries: int = 4096
    max_env_name: int = 1024
    max_env_value: int = _MAX_ARG_STRLEN
    max_env_bytes: int = 2 * 1024 * 1024  # what execve can take (ARG_MAX, typical)
    max_argv: int = 4096
    max_arg: int = _MAX_ARG_STRLEN
    max_extra_value: int = 64 * 1024  # --dependency lists can be long
    max_hosts: int = 64 * 1024  # SLURM refuses larger ranges too


DEFAULT = Limits()

# Integer fields that may be negative, as (lowest, highest).
_SIGNED = {
    ("JobSpec", "time_limit"): (-1, None),
    ("JobSpec", "nice"): (-2147483645, 2147483645),  # SLURM's NICE_OFFSET bounds
}
_RANGES = {
    ("JobSpec", "requeue"): (0, 2),
    ("CancelRequest", "signal"): (0, 64),
    ("SignalStepRequest", "signal"): (0, 64),
}
_MEM = {("JobSpec", "mem_mb"), ("JobSpec", "mem_per_cpu_mb")}
_ENV = {("JobSpec", "environment"), ("StepRequest", "environment")}
_ARGV = {("JobSpec", "argv"), ("StepRequest", "argv")}
_HOSTLISTS = {("JobSpec", "nodelist"), ("JobSpec", "exclude")}
_CHOICES = {("JobSpec", "open_mode"): ("", "truncate", "append")}
_LONG_MAPS = {("JobSpec", "extra"), ("UpdateJobRequest", "fields")}


def check(request: Any, limits: Limits = DEFAULT) -> None:
    """Raise InvalidRequest if any field of ``request`` is out of bounds."""
    _message(request, limits, request.DESCRIPTOR.name)
    if request.DESCRIPTOR.name == "SubmitRequest":
        _totals(request.spec, limits)


def _totals(spec: Any, lim: Limits) -> None:
    """Products of counts must fit too: a job of 10^12 CPUs would break every listing."""
    nodes = max(spec.nodes_min, spec.nodes_max, 1)
    tasks = max(spec.ntasks, spec.ntasks_per_node * nodes, nodes)
    cpus = tasks * max(spec.cpus_per_task, 1)
    gpus = max(spec.gpus, spec.gpus_per_node * nodes, spec.gpus_per_task * tasks)
    for what, value, limit in (
        ("tasks", tasks, lim.max_count),
        ("CPUs", cpus, lim.max_count),
        ("GPUs", gpus, lim.max_count),
        ("MB of memory per node", spec.mem_per_cpu_mb * cpus, lim.max_mem_mb),
    ):
        if value > limit:
            raise InvalidRequest(
                f"Invalid request: the job asks for {value} {what} in all (limit {limit})"
            )


def _bad(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid request: {where} {what}")


_MAP, _REPEATED, _ARGS, _STRING, _OTHER = range(5)
_SPECIAL_STRINGS = {("JobSpec", "script"), *_CHOICES, *_HOSTLISTS}
_PLANS: dict[Any, tuple[int, tuple[str, str]]] = {}  # field descriptor -> (kind, key)


def _plan(field: Any) -> tuple[int, tuple[str, str]]:
    """How :func:`_message` checks ``field`` (worked out once per field)."""
    key = (field.containing_type.name, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        kind = _MAP
    elif field.is_repeated:
        kind = _ARGS if key in _ARGV else _REPEATED
    elif field.type == field.TYPE_STRING and key not in _SPECIAL_STRINGS:
        kind = _STRING
    else:
        kind = _OTHER
    _PLANS[field] = (kind, key)
    return kind, key


def _message(msg: Any, lim: Limits, path: str) -> None:
    max_string = lim.max_string
    for field, value in msg.ListFields():
        kind, key = _PLANS.get(field) or _plan(field)
        if kind == _STRING:
            # the common case, checked inline; the message is only made for a refusal
            if len(value) > max_string or "\0" in value:
                _string(key, f"{path}.{field.name}", value, lim)
            continue
        where = f"{path}.{field.name}"
        if kind == _MAP:
            _map(key, where, value, field.message_type.fields_by_name["value"], lim)
        elif kind == _ARGS:
            _argv(where, value, lim)
        elif kind == _REPEATED:
            if len(value) > lim.max_items:
                raise _bad(where, f"has {len(value)} items (limit {lim.max_items})")
            for i, item in enumerate(value):
                _scalar(key, f"{where}[{i}]", field, item, lim)
        else:
            _scalar(key, where, field, value, lim)


def _scalar(key: tuple[str, str], where: str, field: Any, value: Any, lim: Limits) -> None:
    if field.message_type is not None:
        _message(value, lim, where)
    elif field.type == field.TYPE_STRING:
        _string(key, where, value, lim)
    elif field.type == field.TYPE_BYTES:
        if len(value) > lim.max_script_bytes:
            raise _bad(where, f"is {len(value)} bytes long (limit {lim.max_script_bytes})")
    elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        if not math.isfinite(value) or value < 0:
            raise _bad(where, f"must be a finite number >= 0, not {value}")
    elif field.type != field.TYPE_BOOL:
        _integer(key, where, field, value, lim)


def _integer(key: tuple[str, str], where: str, field: Any, value: int, lim: Limits) -> None:
    wide = field.type in (field.TYPE_INT64, field.TYPE_UINT64, field.TYPE_SINT64)
    low, high = 0, lim.max_int64 if wide else lim.max_count
    if key in _MEM:
        high = lim.max_mem_mb
    if key == ("JobSpec", "time_limit"):
        high = lim.max_time_s
    if key in _SIGNED or key in _RANGES:
        lo, hi = _SIGNED.get(key) or _RANGES[key]
        low, high = lo, hi if hi is not None else high
    if value < low:
        raise _bad(where, f"is {value}; it must be at least {low}")
    if value > high:
        raise _bad(where, f"is {value}; the limit is {high}")


def _string(key: tuple[str, str], where: str, value: str, lim: Limits) -> None:
    if "\0" in value:
        raise _bad(where, "contains a NUL character")
    if key == ("JobSpec", "script"):
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > lim.max_script_bytes:
            raise InvalidRequest(
                f"Batch job submission failed: script is {size} bytes, over the "
                f"{lim.max_script_bytes}-byte limit"
            )
        return
    if len(value) > lim.max_string:
        raise _bad(where, f"is {len(value)} characters long (limit {lim.max_string})")
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        raise _bad(where, f"has an unknown value {value!r} (expected one of "
                   f"{', '.join(c for c in choices if c)})")
    if key in _HOSTLISTS and value:
        try:
            hosts = count(value)
        except HostlistError as exc:
            raise InvalidRequest(f"Invalid request: {exc}") from exc
        if hosts > lim.max_hosts:
            raise _bad(where, f"names {hosts} hosts (limit {lim.max_hosts})")


def _map(key: tuple[str, str], where: str, value: Any, vfield: Any, lim: Limits) -> None:
    if key in _ENV:
        _environment(where, value, lim)
        return
    if len(value) > lim.max_map_entries:
        raise _bad(where, f"has {len(value)} entries (limit {lim.max_map_entries})")
    longest = lim.max_extra_value if key in _LONG_MAPS else lim.max_string
    for k, v in value.items():
        if isinstance(k, str):
            _string(("", ""), f"{where} key", k, lim)
        if vfield.message_type is not None:
            _message(v, lim, f"{where}[{k!r}]")
        elif isinstance(v, str):
            if "\0" in v:
                raise _bad(f"{where}[{k[:64]!r}]", "contains a NUL character")
            if len(v) > longest:
                raise _bad(f"{where}[{k[:64]!r}]", f"is {len(v)} characters long (limit {longest})")
        elif isinstance(v, int) and not isinstance(v, bool) and v < 0:
            raise _bad(f"{where}[{k!r}]", f"is {v}; it must be at least 0")


def _environment(where: str, env: Any, lim: Limits) -> None:
    if len(env) > lim.max_env_entries:
        raise _bad(where, f"has {len(env)} variables (limit {lim.max_env_entries})")
    if not env:
        return
    # Fast path over the joined texts; the slow loop only finds the culprit.
    names = list(env)  # (faster than keys()/values()/items() on a protobuf map)
    values = [env[k] for k in names]
    joined_names, joined_values = "".join(names), "".join(values)
    total = len(joined_names) + len(joined_values) + 2 * len(names)
    if (
        "=" in joined_names
        or "\0" in joined_names
        or "\0" in joined_values
        or min(map(len, names)) == 0
        or max(map(len, names)) > lim.max_env_name
        or max(map(len, values)) > lim.max_env_value
    ):
        _environment_culprit(where, env, lim)
    if total > lim.max_env_bytes:
        raise _bad(where, f"is {total} bytes in all (limit {lim.max_env_bytes})")


def _environment_culprit(where: str, env: Any, lim: Limits) -> None:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise _bad(where, f"has an invalid variable name {name[:64]!r}")
        if len(name) > lim.max_env_name:
            raise _bad(where, f"has a variable name of {len(name)} characters "
                       f"(limit {lim.max_env_name})")
        if "\0" in value:
            raise _bad(f"{where}[{name[:64]!r}]", "contains a NUL character")
        if len(value) > lim.max_env_value:
            raise _bad(f"{where}[{name[:64]!r}]", f"is {len(value)} characters long "
                       f"(limit {lim.max_env_value})")


def _argv(where: str, argv: Any, lim: Limits) -> None:
    if len(argv) > lim.max_argv:
        raise _bad(where, f"has {len(argv)} arguments (limit {lim.max_argv})")
    for i, arg in enumerate(argv):
        if "\0" in arg:
            raise _bad(f"{where}[{i}]", "contains a NUL character")
        if len(arg) > lim.max_arg:
            raise _bad(f"{where}[{i}]", f"is {len(arg)} characters long (limit {lim.max_arg})")
