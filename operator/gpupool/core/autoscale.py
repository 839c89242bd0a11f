"""Which new nodes to ask for, and which idle ones to give back.

Who calls this: `gpupool.core.schedule` at the end of a cycle, with the jobs it left
waiting for capacity (`plan_nodes`), so the requests come back in `Decisions.node_requests`;
the operator's claim reconciler (`gpupool.cluster.nodes.claims`) calls `nodes_to_release`; the
burst benchmark (`gpupool.sim.burst`) drives both through the same code. Pure: no clock,
no I/O; what is in flight comes in as values.

Scale-up works as Karpenter's provisioner does, on whole gangs:

1. Capacity already in flight (requested nodes, not Ready yet) is simulated first, as
   virtual nodes of their pool; jobs a claim was requested for are placed on it first.
   A job whose gang fits there asks for nothing new: it waits for those nodes.
2. Otherwise every pool the job may use (model, placement policy, the queue's
   allowCloud/allowSpot, taints, quota flavor, `headroom`) is tried with as few new
   nodes as hold its whole gang, next to what was planned this cycle; the cheapest total
   price per hour wins (then fewer nodes, then the pool's name). So several pending jobs
   share new nodes when they fit, and a gang is never split across pools or requests.
   A job with a profile ranks the pools by its roofline estimates first
   (`gpupool.core.roofline`: the estimated cost of the whole run under `optimize: Cost`,
   the estimated runtime under `Time`), then as above.
3. A new node is not requested when the job's projected cost — its GPUs at the pool's
   price per GPU-hour over its `maxRuntime`, or `SchedulerConfig.cost_horizon_seconds` —
   exceeds what its queue may still spend (`Queue.budget_left`). For a job with a profile
   the runtime is the pool's roofline estimate instead (never more than `maxRuntime`).

Quota is charged for every planned job, so two jobs never plan on the same quota.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gpupool.core.capacity import workers_per_row
from gpupool.core.models import (
    MILLI_PER_GPU,
    GpuNode,
    InFlightNode,
    Job,
    NodeOffer,
    NodeRequest,
    PlacementPolicy,
    PoolClass,
    Queue,
    WorkerPlacement,
)
from gpupool.core.placement import PlacementState
from gpupool.core.quota import QuotaLedger
from gpupool.core.roofline import NO_HARDWARE, Hardware, PoolCandidate, estimate, preference_key

FlavorOf = Callable[[Queue, GpuNode], str | None]
"""The queue's quota flavor a node of this template would count against (None: no quota)."""

_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True)
class NodeWait:
    """A job that waits for nodes: requested now (`new_nodes` > 0) or already in flight."""

    job_key: str
    pool: str
    nodes: int
    new_nodes: int
    requested_at: float | None


@dataclass(frozen=True, slots=True)
class NodePlan:
    """What `plan_nodes` decided: node requests, and which jobs wait for which nodes.

    `refused_by_budget` names jobs for which a pool would hold the gang but the projected
    cost exceeds the queue's remaining budget (their message says so).
    """

    requests: tuple[NodeRequest, ...] = ()
    waits: tuple[NodeWait, ...] = ()
    refused_by_budget: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Group:
    """The nodes of one (pool, capacity type) a plan may use: existing nodes with their free
    capacity now, then nodes in flight, then nodes planned this cycle."""

    pool: str
    spot: bool
    template: GpuNode
    offer: NodeOffer | None
    nodes: list[GpuNode] = field(default_factory=list)
    requested_at: list[float | None] = field(default_factory=list)
    existing: list[bool] = field(default_factory=list)
    placed: list[Job] = field(default_factory=list)
    new_nodes: int = 0
    new_jobs: list[str] = field(default_factory=list)
    _state: PlacementState | None = None

    def state(self) -> PlacementState:
        """A placement state of the group's nodes with every job placed so far allocated."""
        if self._state is None:
            self._state = PlacementState.build(self.nodes, self.placed)
        return self._state

    def add_nodes(self, count: int) -> None:
        for _ in range(count):
            self.nodes.append(replace(self.template, name=f"{self.pool}/new-{self.new_nodes}", ready=True))
            self.requested_at.append(None)
            self.existing.append(False)
            self.new_nodes += 1
        if count:
            self._state = None


def plan_nodes(
    waiting: Sequence[Job],
    queues: Mapping[str, Queue],
    offers: Sequence[NodeOffer],
    in_flight: Sequence[InFlightNode],
    ledger: QuotaLedger,
    flavor_of: FlavorOf,
    *,
    cost_horizon_seconds: float,
    existing: Sequence[GpuNode] = (),
    hardware: Hardware = NO_HARDWARE,
) -> NodePlan:
    """Plan new nodes for `waiting` jobs (in scheduling order) that fit no existing node.

    `ledger` is the cycle's quota ledger without charges for these jobs; it is charged for
    each job planned. `existing` are Ready nodes of the offered pools with what is free on
    them now left unreserved (their `reserved_*` hold the rest): a gang may use them next
    to new nodes, so a half-free node plus one new node can do where two new ones would.
    `hardware` gives the GPU specs (and prices of pools without an offer) that rank the
    pools for jobs with a profile. Returns the requests and, per job planned, the nodes it
    waits for.
    """
    groups = _groups(offers, in_flight, existing)
    claimed = {job for node in in_flight for job in node.jobs}
    ordered = [j for j in waiting if j.key in claimed] + [j for j in waiting if j.key not in claimed]
    budget_left = {name: q.budget_left for name, q in queues.items()}
    waits: list[NodeWait] = []
    refused: dict[str, float] = {}
    for job in ordered:
        queue = queues.get(job.queue)
        if queue is None or queue.budget_exhausted:
            continue
        best: tuple[tuple[float, ...], int, _Group, str] | None = None
        for order, group in enumerate(groups):
            flavor = flavor_of(queue, group.template)
            if flavor is None or not _allows(job, queue, group.template):
                continue
            if not ledger.fits(queue.name, flavor, job.total_gpu_milli):
                continue
            needed = _new_nodes_needed(group, job)
            if needed is None or (needed > 0 and (group.offer is None or needed > _headroom(group, groups))):
                continue
            estimated = _estimated_run(job, group, hardware)
            if needed > 0:
                assert group.offer is not None
                projected = _projected_cost(job, group.offer, _seconds(job, estimated, cost_horizon_seconds))
                left = budget_left.get(queue.name)
                if left is not None and projected > left:
                    refused[job.key] = projected
                    continue
            price = needed * (group.offer.price_per_hour if group.offer else 0.0)
            rank = (*_preference(job, estimated), price, needed, order)
            if best is None or rank < best[0]:
                best = (rank, needed, group, flavor)
        if best is None:
            continue
        _rank, needed, group, flavor = best
        placements = _place_on(group, job, needed)
        if placements is None:  # cannot happen when the counts are exact; never plan blind
            continue
        row_of = {n.name: i for i, n in enumerate(group.nodes)}
        used = sorted({row_of[p.node] for p in placements})
        coming = [i for i in used if not group.existing[i]]
        if not coming:
            continue  # it fits what exists now: the scheduler's business, not the planner's
        _keep(group, job, placements)
        refused.pop(job.key, None)
        ledger.charge(queue.name, flavor, job.total_gpu_milli)
        if needed > 0 and group.offer is not None and budget_left.get(queue.name) is not None:
            left = budget_left[queue.name]
            assert left is not None
            seconds = _seconds(job, _estimated_run(job, group, hardware), cost_horizon_seconds)
            budget_left[queue.name] = left - _projected_cost(job, group.offer, seconds)
        new_used = sum(1 for i in coming if group.requested_at[i] is None)
        if new_used:
            group.new_jobs.append(job.key)
        times = [t for i in coming if (t := group.requested_at[i]) is not None]
        waits.append(NodeWait(job.key, group.pool, len(coming), new_used, min(times) if times else None))
    requests = tuple(
        NodeRequest(
            pool=g.pool,
            spot=g.spot,
            nodes=g.new_nodes,
            jobs=tuple(g.new_jobs),
            price_per_hour=g.new_nodes * (g.offer.price_per_hour if g.offer else 0.0),
        )
        for g in groups
        if g.new_nodes > 0
    )
    return NodePlan(requests=requests, waits=tuple(waits), refused_by_budget=refused)


def _groups(
    offers: Sequence[NodeOffer], in_flight: Sequence[InFlightNode], existing: Sequence[GpuNode]
) -> list[_Group]:
    by_key: dict[tuple[str, bool], _Group] = {}
    for offer in offers:
        key = (offer.pool, offer.node.spot)
        by_key[key] = _Group(pool=offer.pool, spot=offer.node.spot, template=offer.node, offer=offer)
    for present in existing:
        group = by_key.get((present.pool, present.spot))
        if group is not None:
            group.nodes.append(present)
            group.requested_at.append(None)
            group.existing.append(True)
    for node in sorted(in_flight, key=lambda n: (n.requested_at, n.claim)):
        key = (node.pool, node.node.spot)
        group = by_key.get(key)
        if group is None:
            group = _Group(pool=node.pool, spot=node.node.spot, template=node.node, offer=None)
            by_key[key] = group
        group.nodes.append(replace(node.node, name=node.claim, ready=True))
        group.requested_at.append(node.requested_at)
        group.existing.append(False)
    return [by_key[k] for k in sorted(by_key)]


def _allows(job: Job, queue: Queue, node: GpuNode) -> bool:
    """May `job` of `queue` run on a node like `node` (model, pool class, taints)?"""
    if job.gpu_models and node.gpu_model not in job.gpu_models:
        return False
    if node.pool_class == PoolClass.CLOUD:
        if not queue.allow_cloud or job.placement_policy == PlacementPolicy.ON_PREM_ONLY:
            return False
        if node.spot and not (queue.allow_spot and job.placement_policy == PlacementPolicy.SPOT_ALLOWED):
            return False
    return all(
        any(t.tolerates(taint) for t in job.tolerations) for taint in node.taints if taint.effect in _BLOCKING_EFFECTS
    )


def _headroom(group: _Group, groups: Sequence[_Group]) -> int:
    """Nodes the group's pool may still get: on-demand and spot share the pool's limits."""
    assert group.offer is not None
    return group.offer.headroom - sum(g.new_nodes for g in groups if g.pool == group.pool)


def _new_nodes_needed(group: _Group, job: Job) -> int | None:
    """Fewest new nodes that, with the group's nodes as planned so far, hold the whole gang
    (None: a node of this pool cannot host even one worker)."""
    state = group.state()
    free = int(workers_per_row(state, job, np.arange(len(group.nodes))).sum()) if group.nodes else 0
    if free >= job.workers:
        return 0
    empty = PlacementState([group.template])
    per_node = int(workers_per_row(empty, job, np.arange(1))[0])
    if per_node <= 0:
        return None
    return math.ceil((job.workers - free) / per_node)


def _place_on(group: _Group, job: Job, new_nodes: int) -> tuple[WorkerPlacement, ...] | None:
    """Where the gang would go with `new_nodes` more nodes (added to the group); the
    placement is not kept until `_keep` (a gang that fits what exists is not planned)."""
    group.add_nodes(new_nodes)
    return group.state().place(job, scoring_policy="bestfit")


def _keep(group: _Group, job: Job, placements: tuple[WorkerPlacement, ...]) -> None:
    group.state().allocate(placements, job.shape)
    group.placed.append(replace(job, placements=placements))


def _estimated_run(job: Job, group: _Group, hardware: Hardware) -> tuple[float | None, float | None] | None:
    """(seconds, cost) the roofline estimates for `job` on the group's nodes; None for a job
    without a profile. Priced at the offer's GPU-hour, else at the pool's in `hardware`."""
    if job.profile is None:
        return None
    template = group.template
    per_gpu_hour = (
        group.offer.price_per_hour / max(1, template.gpus)
        if group.offer is not None
        else hardware.gpu_hour_price(group.pool, group.spot)
    )
    candidate = PoolCandidate(
        group.pool, template.gpu_model, group.spot, hardware.spec_for(group.pool, template.gpu_model), per_gpu_hour
    )
    found = estimate(job.profile, candidate, job.total_gpu_milli / MILLI_PER_GPU, hardware.models)
    return found.seconds, found.cost


def _preference(job: Job, estimated: tuple[float | None, float | None] | None) -> tuple[float, ...]:
    """The leading part of a pool's rank for `job`: its roofline preference (empty without
    a profile, so such jobs keep the cheapest-price rule unchanged)."""
    if job.profile is None or estimated is None:
        return ()
    return preference_key(job.profile.optimize, *estimated)


def _seconds(job: Job, estimated: tuple[float | None, float | None] | None, horizon_seconds: float) -> float:
    """How long the job is expected to run when its cost is projected: the roofline estimate
    (capped by maxRuntime), else its maxRuntime, else the horizon."""
    limit = job.max_runtime_seconds if job.max_runtime_seconds is not None else horizon_seconds
    if estimated is not None and estimated[0] is not None:
        return min(estimated[0], job.max_runtime_seconds) if job.max_runtime_seconds is not None else estimated[0]
    return limit


def _projected_cost(job: Job, offer: NodeOffer, seconds: float) -> float:
    """The job's GPUs at the offer's price per GPU-hour over `seconds`."""
    per_gpu_hour = offer.price_per_hour / max(1, offer.node.gpus)
    return job.total_gpu_milli / MILLI_PER_GPU * per_gpu_hour * seconds / 3600.0


# ---------------------------------------------------------------------------------- scale-down


@dataclass(frozen=True, slots=True)
class ReleaseCandidate:
    """A node the operator created, as scale-down sees it.

    `idle_since` is when it last stopped holding gpupool work (None: it holds some now);
    `pool_nodes` is how many nodes its pool has, `min_nodes` the fewest to keep.
    """

    node: str
    pool: str
    idle_since: float | None
    scale_down_after_seconds: float
    pool_nodes: int
    min_nodes: int
    nominated: bool = False


def nodes_to_release(candidates: Sequence[ReleaseCandidate], now: float) -> tuple[str, ...]:
    """Nodes idle for their pool's `scaleDownAfter`, longest idle first, never taking a
    pool below `minNodes` and never a node that holds work or is held for a waiting job."""
    left: dict[str, int] = {}
    chosen: list[str] = []
    idle = [
        c
        for c in candidates
        if c.idle_since is not None and not c.nominated and now - c.idle_since >= c.scale_down_after_seconds
    ]
    for c in sorted(idle, key=lambda c: (c.idle_since, c.node)):
        remaining = left.setdefault(c.pool, c.pool_nodes)
        if remaining <= c.min_nodes:
            continue
        left[c.pool] = remaining - 1
        chosen.append(c.node)
    return tuple(chosen)


__all__ = ["FlavorOf", "NodePlan", "NodeWait", "ReleaseCandidate", "nodes_to_release", "plan_nodes"]
