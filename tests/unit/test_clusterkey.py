"""Agents prove they hold the cluster key; the key itself never travels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsched.common import clusterkey


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = str(tmp_path / "cluster.key")
    clusterkey.write_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    key = clusterkey.read_key(path)
    assert key is not None and len(key) == 32
    with pytest.raises(FileExistsError):
        clusterkey.write_key(path)
    assert clusterkey.read_key(str(tmp_path / "missing")) is None


def test_proof_verifies_only_for_its_node_key_and_time() -> None:
    key, other = b"k" * 32, b"x" * 32
    proof = clusterkey.make_proof(key, "node1", 1000.0)
    assert key.hex() not in proof
    assert clusterkey.verify(key, "node1", proof, now=1001.0) == ""
    assert clusterkey.verify(other, "node1", proof, now=1001.0) == "wrong cluster key"
    assert clusterkey.verify(key, "node2", proof, now=1001.0) == "wrong cluster key"
    assert "too old" in clusterkey.verify(key, "node1", proof, now=1000.0 + 301)
    assert clusterkey.verify(key, "node1", "garbage", now=1000.0) == "malformed cluster key proof"


def test_replayed_proof_is_refused() -> None:
    key = b"k" * 32
    guard = clusterkey.ReplayGuard()
    proof = clusterkey.make_proof(key, "node1", 1000.0)
    assert clusterkey.verify(key, "node1", proof, now=1000.5, guard=guard) == ""
    assert clusterkey.verify(key, "node1", proof, now=1001.0, guard=guard) == "cluster key proof replayed"
