"""What-if capacity planning: one cluster description, one workload, simulated in time.

Who calls this: `gpupool.whatif.command` (`gpupool sim`) builds a `SimCluster` per scenario
from its YAML and calls `simulate_plan`; the unit tests build small clusters by hand.
Everything here is core values (the YAML is read in `gpupool.whatif.scenario`, which may import
the API models; this module may not).

The event loop is `gpupool.bench.events.EventSim`, the one `gpupool bench burst` runs, with:

- **Fixed pools** (on-prem, Static): their nodes exist from the start to the end and are
  paid every hour at the pool's regular node-hour price (amortised on-prem), busy or idle.
- **Scaling pools** (cloud): offered to the core's planner with their on-demand and spot
  node-hour prices; headroom is `maxNodes` less the pool's nodes (Ready and in flight),
  at most `maxNodesInFlight` in flight; a requested node is Ready after the pool's
  `provisioningDelay`, paid from its request to its release, and given back after
  `scaleDownAfter` idle (never below `minNodes`).
- **Queues** as the operator builds them; a queue with a budget gets its standing before
  every decision (`gpupool.core.budget.standing`, over what its jobs accrued at the pools'
  GPU-hour prices: amortised on-prem, on-demand or spot cloud), so an exhausted budget
  stops admissions and the planner's budget check sees what is left; the simulation wakes
  at the period's end to admit again. Attempts accrue at the operator's accrual rule
  (`gpupool.core.accounting`, with the price book `price_book_of`), from their admission;
  `PlanResult.billed` is what each queue's jobs were billed, as their `status.cost` would say.
- **Preemption**: a victim goes back to pending and later starts over (its run is lost).
- **Durations**: a job runs for its record's duration; a profiled job that the core placed
  with a model choice runs for the choice's estimate instead.

Months are 30 days from time 0; the report is per month (`MONTH_SECONDS`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gpupool.bench.events import EventSim
from gpupool.core import Job, Queue
from gpupool.core.accounting import NodeHourPrices, PoolPricing, PriceBook, WorkerUse, attempt_accrual
from gpupool.core.budget import Accrual, BudgetLimits, standing
from gpupool.core.models import Admission, Decisions, GpuNode, NodeOffer, PoolClass
from gpupool.core.roofline import NO_HARDWARE, Hardware

MONTH_SECONDS = 30 * 86_400.0
HOURS_PER_MONTH = MONTH_SECONDS / 3600.0


@dataclass(frozen=True, slots=True)
class TimedJob:
    """A job of the workload (`submitted_at` is its arrival) and how long it runs once started."""

    job: Job
    duration: float


@dataclass(frozen=True, slots=True)
class FixedPool:
    """Nodes owned from the start: `amortised` per node-hour spreads their purchase (and
    running cost) over `amortisation_months`."""

    name: str
    nodes: tuple[GpuNode, ...]
    amortised_per_node_hour: float
    amortisation_months: float

    @property
    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    @property
    def monthly_cost(self) -> float:
        return len(self.nodes) * self.amortised_per_node_hour * HOURS_PER_MONTH

    @property
    def purchase_price(self) -> float:
        """What buying the pool's nodes outright costs: the amortised price over their life."""
        return self.monthly_cost * self.amortisation_months


@dataclass(frozen=True, slots=True)
class ScalingPool:
    """A pool the planner grows: one offer per capacity type (headroom is recomputed)."""

    name: str
    offers: tuple[NodeOffer, ...]
    provisioning_delay: float
    scale_down_after: float
    min_nodes: int = 0
    max_nodes: int | None = None
    max_in_flight: int = 10


@dataclass(frozen=True, slots=True)
class SimCluster:
    """One scenario in core values."""

    name: str
    fixed: tuple[FixedPool, ...]
    scaling: tuple[ScalingPool, ...]
    queues: tuple[Queue, ...]
    budgets: Mapping[str, BudgetLimits] = field(default_factory=dict)
    hardware: Hardware = NO_HARDWARE


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What one scenario did over the workload."""

    scenario: str
    months: int
    waits: Mapping[str, tuple[float, ...]]  # per queue: arrival to first start (started jobs)
    never_started: Mapping[str, int]
    onprem_monthly: float  # amortised on-prem cost of one month
    cloud_by_month: tuple[float, ...]
    purchases: tuple[tuple[float, float], ...]  # per fixed pool: (purchase price, life in months)
    onprem_gpu_hours: float  # capacity over the horizon
    onprem_used_gpu_hours: float
    cloud_paid_gpu_hours: float
    cloud_used_gpu_hours: float
    preemptions: int
    scale_ups: int
    schedule_calls: int
    # per queue: what its jobs' attempts were billed inside the horizon, at the operator's
    # accrual rule (what their status.cost and the queue's budget spend would say)
    billed: Mapping[str, float] = field(default_factory=dict)

    def wait_pct(self, queue: str, q: float) -> float:
        waits = self.waits.get(queue, ())
        return float(np.percentile(waits, q)) if waits else math.nan

    @property
    def utilisation(self) -> float:
        """GPU-hours used over GPU-hours paid for (on-prem capacity plus rented cloud)."""
        paid = self.onprem_gpu_hours + self.cloud_paid_gpu_hours
        return (self.onprem_used_gpu_hours + self.cloud_used_gpu_hours) / paid if paid > 0 else math.nan

    @property
    def onprem_utilisation(self) -> float:
        return self.onprem_used_gpu_hours / self.onprem_gpu_hours if self.onprem_gpu_hours > 0 else math.nan

    @property
    def cloud_monthly(self) -> float:
        return sum(self.cloud_by_month) / len(self.cloud_by_month) if self.cloud_by_month else 0.0


Progress = Callable[[float, int, int], None]
"""`(simulated seconds, jobs finished, jobs in the workload)`, every second or so of wall time."""


class _PlanSim(EventSim):
    def __init__(
        self, cluster: SimCluster, workload: Sequence[TimedJob], horizon: float, progress: Progress | None
    ) -> None:
        offers = tuple(o for pool in cluster.scaling for o in pool.offers)
        fixed = [n for pool in cluster.fixed for n in pool.nodes]
        super().__init__([t.job for t in workload], fixed, cluster.queues, offers)
        self.hardware = cluster.hardware
        self.cluster = cluster
        self.durations = {t.job.key: t.duration for t in workload}
        self.scaling = {p.name: p for p in cluster.scaling}
        self.prices = price_book_of(cluster)
        self.billed: dict[str, float] = {q.name: 0.0 for q in cluster.queues}
        self.ended: dict[str, deque[Accrual]] = {q: deque() for q in cluster.budgets}
        self.used = {PoolClass.ON_PREM: 0.0, PoolClass.CLOUD: 0.0}
        self.node_class = {n.name: n for n in fixed}
        self.preemptions = 0
        self.finished = 0
        self.horizon = horizon
        self.last_end = 0.0
        self.progress = progress
        self.reported = time.monotonic()

    # -- hooks ----------------------------------------------------------------------------

    def duration(self, job: Job, admission: Admission) -> float:
        choice = admission.model_choice
        if choice is not None and choice.seconds is not None:
            return max(1.0, choice.seconds)
        return self.durations[job.key]

    def provisioning_delay(self, pool: str) -> float:
        return self.scaling[pool].provisioning_delay

    def scale_down_after(self, pool: str) -> float:
        return self.scaling[pool].scale_down_after

    def min_nodes(self, pool: str) -> int:
        return self.scaling[pool].min_nodes

    def offers_at(self, now: float) -> tuple[NodeOffer, ...]:
        have: dict[str, int] = {}
        flying: dict[str, int] = {}
        for c in self.cloud.values():
            have[c.node.pool] = have.get(c.node.pool, 0) + 1
        for c in self.in_flight.values():
            have[c.node.pool] = have.get(c.node.pool, 0) + 1
            flying[c.node.pool] = flying.get(c.node.pool, 0) + 1
        out: list[NodeOffer] = []
        for pool in self.cluster.scaling:
            limit = pool.max_nodes if pool.max_nodes is not None else 1_000_000
            room = max(0, min(limit - have.get(pool.name, 0), pool.max_in_flight - flying.get(pool.name, 0)))
            out.extend(replace(o, headroom=room) for o in pool.offers)
        return tuple(out)

    def queues_at(self, now: float) -> tuple[Queue, ...]:
        if not self.cluster.budgets:
            return self.queues
        out: list[Queue] = []
        for queue in self.queues:
            limits = self.cluster.budgets.get(queue.name)
            if limits is None:
                out.append(queue)
                continue
            ended = self.ended[queue.name]
            probe = standing(limits, (), now, accruing=False)
            while ended and ended[0].ended < probe.period_start:
                ended.popleft()
            running = [self._accrual(j, now) for j in self.running.values() if j.queue == queue.name]
            now_standing = standing(limits, [*ended, *running], now, accruing=bool(running))
            if now_standing.exhausted:
                self.wake(now_standing.period_end)
            out.append(
                replace(
                    queue,
                    budget_exhausted=now_standing.exhausted,
                    budget_left=now_standing.left,
                    budget_standing=now_standing,
                )
            )
        return tuple(out)

    def on_ended(self, job: Job, now: float, completed: bool) -> None:
        accrual = self._accrual(job, now)
        inside = accrual.share_within(0.0, self.horizon)
        self.used[PoolClass.ON_PREM] += inside * (accrual.gpu_seconds - accrual.cloud_gpu_seconds) / 3600
        self.used[PoolClass.CLOUD] += inside * accrual.cloud_gpu_seconds / 3600
        self.last_end = max(self.last_end, now)
        if job.queue in self.ended:
            self.ended[job.queue].append(accrual)
        self.billed[job.queue] = self.billed.get(job.queue, 0.0) + inside * accrual.cost
        self.finished += completed

    def on_preempted(self, victim: str, now: float) -> None:
        self.finish(victim, now, completed=False)
        self.pending[victim] = self.jobs[victim]
        self.preemptions += 1

    def after_decide(self, now: float, decisions: Decisions) -> None:
        if decisions.preemptions:
            self.wake(now + 1.0)  # the preemptors start in the next cycle, once their victims are gone

    def on_step(self, now: float) -> None:
        if self.progress is not None and time.monotonic() - self.reported >= 1.0:
            self.reported = time.monotonic()
            self.progress(now, self.finished, len(self.jobs))

    # -- accounting -------------------------------------------------------------------------

    def _accrual(self, job: Job, now: float) -> Accrual:
        """What the running attempt of `job` accrued from its admission (its pods start when
        admitted here) to `now`, at the operator's accrual rule (`gpupool.core.accounting`)."""
        started = job.admitted_at if job.admitted_at is not None else now
        workers = []
        for placement in job.placements:
            node = self.node_class.get(placement.node) or self._cloud_node(placement.node)
            workers.append(
                WorkerUse(
                    pool=node.pool,
                    spot=node.spot,
                    gpus=sum(s.milli for s in placement.gpus) / 1000,
                    cores=job.shape.cpu_milli / 1000,
                    node_cores=node.cpu_milli / 1000 or None,
                )
            )
        return attempt_accrual(self.prices, workers, started, now)

    def _cloud_node(self, name: str) -> GpuNode:
        held = self.cloud.get(name)
        if held is None:
            held = next(c for c in self.gone if c.node.name == name)
        return held.node

    def result(self, months: int) -> PlanResult:
        horizon = months * MONTH_SECONDS
        cloud_by_month = [0.0] * months
        paid_gpu_hours = 0.0
        for node in self.gone:
            assert node.released_at is not None
            for m in range(months):
                start, end = m * MONTH_SECONDS, (m + 1) * MONTH_SECONDS
                overlap = max(0.0, min(node.released_at, end) - max(node.requested_at, start))
                cloud_by_month[m] += node.price_per_hour * overlap / 3600
                paid_gpu_hours += node.node.gpus * overlap / 3600
        waits: dict[str, list[float]] = {q.name: [] for q in self.queues}
        never: dict[str, int] = {q.name: 0 for q in self.queues}
        for key, job in self.jobs.items():
            if key in self.started:
                waits.setdefault(job.queue, []).append(self.started[key] - job.submitted_at)
            else:
                never[job.queue] = never.get(job.queue, 0) + 1
        onprem_gpus = sum(p.gpus for p in self.cluster.fixed)
        return PlanResult(
            scenario=self.cluster.name,
            months=months,
            waits={q: tuple(w) for q, w in waits.items()},
            never_started=never,
            onprem_monthly=sum(p.monthly_cost for p in self.cluster.fixed),
            cloud_by_month=tuple(cloud_by_month),
            purchases=tuple((p.purchase_price, p.amortisation_months) for p in self.cluster.fixed),
            onprem_gpu_hours=onprem_gpus * horizon / 3600,
            onprem_used_gpu_hours=self.used[PoolClass.ON_PREM],
            cloud_paid_gpu_hours=paid_gpu_hours,
            cloud_used_gpu_hours=self.used[PoolClass.CLOUD],
            preemptions=self.preemptions,
            scale_ups=self.claims,
            schedule_calls=self.calls,
            billed=dict(self.billed),
        )


def price_book_of(cluster: SimCluster) -> PriceBook:
    """The scenario's prices as the operator's price book: a fixed pool's nodes at the
    node-hour price the scenario gave it (`FixedPool.amortised_per_node_hour`, the pool's
    regular price), a scaling pool's at its offers' prices (regular and spot)."""
    pools: list[PoolPricing] = []
    for fixed in cluster.fixed:
        node = fixed.nodes[0] if fixed.nodes else None
        pools.append(
            PoolPricing(
                name=fixed.name,
                cloud=node is not None and node.pool_class == PoolClass.CLOUD,
                gpus_per_node=node.gpus if node is not None else 0,
                prices=NodeHourPrices(amortised=fixed.amortised_per_node_hour),
                cores_per_node=node.cpu_milli / 1000 if node is not None else None,
            )
        )
    for scaling in cluster.scaling:
        regular = next((o.price_per_hour for o in scaling.offers if not o.node.spot), None)
        spot = next((o.price_per_hour for o in scaling.offers if o.node.spot), None)
        template = scaling.offers[0].node if scaling.offers else None
        pools.append(
            PoolPricing(
                name=scaling.name,
                cloud=template is not None and template.pool_class == PoolClass.CLOUD,
                gpus_per_node=template.gpus if template is not None else 0,
                prices=NodeHourPrices(on_demand=regular, spot=spot),
                cores_per_node=template.cpu_milli / 1000 if template is not None else None,
            )
        )
    return PriceBook.of(pools)


def simulate_plan(
    cluster: SimCluster,
    workload: Sequence[TimedJob],
    months: int | None = None,
    progress: Progress | None = None,
) -> PlanResult:
    """Run `workload` on `cluster` (see the module docstring). With `months`, only jobs that
    arrive in the first `months` months run and the figures cover those months; without,
    the figures cover every month until the last job ends. Jobs that run past the horizon
    finish, but what they cost after it is not counted (nor their use of the GPUs)."""
    if months is not None:
        workload = [t for t in workload if t.job.submitted_at < months * MONTH_SECONDS]
    sim = _PlanSim(cluster, workload, math.inf if months is None else months * MONTH_SECONDS, progress)
    sim.run()
    if months is None:
        last = max([sim.last_end, *(c.released_at or 0.0 for c in sim.gone)])
        months = max(1, math.ceil(last / MONTH_SECONDS))
    return sim.result(months)


__all__ = [
    "HOURS_PER_MONTH",
    "MONTH_SECONDS",
    "FixedPool",
    "PlanResult",
    "ScalingPool",
    "SimCluster",
    "TimedJob",
    "simulate_plan",
]
