"""The running operator's /metrics, scraped over HTTP after a small scenario: a queue, a gang
and a share on one priced node."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster_tools import OperatorProcess
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name (counters as `<name>_total`) of a scraped page."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def value(page: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    matches = [v for got, v in page.get(name, []) if all(got.get(k) == want for k, want in labels.items())]
    return sum(matches) if matches else None


def test_metrics_of_a_queue_a_gang_and_a_share(
    kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess
) -> None:
    world = Scenario(kubeconfig, core_api, namespace)
    (node,) = world.nodes(1, gpus=4)
    pool = world.pool(gpus_per_node=4, amortised_price=8.0)  # 2 per GPU-hour
    queue = world.queue("team", nominal=4)
    world.job("gang", queue, workers=2, gpus=1, duration="5m")
    world.job("half", queue, gpus=0.5, duration="5m")
    world.wait_phase("gang", "Running", 30)
    world.wait_phase("half", "Running", 30)
    world.job("big", queue, gpus=4, duration="5m")  # cannot fit beside them: waits

    def page() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        scraped = samples(operator.scrape())
        running = value(scraped, "gpupool_queue_running_jobs", queue=queue)
        pending = value(scraped, "gpupool_queue_pending_jobs", queue=queue)
        return scraped if (running, pending) == (2, 1) else None

    scraped = wait_for(page, 20, "two running jobs and one waiting in the metrics")
    assert value(scraped, "gpupool_queue_admitted_jobs", queue=queue) == 2
    assert value(scraped, "gpupool_queue_pending_jobs", queue=queue, reason="quota") == 1
    assert value(scraped, "gpupool_queue_nominal_gpus", queue=queue) == 4
    assert value(scraped, "gpupool_queue_used_gpus", queue=queue) == 2.5
    assert value(scraped, "gpupool_admissions_total", queue=queue) == 2
    assert value(scraped, "gpupool_pool_allocated_gpus", pool=pool) == 2.5
    assert value(scraped, "gpupool_pool_nodes", pool=pool, state="ready") == 1
    share = value(scraped, "gpupool_gpu_allocation_info", namespace=namespace, job="half", node=node)
    assert share == 0.5
    assert len([s for s in scraped["gpupool_gpu_allocation_info"] if s[0]["job"] == "gang"]) == 2
    assert value(scraped, "container_gpu_allocation", namespace=namespace, pod="half-a1-w0", node=node) == 0.5
    assert value(scraped, "node_gpu_hourly_cost", node=node) == 2.0
    assert (value(scraped, "gpupool_scheduling_cycle_duration_seconds_count") or 0) >= 1
