"""gsub's own modules from one per-user code bundle instead of one file each.

A ``gsub`` is mostly the interpreter's start; of what is left, importing its eleven
modules costs ~3 ms, part of it the import system finding, checking and loading
each file. A
shell loop of ``gsub`` calls (the throughput benchmark, issue 2) pays it per job.

:func:`load` puts the modules into ``sys.modules`` from one ``marshal`` file in the
user's cache directory (next to :mod:`gsched.common.confcache`'s), about half a
millisecond faster on the 2-core development machine.
The bundle holds the code objects compiled from the installed sources, exactly as
the import system compiles them, and is keyed by Python's version and each source
file's path, size and modification time: a reinstall or an edit makes it stale,
and a stale, missing or unreadable bundle is rebuilt. The bundle is code this
process runs, so it is used only from a directory and a file that this user owns
and nobody else can write. Any problem (no ``HOME``, an unwritable or shared cache,
a module that fails) leaves nothing half done: :func:`load` returns False and the
caller's ordinary imports do the work.
"""

from __future__ import annotations

import marshal
import os
import sys

__all__ = ["GSUB", "load"]

#: gsub's modules, each after the ones it imports (see tests/unit/test_fastload.py).
GSUB = (
    "gsched.common",
    "gsched.common.lexical",
    "gsched.common.hostlist",
    "gsched.common.durations",
    "gsched.common.localrpc",
    "gsched.common.jobspec_wire",
    "gsched.common.shims",
    "gsched.common.confcache",
    "gsched.cli.client",
    "gsched.cli.directives",
    "gsched.cli.gsub",
)
_VERSION = 1


def _source(root: str, name: str) -> tuple[str, bool]:
    """The source file of module ``name`` (under package root ``root``) and whether
    it is a package."""
    parts = name.split(".")[1:]
    base = os.path.join(root, *parts)
    if os.path.isdir(base):
        return os.path.join(base, "__init__.py"), True
    return base + ".py", False


def _bundle_path(tag: str, root: str) -> str | None:
    """One bundle per installation (``root``), so that two virtual environments do
    not keep replacing each other's."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else ""
    )
    if not base:
        return None
    where = root.replace("%", "%25").replace("/", "%2F")
    return os.path.join(base, "gsched", f"{tag}-modules-{where}.marshal")


def load(names: tuple[str, ...] = GSUB, tag: str = "gsub") -> bool:
    """Install ``names`` (in that order) from the bundle ``tag``; False if it did not."""
    if any(n in sys.modules for n in names):
        return False
    root = os.path.dirname(sys.modules["gsched"].__file__ or "")
    path = _bundle_path(tag, root) if root else None
    if path is None:
        return False
    try:
        files = [_source(root, n) for n in names]
        stamps = []
        for file, _ in files:
            st = os.stat(file)
            stamps.append((file, st.st_size, st.st_mtime_ns))
    except OSError:
        return False
    key = (_VERSION, sys.version, tuple(names), tuple(stamps))
    codes = _read(path, key)
    if codes is None:
        codes = _build(path, key, files)
        if codes is None:
            return False
    return _install(names, files, codes)


def _private(fd: int, folder: str) -> bool:
    """Whether only this user could have written the bundle: it is code this process
    will run, so a bundle in a directory others may write to (a shared or
    world-writable cache directory) is never used."""
    me = os.getuid()
    for st in (os.fstat(fd), os.stat(folder)):
        if st.st_uid != me or st.st_mode & 0o022:
            return False
    return True


def _read(path: str, key: tuple[object, ...]) -> list[object] | None:
    try:
        with open(path, "rb") as fh:
            if not _private(fh.fileno(), os.path.dirname(path)):
                return None
            entry = marshal.loads(fh.read())  # (marshal.load on a file object is ~5x slower)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != key:
        return None
    return entry[1] if isinstance(entry[1], list) else None


def _build(path: str, key: tuple[object, ...], files: list[tuple[str, bool]]) -> list[object] | None:
    """Compile the sources and write the bundle; None where it cannot be kept (then
    compiling on every call would cost more than it saves)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.stat(folder)
        if st.st_uid != os.getuid() or st.st_mode & 0o022 or not os.access(folder, os.W_OK):
            return None  # not a private directory: see _private
        codes: list[object] = []
        for file, _ in files:
            with open(file, "rb") as fh:
                codes.append(compile(fh.read(), file, "exec", dont_inherit=True))
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            marshal.dump((key, codes), fh)
        os.replace(tmp, path)
    except (OSError, SyntaxError, ValueError):
        return None
    return codes


def _install(names: tuple[str, ...], files: list[tuple[str, bool]], codes: list[object]) -> bool:
    module_type = type(sys)
    done: list[str] = []
    try:
        for name, (file, package), code in zip(names, files, codes, strict=True):
            if name in sys.modules:  # imported by an earlier one: GSUB's order is wrong
                raise ImportError(f"{name} was imported before its turn")
            mod = module_type(name)
            mod.__file__ = file
            if package:
                mod.__path__ = [os.path.dirname(file)]
                mod.__package__ = name
            else:
                mod.__package__ = name.rpartition(".")[0]
            sys.modules[name] = mod
            done.append(name)
            exec(code, mod.__dict__)
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, mod)
    except Exception:
        for name in done:
            sys.modules.pop(name, None)
        return False
    return True
