"""Short chaos runs on the session cluster, checked by the independent invariant checker
(`gpupool.devcluster.checker`): no job lost, no worker duplicated, no GPU promised twice,
every finished job's cost counted once. The long runs are `gpupool chaos crash|outage`
(docs/reliability.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chaos_tools import SessionOperator
from cluster_tools import OperatorProcess
from gpupool.devcluster.chaos import Chaos, run_crash, run_outage
from gpupool.devcluster.chaos_workload import World

pytestmark = pytest.mark.cluster


@pytest.fixture
def chaos(api_client: Any, namespace: str, operator: OperatorProcess) -> Iterator[Chaos]:
    world = World(f"C{uuid.uuid4().hex[:6].upper()}", namespace, nodes=2)
    run = Chaos(api_client, world, print)
    run.setup()
    try:
        yield run
    finally:
        run.teardown()


def test_operator_sigkilled_twice_under_a_mixed_workload_breaks_no_invariant(
    chaos: Chaos, operator: OperatorProcess
) -> None:
    # Seed 2's 48 jobs: 14 gangs, 10 at high priority, 14 cloud-allowed, 5 that fail and retry.
    figures = run_crash(chaos, SessionOperator(operator), jobs=48, kills=2, seed=2, timeout=300)

    assert figures.kills == 2 and figures.tally.checks == 3
    assert figures.ok, "\n".join(figures.tally.violations)
    assert figures.finished == 48 and figures.failed == 5
    assert figures.rerun_jobs >= figures.failed  # each failing job ran twice


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_control_plane_outage_duplicates_nothing_and_every_job_finishes(
    chaos: Chaos, operator: OperatorProcess, dev_cluster: Any, component: str
) -> None:
    figures = run_outage(
        chaos, SessionOperator(operator), dev_cluster, component=component, seconds=12, jobs=12, seed=1, timeout=240
    )

    assert figures.ok, "\n".join(figures.tally.violations)
    assert figures.finished == 12
    assert figures.outage_s >= 12
    assert dev_cluster.is_up()
