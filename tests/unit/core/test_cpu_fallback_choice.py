"""CPU fallback in the scheduling cycle (`gpupool.core.cpufallback`, `gpupool.core.schedule`):
which single-worker jobs run on a CPU-only node, when, why, and that they hold no GPU quota.

One on-prem H100 node (pool `h100`, 4 per GPU-hour) and one CPU-only node (pool `cpu`,
64 cores, 2 per node-hour). Jobs ask for 1 GPU and 8 cores, submitted at 0; the clock is
at 10 000 s, so a `fallback_after` of 300 s has passed and one of 20 000 s has not.
"""

from __future__ import annotations

import pytest

from builders import make_job, make_node, make_queue, make_snapshot
from gpupool.core import WaitCode, schedule
from gpupool.core.cpufallback import CpuCandidate, cpu_cost
from gpupool.core.models import CPU_MODEL, CpuFallback, Decisions, Device, Job, Queue, WorkerPlacement, WorkerShape
from gpupool.core.roofline import GpuSpec, Hardware, JobProfile

H100 = GpuSpec("H100", peak_tflops_fp16=1000, peak_tflops_fp32=60, memory_bandwidth_gbps=3350)
SLOW_CPU = GpuSpec(CPU_MODEL, peak_tflops_fp16=4, peak_tflops_fp32=2, memory_bandwidth_gbps=200)
WIDE_CPU = GpuSpec(CPU_MODEL, peak_tflops_fp16=4, peak_tflops_fp32=2, memory_bandwidth_gbps=1000)
GPU_NODE = make_node("gpu-0", model="H100", pool="h100", gpus=8)
CPU_NODE = make_node("cpu-0", model=CPU_MODEL, pool="cpu", gpus=0, cpu=64_000)
QUEUE = make_queue(gpus=16, model="H100")


def hardware(cpu_spec: GpuSpec | None = SLOW_CPU, cpu_price: float = 2.0) -> Hardware:
    return Hardware(
        models={"H100": H100},
        pools={} if cpu_spec is None else {"cpu": cpu_spec},
        gpu_hour_prices={("h100", False): 4.0},
        cpu_node_hour_prices={("cpu", False): cpu_price},
    )


COMPUTE_BOUND = JobProfile(operational_intensity=1000, total_flops=3.6e17)  # GPU 0.4, CPU 50
MEMORY_BOUND = JobProfile(operational_intensity=0.5, total_flops=3.6e17)  # GPU 239, wide cheap CPU 100
P, A, N = CpuFallback.PREFERRED, CpuFallback.ALLOWED, CpuFallback.NEVER
GPU_HOG = make_job("ns/hog", gpus=8, on=("gpu-0",), models=("H100",), preemptible=False)


def job(fallback: CpuFallback, *, after: float = 300.0, profile: JobProfile | None = None) -> Job:
    return make_job("ns/j", cpu=8_000, cpu_fallback=fallback, fallback_after=after, profile=profile)


def decide(
    pending: Job,
    running: tuple[Job, ...] = (),
    *,
    hw: Hardware | None = None,
    nodes: tuple = (GPU_NODE, CPU_NODE),
    queue: Queue = QUEUE,
) -> Decisions:
    return schedule(make_snapshot(nodes, (queue,), (pending,), running, hardware=hw or hardware()))


def where(decisions: Decisions) -> str:
    """`gpu-0` / `cpu-0 (CPU)` for the admitted job, else the code it waits with."""
    if decisions.admissions:
        (admission,) = decisions.admissions
        node = admission.placements[0].node
        return f"{node} (CPU)" if admission.device == Device.CPU else node
    (waiting,) = decisions.waiting
    return str(waiting.code)


CPU_FULL = make_job("ns/cpu-hog", gpu_milli=0, cpu=64_000, on=("cpu-0",))


@pytest.mark.parametrize(
    ("pending", "running", "hw", "expected"),
    [
        pytest.param(job(P), (), None, "cpu-0 (CPU)", id="preferred-without-profile-goes-to-cpu"),
        pytest.param(job(P, profile=COMPUTE_BOUND), (), None, "gpu-0", id="preferred-gpu-far-cheaper-goes-to-gpu"),
        pytest.param(
            job(P, profile=MEMORY_BOUND), (), hardware(WIDE_CPU, 0.5), "cpu-0 (CPU)", id="preferred-cpu-cheaper"
        ),
        pytest.param(
            job(P, profile=COMPUTE_BOUND), (), hardware(None), "cpu-0 (CPU)", id="preferred-no-cpu-figures-goes-to-cpu"
        ),
        pytest.param(job(P), (CPU_FULL,), None, "gpu-0", id="preferred-cpu-full-takes-a-gpu"),
        pytest.param(
            job(P, profile=COMPUTE_BOUND), (GPU_HOG,), None, "cpu-0 (CPU)", id="preferred-gpu-busy-past-bound"
        ),
        pytest.param(job(A), (), None, "gpu-0", id="allowed-takes-a-free-gpu-even-past-bound"),
        pytest.param(job(A, after=20_000), (GPU_HOG,), None, "InsufficientCapacity", id="allowed-waits-within-bound"),
        pytest.param(job(A), (GPU_HOG,), None, "cpu-0 (CPU)", id="allowed-goes-to-cpu-past-bound"),
        pytest.param(job(A), (GPU_HOG, CPU_FULL), None, "InsufficientCapacity", id="allowed-cpu-full-waits"),
        pytest.param(job(N), (GPU_HOG,), None, "InsufficientCapacity", id="never-never-goes-to-cpu"),
        pytest.param(job(N), (), None, "gpu-0", id="never-runs-on-gpu"),
    ],
)
def test_where_a_fallback_job_runs(pending: Job, running: tuple[Job, ...], hw: Hardware | None, expected: str) -> None:
    assert where(decide(pending, running, hw=hw)) == expected


@pytest.mark.parametrize(
    ("pending", "running", "reason"),
    [
        (job(P), (), "runs on CPU node cpu-0: cpuFallback Preferred and no profile says a GPU is much cheaper"),
        (
            job(A),
            (GPU_HOG,),
            "runs on CPU node cpu-0: waited 2h46m40s for a GPU, longer than its cpuFallbackAfter of 5m "
            "(cpuFallback Allowed)",
        ),
    ],
    ids=["preferred", "allowed"],
)
def test_the_admission_says_why_it_runs_on_cpu(pending: Job, running: tuple[Job, ...], reason: str) -> None:
    (admission,) = decide(pending, running).admissions
    assert (admission.device, admission.device_reason, admission.borrowed_gpus) == (Device.CPU, reason, 0.0)
    assert admission.placements == (WorkerPlacement(0, "cpu-0", ()),)


@pytest.mark.parametrize(
    "pending",
    [make_job("ns/g"), make_job("ns/g", gpu_milli=500), make_job("ns/g", profile=COMPUTE_BOUND)],
    ids=["whole-gpu", "share", "profiled"],
)
def test_gpu_jobs_never_land_on_cpu_pools(pending: Job) -> None:
    decisions = decide(pending, nodes=(CPU_NODE,), queue=make_queue(gpus=8, model=CPU_MODEL))
    assert not decisions.admissions and decisions.waiting[0].code == WaitCode.NO_FITTING_NODE


def test_a_profiled_gpu_job_does_not_count_a_cpu_pool_among_its_alternatives() -> None:
    (admission,) = decide(make_job("ns/g", profile=COMPUTE_BOUND)).admissions
    assert admission.model_choice is not None and admission.model_choice.alternatives == ()


def test_a_cpu_run_holds_no_gpu_quota() -> None:
    one_gpu = make_queue(gpus=1, model="H100")
    on_cpu = make_job("ns/cpu", gpu_milli=0, cpu=8_000, on=("cpu-0",), cpu_fallback=P)
    decisions = decide(make_job("ns/g"), (on_cpu,), queue=one_gpu)
    assert [(a.job_key, a.borrowed_gpus) for a in decisions.admissions] == [("ns/g", 0.0)]
    # and a queue without any quota still runs a fallback job on CPU
    assert where(decide(job(P), queue=make_queue(gpus=0, model="H100"))) == "cpu-0 (CPU)"


@pytest.mark.parametrize(
    ("profile", "cpus", "node_cpu", "expected"),
    [
        # 3.6e17 FLOP at min(4e12, 1000 x 2e11) x 8/64 = 5e11 FLOP/s: 200 h, at 2 x 8/64 per hour
        (COMPUTE_BOUND, 8_000, 64_000, 50.0),
        (COMPUTE_BOUND, 16_000, 64_000, 50.0),  # twice as fast, twice the share: the same cost
        (COMPUTE_BOUND, 128_000, 64_000, 50.0),  # more than the node: the whole node, the same cost
        # memory-bound: min(4e12, 0.5 x 2e11) x 8/64 = 1.25e10 FLOP/s, 8000 h at 0.25 per hour
        (MEMORY_BOUND, 8_000, 64_000, 2000.0),
        (COMPUTE_BOUND, 0, 64_000, None),
    ],
)
def test_cpu_cost(profile: JobProfile, cpus: int, node_cpu: int, expected: float | None) -> None:
    candidate = CpuCandidate("cpu", SLOW_CPU, 2.0, node_cpu)
    cost = cpu_cost(profile, make_job(cpu=cpus), candidate, {})
    assert cost == (None if expected is None else pytest.approx(expected))


def test_a_cpu_job_shape_is_cpu_only() -> None:
    assert WorkerShape(gpu_milli=0, cpu_milli=1).whole_gpus == 0
