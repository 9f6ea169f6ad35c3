"""The CLI's configuration cache: fresh entries answer, anything changed or broken does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gsched.common import confcache, config


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GSCHED_CONTROLLER", raising=False)
    path = tmp_path / "gsched.toml"
    path.write_text(f'state_dir = "{tmp_path}"\n[controller]\naddress = "127.0.0.1:7001"\n')
    return path


def test_no_entry_until_a_valid_load(conf: Path) -> None:
    assert confcache.lookup(str(conf)) is None
    cfg = config.load(str(conf))
    facts = confcache.lookup(str(conf))
    assert facts == {"socket": cfg.socket_path, "address": "127.0.0.1:7001",
                     "cluster_name": cfg.cluster_name, "auth_type": cfg.controller.auth_type,
                     "munge_socket": cfg.controller.munge_socket,
                     "tls_ca": cfg.controller.tls_ca}
    assert facts["socket"] == str(conf.parent / "controller.sock")


def test_changed_file_is_not_fresh(conf: Path) -> None:
    config.load(str(conf))
    conf.write_text(conf.read_text().replace("7001", "7002") + '[agent]\nname = "x"\n')
    assert confcache.lookup(str(conf)) is None
    assert config.load(str(conf)).controller.address == "127.0.0.1:7002"
    assert confcache.lookup(str(conf))["address"] == "127.0.0.1:7002"


def test_same_size_rewrite_with_new_mtime_is_not_fresh(conf: Path) -> None:
    config.load(str(conf))
    st = conf.stat()
    conf.write_text(conf.read_text().replace("7001", "7009"))
    os.utime(conf, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert confcache.lookup(str(conf)) is None


def test_invalid_config_is_never_cached(conf: Path) -> None:
    conf.write_text("[controller]\nbogus = 1\n")
    with pytest.raises(config.ConfigError):
        config.load(str(conf))
    assert confcache.lookup(str(conf)) is None


def test_corrupt_entry_is_ignored_and_replaced(conf: Path, tmp_path: Path) -> None:
    config.load(str(conf))
    (entry,) = (tmp_path / "cache" / "gsched").iterdir()
    entry.write_bytes(b"\x00garbage")
    assert confcache.lookup(str(conf)) is None
    config.load(str(conf))
    assert confcache.lookup(str(conf)) is not None


def test_environment_override_is_not_cached(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSCHED_CONTROLLER", "127.0.0.1:9999")
    config.load(str(conf))
    assert confcache.lookup(str(conf)) is None


def test_no_home_means_no_cache(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)
    config.load(str(conf))
    assert confcache.lookup(str(conf)) is None


def test_connect_builds_its_client_from_the_cache(conf: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gsched.cli import client

    monkeypatch.setenv("GSCHED_CONF", str(conf))
    monkeypatch.delenv("GSCHED_CONTROLLER", raising=False)
    loads: list[str] = []
    real = config.load

    def counting(path: str | None = None) -> config.Config:
        loads.append(path or "")
        return real(path)

    monkeypatch.setattr(config, "load", counting)
    first = client.connect("gqueue")
    assert len(loads) == 1  # no entry yet: the file is parsed (and the entry written)
    second = client.connect("gqueue")
    assert len(loads) == 1  # from the entry
    for c in (first, second):
        assert (c.address, c.socket_path, c.auth_type) == (
            "127.0.0.1:7001", str(conf.parent / "controller.sock"), real(str(conf)).controller.auth_type)
    monkeypatch.setenv("GSCHED_CONTROLLER", "127.0.0.1:7777")  # an override: never cached
    assert client.connect("gqueue").address == "127.0.0.1:7777" and len(loads) == 2
