"""MUNGE: both backends against a private munged, and the controller's checks on top.

The tests start Debian's munged themselves (own key, socket, pid, log and seed
files in a temp dir; see tests/e2e/secutil.py) and skip only when it is not installed.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from gsched.common import auth, config, munge
from gsched.controller.auth import Authenticator

METHOD = "/gsched.v1.JobService/Submit"


@pytest.fixture(scope="module")
def daemon(munge_daemon: Any) -> Any:
    return munge_daemon


@pytest.fixture(params=["libmunge", "commands"])
def backend(request: pytest.FixtureRequest, daemon: Any) -> munge.Munge:
    return munge.open_munge(daemon.socket, backend=request.param)


def test_round_trip_gives_our_uid_gid_and_payload(backend: munge.Munge) -> None:
    cred = backend.encode(b"hello\nworld")
    assert cred.startswith("MUNGE:")
    dec = backend.decode(cred)
    assert (dec.uid, dec.gid, dec.payload) == (os.getuid(), os.getgid(), b"hello\nworld")
    assert abs(dec.encode_time - time.time()) < 5
    assert dec.ttl > 0


def test_munged_refuses_a_replay(backend: munge.Munge) -> None:
    cred = backend.encode(b"x")
    backend.decode(cred)
    with pytest.raises(munge.MungeError) as err:
        backend.decode(cred)
    assert err.value.errno == munge.EMUNGE_CRED_REPLAYED
    assert "Replayed" in err.value.message


@pytest.mark.parametrize("bad", ["MUNGE:AAAA:", "MUNGE:" + "A" * 200 + ":", "nonsense",
                                 "MUNGE:\0:", "MUNGE:é:", "MUNGE:" + "A" * 20000])
def test_garbage_is_an_error_not_a_crash(backend: munge.Munge, bad: str) -> None:
    with pytest.raises(munge.MungeError):
        backend.decode(bad)


def test_credential_of_another_key_is_invalid(backend: munge.Munge,
                                              start_munged: Any) -> None:
    with start_munged() as other:
        cred = munge.open_munge(other.socket).encode(b"x")
    with pytest.raises(munge.MungeError) as err:
        backend.decode(cred)
    assert err.value.errno == munge.EMUNGE_CRED_INVALID


def test_expired_credential(daemon: Any) -> None:
    backends = [munge.open_munge(daemon.socket, backend=b) for b in ("libmunge", "commands")]
    creds = [b.encode(b"x", ttl=1) for b in backends]
    time.sleep(2.1)  # MUNGE counts whole seconds
    for b, cred in zip(backends, creds, strict=True):
        with pytest.raises(munge.MungeError) as err:
            b.decode(cred)
        assert err.value.errno == munge.EMUNGE_CRED_EXPIRED, b.name


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_credential_made_by_another_user_carries_that_uid(backend: munge.Munge,
                                                          daemon: Any) -> None:
    code = ("import sys; from gsched.common.munge import open_munge; "
            f"print(open_munge({daemon.socket!r}).encode(b'from-nobody'))")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30, cwd="/")
    assert p.returncode == 0, p.stderr
    dec = backend.decode(p.stdout.strip())
    assert (dec.uid, dec.gid, dec.payload) == (65534, 65534, b"from-nobody")


def test_encode_without_munged_fails_clearly(tmp_path: object) -> None:
    for name in ("libmunge", "commands"):
        m = munge.open_munge(f"{tmp_path}/absent.socket", backend=name)
        with pytest.raises(munge.MungeError) as err:
            m.encode(b"x")
        assert err.value.errno == munge.EMUNGE_SOCKET or "socket" in err.value.message.lower()


def test_falls_back_to_the_commands_without_libmunge(monkeypatch: pytest.MonkeyPatch,
                                                     daemon: Any) -> None:
    monkeypatch.setattr(munge, "LIBRARY_NAMES", ("/nonexistent/libmunge.so.2",))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    m = munge.open_munge(daemon.socket)
    assert isinstance(m, munge.CmdMunge)
    assert m.decode(m.encode(b"ok")).payload == b"ok"
    with pytest.raises(OSError):
        munge.open_munge(daemon.socket, backend="libmunge")


def test_libmunge_is_the_default_when_loadable(daemon: Any) -> None:
    assert isinstance(munge.open_munge(daemon.socket), munge.LibMunge)


# ------------------------------------------------------------------ the controller's checks
def _authenticator(daemon: Any, ttl: int = 300) -> Authenticator:
    cfg = config.from_dict({"controller": {"auth_type": "munge", "munge_socket": daemon.socket,
                                           "credential_ttl": ttl}})
    a = Authenticator(cfg)
    a.start()
    return a


def _cred(daemon: Any, method: str = METHOD, now: float | None = None) -> str:
    return "munge:" + munge.open_munge(daemon.socket).encode(auth.munge_payload(method, now))


def test_controller_takes_uid_gid_from_the_credential(daemon: Any) -> None:
    a = _authenticator(daemon)
    try:
        caller = asyncio.run(a.authenticate(METHOD, {auth.CRED_KEY: _cred(daemon)}))
        assert (caller.uid, caller.gid, caller.admin) == (os.getuid(), os.getgid(), True)
        # claimed metadata next to it changes nothing
        md = {auth.CRED_KEY: _cred(daemon), "x-gsched-uid": "12345"}
        assert asyncio.run(a.authenticate(METHOD, md)).uid == os.getuid()
    finally:
        a.close()


def test_controller_rejects_replay_other_call_and_expired(daemon: Any) -> None:
    a = _authenticator(daemon, ttl=60)
    try:
        cred = _cred(daemon)
        a.verify_munge(cred[6:], METHOD, time.time())
        with pytest.raises(auth.AuthError, match="replayed MUNGE credential"):
            a.verify_munge(cred[6:], METHOD, time.time())
        with pytest.raises(auth.AuthError, match=r"made for /gsched\.v1\.JobService/Submit, not"):
            a.verify_munge(_cred(daemon)[6:], "/gsched.v1.JobService/Cancel", time.time())
        with pytest.raises(auth.AuthError, match="expired MUNGE credential"):
            a.verify_munge(_cred(daemon)[6:], METHOD, time.time() + 120)
        # our own cache, independent of munged's: two credentials, one nonce
        m = munge.open_munge(daemon.socket)
        same = b"\n".join((b"gsched/1", METHOD.encode(), b"n" * 24, str(int(time.time())).encode()))
        a.verify_munge(m.encode(same), METHOD, time.time())
        with pytest.raises(auth.AuthError, match="replayed MUNGE credential"):
            a.verify_munge(m.encode(same), METHOD, time.time())
        foreign = "munge:" + munge.open_munge(daemon.socket).encode(b"not ours")
        with pytest.raises(auth.AuthError, match="not made by gsched"):
            a.verify_munge(foreign[6:], METHOD, time.time())
        with pytest.raises(auth.AuthError, match="invalid MUNGE credential"):
            a.verify_munge("MUNGE:garbage:", METHOD, time.time())
    finally:
        a.close()


def test_controller_refuses_to_start_without_munged(tmp_path: object) -> None:
    cfg = config.from_dict({"controller": {"auth_type": "munge",
                                           "munge_socket": f"{tmp_path}/absent.socket"}})
    with pytest.raises(OSError, match="does not work"):
        Authenticator(cfg).start()
