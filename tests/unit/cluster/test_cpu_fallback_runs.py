"""A job that falls back to CPU, in the adapter: the loop writes where and why it runs, its
pod requests no GPU and says `GPUPOOL_DEVICE=cpu`, and its attempt is charged the CPU
pool's price for its share of the node; CPU pools have no GPU-hour price and are never grown.

CPU pool `cpu`: one 64-core node `cpu-0` at 8 per node-hour (0.125 per core-hour). GPU pool
`gpu`: one 8 x A100 node `n1`.
"""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import gpujob, gpujob_object, gpunodepool_object, gpuqueue_object, node_object
from builders.loop import Rig, rig
from gpupool.api import GPUJob, GPUJobStatus, WorkerPlacementStatus, parse_gpunodepool
from gpupool.cluster.nodes.scaling import scaling_inputs
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.state.parsing import ParsedJob
from gpupool.cluster.translate.accounting import Biller
from gpupool.cluster.translate.convert import gpu_node_from_k8s, job_from_api
from gpupool.cluster.translate.snapshot import hardware_of, held_gpus, pool_info
from gpupool.cluster.translate.spend import attempt_accrual
from gpupool.cluster.writes.pods import GPU_RESOURCE, worker_pod
from gpupool.core.accounting import PriceBook

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CPU_POOL = gpunodepool_object("cpu", model="CPU", gpus_per_node=0, pricePerNodeHour={"amortised": 8.0})
GPU_POOL = gpunodepool_object("gpu", pricePerNodeHour={"amortised": 16.0})
CPU_NODE = node_object("cpu-0", model=None, gpus=None, labels={"gpupool.io/pool": "cpu"})
GPU_NODE = node_object("n1", labels={"gpupool.io/pool": "gpu"})


def cluster(**job: Any) -> list[dict[str, Any]]:
    return [CPU_POOL, GPU_POOL, CPU_NODE, GPU_NODE, gpuqueue_object("q"), gpujob_object(cpu="16", **job)]


def one_cycle(*extra: dict[str, Any], clock: float = NOW, **job: Any) -> tuple[Rig, GPUJobStatus]:
    """A rig over `cluster(**job)` and `extra` objects after one cycle, and the job's status."""
    r = rig([*cluster(**job), *extra], clock=clock)
    r.loop.cycle()
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    return r, entry.parsed.api.status


def test_a_preferred_job_runs_on_the_cpu_node_and_says_why() -> None:
    r, status = one_cycle(cpuFallback="Preferred")
    reason = "runs on CPU node cpu-0: cpuFallback Preferred and no profile says a GPU is much cheaper"
    assert (status.device, status.device_reason) == ("CPU", reason)
    assert [(w.node, w.pool, w.gpu_indices) for w in status.placement] == [("cpu-0", "cpu", [])]
    assert status.provenance is not None and status.provenance.attempts[0].device == "CPU"
    assert [c[1] for c in r.job_calls() if c[0] == "emit_event"] == ["Queued", "Admitted", "RunningOnCPU"]
    assert [m for _, why, m in r.writer.events if why == "RunningOnCPU"] == [reason]
    pod = r.writer.objects["pods/ns/train-a1-w0"]
    assert pod["spec"]["nodeName"] == "cpu-0"
    assert {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}["GPUPOOL_DEVICE"] == "cpu"


def test_an_allowed_job_within_its_bound_takes_the_gpu() -> None:
    r, status = one_cycle(cpuFallback="Allowed")
    assert (status.device, status.device_reason, status.placement[0].node) == ("GPU", None, "n1")
    assert "RunningOnCPU" not in [c[1] for c in r.job_calls()]


def placed(node: str, pool: str, indices: list[int]) -> WorkerPlacementStatus:
    return WorkerPlacementStatus(worker=0, pod="train-a1-w0", node=node, pool=pool, gpu_model="X", gpu_indices=indices)


def env_and_resources(job: GPUJob, *, on_cpu: bool) -> tuple[dict[str, str], dict[str, Any]]:
    where = placed("cpu-0", "cpu", []) if on_cpu else placed("n1", "gpu", [0])
    container = worker_pod(job, where, attempt=1, on_cpu=on_cpu)["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}, container["resources"]


@pytest.mark.parametrize(
    ("fallback", "on_cpu", "device", "gpu_limit"),
    [
        ("Preferred", True, "cpu", None),
        ("Allowed", False, "gpu", "1"),
        (None, False, None, "1"),
    ],
    ids=["on-cpu", "fallback-job-on-gpu", "never-unchanged"],
)
def test_the_pod_requests_a_gpu_only_on_a_gpu(
    fallback: str | None, on_cpu: bool, device: str | None, gpu_limit: str | None
) -> None:
    job = gpujob(uid="u", cpu="16", memory="8Gi", **({"cpuFallback": fallback} if fallback else {}))
    env, resources = env_and_resources(job, on_cpu=on_cpu)
    assert env.get("GPUPOOL_DEVICE") == device
    assert resources["limits"].get(GPU_RESOURCE) == gpu_limit
    assert resources["requests"].get(GPU_RESOURCE) == gpu_limit
    assert (resources["requests"]["cpu"], resources["requests"]["memory"]) == ("16", "8Gi")


def biller() -> Biller:
    pools = {name: pool_info(parse_gpunodepool(p)) for name, p in (("cpu", CPU_POOL), ("gpu", GPU_POOL))}
    nodes = {}
    for raw in (CPU_NODE, GPU_NODE):
        node = gpu_node_from_k8s(raw, [info.pool for info in pools.values()])
        assert node is not None
        nodes[node.name] = node
    return Biller(PriceBook.of(info.pricing for info in pools.values()), nodes)


@pytest.mark.parametrize(
    ("device", "node", "pool", "indices", "gpu_seconds", "cost"),
    [
        # 8 per node-hour x 16/64 cores x 2 h
        ("CPU", "cpu-0", "cpu", [], 0.0, 4.0),
        # 16 per node-hour / 8 GPUs x 1 GPU x 2 h
        ("GPU", "n1", "gpu", [0], 7200.0, 4.0),
    ],
    ids=["cpu-attempt", "gpu-attempt"],
)
def test_an_attempt_is_charged_where_it_ran(
    device: str, node: str, pool: str, indices: list[int], gpu_seconds: float, cost: float
) -> None:
    status = {
        "device": device,
        "startedAt": "2026-01-01T00:00:00Z",
        "placement": [{"worker": 0, "pod": "train-a1-w0", "node": node, "pool": pool, "gpuIndices": indices}],
    }
    job = gpujob(cpu="16", cpuFallback="Allowed", phase="Running", status=status)
    accrual = attempt_accrual(job, biller(), NOW + 7200)
    assert accrual is not None
    assert (accrual.gpu_seconds, accrual.cost) == (gpu_seconds, pytest.approx(cost))


def test_a_cpu_pool_has_node_hour_prices_and_no_gpu_hour_price() -> None:
    spec = {"peakTflopsFp16": 4, "peakTflopsFp32": 2, "memoryBandwidthGBps": 200}
    cpu = parse_gpunodepool(gpunodepool_object("cpu", model="CPU", gpus_per_node=0, gpuModelSpec=spec,
                                               pricePerNodeHour={"amortised": 8.0}))  # fmt: skip
    hardware = hardware_of({"cpu": pool_info(cpu)}, catalogue={})
    assert hardware.cpu_node_hour_price("cpu", False) == 8.0
    assert hardware.gpu_hour_price("cpu", False) == 0.0
    assert "cpu" in hardware.pools and "CPU" not in hardware.models


def test_a_kwok_cpu_pool_is_never_offered_to_the_autoscaler() -> None:
    kwok = {"provider": "Kwok", "class": "Cloud", "pricePerNodeHour": {"onDemand": 8.0}, "cpuPerNode": "64"}
    pools = {
        "cpu": parse_gpunodepool(gpunodepool_object("cpu", model="CPU", gpus_per_node=0, **kwok)),
        "gpu": parse_gpunodepool(gpunodepool_object("gpu", **kwok)),
    }
    offers = scaling_inputs(pools, {}, {}, set(), NOW).offers
    assert [o.pool for o in offers] == ["gpu"]


def test_a_job_on_cpu_holds_no_gpus_for_fair_share() -> None:
    on = {"placement": [{"worker": 0, "pod": "a-a1-w0", "node": "cpu-0", "pool": "cpu"}]}
    on_gpus = {"device": "GPU", "placement": [{"worker": 0, "pod": "b-a1-w0", "node": "n1", "gpuIndices": [0, 1]}]}
    jobs = {
        name: ParsedJob(api, job_from_api(api), None)
        for name, api in (
            (
                "ns/cpu",
                gpujob("cpu", cpu="4", cpuFallback="Preferred", phase="Running", status={**on, "device": "CPU"}),
            ),
            (
                "ns/gpu",
                gpujob("gpu", gpus=2, cpu="4", cpuFallback="Preferred", phase="Running", status=on_gpus),
            ),
        )
    }
    assert held_gpus(jobs) == {"q": 2.0}


def test_an_allowed_job_past_its_bound_with_the_gpus_taken_runs_on_cpu() -> None:
    hog = {"attempts": 1, "placement": [{"worker": 0, "pod": "hog-a1-w0", "node": "n1", "pool": "gpu",
                                         "gpuModel": "A100", "gpuIndices": list(range(8))}]}  # fmt: skip
    hogging = gpujob_object("hog", gpus=8, phase="Admitted", status=hog)
    _, status = one_cycle(hogging, clock=NOW + 600, cpuFallback="Allowed")
    assert (status.device, status.placement[0].node) == ("CPU", "cpu-0")
    assert status.device_reason == (
        "runs on CPU node cpu-0: waited 10m for a GPU, longer than its cpuFallbackAfter of 5m (cpuFallback Allowed)"
    )
