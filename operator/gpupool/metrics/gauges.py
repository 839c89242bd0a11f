"""The gauges of one cycle, computed from values the scheduling loop already holds.

Who calls this: `gpupool.metrics.collect.OperatorMetrics.observe` once per cycle; the
result replaces the previous cycle's gauges as a whole (`CycleGauges.publish`), so a series
whose job, queue, pool or node is gone disappears at the next cycle. Everything here is a
pure function of the cycle's snapshot, decisions and the jobs and claims after its writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpupool.api import ClaimPhase, GPUJob, GPUNodeClaim, JobPhase, PoolClass
from gpupool.cluster.nodes.scaling import claim_in_flight
from gpupool.cluster.state.cache import CacheView, Kind
from gpupool.cluster.translate.convert import HOLDING_PHASES
from gpupool.cluster.translate.devices import gpu_uuid_of
from gpupool.cluster.translate.snapshot import ClusterSnapshot
from gpupool.cluster.writes.status import flavor_usage, pool_status
from gpupool.core.accounting import Holdings, PriceUnit, worker_cost_per_hour
from gpupool.core.models import Decisions, GpuNode, Job, WaitCode
from gpupool.core.placement.state import PlacementState
from gpupool.metrics.families import PENDING_REASONS, Family

Series = dict[tuple[str, ...], float]
Samples = dict[str, Series]
"""Gauge values by family name, then by label values (in the family's label order)."""

MILLI = 1000

REASON_CLASS: dict[str, str] = {
    WaitCode.QUOTA_EXHAUSTED: "quota",
    WaitCode.NO_FITTING_NODE: "capacity",
    WaitCode.INSUFFICIENT_CAPACITY: "capacity",
    WaitCode.NODES_PROVISIONING: "provisioning",
    WaitCode.WAITING_FOR_PREEMPTION: "preemption",
    WaitCode.BEHIND_HIGHER_PRIORITY: "ordering",
    WaitCode.BLOCKED_BY_HEAD_OF_LINE: "ordering",
    WaitCode.BUDGET_EXHAUSTED: "budget",
    WaitCode.PRIORITY_ABOVE_QUEUE_MAX: "config",
    WaitCode.QUEUE_NOT_FOUND: "config",
    # Reasons the snapshot gives jobs the core is not asked about (`Unschedulable.code`).
    "NamespaceNotAllowed": "config",
    "AdmissionRejected": "capacity",
}
"""The reason class of each wait code (`gpupool_queue_pending_jobs{reason}`); unknown: config."""

POOL_CLASS_LABEL = {PoolClass.ON_PREM: "on_prem", PoolClass.CLOUD: "cloud"}
"""`pool_class` label value of each GPUNodePool class (as `gpupool_queue_cost_total` has it)."""

LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_REGION = "topology.kubernetes.io/region"


class CycleGauges(Collector):
    """A collector serving the gauges of the last cycle; `publish` swaps them in one step, so a
    scrape sees one cycle's values, never half of two."""

    def __init__(self, families: Sequence[Family]) -> None:
        self.families = tuple(families)
        self._samples: Samples = {}

    def publish(self, samples: Samples) -> None:
        self._samples = samples

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(f.name, f.help, labels=f.label_names) for f in self.families]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        samples = self._samples
        for family in self.families:
            metric = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
            for labels, value in sorted(samples.get(family.name, {}).items()):
                metric.add_metric(labels, value)
            yield metric


@dataclass(frozen=True)
class GaugeInputs:
    """What the gauges are computed from: the cycle's snapshot and decisions, and the jobs and
    the cache after its writes."""

    snap: ClusterSnapshot
    decisions: Decisions
    jobs: Mapping[str, GPUJob]
    view: CacheView

    @cached_property
    def held(self) -> Holdings:
        """What the jobs hold by queue, flavor and pool (the same books as the statuses)."""
        return self.snap.holdings_of(self.jobs.values())


def cycle_samples(inputs: GaugeInputs, *, opencost: bool) -> Samples:
    """Every gauge of the cycle (the OpenCost-compatible ones only when `opencost`)."""
    samples: Samples = {}
    samples.update(queue_samples(inputs))
    samples.update(pool_samples(inputs))
    samples.update(allocation_samples(inputs.jobs, inputs.snap, opencost=opencost))
    if opencost:
        samples.update(opencost_node_samples(inputs))
    return samples


# --------------------------------------------------------------------------- queues


def queue_samples(inputs: GaugeInputs) -> Samples:
    """Jobs pending by reason class, admitted and running; quota, usage and budget per queue."""
    snap, jobs, held = inputs.snap, inputs.jobs, inputs.held
    queues = sorted(snap.queues)
    pending: Series = {(q, reason): 0.0 for q in queues for reason in PENDING_REASONS}
    waits = [(w.job_key, str(w.code)) for w in inputs.decisions.waiting]
    waits += [(key, reason.code) for key, reason in snap.unschedulable.items()]
    for key, code in waits:
        job = snap.jobs.get(key)
        if job is not None:
            series = (job.spec.queue, REASON_CLASS.get(code, "config"))
            pending[series] = pending.get(series, 0.0) + 1
    admitted: Series = {(q,): 0.0 for q in queues}
    running: Series = {(q,): 0.0 for q in queues}
    for job in jobs.values():
        if job.status.phase in HOLDING_PHASES:
            admitted[(job.spec.queue,)] = admitted.get((job.spec.queue,), 0.0) + 1
            if job.status.phase == JobPhase.RUNNING:
                running[(job.spec.queue,)] = running.get((job.spec.queue,), 0.0) + 1
    nominal: Series = {}
    limit: Series = {}
    used: Series = {}
    borrowed: Series = {}
    for name in queues:
        for usage in flavor_usage(name, snap, held):
            nominal[(name, usage.flavor)] = float(usage.nominal)
            used[(name, usage.flavor)] = usage.used
            borrowed[(name, usage.flavor)] = usage.borrowed
        core = snap.core_queues.get(name)
        for quota in core.quotas if core else ():
            if quota.borrowing_limit_gpus is not None:
                limit[(name, quota.flavor)] = float(quota.borrowing_limit_gpus)
    spent: Series = {}
    amount: Series = {}
    spent_gpu_seconds: Series = {}
    period_end: Series = {}
    for name, standing in snap.budgets.items():
        currency = standing.limits.currency
        spent[(name, currency)] = standing.counted_amount
        amount[(name, currency)] = standing.limits.amount
        spent_gpu_seconds[(name,)] = standing.counted_gpu_hours * 3600.0
        period_end[(name,)] = standing.period_end
    return {
        "gpupool_queue_pending_jobs": pending,
        "gpupool_queue_admitted_jobs": admitted,
        "gpupool_queue_running_jobs": running,
        "gpupool_queue_nominal_gpus": nominal,
        "gpupool_queue_borrowing_limit_gpus": limit,
        "gpupool_queue_used_gpus": used,
        "gpupool_queue_borrowed_gpus": borrowed,
        "gpupool_queue_budget_spent": spent,
        "gpupool_queue_budget_amount": amount,
        "gpupool_queue_budget_spent_gpu_seconds": spent_gpu_seconds,
        "gpupool_queue_budget_period_end_timestamp_seconds": period_end,
    }


# --------------------------------------------------------------------------- pools


def pool_samples(inputs: GaugeInputs) -> Samples:
    """Nodes by state, GPUs total, allocated and fragmented, per pool."""
    snap, held = inputs.snap, inputs.held
    claims: dict[str, GPUNodeClaim] = inputs.view.parsed(Kind.CLAIM)
    draining = {
        c.status.node_name for c in claims.values() if c.status.phase == ClaimPhase.DELETING and c.status.node_name
    }
    fragmented = fragmented_gpus(snap, inputs.decisions)
    nodes: Series = {}
    gpus: Series = {}
    allocated: Series = {}
    frag: Series = {}
    spot_gpus: Series = {}
    for name, info in sorted(snap.pools.items()):
        mine = [n for n in snap.nodes.values() if n.pool == name]
        states = {
            "ready": sum(1 for n in mine if n.ready and n.name not in draining),
            "not_ready": sum(1 for n in mine if not n.ready and n.name not in draining),
            "provisioning": sum(1 for c in claims.values() if c.spec.pool == name and claim_in_flight(c, snap.nodes)),
            "draining": sum(1 for n in mine if n.name in draining),
        }
        for state, count in states.items():
            nodes[(name, state)] = float(count)
        status = pool_status(info.pool, snap, held)
        gpus[(name,)] = float(status.gpus_total)
        allocated[(name,)] = status.gpus_allocated
        frag[(name,)] = fragmented.get(name, 0.0)
        ready_spot = [n for n in mine if n.ready and n.spot and n.name not in draining]
        spot_gpus[(name,)] = float(sum(n.gpus for n in ready_spot))
    return {
        **pool_price_samples(snap),
        "gpupool_pool_nodes": nodes,
        "gpupool_pool_gpus": gpus,
        "gpupool_pool_spot_gpus": spot_gpus,
        "gpupool_pool_allocated_gpus": allocated,
        "gpupool_pool_fragmented_gpus": frag,
    }


def pool_price_samples(snap: ClusterSnapshot) -> Samples:
    """Each pool's class and GPU model, and its GPU-hour prices (on-demand, and spot when named)."""
    info: Series = {}
    price: Series = {}
    for name, pool in sorted(snap.pools.items()):
        spec = pool.pool.spec
        info[(name, POOL_CLASS_LABEL[spec.pool_class], spec.gpu_model)] = 1.0
        if spec.price_per_node_hour is None or pool.pricing.is_cpu_pool:
            continue
        price[(name, "on_demand")] = pool.pricing.gpu_hour(spot=False)
        if spec.price_per_node_hour.spot is not None:
            price[(name, "spot")] = pool.pricing.gpu_hour(spot=True)
    return {"gpupool_pool_info": info, "gpupool_pool_gpu_hourly_price": price}


def free_milli(snap: ClusterSnapshot, decisions: Decisions) -> dict[str, list[int]]:
    """Free milli-GPU of each GPU of each node after this cycle's admissions, as the core
    counts it (`PlacementState.build` over the running jobs and the ones just admitted:
    their placements, foreign pods' GPUs, share reservations), so the fragmented-GPU figure
    reads the very books the core placed by."""
    admitted = {a.job_key: a.placements for a in decisions.admissions}
    jobs = [
        *snap.snapshot.running,
        *(replace(job, placements=admitted[job.key]) for job in snap.snapshot.pending if job.key in admitted),
    ]
    state = PlacementState.build(snap.snapshot.nodes, jobs)
    return {
        name: [int(milli) for milli in state.gpu_free[row, : state.gpu_count[row]]]
        for row, name in enumerate(state.node_names)
    }


def shape_fits(node: GpuNode, gpus: Sequence[int], gpu_milli: int, models: tuple[str, ...]) -> bool:
    """Whether one worker needing `gpu_milli` of a GPU of `models` (any when empty) fits the
    free GPUs `gpus` of `node`: a share needs one GPU with that much free, whole GPUs that
    many idle ones. CPU, memory, taints and pod slots are left out on purpose (cheap)."""
    if models and node.gpu_model not in models:
        return False
    if gpu_milli < MILLI:
        return any(milli >= gpu_milli for milli in gpus)
    return sum(1 for milli in gpus if milli == MILLI) >= gpu_milli // MILLI


def fragmented_gpus(snap: ClusterSnapshot, decisions: Decisions) -> dict[str, float]:
    """Free GPUs per pool on Ready nodes where no still-waiting job's worker fits
    (`gpupool_pool_fragmented_gpus`); nothing while no GPU job waits."""
    waiting = {w.job_key for w in decisions.waiting}
    shapes = {(job.shape.gpu_milli, job.gpu_models) for job in snap.snapshot.pending if _waits(job, waiting)}
    if not shapes:
        return {}
    free = free_milli(snap, decisions)
    out: dict[str, float] = {}
    for name, node in snap.nodes.items():
        gpus = free[name]
        if not node.ready or not any(gpus):
            continue
        if not any(shape_fits(node, gpus, milli, models) for milli, models in shapes):
            out[node.pool] = out.get(node.pool, 0.0) + sum(gpus) / MILLI
    return out


def _waits(job: Job, waiting: set[str]) -> bool:
    return job.key in waiting and job.shape.gpu_milli > 0


# --------------------------------------------------------------------------- workers


def allocation_samples(jobs: Mapping[str, GPUJob], snap: ClusterSnapshot, *, opencost: bool) -> Samples:
    """One `gpupool_gpu_allocation_info` series per GPU each worker of a job holding GPUs has
    (value: the share), `gpupool_job_gpu_idle` for each job found idle, and with `opencost`
    one `container_gpu_allocation` per worker pod. A GPU's `uuid` is the one its node reports
    the worker holds; on a node that reports no devices (kwok, the fallback) the one its
    UUID map gives the planned index; empty while a reporting node has not shown the pod."""
    info: Series = {}
    containers: Series = {}
    idle: Series = {}
    cost: Series = {}
    for job in jobs.values():
        if job.status.phase not in HOLDING_PHASES:
            continue
        cost.update(job_cost_rates(job, snap))
        namespace = str(job.metadata.get("namespace", ""))
        name = str(job.metadata.get("name", ""))
        if any(c.type == "GPUIdle" and c.status.value == "True" for c in job.status.conditions):
            idle[(namespace, name, job.spec.queue)] = 1.0
        container = first_container(job)
        for worker in job.status.placement:
            devices = snap.devices_of(worker.node)
            for position, index in enumerate(worker.gpu_indices):
                uuid = gpu_uuid_of(worker, position, devices) or ""
                labels = (
                    worker.node,
                    str(index),
                    uuid,
                    namespace,
                    name,
                    job.spec.queue,
                    worker.pool,
                    str(worker.worker),
                )
                info[labels] = worker.gpu_share
            held = len(worker.gpu_indices) * worker.gpu_share
            containers[(namespace, worker.pod, container, worker.node, worker.node)] = held
    samples = {"gpupool_gpu_allocation_info": info, "gpupool_job_gpu_idle": idle, "gpupool_job_cost_per_hour": cost}
    if opencost:
        samples["container_gpu_allocation"] = containers
    return samples


def job_cost_rates(job: GPUJob, snap: ClusterSnapshot) -> Series:
    """What the job's attempt is billed per hour, by pool, while it accrues (`status.startedAt`
    set): the biller's rate for each worker (`gpupool.core.accounting`); nothing before it
    starts, as spend counts nothing then."""
    if job.status.started_at is None:
        return {}
    namespace = str(job.metadata.get("namespace", ""))
    name = str(job.metadata.get("name", ""))
    out: Series = {}
    for use in snap.biller.workers(job):
        key = (namespace, name, job.spec.queue, use.pool)
        out[key] = out.get(key, 0.0) + worker_cost_per_hour(snap.prices, use)[0]
    return out


def first_container(job: GPUJob) -> str:
    """Name of the first container of the job's pod template (the one given the GPUs)."""
    containers = job.spec.template.spec.get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], dict) else {}
    return str(first.get("name") or "main")


# --------------------------------------------------------------------------- OpenCost nodes


def opencost_node_samples(inputs: GaugeInputs) -> Samples:
    """OpenCost's node price series for every node of a pool with a price."""
    snap = inputs.snap
    raw_nodes = inputs.view.entries(Kind.NODE)
    gpu_cost: Series = {}
    cpu_cost: Series = {}
    count: Series = {}
    total: Series = {}
    spot: Series = {}
    for name, node in sorted(snap.nodes.items()):
        info = snap.pools.get(node.pool)
        entry = raw_nodes.get(name)
        if info is None or info.pool.spec.price_per_node_hour is None or entry is None:
            continue
        labels_of = (entry.raw.get("metadata") or {}).get("labels") or {}
        provider_id = str((entry.raw.get("spec") or {}).get("providerID") or "")
        instance_type = str(labels_of.get(LABEL_INSTANCE_TYPE) or node.pool)
        labels = (name, name, instance_type, str(labels_of.get(LABEL_REGION) or ""), provider_id)
        rate = snap.biller.rate(node.pool, name)
        if rate.unit == PriceUnit.CPU_CORE:
            cpu_cost[labels] = rate.price
        else:
            gpu_cost[labels] = rate.price
        count[labels] = float(node.gpus)
        total[labels] = info.pricing.node_hour(spot=node.spot)
        spot[labels] = 1.0 if node.spot else 0.0
    return {
        "node_gpu_hourly_cost": gpu_cost,
        "node_cpu_hourly_cost": cpu_cost,
        "node_gpu_count": count,
        "node_total_hourly_cost": total,
        "kubecost_node_is_spot": spot,
    }
