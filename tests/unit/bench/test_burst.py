"""Unit tests of the burst bench (`gpupool.bench.burst`, `burst_bound`, `burst_inputs`).

The traces are small enough to work out by hand: the expected dollars below come from the
node prices, the provisioning delay and the scale-down wait, not from a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.bench.burst import NAIVE_SCALE_DOWN_SECONDS, BurstConfig, BurstResult, simulate
from gpupool.bench.burst_bound import lower_bound, unserved_cost_rate
from gpupool.bench.burst_inputs import GIB, CloudType, TimedPod, load_catalogue, load_timed_pods
from gpupool.bench.openb import MIB, TraceFormatError, TracePod
from gpupool.core.models import GpuNode

HOUR = 3600.0
DELAY = 180.0
SCALE_DOWN = 300.0
PER_GPU = 2.0  # $ per GPU-hour on demand
SPOT_PER_GPU = 0.5
NODE_PRICE = 8 * PER_GPU

CLOUD_A = CloudType(
    model="A",
    instance="test 8 x A",
    gpus=8,
    cpu_milli=64_000,
    memory_bytes=512 * GIB,
    on_demand_per_gpu_hour=PER_GPU,
    spot_per_gpu_hour=SPOT_PER_GPU,
    source="test",
)
ONPREM = [GpuNode(name="onprem-0", gpu_model="A", gpus=8, cpu_milli=64_000, memory_bytes=512 * GIB)]


def pod(name: str, gpus: int, arrival: float, duration: float) -> TimedPod:
    return TimedPod(
        TracePod(name, cpu_milli=4_000, memory_bytes=16 * GIB, num_gpu=gpus, gpu_milli=1000), arrival, duration
    )


def run(pods: list[TimedPod], policy: str, spot: list[bool] | None = None) -> BurstResult:
    config = BurstConfig(policy=policy, provisioning_delay=DELAY, scale_down_after=SCALE_DOWN)
    return simulate(pods, spot or [False] * len(pods), ONPREM, [CLOUD_A], config)


def test_two_whole_node_jobs_one_bursts() -> None:
    pods = [pod("a", 8, 0.0, HOUR), pod("b", 8, 0.0, HOUR)]
    result = run(pods, "planner")
    # b waits for one node: paid from its request (t=0) to its release, which comes
    # scaleDownAfter after b ends (b starts when the node is Ready).
    paid_seconds = DELAY + HOUR + SCALE_DOWN
    assert result.cost == pytest.approx(NODE_PRICE * paid_seconds / HOUR)
    assert (result.scale_ups, result.scale_downs) == (1, 1)
    assert sorted(result.waits) == [0.0, DELAY]
    assert result.idle_gpu_hours == pytest.approx(8 * (paid_seconds - HOUR) / HOUR)
    assert lower_bound(pods, [False, False], ONPREM, [CLOUD_A]).cost == pytest.approx(NODE_PRICE)


def test_planner_shares_a_node_and_the_naive_baseline_does_not() -> None:
    pods = [pod("a", 8, 0.0, HOUR), pod("b", 4, 0.0, HOUR), pod("c", 4, 0.0, HOUR)]
    planner = run(pods, "planner")
    assert planner.scale_ups == 1
    assert planner.cost == pytest.approx(NODE_PRICE * (DELAY + HOUR + SCALE_DOWN) / HOUR)
    naive = run(pods, "naive")
    assert (naive.scale_ups, naive.scale_downs) == (2, 2)
    # Both nodes turn Ready together; the core packs b and c onto the first one, and the
    # second idles from Ready until the naive 10-minute release.
    busy = DELAY + HOUR + NAIVE_SCALE_DOWN_SECONDS
    idle = DELAY + NAIVE_SCALE_DOWN_SECONDS
    assert naive.cost == pytest.approx(NODE_PRICE * (busy + idle) / HOUR)
    assert sorted(naive.waits) == [0.0, DELAY, DELAY]
    onprem = run(pods, "onprem")
    assert onprem.cost == 0.0 and onprem.scale_ups == 0
    assert sorted(onprem.waits) == [0.0, HOUR, HOUR]  # both fit once a is done


def test_an_idle_node_is_reused_before_it_is_released() -> None:
    # c arrives while b's node idles (within scaleDownAfter): no second node.
    gap = SCALE_DOWN / 2
    pods = [pod("a", 8, 0.0, 10 * HOUR), pod("b", 8, 0.0, HOUR), pod("c", 8, DELAY + HOUR + gap, HOUR)]
    result = run(pods, "planner")
    assert result.scale_ups == 1
    assert sorted(result.waits) == [0.0, 0.0, DELAY]
    released = DELAY + HOUR + gap + HOUR + SCALE_DOWN
    assert result.cost == pytest.approx(NODE_PRICE * released / HOUR)


def test_spot_allowed_job_bursts_to_spot() -> None:
    pods = [pod("a", 8, 0.0, HOUR), pod("b", 8, 0.0, HOUR)]
    result = run(pods, "planner", spot=[False, True])
    assert result.cost == pytest.approx(8 * SPOT_PER_GPU * (DELAY + HOUR + SCALE_DOWN) / HOUR)
    assert lower_bound(pods, [False, True], ONPREM, [CLOUD_A]).cost == pytest.approx(8 * SPOT_PER_GPU)


def test_bound_overlapping_demand() -> None:
    # 8 GPUs on-prem; a: 6 GPUs over [0, 2h), b: 4 GPUs over [1h, 3h): 10 GPUs in [1h, 2h).
    pods = [pod("a", 6, 0.0, 2 * HOUR), pod("b", 4, HOUR, 2 * HOUR)]
    six_four = TracePod("a", 4_000, 16 * GIB, 6, 1000)
    assert CLOUD_A.holds(six_four)
    plain = lower_bound(pods, [False, False], ONPREM, [CLOUD_A])
    assert plain.gpu_hours == pytest.approx(2.0)
    assert plain.cost == pytest.approx(2 * PER_GPU)
    # b may use spot: on-prem goes to a, whose cloud price is dearer; 2 GPU-h at spot.
    assert lower_bound(pods, [False, True], ONPREM, [CLOUD_A]).cost == pytest.approx(2 * SPOT_PER_GPU)
    # a pod no cloud node holds costs nothing in the bound (it can only wait) and takes no
    # on-prem capacity from the others there
    huge = TimedPod(TracePod("h", 640_000, GIB, 8, 1000), 0.0, 3 * HOUR)
    assert lower_bound([*pods, huge], [False] * 3, ONPREM, [CLOUD_A]).cost == pytest.approx(2 * PER_GPU)


def test_bound_reroutes_flexible_demand_for_pinned_demand() -> None:
    capacity = {"A": 8000, "B": 8000}
    flexible = (frozenset({"A", "B"}), 2.0)
    pinned = (frozenset({"A"}), 1.0)
    # The dearer flexible demand is placed first (on A, the first model); the pinned
    # demand then moves it over to B instead of going to the cloud.
    assert unserved_cost_rate(capacity, {flexible: 8000, pinned: 8000}) == (0.0, 0)
    # 20 GPUs on 16: the 4 above are the cheapest, pinned ones.
    assert unserved_cost_rate(capacity, {flexible: 12000, pinned: 8000}) == (pytest.approx(4.0), 4000)


def test_timed_pods_use_scheduled_time_and_fall_back_to_creation(tmp_path: Path) -> None:
    header = (
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
    )
    (tmp_path / "p.csv").write_text(
        header + "a,1000,1024,1,1000,,LS,Running,10,110,30\nb,1000,1024,1,500,T4,LS,Pending,10,50,\n"
    )
    a, b = load_timed_pods(tmp_path / "p.csv")
    assert (a.arrival, a.duration) == (10.0, 80.0)
    assert (b.arrival, b.duration, b.pod.gpu_models) == (10.0, 40.0, ("T4",))
    (tmp_path / "short.csv").write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,1,1,1000\n")
    with pytest.raises(TraceFormatError, match="time column"):
        load_timed_pods(tmp_path / "short.csv")


def test_catalogue_in_the_repository_is_complete() -> None:
    types = load_catalogue()
    assert {t.model for t in types} >= {"T4", "P100", "V100M16", "V100M32", "A10", "G2", "G3"}
    for t in types:
        assert t.gpus > 0 and t.cpu_milli > 0 and t.memory_bytes > MIB and t.source
        assert t.spot_per_gpu_hour is None or t.spot_per_gpu_hour < t.on_demand_per_gpu_hour
