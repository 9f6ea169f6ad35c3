from __future__ import annotations

import pytest

from gsched.common.patterns import NO_ARRAY_TASK_ID, default_output, expand_path_pattern


def expand(pattern: str, **kwargs: object) -> str:
    args: dict[str, object] = {
        "job_id": 42,
        "name": "train",
        "user": "alice",
        "workdir": "/work/dir",
        "node": "n1",
    }
    args.update(kwargs)
    return expand_path_pattern(pattern, **args)  # type: ignore[arg-type]


def test_default_output() -> None:
    assert default_output() == "slurm-%j.out"
    assert default_output(None) == "slurm-%j.out"
    assert default_output(3) == "slurm-%A_%a.out"
    assert default_output(0) == "slurm-%A_%a.out"


def test_default_output_pattern_expands_like_slurm() -> None:
    # sbatch_default_outfile.txt: job 6 wrote slurm-6.out in its working directory
    out = expand_path_pattern(
        default_output(), job_id=6, name="wrap", user="root", workdir="/var/tmp/refwork"
    )
    assert out == "/var/tmp/refwork/slurm-6.out"
    array = expand(default_output(2), job_id=19, array_job_id=16, array_task_id=2)
    assert array == "/work/dir/slurm-16_2.out"


@pytest.mark.parametrize(
    ("pattern", "result"),
    [
        ("out.txt", "/work/dir/out.txt"),
        ("/abs/out.txt", "/abs/out.txt"),
        ("/dev/null", "/dev/null"),
        ("logs/%j.out", "/work/dir/logs/42.out"),
        ("%x-%j.out", "/work/dir/train-42.out"),
        ("%u/%x.log", "/work/dir/alice/train.log"),
        ("%N.out", "/work/dir/n1.out"),
        ("job%J.out", "/work/dir/job42.batch.out"),
        ("step%s", "/work/dir/stepbatch"),
        ("%n-%t", "/work/dir/0-0"),
        ("100%%", "/work/dir/100%"),
        ("%%j", "/work/dir/%j"),
        ("%%%j", "/work/dir/%42"),
        ("%4j.out", "/work/dir/0042.out"),
        ("%2j", "/work/dir/42"),
        ("%012j", "/work/dir/0000000042"),  # width capped at 10
        ("%5x", "/work/dir/train"),  # width ignored for text
        ("%4J", "/work/dir/0042.batch"),
        ("%q%j", "/work/dir/%q42"),  # unknown letters stay
        ("end%", "/work/dir/end%"),
        ("end%3", "/work/dir/end%3"),
        ("/o/%A_%a", f"/o/42_{NO_ARRAY_TASK_ID}"),
        ("/o/%A_%a", "/o/42_4294967294"),
    ],
)
def test_expand_path_pattern(pattern: str, result: str) -> None:
    assert expand(pattern) == result


def test_array_fields() -> None:
    assert expand("/o/%A_%a.out", job_id=17, array_job_id=16, array_task_id=0) == "/o/16_0.out"
    assert expand("/o/%j_%3a", job_id=17, array_job_id=16, array_task_id=5) == "/o/17_005"


def test_backslash_disables_substitution() -> None:
    assert expand("/o/a\\b%j") == "/o/ab%j"
    assert expand("/o/a\\\\b%j") == "/o/a\\b%j"
    assert expand("rel\\%x") == "/work/dir/rel%x"


def test_relative_to_workdir_without_trailing_slash_issue() -> None:
    assert expand("o", workdir="/w/") == "/w/o"
    assert expand("sub/../o", workdir="/w") == "/w/sub/../o"


def test_relative_pattern_starting_with_a_substitution() -> None:
    # Relative or not is decided on the pattern, as slurmstepd does.
    assert expand("%x.out", name="/etc/x") == "/work/dir//etc/x.out"
