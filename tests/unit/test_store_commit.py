"""The store's commit path: precompiled upserts and the kept SQLite connection."""

from __future__ import annotations

from pathlib import Path

from gsched.controller.cluster import Cluster
from gsched.controller.jobs import Job, Request
from gsched.controller.scheduler import Partition
from gsched.controller.store import Store, job_to_row


def _job(i: int, **kw: object) -> Job:
    return Job(job_id=i, user="alice", uid=1000, gid=1000, group="alice", name=f"j{i}",
               request=Request(gpus_per_node=1), spec=b"x" * 3000, submit_time=float(i),
               **kw)  # type: ignore[arg-type]


def test_commits_upsert_whole_rows_and_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url)
    for i in range(1, 301):
        store.write([job_to_row(_job(i, hold=True))], [], i + 1)
    store.write([job_to_row(_job(7, hold=False, comment="updated"))], [], 301)  # an update
    store.close()
    again = Cluster([Partition("main", all_nodes=True, default=True)], "main")
    Store(url).load(again, keep_finished_since=0.0)
    assert sorted(again.jobs) == list(range(1, 301)) and again.next_job_id == 301
    assert again.jobs[7].comment == "updated" and not again.jobs[7].hold
    assert again.jobs[8].hold and again.jobs[8].spec == b"x" * 3000
