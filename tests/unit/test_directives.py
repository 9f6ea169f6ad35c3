from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from gsched.cli import directives
from gsched.cli.directives import DirectiveError, DirectiveExit, Submission, parse_submission
from gsched.protos import gsched_pb2

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/alice", "USER": "alice"}
SCRIPT = "#!/bin/bash\necho hello\n"


def submit(
    tmp_path: Path,
    args: list[str],
    script: str | None = SCRIPT,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    prog: str = "gsub",
) -> Submission:
    if script is not None:
        (tmp_path / "job.sh").write_text(script)
    return parse_submission(
        args,
        ENV if env is None else env,
        str(tmp_path),
        io.BytesIO(stdin) if stdin is not None else None,
        prog,
    )


def failure(tmp_path: Path, args: list[str], **kwargs: Any) -> DirectiveError:
    with pytest.raises(DirectiveError) as info:
        submit(tmp_path, args, **kwargs)
    return info.value


def errors(tmp_path: Path, args: list[str], **kwargs: Any) -> tuple[list[str], int]:
    exc = failure(tmp_path, args, **kwargs)
    return exc.render(kwargs.get("prog", "gsub")), exc.exit_code


def directive(
    tmp_path: Path, *lines: str, args: list[str] | None = None, **kwargs: Any
) -> Submission:
    script = "#!/bin/bash\n" + "".join(line + "\n" for line in lines) + "echo hi\n"
    return submit(tmp_path, [*(args or []), "job.sh"], script=script, **kwargs)


# ---------------------------------------------------------------- defaults


def test_defaults(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["job.sh", "a", "--b"])
    spec = sub.spec
    assert spec.name == "job.sh"
    assert spec.script == SCRIPT
    assert list(spec.argv) == ["a", "--b"]
    assert spec.workdir == str(tmp_path)
    assert spec.submit_dir == str(tmp_path)
    assert spec.submit_host == socket.gethostname().split(".")[0]
    assert dict(spec.environment) == ENV
    assert spec.export_mode == "ALL"
    assert spec.shell == "/bin/bash"
    assert spec.time_limit == 0
    assert (spec.nodes_min, spec.nodes_max, spec.ntasks, spec.cpus_per_task) == (0, 0, 0, 0)
    assert (spec.output, spec.error, spec.input, spec.open_mode) == ("", "", "", "")
    assert (spec.mem_mb, spec.mem_whole_node, spec.mem_per_cpu_mb) == (0, False, 0)
    assert (spec.gpus, spec.gpus_per_node, spec.gpus_per_task, spec.gpu_type) == (0, 0, 0, "")
    assert list(spec.partitions) == []
    assert (spec.hold, spec.exclusive, spec.wrapped) == (False, False, False)
    assert (spec.nodelist, spec.exclude, spec.requeue, spec.comment, spec.nice) == (
        "",
        "",
        0,
        "",
        0,
    )
    assert dict(spec.extra) == {}
    assert (sub.parsable, sub.verbose, sub.quiet) == (False, 0, False)
    assert sub.script_path == str(tmp_path / "job.sh")


def test_shell_from_shebang(tmp_path: Path) -> None:
    assert (
        submit(tmp_path, ["job.sh"], script="#!/usr/bin/env python3\n").spec.shell == "/usr/bin/env"
    )
    assert submit(tmp_path, ["job.sh"], script="#! /bin/sh -l\nx\n").spec.shell == "/bin/sh"
    assert submit(tmp_path, ["job.sh"], script="#!\nx\n").spec.shell == ""


def test_script_from_stdin(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["-J", "x"], script=None, stdin=b"#!/bin/sh\n#SBATCH -t 5\ntrue\n")
    assert sub.spec.script == "#!/bin/sh\n#SBATCH -t 5\ntrue\n"
    assert sub.spec.time_limit == 300
    assert sub.spec.name == "x"
    assert sub.script_path == ""
    assert submit(tmp_path, [], script=None, stdin=b"#!/bin/sh\n").spec.name == "sbatch"


def test_script_found_on_path(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "tool.sh").write_text(SCRIPT)
    sub = submit(tmp_path, ["tool.sh"], env={**ENV, "PATH": f"/nonexistent:{bindir}"}, script=None)
    assert sub.script_path == str(bindir / "tool.sh")
    assert sub.spec.name == "tool.sh"


def test_script_in_cwd_wins_over_path(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "job.sh").write_text("#!/bin/sh\nfrom path\n")
    sub = submit(tmp_path, ["job.sh"], env={**ENV, "PATH": str(bindir)})
    assert sub.spec.script == SCRIPT


def test_relative_script_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.sh").write_text(SCRIPT)
    sub = submit(tmp_path, ["sub/run.sh"], script=None)
    assert sub.spec.name == "run.sh"
    assert submit(tmp_path, ["./sub/run.sh"], script=None).spec.name == "run.sh"


# ---------------------------------------------------------------- script errors


def test_unable_to_open(tmp_path: Path) -> None:
    assert errors(tmp_path, ["/nonexistent/job.sh"], script=None) == (
        ["gsub: error: Unable to open file /nonexistent/job.sh"],
        1,
    )
    (tmp_path / "adir.d").mkdir()
    assert errors(tmp_path, ["adir.d"], script=None) == (
        ["gsub: error: Unable to open file adir.d"],
        1,
    )


def test_empty_script(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="") == (["gsub: error: Batch script is empty!"], 1)
    assert errors(tmp_path, [], script=None, stdin=b"") == (
        ["gsub: error: Batch script is empty!"],
        1,
    )


def test_whitespace_script(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script=" \n\t\n") == (
        ["gsub: error: Batch script contains only whitespace!"],
        1,
    )


def test_no_shebang(tmp_path: Path) -> None:
    lines, code = errors(tmp_path, ["job.sh"], script="echo hi\n", prog="sbatch")
    assert lines == [
        "sbatch: error: This does not look like a batch script.  The first",
        "sbatch: error: line must start with #! followed by the path to an interpreter.",
        "sbatch: error: For instance: #!/bin/sh",
    ]
    assert code == 1
    assert errors(tmp_path, ["job.sh"], script=" #!/bin/sh\n")[1] == 1


def test_nul_bytes(tmp_path: Path) -> None:
    (tmp_path / "bin.sh").write_bytes(b"#!/bin/sh\necho \0\n")
    assert errors(tmp_path, ["bin.sh"], script=None) == (
        [
            "gsub: error: The Slurm controller does not allow scripts that",
            "gsub: error: contain a NULL character '\\0'.",
        ],
        1,
    )


def test_dos_line_breaks(tmp_path: Path) -> None:
    (tmp_path / "dos.sh").write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    assert errors(tmp_path, ["dos.sh"], script=None) == (
        [
            "gsub: error: Batch script contains DOS line breaks (\\r\\n)",
            "gsub: error: instead of expected UNIX line breaks (\\n).",
        ],
        1,
    )


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin.sh").write_bytes(b"#!/bin/sh\necho caf\xe9\n")
    assert errors(tmp_path, ["latin.sh"], script=None) == (
        ["gsub: error: Batch script latin.sh is not valid UTF-8 text"],
        1,
    )


def test_script_too_big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directives, "MAX_SCRIPT_SIZE", 16)
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n" + "x" * 20) == (
        ["gsub: error: Script job.sh is too big, read 17 > 16 bytes."],
        1,
    )


# ---------------------------------------------------------------- --wrap


def test_wrap(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["--wrap=echo to-stdout; exit 3"], script=None)
    assert sub.spec.script == (
        "#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho to-stdout; exit 3\n"
    )
    assert sub.spec.name == "wrap"
    assert sub.spec.wrapped is True
    assert sub.spec.shell == "/bin/sh"
    assert sub.script_path == ""
    assert list(sub.spec.argv) == []


def test_wrap_separate_value_and_name_override(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["--wrap", "true", "-J", "named"], script=None)
    assert sub.spec.script.endswith("\ntrue\n")
    assert sub.spec.name == "named"


def test_wrap_with_script_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--wrap=true", "job.sh"]) == (
        ["gsub: error: Script arguments not permitted with --wrap option"],
        1,
    )


def test_wrap_in_a_directive_is_ignored(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH --wrap=hostname")
    assert sub.spec.wrapped is False
    assert sub.spec.name == "job.sh"


# ---------------------------------------------------------------- directive scanning


def test_directives_basic(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH -J train", "#SBATCH --time=10", "#SBATCH -N 2")
    assert (sub.spec.name, sub.spec.time_limit, sub.spec.nodes_min) == ("train", 600, 2)


def test_several_options_on_one_line_and_trailing_comment(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH -J a --time 5 -N2   # two nodes, five minutes")
    assert (sub.spec.name, sub.spec.time_limit, sub.spec.nodes_min) == ("a", 300, 2)


def test_hash_starts_a_comment_even_inside_a_word(tmp_path: Path) -> None:
    assert directive(tmp_path, "#SBATCH -o out#1.txt").spec.output == "out"
    assert directive(tmp_path, "#SBATCH --comment=x#y -J z").spec.comment == "x"


def test_quoted_values(tmp_path: Path) -> None:
    sub = directive(
        tmp_path,
        "#SBATCH --comment=\"a b # c\" -J 'my job'",
        '#SBATCH --output "logs/with space.out"',
    )
    assert sub.spec.comment == "a b # c"
    assert sub.spec.name == "my job"
    assert sub.spec.output == "logs/with space.out"


def test_backslash_escapes(tmp_path: Path) -> None:
    assert directive(tmp_path, '#SBATCH --comment=a\\"b').spec.comment == 'a"b'
    assert directive(tmp_path, "#SBATCH --comment=a\\#b").spec.comment == "a#b"
    assert directive(tmp_path, "#SBATCH --comment='it\\'s'").spec.comment == "it's"


def test_escaped_space_still_splits_like_sbatch(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --comment=a\\ b\n") == (
        ["gsub: error: Invalid directive found in batch script: b"],
        255,
    )


def test_empty_quotes_end_the_line_like_sbatch(tmp_path: Path) -> None:
    # get_argument returns nothing for "", so the rest of the line is dropped.
    sub = directive(tmp_path, '#SBATCH -J "" --time=5', "#SBATCH --time=3")
    assert sub.spec.name == "--time=3"
    assert sub.spec.time_limit == 0


def test_unmatched_quote(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script='#!/bin/sh\n#SBATCH -J "abc\n') == (
        ['gsub: error: job.sh: line 2: Unmatched `"` in [ "abc]'],
        1,
    )


def test_no_space_after_sbatch(tmp_path: Path) -> None:
    assert directive(tmp_path, "#SBATCH--time=7").spec.time_limit == 420


def test_sbatch_followed_by_a_word_is_an_invalid_directive(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCHX -J a\n") == (
        ["gsub: error: Invalid directive found in batch script: X"],
        255,
    )


def test_stray_word_is_an_invalid_directive(tmp_path: Path) -> None:
    script = "#!/bin/sh\n#SBATCH --mail-user=<your e-mail>\n"
    assert errors(tmp_path, ["job.sh"], script=script) == (
        ["gsub: error: Invalid directive found in batch script: e-mail>"],
        255,
    )


def test_optional_argument_must_be_attached(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --nice 5\n") == (
        ["gsub: error: Invalid directive found in batch script: 5"],
        255,
    )
    assert directive(tmp_path, "#SBATCH --nice=5").spec.nice == 5


def test_commented_and_indented_directives_are_ignored(tmp_path: Path) -> None:
    sub = directive(
        tmp_path,
        "# SBATCH -J spaced",
        "##SBATCH -J doubled",
        "  #SBATCH -J indented",
        "#sbatch -J lower",
        "#SBATCH -t 3",
    )
    assert sub.spec.name == "job.sh"
    assert sub.spec.time_limit == 180


def test_blank_lines_and_comments_do_not_stop_scanning(tmp_path: Path) -> None:
    sub = directive(tmp_path, "", "# setup", "   ", "\t# more", "#SBATCH -J late")
    assert sub.spec.name == "late"


def test_scanning_stops_at_the_first_command(tmp_path: Path) -> None:
    script = "#!/bin/bash\n#SBATCH -J first\nmodule load x\n#SBATCH -J second\n"
    assert submit(tmp_path, ["job.sh"], script=script).spec.name == "first"


def test_directives_in_a_heredoc_after_a_command_are_ignored(tmp_path: Path) -> None:
    script = (
        "#!/bin/bash\n"
        "#SBATCH -t 1\n"
        "cat > inner.sh <<'EOF'\n"
        "#!/bin/bash\n"
        "#SBATCH -J inner --bogus\n"
        "EOF\n"
    )
    sub = submit(tmp_path, ["job.sh"], script=script)
    assert (sub.spec.name, sub.spec.time_limit) == ("job.sh", 60)


def test_gsub_prefix(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#GSUB -J native", "#SBATCH -t 2")
    assert (sub.spec.name, sub.spec.time_limit) == ("native", 120)


def test_directive_words_join_across_lines(tmp_path: Path) -> None:
    # All directive words go through one getopt pass, as in sbatch.
    assert directive(tmp_path, "#SBATCH -J", "#SBATCH joined").spec.name == "joined"


def test_double_dash_in_directives(tmp_path: Path) -> None:
    assert directive(tmp_path, "#SBATCH -J a --").spec.name == "a"
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH -- -J a\n") == (
        ["gsub: error: Invalid directive found in batch script: -J"],
        255,
    )


def test_unknown_option_in_a_directive(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --bogus\n", prog="sbatch") == (
        ["sbatch: unrecognized option '--bogus'", 'Try "sbatch --help" for more information'],
        255,
    )


def test_early_options_are_ignored_in_directives(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH --help -v --version -Q --usage")
    assert (sub.verbose, sub.quiet) == (0, False)


def test_hetjob_is_rejected(tmp_path: Path) -> None:
    script = "#!/bin/sh\n#SBATCH -N1\n#SBATCH hetjob\n#SBATCH -N2\n"
    assert errors(tmp_path, ["job.sh"], script=script) == (
        ["gsub: error: heterogeneous jobs (#SBATCH hetjob) are not supported yet"],
        1,
    )


# ---------------------------------------------------------------- precedence


def test_last_repeated_option_wins(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH -J one -J two", args=["-t", "5", "--time=6"])
    assert (sub.spec.name, sub.spec.time_limit) == ("two", 360)


def test_env_overrides_directives_and_cli_overrides_env(tmp_path: Path) -> None:
    env = {**ENV, "SBATCH_JOB_NAME": "from-env", "SBATCH_TIMELIMIT": "20"}
    sub = directive(tmp_path, "#SBATCH -J from-script -t 10 -p script", env=env)
    assert (sub.spec.name, sub.spec.time_limit, list(sub.spec.partitions)) == (
        "from-env",
        1200,
        ["script"],
    )
    sub = directive(tmp_path, "#SBATCH -J from-script -t 10", args=["-J", "cli"], env=env)
    assert (sub.spec.name, sub.spec.time_limit) == ("cli", 1200)


def test_requeue_and_no_requeue_share_a_slot(tmp_path: Path) -> None:
    assert directive(tmp_path, "#SBATCH --requeue --no-requeue").spec.requeue == 2
    assert directive(tmp_path, "#SBATCH --no-requeue", args=["--requeue"]).spec.requeue == 1
    assert submit(tmp_path, ["--no-requeue", "job.sh"]).spec.requeue == 2


def test_exclusive_and_oversubscribe_share_a_slot(tmp_path: Path) -> None:
    sub = directive(tmp_path, "#SBATCH --exclusive", args=["-s"])
    assert (sub.spec.exclusive, dict(sub.spec.extra)) == (False, {"oversubscribe": ""})
    sub = directive(tmp_path, "#SBATCH -s", args=["--exclusive"])
    assert (sub.spec.exclusive, dict(sub.spec.extra)) == (True, {})


# ---------------------------------------------------------------- command-line syntax


def test_option_forms(tmp_path: Path) -> None:
    for args in (["-N2"], ["-N", "2"], ["--nodes=2"], ["--nodes", "2"]):
        assert submit(tmp_path, [*args, "job.sh"]).spec.nodes_min == 2, args


def test_clustered_short_options(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["-HQN3", "job.sh"])
    assert (sub.spec.hold, sub.quiet, sub.spec.nodes_min) == (True, True, 3)
    assert submit(tmp_path, ["-vvv", "job.sh"]).verbose == 3


def test_value_may_contain_equals_and_start_with_dash(tmp_path: Path) -> None:
    assert submit(tmp_path, ["--comment=a=b", "job.sh"]).spec.comment == "a=b"
    assert submit(tmp_path, ["--comment", "-x", "job.sh"]).spec.comment == "-x"
    assert submit(tmp_path, ["-J", "--weird", "job.sh"]).spec.name == "--weird"
    assert submit(tmp_path, ["--comment=", "job.sh"]).spec.comment == ""


def test_abbreviations(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["--err=e.txt", "--out", "o.txt", "--job=x", "--time=3", "job.sh"])
    assert (sub.spec.error, sub.spec.output, sub.spec.name, sub.spec.time_limit) == (
        "e.txt",
        "o.txt",
        "x",
        180,
    )


def test_exact_name_beats_longer_options(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["--mem=2G", "--gpus=1", "--requeue", "job.sh"])
    assert (sub.spec.mem_mb, sub.spec.gpus, sub.spec.requeue) == (2048, 1, 1)


def test_ambiguous_abbreviation(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--par", "job.sh"]) == (
        [
            "gsub: option '--par' is ambiguous; possibilities: '--parsable' '--partition'",
            'Try "gsub --help" for more information',
        ],
        255,
    )
    lines, code = errors(tmp_path, ["--ex=1", "job.sh"])
    assert lines[0] == (
        "gsub: option '--ex=1' is ambiguous; possibilities: '--exclude' '--exclusive'"
        " '--export' '--export-file' '--extra-node-info'"
    )
    assert code == 255
    # real sbatch has both too: --tim and --nod are ambiguous there as well
    assert errors(tmp_path, ["--tim=3", "job.sh"])[0][0] == (
        "gsub: option '--tim=3' is ambiguous; possibilities: '--time' '--time-min'"
    )
    assert errors(tmp_path, ["--nod=3", "job.sh"])[0][0] == (
        "gsub: option '--nod=3' is ambiguous; possibilities: '--nodefile' '--nodelist' '--nodes'"
    )


def test_aliases_are_not_ambiguous(tmp_path: Path) -> None:
    assert submit(tmp_path, ["--tasks-per-node=4", "job.sh"]).spec.ntasks_per_node == 4
    assert submit(tmp_path, ["--cpu_bind=cores", "job.sh"]).spec.extra["cpu-bind"] == "cores"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "--wrap=true"], "gsub: unrecognized option '--bogus'"),
        (["--bogus=1", "job.sh"], "gsub: unrecognized option '--bogus=1'"),
        (["-Z", "job.sh"], "gsub: invalid option -- 'Z'"),
        (["-HZ", "job.sh"], "gsub: invalid option -- 'Z'"),
        (["--time"], "gsub: option '--time' requires an argument"),
        (["--job"], "gsub: option '--job-name' requires an argument"),
        (["-t"], "gsub: option requires an argument -- 't'"),
        (["--hold=yes", "job.sh"], "gsub: option '--hold' doesn't allow an argument"),
        (["--hol=yes", "job.sh"], "gsub: option '--hold' doesn't allow an argument"),
    ],
)
def test_getopt_errors(tmp_path: Path, args: list[str], message: str) -> None:
    assert errors(tmp_path, args) == ([message, 'Try "gsub --help" for more information'], 255)


def test_getopt_errors_come_before_script_errors(tmp_path: Path) -> None:
    lines, code = errors(tmp_path, ["--bogus", "/nonexistent.sh"], script=None)
    assert (lines[0], code) == ("gsub: unrecognized option '--bogus'", 255)


def test_value_errors_come_after_script_errors(tmp_path: Path) -> None:
    # sbatch validates option values in its second pass, after reading the script.
    assert errors(tmp_path, ["--time=abc", "/nonexistent.sh"], script=None) == (
        ["gsub: error: Unable to open file /nonexistent.sh"],
        1,
    )


def test_options_stop_at_the_script(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["-J", "x", "job.sh", "-N", "5", "--bogus"])
    assert list(sub.spec.argv) == ["-N", "5", "--bogus"]
    assert sub.spec.nodes_min == 0


def test_double_dash_ends_options(tmp_path: Path) -> None:
    (tmp_path / "-odd.sh").write_text(SCRIPT)
    sub = submit(tmp_path, ["-J", "x", "--", "-odd.sh", "--", "y"])
    assert sub.spec.name == "x"
    assert list(sub.spec.argv) == ["--", "y"]
    assert sub.script_path == str(tmp_path / "-odd.sh")


def test_render_prefixes_every_line() -> None:
    exc = DirectiveError(["one", "two"], 1)
    assert exc.render("sbatch") == ["sbatch: error: one", "sbatch: error: two"]
    raw = DirectiveError(["sbatch: x", "y"], 255, raw=True)
    assert raw.render("ignored") == ["sbatch: x", "y"]
    assert (exc.message_lines, exc.exit_code, str(exc)) == (["one", "two"], 1, "one\ntwo")


# ---------------------------------------------------------------- help / version


def test_help(tmp_path: Path) -> None:
    with pytest.raises(DirectiveExit) as info:
        submit(tmp_path, ["--help"], prog="sbatch")
    assert info.value.exit_code == 0
    assert info.value.text.startswith("Usage: sbatch [OPTIONS...] executable [args...]\n")
    for option in ("--job-name", "--time", "--gres", "--gpus-per-node", "--export", "--wrap"):
        assert option in info.value.text


def test_help_acts_before_later_errors(tmp_path: Path) -> None:
    with pytest.raises(DirectiveExit):
        submit(tmp_path, ["-h", "--bogus", "/nonexistent"], script=None)


def test_usage_and_version(tmp_path: Path) -> None:
    with pytest.raises(DirectiveExit) as info:
        submit(tmp_path, ["--usage"])
    assert info.value.text.startswith("Usage: gsub [-N nnodes]")
    with pytest.raises(DirectiveExit) as info:
        submit(tmp_path, ["-V"])
    from gsched import __version__

    assert info.value.text == f"gsched {__version__}\n"


def test_verbose_and_quiet_conflict(tmp_path: Path) -> None:
    assert errors(tmp_path, ["-v", "-Q", "job.sh"]) == (
        ["gsub: error: don't specify both --verbose (-v) and --quiet (-Q)"],
        1,
    )


# ---------------------------------------------------------------- --time


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 1800),
        ("5:07", 307),
        ("1:00:00", 3600),
        ("2-12", 216000),
        ("1-0:30", 88200),
        ("1-00:00:01", 86401),
        ("UNLIMITED", -1),
        ("infinite", -1),
        ("0", -1),  # man sbatch: a time limit of zero means no limit
        ("0:00", -1),
    ],
)
def test_time(tmp_path: Path, value: str, seconds: int) -> None:
    assert submit(tmp_path, [f"--time={value}", "job.sh"]).spec.time_limit == seconds


@pytest.mark.parametrize("value", ["abc", "", "-5", "1:2:3:4", "1h"])
def test_bad_time(tmp_path: Path, value: str) -> None:
    assert errors(tmp_path, [f"--time={value}", "--wrap=true"], prog="sbatch") == (
        ["sbatch: error: Invalid --time specification"],
        255,
    )


# ---------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("value", "nodes"),
    [
        ("1", (1, 1)),
        ("4", (4, 4)),
        ("2-4", (2, 4)),
        ("0-3", (1, 3)),
        ("3-", (3, 0)),
        ("1k", (1024, 1024)),
    ],
)
def test_nodes(tmp_path: Path, value: str, nodes: tuple[int, int]) -> None:
    spec = submit(tmp_path, ["-N", value, "job.sh"]).spec
    assert (spec.nodes_min, spec.nodes_max) == nodes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", '"0" is not a valid node count'),
        ("abc", '"abc" is not a valid node count'),
        ("", '"" is not a valid node count'),
        ("2x", '"2x" is not a valid node count'),
        ("a-3", '"a" is not a valid node count'),
        ("1-b", '"b" is not a valid node count'),
        ("4-2", "Maximum node count 2 is less than minimum node count 4"),
    ],
)
def test_bad_nodes(tmp_path: Path, value: str, message: str) -> None:
    assert errors(tmp_path, ["-N", value, "job.sh"]) == ([f"gsub: error: {message}"], 255)


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ("--ntasks", "ntasks"),
        ("--cpus-per-task", "cpus_per_task"),
        ("--ntasks-per-node", "ntasks_per_node"),
    ],
)
def test_counts(tmp_path: Path, option: str, field: str) -> None:
    assert getattr(submit(tmp_path, [f"{option}=8", "job.sh"]).spec, field) == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "-1"], 'Invalid numeric value "-1" for --ntasks.'),
        (["-n", "0"], 'Invalid numeric value "0" for --ntasks.'),
        (["-n", "x"], 'Invalid numeric value "x" for --ntasks.'),
        (["-n", "2.5"], 'Invalid numeric value "2.5" for --ntasks.'),
        (["-c", "0"], 'Invalid numeric value "0" for --cpus-per-task.'),
        (["-c", ""], 'Invalid numeric value "" for --cpus-per-task.'),
        (["--ntasks-per-node=none"], 'Invalid numeric value "none" for --ntasks-per-node.'),
        (["-n", "99999999999"], "Numeric argument (99999999999) too large for --ntasks."),
    ],
)
def test_bad_counts(tmp_path: Path, args: list[str], message: str) -> None:
    assert errors(tmp_path, [*args, "job.sh"]) == ([f"gsub: error: {message}"], 1)


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("value", "mb"), [("4000", 4000), ("4G", 4096), ("512m", 512), ("1T", 1048576)]
)
def test_mem(tmp_path: Path, value: str, mb: int) -> None:
    spec = submit(tmp_path, [f"--mem={value}", "job.sh"]).spec
    assert (spec.mem_mb, spec.mem_whole_node, spec.mem_per_cpu_mb) == (mb, False, 0)


def test_mem_zero_means_whole_node(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["--mem=0", "job.sh"]).spec
    assert (spec.mem_mb, spec.mem_whole_node) == (0, True)


def test_mem_per_cpu(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["--mem-per-cpu=2G", "job.sh"]).spec
    assert (spec.mem_mb, spec.mem_per_cpu_mb) == (0, 2048)


@pytest.mark.parametrize("option", ["--mem", "--mem-per-cpu", "--mem-per-gpu", "--tmp"])
def test_bad_memory(tmp_path: Path, option: str) -> None:
    assert errors(tmp_path, [f"{option}=lots", "job.sh"]) == (
        [f"gsub: error: Invalid {option} specification"],
        255,
    )


def test_memory_options_are_exclusive_on_the_command_line(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--mem=1G", "--mem-per-cpu=1G", "job.sh"]) == (
        ["gsub: error: --mem, --mem-per-cpu, and --mem-per-gpu are mutually exclusive."],
        1,
    )
    # sbatch counts script directives as "not from the environment" too
    assert (
        errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --mem=1G --mem-per-gpu=2G\n")[1]
        == 1
    )


def test_memory_option_from_cli_clears_the_environment_ones(tmp_path: Path) -> None:
    env = {**ENV, "SBATCH_MEM_PER_CPU": "100", "SBATCH_MEM_PER_GPU": "200"}
    spec = submit(tmp_path, ["--mem=1G", "job.sh"], env=env).spec
    assert (spec.mem_mb, spec.mem_per_cpu_mb, dict(spec.extra)) == (1024, 0, {})


def test_memory_options_exclusive_in_the_environment(tmp_path: Path) -> None:
    env = {**ENV, "SBATCH_MEM_PER_CPU": "100", "SBATCH_MEM_PER_NODE": "200"}
    assert errors(tmp_path, ["job.sh"], env=env) == (
        [
            "gsub: error: SLURM_MEM_PER_CPU, SLURM_MEM_PER_GPU, and SLURM_MEM_PER_NODE "
            "are mutually exclusive."
        ],
        1,
    )


def test_mem_wins_over_env_mem_per_cpu(tmp_path: Path) -> None:
    env = {**ENV, "SBATCH_MEM_PER_CPU": "100"}
    spec = directive(tmp_path, "#SBATCH --mem=300", env=env).spec
    assert (spec.mem_mb, spec.mem_per_cpu_mb) == (300, 0)


def test_mem_per_gpu_is_kept_in_extra(tmp_path: Path) -> None:
    assert dict(submit(tmp_path, ["--mem-per-gpu=16G", "job.sh"]).spec.extra) == {
        "mem-per-gpu": "16G"
    }


# ---------------------------------------------------------------- GPUs


@pytest.mark.parametrize(
    ("value", "per_node", "gpu_type"),
    [
        ("gpu", 1, ""),
        ("gpu:2", 2, ""),
        ("gpu:a100:4", 4, "a100"),
        ("gpu:a100", 1, "a100"),
        ("gres:gpu:3", 3, ""),
        ("gpu:tesla_v100-32g:1", 1, "tesla_v100-32g"),
        ("gpu:0", 0, ""),
        ("none", 0, ""),
    ],
)
def test_gres(tmp_path: Path, value: str, per_node: int, gpu_type: str) -> None:
    spec = submit(tmp_path, [f"--gres={value}", "job.sh"]).spec
    assert (spec.gpus_per_node, spec.gpu_type, spec.gpus) == (per_node, gpu_type, 0)


@pytest.mark.parametrize(
    "value",
    [
        "tpu:1",
        "gpu:1,tpu:1",
        "gpu:1,gpu:2",
        "GPU:1",
        "gpu:a100:x",
        "gpu::1",
        "gpu:1:2:3",
        "",
        "gpu:-1",
    ],
)
def test_bad_gres(tmp_path: Path, value: str) -> None:
    assert errors(tmp_path, [f"--gres={value}", "--wrap=true"], prog="sbatch") == (
        ["sbatch: error: Invalid generic resource (gres) specification"],
        1,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gpus=2"], (2, 0, 0, "")),
        (["-G", "h100:8"], (8, 0, 0, "h100")),
        (["-Gv100"], (1, 0, 0, "v100")),
        (["--gpus-per-node=a100:4"], (0, 4, 0, "a100")),
        (["--gpus-per-task=1"], (0, 0, 1, "")),
        (["--gpus=4", "--gpus-per-task=a100:1"], (4, 0, 1, "a100")),
        (["--gres=gpu:2", "--gpus-per-node=2"], (0, 2, 0, "")),
        (["--gres=gpu:a100:2", "--gpus=a100:4"], (4, 2, 0, "a100")),
    ],
)
def test_gpus(tmp_path: Path, args: list[str], expected: tuple[int, int, int, str]) -> None:
    spec = submit(tmp_path, [*args, "job.sh"]).spec
    assert (spec.gpus, spec.gpus_per_node, spec.gpus_per_task, spec.gpu_type) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["--gpus=x:y:z"],
        ["--gpus=a100:x"],
        ["--gpus=-1"],
        ["--gpus-per-task=:1"],
        ["--gpus=a100:1", "--gpus-per-node=v100:1"],
        ["--gres=gpu:2", "--gpus-per-node=3"],
    ],
)
def test_bad_gpus(tmp_path: Path, args: list[str]) -> None:
    assert errors(tmp_path, [*args, "job.sh"]) == (
        ["gsub: error: Invalid generic resource (gres) specification"],
        1,
    )


def test_gres_from_env_and_directive(tmp_path: Path) -> None:
    spec = directive(tmp_path, "#SBATCH --gres=gpu:1", env={**ENV, "SBATCH_GRES": "gpu:3"}).spec
    assert spec.gpus_per_node == 3
    assert submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_GPUS": "a100:2"}).spec.gpus == 2


# ---------------------------------------------------------------- placement and files


def test_partitions(tmp_path: Path) -> None:
    assert list(submit(tmp_path, ["-p", "gpu,cpu", "job.sh"]).spec.partitions) == ["gpu", "cpu"]
    assert list(submit(tmp_path, ["-p", "main", "job.sh"]).spec.partitions) == ["main"]
    assert list(submit(tmp_path, ["-p", "a,,b,", "job.sh"]).spec.partitions) == ["a", "b"]


def test_chdir(tmp_path: Path) -> None:
    assert submit(tmp_path, ["-D", "sub", "job.sh"]).spec.workdir == str(tmp_path / "sub")
    assert submit(tmp_path, ["--chdir=/scratch/x/", "job.sh"]).spec.workdir == "/scratch/x"
    assert submit(tmp_path, ["-D", "a/../b", "job.sh"]).spec.workdir == str(tmp_path / "b")
    spec = submit(tmp_path, ["-D", "/elsewhere", "job.sh"]).spec
    assert spec.submit_dir == str(tmp_path)


def test_io_paths(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["-o", "out-%j.log", "-e", "err.log", "-i", "in.txt", "job.sh"]).spec
    assert (spec.output, spec.error, spec.input) == ("out-%j.log", "err.log", "in.txt")
    spec = submit(tmp_path, ["-o", "none", "-e", "NONE", "-i", "None", "job.sh"]).spec
    assert (spec.output, spec.error, spec.input) == ("/dev/null", "/dev/null", "/dev/null")


@pytest.mark.parametrize(
    ("value", "mode"),
    [("append", "append"), ("truncate", "truncate"), ("A", "append"), ("t", "truncate")],
)
def test_open_mode(tmp_path: Path, value: str, mode: str) -> None:
    assert submit(tmp_path, [f"--open-mode={value}", "job.sh"]).spec.open_mode == mode


def test_bad_open_mode(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--open-mode=overwrite", "job.sh"]) == (
        ["gsub: error: Invalid --open-mode specification"],
        255,
    )


def test_nodelist_and_exclude(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["-w", "n3,n1,n2,n1", "-x", "gpu[01-02],gpu03", "job.sh"]).spec
    assert (spec.nodelist, spec.exclude) == ("n[1-3]", "gpu[01-03]")
    assert (spec.nodes_min, spec.nodes_max) == (3, 0)


def test_nodelist_raises_the_node_count(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["-w", "n[1-2]", "-N", "1-4", "job.sh"]).spec
    assert (spec.nodes_min, spec.nodes_max) == (2, 4)
    spec = submit(tmp_path, ["-w", "n1", "-N", "3", "job.sh"]).spec
    assert (spec.nodes_min, spec.nodes_max) == (3, 3)
    assert submit(tmp_path, ["-x", "n[1-5]", "job.sh"]).spec.nodes_min == 0


def test_nodelist_from_file(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("# my nodes\nn1\nn2 n3  # fast ones\n\nn[7-8]\n")
    assert submit(tmp_path, ["-w", "./hosts", "job.sh"]).spec.nodelist == "n[1-3,7-8]"


def test_bad_nodelist(tmp_path: Path) -> None:
    lines, code = errors(tmp_path, ["-w", "n[1-", "job.sh"])
    assert lines[0].startswith("gsub: error: Invalid --nodelist specification: ")
    assert code == 1
    lines, code = errors(tmp_path, ["-w", "./missing", "job.sh"])
    assert lines[0].startswith(f"gsub: error: Unable to read node list file {tmp_path}/./missing")
    assert code == 1


def test_flags(tmp_path: Path) -> None:
    sub = submit(tmp_path, ["-H", "--parsable", "--exclusive", "--comment=why", "job.sh"])
    assert (sub.spec.hold, sub.parsable, sub.spec.exclusive, sub.spec.comment) == (
        True,
        True,
        True,
        "why",
    )
    assert directive(tmp_path, "#SBATCH --parsable").parsable is True


@pytest.mark.parametrize(
    ("value", "exclusive", "extra"),
    [
        ("--exclusive", True, {}),
        ("--exclusive=exclusive", True, {}),
        ("--exclusive=user", False, {"exclusive": "user"}),
        ("--exclusive=MCS", False, {"exclusive": "mcs"}),
        ("--exclusive=oversubscribe", False, {"oversubscribe": ""}),
        ("--oversubscribe", False, {"oversubscribe": ""}),
    ],
)
def test_exclusive(tmp_path: Path, value: str, exclusive: bool, extra: dict[str, str]) -> None:
    spec = submit(tmp_path, [value, "job.sh"]).spec
    assert (spec.exclusive, dict(spec.extra)) == (exclusive, extra)


def test_bad_exclusive(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--exclusive=node", "job.sh"]) == (
        ["gsub: error: Invalid --exclusive specification"],
        255,
    )


@pytest.mark.parametrize(
    ("args", "nice"), [(["--nice"], 100), (["--nice=5"], 5), (["--nice=-3"], -3), ([], 0)]
)
def test_nice(tmp_path: Path, args: list[str], nice: int) -> None:
    assert submit(tmp_path, [*args, "job.sh"]).spec.nice == nice


def test_bad_nice(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--nice=lots", "job.sh"]) == (
        ["gsub: error: Invalid --nice specification"],
        255,
    )
    assert errors(tmp_path, ["--nice=9999999999", "job.sh"]) == (
        ["gsub: error: Invalid --nice value, out of range (+/- 2147483645)"],
        255,
    )


# ---------------------------------------------------------------- --export


def test_export_all_is_the_default(tmp_path: Path) -> None:
    for args in ([], ["--export=ALL"], ["--export=all"]):
        spec = submit(tmp_path, [*args, "job.sh"]).spec
        assert (dict(spec.environment), spec.export_mode) == (ENV, "ALL")


def test_export_none(tmp_path: Path) -> None:
    env = {**ENV, "SLURM_CONF": "/etc/slurm.conf"}
    spec = submit(tmp_path, ["--export=NONE", "job.sh"], env=env).spec
    assert (dict(spec.environment), spec.export_mode) == ({"SLURM_CONF": "/etc/slurm.conf"}, "NONE")


def test_export_all_plus_values(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["--export=ALL,FOO=bar,HOME=/tmp", "job.sh"]).spec
    assert dict(spec.environment) == {**ENV, "FOO": "bar", "HOME": "/tmp"}
    assert spec.export_mode == "ALL,FOO=bar,HOME=/tmp"


def test_export_list_only(tmp_path: Path) -> None:
    env = {**ENV, "SLURM_JOB_ID": "5"}
    value = "HOME,FOO=a=b,,MISSING,Q='x,y',\"R=1,2\""
    spec = submit(tmp_path, [f"--export={value}", "job.sh"], env=env).spec
    assert dict(spec.environment) == {
        "HOME": "/home/alice",
        "FOO": "a=b",
        "Q": "'x,y'",  # sbatch keeps quotes that do not wrap the whole item
        "R": "1,2",
        "SLURM_JOB_ID": "5",
    }
    assert spec.export_mode == value


def test_export_order_matters(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["--export=HOME=/x,ALL", "job.sh"]).spec
    assert spec.environment["HOME"] == "/home/alice"


def test_export_from_env(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_EXPORT": "NONE"}).spec
    assert (dict(spec.environment), spec.export_mode) == ({}, "NONE")


# ---------------------------------------------------------------- options kept for later


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["--qos=high"], {"qos": "high"}),
        (["-q", "low"], {"qos": "low"}),
        (["-A", "proj"], {"account": "proj"}),
        (["--account=proj"], {"account": "proj"}),
        (["-C", "a100&ib"], {"constraint": "a100&ib"}),
        (["--mail-type=END,FAIL"], {"mail-type": "END,FAIL"}),
        (["--mail-user=a@b.c"], {"mail-user": "a@b.c"}),
        (["--time-min=10"], {"time-min": "10"}),
        (["-L", "matlab:2"], {"licenses": "matlab:2"}),
        (["--reservation=r1"], {"reservation": "r1"}),
        (["--tmp=10G"], {"tmp": "10G"}),
        (["--mincpus=4"], {"mincpus": "4"}),
        (["--cpus-per-gpu=8"], {"cpus-per-gpu": "8"}),
        (["--ntasks-per-gpu=2"], {"ntasks-per-gpu": "2"}),
        (["--gpu-bind=closest"], {"gpu-bind": "closest"}),
        (["--cpu-bind=cores"], {"cpu-bind": "cores"}),
        (["-m", "block:cyclic"], {"distribution": "block:cyclic"}),
        (["--max-requeue=3"], {"max-requeue": "3"}),
        (["--requeue-exit=1,2"], {"requeue-exit": "1,2"}),
        (["--priority=TOP"], {"priority": "TOP"}),
        (["--priority=10"], {"priority": "10"}),
        (["--wckey=k"], {"wckey": "k"}),
        (["--deadline=now+1hour"], {"deadline": "now+1hour"}),
        (["--propagate"], {"propagate": "ALL"}),
        (["--propagate=STACK"], {"propagate": "STACK"}),
        (["--kill-on-invalid-dep=yes"], {"kill-on-invalid-dep": "yes"}),
        (["--get-user-env"], {"get-user-env": ""}),
        (["--get-user-env=10L"], {"get-user-env": "10L"}),
        (["--switches=2@10"], {"switches": "2@10"}),
        (["-k"], {"no-kill": ""}),
        (["--no-kill=off"], {}),
        (["-O"], {"overcommit": ""}),
        (
            ["--contiguous", "--spread-job", "--use-min-nodes"],
            {"contiguous": "", "spread-job": "", "use-min-nodes": ""},
        ),
        (
            ["--sockets-per-node=2", "--cores-per-socket=8", "--threads-per-core=1"],
            {"sockets-per-node": "2", "cores-per-socket": "8", "threads-per-core": "1"},
        ),
        (["--hint=nomultithread"], {"hint": "nomultithread"}),
        (["--uid=1000", "--gid=100"], {"uid": "1000", "gid": "100"}),
        (["--gres-flags=enforce-binding"], {"gres-flags": "enforce-binding"}),
        (["--network=ib"], {"network": "ib"}),
        (["--signal=B:USR1@60"], {"signal": "B:USR1@60"}),
    ],
)
def test_extras(tmp_path: Path, args: list[str], extra: dict[str, str]) -> None:
    assert dict(submit(tmp_path, [*args, "job.sh"]).spec.extra) == extra


@pytest.mark.parametrize(
    "value", ["USR1", "SIGUSR1", "usr2", "10", "R:TERM@120", "RB:9", "BR:HUP@0", "B:USR1@60"]
)
def test_good_signal(tmp_path: Path, value: str) -> None:
    assert submit(tmp_path, [f"--signal={value}", "job.sh"]).spec.extra["signal"] == value


@pytest.mark.parametrize(
    "value", ["", "0", "BOGUS", "X:USR1", "USR1@", "USR1@x", "USR1@70000", "USR1@-1", "70000"]
)
def test_bad_signal(tmp_path: Path, value: str) -> None:
    assert errors(tmp_path, [f"--signal={value}", "job.sh"]) == (
        ["gsub: error: Invalid --signal specification"],
        255,
    )


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--mail-type=SOMETIMES"], "Invalid --mail-type specification", 255),
        (["--kill-on-invalid-dep=maybe"], "Invalid --kill-on-invalid-dep specification", 255),
        (["--gres-flags=loose"], "Invalid --gres-flags specification", 255),
        (["--time-min=soon"], "Invalid --time-min specification", 255),
        (["--priority=-1"], "Priority must be >= 0", 255),
        (["--priority=high"], "Invalid --priority specification", 255),
        (["--no-kill=maybe"], "Invalid --no-kill specification", 255),
        (["--get-user-env=x"], "Invalid --get-user-env specification", 255),
        (["--mincpus=0"], 'Invalid numeric value "0" for --mincpus.', 1),
        (["--switches=x"], 'Invalid numeric value "x" for --switches.', 1),
        (["--switches=1@never"], "Invalid --switches specification", 255),
        (["--max-requeue=-1"], 'Invalid numeric value "-1" for --max-requeue.', 1),
    ],
)
def test_bad_extras(tmp_path: Path, args: list[str], message: str, code: int) -> None:
    assert errors(tmp_path, [*args, "job.sh"]) == ([f"gsub: error: {message}"], code)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--test-only"], "test-only"),
        (["-W"], "wait"),
        (["--wait"], "wait"),
        (["--export-file=/tmp/env"], "export-file"),
        (["-M", "other"], "clusters"),
        (["--nodefile=hosts"], "nodefile"),
    ],
)
def test_unsupported_options(tmp_path: Path, args: list[str], name: str) -> None:
    assert errors(tmp_path, [*args, "job.sh"]) == (
        [f"gsub: error: option --{name} is not supported yet"],
        1,
    )


def test_unsupported_option_in_a_directive(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --test-only\n") == (
        ["gsub: error: option --test-only is not supported yet"],
        1,
    )


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        (["--array=1-3"], "array", "1-3"),
        (["-a", "0-15:4%2"], "array", "0-15:4%2"),
        (["--dependency=afterok:1:2,afterany:3_4"], "dependency", "afterok:1:2,afterany:3_4"),
        (["-d", "singleton"], "dependency", "singleton"),
        (["--kill-on-invalid-dep=yes"], "kill-on-invalid-dep", "yes"),
    ],
)
def test_array_dependency_kept_for_the_controller(
    tmp_path: Path, args: list[str], key: str, value: str
) -> None:
    assert dict(submit(tmp_path, [*args, "job.sh"]).spec.extra) == {key: value}


def test_array_in_a_directive_and_env(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["job.sh"], script="#!/bin/sh\n#SBATCH --array=0-9%3\n").spec
    assert spec.extra["array"] == "0-9%3"
    spec = submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_ARRAY_INX": "1-3"}).spec
    assert spec.extra["array"] == "1-3"


def test_bad_array_refused_by_gsub(tmp_path: Path) -> None:
    assert errors(tmp_path, ["--array=x", "job.sh"]) == (
        ["gsub: error: Invalid job array specification"], 1)


def test_begin_is_resolved_to_unix_seconds(tmp_path: Path) -> None:
    import time

    before = int(time.time())
    spec = submit(tmp_path, ["--begin=now+1hour", "job.sh"]).spec
    assert before + 3600 <= int(spec.extra["begin"]) <= int(time.time()) + 3600
    spec = submit(tmp_path, ["-b", "2031-02-03T04:05:06", "job.sh"]).spec
    assert int(spec.extra["begin"]) == int(time.mktime((2031, 2, 3, 4, 5, 6, 0, 0, -1)))
    assert errors(tmp_path, ["--begin=someday", "job.sh"]) == (
        ["gsub: error: Invalid time specification someday"], 1)


# ---------------------------------------------------------------- SBATCH_* variables


def test_env_inputs(tmp_path: Path) -> None:
    env = {
        **ENV,
        "SBATCH_JOB_NAME": "envname",
        "SBATCH_PARTITION": "gpu,cpu",
        "SBATCH_TIMELIMIT": "1:00:00",
        "SBATCH_OUTPUT": "o.txt",
        "SBATCH_ERROR": "e.txt",
        "SBATCH_QOS": "high",
        "SBATCH_ACCOUNT": "acct",
        "SBATCH_OPEN_MODE": "append",
    }
    spec = submit(tmp_path, ["job.sh"], env=env).spec
    assert (spec.name, list(spec.partitions), spec.time_limit, spec.output, spec.error) == (
        "envname",
        ["gpu", "cpu"],
        3600,
        "o.txt",
        "e.txt",
    )
    assert (spec.open_mode, dict(spec.extra)) == ("append", {"qos": "high", "account": "acct"})
    # the variables themselves are still exported to the job
    assert spec.environment["SBATCH_JOB_NAME"] == "envname"


def test_env_bad_value(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], env={**ENV, "SBATCH_TIMELIMIT": "soon"}) == (
        ["gsub: error: Invalid --time specification"],
        255,
    )


@pytest.mark.parametrize(("value", "requeue"), [("", 1), ("yes", 1), ("1", 1), ("0", 0), ("no", 0)])
def test_env_flags(tmp_path: Path, value: str, requeue: int) -> None:
    # a "false" flag variable resets what the script asked for
    spec = directive(tmp_path, "#SBATCH --no-requeue", env={**ENV, "SBATCH_REQUEUE": value}).spec
    assert spec.requeue == requeue


def test_env_optional_argument(tmp_path: Path) -> None:
    spec = submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_EXCLUSIVE": ""}).spec
    assert spec.exclusive is True
    spec = submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_EXCLUSIVE": "user"}).spec
    assert dict(spec.extra) == {"exclusive": "user"}


def test_env_debug_sets_verbosity(tmp_path: Path) -> None:
    assert submit(tmp_path, ["job.sh"], env={**ENV, "SBATCH_DEBUG": "2"}).verbose == 2


def test_env_unsupported(tmp_path: Path) -> None:
    assert errors(tmp_path, ["job.sh"], env={**ENV, "SBATCH_WAIT": "1"}) == (
        ["gsub: error: option --wait is not supported yet"],
        1,
    )


# ---------------------------------------------------------------- gsub main


class FakeClient:
    address = "127.0.0.1:6817"

    def __init__(self, result: Any) -> None:
        self.result = result
        self.requests: list[Any] = []

    def call(self, method: str, request: Any) -> Any:
        assert method == "Submit"
        self.requests.append(request)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def run_gsub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], result: Any = None
) -> tuple[int, FakeClient]:
    from gsched.cli import client, gsub

    fake = FakeClient(result if result is not None else gsched_pb2.SubmitReply(job_id=42))

    def finish(code: int = 0) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(client, "finish", finish)
    monkeypatch.setattr(client, "connect", lambda prog: fake)
    # No local socket: gsub takes the client (gRPC) path, which ``fake`` stands in for.
    # (The socket path is tested in test_jobspec_wire.py.)
    conf = tmp_path / "gsched.toml"
    conf.write_text('[controller]\nsocket = "none"\n')
    monkeypatch.setenv("GSCHED_CONF", str(conf))
    monkeypatch.setattr(sys, "argv", ["gsub", *argv])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text(SCRIPT)
    with pytest.raises(SystemExit) as info:
        gsub.main()
    return int(info.value.code or 0), fake


def test_gsub_submits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, fake = run_gsub(monkeypatch, tmp_path, ["-J", "x", "job.sh"])
    assert code == 0
    assert capsys.readouterr().out == "Submitted batch job 42\n"
    assert fake.requests[0].spec.name == "x"
    assert fake.requests[0].spec.workdir == os.path.realpath(tmp_path)


def test_gsub_parsable_and_quiet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_gsub(monkeypatch, tmp_path, ["--parsable", "job.sh"])[0] == 0
    assert capsys.readouterr().out == "42\n"
    assert run_gsub(monkeypatch, tmp_path, ["-Q", "job.sh"])[0] == 0
    assert capsys.readouterr().out == ""


def test_gsub_option_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GSCHED_PROG", "sbatch")
    code, fake = run_gsub(monkeypatch, tmp_path, ["--bogus", "--wrap=true"])
    assert code == 255
    assert capsys.readouterr().err == (
        "sbatch: unrecognized option '--bogus'\nTry \"sbatch --help\" for more information\n"
    )
    assert fake.requests == []
    assert "GSCHED_PROG" not in os.environ


def test_gsub_script_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_gsub(monkeypatch, tmp_path, ["/nonexistent/job.sh"])
    assert code == 1
    assert capsys.readouterr().err == "gsub: error: Unable to open file /nonexistent/job.sh\n"


def test_gsub_help(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_gsub(monkeypatch, tmp_path, ["--help"])[0] == 0
    assert capsys.readouterr().out.startswith("Usage: gsub [OPTIONS...]")


def test_gsub_submission_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gsched.cli.client import ClientError

    refused = ClientError("INVALID_ARGUMENT", "Requested node configuration is not available")
    code, _ = run_gsub(monkeypatch, tmp_path, ["--gpus=99", "--wrap=true"], refused)
    assert code == 1
    assert capsys.readouterr().err == (
        "gsub: error: Batch job submission failed: Requested node configuration is not available\n"
    )


def test_gsub_invalid_partition(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gsched.cli.client import ClientError

    monkeypatch.setenv("GSCHED_PROG", "sbatch")
    refused = ClientError("INVALID_ARGUMENT", "Invalid partition name specified")
    code, _ = run_gsub(monkeypatch, tmp_path, ["-p", "nope", "--wrap=true"], refused)
    assert code == 1
    assert capsys.readouterr().err == (
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )


def test_gsub_controller_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gsched.cli.client import ClientError

    down = ClientError("UNAVAILABLE", "unable to contact the gsched controller at 127.0.0.1:6817")
    code, _ = run_gsub(monkeypatch, tmp_path, ["job.sh"], down)
    assert code == 1
    assert capsys.readouterr().err == (
        "gsub: error: unable to contact the gsched controller at 127.0.0.1:6817\n"
    )


def test_unreadable_stdin(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("closed")

    with pytest.raises(DirectiveError) as info:
        parse_submission([], ENV, str(tmp_path), Broken())
    assert info.value.render("gsub") == [
        "gsub: error: Unable to read the batch script from stdin: closed"
    ]
