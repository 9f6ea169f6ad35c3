"""Step layout: which allocation nodes run which ranks (block distribution)."""

from __future__ import annotations

import pytest

from gsched.controller.errors import InvalidRequest
from gsched.controller.steps import layout, tasks_per_node_string

ALLOC = ["n1", "n2", "n3"]


def ranks(plan):  # type: ignore[no-untyped-def]
    return [(t.rank, t.local_rank, t.node_index, t.node) for t in plan.tasks]


def test_default_one_task_per_node_or_job_ntasks() -> None:
    assert ranks(layout(ALLOC)) == [(0, 0, 0, "n1"), (1, 0, 1, "n2"), (2, 0, 2, "n3")]
    plan = layout(ALLOC, job_ntasks=6)
    assert plan.counts == [2, 2, 2]


def test_ntasks_spreads_block_wise_first_nodes_get_more() -> None:
    plan = layout(ALLOC, ntasks=5)
    assert plan.counts == [2, 2, 1]
    assert [t.rank for t in plan.tasks if t.node == "n1"] == [0, 1]


def test_fewer_tasks_than_nodes_uses_fewer_nodes() -> None:
    assert layout(ALLOC, ntasks=2).nodes == ("n1", "n2")


def test_nodes_and_ntasks_per_node() -> None:
    plan = layout(ALLOC, nodes=2, ntasks_per_node=4)
    assert plan.nodes == ("n1", "n2") and plan.counts == [4, 4]


def test_nodelist_and_exclude() -> None:
    assert layout(ALLOC, nodelist=["n3"]).nodes == ("n3",)
    assert layout(ALLOC, exclude=["n1"]).nodes == ("n2", "n3")
    with pytest.raises(InvalidRequest, match="not in the job's allocation"):
        layout(ALLOC, nodelist=["n9"])
    with pytest.raises(InvalidRequest, match="4 nodes"):
        layout(ALLOC, nodes=4)


def test_tasks_per_node_string() -> None:
    assert tasks_per_node_string([2, 2, 1]) == "2(x2),1"
    assert tasks_per_node_string([1]) == "1"
    assert tasks_per_node_string([3, 1, 1, 1]) == "3,1(x3)"
