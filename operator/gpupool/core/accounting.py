"""Money and GPU usage, computed in one place: the price book, what an attempt accrues and
what a set of placements holds.

Who calls this: the operator's snapshot builds one `PriceBook` per cycle from the
GPUNodePools (`gpupool.cluster.translate.accounting`), and every reader of a price or a bill
goes through it: budget spend and `status.cost` (`gpupool.cluster.translate.spend`), the
scaling offers the autoscaler weighs (`gpupool.cluster.nodes.scaling`), the roofline
model choice (`Hardware` prices), provenance, the cost metrics, `gpupool bench burst`
and `gpupool sim` (their event loops price the nodes they simulate with the same book).
What running jobs hold by queue, quota flavor and pool is `holdings`, read by the queue
and pool statuses and the fair-share figure of the snapshot.

**The price rule.** A pool states node-hour prices (`spec.pricePerNodeHour`: `amortised`,
`onDemand`, `spot`). A node that is not spot pays the on-demand price when it is set,
else the amortised one, else nothing (0). A spot node pays the spot price when it is set,
else the regular price above. A price of 0 is a price (a node that costs nothing), never
a missing one. A GPU-hour is the node-hour over the pool's GPUs per node; a CPU pool
(`gpusPerNode: 0`) has no GPU-hour price but a core-hour one: the node-hour over the
node's allocatable cores (the pool's `cpuPerNode` when the node is not known).

**The accrual rule.** An attempt accrues from the time its workers started (the
operator: `status.startedAt`; the simulators, whose pods start when admitted: the
admission) to its end or now. A worker on a GPU node is charged its GPUs (a share as the
fraction it asked for) times the GPU-hour price of its node; a worker on a CPU-only node
is charged its requested cores times the core-hour price, and holds no GPU-seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from gpupool.core.budget import Accrual


@dataclass(frozen=True, slots=True)
class NodeHourPrices:
    """A pool's stated node-hour prices; None where the pool states none."""

    amortised: float | None = None
    on_demand: float | None = None
    spot: float | None = None

    def regular(self) -> float:
        """What a node that is not spot pays per hour: on-demand, else amortised, else 0."""
        if self.on_demand is not None:
            return self.on_demand
        if self.amortised is not None:
            return self.amortised
        return 0.0

    def of(self, *, spot: bool) -> float:
        """What one node-hour costs: the spot price for a spot node when stated, else regular."""
        if spot and self.spot is not None:
            return self.spot
        return self.regular()


class PriceUnit(StrEnum):
    """What a worker is charged by: its GPUs, or (on a CPU-only node) its requested cores."""

    GPU = "GPU"
    CPU_CORE = "CPUCore"


@dataclass(frozen=True, slots=True)
class PoolPricing:
    """One pool as prices see it. `gpus_per_node` is 0 for a CPU pool; `cores_per_node` is
    the pool's stated cores per node (a CPU pool's fallback when its node is not known)."""

    name: str
    cloud: bool
    gpus_per_node: int
    prices: NodeHourPrices = NodeHourPrices()
    cores_per_node: float | None = None

    @property
    def is_cpu_pool(self) -> bool:
        return self.gpus_per_node == 0

    def node_hour(self, *, spot: bool) -> float:
        return self.prices.of(spot=spot)

    def gpu_hour(self, *, spot: bool) -> float:
        """One GPU-hour: the node-hour over the GPUs per node; 0 on a CPU pool."""
        if self.is_cpu_pool:
            return 0.0
        return self.node_hour(spot=spot) / self.gpus_per_node

    def core_hour(self, *, spot: bool, node_cores: float | None = None) -> float:
        """One CPU-core-hour on a node with `node_cores` allocatable cores (the pool's
        `cores_per_node` when None or 0); 0 when neither is known."""
        cores = node_cores if node_cores else self.cores_per_node
        if not cores:
            return 0.0
        return self.node_hour(spot=spot) / cores

    def offers(self) -> tuple[tuple[bool, float], ...]:
        """`(spot, node-hour price)` of each capacity type the pool offers new nodes of: the
        regular kind unless the pool states a spot price and nothing else; spot on a cloud
        pool that states a spot price."""
        p = self.prices
        out: list[tuple[bool, float]] = []
        if p.on_demand is not None or p.amortised is not None or p.spot is None:
            out.append((False, p.regular()))
        if p.spot is not None and self.cloud:
            out.append((True, p.spot))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Rate:
    """The price of one unit-hour where a worker runs, the unit, and whether it is cloud."""

    price: float
    unit: PriceUnit
    cloud: bool


NO_RATE = Rate(0.0, PriceUnit.GPU, cloud=False)


@dataclass(frozen=True)
class PriceBook:
    """Every pool's pricing by name; a pool not in the book costs nothing."""

    pools: Mapping[str, PoolPricing] = field(default_factory=dict)

    @classmethod
    def of(cls, pools: Iterable[PoolPricing]) -> PriceBook:
        return cls({p.name: p for p in pools})

    def pool(self, name: str) -> PoolPricing | None:
        return self.pools.get(name)

    def gpu_hour(self, pool: str, *, spot: bool) -> float:
        found = self.pools.get(pool)
        return found.gpu_hour(spot=spot) if found is not None else 0.0

    def rate(self, pool: str, *, spot: bool, node_cores: float | None = None) -> Rate:
        """What one unit-hour costs on a node of `pool`: a GPU-hour, or a core-hour on a CPU
        pool's node with `node_cores` cores (see the module's price rule)."""
        found = self.pools.get(pool)
        if found is None:
            return NO_RATE
        if found.is_cpu_pool:
            return Rate(found.core_hour(spot=spot, node_cores=node_cores), PriceUnit.CPU_CORE, found.cloud)
        return Rate(found.gpu_hour(spot=spot), PriceUnit.GPU, found.cloud)


@dataclass(frozen=True, slots=True)
class WorkerUse:
    """One worker of an attempt as a bill sees it: where it runs (`pool`, whether the node is
    spot, the node's allocatable cores when known) and what it asked for (`gpus`, a share as
    its fraction; `cores`, charged only on a CPU-only node)."""

    pool: str
    spot: bool
    gpus: float
    cores: float = 0.0
    node_cores: float | None = None


def worker_cost_per_hour(book: PriceBook, worker: WorkerUse) -> tuple[float, Rate]:
    """What `worker` costs per hour where it runs, and the rate it is charged at."""
    rate = book.rate(worker.pool, spot=worker.spot, node_cores=worker.node_cores)
    units = worker.cores if rate.unit == PriceUnit.CPU_CORE else worker.gpus
    return rate.price * units, rate


def cost_per_hour(book: PriceBook, workers: Sequence[WorkerUse]) -> float:
    """What an attempt with these workers costs per hour while it runs."""
    return sum(worker_cost_per_hour(book, w)[0] for w in workers)


def attempt_accrual(book: PriceBook, workers: Sequence[WorkerUse], started: float, now: float) -> Accrual:
    """What an attempt with these workers accrued from `started` to `now` (the module's
    accrual rule): each worker's units times its rate, GPU-seconds of GPU workers only,
    the cloud part of both."""
    seconds = max(0.0, now - started)
    gpu_seconds = cost = cloud_gpu_seconds = cloud_cost = 0.0
    for worker in workers:
        per_hour, rate = worker_cost_per_hour(book, worker)
        worker_cost = per_hour * seconds / 3600.0
        worker_gpu_seconds = worker.gpus * seconds if rate.unit == PriceUnit.GPU else 0.0
        gpu_seconds += worker_gpu_seconds
        cost += worker_cost
        if rate.cloud:
            cloud_cost += worker_cost
            cloud_gpu_seconds += worker_gpu_seconds
    return Accrual(
        started=started,
        ended=max(started, now),
        gpu_seconds=gpu_seconds,
        cost=cost,
        cloud_gpu_seconds=cloud_gpu_seconds,
        cloud_cost=cloud_cost,
    )


@dataclass(frozen=True, slots=True)
class HeldWorker:
    """GPUs one worker of a job holding GPUs holds (a share as its fraction, 0 on a CPU-only
    node), with its queue, the pool of its node (None when the node is gone: it counts for
    no pool) and the quota flavor the queue charges it to (None: none)."""

    queue: str
    pool: str | None
    flavor: str | None
    gpus: float


@dataclass(frozen=True)
class Holdings:
    """What a set of workers holds: GPUs by queue, by `(queue, flavor)` and by pool."""

    by_queue: Mapping[str, float]
    by_flavor: Mapping[tuple[str, str], float]
    by_pool: Mapping[str, float]

    def of_queue(self, queue: str) -> float:
        return self.by_queue.get(queue, 0.0)

    def flavors_of(self, queue: str) -> dict[str, float]:
        return {flavor: gpus for (q, flavor), gpus in self.by_flavor.items() if q == queue}

    def of_pool(self, pool: str) -> float:
        return self.by_pool.get(pool, 0.0)


def holdings(workers: Iterable[HeldWorker]) -> Holdings:
    """Sum what `workers` hold by queue, by queue and flavor, and by pool."""
    by_queue: dict[str, float] = {}
    by_flavor: dict[tuple[str, str], float] = {}
    by_pool: dict[str, float] = {}
    for w in workers:
        by_queue[w.queue] = by_queue.get(w.queue, 0.0) + w.gpus
        if w.pool is not None:
            by_pool[w.pool] = by_pool.get(w.pool, 0.0) + w.gpus
        if w.flavor is not None:
            key = (w.queue, w.flavor)
            by_flavor[key] = by_flavor.get(key, 0.0) + w.gpus
    return Holdings(by_queue, by_flavor, by_pool)


NOTHING_HELD = Holdings({}, {}, {})
