"""sbatch filename patterns (``-o``/``-e``/``-i``): ``slurm-%j.out`` -> a real path.

Follows slurmstepd's batch rules (``_create_batch_fname`` in SLURM's fname.c):

========  ==============================================================
``%%``    a literal ``%``
``%j``    job id
``%J``    ``<job id>.batch`` (the batch step; see below)
``%A``    array master job id, or the job id when the job is not an array
``%a``    array task id, or ``4294967294`` (SLURM's NO_VAL) when not an array
``%x``    job name
``%u``    user name
``%N``    short host name of the node running the script
``%n``    node index (always 0 for the batch script)
``%t``    task id (always 0 for the batch script)
``%s``    step id (``batch`` for the batch script)
========  ==============================================================

A number between ``%`` and the letter zero-pads numeric values (``%4j`` ->
``0042``), capped at 10 and ignored for text (``%5x``). Unknown letters stay as
they are. If the pattern contains a backslash, no substitution happens at all
and the backslashes are removed (``\\\\`` keeps one), as in SLURM. A pattern that
does not start with ``/`` is relative to the job's working directory.

Choices where SLURM prints internal numbers: ``%J`` gives ``<id>.batch`` and ``%s``
gives ``batch`` rather than SLURM's step id 4294967291; ``%a`` outside an array is
kept as SLURM's ``4294967294`` so scripts see the same file names as on SLURM.
"""

from __future__ import annotations

__all__ = ["NO_ARRAY_TASK_ID", "default_output", "expand_path_pattern"]

# SLURM's NO_VAL, which is what %a becomes for a job that is not an array task.
NO_ARRAY_TASK_ID = 4294967294
_MAX_WIDTH = 10


def default_output(array_task_id: int | None = None) -> str:
    """The stdout pattern used when the user gave no ``-o``.

    Args:
        array_task_id: the job's array task id, ``None`` for a plain job.

    Returns:
        ``"slurm-%j.out"``, or ``"slurm-%A_%a.out"`` for an array task.
    """
    return "slurm-%j.out" if array_task_id is None else "slurm-%A_%a.out"


def _remove_path_slashes(pattern: str) -> str | None:
    """SLURM's ``remove_path_slashes``: ``None`` when there is no backslash."""
    if "\\" not in pattern:
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern) and pattern[i + 1] == "\\":
                out.append("\\")
                i += 2
                continue
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def expand_path_pattern(
    pattern: str,
    *,
    job_id: int,
    name: str,
    user: str,
    workdir: str,
    node: str = "",
    array_job_id: int = 0,
    array_task_id: int | None = None,
    node_id: int = 0,
    task_id: int = 0,
) -> str:
    """Expand an sbatch filename pattern into an absolute path.

    Args:
        pattern: e.g. ``"logs/%x-%j.out"``.
        job_id: the job id (for an array task: the task's own job id).
        name: the job name (``%x``).
        user: the user name (``%u``).
        workdir: the job's working directory; relative results are joined to it.
        node: short host name of the node running the script (``%N``).
        array_job_id: the array master job id (``%A``); 0 when not an array.
        array_task_id: the array task id (``%a``); ``None`` when not an array.
        node_id: node index (``%n``).
        task_id: task rank (``%t``).

    Returns:
        The path, absolute when ``workdir`` is.
    """
    escaped = _remove_path_slashes(pattern)
    if escaped is not None:
        body = escaped
    else:
        numbers = {
            "j": job_id,
            "A": array_job_id if array_task_id is not None else job_id,
            "a": array_task_id if array_task_id is not None else NO_ARRAY_TASK_ID,
            "n": node_id,
            "t": task_id,
        }
        texts = {
            "s": "batch",
            "x": name,
            "u": user,
            "N": node,
        }
        body = _substitute(pattern, numbers, texts)
    if pattern.startswith("/"):
        return body
    # Plain concatenation, as slurmstepd does: a name expanding to "/x" stays inside.
    return workdir + body if workdir.endswith("/") else f"{workdir}/{body}"


def _substitute(pattern: str, numbers: dict[str, int], texts: dict[str, str]) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and pattern[i + 1] == "%":
            out.append("%")
            i += 2
            continue
        j = i + 1
        while j < n and pattern[j].isdigit():
            j += 1
        if j >= n:
            # "%" or "%12" at the very end: nothing to substitute
            out.append(pattern[i:])
            break
        width = min(int(pattern[i + 1 : j]), _MAX_WIDTH) if j > i + 1 else 0
        letter = pattern[j]
        if letter in numbers:
            out.append(f"{numbers[letter]:0{width}d}")
        elif letter == "J":
            out.append(f"{numbers['j']:0{width}d}.batch")
        elif letter in texts:
            out.append(texts[letter])
        else:
            out.append(pattern[i : j + 1])
        i = j + 1
    return "".join(out)
