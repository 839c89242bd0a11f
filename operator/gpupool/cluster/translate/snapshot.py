"""Turn a cache view into the core's `Snapshot` plus everything the apply step needs.

Who calls this: the scheduling loop (`gpupool.controllers.loop`) at step 2 of each cycle;
the applier's planner (`gpupool.cluster.writes.plan`) and the status reporter
(`gpupool.cluster.writes.status`) then read pools, prices, taints, quota flavors and the jobs'
models from the returned `ClusterSnapshot` instead of deriving them again. Objects that
cannot be read (an odd node label, a job written by a newer CRD) are skipped with a reason
instead of crashing the loop; jobs that cannot be scheduled for reasons the core does not
model (their queue does not exist, their namespace may not use the queue, a kubelet refused
their pods at admission moments ago: `admission_hold`) are reported here with a message a
person can act on.

Taints of a GPUNodePool are tolerated by gpupool's pods automatically (the pod gets the
pool's tolerations, as Kueue does for a flavor's), so they are removed from the nodes the
core sees; any other taint must be tolerated by the job's own pod template.

Nodes are the one kind converted here rather than in the cache, because a node's pool,
model and class may come from a GPUNodePool: `NodeConverter` keeps each node's conversion
until the node or the set of pools changes, so a cycle converts only what changed. A node
of a pool that gpupool refuses (MIG partitions, an unknown GFD product: `RefusedNode`) or
whose GPUs are shared replicas gets a `NodeNote` for its pool's status
(`ClusterSnapshot.node_notes`); refusals, and GPU nodes no pool selects, are logged once per
node and message, not every cycle.

What pods gpupool did not create hold on a node (DaemonSets, system pods, another
scheduler's or a tenant's pods; `Kind.FOREIGN_POD`) is summed per node into the node's
`reserved_gpus`, `reserved_cpu_milli`, `reserved_memory_bytes` and `reserved_pods` (one
each), as the kube-scheduler counts every non-terminal pod bound to a node. Their GPUs are the
ones the node's device report gives them (`reserved_gpu_indices`, through its UUID map); only
where the node reports nothing (kwok nodes: the fallback) are they GPUs whose indices gpupool
cannot know, which the core takes from the node's first idle GPUs (`PlacementState.build`).
gpupool's own workers count through their placements, resolved against the same report.

Each queue with a budget gets its standing here (`gpupool.cluster.translate.spend`: what its jobs
accrued in the current period, at the pools' prices): it fills the core queue's
`budget_exhausted`, `budget_left` and `budget_standing`, and `ClusterSnapshot.budgets`
carries it to the report step (`gpupool.cluster.writes.status.queue_status`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gpupool.annotations.summary import ANNOTATION as SUMMARY_ANNOTATION
from gpupool.annotations.summary import parse_summary
from gpupool.api import (
    ADMISSION_REJECTION_LIMIT,
    GPUJob,
    GPUNodeClaim,
    GPUNodePool,
    GPUQueue,
    JobPhase,
    WorkerPlacementStatus,
)
from gpupool.catalogue import gpu_catalogue
from gpupool.cluster.nodes.scaling import ScalingInputs, scaling_inputs
from gpupool.cluster.state.cache import CachedObject, CacheView, Kind
from gpupool.cluster.state.parsing import ForeignUsage, ParsedJob
from gpupool.cluster.translate.accounting import Biller, job_holdings, pool_pricing
from gpupool.cluster.translate.convert import (
    HOLDING_PHASES,
    ConversionError,
    RefusedNode,
    gpu_node_from_k8s,
    gpu_spec_of_pool,
    parse_timestamp,
    placements_of,
    queue_from_api,
    shared_gpus_message,
    unused_gpu_node,
)
from gpupool.cluster.translate.devices import NO_DEVICES, NodeDevices, foreign_indices, resolved_placement
from gpupool.cluster.translate.spend import budget_standings, running_accrual, running_accruals
from gpupool.cluster.writes.lifecycle import AdmissionRejection, admission_hold_seconds, rejection_message
from gpupool.cluster.writes.pods import LABEL_JOB
from gpupool.cluster.writes.reservations import ReservationBook, ReservationSettings, book_of
from gpupool.core.accounting import Holdings, PoolPricing, PriceBook, Rate
from gpupool.core.budget import Accrual, BudgetStanding
from gpupool.core.models import GpuNode, Job, Queue, Snapshot, Taint
from gpupool.core.roofline import GpuSpec, Hardware

log = logging.getLogger("gpupool.snapshot")

PENDING_PHASES = frozenset({None, JobPhase.QUEUED, JobPhase.PREEMPTED})
RawObject = Mapping[str, Any]


@dataclass(frozen=True)
class Unschedulable:
    """A job the core is not asked about, with its reason code and message."""

    code: str
    message: str


def admission_hold(job: GPUJob, now: float) -> Unschedulable | None:
    """Why a gang a kubelet just refused at admission is not placed again yet, or None.

    After its n-th free rejection in a row (`status.admissionRejections`, at most
    `ADMISSION_REJECTION_LIMIT`) a queued job waits `lifecycle.admission_hold_seconds(n)`
    from `status.lastAdmissionRejection.at`, with the very message its requeue wrote, so the
    hold writes nothing; rejections past the limit count as failures and are not held."""
    status = job.status
    last = status.last_admission_rejection
    count = status.admission_rejections
    if status.phase != JobPhase.QUEUED or last is None or not 0 < count <= ADMISSION_REJECTION_LIMIT:
        return None
    if now >= last.at.timestamp() + admission_hold_seconds(count):
        return None
    rejection = AdmissionRejection(last.pod, last.node, last.reason, last.message or "")
    return Unschedulable("AdmissionRejected", rejection_message(rejection, count))


@dataclass(frozen=True)
class NodeNote:
    """What a pool's status says about one of its nodes: refused (not schedulable at all) or
    limited (`SharedGPUs`: shares only), with a reason code and a sentence naming the node."""

    pool: str
    reason: str
    message: str
    refused: bool


@dataclass(frozen=True)
class PoolInfo:
    """One GPUNodePool as the apply step needs it: the pool, its taints and its prices."""

    pool: GPUNodePool
    taints: tuple[Taint, ...]
    pricing: PoolPricing


def pool_info(pool: GPUNodePool) -> PoolInfo:
    """The pool with its taints and prices (`gpupool.cluster.translate.accounting`)."""
    return PoolInfo(pool, pool_taints(pool), pool_pricing(pool))


def is_cpu_pool(pool: GPUNodePool) -> bool:
    """True for a CPU pool (`gpusPerNode: 0`): CPU-only nodes for jobs that fall back to CPU."""
    return pool.spec.gpus_per_node == 0


def pool_taints(pool: GPUNodePool) -> tuple[Taint, ...]:
    """The taints every node of `pool` carries (and its worker pods tolerate)."""
    return tuple(Taint(key=t.key, value=t.value or "", effect=str(t.effect.value)) for t in pool.spec.taints)


def hardware_of(pools: Mapping[str, PoolInfo], catalogue: Mapping[str, GpuSpec] | None = None) -> Hardware:
    """What the core's roofline choice knows: the catalogue's models (`gpupool.catalogue`,
    the shipped one unless given), each pool's `spec.gpuModelSpec` (it overrides the
    catalogue for that pool, and adds a model the catalogue lacks: the first such pool by
    name defines it) and each pool's prices from the price book, regular and spot: GPU-hour
    prices, or on a CPU pool node-hour ones. A CPU pool's `gpuModelSpec` is its node's
    figures, read only for CPU fallback: it adds no model."""
    models = dict(gpu_catalogue() if catalogue is None else catalogue)
    overrides: dict[str, GpuSpec] = {}
    prices: dict[tuple[str, bool], float] = {}
    cpu_prices: dict[tuple[str, bool], float] = {}
    for name, info in sorted(pools.items()):
        spec = gpu_spec_of_pool(info.pool)
        pricing = info.pricing
        if spec is not None:
            overrides[name] = spec
            if not pricing.is_cpu_pool:
                models.setdefault(spec.model, spec)
        for spot in (False, True):
            if pricing.is_cpu_pool:
                cpu_prices[(name, spot)] = pricing.node_hour(spot=spot)
            else:
                prices[(name, spot)] = pricing.gpu_hour(spot=spot)
    return Hardware(models=models, pools=overrides, gpu_hour_prices=prices, cpu_node_hour_prices=cpu_prices)


NODE_LOST_GRACE_SECONDS = 40.0
"""How long a node may be NotReady before its jobs are interrupted (the kube-controller-
manager's default node-monitor grace period)."""


@dataclass
class ClusterSnapshot:
    """The core snapshot plus what the loop needs to apply decisions about it."""

    snapshot: Snapshot
    jobs: dict[str, GPUJob] = field(default_factory=dict)
    nodes: dict[str, GpuNode] = field(default_factory=dict)
    pools: dict[str, PoolInfo] = field(default_factory=dict)
    queues: dict[str, GPUQueue] = field(default_factory=dict)
    core_queues: dict[str, Queue] = field(default_factory=dict)
    pods_by_job: dict[str, list[RawObject]] = field(default_factory=dict)
    unschedulable: dict[str, Unschedulable] = field(default_factory=dict)
    invalid_jobs: dict[str, str] = field(default_factory=dict)
    claims: dict[str, GPUNodeClaim] = field(default_factory=dict)
    scaling: ScalingInputs = field(default_factory=ScalingInputs)
    # Every node in the cache, and since when each one whose Ready condition is not True
    # has been so (for `lost_nodes`).
    node_names: frozenset[str] = frozenset()
    unready_since: dict[str, float] = field(default_factory=dict)
    # Each GPU's recent mean utilisation, `(node, index) -> 0..1`, from the node agents'
    # summaries that are fresh and cover their whole window (see `gpu_readings`).
    gpu_readings: dict[tuple[str, int], float] = field(default_factory=dict)
    # Each node's GPU index -> UUID, from its agent's `gpupool.io/gpu-uuids` annotation
    # (nodes without a readable one are absent), for the jobs' provenance records.
    gpu_uuids: dict[str, dict[int, str]] = field(default_factory=dict)
    budgets: dict[str, BudgetStanding] = field(default_factory=dict)
    # Per node, what its pool's status says about it: refused, or GPUs shared (see `NodeNote`).
    node_notes: dict[str, NodeNote] = field(default_factory=dict)
    # Each node's device report, parsed when the node entered the cache (`gpupool.cluster.translate.devices`).
    node_devices: dict[str, NodeDevices] = field(default_factory=dict)
    # Each job holding GPUs: its `status.placement` with the devices its nodes report
    # (`devices.resolved_placement`; the status list itself when nothing new is reported).
    placements: dict[str, list[WorkerPlacementStatus]] = field(default_factory=dict)
    # The share reservation pods and what names them (`gpupool.cluster.writes.reservations`).
    reservations: ReservationBook = field(default_factory=lambda: ReservationBook(ReservationSettings()))
    # The cycle's prices, one book for every reader (`gpupool.core.accounting`).
    prices: PriceBook = field(default_factory=PriceBook)
    # Each started job's running attempt accrued to `snapshot.now`, by key (`spend.running_accruals`).
    accruals: dict[str, Accrual] = field(default_factory=dict)

    @property
    def pool_taints(self) -> dict[str, tuple[Taint, ...]]:
        """Taints of each pool by name."""
        return {name: info.taints for name, info in self.pools.items()}

    def nominal(self, queue: str) -> dict[str, int]:
        """Nominal GPUs by quota flavor (`model:<m>` / `pool:<p>`) of one queue."""
        core_queue = self.core_queues.get(queue)
        return {q.flavor: q.nominal_gpus for q in core_queue.quotas} if core_queue else {}

    def flavor_of(self, queue: str, pool: str, model: str) -> str:
        """The queue's quota entry a GPU on (pool, model) counts against: the pool's entry when
        the queue has one, else the model's (the core's quota ledger charges the same way)."""
        if f"pool:{pool}" in self.nominal(queue):
            return f"pool:{pool}"
        return f"model:{model}"

    def node_lost(self, name: str, now: float) -> bool:
        """True when node `name` is gone: not in the cluster any more (a spot reclaim deletes
        it) or NotReady for longer than `NODE_LOST_GRACE_SECONDS`."""
        if name not in self.node_names:
            return True
        since = self.unready_since.get(name)
        return since is not None and now - since > NODE_LOST_GRACE_SECONDS

    def devices_of(self, node: str) -> NodeDevices:
        """What node `node` reports about its GPUs (nothing, the fallback, when unknown)."""
        return self.node_devices.get(node, NO_DEVICES)

    def reports_devices(self, node: str) -> bool:
        """True when node `node` reports which pod holds which GPU (`NodeDevices.reports`)."""
        return self.devices_of(node).reports

    def placement_of(self, job: GPUJob) -> list[WorkerPlacementStatus]:
        """The job's placement with the devices its nodes report (its status' own otherwise)."""
        key = f"{job.metadata.get('namespace')}/{job.metadata.get('name')}"
        found = self.placements.get(key)
        if found is not None:
            return found
        return resolved_placement(job.status.placement, str(job.metadata.get("namespace", "")), self.node_devices)

    @property
    def biller(self) -> Biller:
        """What the cycle bills by: the price book and the cycle's nodes."""
        return Biller(self.prices, self.nodes)

    def accrual_of(self, job: GPUJob, now: float | None = None) -> Accrual | None:
        """The running attempt's accrual to `now` (default: the snapshot's; None when it
        holds no GPUs or never started): the one computed for the snapshot, unless the
        job started since or another time is asked for."""
        at = self.snapshot.now if now is None else now
        key = f"{job.metadata.get('namespace')}/{job.metadata.get('name')}"
        found = self.accruals.get(key)
        if found is not None and at == self.snapshot.now and found.started == parse_timestamp(job.status.started_at):
            return found
        return running_accrual(job, self.biller, at)

    def holdings_of(self, jobs: Iterable[GPUJob]) -> Holdings:
        """What those of `jobs` that hold GPUs hold, by queue, quota flavor (`flavor_of`) and
        the pool of each worker's node (`gpupool.cluster.translate.accounting.job_holdings`)."""
        return job_holdings(jobs, {name: node.pool for name, node in self.nodes.items()}, self.flavor_of)

    def rate(self, pool: str, node: str) -> Rate:
        """What one unit-hour costs on `node` of `pool` (`Biller.rate`)."""
        return self.biller.rate(pool, node)


def jobs_of(view: CacheView) -> tuple[dict[str, ParsedJob], dict[str, str]]:
    """Every GPUJob the view holds, parsed; and why each unreadable one was refused."""
    return view.parsed(Kind.JOB), view.invalid(Kind.JOB)


def held_gpus(jobs: Mapping[str, ParsedJob]) -> dict[str, float]:
    """GPUs each queue holds now (`job_holdings`: its jobs in phase Admitted or Running; a job
    running on a CPU-only node holds none)."""
    held = job_holdings((parsed.api for parsed in jobs.values()), {}, lambda *_: None)
    return dict(held.by_queue)


def pods_by_job(view: CacheView) -> dict[str, list[RawObject]]:
    """gpupool's worker pods grouped by their job's `namespace/name` (from the job label)."""
    grouped: dict[str, list[RawObject]] = {}
    for entry in view.entries(Kind.POD).values():
        metadata = entry.raw.get("metadata") or {}
        job_name = (metadata.get("labels") or {}).get(LABEL_JOB)
        if job_name:
            grouped.setdefault(f"{metadata.get('namespace')}/{job_name}", []).append(entry.raw)
    return grouped


class NodeConverter:
    """Converts nodes to core `GpuNode`s, keeping each result until its node or the pools change.

    Owned by the scheduling loop (one per operator) and passed to `build_snapshot`; a test
    or a simulation that builds snapshots without one gets a fresh converter each time.
    """

    def __init__(self) -> None:
        self._pools_key: tuple[tuple[str, int], ...] = ()
        self._done: dict[str, tuple[CachedObject, GpuNode | None, NodeNote | None]] = {}
        self._logged: dict[str, str] = {}
        self.notes: dict[str, NodeNote] = {}
        """After `convert`, the note of each node that has one (by node name)."""

    def convert(self, view: CacheView, pools: Mapping[str, PoolInfo]) -> dict[str, GpuNode]:
        """The GPU nodes of `view` (pool taints removed); odd nodes are logged and skipped."""
        pools_key = tuple(sorted((name, e.resource_version) for name, e in view.entries(Kind.POOL).items()))
        if pools_key != self._pools_key:
            self._pools_key, self._done = pools_key, {}
        pool_models = [info.pool for info in pools.values()]
        done: dict[str, tuple[CachedObject, GpuNode | None, NodeNote | None]] = {}
        for name, entry in view.entries(Kind.NODE).items():
            previous = self._done.get(name)
            if previous is not None and previous[0] is entry:
                done[name] = previous
                continue
            note: NodeNote | None = None
            try:
                node = gpu_node_from_k8s(entry.raw, pool_models)
            except RefusedNode as error:
                node, note = None, NodeNote(error.pool, error.reason, str(error), refused=True)
                self._log_once(name, "refusing node", str(error), pool=error.pool, reason=error.reason)
            except (ConversionError, ValueError) as error:
                log.warning("skipping unreadable node", extra={"node": name, "error": str(error)})
                node = None
            if node is None and note is None:
                unused = unused_gpu_node(entry.raw)
                if unused is not None:
                    self._log_once(name, "GPU node in no pool", unused, level=logging.INFO)
            if node is not None:
                self._logged.pop(name, None)  # a later refusal is news again
            if node is not None and node.shares_only:
                note = NodeNote(node.pool, "SharedGPUs", shared_gpus_message(entry.raw, node), refused=False)
            if node is not None and isinstance(entry.parsed, NodeDevices) and not entry.parsed.accepts_shares:
                node = replace(node, accepts_shares=False)  # labelled gpupool.io/share-envvar=false
            if node is not None and node.pool in pools and pools[node.pool].taints:
                tolerated = pools[node.pool].taints
                node = replace(node, taints=tuple(t for t in node.taints if t not in tolerated))
            done[name] = (entry, node, note)
        self._done = done
        self._logged = {name: text for name, text in self._logged.items() if name in done}
        self.notes = {name: note for name, (_entry, _node, note) in done.items() if note is not None}
        return {name: node for name, (_entry, node, _note) in done.items() if node is not None}

    def _log_once(self, node: str, what: str, message: str, *, level: int = logging.WARNING, **extra: str) -> None:
        """Log `message` about `node` unless it was the last one logged for that node."""
        if self._logged.get(node) != message:
            self._logged[node] = message
            log.log(level, what, extra={"node": node, "error": message, **extra})


def with_foreign_usage(
    nodes: Mapping[str, GpuNode], view: CacheView, devices: Mapping[str, NodeDevices] | None = None
) -> dict[str, GpuNode]:
    """`nodes` with what foreign pods hold on each added to its `reserved_*` fields; the
    GPUs a node reports a foreign pod holds (its device report, `devices.foreign_indices`)
    also go to `reserved_gpu_indices`, so the core holds exactly those. Where the node
    reports nothing (kwok, or a pod the report does not show yet), only the count is known:
    the fallback, the core takes the node's first idle GPUs. `devices`: the nodes' reports
    (read from `view` when not given)."""
    devices = devices_by_node(view) if devices is None else devices
    held: dict[str, list[int]] = {}
    indices: dict[str, list[int]] = {}
    for key, usage in view.parsed(Kind.FOREIGN_POD).items():
        assert isinstance(usage, ForeignUsage)
        if usage.node in nodes:
            node = devices.get(usage.node)
            reported: tuple[int, ...] = ()
            if node is not None and node.reports:
                namespace, _, name = key.partition("/")
                reported = foreign_indices(node, namespace, name)
            total = held.setdefault(usage.node, [0, 0, 0, 0])
            total[0] += max(usage.gpus, len(reported))
            total[1] += usage.cpu_milli
            total[2] += usage.memory_bytes
            total[3] += 1
            if reported:
                indices.setdefault(usage.node, []).extend(reported)
    result = dict(nodes)
    for name, (gpus, cpu, memory, pods) in held.items():
        result[name] = replace(
            nodes[name],
            reserved_gpus=gpus,
            reserved_cpu_milli=cpu,
            reserved_memory_bytes=memory,
            reserved_pods=pods,
            reserved_gpu_indices=tuple(sorted(set(indices.get(name, ())))),
        )
    return result


def with_reservation_pods(
    nodes: Mapping[str, GpuNode], book: ReservationBook, devices: Mapping[str, NodeDevices]
) -> dict[str, GpuNode]:
    """`nodes` with gpupool's reservation pods: each takes a pod slot; one that nothing names
    any more (it is about to be deleted) still holds its GPU until it is gone, so it counts
    as a reserved GPU (where the node reports it). A named one's GPU is its shares' GPU:
    they hold it in the core already (a GPU carrying shares is never idle)."""
    extra: dict[str, list[int]] = {}
    indices: dict[str, list[int]] = {}
    for key, pod in book.pods.items():
        if pod.node not in nodes or pod.failed:
            continue
        counts = extra.setdefault(pod.node, [0, 0])
        counts[0] += 1
        if key not in book.named and key not in book.live_shares:
            counts[1] += 1
            namespace, _, name = key.partition("/")
            indices.setdefault(pod.node, []).extend(foreign_indices(devices.get(pod.node, NO_DEVICES), namespace, name))
    result = dict(nodes)
    for name, (pods, gpus) in extra.items():
        node = nodes[name]
        result[name] = replace(
            node,
            reserved_pods=node.reserved_pods + pods,
            reserved_gpus=node.reserved_gpus + gpus,
            reserved_gpu_indices=tuple(sorted({*node.reserved_gpu_indices, *indices.get(name, ())})),
        )
    return result


def gpu_readings(view: CacheView, now: float) -> dict[tuple[str, int], float]:
    """Per GPU, the mean utilisation its node agent published (`gpupool.io/gpu-utilization`).

    Only summaries that cover their whole window and were written within two windows (plus
    a minute) count: a stale or young summary says nothing, so an idle verdict never rests
    on an agent that stopped or only just started."""
    out: dict[tuple[str, int], float] = {}
    for name, entry in view.entries(Kind.NODE).items():
        annotations = (entry.raw.get("metadata") or {}).get("annotations") or {}
        summary = parse_summary(annotations.get(SUMMARY_ANNOTATION))
        if summary is None or not summary.covers_window:
            continue
        if now - summary.at.timestamp() > 2 * summary.window_seconds + 60:
            continue
        for index, value in summary.gpus.items():
            out[(name, index)] = value
    return out


def devices_by_node(view: CacheView) -> dict[str, NodeDevices]:
    """Each node's `NodeDevices`, as the cache parsed it when the node entered it."""
    return {name: parsed for name, parsed in view.parsed(Kind.NODE).items() if isinstance(parsed, NodeDevices)}


def gpu_uuids(view: CacheView) -> dict[str, dict[int, str]]:
    """Per node, the GPU index -> UUID map its agent published; nodes without one are left out."""
    return {name: dict(d.uuids) for name, d in devices_by_node(view).items() if d.uuids}


def with_reported_devices(
    job: Job, placement: list[WorkerPlacementStatus], recorded: list[WorkerPlacementStatus]
) -> Job:
    """The core job holding the GPUs its nodes report (`placement`) rather than the ones its
    status still records (`recorded`), until the status is patched: so no GPU a report
    names is counted for two holders (the job itself unchanged when they agree)."""
    if placement is recorded:
        return job
    return replace(job, placements=placements_of(placement))


def unready_since(view: CacheView) -> dict[str, float]:
    """Since when each node whose Ready condition is not True has been so."""
    out: dict[str, float] = {}
    for name, entry in view.entries(Kind.NODE).items():
        for condition in (entry.raw.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") != "True":
                since = parse_timestamp(condition.get("lastTransitionTime"))
                if since is not None:
                    out[name] = since
    return out


def build_snapshot(
    view: CacheView,
    now: float,
    *,
    decayed_usage: Mapping[str, float],
    seed: int = 0,
    nodes: NodeConverter | None = None,
    reservations: ReservationSettings | None = None,
) -> ClusterSnapshot:
    """Build the cycle's snapshot from a cache view (see the module docstring); `reservations`
    says how share reservation pods are made (the operator's settings; default: on, in
    namespace `default`)."""
    for name, error in view.invalid(Kind.POOL).items():
        log.warning("skipping unreadable GPUNodePool", extra={"pool": name, "error": error})
    for name, error in view.invalid(Kind.QUEUE).items():
        log.warning("skipping unreadable GPUQueue", extra={"queue": name, "error": error})
    pools = {name: pool_info(pool) for name, pool in view.parsed(Kind.POOL).items()}
    prices = PriceBook.of(info.pricing for info in pools.values())
    converter = nodes or NodeConverter()
    devices = devices_by_node(view)
    core_nodes = with_foreign_usage(converter.convert(view, pools), view, devices)
    api_queues: dict[str, GPUQueue] = view.parsed(Kind.QUEUE)
    parsed_jobs, invalid = jobs_of(view)
    namespaces = {
        name: (entry.raw.get("metadata") or {}).get("labels") or {}
        for name, entry in view.entries(Kind.NAMESPACE).items()
    }

    api_jobs = {key: parsed.api for key, parsed in parsed_jobs.items()}
    accruals = running_accruals(api_jobs, Biller(prices, core_nodes), now)
    budgets = budget_standings(api_queues, api_jobs, accruals, now)
    core_queues: dict[str, Queue] = {}
    for name, queue in sorted(api_queues.items()):
        try:
            core_queues[name] = queue_from_api(
                queue, decayed_usage_gpu_seconds=decayed_usage.get(name, 0.0), budget=budgets.get(name)
            )
        except (ConversionError, ValueError) as error:
            log.warning("skipping unreadable GPUQueue", extra={"queue": name, "error": str(error)})

    reporting = {name: d for name, d in devices.items() if d.reports}
    running: list[Job] = []
    pending: list[Job] = []
    placements: dict[str, list[WorkerPlacementStatus]] = {}
    unschedulable: dict[str, Unschedulable] = {}
    for key, parsed in sorted(parsed_jobs.items()):
        job = parsed.api
        phase = job.status.phase
        if phase not in PENDING_PHASES and phase not in HOLDING_PHASES:
            continue
        if (job.metadata or {}).get("deletionTimestamp"):
            continue
        if parsed.core is None:
            invalid[key] = parsed.core_error or "cannot be converted"
            continue
        if phase in HOLDING_PHASES:
            recorded = job.status.placement
            placement = resolved_placement(recorded, str(job.metadata.get("namespace", "")), reporting)
            placements[key] = placement
            running.append(with_reported_devices(parsed.core, placement, recorded))
            continue
        target = api_queues.get(job.spec.queue)
        namespace = str(job.metadata.get("namespace", ""))
        if target is None:
            unschedulable[key] = Unschedulable(
                "QueueNotFound",
                f"queue {job.spec.queue} does not exist; create the GPUQueue or set spec.queue to an existing one "
                f"(kubectl get gpuqueues)",
            )
        elif not target.spec.admits_namespace(dict(namespaces.get(namespace) or {})):
            unschedulable[key] = Unschedulable(
                "NamespaceNotAllowed",
                f"namespace {namespace} may not submit to queue {job.spec.queue}: its namespaceSelector does not "
                f"match this namespace's labels; ask the platform team or use another queue",
            )
        elif (hold := admission_hold(job, now)) is not None:
            unschedulable[key] = hold
        else:
            pending.append(parsed.core)

    grouped = pods_by_job(view)
    book = book_of(reservations or ReservationSettings(), view.parsed(Kind.RESERVATION).values(), placements, grouped)
    core_nodes = with_reservation_pods(core_nodes, book, devices)
    claims: dict[str, GPUNodeClaim] = view.parsed(Kind.CLAIM)
    scaling = scaling_inputs(
        {name: info.pool for name, info in pools.items()}, claims, core_nodes, {j.key for j in pending}, now
    )
    snapshot = Snapshot(
        now=now,
        nodes=tuple(core_nodes[name] for name in sorted(core_nodes)),
        queues=tuple(core_queues.values()),
        running=tuple(running),
        pending=tuple(pending),
        seed=seed,
        offers=scaling.offers,
        in_flight=scaling.in_flight,
        nominations=scaling.nominations,
        hardware=hardware_of(pools),
    )
    return ClusterSnapshot(
        snapshot=snapshot,
        jobs=api_jobs,
        nodes=core_nodes,
        pools=pools,
        queues=api_queues,
        core_queues=core_queues,
        pods_by_job=grouped,
        unschedulable=unschedulable,
        invalid_jobs=invalid,
        claims=claims,
        scaling=scaling,
        node_names=frozenset(view.entries(Kind.NODE)),
        unready_since=unready_since(view),
        gpu_readings=gpu_readings(view, now),
        gpu_uuids={name: dict(d.uuids) for name, d in devices.items() if d.uuids},
        budgets=budgets,
        node_notes=dict(converter.notes),
        node_devices=devices,
        placements=placements,
        reservations=book,
        prices=prices,
        accruals=accruals,
    )
