"""CPU fallback: when a single-worker job runs on a CPU-only node (GPUJob `spec.cpuFallback`).

Who calls this: `gpupool.core.schedule`, for each pending job whose `cpu_fallback` is not
Never: `cpu_first` says whether a Preferred job tries a CPU-only node before any GPU,
`fallback_due` whether a job has waited long enough for a GPU that a CPU-only node may take
it now, `on_cpu` is the job as it is placed there and `is_cpu_node` marks the nodes it may
use. Pure: no I/O, and the clock is the snapshot's `now`.

The CPU option is the job's own shape with `gpu_milli` 0 on the nodes of CPU pools (model
`CPU_MODEL`, no GPUs); its GPU models do not apply there. It holds no GPU and no quota.

The CPU estimate reads a CPU pool's `gpuModelSpec` as the figures of one whole node: a job
that requests c of a node's C millicores gets c/C of its peak and bandwidth, so it runs at
min(peak, intensity x bandwidth) x c/C FLOP/s, and pays c/C of the node-hour price. Its
work is the profile's `totalFlops`, or its reference runtime times the reference gang's
GPUs times their attainable rate. A GPU is much cheaper when the best GPU estimate costs
less than `MUCH_CHEAPER` times the cheapest CPU estimate; without a profile, without
figures for any CPU pool or without a GPU estimate, the CPU is preferred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gpupool.core.models import CPU_MODEL, MILLI_PER_GPU, CpuFallback, GpuNode, Job
from gpupool.core.roofline import Estimate, GpuSpec, JobProfile, attainable_flops

MUCH_CHEAPER = 0.5
"""A Preferred job goes to a GPU first only when a GPU costs less than this share of the CPU."""


def is_cpu_node(node: GpuNode) -> bool:
    """True for a node of a CPU pool: model `CPU_MODEL` and no GPUs."""
    return node.gpus == 0 and node.gpu_model == CPU_MODEL


def on_cpu(job: Job) -> Job:
    """`job` as the CPU option places it: no GPU, any node model."""
    return replace(job, shape=replace(job.shape, gpu_milli=0), gpu_models=())


def fallback_due(job: Job, now: float) -> bool:
    """True when a job that allows CPU fallback has waited longer than its bound for a GPU."""
    return job.cpu_fallback != CpuFallback.NEVER and now - job.submitted_at > job.cpu_fallback_after_seconds


@dataclass(frozen=True, slots=True)
class CpuCandidate:
    """A CPU pool a job could run in: its node figures (None: unknown), price and size."""

    pool: str
    spec: GpuSpec | None
    node_hour_price: float
    node_cpu_milli: int


def cpu_cost(profile: JobProfile, job: Job, candidate: CpuCandidate, models: Mapping[str, GpuSpec]) -> float | None:
    """The estimated cost of `job` on a node of `candidate` (None: cannot be estimated)."""
    if candidate.spec is None or candidate.node_cpu_milli <= 0 or job.shape.cpu_milli <= 0:
        return None
    share = min(1.0, job.shape.cpu_milli / candidate.node_cpu_milli)
    rate = attainable_flops(candidate.spec, profile.operational_intensity, profile.precision) * share
    if rate <= 0:
        return None
    if profile.total_flops is not None:
        seconds = profile.total_flops / rate
    elif profile.reference is not None and profile.reference.model in models:
        reference = models[profile.reference.model]
        gang_gpus = job.total_gpu_milli / MILLI_PER_GPU
        done = attainable_flops(reference, profile.operational_intensity, profile.precision) * gang_gpus
        seconds = profile.reference.seconds * done / rate
    else:
        return None
    return seconds / 3600.0 * candidate.node_hour_price * share


@dataclass(frozen=True, slots=True)
class CpuVerdict:
    """Whether a Preferred job tries the CPU first, and why (a clause for the reason)."""

    first: bool
    why: str


NO_ESTIMATE = "no profile says a GPU is much cheaper"


def cpu_first(
    job: Job, cpus: Sequence[CpuCandidate], gpu_estimates: Sequence[Estimate], models: Mapping[str, GpuSpec]
) -> CpuVerdict:
    """Whether a Preferred `job` tries the CPU option before any GPU: yes unless its profile
    estimates the best GPU below `MUCH_CHEAPER` times the cheapest CPU pool it may use."""
    if job.profile is None:
        return CpuVerdict(True, NO_ESTIMATE)
    cpu_costs = [c for c in (cpu_cost(job.profile, job, cand, models) for cand in cpus) if c is not None]
    gpu_costs = [e.cost for e in gpu_estimates if e.cost is not None]
    if not cpu_costs or not gpu_costs:
        return CpuVerdict(True, NO_ESTIMATE)
    cpu, gpu = min(cpu_costs), min(gpu_costs)
    if gpu < MUCH_CHEAPER * cpu:
        return CpuVerdict(False, f"its profile estimates {gpu:.3g} on a GPU against {cpu:.3g} on CPU")
    return CpuVerdict(
        True, f"its profile estimates {cpu:.3g} on CPU against {gpu:.3g} at best on a GPU, not half as much"
    )


__all__ = [
    "MUCH_CHEAPER",
    "NO_ESTIMATE",
    "CpuCandidate",
    "CpuVerdict",
    "cpu_cost",
    "cpu_first",
    "fallback_due",
    "is_cpu_node",
    "on_cpu",
]
