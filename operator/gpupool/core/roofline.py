"""Roofline estimates: how long a profiled job runs on a GPU model, what it costs, which to pick.

Who calls this: `gpupool.core.schedule` ranks the pools a profiled job may use
(`rank_candidates`) and tries them best first; `gpupool.core.autoscale` ranks the pools it
could grow for such a job by the same estimates (`estimate`) and projects its cost against
the queue's budget with them. The operator fills `Snapshot.hardware` (`Hardware`) from the
GPU model catalogue shipped with gpupool (`gpupool.catalogue`) and the GPUNodePools'
`gpuModelSpec` and prices, and turns a GPUJob's `spec.profile` into a `JobProfile`
(`gpupool.cluster.translate.convert`). Pure arithmetic: no I/O, no clock.

The model is Williams, Waterman and Patterson's roofline ("Roofline: an insightful visual
performance model for multicore architectures", CACM 52(4), 2009): a kernel of operational
intensity I (FLOP per byte moved to and from memory) on a chip of peak P (FLOP/s) and
memory bandwidth B (byte/s) attains min(P, I x B). Below the ridge point P / B the kernel
is memory-bound, above it compute-bound.

A job's work is given one of two ways:

- `total_flops`: the floating-point operations of the whole job, spread evenly over the
  gang's GPUs (workers x GPUs per worker; a share of a GPU counts as that fraction), so it
  runs total_flops / (GPUs x attainable) seconds;
- `reference`: a runtime measured for the same gang on GPUs of a named model, scaled by
  the ratio of attainable throughputs (reference model over candidate).

Cost is the runtime times the gang's GPUs times the pool's price per GPU-hour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

TERA = 1e12
GIGA = 1e9


class Precision(StrEnum):
    """The arithmetic a job's kernels mostly run in (GPUJob `spec.profile.precision`)."""

    FP16 = "FP16"
    FP32 = "FP32"


class Optimize(StrEnum):
    """What a profiled job would rather save (GPUJob `spec.profile.optimize`)."""

    COST = "Cost"
    TIME = "Time"


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """The roofline figures of one GPU model: dense peaks in TFLOPS, bandwidth in GB/s
    (10^9 byte/s), memory in GiB."""

    model: str
    peak_tflops_fp16: float
    peak_tflops_fp32: float
    memory_bandwidth_gbps: float
    memory_gib: float | None = None

    def peak_flops(self, precision: Precision) -> float:
        """Peak FLOP/s at `precision`."""
        tflops = self.peak_tflops_fp16 if precision == Precision.FP16 else self.peak_tflops_fp32
        return tflops * TERA

    @property
    def bandwidth_bytes(self) -> float:
        """Memory bandwidth in byte/s."""
        return self.memory_bandwidth_gbps * GIGA


def ridge_point(spec: GpuSpec, precision: Precision) -> float:
    """The operational intensity (FLOP/byte) above which a kernel is compute-bound."""
    return spec.peak_flops(precision) / spec.bandwidth_bytes


def attainable_flops(spec: GpuSpec, intensity: float, precision: Precision) -> float:
    """FLOP/s one GPU attains at `intensity` FLOP/byte: min(peak, intensity x bandwidth)."""
    return min(spec.peak_flops(precision), intensity * spec.bandwidth_bytes)


@dataclass(frozen=True, slots=True)
class ReferenceRuntime:
    """The job measured at `seconds` on GPUs of `model` (the same gang)."""

    model: str
    seconds: float


@dataclass(frozen=True, slots=True)
class JobProfile:
    """A GPUJob's `spec.profile`: exactly one of `total_flops` (whole job) and `reference`."""

    operational_intensity: float
    total_flops: float | None = None
    reference: ReferenceRuntime | None = None
    precision: Precision = Precision.FP16
    optimize: Optimize = Optimize.COST


@dataclass(frozen=True, slots=True)
class Hardware:
    """What the operator knows of the cluster's GPUs: a spec per model (the catalogue plus
    models pools add), per-pool overrides, and per (pool, spot) the price of a GPU-hour.
    A CPU pool (no GPUs) has no GPU-hour price: `cpu_node_hour_prices` holds its price of a
    node-hour, and its override, if any, gives a whole node's figures
    (`gpupool.core.cpufallback`)."""

    models: Mapping[str, GpuSpec] = field(default_factory=dict)
    pools: Mapping[str, GpuSpec] = field(default_factory=dict)
    gpu_hour_prices: Mapping[tuple[str, bool], float] = field(default_factory=dict)
    cpu_node_hour_prices: Mapping[tuple[str, bool], float] = field(default_factory=dict)

    def spec_for(self, pool: str, model: str) -> GpuSpec | None:
        """The spec of a GPU of `model` in `pool`: the pool's override, else the model's."""
        override = self.pools.get(pool)
        return override if override is not None else self.models.get(model)

    def gpu_hour_price(self, pool: str, spot: bool) -> float:
        """Price of one GPU-hour in `pool` (0 when unpriced)."""
        return self.gpu_hour_prices.get((pool, spot), 0.0)

    def cpu_node_hour_price(self, pool: str, spot: bool) -> float:
        """Price of one node-hour in CPU pool `pool` (0 when unpriced)."""
        return self.cpu_node_hour_prices.get((pool, spot), 0.0)


NO_HARDWARE = Hardware()


def estimate_seconds(profile: JobProfile, spec: GpuSpec, gpus: float, models: Mapping[str, GpuSpec]) -> float | None:
    """The job's runtime on `gpus` GPUs like `spec`; None when it cannot be estimated (the
    reference model is unknown, or no GPUs)."""
    rate = attainable_flops(spec, profile.operational_intensity, profile.precision)
    if rate <= 0 or gpus <= 0:
        return None
    if profile.total_flops is not None:
        return profile.total_flops / (gpus * rate)
    if profile.reference is None:
        return None
    reference = models.get(profile.reference.model)
    if reference is None:
        return None
    return (
        profile.reference.seconds * attainable_flops(reference, profile.operational_intensity, profile.precision) / rate
    )


@dataclass(frozen=True, slots=True)
class PoolCandidate:
    """One place a profiled job could run: a pool (and capacity type) of one GPU model."""

    pool: str
    model: str
    spot: bool
    spec: GpuSpec | None
    price_per_gpu_hour: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the job would take on one candidate: seconds and money (None: unknown)."""

    pool: str
    model: str
    spot: bool
    seconds: float | None
    cost: float | None


def estimate(profile: JobProfile, candidate: PoolCandidate, gpus: float, models: Mapping[str, GpuSpec]) -> Estimate:
    """Runtime and cost of the job on `candidate` (cost = runtime x GPUs x GPU-hour price)."""
    seconds = None if candidate.spec is None else estimate_seconds(profile, candidate.spec, gpus, models)
    cost = None if seconds is None else seconds / 3600.0 * gpus * candidate.price_per_gpu_hour
    return Estimate(candidate.pool, candidate.model, candidate.spot, seconds, cost)


def preference_key(optimize: Optimize, seconds: float | None, cost: float | None) -> tuple[float, float]:
    """Sort key of an estimate: cheapest then fastest under Cost, fastest then cheapest under
    Time; an unknown estimate sorts after every known one."""
    s = math.inf if seconds is None else seconds
    c = math.inf if cost is None else cost
    return (c, s) if optimize == Optimize.COST else (s, c)


def rank_candidates(
    profile: JobProfile, candidates: Sequence[PoolCandidate], gpus: float, models: Mapping[str, GpuSpec]
) -> tuple[Estimate, ...]:
    """Estimates for every candidate, best first by `profile.optimize`; ties go to the
    pool's name, then the model's, then on-demand before spot."""
    estimates = [estimate(profile, c, gpus, models) for c in candidates]
    return tuple(
        sorted(
            estimates,
            key=lambda e: (*preference_key(profile.optimize, e.seconds, e.cost), e.pool, e.model, e.spot),
        )
    )


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """Where a profiled job was placed and why: the chosen pool's estimate and, per other
    GPU model it could have used, that model's best estimate (best first)."""

    model: str
    pool: str
    optimize: Optimize
    seconds: float | None
    cost: float | None
    alternatives: tuple[Estimate, ...] = ()


def choice_of(chosen: Estimate, ranked: Sequence[Estimate], optimize: Optimize) -> ModelChoice:
    """The `ModelChoice` for `chosen` among `ranked` (best first): one alternative per other
    model, its best-ranked estimate."""
    seen = {chosen.model}
    alternatives = []
    for other in ranked:
        if other.model not in seen:
            seen.add(other.model)
            alternatives.append(other)
    return ModelChoice(chosen.model, chosen.pool, optimize, chosen.seconds, chosen.cost, tuple(alternatives))


__all__ = [
    "NO_HARDWARE",
    "Estimate",
    "GpuSpec",
    "Hardware",
    "JobProfile",
    "ModelChoice",
    "Optimize",
    "PoolCandidate",
    "Precision",
    "ReferenceRuntime",
    "attainable_flops",
    "choice_of",
    "estimate",
    "estimate_seconds",
    "preference_key",
    "rank_candidates",
    "ridge_point",
]
