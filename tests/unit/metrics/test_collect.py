"""The operator's metrics after real cycles of the loop rig (recording writer, injected clock)."""

from __future__ import annotations

from typing import Any

import pytest

from builders import make_job, make_node, make_queue, make_snapshot
from builders.api import gpujob_object, gpunodepool_object, gpuqueue_object, node_object, worker_pod_object
from builders.loop import Rig, rig
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.snapshot import ClusterSnapshot
from gpupool.core.models import Decisions, Job, WaitCode, Waiting
from gpupool.metrics.gauges import fragmented_gpus

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SINCE = "2026-01-01T00:00:00Z"
POOL = gpunodepool_object("gpu", pricePerNodeHour={"amortised": 16.0})  # 2 per GPU-hour
NODE = node_object("n1", labels={"gpupool.io/pool": "gpu", "topology.kubernetes.io/region": "eu-1"})


class Clock:
    """The loop's time, which a test moves on."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def placed(job: str, *indices: int, share: float = 1.0, worker: int = 0) -> dict[str, Any]:
    return {
        "worker": worker,
        "pod": f"{job}-a1-w{worker}",
        "node": "n1",
        "pool": "gpu",
        "gpuModel": "A100",
        "gpuIndices": list(indices),
        "gpuShare": share,
    }


def running(name: str, gpus: float, *indices: int, share: float = 1.0, **spec: Any) -> dict[str, Any]:
    status = {"attempts": 1, "placement": [placed(name, *indices, share=share)], "startedAt": SINCE}
    return gpujob_object(name, gpus=gpus, phase="Running", status={**status, "admittedAt": SINCE}, **spec)


def world(*objects: dict[str, Any], clock: Clock | None = None, queue: dict[str, Any] | None = None) -> Rig:
    return rig([POOL, NODE, queue or gpuqueue_object("q"), *objects], clock=clock or Clock())


def test_pending_admitted_and_quota_per_queue() -> None:
    queue = gpuqueue_object("q", quotas=[{"gpuModel": "A100", "nominal": 8, "borrowingLimit": 4}])
    r = world(*(gpujob_object(name, gpus=4) for name in ("a", "b", "c")), queue=queue)
    r.loop.cycle()

    assert r.metric("gpupool_queue_admitted_jobs", queue="q") == 2
    assert r.metric("gpupool_queue_running_jobs", queue="q") == 0
    assert r.metric("gpupool_queue_pending_jobs", queue="q", reason="quota") == 1
    assert r.metric("gpupool_queue_pending_jobs", queue="q", reason="capacity") == 0
    flavor = {"queue": "q", "flavor": "model:A100"}
    assert r.metric("gpupool_queue_nominal_gpus", **flavor) == 8
    assert r.metric("gpupool_queue_borrowing_limit_gpus", **flavor) == 4
    assert r.metric("gpupool_queue_used_gpus", **flavor) == 8
    assert r.metric("gpupool_queue_borrowed_gpus", **flavor) == 0
    assert r.metric("gpupool_admissions_total", queue="q", reason="nominal") == 2
    assert r.metric("gpupool_admission_wait_seconds_count", queue="q") == 2
    assert r.metric("gpupool_pool_allocated_gpus", pool="gpu") == 8
    assert r.metric("gpupool_pool_gpus", pool="gpu") == 8
    assert r.metric("gpupool_pool_nodes", pool="gpu", state="ready") == 1
    assert r.metric("gpupool_scheduling_step_duration_seconds_count", step="decide") == 1
    assert r.metric("gpupool_scheduling_cycle_duration_seconds_count") == 1


def test_admission_wait_runs_from_when_the_job_last_lost_or_lacked_its_admission() -> None:
    condition = {"type": "Admitted", "status": "False", "reason": "Preempted", "lastTransitionTime": SINCE}
    job = gpujob_object(
        "again", phase="Preempted", status={"queuedAt": "2025-12-31T00:00:00Z", "conditions": [condition]}
    )
    r = world(job, clock=Clock(NOW + 90))
    r.loop.cycle()
    assert r.metric("gpupool_admission_wait_seconds_sum", queue="q") == pytest.approx(90.0)
    assert r.metric("gpupool_admission_wait_seconds_bucket", queue="q", le="120.0") == 1
    assert r.metric("gpupool_admission_wait_seconds_bucket", queue="q", le="60.0") == 0


def test_a_share_reports_its_fraction_per_gpu_and_disappears_when_the_job_ends() -> None:
    r = world(running("half", 0.5, 3, share=0.5), worker_pod_object("half"))
    r.loop.cycle()
    info = {"node": "n1", "gpu": "3", "uuid": "", "namespace": "ns", "job": "half", "queue": "q", "pool": "gpu"}
    info["worker"] = "0"  # a kwok node: no UUID map, no device report (the fallback)
    assert r.metric("gpupool_gpu_allocation_info", **info) == 0.5
    pod = {"namespace": "ns", "pod": "half-a1-w0", "container": "main", "instance": "n1", "node": "n1"}
    assert r.metric("container_gpu_allocation", **pod) == 0.5
    assert r.metric("gpupool_queue_used_gpus", queue="q", flavor="model:A100") == 0.5
    assert r.metric("gpupool_queue_running_jobs", queue="q") == 1

    r.cache.upsert(Kind.POD, worker_pod_object("half", phase="Succeeded"))
    r.loop.cycle()
    assert r.metric("gpupool_gpu_allocation_info", **info) is None
    assert r.metric("container_gpu_allocation", **pod) is None
    assert r.metric("gpupool_jobs_finished_total", queue="q", result="succeeded") == 1


def test_opencost_node_series_carry_the_pool_price_per_gpu() -> None:
    r = world()
    r.loop.cycle()
    node = {"instance": "n1", "node": "n1", "instance_type": "gpu", "region": "eu-1", "provider_id": ""}
    assert r.metric("node_gpu_hourly_cost", **node) == 2.0
    assert r.metric("node_total_hourly_cost", **node) == 16.0
    assert r.metric("node_gpu_count", **node) == 8
    assert r.metric("kubecost_node_is_spot", **node) == 0


def test_cost_counter_counts_each_job_once_across_cycles_and_its_ending() -> None:
    clock = Clock()
    r = world(running("train", 1, 0), worker_pod_object("train"), clock=clock)
    cost = {"queue": "q", "pool_class": "on_prem"}
    r.loop.cycle()  # first sight of the job: its baseline; the queue's series start at 0
    assert r.metric("gpupool_queue_cost_total", **cost) == 0

    clock.now = NOW + 3600
    r.loop.cycle()
    assert r.metric("gpupool_queue_cost_total", **cost) == pytest.approx(2.0)
    r.loop.cycle()  # same time: nothing more
    assert r.metric("gpupool_queue_cost_total", **cost) == pytest.approx(2.0)

    clock.now = NOW + 7200
    r.cache.upsert(Kind.POD, worker_pod_object("train", phase="Succeeded"))
    r.loop.cycle()  # the running attempt becomes a recorded one: counted once
    status = r.cache.get(Kind.JOB, "ns/train")
    assert status is not None and status.parsed.api.status.cost == pytest.approx(4.0)
    assert r.metric("gpupool_queue_cost_total", **cost) == pytest.approx(4.0)
    clock.now = NOW + 9000
    r.loop.cycle()
    assert r.metric("gpupool_queue_cost_total", **cost) == pytest.approx(4.0)
    assert r.metric("gpupool_queue_cost_total", queue="q", pool_class="cloud") == 0


def test_a_gang_restart_after_a_failed_worker_is_counted() -> None:
    job = running("flaky", 1, 0, backoffLimit=1)
    r = world(job, worker_pod_object("flaky", phase="Failed"))
    r.loop.cycle()
    assert r.metric("gpupool_job_restarts_total", queue="q", reason="worker_failed") == 1
    assert r.metric("gpupool_admissions_total", queue="q", reason="nominal") == 1


def test_budget_spend_and_amount_per_queue() -> None:
    budget = {"amount": 10.0, "currency": "EUR", "period": "Daily"}
    clock = Clock(NOW + 1800)
    r = world(
        running("train", 2, 0, 1), worker_pod_object("train"), clock=clock, queue=gpuqueue_object("q", budget=budget)
    )
    r.loop.cycle()
    assert r.metric("gpupool_queue_budget_amount", queue="q", currency="EUR") == 10.0
    assert r.metric("gpupool_queue_budget_spent", queue="q", currency="EUR") == pytest.approx(2.0)
    assert r.metric("gpupool_queue_budget_spent_gpu_seconds", queue="q") == pytest.approx(3600.0)


def test_fragmentation_in_a_cycle_counts_the_gpu_a_waiting_gang_cannot_use() -> None:
    quota = gpuqueue_object("q", quotas=[{"gpuModel": "A100", "nominal": 16}])
    r = world(running("hog", 7, *range(7)), worker_pod_object("hog"), gpujob_object("big", gpus=2), queue=quota)
    r.loop.cycle()
    assert r.metric("gpupool_queue_pending_jobs", queue="q", reason="capacity") == 1
    assert r.metric("gpupool_pool_fragmented_gpus", pool="gpu") == 1.0

    r.cache.delete(Kind.JOB, "ns/big")
    r.loop.cycle()
    assert r.metric("gpupool_pool_fragmented_gpus", pool="gpu") == 0.0, "nothing waits: idle, not fragmented"


THREE = make_job("ns/h", gpus=3, on=("n1",))  # GPUs 0-2 of n1's four
HALF = make_job("ns/half", gpus=0.5, on=("n1",), first_gpu=3)  # half of GPU 3


@pytest.mark.parametrize(
    ("running", "waiting", "expected"),
    [
        ([THREE], [make_job("ns/w", gpus=1)], {}),
        ([THREE], [make_job("ns/w", gpus=2)], {"p": 1.0}),
        ([THREE], [make_job("ns/w", gpus=2), make_job("ns/v", gpus=1, workers=4)], {}),
        ([THREE], [make_job("ns/w", gpus=1, models=("A100",))], {"p": 1.0}),
        ([THREE, HALF], [make_job("ns/w", gpus=1)], {"p": 0.5}),
        ([THREE, HALF], [make_job("ns/w", gpus=0.5)], {}),
        ([THREE, HALF], [make_job("ns/w", gpus=0.75)], {"p": 0.5}),
        ([THREE], [make_job("ns/w", gpus=0)], {}),
    ],
    ids=["fits", "too big", "one shape fits", "other model", "half stranded", "share fits", "share too big", "cpu"],
)
def test_fragmented_gpus(running: list[Job], waiting: list[Job], expected: dict[str, float]) -> None:
    node = make_node("n1", gpus=4, pool="p")
    core = make_snapshot([node], [make_queue()], pending=waiting, running=running)
    snap = ClusterSnapshot(snapshot=core, nodes={"n1": node})
    decisions = Decisions(waiting=tuple(Waiting(j.key, WaitCode.INSUFFICIENT_CAPACITY, "") for j in waiting))
    assert fragmented_gpus(snap, decisions) == expected


def test_a_preemption_within_the_queue_is_counted_for_the_victims_queue() -> None:
    low = running("low", 8, *range(8))
    high = gpujob_object("high", gpus=8, priority=10, phase="Queued", status={"message": "queued in q"})
    r = world(low, worker_pod_object("low"), high)
    r.loop.cycle()
    assert r.metric("gpupool_preemptions_total", queue="q", reason="within_queue") == 1
    assert r.metric("gpupool_queue_pending_jobs", queue="q", reason="preemption") == 1


def test_each_pool_has_its_scaling_counters_from_zero() -> None:
    """A counter series born at its first increment hides that step from `increase()`."""
    r = world()
    assert r.metric("gpupool_scale_ups_total", pool="gpu", result="failed") is None
    r.loop.cycle()
    for result in ("requested", "ready", "failed"):
        assert r.metric("gpupool_scale_ups_total", pool="gpu", result=result) == 0
    assert r.metric("gpupool_scale_downs_total", pool="gpu", reason="lost") == 0


def test_pool_info_prices_and_spot_gpus_describe_each_pool() -> None:
    cloud = gpunodepool_object(
        "cloud", model="H100", gpus_per_node=4, **{"class": "Cloud"}, pricePerNodeHour={"onDemand": 40.0, "spot": 12.0}
    )
    spot_node = node_object(
        "s1", model="H100", gpus="4", labels={"gpupool.io/pool": "cloud", "gpupool.io/spot": "true"}
    )
    r = world(cloud, spot_node)
    r.loop.cycle()
    assert r.metric("gpupool_pool_info", pool="gpu", gpu_model="A100", pool_class="on_prem") == 1
    assert r.metric("gpupool_pool_info", pool="cloud", gpu_model="H100", pool_class="cloud") == 1
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="gpu", capacity="on_demand") == 2.0  # amortised
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="gpu", capacity="spot") is None
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="cloud", capacity="on_demand") == 10.0
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="cloud", capacity="spot") == 3.0
    assert r.metric("gpupool_pool_spot_gpus", pool="cloud") == 4
    assert r.metric("gpupool_pool_spot_gpus", pool="gpu") == 0


def test_budget_period_end_is_the_end_of_the_utc_period() -> None:
    budget = {"amount": 10.0, "currency": "EUR", "period": "Daily"}
    r = world(clock=Clock(NOW + 1800), queue=gpuqueue_object("q", budget=budget))
    r.loop.cycle()
    assert r.metric("gpupool_queue_budget_period_end_timestamp_seconds", queue="q") == NOW + 86400


def test_a_queues_and_a_pools_counters_and_histograms_start_at_zero_before_their_first_event() -> None:
    r = world()
    r.loop.cycle()
    assert r.metric("gpupool_preemptions_total", queue="q", reason="reclaim") == 0
    assert r.metric("gpupool_admissions_total", queue="q", reason="borrowed") == 0
    assert r.metric("gpupool_admission_wait_seconds_count", queue="q") == 0
    assert r.metric("gpupool_scale_ups_total", pool="gpu", result="failed") == 0
    assert r.metric("gpupool_node_provisioning_duration_seconds_bucket", pool="gpu", le="+Inf") == 0
