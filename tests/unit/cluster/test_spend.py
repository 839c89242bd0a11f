"""A queue's budget spend derived from its GPUJobs' status and the clock, and what the loop
does with it: refuse admissions, report spend and conditions, post an event once, start
afresh when the period resets, and come to the same numbers after a restart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from builders import utc
from builders.api import (
    cache_of,
    gpujob_object,
    gpunodepool_object,
    gpuqueue_object,
    node_object,
    worker_pod_object,
)
from builders.loop import Rig, rig
from gpupool.api import GPUQueue, JobPhase
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.snapshot import build_snapshot
from gpupool.core.budget import BudgetStanding


def stamp(text: str) -> str:
    return f"{text}:00Z"


# On-prem pool "gpu": 16 per node-hour over 8 GPUs = 2 per GPU-hour.
# Cloud pool "cloud": 80 per node-hour over 8 GPUs = 10 per GPU-hour.
ON_PREM = gpunodepool_object("gpu", pricePerNodeHour={"amortised": 16.0})
CLOUD = gpunodepool_object("cloud", **{"class": "Cloud", "pricePerNodeHour": {"onDemand": 80.0}})
NODES = [node_object("n1", labels={"gpupool.io/pool": "gpu"}), node_object("c1", labels={"gpupool.io/pool": "cloud"})]


def placed(job: str, node: str = "n1", gpus: int = 1, attempt: int = 1) -> list[dict[str, Any]]:
    pool = "cloud" if node.startswith("c") else "gpu"
    indices = list(range(gpus))
    return [
        {
            "worker": 0,
            "pod": f"{job}-a{attempt}-w0",
            "node": node,
            "pool": pool,
            "gpuModel": "A100",
            "gpuIndices": indices,
        }
    ]


def running(name: str, since: str, *, node: str = "n1", gpus: int = 1, queue: str = "q") -> dict[str, Any]:
    """A job running `gpus` GPUs on `node` since `since`."""
    status = {
        "attempts": 1,
        "placement": placed(name, node, gpus),
        "startedAt": stamp(since),
        "admittedAt": stamp(since),
    }
    return gpujob_object(name, queue=queue, gpus=gpus, phase="Running", status=status)


def finished(
    name: str, start: str, end: str, cost: float, *, cloud_cost: float = 0.0, gpu_hours: float = 0.0
) -> dict[str, Any]:
    """A job that succeeded after one attempt from `start` to `end` that cost `cost`."""
    entry = {
        "startedAt": stamp(start),
        "endedAt": stamp(end),
        "gpuSeconds": gpu_hours * 3600,
        "cost": cost,
        "cloudGpuSeconds": gpu_hours * 3600 if cloud_cost else 0.0,
        "cloudCost": cloud_cost,
    }
    status = {"attempts": 1, "cost": cost, "usageHistory": [entry], "startedAt": stamp(start), "finishedAt": stamp(end)}
    return gpujob_object(name, phase="Succeeded", status=status)


def queue(name: str = "q", **budget: Any) -> dict[str, Any]:
    return gpuqueue_object(name, budget={"amount": 10.0, "period": "Daily", **budget})


def standing_of(objects: list[dict[str, Any]], now: str, name: str = "q") -> BudgetStanding:
    return build_snapshot(cache_of(objects).view(), utc(now), decayed_usage={}).budgets[name]


@dataclass(frozen=True)
class Case:
    jobs: list[dict[str, Any]]
    now: str
    amount: float
    cloud_amount: float
    gpu_hours: float
    budget: dict[str, Any]


CASES = {
    "a finished job's recorded attempt today": Case(
        [finished("a", "2026-01-07T01:00", "2026-01-07T03:00", 4.0, gpu_hours=2)], "2026-01-07T12:00", 4, 0, 2, {}
    ),
    "a finished job's attempt yesterday does not count": Case(
        [finished("a", "2026-01-06T01:00", "2026-01-06T03:00", 4.0, gpu_hours=2)], "2026-01-07T12:00", 0, 0, 0, {}
    ),
    "a recorded attempt spanning midnight counts from midnight": Case(
        [finished("a", "2026-01-06T23:00", "2026-01-07T01:00", 4.0, gpu_hours=2)], "2026-01-07T12:00", 2, 0, 1, {}
    ),
    "a running job accrues at its pool's price up to now": Case(
        [running("r", "2026-01-07T08:00", gpus=2)], "2026-01-07T10:00", 8, 0, 4, {}
    ),
    "a running job started yesterday counts from midnight": Case(
        [running("r", "2026-01-06T22:00", gpus=2)], "2026-01-07T01:00", 4, 0, 2, {}
    ),
    "weekly: a running job started Monday counts whole": Case(
        [running("r", "2026-01-05T22:00", gpus=2)], "2026-01-07T01:00", 108, 0, 54, {"period": "Weekly"}
    ),
    "monthly: Dec 31 does not count in January": Case(
        [running("r", "2025-12-31T23:00")], "2026-01-01T01:00", 2, 0, 1, {"period": "Monthly"}
    ),
    "a cloud job's spend is reported as cloud too": Case(
        [running("r", "2026-01-07T08:00", node="c1"), running("p", "2026-01-07T08:00")],
        "2026-01-07T09:00",
        12,
        10,
        2,
        {},
    ),
    "jobs of another queue do not count": Case(
        [running("r", "2026-01-07T08:00", queue="other")], "2026-01-07T09:00", 0, 0, 0, {}
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_spend_is_derived_from_job_status_and_the_clock(case: Case) -> None:
    result = standing_of([ON_PREM, CLOUD, *NODES, queue(**case.budget), gpuqueue_object("other"), *case.jobs], case.now)
    assert result.spend.cost == pytest.approx(case.amount)
    assert result.spend.cloud_cost == pytest.approx(case.cloud_amount)
    assert result.spend.gpu_hours == pytest.approx(case.gpu_hours)


@pytest.mark.parametrize(
    ("scope", "exhausted", "left"),
    [("All", True, 0.0), ("CloudOnly", False, 5.0)],
    ids=["All counts on-prem cost", "CloudOnly counts only the cloud part"],
)
def test_scope_decides_what_counts_toward_the_cap(scope: str, exhausted: bool, left: float) -> None:
    jobs = [running("on-prem", "2026-01-07T06:00", gpus=2), running("cloud", "2026-01-07T09:30", node="c1")]
    result = standing_of([ON_PREM, CLOUD, *NODES, queue(scope=scope), *jobs], "2026-01-07T10:00")
    assert (result.spend.cost, result.spend.cloud_cost) == (pytest.approx(21.0), pytest.approx(5.0))
    assert (result.exhausted, result.left) == (exhausted, pytest.approx(left))


def test_a_gpu_hour_cap_exhausts_the_queue_while_money_is_left() -> None:
    result = standing_of(
        [ON_PREM, *NODES, queue(amount=1000.0, gpuHours=3.0), running("r", "2026-01-07T08:00", gpus=2)],
        "2026-01-07T09:30",
    )
    assert result.exhausted and result.left == pytest.approx(994.0)


class Clock:
    """The loop's clock, which a test moves forward."""

    def __init__(self, now: str) -> None:
        self.now = utc(now)

    def __call__(self) -> float:
        return self.now


def queue_of(r: Rig, name: str = "q") -> GPUQueue:
    entry = r.cache.get(Kind.QUEUE, name)
    assert entry is not None
    queue: GPUQueue = entry.parsed
    return queue


def conditions(r: Rig) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.message or "") for c in queue_of(r).status.conditions}


def queue_events(r: Rig) -> list[str]:
    return [c.detail for c in r.writer.calls if c.verb == "emit_event" and c.target.startswith("GPUQueue/")]


def message(r: Rig, name: str = "train") -> str:
    entry = r.cache.get(Kind.JOB, f"ns/{name}")
    assert entry is not None
    return str(entry.parsed.api.status.message)


def test_a_spent_daily_budget_stops_admissions_until_midnight_then_admits_again() -> None:
    clock = Clock("2026-01-07T23:59")
    spent = finished("old", "2026-01-07T04:00", "2026-01-07T10:00", 12.0, gpu_hours=6)
    r = rig([ON_PREM, *NODES, queue(), spent, gpujob_object("train")], clock=clock)

    r.loop.cycle()
    assert r.phase() == JobPhase.QUEUED
    assert "spent 12 of its daily budget of 10 USD" in message(r)
    assert "resets at 2026-01-08T00:00:00Z" in message(r)
    assert conditions(r)["BudgetExhausted"][0] == "True"
    assert "spent 12 of its daily budget of 10 USD" in conditions(r)["BudgetExhausted"][1]
    spend = queue_of(r).status.spend
    assert spend is not None and (spend.amount, spend.gpu_hours) == (12.0, 6.0)
    assert sorted(queue_events(r)) == ["BudgetExhausted", "BudgetNearlySpent"]

    clock.now += 30
    another = gpujob_object("another")
    r.cache.upsert(Kind.JOB, another)
    r.writer.seed("gpujobs", another)
    r.loop.cycle()
    assert (r.phase(), r.phase("another")) == (JobPhase.QUEUED, JobPhase.QUEUED)
    assert queue_of(r).status.pending_jobs == 2
    assert len(queue_events(r)) == 2, "an event only when a condition turns True, not at every status write"

    clock.now = utc("2026-01-08T00:00") + 5
    r.loop.cycle()
    assert r.phase() == JobPhase.ADMITTED
    assert conditions(r)["BudgetExhausted"][0] == "False"
    assert conditions(r)["BudgetNearlySpent"][0] == "False"
    spend = queue_of(r).status.spend
    assert spend is not None and spend.amount == 0.0
    assert spend.period_start == datetime(2026, 1, 8, tzinfo=UTC)


def test_an_ending_attempt_is_counted_once_as_running_then_as_recorded() -> None:
    done = [worker_pod_object("train", phase="Succeeded")]
    job = running("train", "2026-01-07T08:00", gpus=2)
    r = rig([ON_PREM, *NODES, queue(amount=100.0), job, *done], clock=utc("2026-01-07T10:00"))
    before = build_snapshot(r.cache.view(), utc("2026-01-07T10:00"), decayed_usage={}).budgets["q"]

    r.loop.cycle()
    assert r.phase() == JobPhase.SUCCEEDED
    after = build_snapshot(r.cache.view(), utc("2026-01-07T10:00"), decayed_usage={}).budgets["q"]
    assert before.spend.cost == after.spend.cost == pytest.approx(8.0)
    assert (before.accruing, after.accruing) == (True, False)
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    status = entry.parsed.api.status
    assert [(u.cost, u.gpu_seconds) for u in status.usage_history] == [(8.0, 4 * 3600.0)]
    assert status.cost == 8.0


def test_a_preempted_attempt_is_recorded_with_its_cloud_part() -> None:
    low = running("low", "2026-01-07T08:00", node="c1", gpus=8)
    low["spec"]["placement"] = "CloudAllowed"
    high = gpujob_object("high", gpus=8, priority=10, placement="CloudAllowed", phase="Queued")
    cluster = [CLOUD, node_object("c1", labels={"gpupool.io/pool": "cloud"}), gpuqueue_object("q"), low, high]
    r = rig([*cluster, worker_pod_object("low", node="c1")], clock=utc("2026-01-07T09:00"))

    r.loop.cycle()
    assert r.phase("low") == JobPhase.PREEMPTED
    entry = r.cache.get(Kind.JOB, "ns/low")
    assert entry is not None
    (usage,) = entry.parsed.api.status.usage_history
    assert (usage.cost, usage.cloud_cost, usage.cloud_gpu_seconds) == (80.0, 80.0, 8 * 3600.0)


def test_spend_is_the_same_after_a_restart() -> None:
    """A new operator (a fresh cache from what the API server holds, a fresh loop) comes to
    the same spend and conditions, so it writes nothing about the queue."""
    now = utc("2026-01-07T10:00")
    objects = [ON_PREM, *NODES, queue(), finished("old", "2026-01-07T01:00", "2026-01-07T03:00", 4.0)]
    first = rig([*objects, running("r", "2026-01-07T08:00", gpus=1), worker_pod_object("r")], clock=now)
    first.loop.cycle()
    written = queue_of(first).status
    assert written.spend is not None and written.spend.amount == pytest.approx(8.0)

    stored = [obj for key, obj in first.writer.objects.items() if key.startswith(("gpujobs/", "gpuqueues/"))]
    second = rig([ON_PREM, *NODES, *stored, worker_pod_object("r")], clock=now)
    second.loop.cycle()
    assert queue_of(second).status == written
    assert not any(c.verb == "patch_queue_status" for c in second.writer.calls)


def test_spend_written_while_jobs_run_lags_by_under_one_percent_of_the_budget() -> None:
    clock = Clock("2026-01-07T10:00")
    r = rig(
        [ON_PREM, *NODES, queue(amount=100.0), running("r", "2026-01-07T08:00"), worker_pod_object("r")], clock=clock
    )
    r.loop.cycle()
    writes = sum(1 for c in r.writer.calls if c.verb == "patch_queue_status")
    clock.now += 60  # 1 GPU at 2/hour: 0.03 more, under 1% of 100
    r.loop.cycle()
    assert sum(1 for c in r.writer.calls if c.verb == "patch_queue_status") == writes
    clock.now += 1800  # 1 more: 1% of 100
    r.loop.cycle()
    spend = queue_of(r).status.spend
    assert spend is not None and spend.amount == pytest.approx(4 + 1 + 1 / 30, abs=1e-3)


def test_a_queue_without_a_budget_reports_no_spend() -> None:
    cache = cache_of([ON_PREM, *NODES, gpuqueue_object("q"), running("r", "2026-01-07T08:00")])
    snap = build_snapshot(cache.view(), utc("2026-01-07T10:00"), decayed_usage={})
    assert snap.budgets == {}
    assert snap.core_queues["q"].budget_left is None and not snap.core_queues["q"].budget_exhausted


def test_budget_left_reaches_the_core_queue() -> None:
    cache = cache_of([ON_PREM, *NODES, queue(amount=10.0), running("r", "2026-01-07T08:00")])
    core = build_snapshot(cache.view(), utc("2026-01-07T10:00"), decayed_usage={}).core_queues["q"]
    assert (core.budget_left, core.budget_exhausted) == (pytest.approx(6.0), False)
    assert core.budget_standing is not None and core.budget_standing.spend.cost == pytest.approx(4.0)
