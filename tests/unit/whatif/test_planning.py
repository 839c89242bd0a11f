"""The what-if simulation (`gpupool.whatif.planning`) on workloads small enough to work out by hand."""

from __future__ import annotations

import pytest

from gpupool.core import Job, PlacementPolicy, Queue, Quota, WorkerShape
from gpupool.core.budget import BudgetLimits, Period
from gpupool.core.models import GpuNode, NodeOffer, PoolClass
from gpupool.whatif.planning import (
    HOURS_PER_MONTH,
    FixedPool,
    PlanResult,
    ScalingPool,
    SimCluster,
    TimedJob,
    simulate_plan,
)

HOUR = 3600.0
GIB = 1024**3
QUEUE = Queue("team", quotas=(Quota(nominal_gpus=1000, gpu_model="A"),), allow_cloud=True)


def node(name: str, pool: str, pool_class: PoolClass = PoolClass.ON_PREM) -> GpuNode:
    return GpuNode(name, "A", 8, 64_000, 512 * GIB, pool=pool, pool_class=pool_class)


def onprem(nodes: int, price: float = 10.0) -> FixedPool:
    return FixedPool("onprem", tuple(node(f"onprem-{i}", "onprem") for i in range(nodes)), price, 36.0)


def job(name: str, arrival: float, hours: float, gpus: int = 8) -> TimedJob:
    shape = WorkerShape(gpus * 1000, 4_000, 16 * GIB)
    spec = Job(name, "team", shape, placement_policy=PlacementPolicy.CLOUD_ALLOWED, submitted_at=arrival)
    return TimedJob(spec, hours * HOUR)


def run(cluster: SimCluster, jobs: list[TimedJob]) -> PlanResult:
    return simulate_plan(cluster, jobs, months=1)


def test_four_whole_node_jobs_on_two_nodes_wait_in_order() -> None:
    cluster = SimCluster("two", (onprem(2),), (), (QUEUE,))
    jobs = [job("a", 0, 1), job("b", 0, 2), job("c", 600, 1), job("d", 1200, 0.5)]
    result = run(cluster, jobs)
    # | job | arrives | starts | why                        | wait   |
    # | a   | 0       | 0      | node 0 free                | 0      |
    # | b   | 0       | 0      | node 1 free                | 0      |
    # | c   | 600     | 3600   | a ends at 1 h              | 3,000  |
    # | d   | 1,200   | 7,200  | behind c; b and c end 2 h  | 6,000  |
    assert sorted(result.waits["team"]) == [0.0, 0.0, 3000.0, 6000.0]
    assert result.onprem_monthly == pytest.approx(2 * 10.0 * HOURS_PER_MONTH)
    assert result.cloud_by_month == (0.0,)
    assert result.onprem_used_gpu_hours == pytest.approx(8 * (1 + 2 + 1 + 0.5))
    assert result.utilisation == pytest.approx(36 / (16 * HOURS_PER_MONTH))
    assert result.purchases == ((2 * 10.0 * HOURS_PER_MONTH * 36, 36.0),)


def test_a_second_job_bursts_to_one_cloud_node() -> None:
    template = node("cloud-template", "cloud", PoolClass.CLOUD)
    cloud = ScalingPool("cloud", (NodeOffer("cloud", template, 16.0, 0),), provisioning_delay=180, scale_down_after=300)
    cluster = SimCluster("burst", (onprem(1),), (cloud,), (QUEUE,))
    result = run(cluster, [job("a", 0, 1), job("b", 0, 1)])
    # b waits for the node's 180 s boot; the node is paid from request to release 300 s after b ends
    assert sorted(result.waits["team"]) == [0.0, 180.0]
    assert result.cloud_by_month == pytest.approx((16.0 * (180 + HOUR + 300) / HOUR,))
    assert result.cloud_used_gpu_hours == pytest.approx(8.0)
    assert result.scale_ups == 1


def test_a_spent_daily_budget_holds_jobs_until_the_next_day() -> None:
    # $10 per node-hour: job a has accrued $5 by the time b arrives at 30 min, the whole budget
    cluster = SimCluster("budget", (onprem(2),), (), (QUEUE,), budgets={"team": BudgetLimits(5.0, "USD", Period.DAILY)})
    result = run(cluster, [job("a", 0, 1), job("b", 1800, 1)])
    assert sorted(result.waits["team"]) == [0.0, 86_400.0 - 1800]
