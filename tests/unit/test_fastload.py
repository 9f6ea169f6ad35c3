"""gsub's module bundle (gsched/cli/fastload.py), each case in a fresh interpreter."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from gsched.cli import fastload
ok = fastload.load()
import gsched.common.config  # a module outside the bundle still imports normally
from gsched.cli.gsub import main
print(json.dumps({
    "ok": ok,
    "from_bundle": [n for n in fastload.GSUB if n in sys.modules and sys.modules[n].__spec__ is None],
    "main": main.__module__,
}))
"""


def probe(cache: Path | None, home: Path | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "HOME")}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    if home is not None:
        env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def bundle(cache: Path) -> Path:
    (found,) = (cache / "gsched").glob("gsub-modules-*.marshal")
    return found


def test_first_call_builds_the_bundle_and_later_calls_read_it(tmp_path: Path) -> None:
    from gsched.cli import fastload

    first = probe(tmp_path)
    # every module came from the bundle, in an order in which none was imported early
    assert first == {"ok": True, "from_bundle": list(fastload.GSUB),
                     "main": "gsched.cli.gsub"}
    path = bundle(tmp_path)
    stamp = path.stat().st_mtime_ns
    assert probe(tmp_path) == first
    assert path.stat().st_mtime_ns == stamp  # read, not rebuilt


def test_a_stale_or_corrupt_bundle_is_rebuilt(tmp_path: Path) -> None:
    probe(tmp_path)
    path = bundle(tmp_path)
    key, codes = marshal.loads(path.read_bytes())
    # written for other sources (another version, an edited file): its key differs
    path.write_bytes(marshal.dumps(((key[0], key[1], key[2], ()), codes)))
    assert probe(tmp_path)["ok"] is True
    assert marshal.loads(path.read_bytes())[0] == key  # rebuilt for the sources as they are
    path.write_bytes(b"\x00garbage")
    assert probe(tmp_path)["ok"] is True
    assert marshal.loads(path.read_bytes())[0] == key


def test_without_a_usable_cache_the_ordinary_imports_serve(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for result in (probe(not_a_dir), probe(None)):
        assert result == {"ok": False, "from_bundle": [], "main": "gsched.cli.gsub"}
    assert probe(None, home=tmp_path)["ok"] is True  # $HOME/.cache when XDG is unset
    assert list((tmp_path / ".cache" / "gsched").glob("gsub-modules-*.marshal"))


def test_a_bundle_others_could_have_written_is_never_run(tmp_path: Path) -> None:
    probe(tmp_path)
    path = bundle(tmp_path)
    path.chmod(0o666)  # writable by anyone: not trusted, rebuilt (as 0600)
    assert probe(tmp_path)["ok"] is True
    assert path.stat().st_mode & 0o777 == 0o600
    (tmp_path / "gsched").chmod(0o777)  # a shared cache directory: not used at all
    path.write_bytes(b"planted")
    assert probe(tmp_path) == {"ok": False, "from_bundle": [], "main": "gsched.cli.gsub"}
    assert path.read_bytes() == b"planted"  # neither run nor replaced
