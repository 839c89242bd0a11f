"""Builders for core values with sensible defaults, so each test states only what matters.

Who uses this: the unit tests of the core, the placement engine and the sims, as
`from builders import make_node` (`tests/` is on `sys.path`: pytest puts the directory of
the rootdir conftest there). A test file whose cases share other defaults binds them once
with `functools.partial`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gpupool.core.budget import BudgetStanding
from gpupool.core.models import (
    NO_POD_LIMIT,
    CpuFallback,
    GpuNode,
    GpuSlice,
    InFlightNode,
    Job,
    NodeOffer,
    PlacementPolicy,
    PoolClass,
    PreemptionRules,
    Queue,
    QueueingStrategy,
    Quota,
    Snapshot,
    Taint,
    Toleration,
    WorkerPlacement,
    WorkerShape,
)
from gpupool.core.roofline import NO_HARDWARE, Hardware, JobProfile

GIB = 1024**3


def utc(text: str) -> float:
    """`2026-01-07T10:00` (read as UTC) -> seconds since the epoch, as the core's clock counts."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def make_node(
    name: str = "n1",
    *,
    gpus: int = 8,
    model: str = "H100",
    pool: str = "",
    cloud: bool = False,
    spot: bool = False,
    taints: tuple[Taint, ...] = (),
    ready: bool = True,
    cpu: int = 256_000,
    memory: int = 2048 * GIB,
    reserved_gpus: int = 0,
    reserved_cpu: int = 0,
    reserved_memory: int = 0,
    max_pods: int = NO_POD_LIMIT,
    reserved_pods: int = 0,
    shares_only: bool = False,
    reserved_gpu_indices: tuple[int, ...] = (),
    accepts_shares: bool = True,
) -> GpuNode:
    """A GPU node; `reserved_*` is what pods gpupool does not manage hold on it
    (`reserved_gpu_indices`: those of its `reserved_gpus` the node reports);
    `shares_only` for GPUs shared as time-slicing or MPS replicas."""
    return GpuNode(
        name=name,
        gpu_model=model,
        gpus=gpus,
        cpu_milli=cpu,
        memory_bytes=memory,
        pool=pool,
        pool_class=PoolClass.CLOUD if cloud else PoolClass.ON_PREM,
        spot=spot,
        taints=taints,
        ready=ready,
        reserved_gpus=reserved_gpus,
        reserved_cpu_milli=reserved_cpu,
        reserved_memory_bytes=reserved_memory,
        max_pods=max_pods,
        reserved_pods=reserved_pods,
        shares_only=shares_only,
        reserved_gpu_indices=reserved_gpu_indices,
        accepts_shares=accepts_shares,
    )


def make_queue(
    name: str = "team-a",
    *,
    gpus: int | None = 1000,
    model: str = "H100",
    pool: str | None = None,
    quotas: tuple[Quota, ...] | None = None,
    cohort: str | None = None,
    borrowing: int | None = None,
    lending: int | None = None,
    weight: float = 1.0,
    max_priority: int | None = None,
    strict: bool = False,
    within_queue: bool = True,
    reclaim: bool = True,
    min_runtime: float = 0.0,
    allow_cloud: bool = True,
    allow_spot: bool = False,
    usage: float = 0.0,
    budget_exhausted: bool = False,
    budget_left: float | None = None,
    budget: BudgetStanding | None = None,
) -> Queue:
    if quotas is None:
        quotas = (
            ()
            if gpus is None
            else (
                Quota(
                    nominal_gpus=gpus,
                    gpu_model=None if pool is not None else model,
                    pool=pool,
                    borrowing_limit_gpus=borrowing,
                    lending_limit_gpus=lending,
                ),
            )
        )
    return Queue(
        name=name,
        quotas=quotas,
        cohort=cohort,
        weight=weight,
        max_priority=max_priority,
        strategy=QueueingStrategy.STRICT_FIFO if strict else QueueingStrategy.BEST_EFFORT_FIFO,
        preemption=PreemptionRules(
            reclaim_within_cohort=reclaim, within_queue=within_queue, min_runtime_seconds=min_runtime
        ),
        allow_cloud=allow_cloud,
        allow_spot=allow_spot,
        decayed_usage_gpu_seconds=usage,
        budget_exhausted=budget_exhausted,
        budget_left=budget_left,
        budget_standing=budget,
    )


def make_job(
    key: str = "ns/j1",
    *,
    queue: str = "team-a",
    gpus: float = 1,
    gpu_milli: int | None = None,
    workers: int = 1,
    priority: int = 0,
    models: tuple[str, ...] = (),
    policy: PlacementPolicy = PlacementPolicy.ON_PREM_ONLY,
    preemptible: bool = True,
    submitted_at: float = 0.0,
    tolerations: tuple[Toleration, ...] = (),
    cpu: int = 0,
    memory: int = 0,
    admitted_at: float | None = None,
    on: tuple[str, ...] = (),
    first_gpu: int = 0,
    placements: tuple[WorkerPlacement, ...] = (),
    max_runtime: float | None = None,
    profile: JobProfile | None = None,
    cpu_fallback: CpuFallback = CpuFallback.NEVER,
    fallback_after: float = 300.0,
) -> Job:
    """A job of `gpus` GPUs per worker (or `gpu_milli` milli-GPU, when given).

    `on=("n1", ...)` makes it running with one worker per named node, holding GPUs from
    `first_gpu` upwards (give jobs sharing a node distinct ranges); `placements` gives the
    placements of a running job explicitly instead.
    """
    milli = gpu_milli if gpu_milli is not None else round(gpus * 1000)
    shape = WorkerShape(gpu_milli=milli, cpu_milli=cpu, memory_bytes=memory)
    if on:
        used: dict[str, int] = dict.fromkeys(on, first_gpu)
        out = []
        for worker, node in enumerate(on):
            if 0 < milli < 1000:
                slices: tuple[GpuSlice, ...] = (GpuSlice(used.get(node, 0), milli),)
                used[node] = used.get(node, 0) + 1
            else:
                first = used.get(node, 0)
                slices = tuple(GpuSlice(first + g, 1000) for g in range(milli // 1000))
                used[node] = first + milli // 1000
            out.append(WorkerPlacement(worker, node, slices))
        placements = tuple(out)
        if admitted_at is None:
            admitted_at = 0.0
    return Job(
        key=key,
        queue=queue,
        shape=shape,
        workers=workers if not on else len(on),
        priority=priority,
        gpu_models=models,
        placement_policy=policy,
        preemptible=preemptible,
        submitted_at=submitted_at,
        tolerations=tolerations,
        admitted_at=admitted_at,
        placements=placements,
        max_runtime_seconds=max_runtime,
        profile=profile,
        cpu_fallback=cpu_fallback,
        cpu_fallback_after_seconds=fallback_after,
    )


def make_snapshot(
    nodes: tuple[GpuNode, ...] | list[GpuNode],
    queues: tuple[Queue, ...] | list[Queue],
    pending: tuple[Job, ...] | list[Job] = (),
    running: tuple[Job, ...] | list[Job] = (),
    *,
    now: float = 10_000.0,
    seed: int = 0,
    offers: tuple[NodeOffer, ...] | list[NodeOffer] = (),
    in_flight: tuple[InFlightNode, ...] | list[InFlightNode] = (),
    nominations: dict[str, tuple[str, ...]] | None = None,
    hardware: Hardware = NO_HARDWARE,
) -> Snapshot:
    return Snapshot(
        now=now,
        nodes=tuple(nodes),
        queues=tuple(queues),
        running=tuple(running),
        pending=tuple(pending),
        seed=seed,
        offers=tuple(offers),
        in_flight=tuple(in_flight),
        nominations=nominations or {},
        hardware=hardware,
    )


def make_offer(
    pool: str = "cloud-h100",
    *,
    gpus: int = 8,
    model: str = "H100",
    price: float = 32.0,
    headroom: int = 10,
    cloud: bool = True,
    spot: bool = False,
    taints: tuple[Taint, ...] = (),
    cpu: int = 256_000,
    memory: int = 2048 * GIB,
) -> NodeOffer:
    """A pool the autoscaler may grow: nodes of `gpus` `model` GPUs at `price` per node-hour."""
    template = make_node(
        f"{pool}-template",
        gpus=gpus,
        model=model,
        pool=pool,
        cloud=cloud,
        spot=spot,
        taints=taints,
        cpu=cpu,
        memory=memory,
    )
    return NodeOffer(pool=pool, node=template, price_per_hour=price, headroom=headroom)


def make_in_flight(
    claim: str, offer: NodeOffer, *, jobs: tuple[str, ...] = (), requested_at: float = 9_960.0
) -> InFlightNode:
    """A node of `offer`'s pool requested (claim `claim`) for `jobs` and not Ready yet."""
    return InFlightNode(claim=claim, pool=offer.pool, node=offer.node, jobs=jobs, requested_at=requested_at)
