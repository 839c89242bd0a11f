"""GPUNodePools and GPUJobs as the core's accounting sees them (`gpupool.core.accounting`).

Who calls this: `gpupool.cluster.translate.snapshot` builds the cycle's `PriceBook` with
`price_book` (it is `ClusterSnapshot.prices`); the scaling offers
(`gpupool.cluster.nodes.scaling`) and `gpupool sim`'s scenario (`gpupool.whatif.scenario`)
read a pool's prices through `pool_pricing`; budget spend, `status.cost`, the per-job cost
metric and provenance turn a job's workers into `WorkerUse`s with `worker_uses`; the queue
and pool statuses and the fair-share figure sum what jobs hold with `job_holdings`. No
price and no held GPU is computed anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gpupool.api import GPUJob, GPUNodePool, PoolClass
from gpupool.cluster.translate.convert import HOLDING_PHASES, parse_cpu_milli
from gpupool.core.accounting import (
    HeldWorker,
    Holdings,
    NodeHourPrices,
    PoolPricing,
    PriceBook,
    Rate,
    WorkerUse,
    attempt_accrual,
    cost_per_hour,
    holdings,
)
from gpupool.core.budget import Accrual
from gpupool.core.models import Device, GpuNode


def pool_pricing(pool: GPUNodePool) -> PoolPricing:
    """One pool's prices and shape, from its spec."""
    price = pool.spec.price_per_node_hour
    prices = NodeHourPrices() if price is None else NodeHourPrices(price.amortised, price.on_demand, price.spot)
    cores = None
    if pool.spec.cpu_per_node is not None:
        cores = parse_cpu_milli(pool.spec.cpu_per_node, what="spec.cpuPerNode") / 1000
    return PoolPricing(
        name=str(pool.metadata.get("name")),
        cloud=pool.spec.pool_class == PoolClass.CLOUD,
        gpus_per_node=pool.spec.gpus_per_node,
        prices=prices,
        cores_per_node=cores,
    )


def price_book(pools: Iterable[GPUNodePool]) -> PriceBook:
    """The price book of these pools."""
    return PriceBook.of(pool_pricing(p) for p in pools)


def requested_cores(job: GPUJob) -> float:
    """Cores one worker of `job` requests (`spec.cpu`; 0 when it requests none)."""
    return parse_cpu_milli(job.spec.cpu, what="spec.cpu") / 1000 if job.spec.cpu is not None else 0.0


def cores_of(node: GpuNode | None) -> float | None:
    """A node's allocatable cores; None when the node is not known or states none."""
    return node.cpu_milli / 1000 if node is not None and node.cpu_milli > 0 else None


def worker_uses(job: GPUJob, nodes: Mapping[str, GpuNode]) -> list[WorkerUse]:
    """Each placed worker of `job` as a bill sees it: its pool, whether its node is spot and
    the node's cores (`nodes`: the cycle's nodes; a node gone since counts as not spot), and
    what it asked for: `spec.gpus` on a GPU node, none on a CPU-only node, where its
    `spec.cpu` cores are charged instead (`status.device` CPU)."""
    on_cpu = job.status.device == Device.CPU
    gpus = 0.0 if on_cpu else float(job.spec.gpus)
    cores = requested_cores(job) if on_cpu else 0.0
    uses = []
    for worker in job.status.placement:
        node = nodes.get(worker.node)
        node_cores = cores_of(node)
        uses.append(
            WorkerUse(pool=worker.pool, spot=bool(node and node.spot), gpus=gpus, cores=cores, node_cores=node_cores)
        )
    return uses


@dataclass(frozen=True)
class Biller:
    """What a cycle bills GPUJobs by: its price book and its nodes (whether each is spot,
    its cores). `gpupool.cluster.translate.spend` and the cost metrics ask it; nothing else
    prices a job."""

    book: PriceBook
    nodes: Mapping[str, GpuNode]

    def workers(self, job: GPUJob) -> list[WorkerUse]:
        return worker_uses(job, self.nodes)

    def accrual(self, job: GPUJob, started: float, now: float) -> Accrual:
        """What the job's current attempt accrued from `started` to `now`."""
        return attempt_accrual(self.book, self.workers(job), started, now)

    def cost_per_hour(self, job: GPUJob) -> float:
        """What the job's placed workers cost per hour where they run."""
        return cost_per_hour(self.book, self.workers(job))

    def rate(self, pool: str, node: str) -> Rate:
        """What one unit-hour (GPU-hour, or core-hour on a CPU pool) costs on `node` of `pool`."""
        found = self.nodes.get(node)
        node_cores = cores_of(found)
        return self.book.rate(pool, spot=bool(found and found.spot), node_cores=node_cores)


FlavorOf = Callable[[str, str, str], str | None]
"""`(queue, pool, gpu model) -> the queue's quota flavor` a GPU there counts against."""


def job_holdings(jobs: Iterable[GPUJob], pool_of_node: Mapping[str, str], flavor_of: FlavorOf) -> Holdings:
    """What the jobs that hold GPUs (phase Admitted or Running) hold: per worker its GPUs (a
    share as its fraction; none on a CPU-only node), by queue, quota flavor and pool. A
    worker counts for its node's pool (`pool_of_node`; none when the node is gone) and for
    the queue's flavor of that pool, or of the pool its placement names when the node is gone."""
    workers: list[HeldWorker] = []
    for job in jobs:
        if job.status.phase not in HOLDING_PHASES or job.status.device == Device.CPU:
            continue
        queue = job.spec.queue
        for w in job.status.placement:
            pool = pool_of_node.get(w.node)
            flavor = flavor_of(queue, pool or w.pool, w.gpu_model)
            workers.append(HeldWorker(queue, pool, flavor, len(w.gpu_indices) * w.gpu_share))
    return holdings(workers)
