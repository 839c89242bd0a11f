"""A node that cannot give a share its GPU (`GpuNode.accepts_shares` False: it refuses
NVIDIA_VISIBLE_DEVICES from unprivileged containers) gets no share, and holds nothing back
from whole-GPU jobs."""

from __future__ import annotations

import pytest

from builders import make_job, make_node, make_queue, make_snapshot
from gpupool.core import schedule
from gpupool.core.models import WaitCode


@pytest.mark.parametrize(
    ("gpus", "nodes", "where"),
    [
        pytest.param(0.5, (("refuses", False), ("accepts", True)), "accepts", id="a share skips the refusing node"),
        pytest.param(0.5, (("refuses", False),), None, id="a share with only refusing nodes waits"),
        pytest.param(1, (("refuses", False),), "refuses", id="whole GPUs still go there"),
        pytest.param(0.25, (("accepts", True),), "accepts", id="no label: as before"),
    ],
)
def test_shares_go_only_to_nodes_that_can_give_them_their_gpu(
    gpus: float, nodes: tuple[tuple[str, bool], ...], where: str | None
) -> None:
    snapshot = make_snapshot(
        nodes=tuple(make_node(name, gpus=2, accepts_shares=ok) for name, ok in nodes),
        queues=(make_queue(gpus=8),),
        pending=[make_job("ns/j", gpus=gpus)],
    )
    decisions = schedule(snapshot)
    placed = [p.node for a in decisions.admissions for p in a.placements]
    assert placed == ([where] if where else [])
    if where is None:
        assert [w.code for w in decisions.waiting] == [WaitCode.NO_FITTING_NODE]
