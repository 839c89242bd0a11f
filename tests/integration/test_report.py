"""`gpupool report` against the real control plane and the session Prometheus.

One queue, one on-prem pool of 4-GPU nodes at 3600 per node-hour (900 per GPU-hour, 0.25 per
GPU-second), one job of 2 GPUs that runs 45 s and is then deleted. The report over a window
around it must show the GPU time the job's own status says it held, and bill what the
operator billed it (its `status.cost`, which is also the price worked by hand over its
startedAt..finishedAt), in every format.

Tolerance: 5 GPU-seconds per GPU (2.5 money units here, about 11% of the bill). The hand
figures use admittedAt, startedAt and finishedAt, which the operator writes with whole
seconds (up to 1 s off together). Prometheus sees a series (the allocation, the job's cost
rate) from the first scrape after the cycle that publishes it to the first scrape after the
finishing one drops it: each edge up to one scrape interval (2 s) plus a cycle late, and the
two lags need not cancel (up to 2.5 s). The report samples every 1 s (--step 1s), a left sum
whose edges are off by up to 1 s in all.
"""

from __future__ import annotations

import csv
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from gpupool.cli import main as gpupool
from kube_helpers import Scenario, wait_for
from prom_tools import wait_for_series

pytestmark = pytest.mark.cluster

PRICE_PER_GPU_SECOND = 3600.0 / 4 / 3600
TOLERANCE_GPU_SECONDS = 5.0


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_report_charges_the_jobs_measured_gpu_time_at_the_pool_price_in_every_format(
    kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess, prometheus: str, tmp_path: Path
) -> None:
    world = Scenario(kubeconfig, core_api, namespace)
    world.nodes(1, gpus=4)
    pool = world.pool(gpus_per_node=4, amortised_price=3600.0)
    queue = world.queue("billing", nominal=4)
    # The pool's class, model and price reach Prometheus before the job starts.
    wait_for_series(prometheus, f'gpupool_pool_info{{pool="{pool}",pool_class="on_prem",gpu_model="{world.model}"}}')
    world.job("bill", queue, gpus=2, duration="45s")
    status = world.wait_phase("bill", "Succeeded", 120)
    held = seconds(status["finishedAt"]) - seconds(status["admittedAt"])
    ran = seconds(status["finishedAt"]) - seconds(status["startedAt"])
    assert 44 <= ran <= held <= 60, status
    expected = 2 * ran * PRICE_PER_GPU_SECOND  # 2 GPUs x ran s x 0.25 per GPU-second
    assert status["cost"] == pytest.approx(expected, abs=2 * PRICE_PER_GPU_SECOND), status
    tolerance = 2 * TOLERANCE_GPU_SECONDS * PRICE_PER_GPU_SECOND
    # The job is gone from the API: the report reads Prometheus only.
    kubectl(kubeconfig, "delete", "gpujob", "bill", "-n", namespace)
    start, end = int(seconds(status["admittedAt"])) - 20, int(seconds(status["finishedAt"])) + 10
    wait_for(lambda: time.time() > end + 5, 30, "Prometheus to have scraped past the window")

    def report(fmt: str) -> Path:
        out = tmp_path / f"bill.{fmt}"
        window = ["--from", str(start), "--to", str(end), "--step", "1s"]
        argv = ["report", "--prometheus", prometheus, *window, "--queue", queue, "--format", fmt, "--out", str(out)]
        assert gpupool([*argv, "--quiet"]) == 0
        return out

    data = json.loads(report("json").read_text())
    (line,) = data["lines"]
    assert (line["namespace"], line["pool_class"], line["gpu_model"]) == (namespace, "on_prem", world.model)
    (charged,) = data["queues"]
    assert charged["queue"] == queue
    assert charged["gpu_hours"] == pytest.approx(2 * held / 3600, abs=2 * TOLERANCE_GPU_SECONDS / 3600)
    assert charged["cost"] == pytest.approx(expected, abs=tolerance)
    assert charged["on_prem"]["cost"] == charged["cost"] and charged["cloud"]["cost"] == 0
    assert charged["idle_cost"] == 0 and charged["spot_savings"] == 0
    assert [(j["job"], j["namespace"]) for j in data["jobs"]] == [("bill", namespace)]
    assert sum(p["cost"] for p in data["spend"][queue]) == pytest.approx(charged["cost"])

    rows = list(csv.DictReader(report("csv").open()))
    (queue_row,) = [r for r in rows if r["record"] == "queue"]
    assert float(queue_row["cost"]) == pytest.approx(expected, abs=tolerance)

    markdown = report("md").read_text()
    match = re.search(rf"^\| {re.escape(queue)} \| [0-9.]+ \| ([0-9.,]+) \|", markdown, re.M)
    assert match and float(match.group(1).replace(",", "")) == pytest.approx(expected, abs=tolerance)
    assert (tmp_path / "bill-spend.png").read_bytes().startswith(b"\x89PNG")

    html = report("html").read_text()
    match = re.search(rf"<td>{re.escape(queue)}</td><td>[0-9.]+</td><td>([0-9.,]+)</td>", html)
    assert match and float(match.group(1).replace(",", "")) == pytest.approx(expected, abs=tolerance)
    assert "data:image/png;base64," in html
