"""Conversion from Kubernetes objects to the scheduling core's values, and back for status.

Who calls this: `gpupool.cluster.state.parsing` turns each GPUJob into the core's `Job` once, when
it enters the cache (`job_from_api`); `gpupool.cluster.translate.snapshot` turns GPUQueues and Nodes
into `Queue` and `GpuNode` (`queue_from_api`, `gpu_node_from_k8s`); the planner
(`gpupool.cluster.writes.plan`) turns admitted placements into the GPUJob status
(`placement_status`). The parsers (`parse_cpu_milli`, `parse_memory_bytes`,
`parse_duration_seconds`, `parse_timestamp`) are also what the rest of the adapter uses to
read quantities, durations and timestamps.

Units follow the core: milli-GPU, millicores, bytes, seconds since the epoch.

Node labels read here (written by `gpupool.cluster.nodes.kwok_nodes` and by whoever labels real
nodes): `gpupool.io/gpu-model`, `gpupool.io/pool`, `gpupool.io/class` (`OnPrem`|`Cloud`),
`gpupool.io/spot` (`"true"`), and those of NVIDIA's GPU feature discovery (GFD):
`nvidia.com/gpu.product`, `nvidia.com/gpu.replicas`, `nvidia.com/gpu.sharing-strategy`,
`nvidia.com/mig.strategy`. A node's model is its `gpupool.io/gpu-model` label (an override),
else its GFD product mapped through the catalogue (`gpupool.catalogue.products`), else its
pool's `spec.gpuModel`; pool and class come from the GPUNodePool whose `nodeSelector` matches
it. What a node reports and what gpupool makes of it (time-slicing, MPS, MIG, an unknown
product) is docs/architecture.md, "Node inventory".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gpupool.api import (
    DEFAULT_CPU_FALLBACK_AFTER,
    Budget,
    GPUJob,
    GPUJobSpec,
    GPUNodePool,
    GPUQueue,
    JobPhase,
    JobProfile,
    QueueQuota,
    WorkerPlacementStatus,
)
from gpupool.catalogue import gpu_products
from gpupool.catalogue.products import gpu_model_for_product, parse_product
from gpupool.core import roofline
from gpupool.core.budget import BudgetLimits, BudgetStanding
from gpupool.core.models import (
    MILLI_PER_GPU,
    CpuFallback,
    Device,
    GpuNode,
    GpuSlice,
    Job,
    PlacementPolicy,
    PoolClass,
    PreemptionRules,
    Queue,
    QueueingStrategy,
    Quota,
    Taint,
    Toleration,
    WorkerPlacement,
    WorkerShape,
)

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_GPU_MODEL = "gpupool.io/gpu-model"
LABEL_POOL = "gpupool.io/pool"
LABEL_CLASS = "gpupool.io/class"
LABEL_SPOT = "gpupool.io/spot"
# Labels and resources of NVIDIA's GPU feature discovery and device plugin.
GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_REPLICAS = "nvidia.com/gpu.replicas"
GFD_SHARING_STRATEGY = "nvidia.com/gpu.sharing-strategy"
GFD_MIG_STRATEGY = "nvidia.com/mig.strategy"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
SHARING_STRATEGIES = frozenset({"time-slicing", "mps"})
KUBELET_DEFAULT_MAX_PODS = 110
"""Pods a node may run when it reports no `pods` (the kubelet's `--max-pods` default)."""

# Phases in which a job holds GPUs: its status placement is the allocation.
HOLDING_PHASES = frozenset({JobPhase.ADMITTED, JobPhase.RUNNING})


class ConversionError(ValueError):
    """A Kubernetes value cannot be turned into a core value; the message names the object,
    the field and the accepted forms, so a person can fix the object."""


class RefusedNode(ConversionError):
    """A node gpupool would schedule onto (it has a pool, or a `gpupool.io/gpu-model` label)
    but will not: its GPUs are MIG partitions, its GFD product is not in the catalogue, its
    labels contradict its pool or cannot be read. `reason` is a CamelCase code (the pool
    status condition's reason), `pool` the node's pool name ("" when it has none)."""

    def __init__(self, message: str, *, reason: str, pool: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.pool = pool


# --- quantities -----------------------------------------------------------------------------

_QUANTITY_RE = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: str | int | float, *, what: str = "quantity") -> Decimal:
    """The exact value of a Kubernetes quantity (`"500m"` -> 0.5, `"16Gi"` -> 17179869184).

    `what` names the field in the error message (e.g. `"spec.cpu of GPUJob team-a/train"`).
    """
    if isinstance(value, bool):
        raise ConversionError(f"{what}: expected a quantity such as 4, 500m or 16Gi, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(f"{what}: {value} is not a finite quantity")
        return Decimal(repr(value))
    match = _QUANTITY_RE.match(value.strip())
    if match is None:
        raise ConversionError(
            f"{what}: {value!r} is not a Kubernetes quantity; use forms such as 4, 500m, 1.5, 16Gi or 1G"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as err:  # pragma: no cover - the regex admits only valid decimals
        raise ConversionError(f"{what}: {value!r} is not a number") from err
    if match["sign"] == "-":
        number = -number
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["decimal"]:
        return number.scaleb(_DECIMAL[match["decimal"]])
    if match["exponent"]:
        return number.scaleb(int(match["exponent"]))
    return number


def _non_negative(value: Decimal, what: str, raw: object) -> Decimal:
    if value < 0:
        raise ConversionError(f"{what}: {raw!r} is negative; use a value >= 0")
    return value


def parse_cpu_milli(value: str | int | float, *, what: str = "cpu") -> int:
    """CPU quantity -> millicores, rounded up as Kubernetes does (`"500m"` -> 500, `"2"` -> 2000)."""
    cores = _non_negative(parse_quantity(value, what=what), what, value)
    return math.ceil(cores * 1000)


def parse_memory_bytes(value: str | int | float, *, what: str = "memory") -> int:
    """Memory quantity -> bytes, rounded up (`"16Gi"` -> 17179869184, `"1G"` -> 10**9)."""
    return math.ceil(_non_negative(parse_quantity(value, what=what), what, value))


# --- durations and timestamps ----------------------------------------------------------------

_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|h|m|s)")
_DURATION_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration_seconds(value: str, *, what: str = "duration") -> float:
    """A Go-style duration -> seconds (`"1h30m"` -> 5400.0, `"90s"` -> 90.0, `"0"` -> 0.0).

    Accepts what the CRDs accept (`30s`, `90m`, `2h`, `1h30m`) and the rest of Go's
    `time.ParseDuration` syntax (`1.5h`, `300ms`), so settings can use the same parser.
    """
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART_RE.match(text, pos)
        if match is None:
            raise ConversionError(f"{what}: {value!r} is not a duration; use forms such as 30s, 90m, 2h or 1h30m")
        total += float(match[1]) * _DURATION_UNIT_SECONDS[match[2]]
        pos = match.end()
    if not text:
        raise ConversionError(f"{what}: empty duration; use forms such as 30s, 90m, 2h or 1h30m")
    return total


def parse_timestamp(value: str | datetime | None) -> float | None:
    """An RFC 3339 timestamp (as in `metadata.creationTimestamp`) -> seconds since the epoch.

    A timestamp without a zone is taken as UTC, as the API server writes them; None stays None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as err:
            raise ConversionError(f"{value!r} is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z") from err
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --- jobs ------------------------------------------------------------------------------------


def gpu_milli(gpus: float) -> int:
    """GPUs per worker -> milli-GPU: a whole number n -> n*1000, a fraction f -> round(f*1000).

    A fraction that rounds to 0 or to a whole GPU is refused, since the core would read it as
    a CPU-only worker or as a whole GPU; the CRD already rejects such values.
    """
    if gpus >= 1:
        if gpus != int(gpus):
            raise ConversionError(f"gpus={gpus}: use a whole number of GPUs or a fraction below 1")
        return int(gpus) * MILLI_PER_GPU
    milli = round(gpus * MILLI_PER_GPU)
    if not 0 < milli < MILLI_PER_GPU:
        raise ConversionError(f"gpus={gpus}: a share of a GPU must be between 0.001 and 0.999")
    return milli


def job_key(namespace: str, name: str) -> str:
    """The core's stable job key, `namespace/name`."""
    return f"{namespace}/{name}"


def _object_name(metadata: Mapping[str, Any], kind: str) -> tuple[str, str]:
    name = metadata.get("name")
    if not name:
        raise ConversionError(f"{kind} has no metadata.name; only objects read from the API server can be converted")
    return str(metadata.get("namespace") or ""), str(name)


def worker_shape(spec: GPUJobSpec, *, what: str = "GPUJob") -> WorkerShape:
    """The per-worker request of a GPUJob spec in core units."""
    return WorkerShape(
        gpu_milli=gpu_milli(spec.gpus),
        cpu_milli=parse_cpu_milli(spec.cpu, what=f"spec.cpu of {what}") if spec.cpu is not None else 0,
        memory_bytes=(parse_memory_bytes(spec.memory, what=f"spec.memory of {what}") if spec.memory is not None else 0),
    )


def toleration_from_k8s(raw: Mapping[str, Any]) -> Toleration:
    """One pod toleration dict (`key`, `operator`, `value`, `effect`) -> core `Toleration`."""
    operator = str(raw.get("operator") or "Equal")
    if operator not in ("Equal", "Exists"):
        raise ConversionError(f"toleration {dict(raw)}: operator must be Equal or Exists, not {operator!r}")
    return Toleration(
        key=str(raw.get("key") or ""),
        operator=operator,
        value=str(raw.get("value") or ""),
        effect=str(raw.get("effect") or ""),
    )


def tolerations_from_pod_spec(pod_spec: Mapping[str, Any]) -> tuple[Toleration, ...]:
    """The tolerations of a pod spec (a GPUJob's `template.spec`), in order."""
    raw = pod_spec.get("tolerations") or []
    if not isinstance(raw, list):
        raise ConversionError("template.spec.tolerations must be a list of tolerations")
    return tuple(toleration_from_k8s(t) for t in raw)


def _placements_from_status(job: GPUJob) -> tuple[WorkerPlacement, ...]:
    return placements_of(job.status.placement)


def placements_of(placement: Sequence[WorkerPlacementStatus]) -> tuple[WorkerPlacement, ...]:
    """A `status.placement` list -> the core's placements (the snapshot passes one whose
    devices its nodes report, `gpupool.cluster.translate.devices`)."""
    result = []
    for p in sorted(placement, key=lambda p: p.worker):
        milli = round(p.gpu_share * MILLI_PER_GPU)
        result.append(
            WorkerPlacement(
                worker=p.worker,
                node=p.node,
                gpus=tuple(GpuSlice(index=i, milli=milli) for i in p.gpu_indices),
            )
        )
    return tuple(result)


def profile_from_api(profile: JobProfile) -> roofline.JobProfile:
    """A GPUJob's `spec.profile` -> the core's `JobProfile` (the enums are the core's own)."""
    reference = profile.reference_runtime
    return roofline.JobProfile(
        operational_intensity=profile.operational_intensity,
        total_flops=profile.total_flops,
        reference=None if reference is None else roofline.ReferenceRuntime(reference.model, reference.seconds),
        precision=profile.precision,
        optimize=profile.optimize,
    )


def gpu_spec_of_pool(pool: GPUNodePool) -> roofline.GpuSpec | None:
    """A GPUNodePool's `spec.gpuModelSpec` as the core's `GpuSpec` of its model (None: unset)."""
    given = pool.spec.gpu_model_spec
    if given is None:
        return None
    return roofline.GpuSpec(
        pool.spec.gpu_model,
        peak_tflops_fp16=given.peak_tflops_fp16,
        peak_tflops_fp32=given.peak_tflops_fp32,
        memory_bandwidth_gbps=given.memory_bandwidth_gbps,
        memory_gib=given.memory_gib,
    )


def job_from_api(job: GPUJob) -> Job:
    """A GPUJob -> the core's `Job`.

    `submitted_at` is the creation time (server-set, survives operator restarts), so FIFO
    order is stable. A job in phase Admitted or Running carries the placements recorded in
    its status (what it holds); in any other phase it is pending or finished and carries none.
    A job holding a CPU-only node (`status.device` CPU, see `gpupool.core.cpufallback`)
    gets a shape without GPUs, so it holds no GPU and no quota.
    """
    namespace, name = _object_name(job.metadata, "GPUJob")
    key = job_key(namespace, name)
    spec = job.spec
    holding = job.status.phase in HOLDING_PHASES
    submitted = parse_timestamp(job.metadata.get("creationTimestamp")) or parse_timestamp(job.status.queued_at)
    admitted_at = parse_timestamp(job.status.admitted_at) if holding else None
    shape = worker_shape(spec, what=f"GPUJob {key}")
    if holding and job.status.device == Device.CPU:
        shape = replace(shape, gpu_milli=0)
    return Job(
        key=key,
        queue=spec.queue,
        shape=shape,
        workers=spec.workers,
        priority=spec.priority,
        gpu_models=tuple(spec.gpu_models),
        placement_policy=PlacementPolicy(spec.placement.value),
        preemptible=spec.preemptible,
        submitted_at=submitted or 0.0,
        tolerations=tolerations_from_pod_spec(spec.template.spec),
        admitted_at=admitted_at,
        placements=_placements_from_status(job) if holding else (),
        max_runtime_seconds=(
            parse_duration_seconds(spec.max_runtime, what=f"GPUJob {key}: spec.maxRuntime")
            if spec.max_runtime
            else None
        ),
        profile=profile_from_api(spec.profile) if spec.profile is not None else None,
        cpu_fallback=spec.cpu_fallback or CpuFallback.NEVER,
        cpu_fallback_after_seconds=parse_duration_seconds(
            spec.cpu_fallback_after or DEFAULT_CPU_FALLBACK_AFTER, what=f"GPUJob {key}: spec.cpuFallbackAfter"
        ),
    )


def placement_status(
    placements: Sequence[WorkerPlacement],
    nodes: Mapping[str, GpuNode],
    pod_name: Callable[[int], str],
) -> list[WorkerPlacementStatus]:
    """Core placements of one admitted job -> the GPUJob's `status.placement` list.

    Who calls this: the planner (`gpupool.cluster.writes.plan`), when it records an admission;
    `pod_name(worker)` gives the deterministic pod name of each worker. `nodes` (by name) supplies pool and GPU model.
    """
    result = []
    for p in sorted(placements, key=lambda p: p.worker):
        node = nodes.get(p.node)
        share = p.gpus[0].milli / MILLI_PER_GPU if p.gpus else 1.0
        result.append(
            WorkerPlacementStatus(
                worker=p.worker,
                pod=pod_name(p.worker),
                node=p.node,
                pool=node.pool if node else "",
                gpu_model=node.gpu_model if node else "",
                gpu_indices=[s.index for s in p.gpus],
                gpu_share=share,
            )
        )
    return result


# --- queues ----------------------------------------------------------------------------------


def quota_from_api(quota: QueueQuota) -> Quota:
    """One `spec.quotas[]` entry -> core `Quota`."""
    return Quota(
        nominal_gpus=quota.nominal,
        gpu_model=quota.gpu_model,
        pool=quota.pool,
        borrowing_limit_gpus=quota.borrowing_limit,
        lending_limit_gpus=quota.lending_limit,
    )


def budget_from_api(budget: Budget) -> BudgetLimits:
    """A GPUQueue's `spec.budget` -> core `BudgetLimits` (the enums are the core's own)."""
    return BudgetLimits(budget.amount, budget.currency, budget.period, budget.gpu_hours, budget.scope)


def queue_from_api(
    queue: GPUQueue,
    *,
    decayed_usage_gpu_seconds: float = 0.0,
    budget_exhausted: bool = False,
    budget: BudgetStanding | None = None,
) -> Queue:
    """A GPUQueue -> the core's `Queue`.

    The keyword arguments are history the API object does not hold: the adapter keeps the
    decayed usage (see `gpupool.core.fairshare`) and `gpupool.cluster.translate.spend` derives the
    budget's standing, which fills `budget_exhausted` (also forced by `budget_exhausted`),
    `budget_left` and `budget_standing`.
    """
    name = queue.metadata.get("name")
    if not name:
        raise ConversionError("GPUQueue has no metadata.name; only objects read from the API server can be converted")
    spec = queue.spec
    min_runtime = spec.preemption.min_runtime
    return Queue(
        name=str(name),
        quotas=tuple(quota_from_api(q) for q in spec.quotas),
        cohort=spec.cohort,
        weight=spec.weight,
        max_priority=spec.max_priority,
        strategy=QueueingStrategy(spec.queueing_strategy.value),
        preemption=PreemptionRules(
            reclaim_within_cohort=spec.preemption.reclaim_within_cohort,
            within_queue=spec.preemption.within_queue,
            min_runtime_seconds=(
                parse_duration_seconds(min_runtime, what=f"spec.preemption.minRuntime of GPUQueue {name}")
                if min_runtime
                else 0.0
            ),
        ),
        allow_cloud=spec.allow_cloud,
        allow_spot=spec.allow_spot,
        decayed_usage_gpu_seconds=decayed_usage_gpu_seconds,
        budget_exhausted=budget_exhausted or (budget is not None and budget.exhausted),
        budget_left=budget.left if budget is not None else None,
        budget_standing=budget,
    )


# --- nodes -----------------------------------------------------------------------------------


def taint_from_k8s(raw: Mapping[str, Any]) -> Taint:
    """One `spec.taints[]` entry of a Node -> core `Taint`."""
    return Taint(
        key=str(raw.get("key") or ""),
        value=str(raw.get("value") or ""),
        effect=str(raw.get("effect") or "NoSchedule"),
    )


def pool_for_node(labels: Mapping[str, str], pools: Sequence[GPUNodePool]) -> GPUNodePool | None:
    """The GPUNodePool a node belongs to: the one its `gpupool.io/pool` label names, else the
    first (by name) whose `nodeSelector` matches its labels, else None."""
    by_name = {str(p.metadata.get("name", "")): p for p in pools}
    named = labels.get(LABEL_POOL)
    if named and named in by_name:
        return by_name[named]
    for name in sorted(by_name):
        if by_name[name].spec.selects(dict(labels)):
            return by_name[name]
    return None


# Taints Kubernetes puts on a node that cannot take pods yet (or any more): a node that
# carries one is not ready, whatever its Ready condition says in the moment between them.
NOT_READY_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.cloudprovider.kubernetes.io/uninitialized",
    }
)


def _node_ready(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if any((t or {}).get("key") in NOT_READY_TAINTS for t in spec.get("taints") or []):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


@dataclass(frozen=True, slots=True)
class GpuSharing:
    """How the device plugin shares a node's GPUs (GFD's labels): `replicas` (> 1) of each
    GPU are offered as `nvidia.com/gpu`, by `strategy` (`time-slicing`, `mps`, or the
    label's value as found)."""

    strategy: str
    replicas: int


def gpu_sharing(labels: Mapping[str, str], where: str) -> GpuSharing | None:
    """The node's GPU sharing from GFD's `nvidia.com/gpu.replicas` (an int; > 1 means shared)
    and `nvidia.com/gpu.sharing-strategy`; None when its GPUs are not shared. Raises
    `ConversionError` when the labels cannot be read or contradict each other (a `-SHARED`
    product or a sharing strategy without replicas > 1): the node's GPU count is unknown then.
    """
    raw = labels.get(GFD_REPLICAS)
    strategy = (labels.get(GFD_SHARING_STRATEGY) or "").strip()
    replicas = 0
    if raw is not None and raw.strip():
        try:
            replicas = int(raw.strip())
        except ValueError as err:
            raise ConversionError(f"{where}: label {GFD_REPLICAS}={raw!r} must be a whole number") from err
    if replicas > 1:
        return GpuSharing(strategy or "unknown", replicas)
    product = labels.get(GFD_PRODUCT) or ""
    if strategy in SHARING_STRATEGIES or parse_product(product).shared:
        said = f"{GFD_SHARING_STRATEGY}={strategy}" if strategy in SHARING_STRATEGIES else f"{GFD_PRODUCT}={product}"
        raise ConversionError(
            f"{where}: label {said} says its GPUs are shared but {GFD_REPLICAS} is {raw!r}, so gpupool cannot "
            f"tell how many GPUs it has; fix the device plugin's sharing config or GFD's labels"
        )
    return None


def mig_partitions(resources: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """What shows the node's GPUs are MIG partitions, or None: `nvidia.com/mig-<profile>`
    resources (MIG strategy mixed), or a GFD product naming a MIG profile (strategy single,
    where the partitions are offered as `nvidia.com/gpu`)."""
    found = []
    for key in sorted(resources):
        if key.startswith(MIG_RESOURCE_PREFIX):
            try:
                present = parse_quantity(resources[key]) > 0
            except ConversionError:
                present = True
            if present:
                found.append(f"{key}: {resources[key]}")
    if found:
        return ", ".join(found)
    product = labels.get(GFD_PRODUCT) or ""
    if parse_product(product).mig_profile is not None:
        strategy = labels.get(GFD_MIG_STRATEGY)
        return f"{GFD_PRODUCT}={product}" + (f", {GFD_MIG_STRATEGY}={strategy}" if strategy else "")
    return None


def unused_gpu_node(node: Mapping[str, Any]) -> str | None:
    """For a node gpupool does not use (no pool selects it, no `gpupool.io/gpu-model`
    label) that reports NVIDIA GPUs, the sentence to log; None for any other node."""
    metadata = node.get("metadata") or {}
    labels: Mapping[str, str] = metadata.get("labels") or {}
    status = node.get("status") or {}
    resources: dict[str, Any] = {**(status.get("capacity") or {}), **(status.get("allocatable") or {})}
    product = labels.get(GFD_PRODUCT)
    try:
        gpus = parse_quantity(resources.get(GPU_RESOURCE, 0)) > 0
    except ConversionError:
        gpus = True
    if not product and not gpus and mig_partitions(resources, labels) is None:
        return None
    shown = f"{GFD_PRODUCT}={product}" if product else f"{GPU_RESOURCE}={resources.get(GPU_RESOURCE, 0)}"
    return (
        f"node {metadata.get('name')} reports NVIDIA GPUs ({shown}) but no GPUNodePool selects it and it has no "
        f"{LABEL_GPU_MODEL} label: gpupool does not use it; add it to a pool (label {LABEL_POOL} or a pool's "
        f"nodeSelector) to use it"
    )


def shared_gpus_message(node: Mapping[str, Any], converted: GpuNode) -> str:
    """The pool status sentence for `converted`, a `shares_only` node, from its raw Node."""
    labels: Mapping[str, str] = (node.get("metadata") or {}).get("labels") or {}
    sharing = gpu_sharing(labels, f"node {converted.name}") or GpuSharing("unknown", 1)
    status = node.get("status") or {}
    offered = {**(status.get("capacity") or {}), **(status.get("allocatable") or {})}.get(GPU_RESOURCE, 0)
    return (
        f"node {converted.name}: {GPU_RESOURCE}={offered} are {sharing.strategy} replicas ({sharing.replicas} per "
        f"GPU) of {converted.gpus} GPUs; gpupool places only GPU shares there, never whole-GPU workers (for "
        f"whole GPUs the device plugin picks replicas, possibly several of one GPU, that other pods share)"
    )


def gpu_node_from_k8s(
    node: Mapping[str, Any],
    pools: Sequence[GPUNodePool] = (),
    products: Mapping[str, str] | None = None,
) -> GpuNode | None:
    """A raw Node dict (from a list or watch) -> core `GpuNode`, or None for a node gpupool
    does not schedule onto (no pool selects it and it has no `gpupool.io/gpu-model` label,
    or it has neither a model label, a GFD product nor a pool model).

    The model is the `gpupool.io/gpu-model` label when set (an override), else the GFD
    product (`nvidia.com/gpu.product`) mapped through `products` (the catalogue's,
    `gpupool.catalogue.gpu_products()`, unless given), else the pool's `spec.gpuModel`.
    Resources come from `status.allocatable` (falling back to `capacity`), so GPUs the
    device plugin reports unhealthy are not counted; a node that reports no `pods` gets the
    kubelet's default of 110. When GFD labels time-slicing or MPS replicas
    (`nvidia.com/gpu.replicas` > 1), the node has allocatable / replicas GPUs (rounded
    down) and is `shares_only`. A node is `ready` when its Ready condition is True, it is
    not cordoned (`spec.unschedulable`) and it carries none of the `NOT_READY_TAINTS`, so
    the core never places new work on a node the kubelet or the kube-scheduler would refuse.

    Raises `RefusedNode` (a `ConversionError`) for a node gpupool will not place on, with
    the reason: MIG partitions (`MIGPartitions`), a product the catalogue does not know
    (`UnknownGPUProduct`), a product of another model than its pool's (`GPUModelMismatch`),
    sharing labels that cannot be read (`InvalidSharingLabels`), any other label or
    quantity that cannot be read (`UnreadableNode`); the message names the node and what
    to fix.
    """
    metadata = node.get("metadata") or {}
    name = str(metadata.get("name") or "")
    labels: dict[str, str] = dict(metadata.get("labels") or {})
    pool = pool_for_node(labels, pools)
    override = labels.get(LABEL_GPU_MODEL)
    if not override and pool is None:
        return None
    pool_name = labels.get(LABEL_POOL) or (str(pool.metadata.get("name", "")) if pool else "")
    status = node.get("status") or {}
    resources: dict[str, Any] = {**(status.get("capacity") or {}), **(status.get("allocatable") or {})}
    where = f"node {name}"

    def refuse(reason: str, message: str) -> RefusedNode:
        return RefusedNode(f"{where}: {message}", reason=reason, pool=pool_name)

    mig = mig_partitions(resources, labels)
    if mig is not None:
        raise refuse(
            "MIGPartitions",
            f"exposes MIG partitions ({mig}); gpupool does not place on MIG yet (it counts whole GPUs and shares "
            f"of them, and a MIG partition is neither; see issue DRA): disable MIG on its GPUs or take it out of "
            f"the pool",
        )
    product = labels.get(GFD_PRODUCT)
    model = override or ""
    if not model and product:
        mapped = gpu_model_for_product(product, gpu_products() if products is None else products)
        if mapped is None:
            raise refuse(
                "UnknownGPUProduct",
                f"{GFD_PRODUCT}={product} is not a product of gpupool's GPU catalogue; label the node "
                f"{LABEL_GPU_MODEL}=<model> (it overrides the product) or add {product} to the products of its "
                f"model in catalogue/gpu_models.yaml",
            )
        if pool is not None and pool.spec.gpu_model != mapped:
            raise refuse(
                "GPUModelMismatch",
                f"{GFD_PRODUCT}={product} is model {mapped} but its pool {pool_name} is of model "
                f"{pool.spec.gpu_model}; fix the pool's nodeSelector or spec.gpuModel, or label the node "
                f"{LABEL_GPU_MODEL} to override the product",
            )
        model = mapped
    if not model:
        model = pool.spec.gpu_model if pool else ""
    if not model:
        return None
    try:
        sharing = gpu_sharing(labels, where)
    except ConversionError as err:
        raise RefusedNode(str(err), reason="InvalidSharingLabels", pool=pool_name) from err
    try:
        return _gpu_node(node, name, labels, pool, pool_name, model, resources, sharing)
    except ConversionError as err:
        raise RefusedNode(str(err), reason="UnreadableNode", pool=pool_name) from err


def _gpu_node(
    node: Mapping[str, Any],
    name: str,
    labels: Mapping[str, str],
    pool: GPUNodePool | None,
    pool_name: str,
    model: str,
    resources: Mapping[str, Any],
    sharing: GpuSharing | None,
) -> GpuNode:
    where = f"node {name}"
    class_label = labels.get(LABEL_CLASS)
    if class_label is not None:
        try:
            pool_class = PoolClass(class_label)
        except ValueError as err:
            raise ConversionError(
                f"{where}: label {LABEL_CLASS}={class_label!r} must be OnPrem or Cloud; fix the node's label"
            ) from err
    else:
        pool_class = PoolClass(pool.spec.pool_class.value) if pool else PoolClass.ON_PREM
    gpus_raw = resources.get(GPU_RESOURCE, 0)
    gpus = parse_quantity(gpus_raw, what=f"{where}: {GPU_RESOURCE}")
    if gpus < 0 or gpus != int(gpus):
        raise ConversionError(f"{where}: {GPU_RESOURCE}={gpus_raw!r} must be a whole number of GPUs")
    taints = tuple(taint_from_k8s(t) for t in (node.get("spec") or {}).get("taints") or [])
    pods_raw = resources.get("pods", KUBELET_DEFAULT_MAX_PODS)
    max_pods = parse_quantity(pods_raw, what=f"{where}: pods")
    if max_pods < 0 or max_pods != int(max_pods):
        raise ConversionError(f"{where}: pods={pods_raw!r} must be a whole number of pods")
    return GpuNode(
        name=name,
        gpu_model=model,
        gpus=int(gpus) // sharing.replicas if sharing else int(gpus),
        cpu_milli=parse_cpu_milli(resources.get("cpu", 0), what=f"{where}: cpu"),
        memory_bytes=parse_memory_bytes(resources.get("memory", 0), what=f"{where}: memory"),
        pool=pool_name,
        pool_class=pool_class,
        spot=labels.get(LABEL_SPOT, "").lower() == "true",
        taints=taints,
        ready=_node_ready(node),
        max_pods=int(max_pods),
        shares_only=sharing is not None,
    )
