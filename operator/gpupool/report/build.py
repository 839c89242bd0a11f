"""Query results to a `Report` (pure: no network, no clock).

Who calls this: `gpupool.report.command` after `gather`, and the unit tests with results
they make by hand. Each bucket's value for a measure is a sum over its steps of GPUs (or
money per hour), so it becomes GPU-hours (or money) times `step / 3600`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from gpupool.report.gather import Gathered
from gpupool.report.model import Budget, JobLine, Line, QueueTotal, Report, SpendPoint, Usage

MEASURE_FIELD = {
    "gpus": "gpu_hours",
    "cost": "cost",
    "idle_gpus": "idle_gpu_hours",
    "idle_cost": "idle_cost",
    "spot_gpus": "spot_gpu_hours",
    "spot_cost": "spot_cost",
    "spot_on_demand_cost": "spot_on_demand_cost",
}
"""The `Usage` field each measure of `queries.measures` adds to."""

UNKNOWN = "unknown"
Key = tuple[str, str, str, str]
"""queue, namespace, job, pool (`queries.GROUP`)."""


def build_report(gathered: Gathered, *, top_jobs: int = 10) -> Report:
    """The report of `gathered`: per queue, per queue/namespace/pool class/GPU model, the
    `top_jobs` costliest jobs, each queue's spend per bucket, budgets and the counter."""
    window = gathered.window
    hours_per_point = window.step_seconds / 3600.0
    sums: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    bucket_cost: list[dict[str, float]] = []
    for bucket in gathered.buckets:
        costs: dict[str, float] = defaultdict(float)
        for name, samples in bucket.measures.items():
            target = MEASURE_FIELD[name]
            for labels, value in samples:
                key: Key = (
                    labels.get("queue", ""),
                    labels.get("namespace", ""),
                    labels.get("job", ""),
                    labels.get("pool", ""),
                )
                sums[key][target] += value * hours_per_point
                if name == "cost":
                    costs[key[0]] += value * hours_per_point
        bucket_cost.append(costs)
    usage = {key: Usage(**values) for key, values in sums.items()}

    pools = pool_classes(gathered)
    unknown = sorted({key[3] for key in usage if key[3] not in pools})
    lines: dict[tuple[str, str, str, str], Usage] = defaultdict(Usage)
    jobs: dict[tuple[str, str, str], Usage] = defaultdict(Usage)
    by_class: dict[tuple[str, str], Usage] = defaultdict(Usage)
    for (queue, namespace, job, pool), used in usage.items():
        pool_class, model = pools.get(pool, (UNKNOWN, UNKNOWN))
        lines[(queue, namespace, pool_class, model)] += used
        jobs[(queue, namespace, job)] += used
        by_class[(queue, pool_class)] += used

    budgets = budgets_of(gathered)
    counter: dict[str, float] = defaultdict(float)
    for labels, value in gathered.window_results.get("counter_cost", []):
        counter[labels.get("queue", "")] += value
    names = sorted({key[0] for key in usage} | set(budgets) | set(counter))
    if gathered.queue:
        names = [name for name in names if name == gathered.queue] or [gathered.queue]
    queues = tuple(
        QueueTotal(
            queue=name,
            usage=sum((u for (q, _), u in by_class.items() if q == name), Usage()),
            cloud=by_class.get((name, "cloud"), Usage()),
            on_prem=by_class.get((name, "on_prem"), Usage()),
            budget=budgets.get(name),
            counter_cost=counter.get(name),
        )
        for name in names
    )
    spend = {
        name: tuple(
            SpendPoint(bucket.start, bucket.end, costs.get(name, 0.0))
            for bucket, costs in zip(gathered.buckets, bucket_cost, strict=True)
        )
        for name in names
    }
    ranked = sorted(jobs.items(), key=lambda item: (-item[1].cost, -item[1].gpu_hours, item[0]))
    uuids = gpu_uuids_of(gathered)
    return Report(
        start=window.start,
        end=window.end,
        step_seconds=window.step_seconds,
        bucket_seconds=window.bucket_seconds,
        queues=queues,
        lines=tuple(Line(*key, used) for key, used in sorted(lines.items())),
        jobs=tuple(JobLine(*key, used, uuids.get(key, ())) for key, used in ranked[:top_jobs]),
        spend=spend,
        source=gathered.source,
        queue_filter=gathered.queue,
        unknown_pools=tuple(unknown),
        jobs_total=len(jobs),
    )


def gpu_uuids_of(gathered: Gathered) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """The UUIDs of the GPUs each job (queue, namespace, job) held in the window, sorted."""
    found: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for labels, _ in gathered.window_results.get("gpu_uuids", []):
        if labels.get("uuid"):
            found[(labels.get("queue", ""), labels.get("namespace", ""), labels.get("job", ""))].add(labels["uuid"])
    return {key: tuple(sorted(values)) for key, values in found.items()}


def pool_classes(gathered: Gathered) -> dict[str, tuple[str, str]]:
    """Each pool's class and GPU model (from `gpupool_pool_info`)."""
    return {
        labels["pool"]: (labels.get("pool_class") or UNKNOWN, labels.get("gpu_model") or UNKNOWN)
        for labels, _ in gathered.window_results.get("pools", [])
        if "pool" in labels
    }


def budgets_of(gathered: Gathered) -> dict[str, Budget]:
    """Each queue's budget: its last amount and spend in the window, in its currency."""
    out: dict[str, Budget] = {}
    for labels, value in gathered.window_results.get("budget_amount", []):
        queue = labels.get("queue", "")
        out[queue] = Budget(queue, labels.get("currency", ""), value, 0.0)
    for labels, value in gathered.window_results.get("budget_spent", []):
        queue = labels.get("queue", "")
        if queue in out and out[queue].currency == labels.get("currency", ""):
            out[queue] = replace(out[queue], spent=value)
    return out
