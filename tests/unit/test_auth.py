"""Credentials (common/auth.py), roles and auth config (controller/auth.py, common/config.py)."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd

import pytest

from gsched.common import auth, config
from gsched.controller.auth import Authenticator, is_loopback

METHOD = "/gsched.v1.JobService/Cancel"


def test_local_token_round_trip_binds_uid_gid_and_method() -> None:
    tokens = auth.LocalTokens()
    t = tokens.issue(1234, 99, METHOD, now=1000.0)
    assert t.startswith("local:1234:99:")
    assert tokens.verify(t, METHOD, now=1001.0) == (1234, 99)


def test_local_token_is_single_use() -> None:
    tokens = auth.LocalTokens()
    t = tokens.issue(5, 5, METHOD, now=1000.0)
    tokens.verify(t, METHOD, now=1000.0)
    with pytest.raises(auth.AuthError, match="replayed"):
        tokens.verify(t, METHOD, now=1000.5)


def test_local_token_for_another_call_is_refused() -> None:
    tokens = auth.LocalTokens()
    t = tokens.issue(5, 5, "/gsched.v1.JobService/ListJobs", now=1000.0)
    with pytest.raises(auth.AuthError, match="invalid local credential"):
        tokens.verify(t, METHOD, now=1000.0)


def test_local_token_expires() -> None:
    tokens = auth.LocalTokens(ttl=60)
    t = tokens.issue(5, 5, METHOD, now=1000.0)
    with pytest.raises(auth.AuthError, match="expired"):
        tokens.verify(t, METHOD, now=1000.0 + 62)


@pytest.mark.parametrize("change", ["uid", "gid", "expires"])
def test_tampered_local_token_is_refused(change: str) -> None:
    tokens = auth.LocalTokens()
    parts = tokens.issue(1000, 1000, METHOD, now=1000.0).split(":")
    index = {"uid": 1, "gid": 2, "expires": 3}[change]
    parts[index] = "0" if change != "expires" else str(int(parts[3]) + 3600)
    with pytest.raises(auth.AuthError, match="invalid local credential"):
        tokens.verify(":".join(parts), METHOD, now=1000.0)


def test_token_from_another_controller_is_refused() -> None:
    t = auth.LocalTokens().issue(0, 0, METHOD, now=1000.0)
    with pytest.raises(auth.AuthError):
        auth.LocalTokens().verify(t, METHOD, now=1000.0)


@pytest.mark.parametrize("bad", ["", "local:", "local:a:b:c:d:e", "munge:x", "local:1:2:3:4:5:6"])
def test_malformed_local_tokens(bad: str) -> None:
    with pytest.raises(auth.AuthError):
        auth.LocalTokens().verify(bad, METHOD, now=0.0)


def test_replay_cache_forgets_after_expiry() -> None:
    cache = auth.ReplayCache()
    assert cache.use("a", expires=10.0, now=0.0)
    assert not cache.use("a", expires=10.0, now=1.0)
    assert cache.use("b", expires=20.0, now=11.0)  # purge runs: "a" expired
    assert len(cache) == 1


def test_munge_payload_round_trip() -> None:
    p = auth.munge_payload(METHOD, now=1234.9)
    method, nonce, when = auth.parse_munge_payload(p)
    assert (method, when) == (METHOD, 1234)
    assert len(nonce) == 24
    assert auth.munge_payload(METHOD) != auth.munge_payload(METHOD)  # a fresh nonce each time
    with pytest.raises(auth.AuthError, match="not made by gsched"):
        auth.parse_munge_payload(b"hello")


def test_full_method() -> None:
    assert auth.full_method("ListJobs") == "/gsched.v1.JobService/ListJobs"
    assert auth.full_method("UpdateNode") == "/gsched.v1.AdminService/UpdateNode"


# ------------------------------------------------------------------ config
def test_auth_config_defaults_to_local() -> None:
    cfg = config.from_dict({})
    assert cfg.controller.auth_type == "local"
    assert cfg.controller.private_data == ()


def test_auth_config_lists_become_tuples() -> None:
    cfg = config.from_dict({"controller": {
        "auth_type": "munge", "operators": ["alice", "%ops"], "admins": "bob",
        "private_data": ["jobs"], "pin_nodes": {"node1": "10.0.0.1"}}})
    c = cfg.controller
    assert c.operators == ("alice", "%ops")
    assert c.admins == ("bob",)
    assert c.private_data == ("jobs",)
    assert c.pin_nodes == (("node1", "10.0.0.1"),)


@pytest.mark.parametrize(("ctl", "message"), [
    ({"auth_type": "kerberos"}, "auth_type: 'kerberos' is not one of local, munge, none"),
    ({"private_data": ["nodes"]}, "private_data: unknown value 'nodes'"),
    ({"operators": [1.5]}, "operators: expected a list of names"),
    ({"tls_cert": "/x.pem"}, "tls_cert and tls_key: set both or neither"),
    ({"credential_ttl": 0}, "credential_ttl: must be a positive"),
    ({"pin_nodes": {"node1": 3}}, "pin_nodes: expected a table"),
])
def test_bad_auth_config_is_refused(ctl: dict[str, object], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.from_dict({"controller": ctl})


@pytest.mark.parametrize(("listen", "loop"), [
    ("127.0.0.1:6817", True), ("127.0.0.5:1", True), ("localhost:1", True), ("[::1]:0", True),
    ("0.0.0.0:6817", False), ("10.1.2.3:1", False), ("[::]:1", False), ("myhost:1", False),
])
def test_is_loopback(listen: str, loop: bool) -> None:
    assert is_loopback(listen) is loop


# ------------------------------------------------------------------ roles
def _auth(**ctl: object) -> Authenticator:
    return Authenticator(config.from_dict({"controller": ctl}))


def test_root_and_the_controllers_uid_are_admins() -> None:
    a = _auth()
    assert a.caller(0, 0).role == "admin"
    assert a.caller(os.getuid(), os.getgid()).admin


def test_roles_from_users_uids_and_groups() -> None:
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    assert _auth().caller(nobody.pw_uid, nobody.pw_gid).role == "user"
    assert not _auth().caller(nobody.pw_uid, nobody.pw_gid).admin
    assert _auth(operators=["nobody"]).caller(nobody.pw_uid, nobody.pw_gid).role == "operator"
    assert _auth(admins=[str(nobody.pw_uid)]).caller(nobody.pw_uid, nobody.pw_gid).role == "admin"
    by_group = _auth(operators=[f"%{group}"]).caller(nobody.pw_uid, nobody.pw_gid)
    assert by_group.role == "operator" and by_group.admin


def test_authenticate_needs_a_credential_unless_none() -> None:
    a = _auth()
    with pytest.raises(auth.AuthError, match="only accepts calls from its own host"):
        asyncio.run(a.authenticate(METHOD, {"x-gsched-uid": "0"}))
    m = _auth(auth_type="munge")
    with pytest.raises(auth.AuthError, match="requires a MUNGE credential"):
        asyncio.run(m.authenticate(METHOD, {"x-gsched-uid": "0"}))
    n = _auth(auth_type="none")
    caller = asyncio.run(n.authenticate(METHOD, {"x-gsched-uid": "65534", "x-gsched-gid": "7",
                                                 "x-gsched-user": "nobody"}))
    assert (caller.uid, caller.gid, caller.user, caller.admin) == (65534, 7, "nobody", False)


def test_authenticate_local_token() -> None:
    a = _auth()
    token = a.local.issue(65534, 65534, METHOD)
    caller = asyncio.run(a.authenticate(METHOD, {auth.CRED_KEY: token}))
    assert (caller.uid, caller.user, caller.role) == (65534, "nobody", "user")
    with pytest.raises(auth.AuthError, match="replayed"):
        asyncio.run(a.authenticate(METHOD, {auth.CRED_KEY: token}))


def test_munge_credential_refused_when_not_configured() -> None:
    with pytest.raises(auth.AuthError, match="does not use MUNGE"):
        asyncio.run(_auth().authenticate(METHOD, {auth.CRED_KEY: "munge:MUNGE:abc:"}))


# ------------------------------------------------------------------ node pinning
def test_peer_host() -> None:
    from gsched.controller.pinning import peer_host

    assert peer_host("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:5000") == "::1"
    assert peer_host("ipv6:%5B::1%5D:5000") == "::1"


def test_pinned_names_register_only_from_their_host_or_with_consent() -> None:
    from gsched.controller.pinning import NodePins

    pins = NodePins((("node1", "10.0.0.1"), ("node2", "localhost")))
    assert pins.check("node1", "ipv4:10.0.0.1:4000") == ""
    assert pins.check("node2", "ipv4:127.0.0.1:4000") == ""
    assert pins.check("node9", "ipv4:10.9.9.9:1") == ""  # not pinned
    why = pins.check("node1", "ipv4:10.0.0.2:4000")
    assert why == ("node node1 is pinned to 10.0.0.1 by the configuration; 10.0.0.2 needs an "
                   "admin's consent (gctl update nodename=node1 allowhost=10.0.0.2)")
    pins.allow("node1", "10.0.0.2")
    assert pins.check("node1", "ipv4:10.0.0.2:4000") == ""
    assert pins.check("node1", "ipv4:10.0.0.3:4000") != ""
    pins.allow("node1", "-")
    assert pins.check("node1", "ipv4:10.0.0.2:4000") != ""
    with pytest.raises(ValueError):
        pins.allow("node1", "no-such-host.invalid")


# ------------------------------------------------------------------ the controller's proof
def test_controller_proof_answers_one_hello_only() -> None:
    from gsched.common import clusterkey

    key, other = b"k" * 32, b"o" * 32
    hello = clusterkey.make_proof(key, "node1", 1000.0)
    answer = clusterkey.controller_proof(key, "node1", hello)
    assert clusterkey.verify_controller(key, "node1", hello, answer)
    assert not clusterkey.verify_controller(key, "node1", hello, "")
    assert not clusterkey.verify_controller(key, "node2", hello, answer)
    later = clusterkey.make_proof(key, "node1", 1001.0)
    assert not clusterkey.verify_controller(key, "node1", later, answer)  # no replay
    assert not clusterkey.verify_controller(
        key, "node1", hello, clusterkey.controller_proof(other, "node1", hello))
