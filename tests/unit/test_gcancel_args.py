"""gcancel (scancel) argument parsing and messages, with a fake client: no controller needed.

The ``scancel`` spellings are SLURM 22.05's, from /work/shared/slurm-reference
(err_scancel_nonexistent*.txt, err_scancel_completed*.txt).
"""

from __future__ import annotations

import io
import os
import pwd
import signal
from typing import Any

import pytest

from gsched.cli import gcancel
from gsched.cli.client import ClientError
from gsched.protos import gsched_pb2 as pb

ME = pwd.getpwuid(os.getuid()).pw_name
INVALID = "Invalid job id specified"
DONE = "Job/step already completing or completed"
DENIED = "Access/permission denied"


class FakeClient:
    """Records calls; answers from ``replies`` (a message, an exception, or a function)."""

    address = "127.0.0.1:6817"

    def __init__(self, **replies: Any) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def call(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        reply = self.replies[method]
        if callable(reply) and not isinstance(reply, type):
            reply = reply(request)
        if isinstance(reply, Exception):
            raise reply
        return reply


def results(*items: tuple[int, str]) -> pb.CancelReply:
    """A CancelReply: ``(job_id, "")`` is success, else the error text."""
    return pb.CancelReply(results=[pb.JobResult(job_id=i, ok=not e, error=e) for i, e in items])


def run(argv: list[str], prog: str = "scancel", client: Any = None, stdin: str = ""):
    out, err = io.StringIO(), io.StringIO()
    code = gcancel.run(
        argv, prog, client=client or FakeClient(), out=out, err=err, inp=io.StringIO(stdin)
    )
    return code, out.getvalue(), err.getvalue()


def error_text(argv: list[str], prog: str = "scancel") -> str:
    with pytest.raises(gcancel.CancelError) as info:
        gcancel.parse_args(argv, prog)
    return info.value.render(prog)


# ---------------------------------------------------------------- parsing


def test_ids_in_every_spelling() -> None:
    assert gcancel.parse_args(["123"]).job_ids == [123]
    assert gcancel.parse_args(["1,2", "3"]).job_ids == [1, 2, 3]
    args = gcancel.parse_args(["12_3", "12_[1,3]", "13.0", "14_*", "15"])
    assert args.job_ids == [15]
    assert args.unsupported_ids == ["13.0"]
    assert args.job_refs == ["12_3", "12_[1,3]", "14_*"]


@pytest.mark.parametrize("token", ["abc", "0", "12x", "12_", "-5x", "12.batch"])
def test_invalid_job_id(token: str) -> None:
    assert error_text(["--", token]) == f"scancel: error: Invalid job id {token}\n"
    assert error_text(["--", token], "gcancel") == f"gcancel: error: Invalid job id {token}\n"


def test_no_job_identification() -> None:
    assert error_text([]) == "scancel: error: No job identification provided\n"
    assert error_text(["-v", "-b"], "gcancel") == (
        "gcancel: error: No job identification provided\n"
    )


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("KILL", 9),
        ("SIGKILL", 9),
        ("kill", 9),
        ("9", 9),
        ("USR1", signal.SIGUSR1),
        ("SIGUSR1", signal.SIGUSR1),
        ("sigusr1", signal.SIGUSR1),
        ("10", 10),
        ("TERM", signal.SIGTERM),
        (" HUP ", signal.SIGHUP),
        ("XCPU", signal.SIGXCPU),
    ],
)
def test_parse_signal(text: str, number: int) -> None:
    assert gcancel.parse_signal(text) == number


@pytest.mark.parametrize("text", ["FOO", "0", "-1", "9x", "", "SIG", "WINCH", "99"])
def test_unknown_signal(text: str) -> None:
    assert gcancel.parse_signal(text) == 0
    assert error_text(["-s", text, "5"]) == f"Unknown job signal: {text}\n"
    assert error_text([f"--signal={text}", "5"], "gcancel") == (
        f"gcancel: error: Unknown job signal: {text}\n"
    )


def test_kill_is_a_plain_cancel_and_other_signals_are_sent() -> None:
    assert gcancel.parse_args(["-s", "KILL", "5"]).signal == 0
    assert gcancel.parse_args(["--signal=9", "5"]).signal == 0
    assert gcancel.parse_args(["-s", "USR1", "5"]).signal == signal.SIGUSR1
    assert gcancel.parse_args(["5"]).signal == 0


@pytest.mark.parametrize(
    ("text", "state"),
    [("PENDING", "PENDING"), ("pd", "PENDING"), ("R", "RUNNING"), ("running", "RUNNING"),
     ("S", "SUSPENDED"), ("suspended", "SUSPENDED")],
)  # fmt: skip
def test_states(text: str, state: str) -> None:
    assert gcancel.parse_args(["-t", text]).states == [state]


def test_invalid_state() -> None:
    assert error_text(["--state=DONE"]) == (
        "Invalid job state specified: DONE\nValid job states are PENDING, RUNNING, and SUSPENDED\n"
    )


def test_filters_and_flags() -> None:
    args = gcancel.parse_args(
        ["-u", ME, "-n", "train", "-p", "gpu", "-t", "R", "-b", "-f", "-v", "-v", "-Q", "-i"]
    )
    assert args.users == [ME]
    assert args.names == ["train"]
    assert args.partitions == ["gpu"]
    assert args.states == ["RUNNING"]
    assert args.batch and args.full and args.interactive and args.quiet
    assert args.verbose == 2
    assert args.job_ids == []
    assert gcancel.parse_args(["--me"]).users == [ME]
    assert gcancel.parse_args(["--user", str(os.getuid())]).users == [ME]
    assert gcancel.parse_args(["--name=x", "--partition=a,b"]).partitions == ["a", "b"]


def test_unknown_user() -> None:
    assert error_text(["-u", "no-such-user-xyz"]) == (
        "scancel: error: Invalid user name: no-such-user-xyz\n"
    )


def test_getopt_errors() -> None:
    assert error_text(["--bogus", "5"]) == (
        "scancel: unrecognized option '--bogus'\nTry \"scancel --help\" for more information\n"
    )
    assert error_text(["-z", "5"], "gcancel") == (
        "gcancel: invalid option -- 'z'\nTry \"gcancel --help\" for more information\n"
    )
    assert error_text(["5", "-s"]) == (
        "scancel: option requires an argument -- 's'\nTry \"scancel --help\" for more information\n"
    )


@pytest.mark.parametrize(
    ("argv", "option"),
    [(["-A", "acct", "5"], "--account"), (["--qos=high"], "--qos"),
     (["-w", "n1"], "--nodelist"), (["--reservation", "r"], "--reservation")],
)  # fmt: skip
def test_filters_gsched_cannot_apply_are_refused(argv: list[str], option: str) -> None:
    assert error_text(argv) == f"scancel: error: {option} is not supported by gsched\n"


def test_help_and_version() -> None:
    code, out, err = run(["--help"])
    assert code == 0 and out.startswith("Usage: scancel [OPTIONS]") and err == ""
    code, out, _ = run(["-V"])
    assert code == 0 and out.startswith("gsched ")


# ---------------------------------------------------------------- running


def test_request_carries_filter_signal_and_batch() -> None:
    fake = FakeClient(Cancel=results((5, "")))
    assert run(["-b", "-s", "USR1", "-u", ME, "-n", "x", "-t", "PD", "-p", "gpu", "5"], client=fake) == (
        0,
        "",
        "",
    )  # fmt: skip
    method, request = fake.calls[0]
    assert method == "Cancel"
    assert list(request.filter.job_ids) == [5]
    assert list(request.filter.users) == [ME]
    assert list(request.filter.names) == ["x"]
    assert list(request.filter.states) == ["PENDING"]
    assert list(request.filter.partitions) == ["gpu"]
    assert request.signal == signal.SIGUSR1
    assert request.batch_only


def test_nonexistent_job_is_silent() -> None:
    """err_scancel_nonexistent.txt: nothing printed, exit 0."""
    fake = FakeClient(Cancel=results((999999, INVALID)))
    assert run(["999999"], client=fake) == (0, "", "")


def test_nonexistent_job_verbose_matches_scancel() -> None:
    """err_scancel_nonexistent_verbose.txt."""
    fake = FakeClient(Cancel=results((999999, INVALID)))
    assert run(["-v", "999999"], client=fake) == (
        0,
        "",
        "scancel: Terminating job 999999\n"
        "scancel: error: Kill job error on job id 999999: Invalid job id specified\n",
    )


def test_completed_job_matches_scancel() -> None:
    """err_scancel_completed.txt and err_scancel_completed_verbose.txt."""
    fake = FakeClient(Cancel=results((13, DONE)))
    assert run(["13"], client=fake) == (0, "", "")
    assert run(["-v", "13"], client=fake) == (
        0,
        "",
        "scancel: Terminating job 13\n"
        "scancel: error: Kill job error on job id 13: "
        "Job/step already completing or completed\n",
    )


def test_whole_call_not_found_is_treated_per_job() -> None:
    fake = FakeClient(Cancel=ClientError("NOT_FOUND", INVALID))
    assert run(["999999"], client=fake) == (0, "", "")


def test_permission_denied_is_an_error() -> None:
    fake = FakeClient(Cancel=results((5, DENIED), (6, "")))
    assert run(["5", "6"], client=fake) == (
        1,
        "",
        "scancel: error: Kill job error on job id 5: Access/permission denied\n",
    )
    assert run(["5", "6"], "gcancel", fake) == (
        1,
        "",
        "gcancel: error: Kill job error on job id 5: Access/permission denied\n",
    )
    assert run(["-Q", "5"], client=fake) == (1, "", "")


def test_signal_to_finished_job_fails_quietly() -> None:
    """scancel ignores 'already done' only when cancelling (SIGKILL)."""
    fake = FakeClient(Cancel=results((13, DONE)))
    assert run(["-s", "USR1", "13"], client=fake) == (1, "", "")
    assert run(["-v", "-s", "USR1", "13"], client=fake) == (
        1,
        "",
        f"scancel: Signal {int(signal.SIGUSR1)} to job 13\n"
        "scancel: error: Kill job error on job id 13: "
        "Job/step already completing or completed\n",
    )
    assert run(["-s", "KILL", "13"], client=fake) == (0, "", "")


def test_verbose_success() -> None:
    fake = FakeClient(Cancel=results((7, ""), (8, "")))
    assert run(["-v", "7,8"], client=fake) == (
        0,
        "",
        "scancel: Terminating job 7\nscancel: Terminating job 8\n",
    )


def test_filter_only_cancel() -> None:
    fake = FakeClient(Cancel=results((3, ""), (4, "")))
    assert run(["-u", ME, "-t", "PENDING"], client=fake) == (0, "", "")
    request = fake.calls[0][1]
    assert list(request.filter.job_ids) == []
    assert list(request.filter.states) == ["PENDING"]


def test_step_ids_are_reported_not_ignored() -> None:
    fake = FakeClient(Cancel=results((15, "")))
    assert run(["12.0", "15"], client=fake) == (
        1,
        "",
        "scancel: error: Kill job error on job id 12.0: "
        "Requested operation is presently disabled\n",
    )
    assert list(fake.calls[0][1].filter.job_ids) == [15]
    only_steps = FakeClient()
    assert run(["12.0"], client=only_steps)[0] == 1
    assert only_steps.calls == []


def test_array_ids_go_to_the_controller() -> None:
    fake = FakeClient(Cancel=results((16, ""), (17, "")))
    assert run(["12_3", "12_[1-2]"], client=fake) == (0, "", "")
    flt = fake.calls[0][1].filter
    assert list(flt.job_refs) == ["12_3", "12_[1-2]"] and list(flt.job_ids) == []


def test_controller_unreachable() -> None:
    fake = FakeClient(Cancel=ClientError("UNAVAILABLE", "unable to contact the gsched controller"))
    assert run(["5"], "gcancel", fake) == (
        1,
        "",
        "gcancel: error: unable to contact the gsched controller\n",
    )


def test_interactive_asks_per_job() -> None:
    listed = pb.ListJobsReply(
        jobs=[
            pb.JobInfo(job_id=1, name="a", partition="main"),
            pb.JobInfo(job_id=2, name="b", partition="gpu"),
        ]
    )
    fake = FakeClient(ListJobs=listed, Cancel=results((1, "")))
    code, out, err = run(["-i", "-u", ME], client=fake, stdin="maybe\ny\nn\n")
    assert (code, err) == (0, "")
    assert out == (
        "Cancel job_id=1 name=a partition=main [y/n]? "
        "Cancel job_id=1 name=a partition=main [y/n]? "
        "Cancel job_id=2 name=b partition=gpu [y/n]? "
    )
    assert list(fake.calls[-1][1].filter.job_ids) == [1]
    nobody = FakeClient(ListJobs=listed)
    assert run(["-i", "1", "2"], client=nobody, stdin="")[0] == 0
    assert [m for m, _ in nobody.calls] == ["ListJobs"]
