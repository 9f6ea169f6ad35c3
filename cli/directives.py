"""sbatch's option parser, used by ``gsub``: command line, ``#SBATCH`` lines, SBATCH_*.

The order of work copies sbatch 22.05 (``src/sbatch/opt.c``), so that the same
input gives the same job and the same error:

1. The command line is scanned like ``getopt_long("+...")``: long options with
   unique-prefix abbreviations, ``--opt=value`` / ``--opt value``, clustered
   short options (``-HN2``), ``--`` ends options, and the first non-option is the
   script; everything after it is the script's arguments. Syntax errors print
   exactly like glibc plus ``Try "gsub --help" for more information`` (exit 255).
   ``--help``, ``--usage``, ``--version``, ``-v``, ``-Q`` and ``--wrap`` act now.
2. The script is read (file, searched in the cwd then ``$PATH``; else stdin) and
   checked: empty, whitespace only, no ``#!``, NUL bytes, DOS line breaks.
3. Options are applied in increasing precedence: ``#SBATCH`` (or ``#GSUB``)
   directives, then SBATCH_* input environment variables, then the command line.
   Repeating an option: the last one wins.

Directives: lines starting with exactly ``#SBATCH``; scanning stops at the first
line that is not blank and not a comment. Words are split like sbatch's
``get_argument``: quotes group, backslash escapes, an unquoted ``#`` ends the
line. All directive words go through one getopt pass, so ``--nice 5`` (an
optional argument given separately) is an error, as in sbatch.

Where gsched differs from sbatch, on purpose:

* ``--test-only``, ``--wait``,
  ``--export-file``, ``--clusters``, ``--nodefile``, ``--bb``/``--bbf``,
  ``--container`` and ``#SBATCH hetjob`` are refused (``option --X is not
  supported yet``, exit 1): running the job without them would be wrong.
* Options that only tune scheduling or accounting (``--qos``, ``--account``,
  ``--signal``, ``--constraint``, ``--mail-type``, ...) are checked like sbatch
  checks them and kept raw in ``spec.extra[long name]`` (``""`` for flags).
* ``--time`` keeps seconds (sbatch rounds ``M:S`` up to whole minutes).
* A script must be UTF-8 (protobuf strings); ``--mem`` also takes fractions.

Exception tree::

    Exception
     +-- DirectiveError   bad input; lines to print and the exit status
     +-- DirectiveExit    --help/--usage/--version: text for stdout, exit 0
"""

from __future__ import annotations

import _socket
import os
import sys

from gsched.common import hostlist
from gsched.common.durations import DurationError, SizeError, parse_memory_mb, parse_time_limit
from gsched.common.jobspec_wire import JobSpecLite
from gsched.common.lexical import digits, leading_int

TYPE_CHECKING = False  # not importing typing keeps gsub's start fast
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import IO, Any

__all__ = ["DirectiveError", "DirectiveExit", "Submission", "parse_submission"]

NO, REQ, OPT = 0, 1, 2  # getopt's no_argument, required_argument, optional_argument
MAX_SCRIPT_SIZE = 4 * 1024 * 1024  # SLURM's default max_script_size
_WS = " \t\n\r\v\f"
_GPU_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _int_ok(value: str) -> bool:
    """``[ \t\n\r\v\f]*[+-]?[0-9]+\Z`` (SLURM's parse_int input)."""
    found = leading_int(value)
    return found is not None and found[1] == ""


def _gpu_type_ok(text: str) -> bool:
    """``[A-Za-z0-9][A-Za-z0-9_.-]*\Z``."""
    return bool(text) and text[0].isascii() and text[0].isalnum() and set(text) <= _GPU_TYPE_CHARS
_WRAP_HEADER = "#!/bin/sh\n# This script was created by sbatch --wrap.\n\n"
_GRES_ERROR = "Invalid generic resource (gres) specification"
_MAIL_TYPES = {
    "NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT",
    "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS",
}  # fmt: skip


class DirectiveError(Exception):
    """Invalid submission input.

    Attributes:
        message_lines: the message, one entry per output line.
        exit_code: the status sbatch exits with (255 for option syntax and most
            bad option values, 1 otherwise).
        raw: the lines are complete already (getopt style); otherwise each is
            printed as ``{prog}: error: {line}``.
    """

    def __init__(self, message_lines: list[str], exit_code: int = 1, *, raw: bool = False) -> None:
        super().__init__("\n".join(message_lines))
        self.message_lines = message_lines
        self.exit_code = exit_code
        self.raw = raw

    def render(self, prog: str) -> list[str]:
        """The lines to write on stderr, without newlines."""
        if self.raw:
            return list(self.message_lines)
        return [f"{prog}: error: {line}" for line in self.message_lines]


class DirectiveExit(Exception):
    """``--help``, ``--usage`` or ``--version``: print ``text`` on stdout and exit."""

    def __init__(self, text: str, exit_code: int = 0) -> None:
        super().__init__(text)
        self.text = text
        self.exit_code = exit_code


class Submission:
    """A parsed submission.

    (A plain class, not a dataclass: importing dataclasses pulls in ``inspect``,
    ~7 ms of every gsub call.)

    Attributes:
        lite: the job request, every field filled, as a
            :class:`~gsched.common.jobspec_wire.JobSpecLite` (no protobuf import;
            ``lite.wire()`` is the serialized ``SubmitRequest``).
        spec: the same request as a real ``gsched_pb2.JobSpec``, made from
            ``lite`` on first use (that imports protobuf, ~18 ms) and kept; change
            ``lite`` before, not after, reading it.
        parsable: ``--parsable``: print only the job id.
        verbose: how many ``-v``.
        quiet: ``-Q``: print nothing on success.
        script_path: the script file read, ``""`` for stdin or ``--wrap``.
    """

    __slots__ = ("_proto", "lite", "parsable", "quiet", "script_path", "verbose")

    def __init__(
        self,
        spec: JobSpecLite | Any,
        parsable: bool = False,
        verbose: int = 0,
        quiet: bool = False,
        script_path: str = "",
    ) -> None:
        if isinstance(spec, JobSpecLite):
            self.lite, self._proto = spec, None
        else:  # a gsched_pb2.JobSpec
            self.lite, self._proto = JobSpecLite.from_proto(spec), spec
        self.parsable = parsable
        self.verbose = verbose
        self.quiet = quiet
        self.script_path = script_path

    @property
    def spec(self) -> Any:
        """The request as a ``gsched_pb2.JobSpec`` (built from ``lite`` once)."""
        if self._proto is None:
            self._proto = self.lite.to_proto()
        return self._proto

    def __repr__(self) -> str:
        return f"Submission(parsable={self.parsable}, script_path={self.script_path!r})"


def _fail(message: str, code: int = 255) -> DirectiveError:
    return DirectiveError([message], code)


class _State:
    """Option values while the three sources are applied."""

    def __init__(self, cwd: str, prog: str) -> None:
        self.cwd = cwd
        self.prog = prog
        self.by_env = False  # is the option being applied from an SBATCH_* variable?
        self.name: str | None = None
        self.output = ""
        self.error = ""
        self.input = ""
        self.open_mode = ""
        self.time_limit: int | None = None
        self.nodes: tuple[int, int] | None = None
        self.ntasks = 0
        self.ntasks_per_node = 0
        self.cpus_per_task = 0
        self.mem: int | None = None
        self.mem_per_cpu: int | None = None
        self.gres: tuple[str, int] | None = None
        self.gpus: tuple[str, int] | None = None
        self.gpus_per_node: tuple[str, int] | None = None
        self.gpus_per_task: tuple[str, int] | None = None
        self.partitions: list[str] = []
        self.chdir = ""
        self.export: str | None = None
        self.hold = False
        self.parsable = False
        self.shared = ""  # exclusive | oversubscribe | user | mcs
        self.nodelist = ""
        self.exclude = ""
        self.requeue = 0
        self.comment = ""
        self.nice = 0
        self.extra: dict[str, str] = {}
        self.verbose = 0
        self.quiet = 0
        self.wrap: str | None = None
        self.env_set: dict[str, bool] = {}  # memory option -> set by an env var?


if TYPE_CHECKING:
    Setter = Callable[[_State, "str | None"], None]


def _is_num(text: str) -> bool:
    return digits(text)


class _Opt:
    __slots__ = ("early", "has_arg", "name", "reset", "setter", "short")

    def __init__(
        self,
        name: str,
        short: str,
        has_arg: int,
        setter: Setter,
        reset: Callable[[_State], None] | None = None,
        early: bool = False,  # acted on during the first command-line pass only
    ) -> None:
        self.name = name
        self.short = short
        self.has_arg = has_arg
        self.setter = setter
        self.reset = reset
        self.early = early


# ---------------------------------------------------------------- value parsers


def _parse_int(option: str, value: str, positive: bool) -> int:
    """SLURM's ``parse_int``: its errors exit with status 1."""
    if not _int_ok(value) or int(value) < 0 or (positive and int(value) == 0):
        raise _fail(f'Invalid numeric value "{value}" for {option}.', 1)
    number = int(value)
    if number > 2**31 - 1:
        raise _fail(f"Numeric argument ({number}) too large for {option}.", 1)
    return number


def _str_to_nodes(text: str) -> tuple[int, str]:
    found = leading_int(text)
    if found is None:
        return 0, text
    number, rest = int(found[0]), found[1]
    if rest[:1] in ("k", "K"):
        number, rest = number * 1024, rest[1:]
    return number, rest


def _node_count(value: str) -> tuple[int, int]:
    """SLURM's ``verify_node_count``: ``N`` or ``MIN-MAX`` (``MAX`` 0: no maximum)."""
    if "-" in value:
        min_text, max_text = value.split("-", 1)
        low, rest = _str_to_nodes(min_text)
        if rest.strip(_WS):
            raise _fail(f'"{min_text}" is not a valid node count')
        low = low or 1
        high, rest = _str_to_nodes(max_text)
        if rest.strip(_WS):
            raise _fail(f'"{max_text}" is not a valid node count')
    else:
        low, rest = _str_to_nodes(value)
        if rest.strip(_WS) or low == 0:
            raise _fail(f'"{value}" is not a valid node count')
        high = low
    if high != 0 and high < low:
        raise _fail(f"Maximum node count {high} is less than minimum node count {low}")
    return low, high


def _gpu_item(parts: list[str]) -> tuple[str, int]:
    """``[TYPE:]N`` / ``TYPE`` parts after the resource name."""
    if not parts:
        return "", 1
    if len(parts) == 1 and _is_num(parts[0]):
        return "", int(parts[0])
    if len(parts) == 1:
        parts = [parts[0], "1"]
    if len(parts) != 2 or not _is_num(parts[1]):
        raise _fail(_GRES_ERROR, 1)
    gpu_type = parts[0]
    if not _gpu_type_ok(gpu_type) or _is_num(gpu_type):
        raise _fail(_GRES_ERROR, 1)
    return gpu_type, int(parts[1])


def _parse_gres(value: str) -> tuple[str, int] | None:
    """``--gres=gpu[:TYPE][:N][,...]``; only GPUs exist here. ``none`` clears it."""
    if value.lower() == "none":
        return None
    found: tuple[str, int] | None = None
    for item in value.split(","):
        for prefix in ("gres:", "gres/"):
            if item.startswith(prefix):
                item = item[len(prefix) :]
        parts = item.split(":")
        if parts[0] != "gpu" or found is not None:
            raise _fail(_GRES_ERROR, 1)
        found = _gpu_item(parts[1:])
    return found


def _parse_gpus(value: str) -> tuple[str, int]:
    """``--gpus``/``--gpus-per-node``/``--gpus-per-task``: ``[TYPE:]N``."""
    parts = value.split(":")
    if len(parts) > 2:
        raise _fail(_GRES_ERROR, 1)
    return _gpu_item(parts)


def _exit_codes_ok(value: str) -> bool:
    from gsched.common.exitcodes import parse_exit_codes

    try:
        return bool(parse_exit_codes(value))
    except ValueError:
        return False


def _signal_ok(value: str) -> bool:
    """SLURM's ``get_signal_opts``: ``[{R|B|RB|BR}:]SIG[@TIME]``."""
    for prefix in ("RB:", "BR:", "B:", "R:"):
        if value.upper().startswith(prefix):
            value = value[len(prefix) :]
            break
    sig, at, when = value.partition("@")
    import signal  # only --signal needs it: not imported on every gsub call

    if _is_num(sig):
        number = int(sig)
    else:
        name = sig.upper()
        member = signal.Signals.__members__.get(name if name.startswith("SIG") else "SIG" + name)
        number = int(member) if member is not None else 0
    if not 1 <= number <= 0xFFFF:
        return False
    return not at or (_is_num(when) and int(when) <= 0xFFFF)


def _read_hostfile(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [line.split("#", 1)[0].strip() for line in fh]
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"Unable to read node list file {path}: {exc}", 1) from exc
    return ",".join(line for line in lines if line)


def _hostlist(option: str, value: str, cwd: str, files: bool) -> str:
    if files and "/" in value:
        value = _read_hostfile(os.path.join(cwd, value))
    try:
        names = hostlist.expand(value)
    except hostlist.HostlistError as exc:
        raise _fail(f"Invalid {option} specification: {exc}", 1) from exc
    # sbatch sends the list sorted and without duplicates (hostlist_uniq)
    return hostlist.compress(names, sort=True)


# ---------------------------------------------------------------- setters


def _attr(attr: str, convert: Callable[[str], object] = str) -> Setter:
    def setter(st: _State, value: str | None) -> None:
        setattr(st, attr, convert(value or ""))

    return setter


def _flag(attr: str, on: object = True) -> Setter:
    def setter(st: _State, value: str | None) -> None:
        setattr(st, attr, on)

    return setter


def _unset(attr: str, off: object) -> Callable[[_State], None]:
    return lambda st: setattr(st, attr, off)


def _extra(name: str, check: Callable[[str], object] | None = None, default: str = "") -> Setter:
    """Store the raw value in ``spec.extra[name]`` after an optional check."""

    def setter(st: _State, value: str | None) -> None:
        if value is not None and check is not None:
            check(value)
        st.extra[name] = default if value is None else value

    return setter


def _unextra(name: str) -> Callable[[_State], None]:
    def reset(st: _State) -> None:
        st.extra.pop(name, None)

    return reset


def _check(ok: Callable[[str], bool], message: str, code: int = 255) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not ok(value):
            raise _fail(message, code)

    return check


def _int_check(option: str, positive: bool = True) -> Callable[[str], None]:
    def check(value: str) -> None:
        _parse_int(option, value, positive)

    return check


def _size_check(option: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        try:
            parse_memory_mb(value)
        except SizeError as exc:
            raise _fail(f"Invalid {option} specification") from exc

    return check


def _time_check(option: str) -> Callable[[str], int]:
    def check(value: str) -> int:
        try:
            return parse_time_limit(value)
        except DurationError as exc:
            raise _fail(f"Invalid {option} specification") from exc

    return check


def _set_time(st: _State, value: str | None) -> None:
    seconds = _time_check("--time")(value or "")
    st.time_limit = -1 if seconds == 0 else seconds  # man sbatch: zero means no limit


def _set_nodes(st: _State, value: str | None) -> None:
    st.nodes = _node_count(value or "")


def _set_mem(option: str, attr: str) -> Setter:
    def setter(st: _State, value: str | None) -> None:
        _size_check(option)(value or "")
        setattr(st, attr, parse_memory_mb(value or ""))
        st.env_set[option] = st.by_env

    return setter


def _set_mem_per_gpu(st: _State, value: str | None) -> None:
    _size_check("--mem-per-gpu")(value or "")
    st.extra["mem-per-gpu"] = value or ""
    st.env_set["--mem-per-gpu"] = st.by_env


def _reset_mem(option: str) -> Callable[[_State], None]:
    def reset(st: _State) -> None:
        st.env_set.pop(option, None)
        if option == "--mem":
            st.mem = None
        elif option == "--mem-per-cpu":
            st.mem_per_cpu = None
        else:
            st.extra.pop("mem-per-gpu", None)

    return reset


def _set_gres(st: _State, value: str | None) -> None:
    st.gres = _parse_gres(value or "")


def _gpus(attr: str) -> Setter:
    return lambda st, value: setattr(st, attr, _parse_gpus(value or ""))


def _set_open_mode(st: _State, value: str | None) -> None:
    first = (value or "")[:1].lower()
    if first not in ("a", "t"):
        raise _fail("Invalid --open-mode specification")
    st.open_mode = "append" if first == "a" else "truncate"


def _io_path(attr: str) -> Setter:
    def setter(st: _State, value: str | None) -> None:
        value = value or ""
        setattr(st, attr, "/dev/null" if value.lower() == "none" else value)

    return setter


def _set_exclusive(st: _State, value: str | None) -> None:
    mode = "exclusive" if value is None else value.lower()
    if mode not in ("exclusive", "oversubscribe", "user", "mcs"):
        raise _fail("Invalid --exclusive specification")
    st.shared = mode


def _set_nice(st: _State, value: str | None) -> None:
    if value is None:
        st.nice = 100
        return
    if not _int_ok(value):
        raise _fail("Invalid --nice specification")
    if abs(int(value)) > 2**31 - 3:
        raise _fail(f"Invalid --nice value, out of range (+/- {2**31 - 3})")
    st.nice = int(value)


def _set_chdir(st: _State, value: str | None) -> None:
    st.chdir = os.path.normpath(os.path.join(st.cwd, value or ""))


def _set_partition(st: _State, value: str | None) -> None:
    st.partitions = [p for p in (value or "").split(",") if p]


def _set_hosts(attr: str, option: str, files: bool) -> Setter:
    return lambda st, value: setattr(st, attr, _hostlist(option, value or "", st.cwd, files))


def _set_verbose(st: _State, value: str | None) -> None:
    # On the command line -v counts; SBATCH_DEBUG gives the level as a number.
    if value is None:
        st.verbose += 1
    else:
        st.verbose = _parse_int("--verbose", value, False) if value else 0


def _set_no_kill(st: _State, value: str | None) -> None:
    if value is None or value.lower() == "set":
        st.extra["no-kill"] = ""
    elif value.lower() in ("off", "no"):
        st.extra.pop("no-kill", None)
    else:
        raise _fail("Invalid --no-kill specification")


def _set_begin(st: _State, value: str | None) -> None:
    """``--begin``: resolved here, against the submitting host's clock, as sbatch does.

    Kept in ``spec.extra["begin"]`` as unix seconds.
    """
    import time

    from gsched.common.begin import BeginError, parse_begin

    try:
        when = parse_begin(value or "", time.time())
    except BeginError as exc:
        raise _fail("Invalid time specification " + (value or ""), 1) from exc
    st.extra["begin"] = str(int(when))


def _user_env_ok(value: str) -> bool:
    """``[0-9]*[sSlL]?\Z``."""
    body = value[:-1] if value[-1:] in ("s", "S", "l", "L") else value
    return body == "" or digits(body)


def _check_array(value: str) -> None:
    """sbatch refuses what is not digits, ``-``, ``,``, ``:`` and one ``%N``."""
    body, _, limit = value.partition("%")
    if not body or not set(body) <= set("0123456789,:-[]") or (limit and not digits(limit)):
        raise _fail("Invalid job array specification", 1)


def _check_priority(value: str) -> None:
    if value.upper() == "TOP":
        return
    if not _int_ok(value):
        raise _fail("Invalid --priority specification")
    if int(value) < 0:
        raise _fail("Priority must be >= 0")


def _check_switches(value: str) -> None:
    count, at, wait = value.partition("@")
    _parse_int("--switches", count, True)
    if at:
        _time_check("--switches")(wait)


def _help(st: _State, value: str | None) -> None:
    raise DirectiveExit(_HELP.replace("{prog}", st.prog))


def _usage(st: _State, value: str | None) -> None:
    raise DirectiveExit(_USAGE.replace("{prog}", st.prog))


def _version(st: _State, value: str | None) -> None:
    from gsched import __version__

    raise DirectiveExit(f"gsched {__version__}\n")


def _unsupported(name: str) -> Setter:
    def setter(st: _State, value: str | None) -> None:
        raise _fail(f"option --{name} is not supported yet", 1)

    return setter


def _x(
    name: str, short: str = "", has_arg: int = REQ, check: Callable[[str], object] | None = None
) -> _Opt:
    """An option accepted now and implemented later: kept in ``spec.extra``."""
    return _Opt(name, short, has_arg, _extra(name, check), _unextra(name))


_OPTIONS: list[_Opt] = [
    _x("account", "A"),
    _x("acctg-freq"),
    _Opt("array", "a", REQ, _extra("array", _check_array), _unextra("array")),
    _x("batch"),
    _Opt("bb", "", REQ, _unsupported("bb")),
    _Opt("bbf", "", REQ, _unsupported("bbf")),
    _Opt("begin", "b", REQ, _set_begin, _unextra("begin")),
    _Opt("chdir", "D", REQ, _set_chdir),
    _x("cluster-constraint"),
    _Opt("clusters", "M", REQ, _unsupported("clusters")),
    _Opt("comment", "", REQ, _attr("comment")),
    _x("constraint", "C"),
    _Opt("container", "", REQ, _unsupported("container")),
    _x("contiguous", has_arg=NO),
    _x("core-spec", "S", check=_int_check("--core-spec", False)),
    _x("cores-per-socket", check=_int_check("--cores-per-socket")),
    _x("cpu-bind"),
    _x("cpu-freq"),
    _x("cpus-per-gpu", check=_int_check("--cpus-per-gpu")),
    _Opt("cpus-per-task", "c", REQ, _attr("cpus_per_task", lambda v: _parse_int("--cpus-per-task", v, True))),
    _x("deadline"),
    _x("delay-boot", check=_time_check("--delay-boot")),
    _Opt("dependency", "d", REQ, _extra("dependency"), _unextra("dependency")),
    _x("distribution", "m"),
    _Opt("error", "e", REQ, _io_path("error")),
    _Opt("exclude", "x", REQ, _set_hosts("exclude", "--exclude", True)),
    _Opt("exclusive", "", OPT, _set_exclusive, _unset("shared", "")),
    _Opt("export", "", REQ, _attr("export")),
    _Opt("export-file", "", REQ, _unsupported("export-file")),
    _x("extra-node-info", "B"),
    _Opt("get-user-env", "", OPT, _extra("get-user-env", _check(_user_env_ok, "Invalid --get-user-env specification"))),
    _x("gid"),
    _x("gpu-bind"),
    _x("gpu-freq"),
    _Opt("gpus", "G", REQ, _gpus("gpus")),
    _Opt("gpus-per-node", "", REQ, _gpus("gpus_per_node")),
    _Opt("gpus-per-task", "", REQ, _gpus("gpus_per_task")),
    _Opt("gres", "", REQ, _set_gres),
    _x("gres-flags", check=_check(lambda v: v.lower() in ("disable-binding", "enforce-binding"), "Invalid --gres-flags specification")),
    _Opt("help", "h", NO, _help, early=True),
    _x("hint"),
    _Opt("hold", "H", NO, _flag("hold"), _unset("hold", False)),
    _x("ignore-pbs", has_arg=NO),
    _Opt("input", "i", REQ, _io_path("input")),
    _Opt("job-name", "J", REQ, _attr("name")),
    _x("kill-on-invalid-dep", check=_check(lambda v: v.lower() in ("yes", "no"), "Invalid --kill-on-invalid-dep specification")),
    _x("licenses", "L"),
    _x("mail-type", check=_check(lambda v: all(t.upper() in _MAIL_TYPES for t in v.split(",")), "Invalid --mail-type specification")),
    _x("mail-user"),
    _x("max-requeue", check=_int_check("--max-requeue", False)),
    _x("mcs-label"),
    _Opt("mem", "", REQ, _set_mem("--mem", "mem"), _reset_mem("--mem")),
    _x("mem-bind"),
    _Opt("mem-per-cpu", "", REQ, _set_mem("--mem-per-cpu", "mem_per_cpu"), _reset_mem("--mem-per-cpu")),
    _Opt("mem-per-gpu", "", REQ, _set_mem_per_gpu, _reset_mem("--mem-per-gpu")),
    _x("mincpus", check=_int_check("--mincpus")),
    _x("network"),
    _Opt("nice", "", OPT, _set_nice),
    _Opt("no-kill", "k", OPT, _set_no_kill, _unextra("no-kill")),
    _Opt("no-requeue", "", NO, _flag("requeue", 2), _unset("requeue", 0)),
    _Opt("nodefile", "F", REQ, _unsupported("nodefile")),
    _Opt("nodelist", "w", REQ, _set_hosts("nodelist", "--nodelist", True)),
    _Opt("nodes", "N", REQ, _set_nodes),
    _Opt("ntasks", "n", REQ, _attr("ntasks", lambda v: _parse_int("--ntasks", v, True))),
    _x("ntasks-per-core", check=_int_check("--ntasks-per-core")),
    _x("ntasks-per-gpu", check=_int_check("--ntasks-per-gpu")),
    _Opt("ntasks-per-node", "", REQ, _attr("ntasks_per_node", lambda v: _parse_int("--ntasks-per-node", v, True))),
    _x("ntasks-per-socket", check=_int_check("--ntasks-per-socket")),
    _Opt("open-mode", "", REQ, _set_open_mode),
    _Opt("output", "o", REQ, _io_path("output")),
    _x("overcommit", "O", NO),
    _Opt("oversubscribe", "s", NO, _flag("shared", "oversubscribe"), _unset("shared", "")),
    _Opt("parsable", "", NO, _flag("parsable"), _unset("parsable", False)),
    _Opt("partition", "p", REQ, _set_partition),
    _x("power"),
    _x("priority", check=_check_priority),
    _x("profile"),
    _Opt("propagate", "", OPT, _extra("propagate", default="ALL")),
    _x("qos", "q"),
    _Opt("quiet", "Q", NO, lambda st, v: setattr(st, "quiet", st.quiet + 1), early=True),
    _x("reboot", has_arg=NO),
    _Opt("requeue", "", NO, _flag("requeue", 1), _unset("requeue", 0)),
    _x("requeue-exit", check=_check(_exit_codes_ok, "Invalid --requeue-exit specification")),
    _x("reservation"),
    _x("signal", check=_check(_signal_ok, "Invalid --signal specification")),
    _x("sockets-per-node", check=_int_check("--sockets-per-node")),
    _x("spread-job", has_arg=NO),
    _x("switches", check=_check_switches),
    _Opt("test-only", "", NO, _unsupported("test-only")),
    _x("thread-spec", check=_int_check("--thread-spec")),
    _x("threads-per-core", check=_int_check("--threads-per-core")),
    _Opt("time", "t", REQ, _set_time),
    _x("time-min", check=_time_check("--time-min")),
    _x("tmp", check=_size_check("--tmp")),
    _x("uid"),
    _Opt("usage", "", NO, _usage, early=True),
    _x("use-min-nodes", has_arg=NO),
    _Opt("verbose", "v", NO, _set_verbose, early=True),
    _Opt("version", "V", NO, _version, early=True),
    _Opt("wait", "W", NO, _unsupported("wait")),
    _x("wait-all-nodes", check=_check(lambda v: _parse_int("--wait-all-nodes", v, False) <= 1, "Invalid --wait-all-nodes specification")),
    _x("wckey"),
    _Opt("wrap", "", REQ, lambda st, v: setattr(st, "wrap", v), early=True),
]  # fmt: skip
_BY_NAME = {opt.name: opt for opt in _OPTIONS}
# Long names in table order, aliases included (they count as the same option).
_LONG: list[tuple[str, _Opt]] = sorted(
    [(o.name, o) for o in _OPTIONS]
    + [
        ("cluster", _BY_NAME["clusters"]),
        ("cpu_bind", _BY_NAME["cpu-bind"]),
        ("tasks-per-node", _BY_NAME["ntasks-per-node"]),
    ],
    key=lambda item: item[0],
)
_SHORT = {o.short: o for o in _OPTIONS if o.short}

# Input environment variables, in the order sbatch applies them (later wins).
_ENV_VARS = [
    ("SBATCH_ACCOUNT", "account"), ("SBATCH_ARRAY_INX", "array"), ("SBATCH_ACCTG_FREQ", "acctg-freq"),
    ("SBATCH_BATCH", "batch"), ("SBATCH_CLUSTER_CONSTRAINT", "cluster-constraint"),
    ("SBATCH_CONSTRAINT", "constraint"), ("SBATCH_CONTAINER", "container"), ("SBATCH_CORE_SPEC", "core-spec"),
    ("SBATCH_CPU_FREQ_REQ", "cpu-freq"), ("SBATCH_CPUS_PER_GPU", "cpus-per-gpu"), ("SBATCH_DEBUG", "verbose"),
    ("SBATCH_DELAY_BOOT", "delay-boot"), ("SBATCH_DISTRIBUTION", "distribution"), ("SBATCH_ERROR", "error"),
    ("SBATCH_EXCLUSIVE", "exclusive"), ("SBATCH_EXPORT", "export"), ("SBATCH_GET_USER_ENV", "get-user-env"),
    ("SBATCH_GRES", "gres"), ("SBATCH_GRES_FLAGS", "gres-flags"), ("SBATCH_GPUS", "gpus"),
    ("SBATCH_GPU_BIND", "gpu-bind"), ("SBATCH_GPU_FREQ", "gpu-freq"), ("SBATCH_GPUS_PER_NODE", "gpus-per-node"),
    ("SBATCH_GPUS_PER_TASK", "gpus-per-task"), ("SLURM_HINT", "hint"), ("SBATCH_HINT", "hint"),
    ("SBATCH_INPUT", "input"), ("SBATCH_JOB_NAME", "job-name"), ("SBATCH_MEM_BIND", "mem-bind"),
    ("SBATCH_MEM_PER_CPU", "mem-per-cpu"), ("SBATCH_MEM_PER_GPU", "mem-per-gpu"), ("SBATCH_MEM_PER_NODE", "mem"),
    ("SBATCH_NETWORK", "network"), ("SBATCH_NO_KILL", "no-kill"), ("SBATCH_NO_REQUEUE", "no-requeue"),
    ("SBATCH_OPEN_MODE", "open-mode"), ("SBATCH_OUTPUT", "output"), ("SBATCH_OVERCOMMIT", "overcommit"),
    ("SBATCH_PARTITION", "partition"), ("SBATCH_POWER", "power"), ("SBATCH_PROFILE", "profile"),
    ("SBATCH_QOS", "qos"), ("SBATCH_REQ_SWITCH", "switches"), ("SBATCH_REQUEUE", "requeue"),
    ("SBATCH_RESERVATION", "reservation"), ("SBATCH_SIGNAL", "signal"), ("SBATCH_SPREAD_JOB", "spread-job"),
    ("SBATCH_THREAD_SPEC", "thread-spec"), ("SBATCH_THREADS_PER_CORE", "threads-per-core"),
    ("SBATCH_TIMELIMIT", "time"), ("SBATCH_USE_MIN_NODES", "use-min-nodes"), ("SBATCH_WAIT", "wait"),
    ("SBATCH_WAIT_ALL_NODES", "wait-all-nodes"), ("SBATCH_WCKEY", "wckey"),
]  # fmt: skip

_USAGE = """\
Usage: {prog} [-N nnodes] [-n ntasks] [-c ncpus] [-p partition] [-t time]
       [-J jobname] [-o file] [-e file] [-i file] [-D path] [--hold] [--parsable]
       [--mem=MB] [--mem-per-cpu=MB] [--gres=gpu[:type]:n] [-G [type:]n]
       [--gpus-per-node=[type:]n] [--gpus-per-task=[type:]n] [--exclusive]
       [-w hosts] [-x hosts] [--export=ALL|NONE|names] [--requeue] [--nice[=n]]
       [--comment=text] [-a array] [-b begin] [-d dependency]
       [--wrap=command] executable [args...]
"""

_HELP = """\
Usage: {prog} [OPTIONS...] executable [args...]

Job options:
  -A, --account=name          account to charge (default: your default account)
  -c, --cpus-per-task=ncpus   number of cpus required per task
      --comment=text          arbitrary comment
  -D, --chdir=directory       working directory of the job (default: current)
  -e, --error=file            file for the script's stderr (default: as --output)
      --exclusive[=user|mcs]  allocate whole nodes
      --export=ALL|NONE|[ALL,]names  environment passed to the job (default: ALL)
  -H, --hold                  submit the job held
  -i, --input=file            file for the script's stdin
  -J, --job-name=name         name of the job (default: the script's name)
  -N, --nodes=N[-M]           number of nodes
  -n, --ntasks=ntasks         number of tasks
      --nice[=value]          lower the job's priority (default 100)
      --ntasks-per-node=n     tasks per node
  -o, --output=file           file for the script's stdout (default: slurm-%j.out)
      --open-mode=append|truncate  how the output files are opened
  -p, --partition=partitions  partition(s) to submit to, comma separated
      --parsable              print only the job id
  -q, --qos=qos               quality of service (priority, limits, preemption)
      --requeue, --no-requeue  may the job be requeued after a node failure
  -t, --time=time             time limit: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
      --wrap=command          submit "command" wrapped in a /bin/sh script

Resources:
      --mem=MB                memory per node (K/M/G/T suffixes; 0 = whole node)
      --mem-per-cpu=MB        memory per allocated cpu
      --gres=gpu[:type][:n]   GPUs per node
  -G, --gpus=[type:]n         GPUs for the whole job
      --gpus-per-node=[type:]n  GPUs per node
      --gpus-per-task=[type:]n  GPUs per task
  -w, --nodelist=hosts        run on these nodes (hostlist, or a file with a '/')
  -x, --exclude=hosts         never run on these nodes

      --signal=[B:]sig[@time] signal the job (B: the batch shell) before its time limit
                              (also the signal sent when the job is preempted)
      --max-requeue=n         infrastructure requeues allowed (default from config)
      --requeue-exit=codes    requeue when the script exits with one of these codes
                              (e.g. 75,99-101; budget max_requeue_exit in config)

Scheduling:
  -a, --array=indexes         job array: 0-99, 1,3,5-7, 0-15:4; %N runs at most N
                              tasks at once (ids below MaxArraySize, default 1001)
  -b, --begin=time            defer the job: HH:MM[:SS], YYYY-MM-DD[THH:MM[:SS]],
                              now+N[seconds|minutes|hours|days|weeks], midnight,
                              noon, teatime, today, tomorrow
  -d, --dependency=list       after:ID[+min], afterany:ID, afterok:ID, afternotok:ID,
                              aftercorr:ID, singleton; ID may be A (every task of
                              array A) or A_a; "," = all of them, "?" = any one
      --kill-on-invalid-dep=yes|no  cancel the job if its dependency can never be met

Other options (--constraint, --mail-type, ...) are accepted and
recorded, not yet acted on. Not supported yet: --test-only, --wait, --export-file.

  -Q, --quiet                 print nothing on success
  -v, --verbose               more messages
  -h, --help                  this help
      --usage                 short usage
  -V, --version               version

#SBATCH lines at the top of the script give the same options; SBATCH_* variables
override them and the command line overrides both.
"""


# ---------------------------------------------------------------- getopt


class _GetOpt:
    """``getopt_long`` with a ``+`` option string: stops at the first non-option."""

    def __init__(self, args: list[str], prog: str) -> None:
        self.args = args
        self.prog = prog
        self.optind = 0

    def _error(self, message: str) -> DirectiveError:
        lines = [f"{self.prog}: {message}", f'Try "{self.prog} --help" for more information']
        return DirectiveError(lines, 255, raw=True)

    def _long(self, body: str) -> _Opt:
        name = body.split("=", 1)[0]
        matches = [(n, o) for n, o in _LONG if name and n.startswith(name)]
        for candidate, opt in matches:
            if candidate == name:
                return opt
        if not matches:
            raise self._error(f"unrecognized option '--{body}'")
        first = matches[0][1]
        ambiguous = [n for i, (n, o) in enumerate(matches) if i == 0 or o is not first]
        if len(ambiguous) > 1:
            listed = " ".join(f"'--{n}'" for n in ambiguous)
            raise self._error(f"option '--{body}' is ambiguous; possibilities: {listed}")
        return first

    def __iter__(self) -> Iterator[tuple[_Opt, str | None]]:
        args, i = self.args, 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if arg.startswith("--"):
                body = arg[2:]
                opt = self._long(body)
                i += 1
                value: str | None = None
                if "=" in body:
                    if opt.has_arg == NO:
                        raise self._error(f"option '--{opt.name}' doesn't allow an argument")
                    value = body.split("=", 1)[1]
                elif opt.has_arg == REQ:
                    if i >= len(args):
                        raise self._error(f"option '--{opt.name}' requires an argument")
                    value, i = args[i], i + 1
                self.optind = i
                yield opt, value
            elif arg.startswith("-") and arg != "-":
                i += 1
                j = 1
                while j < len(arg):
                    char = arg[j]
                    j += 1
                    found = _SHORT.get(char)
                    if found is None:
                        raise self._error(f"invalid option -- '{char}'")
                    value = None
                    if found.has_arg != NO and j < len(arg):
                        value, j = arg[j:], len(arg)
                    elif found.has_arg == REQ:
                        if i >= len(args):
                            raise self._error(f"option requires an argument -- '{char}'")
                        value, i = args[i], i + 1
                    self.optind = i
                    yield found, value
            else:
                break
        self.optind = i


# ---------------------------------------------------------------- the script


def _directive_words(text: str, label: str) -> list[str]:
    """All words of the ``#SBATCH``/``#GSUB`` lines before the first command."""
    words: list[str] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.startswith("#SBATCH"):
            rest = line[len("#SBATCH") :]
        elif line.startswith("#GSUB"):
            rest = line[len("#GSUB") :]
        else:
            stripped = line.lstrip(_WS)
            if stripped and not stripped.startswith("#"):
                break  # the first command: sbatch reads no further
            continue
        line_words = _split_directive(rest, label, lineno)
        if any(w.lower() in ("hetjob", "packjob") for w in line_words):
            raise _fail("heterogeneous jobs (#SBATCH hetjob) are not supported yet", 1)
        words.extend(line_words)
    return words


def _split_directive(line: str, label: str, lineno: int) -> list[str]:
    """sbatch's ``get_argument`` applied until the line is used up."""
    words: list[str] = []
    pos, end = 0, len(line)
    while True:
        start = pos
        while pos < end and line[pos] in _WS:
            pos += 1
        chars: list[str] = []
        quote = ""
        escaped = False
        while pos < end and (quote or line[pos] not in _WS):
            char = line[pos]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
                pos += 1
                continue
            elif quote:
                if char == quote:
                    quote = ""
                    pos += 1
                    continue
            elif char in "\"'":
                quote = char
                pos += 1
                continue
            elif char == "#":
                break  # an unquoted '#' starts a comment
            chars.append(char)
            pos += 1
        if quote:
            raise _fail(f"{label}: line {lineno}: Unmatched `{quote}` in [{line[start:]}]", 1)
        if not chars:
            return words  # like sbatch, nothing (or only "") ends the line
        words.append("".join(chars))


def _resolve_script(command: str, cwd: str, environ: Mapping[str, str]) -> str:
    """sbatch's ``search_path``: ``./x`` and ``/x`` as given, else cwd then ``$PATH``."""
    if command.startswith(("/", ".")):
        return os.path.join(cwd, command)
    for directory in [cwd, *environ.get("PATH", "").split(":")]:
        if directory:
            candidate = os.path.join(cwd, directory, command)
            if os.path.isfile(candidate) and os.access(candidate, os.R_OK):
                return candidate
    return os.path.join(cwd, command)


def _check_script(data: bytes, label: str) -> str:
    if len(data) > MAX_SCRIPT_SIZE:
        raise _fail(f"Script {label} is too big, read {len(data)} > {MAX_SCRIPT_SIZE} bytes.", 1)
    if not data:
        raise _fail("Batch script is empty!", 1)
    if not data.strip(_WS.encode()):
        raise _fail("Batch script contains only whitespace!", 1)
    if not data.startswith(b"#!"):
        raise DirectiveError(
            [
                "This does not look like a batch script.  The first",
                "line must start with #! followed by the path to an interpreter.",
                "For instance: #!/bin/sh",
            ]
        )
    if b"\0" in data:
        raise DirectiveError(
            ["The Slurm controller does not allow scripts that", "contain a NULL character '\\0'."]
        )
    if b"\r\n" in data:
        raise DirectiveError(
            [
                "Batch script contains DOS line breaks (\\r\\n)",
                "instead of expected UNIX line breaks (\\n).",
            ]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"Batch script {label} is not valid UTF-8 text", 1) from exc


# ---------------------------------------------------------------- assembling the spec


def _apply(st: _State, opt: _Opt, value: str | None, by_env: bool = False) -> None:
    st.by_env = by_env
    opt.setter(st, value)


def _apply_env(st: _State, opt: _Opt, value: str) -> None:
    """SBATCH_* rules: a flag is set by "", "yes" or a non-zero number, else reset."""
    if opt.has_arg == NO and opt.name != "verbose":
        if value == "" or value.lower() == "yes" or (_int_ok(value) and int(value) != 0):
            _apply(st, opt, None, True)
        elif opt.reset is not None:
            opt.reset(st)
        return
    _apply(st, opt, None if (opt.has_arg == OPT and value == "") else value, True)


def _check_memory(st: _State) -> None:
    """sbatch's ``_validate_memory_options``: one memory option at a time."""
    options = ("--mem", "--mem-per-cpu", "--mem-per-gpu")
    given = [o for o in options if st.env_set.get(o) is False]  # script or command line
    if len(given) > 1:
        raise _fail("--mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive.", 1)
    if given:
        for other in options:
            if other != given[0]:
                reset = _BY_NAME[other[2:]].reset
                if reset is not None:
                    reset(st)
    elif sum(1 for o in options if st.env_set.get(o)) > 1:
        raise _fail(
            "SLURM_MEM_PER_CPU, SLURM_MEM_PER_GPU, and SLURM_MEM_PER_NODE are mutually exclusive.",
            1,
        )


def _split_export(value: str) -> list[str]:
    """Split on commas outside quotes, as SLURM's ``find_quote_token`` does.

    A token wholly inside matching quotes loses them (``"A=1,2"`` -> ``A=1,2``);
    quotes elsewhere are kept (``A='1,2'`` sets A to ``'1,2'``, as in sbatch).
    """
    tokens: list[str] = []
    start, single, double = 0, False, False
    for i, char in enumerate(value + ","):
        if char == "'":
            single = not single
        elif char == '"':
            double = not double
        elif char == "," and not single and not double:
            token = value[start:i]
            if len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]:
                token = token[1:-1]
            tokens.append(token)
            start = i + 1
    return [t for t in tokens if t]


def _environment(export: str | None, environ: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The job's environment and export mode, as sbatch builds them."""
    if export is None or export.upper() == "ALL":
        return dict(environ), "ALL"
    slurm_vars = {k: v for k, v in environ.items() if k.startswith("SLURM_")}
    if export.upper() == "NONE":
        return slurm_vars, "NONE"
    env: dict[str, str] = {}
    for token in _split_export(export):
        if token.upper() == "ALL":
            env.update(environ)
        elif "=" in token:
            key, val = token.split("=", 1)
            env[key] = val
        elif token in environ:
            env[token] = environ[token]
    env.update(slurm_vars)  # SLURM_* always travel
    return env, export


def _gpu_fields(st: _State, spec: JobSpecLite) -> None:
    requests = [r for r in (st.gres, st.gpus, st.gpus_per_node, st.gpus_per_task) if r]
    types = {gpu_type for gpu_type, count in requests if gpu_type and count}
    if len(types) > 1:
        raise _fail(_GRES_ERROR, 1)
    if st.gres and st.gpus_per_node and st.gres != st.gpus_per_node:
        raise _fail(_GRES_ERROR, 1)
    per_node = st.gpus_per_node or st.gres
    spec.gpus_per_node = per_node[1] if per_node else 0
    spec.gpus = st.gpus[1] if st.gpus else 0
    spec.gpus_per_task = st.gpus_per_task[1] if st.gpus_per_task else 0
    spec.gpu_type = types.pop() if types else ""


def _build_spec(
    st: _State, script: str, argv: list[str], default_name: str, environ: Mapping[str, str]
) -> JobSpecLite:
    spec = JobSpecLite(
        name=st.name if st.name is not None else default_name,
        script=script,
        argv=argv,
        workdir=st.chdir or st.cwd,
        output=st.output,
        error=st.error,
        input=st.input,
        open_mode=st.open_mode,
        time_limit=st.time_limit or 0,
        ntasks=st.ntasks,
        ntasks_per_node=st.ntasks_per_node,
        cpus_per_task=st.cpus_per_task,
        partitions=st.partitions,
        hold=st.hold,
        exclusive=st.shared == "exclusive",
        nodelist=st.nodelist,
        exclude=st.exclude,
        requeue=st.requeue,
        comment=st.comment,
        submit_host=_socket.gethostname().split(".")[0],
        submit_dir=st.cwd,
        nice=st.nice,
        wrapped=st.wrap is not None,
    )
    if st.nodes:
        spec.nodes_min, spec.nodes_max = st.nodes
    if st.nodelist:  # as sbatch: at least one node per requested host
        spec.nodes_min = max(spec.nodes_min, len(hostlist.expand(st.nodelist)))
    if st.mem is not None:  # --mem wins over --mem-per-cpu, as in slurm_opt_create_job_desc
        spec.mem_mb = st.mem
        spec.mem_whole_node = st.mem == 0
    elif st.mem_per_cpu is not None:
        spec.mem_per_cpu_mb = st.mem_per_cpu
    _gpu_fields(st, spec)
    env, mode = _environment(st.export, environ)
    spec.environment.update(env)
    spec.export_mode = mode
    extra = dict(st.extra)
    if st.shared in ("user", "mcs"):
        extra["exclusive"] = st.shared
    elif st.shared == "oversubscribe":
        extra["oversubscribe"] = ""
    spec.extra.update(extra)
    first_line = script.split("\n", 1)[0][2:].split()
    spec.shell = first_line[0] if first_line else ""
    return spec


def parse_submission(
    argv: list[str],
    environ: Mapping[str, str],
    cwd: str,
    stdin: IO[bytes] | None = None,
    prog: str = "gsub",
) -> Submission:
    """Turn a gsub/sbatch command line, its script and environment into a job spec.

    Args:
        argv: the arguments after the program name.
        environ: the submitting environment (SBATCH_* inputs; exported to the job).
        cwd: the submit directory.
        stdin: where the script is read from when no script path and no ``--wrap``
            is given; ``None`` means ``sys.stdin``.
        prog: the program name used in messages.

    Returns:
        The submission: ``lite.wire()`` (or ``SubmitRequest(spec=spec)``) is the request.

    Raises:
        DirectiveError: bad options or script; print ``render(prog)`` and exit
            with ``exit_code``.
        DirectiveExit: ``--help``, ``--usage`` or ``--version``.
    """
    cwd = os.path.abspath(cwd)
    # Pass 1: command-line syntax, early options, script name.
    early = _State(cwd, prog)
    getopt = _GetOpt(argv, prog)
    cli_items: list[tuple[_Opt, str | None]] = []
    for opt, value in getopt:
        if opt.early:
            opt.setter(early, value)
        else:
            cli_items.append((opt, value))
    rest = argv[getopt.optind :]
    if early.wrap is not None and rest:
        raise _fail("Script arguments not permitted with --wrap option", 1)

    script_path = ""
    if early.wrap is not None:
        text, label, default_name = _WRAP_HEADER + early.wrap + "\n", "wrap", "wrap"
    else:
        if rest:
            script_path = _resolve_script(rest[0], cwd, environ)
            label = rest[0]
            try:
                with open(script_path, "rb") as fh:
                    data = fh.read(MAX_SCRIPT_SIZE + 1)
            except OSError as exc:
                raise _fail(f"Unable to open file {rest[0]}", 1) from exc
            default_name = os.path.basename(script_path)
        else:
            label, default_name = "stdin", "sbatch"
            source = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
            try:
                data = source.read(MAX_SCRIPT_SIZE + 1) if source is not None else b""
            except OSError as exc:
                raise _fail(f"Unable to read the batch script from stdin: {exc}", 1) from exc
        text = _check_script(data, label)

    # Pass 2: directives < SBATCH_* environment < command line.
    st = _State(cwd, prog)
    st.verbose, st.quiet, st.wrap = early.verbose, early.quiet, early.wrap
    words = _directive_words(text, label)
    directives = _GetOpt(words, prog)
    for opt, value in directives:
        if not opt.early:  # sbatch ignores --help, -v, --wrap, ... in scripts
            _apply(st, opt, value)
    if directives.optind < len(words):
        raise _fail(f"Invalid directive found in batch script: {words[directives.optind]}")
    for var, name in _ENV_VARS:
        if var in environ:
            _apply_env(st, _BY_NAME[name], environ[var])
    for opt, value in cli_items:
        _apply(st, opt, value)
    _check_memory(st)
    if st.verbose and st.quiet:
        raise _fail("don't specify both --verbose (-v) and --quiet (-Q)", 1)

    spec = _build_spec(st, text, rest[1:], default_name, environ)
    return Submission(
        spec=spec,
        parsable=st.parsable,
        verbose=st.verbose,
        quiet=bool(st.quiet),
        script_path=script_path,
    )
