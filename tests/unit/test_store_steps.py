"""The steps table: recorded, listed, renumbered and closed across a controller restart."""

from __future__ import annotations

from pathlib import Path

from gsched.controller.store import Store


def _row(job: int, step: int, **kw: object) -> dict[str, object]:
    row = {"job_id": job, "step_id": step, "attempt": 0, "name": "python", "nodes": ["n1", "n2"],
           "ntasks": 2, "start_time": 10.0, "end_time": 0.0, "state": "RUNNING",
           "exit_code": 0, "exit_signal": 0}
    row.update(kw)
    return row


def test_steps_round_trip_and_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url)
    store.write_step(_row(7, 0))
    store.write_step(_row(7, 0, end_time=20.0, state="COMPLETED"))  # the update, not a new row
    store.write_step(_row(7, 1))
    store.write_step(_row(8, 0, nodes=["n3"], state="FAILED", exit_code=3, end_time=30.0))
    rows = store.steps([7, 8, 9])
    assert [(r["job_id"], r["step_id"], r["state"]) for r in rows] == [
        (7, 0, "COMPLETED"), (7, 1, "RUNNING"), (8, 0, "FAILED"),
    ]
    assert rows[0]["nodes"] == ["n1", "n2"] and rows[2]["exit_code"] == 3
    store.close()
    again = Store(url)  # the controller restarted
    assert again.next_step_ids() == {7: 2, 8: 1}
    assert again.end_running_steps(99.0) == 1
    assert [(r["step_id"], r["state"], r["end_time"]) for r in again.steps([7])] == [
        (0, "COMPLETED", 20.0), (1, "CANCELLED", 99.0),
    ]
    again.close()
