"""ginfo (sinfo): option parsing, views and main's errors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gsched.cli import client as client_mod
from gsched.cli import formats, ginfo
from gsched.protos import gsched_pb2 as pb

NOW = time.mktime((2026, 11, 25, 18, 37, 50, 0, 0, -1))


def parse(*argv: str, **env: str) -> Any:
    return ginfo.parse_args(list(argv), env=env)


def reply() -> pb.ListNodesReply:
    def node(name: str, state: str, **kw: Any) -> pb.NodeInfo:
        return pb.NodeInfo(name=name, state=state, cpus=16, mem_mb=64000, partitions=["main"], **kw)

    nodes = [
        node("n1", "MIXED", cpus_alloc=10, connected=True),
        node("n2", "IDLE", connected=True),
        node("n3", "DOWN", reason="agent lost", reason_user="root", reason_time=NOW - 60),
    ]
    part = pb.PartitionInfo(
        name="main", is_default=True, state="UP", nodes=["n1", "n2", "n3"], max_time=-1
    )
    return pb.ListNodesReply(nodes=nodes, partitions=[part], now=NOW)


def test_views_pick_slurm_formats() -> None:
    assert (parse().mode, parse().fmt) == (
        "partition",
        formats.parse_format(formats.SINFO_DEFAULT_FORMAT),
    )
    assert (
        parse("-l").fmt == formats.parse_format(formats.SINFO_LONG_FORMAT) and parse("-l").date_line
    )
    assert (parse("-N").mode, parse("-N").fmt) == (
        "node",
        formats.parse_format(formats.SINFO_NODE_FORMAT),
    )
    assert parse("-N", "-l").fmt == formats.parse_format(formats.SINFO_NODE_LONG_FORMAT)
    assert parse("-s").mode == "summarize"
    r = parse("-R")
    assert (r.mode, r.state_set) == ("reasons", frozenset({"DOWN", "DRAINED", "DRAINING"}))
    assert parse("-N", "-o", "%N %t").mode == "node"
    assert parse(SINFO_FORMAT="%P").fmt == formats.parse_format("%P")


def test_filters() -> None:
    o = parse("-p", "a,b", "-n", "n[1-3]", "-t", "idle,drain", "-r")
    assert o.partitions == ["a", "b"]
    assert o.node_names == ["n1", "n2", "n3"]
    assert list(ginfo.build_request(o).names) == ["n1", "n2", "n3"]
    assert o.state_set == {"IDLE", "DRAINED", "DRAINING"}
    assert o.responding_only is True and parse("-d").responding_only is False
    with pytest.raises(formats.OptionError, match="invalid entry for --nodes"):
        parse("-n", "n[1-")
    with pytest.raises(formats.OptionError, match='Bad state string: "zz"'):
        parse("-t", "zz")


def test_render() -> None:
    assert ginfo.render(reply(), parse()) == (
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n"
        "main*        up   infinite      1  down* n3\n"  # NOT_RESPONDING sorts first, as in SLURM
        "main*        up   infinite      1    mix n1\n"
        "main*        up   infinite      1   idle n2\n"
    )
    assert (
        ginfo.render(reply(), parse("-R", "-h"))
        == "agent lost           root      "
        + time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(NOW - 60))
        + " n3\n"
    )
    assert ginfo.render(reply(), parse("-r", "-h", "-o", "%N")) == "n[1-2]\n"
    assert ginfo.render(reply(), parse("-d", "-h", "-N", "-o", "%N %T")) == "n3 down*\n"
    assert ginfo.render(reply(), parse("-N", "-l")).splitlines()[0] == "Wed Nov 25 18:37:50 2026"
    assert '"name": "n3"' in ginfo.render(reply(), parse("--json"))


def test_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[Any] = []

    class Fake:
        cluster_name = "gsched"

        def call(self, method: str, request: Any) -> Any:
            calls.append((method, request))
            return reply()

    def finish(code: int = 0) -> None:
        raise SystemExit(code)

    monkeypatch.delenv("GSCHED_PROG", raising=False)
    monkeypatch.setattr(client_mod, "finish", finish)
    monkeypatch.setattr(client_mod, "connect", lambda prog: Fake())
    with pytest.raises(SystemExit) as exc:
        ginfo.main(["-h", "-o", "%N", "-p", "main"])
    assert exc.value.code == 0 and capsys.readouterr().out == "n[1-3]\n"
    assert calls[0][0] == "ListNodes"
    with pytest.raises(SystemExit) as exc:
        ginfo.main(["-t", "zz"])
    assert exc.value.code == 1
    assert capsys.readouterr().err == (
        'ginfo: error: Bad state string: "zz"\n'
        "ginfo: error: valid states: unk,down,idle,alloc,mix,drain,drained,drng,comp\n"
    )
