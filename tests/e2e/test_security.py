"""Identity, authorization and the agents' channel, with real processes and real users.

Each test starts its own controller and agent from a config it writes
(tests/e2e/secutil.py) and acts as test users created with useradd (setpriv).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from gsched.protos import gsched_pb2 as pb
from gsched.protos import gsched_pb2_grpc as rpc

from .secutil import (
    BIN,
    OPERATOR,
    OPS_GROUP,
    ensure_user,
    free_port,
    need_root_users,
    sec_cluster,
    spawn,
    write_config,
)

pytestmark = pytest.mark.e2e

USER = "nobody"


def _raw_list(address: str, metadata: list[tuple[str, str]]) -> grpc.RpcError | None:
    with grpc.insecure_channel(address) as ch:
        try:
            rpc.JobServiceStub(ch).ListJobs(pb.ListJobsRequest(), metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc
    return None


# ------------------------------------------------------------------ identity
def test_grpc_calls_without_a_verified_credential_are_refused() -> None:
    with sec_cluster(agents=()) as c:
        for md in ([], [("x-gsched-uid", "0"), ("x-gsched-user", "root")],
                   [("x-gsched-cred", "local:0:0:9999999999:00:00")],
                   [("x-gsched-cred", "munge:MUNGE:AAAA:")]):
            err = _raw_list(c.address, md)
            assert err is not None, f"{md} was accepted"
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (md, err.details())
        assert "claimed" not in c.log()
        log = c.log()
        assert "refused /gsched.v1.JobService/ListJobs from ipv4:127.0.0.1" in log
        assert "only accepts calls from its own host" in log


def test_socket_credential_is_bound_to_one_call_and_used_once() -> None:
    from gsched.cli.client import from_config
    from gsched.common import config

    with sec_cluster(agents=()) as c:
        client = from_config(config.load(str(c.conf)))
        md = client.metadata_for("ListJobs")
        assert _raw_list(c.address, md) is None
        err = _raw_list(c.address, md)
        assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "replayed local credential" in err.details()
        err = _raw_list(c.address, client.metadata_for("Cancel"))  # made for another call
        assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_cli_over_grpc_acts_as_the_real_user() -> None:
    need_root_users()
    with sec_cluster() as c:
        job = c.submit("-H", "--wrap", "true", user=USER, GSCHED_TRANSPORT="grpc")
        r = c.run("gqueue", "-h", "-j", str(job), "-o", "%u %T", GSCHED_TRANSPORT="grpc")
        assert r.out.split() == [USER, "PENDING"], r
        # the same user, through the socket, may act on it
        assert c.run("gcancel", str(job), user=USER).rc == 0


def test_user_without_socket_access_gets_a_clear_error() -> None:
    need_root_users()
    with sec_cluster(agents=()) as c:
        (c.state / "controller.sock").chmod(0o600)  # as if on another host
        r = c.run("gqueue", user=USER)
        assert r.rc == 1
        assert "cannot prove who you are" in r.err and "auth_type" in r.err, r.err


# ------------------------------------------------------------------ authorization
def test_users_act_only_on_their_own_jobs_operators_on_all() -> None:
    need_root_users()
    ensure_user(OPERATOR, OPS_GROUP)
    with sec_cluster(controller=f'operators = ["%{OPS_GROUP}"]') as c:
        mine = c.submit("-H", "--wrap", "true")  # root's
        theirs = c.submit("-H", "--wrap", "true", user=USER)
        for transport in ("socket", "grpc"):
            env = {"GSCHED_TRANSPORT": transport}
            for cmd in (["gcancel", str(mine)], ["gctl", "release", str(mine)],
                        ["gctl", "hold", str(mine)], ["gctl", "requeue", str(mine)],
                        ["gctl", "update", f"jobid={mine}", "timelimit=5"],
                        ["gctl", "update", "nodename=node1", "state=drain", "reason=x"]):
                r = c.run(*cmd, user=USER, **env)
                assert r.rc == 1, (transport, cmd, r)
                assert "Access/permission denied" in r.err, (transport, cmd, r.err)
        show = c.run("gctl", "show", "job", str(mine)).out
        assert "JobState=PENDING" in show and "JobHeldUser" in show and "TimeLimit=UNLIMITED" in show
        assert "DRAIN" not in c.run("ginfo", "-h", "-o", "%T").out.upper()
        log = c.log()
        assert f"denied Cancel job {mine} to uid 65534 ({USER})" in log
        assert f"denied update_node to uid 65534 ({USER})" in log.replace("UpdateNode", "update_node")
        # the owner may; an operator (by group) may act on anyone's job and on nodes
        assert c.run("gctl", "update", f"jobid={theirs}", "timelimit=5", user=USER).rc == 0
        r = c.run("gcancel", str(theirs), user=OPERATOR, GSCHED_TRANSPORT="grpc")
        assert r.rc == 0, r.err
        r = c.run("gctl", "update", "nodename=node1", "state=drain", "reason=maint",
                  user=OPERATOR)
        assert r.rc == 0, r.err
        assert "drain" in c.run("ginfo", "-h", "-o", "%T").out
        assert c.run("gcancel", str(mine)).rc == 0  # root always


def test_private_data_hides_other_users_jobs() -> None:
    need_root_users()
    ensure_user(OPERATOR, OPS_GROUP)
    with sec_cluster(controller=f'operators = ["%{OPS_GROUP}"]\nprivate_data = ["jobs"]') as c:
        rootjob = c.submit("-H", "-J", "rootjob", "--wrap", "true")
        userjob = c.submit("-H", "-J", "userjob", "--wrap", "true", user=USER)
        for transport in ("socket", "grpc"):
            env = {"GSCHED_TRANSPORT": transport}
            r = c.run("gqueue", "-h", "-o", "%i", user=USER, **env)
            assert r.out.split() == [str(userjob)], (transport, r)
            r = c.run("gqueue", "-h", "-o", "%i", "-j", str(rootjob), user=USER, **env)
            assert str(rootjob) not in r.out
            r = c.run("gctl", "show", "job", str(rootjob), user=USER, **env)
            assert r.rc == 1 and "Invalid job id specified" in r.err, r
            r = c.run("gacct", "-n", "-X", "-a", "-o", "JobID", user=USER, **env)
            assert r.out.split() == [str(userjob)], (transport, r)
            r = c.run("gqueue", "-h", "-o", "%i", user=OPERATOR, **env)
            assert sorted(r.out.split()) == sorted([str(rootjob), str(userjob)]), r
        assert sorted(c.run("gqueue", "-h", "-o", "%i").out.split()) == sorted(
            [str(rootjob), str(userjob)])


# ------------------------------------------------------------------ auth_type = none
def test_auth_none_refuses_a_non_loopback_listen(tmp_path: Path) -> None:
    conf = write_config(tmp_path, free_port(),
                        controller='auth_type = "none"\nlisten = "0.0.0.0:0"')
    p = subprocess.run([str(BIN / "gsched"), "controller", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert 'auth_type = "none"' in p.stderr and "refuses to listen on 0.0.0.0:0" in p.stderr


def test_controller_reachable_from_the_network_needs_a_cluster_key(tmp_path: Path) -> None:
    conf = write_config(tmp_path, free_port(), controller='listen = "0.0.0.0:0"')
    p = subprocess.run([str(BIN / "gsched"), "controller", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "no cluster key at" in p.stderr and "run `gsched keygen`" in p.stderr, p.stderr


def test_auth_none_warns_in_the_log_and_in_ginfo() -> None:
    with sec_cluster(controller='auth_type = "none"') as c:
        assert '!!! auth_type = "none"' in c.log()
        r = c.run("ginfo")
        assert r.rc == 0 and "authentication is OFF" in r.err, r
        assert "PARTITION" in r.out  # stdout stays sinfo-shaped
        assert "AuthType                = none" in c.run("gctl", "show", "config").out
        # claimed identities are believed: that is what "none" means
        assert _raw_list(c.address, [("x-gsched-uid", "0")]) is None
    with sec_cluster(agents=()) as c:
        r = c.run("ginfo")
        assert r.rc == 0 and "authentication" not in r.err
        assert "AuthType                = local" in c.run("gctl", "show", "config").out


def test_agent_needs_no_user_credential_but_the_cluster_key() -> None:
    with sec_cluster() as c:  # node1 registered with the key and no user credential
        job = c.submit("--wrap", "true")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "COMPLETED" in c.run("gqueue", "-h", "-t", "all", "-j", str(job), "-o", "%T").out:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(c.log())
        keyless = c.conf.with_name("keyless.toml")
        keyless.write_text(c.conf.read_text().replace(
            "[controller]\n", f'[controller]\nkey_file = "{c.root}/missing.key"\n'))
        p = spawn(c.state, "intruder", ["agent", "--config", str(keyless), "--name", "node9"],
                  c.env())
        c.procs["intruder"] = p
        deadline = time.monotonic() + 20
        while "node node9" not in c.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "node node9 from" in c.log() and "requires agents to hold the cluster key" in c.log()
        assert "node9" not in c.run("ginfo", "-h", "-N", "-o", "%N").out
        assert os.path.exists(c.state / "cluster.key")


# ------------------------------------------------------------------ MUNGE
def test_munge_cluster_identifies_users_over_grpc(start_munged: Any) -> None:
    need_root_users()
    with start_munged() as m, sec_cluster(
            controller=f'auth_type = "munge"\nmunge_socket = "{m.socket}"') as c:
        assert "verifying credentials with libmunge" in c.log()
        grpc_env = {"GSCHED_TRANSPORT": "grpc"}
        mine = c.submit("-H", "--wrap", "true", **grpc_env)
        theirs = c.submit("-H", "--wrap", "true", user=USER, **grpc_env)
        r = c.run("gqueue", "-h", "-o", "%i %u", "-j", f"{mine},{theirs}", **grpc_env)
        assert sorted(r.out.splitlines()) == sorted([f"{mine} root", f"{theirs} {USER}"]), r
        r = c.run("gcancel", str(mine), user=USER, **grpc_env)
        assert r.rc == 1 and "Access/permission denied" in r.err, r
        assert c.run("gcancel", str(theirs), user=USER, **grpc_env).rc == 0
        err = _raw_list(c.address, [("x-gsched-uid", "0")])
        assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "requires a MUNGE credential" in err.details()
        # a credential for this call, replayed
        from gsched.cli.client import from_config
        from gsched.common import config

        md = from_config(config.load(str(c.conf))).metadata_for("ListJobs")
        assert _raw_list(c.address, md) is None
        err = _raw_list(c.address, md)
        assert err is not None and "replayed MUNGE credential" in err.details()
        # the socket keeps working without MUNGE (the kernel says who calls)
        assert c.run("gqueue", "-h", "-j", str(mine), "-o", "%u").out.strip() == "root"
        os.kill(m.proc_pid, 15)  # munged gone: the CLI says so
        deadline = time.monotonic() + 10
        while os.path.exists(m.socket) and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.run("gqueue", **grpc_env)
        assert r.rc == 1 and "cannot get a MUNGE credential" in r.err, r


def test_controller_refuses_to_start_when_munged_is_missing(tmp_path: Path) -> None:
    conf = write_config(tmp_path, free_port(), controller=(
        f'auth_type = "munge"\nmunge_socket = "{tmp_path}/no-munged.socket"'))
    p = subprocess.run([str(BIN / "gsched"), "controller", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "auth_type munge: cannot use MUNGE" in p.stderr and "does not work" in p.stderr


# ------------------------------------------------------------------ TLS
def test_tls_agent_registers_and_clients_need_the_ca(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    p = subprocess.run([str(BIN / "gsched"), "certs", "--out", str(certs),
                        "--hosts", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (certs / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (certs / "127.0.0.1.key").stat().st_mode & 0o777 == 0o600
    tls = (f'tls_cert = "{certs}/127.0.0.1.pem"\ntls_key = "{certs}/127.0.0.1.key"\n'
           f'tls_ca = "{certs}/ca.pem"')
    with sec_cluster(controller=tls) as c:  # node1 registered over TLS
        assert f"(port {c.port}, TLS)" in c.log()
        grpc_env = {"GSCHED_TRANSPORT": "grpc"}
        job = c.submit("--wrap", "true", **grpc_env)
        r = c.run("gqueue", "-h", "-t", "all", "-j", str(job), "-o", "%i", **grpc_env)
        assert r.rc == 0 and r.out.strip() == str(job), r
        # a client without the CA: plaintext to a TLS port fails, with a clear line
        plain = c.conf.with_name("plain.toml")
        plain.write_text(c.conf.read_text().replace(
            f'tls_ca = "{certs}/ca.pem"', ""))
        r = c.run("gqueue", GSCHED_TRANSPORT="grpc", GSCHED_CONF=str(plain))
        assert r.rc == 1 and "unable to contact the gsched controller" in r.err, r
        assert "set tls_ca" in r.err, r
        # a client trusting another CA: the handshake fails and says why
        other = tmp_path / "other"
        subprocess.run([str(BIN / "gsched"), "certs", "--out", str(other), "--hosts", "x"],
                       check=True, capture_output=True)
        wrong = c.conf.with_name("wrong.toml")
        wrong.write_text(c.conf.read_text().replace(f'tls_ca = "{certs}/ca.pem"',
                                                    f'tls_ca = "{other}/ca.pem"'))
        r = c.run("gqueue", GSCHED_TRANSPORT="grpc", GSCHED_CONF=str(wrong))
        assert r.rc == 1 and "TLS handshake failed (is tls_ca the CA" in r.err, r
        assert r.err.count("\n") == 1, r.err  # one line, no gRPC core logging
        # an agent without the CA cannot register
        p2 = spawn(c.state, "node2", ["agent", "--config", str(plain), "--name", "node2"],
                   c.env())
        c.procs["node2"] = p2
        time.sleep(3)
        assert "node2" not in c.run("ginfo", "-h", "-N", "-o", "%N").out
        assert "node node2 registered" not in c.log()


# ------------------------------------------------------------------ node pinning
def test_pinned_node_name_needs_admin_consent_to_register_elsewhere() -> None:
    need_root_users()
    ensure_user(OPERATOR, OPS_GROUP)
    pins = ('pin_nodes = { node1 = "127.0.0.2", node2 = "127.0.0.1" }\n'
            f'operators = ["%{OPS_GROUP}"]')
    with sec_cluster(controller=pins, agents=("node2",)) as c:  # node2: from its pinned host
        c.procs["node1"] = spawn(c.state, "node1",
                                 ["agent", "--config", str(c.conf), "--name", "node1"], c.env())
        deadline = time.monotonic() + 20
        while "node node1 from" not in c.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "node node1 is pinned to 127.0.0.2 by the configuration" in c.log()
        assert "node1" not in c.run("ginfo", "-h", "-N", "-o", "%N").out
        r = c.run("gctl", "update", "nodename=node1", "allowhost=127.0.0.1", user=OPERATOR)
        assert r.rc == 1 and "Access/permission denied" in r.err, r  # admins only
        r = c.run("gctl", "update", "nodename=node1", "allowhost=127.0.0.1")
        assert r.rc == 0, r
        assert "admin uid 0 (root) allows registration from 127.0.0.1" in c.log()
        deadline = time.monotonic() + 40  # the agent retries with backoff
        while time.monotonic() < deadline:
            if "node1" in c.run("ginfo", "-h", "-N", "-o", "%N").out:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(c.log())


def test_database_is_private_to_the_controller() -> None:
    need_root_users()
    with sec_cluster(agents=()) as c:
        c.submit("-H", "--wrap", "echo secret-token")
        for suffix in ("", "-wal"):
            db = c.state / f"gsched.db{suffix}"
            assert db.exists()
            assert db.stat().st_mode & 0o077 == 0, oct(db.stat().st_mode)
        r = c.run("gqueue", "-h", "-o", "%i", user=USER)
        assert r.rc == 0  # users still see the queue, through the controller


def test_gsched_up_writes_the_auth_type(tmp_path: Path) -> None:
    from .conftest import start_cluster, stop_cluster

    c = start_cluster(tmp_path, agents=1, gpus=1, extra=("--auth-type", "none"))
    try:
        assert 'auth_type = "none"' in (c.state / "gsched.toml").read_text()
        r = c.run("ginfo")
        assert r.rc == 0 and "authentication is OFF" in r.err
    finally:
        stop_cluster(c)
    r = subprocess.run([str(BIN / "gsched"), "up", "--auth-type", "munge"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Invalid value for '--auth-type'" in r.stderr


def test_agent_takes_no_orders_from_a_controller_without_the_key(tmp_path: Path) -> None:
    """An impostor at the controller's address (here: one without the key) gets nothing run."""
    with sec_cluster(controller=f'key_file = "{tmp_path}/none.key"', agents=(),
                     keygen=False) as c:
        # the agent's copy of the config names a real key the impostor does not hold
        key = tmp_path / "agent.key"
        subprocess.run([str(BIN / "gsched"), "keygen", "--out", str(key)], check=True,
                       capture_output=True)
        agent_conf = c.conf.with_name("agent.toml")
        agent_conf.write_text(c.conf.read_text().replace(f"{tmp_path}/none.key", str(key)))
        c.procs["node1"] = spawn(c.state, "node1", ["agent", "--config", str(agent_conf),
                                                    "--name", "node1"], c.env())
        job = c.submit("--wrap", f"touch {tmp_path}/ran")
        deadline = time.monotonic() + 45
        while "did not prove the cluster key" not in c.log("node1"):
            assert time.monotonic() < deadline, c.log("node1")
            time.sleep(0.2)
        time.sleep(2)
        assert "registered with controller" not in c.log("node1")
        assert not (tmp_path / "ran").exists()
        assert "any agent that reaches the controller may register" in c.log()
        assert job > 0
