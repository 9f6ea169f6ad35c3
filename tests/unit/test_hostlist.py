from __future__ import annotations

import pytest

from gsched.common.hostlist import HostlistError, compress, expand, is_in

# ---------------------------------------------------------------- expand


@pytest.mark.parametrize(
    ("expr", "hosts"),
    [
        ("n[1-4]", ["n1", "n2", "n3", "n4"]),  # scontrol show hostnames 'n[1-4]'
        ("node[01-03,7],gpu5", ["node01", "node02", "node03", "node7", "gpu5"]),
        ("n1", ["n1"]),
        ("login", ["login"]),
        ("n[5]", ["n5"]),
        ("n[008-011]", ["n008", "n009", "n010", "n011"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("r[1-2]n[3,5]-ib", ["r1n3-ib", "r1n5-ib", "r2n3-ib", "r2n5-ib"]),
        ("n[1-2]-ib,n3", ["n1-ib", "n2-ib", "n3"]),
        ("[1-3]", ["1", "2", "3"]),
        ("a,b c\td", ["a", "b", "c", "d"]),
        ("a,,b,", ["a", "b"]),
        ("", []),
        ("n1,n1", ["n1", "n1"]),
        ("n[3,1-2]", ["n3", "n1", "n2"]),
    ],
)
def test_expand(expr: str, hosts: list[str]) -> None:
    assert expand(expr) == hosts


@pytest.mark.parametrize(
    "expr",
    [
        "n[1-3",
        "n1-3]",
        "n[1-[2]]",
        "n[]",
        "n[3-1]",
        "n[a-b]",
        "n[1-]",
        "n[-1]",
        "n[1,,2]",
        "n[1-2-3]",
        "n[ 1]",
        "n[0-70000]",
        "a[1-1024]b[1-1024]c[1-2]",
    ],
)
def test_expand_rejects_malformed(expr: str) -> None:
    with pytest.raises(HostlistError):
        expand(expr)


def test_hostlist_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        expand("n[1")


# ---------------------------------------------------------------- compress


@pytest.mark.parametrize(
    ("names", "expr"),
    [
        (["n1", "n2", "n3", "n4"], "n[1-4]"),  # scontrol show hostlist n1,n2,n3,n4
        (["node1", "node2", "node3", "node5"], "node[1-3,5]"),
        (["n1"], "n1"),
        (["login"], "login"),
        (["n3", "n1", "n2"], "n[3,1-2]"),
        (["n2", "n1"], "n[2,1]"),
        (["n01", "n02", "n03", "n7"], "n[01-03,7]"),
        (["n01", "n1"], "n[01,1]"),
        (["n9", "n10"], "n[9-10]"),
        (["n099", "n100"], "n[099-100]"),
        (["n9", "n010"], "n[9,010]"),
        (["a1", "b1", "a2"], "a1,b1,a2"),
        (["a1", "a2", "b1", "b2"], "a[1-2],b[1-2]"),
        (["login", "n1", "n2"], "login,n[1-2]"),
        (["n1", "login", "n2"], "n1,login,n2"),
        (["r1n1", "r1n2", "r2n1", "r2n2"], "r1n[1-2],r2n[1-2]"),
        (["n1", "n1"], "n[1,1]"),
        (["n1-ib", "n2-ib"], "n1-ib,n2-ib"),
        (["7", "8"], "[7-8]"),
        ([], ""),
    ],
)
def test_compress(names: list[str], expr: str) -> None:
    assert compress(names) == expr


def test_compress_accepts_any_iterable() -> None:
    assert compress(f"n{i}" for i in range(1, 4)) == "n[1-3]"


def test_compress_sorted_drops_duplicates() -> None:
    assert compress(["n3", "n1", "n2", "n1", "m1"], sort=True) == "m1,n[1-3]"
    assert compress(["n10", "n9", "n2"], sort=True) == "n[2,9-10]"


@pytest.mark.parametrize("bad", ["", "n[1]", "a,b", "a b"])
def test_compress_rejects_non_names(bad: str) -> None:
    with pytest.raises(HostlistError):
        compress([bad])


@pytest.mark.parametrize(
    "expr", ["n[1-4]", "node[01-03,7],gpu5", "n[3,1-2]", "login,n[1-2]", "n[01,1]"]
)
def test_round_trip(expr: str) -> None:
    assert compress(expand(expr)) == expr


# ---------------------------------------------------------------- is_in


def test_is_in() -> None:
    assert is_in("node02", "node[01-03]")
    assert not is_in("node2", "node[01-03]")
    assert is_in("gpu5", "node[01-03],gpu5")
    with pytest.raises(HostlistError):
        is_in("n1", "n[1")
