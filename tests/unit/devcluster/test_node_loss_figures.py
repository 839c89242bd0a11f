"""The node-loss chaos run's pure rules: which jobs a loss hits, when one counts as requeued,
and the row it prints."""

from __future__ import annotations

from typing import Any

import pytest

from gpupool.devcluster.chaos import NodeLossFigures, format_node_loss, nodes_of, requeued


def job(phase: str, *nodes: str) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "status": {"phase": phase, "placement": [{"node": n} for n in nodes]}}


@pytest.mark.parametrize(
    ("state", "is_requeued"),
    [
        (job("Running", "lost-1", "kept-1"), False),  # a gang with one worker on a lost node still holds it
        (job("Admitted", "lost-1"), False),
        (job("Pending"), True),  # back in the queue
        (job("Running", "kept-1", "kept-2"), True),  # admitted again elsewhere
        (job("Succeeded", "lost-1"), True),
        (job("Failed", "lost-1"), True),
    ],
)
def test_a_hit_job_is_requeued_once_it_holds_nothing_on_a_lost_node(state: dict[str, Any], is_requeued: bool) -> None:
    assert requeued(state, {"lost-1"}) is is_requeued


def test_nodes_of_reads_the_current_placement() -> None:
    assert nodes_of(job("Running", "a", "b", "a")) == {"a", "b"}
    assert nodes_of({"metadata": {"name": "x"}}) == set()


def test_the_row_names_the_requeue_times_and_the_cloud_ceiling() -> None:
    figures = NodeLossFigures(jobs=10, seed=1, failure_rate=0.3, nodes_lost=4, cloud_nodes_lost=1, jobs_hit=3)
    figures.requeued, figures.requeue_p50_s, figures.requeue_max_s = 3, 1.25, 2.5
    figures.claims_made, figures.claims_failed, figures.max_cloud_nodes, figures.cloud_max_nodes = 6, 2, 2, 2
    row = format_node_loss(figures).splitlines()[2]
    assert "| 4 (1) | 3 | 3 | 1.2 / 2.5 | 0.3 | 6 (2) | 2 / 2 | 1 |" in row
