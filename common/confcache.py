"""A per-user cache of the few configuration facts the CLI's hot path needs.

Parsing ``gsched.toml`` costs a command ~5 ms (importing ``tomllib`` and the
validating :mod:`gsched.common.config`, which pulls in ``typing``), a sixth of a
whole ``gsub``. :func:`gsched.common.config.load` therefore writes what it derived
(the controller's Unix socket path and address, the cluster name, and how to
authenticate: ``auth_type``, ``munge_socket``, ``tls_ca``) to a ``marshal`` file in the
user's cache directory, keyed by the configuration file's path, inode, size and
modification time. :func:`lookup` answers from it when the file has not changed
since, importing nothing beyond ``os`` and ``marshal`` (both already loaded).

Only valid configurations are cached (``load`` writes after validating), so a fresh
entry is as good as parsing the file again. Any problem (no ``HOME``, unwritable
cache dir, corrupt entry) means "no cache": the caller parses the file.
"""

from __future__ import annotations

import marshal
import os

__all__ = ["DEFAULT_CONF", "conf_path", "lookup", "store"]

DEFAULT_CONF = "/etc/gsched/gsched.toml"
_VERSION = 1


def conf_path() -> str:
    """The configuration file the CLI and daemons use: $GSCHED_CONF or /etc/gsched/gsched.toml."""
    return os.environ.get("GSCHED_CONF") or DEFAULT_CONF


def _cache_file(conf: str) -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else ""
    )
    if not base:
        return None
    key = os.path.abspath(conf).replace("%", "%25").replace("/", "%2F")
    return os.path.join(base, "gsched", f"conf-{key}.marshal")


def _stamp(conf: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(conf)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def lookup(conf: str) -> dict[str, str] | None:
    """The cached facts for configuration file ``conf``, or None if not fresh."""
    path = _cache_file(conf)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            entry = marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if (
        not isinstance(entry, tuple)
        or len(entry) != 3
        or entry[0] != _VERSION
        or entry[1] != _stamp(conf)
        or not isinstance(entry[2], dict)
    ):
        return None
    return entry[2]


def store(conf: str, facts: dict[str, str]) -> None:
    """Remember ``facts`` for ``conf`` as it is now (best effort, never raises)."""
    path = _cache_file(conf)
    stamp = _stamp(conf)
    if path is None or stamp is None:
        return
    try:
        if lookup(conf) == facts:
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            marshal.dump((_VERSION, stamp, facts), fh)
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass
