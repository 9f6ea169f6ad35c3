"""MUNGE credentials: a thin ctypes wrapper over libmunge, the commands as fallback.

MUNGE (https://dun.github.io/munge/) is how SLURM proves who a user is: ``munged``
on every host shares one secret key; a process asks its local ``munged`` to encode
a credential, which carries the caller's uid and gid as the kernel reported them
to ``munged`` plus an optional payload, all sealed with the key. Any host with the
same key decodes it and learns the uid/gid; ``munged`` itself refuses expired
(past their TTL), rewound (from the future) and replayed credentials.

Two backends with one interface, :class:`Munge`:

* :class:`LibMunge` calls ``munge_encode``/``munge_decode`` in ``libmunge.so.2``
  through ctypes (no process per call; see ``bench/bench_munge.py``).
* :class:`CmdMunge` runs the ``munge``/``unmunge`` commands; used when libmunge
  cannot be loaded.

:func:`open_munge` picks the faster one that works. Errors are :class:`MungeError`
with the MUNGE error number kept (``EMUNGE_CRED_EXPIRED`` and friends below).
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple

# ctypes.util, shutil and subprocess are imported where needed: a command pays for
# this module on every gRPC call it makes with auth_type munge.

__all__ = [
    "EMUNGE_CRED_EXPIRED",
    "EMUNGE_CRED_REPLAYED",
    "EMUNGE_CRED_REWOUND",
    "EMUNGE_SOCKET",
    "CmdMunge",
    "Decoded",
    "LibMunge",
    "Munge",
    "MungeError",
    "open_munge",
]

# munge_err_t values (munge.h)
EMUNGE_SNAFU = 1
EMUNGE_SOCKET = 6
EMUNGE_BAD_CRED = 8
EMUNGE_CRED_INVALID = 14
EMUNGE_CRED_EXPIRED = 15
EMUNGE_CRED_REWOUND = 16
EMUNGE_CRED_REPLAYED = 17
# munge_opt_t values (munge.h)
_OPT_TTL = 4
_OPT_ENCODE_TIME = 6
_OPT_SOCKET = 8

_MESSAGES = {
    EMUNGE_SOCKET: "Socket communication error",
    EMUNGE_BAD_CRED: "Invalid credential format",
    EMUNGE_CRED_INVALID: "Invalid credential",
    EMUNGE_CRED_EXPIRED: "Expired credential",
    EMUNGE_CRED_REWOUND: "Rewound credential, future ctime",
    EMUNGE_CRED_REPLAYED: "Replayed credential",
}

MAX_CREDENTIAL = 16 * 1024  # a credential with a short payload is a few hundred bytes


class MungeError(Exception):
    """Encoding or decoding failed; ``errno`` is the munge_err_t (1..18)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno
        self.message = message


class Decoded(NamedTuple):
    uid: int
    gid: int
    payload: bytes
    encode_time: int  # seconds since the epoch, by the encoding host's clock
    ttl: int


class Munge:
    """Encode/decode credentials through one ``munged`` (``socket``; "" = default)."""

    name = "?"

    def __init__(self, socket: str = "") -> None:
        self.socket = socket

    def encode(self, payload: bytes = b"", ttl: int = 0) -> str:
        """A credential for the calling process's uid/gid carrying ``payload``."""
        raise NotImplementedError

    def decode(self, credential: str) -> Decoded:
        """Verify ``credential``; raises MungeError when it is not valid."""
        raise NotImplementedError


class LibMunge(Munge):
    """libmunge through ctypes. Raises OSError at construction when it is not loadable."""

    name = "libmunge"

    def __init__(self, socket: str = "", library: str = "") -> None:
        super().__init__(socket)
        lib = _load(library)
        self._lib = lib
        self._libc = ctypes.CDLL(None)
        self._libc.free.argtypes = [ctypes.c_void_p]
        self._libc.free.restype = None
        lib.munge_encode.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_int]
        lib.munge_encode.restype = ctypes.c_int
        lib.munge_decode.argtypes = [ctypes.c_char_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(ctypes.c_int),
                                     ctypes.POINTER(ctypes.c_uint32),
                                     ctypes.POINTER(ctypes.c_uint32)]
        lib.munge_decode.restype = ctypes.c_int
        lib.munge_strerror.argtypes = [ctypes.c_int]
        lib.munge_strerror.restype = ctypes.c_char_p
        lib.munge_ctx_create.argtypes = []
        lib.munge_ctx_create.restype = ctypes.c_void_p
        lib.munge_ctx_destroy.argtypes = [ctypes.c_void_p]
        lib.munge_ctx_destroy.restype = None
        lib.munge_ctx_strerror.argtypes = [ctypes.c_void_p]
        lib.munge_ctx_strerror.restype = ctypes.c_char_p
        # variadic: the value's type is given at each call
        lib.munge_ctx_set.restype = ctypes.c_int
        lib.munge_ctx_get.restype = ctypes.c_int
        # One context for encoding, one for decoding (munge.h: decode overwrites its
        # context with the credential's settings). Not shared between threads.
        self._enc = self._context()
        self._dec = self._context()

    def _context(self) -> int:
        ctx = self._lib.munge_ctx_create()
        if not ctx:
            raise OSError("munge_ctx_create failed")
        if self.socket:
            err = self._lib.munge_ctx_set(ctypes.c_void_p(ctx), ctypes.c_int(_OPT_SOCKET),
                                          ctypes.c_char_p(self.socket.encode()))
            if err:
                self._lib.munge_ctx_destroy(ctx)
                raise OSError(f"munge_ctx_set(socket): {self._strerror(err)}")
        return int(ctx)

    def _strerror(self, err: int, ctx: int | None = None) -> str:
        msg = self._lib.munge_ctx_strerror(ctx) if ctx else None
        return (msg or self._lib.munge_strerror(err) or b"munge error").decode(errors="replace")

    def encode(self, payload: bytes = b"", ttl: int = 0) -> str:
        if ttl:
            self._lib.munge_ctx_set(ctypes.c_void_p(self._enc), ctypes.c_int(_OPT_TTL),
                                    ctypes.c_int(ttl))
        out = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(payload, len(payload))
        err = self._lib.munge_encode(ctypes.byref(out), self._enc, buf, len(payload))
        if err:
            raise MungeError(err, self._strerror(err, self._enc))
        try:
            return ctypes.string_at(out.value).decode("ascii")
        finally:
            self._libc.free(out)

    def decode(self, credential: str) -> Decoded:
        raw = _check_credential(credential)
        buf = ctypes.c_void_p()
        length = ctypes.c_int()
        uid = ctypes.c_uint32()
        gid = ctypes.c_uint32()
        err = self._lib.munge_decode(raw, self._dec, ctypes.byref(buf), ctypes.byref(length),
                                     ctypes.byref(uid), ctypes.byref(gid))
        try:
            payload = ctypes.string_at(buf.value, length.value) if buf.value else b""
        finally:
            if buf.value:
                self._libc.free(buf)
        if err:
            raise MungeError(err, self._strerror(err, self._dec))
        when = ctypes.c_long()
        ttl = ctypes.c_int()
        self._lib.munge_ctx_get(ctypes.c_void_p(self._dec), ctypes.c_int(_OPT_ENCODE_TIME),
                                ctypes.byref(when))
        self._lib.munge_ctx_get(ctypes.c_void_p(self._dec), ctypes.c_int(_OPT_TTL),
                                ctypes.byref(ttl))
        return Decoded(uid.value, gid.value, payload, when.value, ttl.value)

    def close(self) -> None:
        for ctx in (self._enc, self._dec):
            self._lib.munge_ctx_destroy(ctx)
        self._enc = self._dec = 0


class CmdMunge(Munge):
    """The ``munge``/``unmunge`` commands (a process per call: the slower fallback)."""

    name = "commands"

    def __init__(self, socket: str = "") -> None:
        super().__init__(socket)
        import shutil

        munge, unmunge = shutil.which("munge"), shutil.which("unmunge")
        if not munge or not unmunge:
            raise OSError("the munge and unmunge commands are not installed")
        self._munge, self._unmunge = munge, unmunge
        self._sock = ["--socket", socket] if socket else []

    def encode(self, payload: bytes = b"", ttl: int = 0) -> str:
        import subprocess

        args = [self._munge, *self._sock, "--input", "-"]
        if ttl:
            args += ["--ttl", str(ttl)]
        p = subprocess.run(args, input=payload, capture_output=True, timeout=30, check=False)
        if p.returncode:
            raise MungeError(p.returncode, _last_line(p.stderr) or "munge failed")
        return p.stdout.decode("ascii").strip()

    def decode(self, credential: str) -> Decoded:
        import subprocess

        raw = _check_credential(credential)
        p = subprocess.run([self._unmunge, *self._sock, "--numeric"], input=raw + b"\n",
                           capture_output=True, timeout=30, check=False)
        head, _, payload = p.stdout.partition(b"\n\n")
        meta = {}
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
        if p.returncode:
            msg = _last_line(p.stderr) or _MESSAGES.get(p.returncode, "unmunge failed")
            raise MungeError(p.returncode, msg.removeprefix("unmunge: Error: "))
        try:
            return Decoded(int(meta["UID"]), int(meta["GID"]), payload,
                           int(meta["ENCODE_TIME"]), int(meta["TTL"]))
        except (KeyError, ValueError) as exc:
            raise MungeError(EMUNGE_SNAFU, f"unexpected unmunge output: {head!r}") from exc


# Tried before ctypes.util.find_library, which runs ldconfig (milliseconds per command)
LIBRARY_NAMES = ("libmunge.so.2",)


def _load(library: str = "") -> ctypes.CDLL:
    for name in (library,) if library else LIBRARY_NAMES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    from ctypes import util

    found = util.find_library("munge")
    if not found:
        raise OSError("libmunge is not installed")
    return ctypes.CDLL(found)


def _check_credential(credential: str) -> bytes:
    if not credential.startswith("MUNGE:") or len(credential) > MAX_CREDENTIAL:
        raise MungeError(EMUNGE_BAD_CRED, "Invalid credential format")
    try:
        raw = credential.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MungeError(EMUNGE_BAD_CRED, "Invalid credential format") from exc
    if b"\0" in raw or b"\n" in raw:
        raise MungeError(EMUNGE_BAD_CRED, "Invalid credential format")
    return raw


def _last_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def open_munge(socket: str = "", backend: str = "auto") -> Munge:
    """The backend to use: libmunge when loadable (faster), else the commands.

    Args:
        socket: munged's socket ("" = the library's default).
        backend: "auto", "libmunge" or "commands".

    Raises:
        OSError: no backend is available.
    """
    if backend in ("auto", "libmunge"):
        try:
            return LibMunge(socket)
        except OSError:
            if backend == "libmunge":
                raise
    return CmdMunge(socket)
