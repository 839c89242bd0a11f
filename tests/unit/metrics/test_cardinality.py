"""Thousands of jobs through the collection path: counters and histograms get no per-job
series, and the per-job gauges' series go when their jobs do."""

from __future__ import annotations

from typing import Any

from builders.api import gpujob_object, gpunodepool_object, gpuqueue_object, node_object, worker_pod_object
from builders.loop import Rig, rig
from gpupool.cluster.state.cache import Kind
from gpupool.metrics.families import PENDING_REASONS

NOW = 1_767_225_600.0
NODES, GPUS = 250, 8
RUNNING = NODES * GPUS  # 2,000 jobs of one GPU fill every node
WAITING = 1_000  # half-GPU jobs waiting behind them
PER_JOB = {"job", "pod", "worker", "gpu", "container", "namespace", "node", "instance"}


def running(index: int) -> list[dict[str, Any]]:
    name, node = f"r{index}", f"n{index // GPUS}"
    where = {"worker": 0, "pod": f"{name}-a1-w0", "node": node, "pool": "gpu", "gpuModel": "A100"}
    status = {
        "attempts": 1,
        "placement": [{**where, "gpuIndices": [index % GPUS]}],
        "startedAt": "2026-01-01T00:00:00Z",
    }
    return [gpujob_object(name, phase="Running", status=status), worker_pod_object(name, node=node)]


def series(r: Rig, *types: str) -> dict[str, list[dict[str, str]]]:
    """Label sets of every series of the families of `types`, by family name."""
    out: dict[str, list[dict[str, str]]] = {}
    for family in r.registry.collect():
        if family.type in types:
            out[family.name] = [s.labels for s in family.samples if not s.name.endswith(("_created", "_bucket"))]
    return out


def test_thousands_of_jobs_leave_counters_bounded_and_per_job_gauges_go_with_their_jobs() -> None:
    objects: list[dict[str, Any]] = [
        gpunodepool_object("gpu", pricePerNodeHour={"amortised": 16.0}),
        gpuqueue_object("q", quotas=[{"gpuModel": "A100", "nominal": RUNNING}]),
        *(node_object(f"n{i}", labels={"gpupool.io/pool": "gpu"}) for i in range(NODES)),
        *(obj for i in range(RUNNING) for obj in running(i)),
        *(gpujob_object(f"w{i}", gpus=0.5) for i in range(WAITING)),
    ]
    clock = [NOW]
    r = rig(objects, clock=lambda: clock[0])
    r.loop.cycle()
    assert len(series(r, "gauge")["gpupool_gpu_allocation_info"]) == RUNNING
    pending = [r.metric("gpupool_queue_pending_jobs", queue="q", reason=reason) for reason in PENDING_REASONS]
    assert sum(v or 0 for v in pending) == WAITING

    for i in range(RUNNING):  # every running job finishes; the waiting ones take their GPUs
        r.cache.upsert(Kind.POD, worker_pod_object(f"r{i}", node=f"n{i // GPUS}", phase="Succeeded"))
    clock[0] += 3600
    r.loop.cycle()
    clock[0] += 60
    r.loop.cycle()
    assert r.metric("gpupool_jobs_finished_total", queue="q", result="succeeded") == RUNNING
    assert r.metric("gpupool_admissions_total", queue="q", reason="nominal") == WAITING
    assert r.metric("gpupool_admission_wait_seconds_count", queue="q") == WAITING
    gauges = series(r, "gauge")
    assert len(gauges["gpupool_gpu_allocation_info"]) == WAITING
    assert {s["job"] for s in gauges["gpupool_gpu_allocation_info"]} == {f"w{i}" for i in range(WAITING)}

    for i in range(WAITING):
        r.cache.delete(Kind.JOB, f"ns/w{i}")
    r.loop.cycle()
    gauges = series(r, "gauge")
    assert gauges["gpupool_gpu_allocation_info"] == [] and gauges["container_gpu_allocation"] == []

    counted = series(r, "counter", "histogram")
    for name, label_sets in counted.items():
        for labels in label_sets:
            assert not PER_JOB & set(labels), f"{name} has a per-job label: {labels}"
    total = sum(len({tuple(sorted(labels.items())) for labels in sets}) for sets in counted.values())
    assert total < 40, f"{total} counter and histogram series for {RUNNING + WAITING} jobs"
