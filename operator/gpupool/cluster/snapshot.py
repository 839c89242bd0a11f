"""Turn the cache's raw objects into the core's `Snapshot`, and say what could not be used.

Who calls this: the scheduling loop at step 2 of each cycle. Objects that cannot be read
(an odd node label, a job written by a newer CRD) are skipped with a reason instead of
crashing the loop; jobs that cannot be scheduled for reasons the core does not model
(their queue does not exist, their namespace may not use the queue) are reported here with
a message a person can act on.

Taints of a GPUNodePool are tolerated by gpupool's pods automatically (the pod gets the
pool's tolerations, as Kueue does for a flavor's), so they are removed from the nodes the
core sees; any other taint must be tolerated by the job's own pod template.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from gpupool.api import GPUJob, GPUNodePool, GPUQueue, JobPhase, parse_gpujob, parse_gpunodepool, parse_gpuqueue
from gpupool.api.objects import InvalidObjectError
from gpupool.cluster.cache import CacheView, Kind
from gpupool.cluster.convert import ConversionError, gpu_node_from_k8s, job_from_api, queue_from_api
from gpupool.core.models import GpuNode, Job, Queue, Snapshot, Taint

log = logging.getLogger("gpupool.snapshot")

PENDING_PHASES = frozenset({None, JobPhase.QUEUED, JobPhase.PREEMPTED})
HOLDING_PHASES = frozenset({JobPhase.ADMITTED, JobPhase.RUNNING})


@dataclass
class Unschedulable:
    """A job the core is not asked about, with its reason code and message."""

    code: str
    message: str


@dataclass
class SnapshotBuild:
    """The snapshot plus what the loop needs to apply decisions about it."""

    snapshot: Snapshot
    jobs: dict[str, GPUJob] = field(default_factory=dict)
    nodes: dict[str, GpuNode] = field(default_factory=dict)
    pools: dict[str, GPUNodePool] = field(default_factory=dict)
    queues: dict[str, GPUQueue] = field(default_factory=dict)
    pool_taints: dict[str, tuple[Taint, ...]] = field(default_factory=dict)
    unschedulable: dict[str, Unschedulable] = field(default_factory=dict)
    invalid_jobs: dict[str, str] = field(default_factory=dict)


def parse_jobs(view: CacheView) -> tuple[dict[str, GPUJob], dict[str, str]]:
    """Every GPUJob the cache holds, parsed; the ones that cannot be read, with why."""
    jobs: dict[str, GPUJob] = {}
    invalid: dict[str, str] = {}
    for key, raw in view.of(Kind.JOB).items():
        try:
            jobs[key] = parse_gpujob(raw)
        except (InvalidObjectError, ValidationError, ValueError) as error:
            invalid[key] = str(error)
    return jobs, invalid


def _pools(view: CacheView) -> dict[str, GPUNodePool]:
    pools: dict[str, GPUNodePool] = {}
    for name, raw in view.of(Kind.POOL).items():
        try:
            pools[name] = parse_gpunodepool(raw)
        except (InvalidObjectError, ValidationError, ValueError) as error:
            log.warning("skipping unreadable GPUNodePool", extra={"pool": name, "error": str(error)})
    return pools


def _queues(view: CacheView) -> dict[str, GPUQueue]:
    queues: dict[str, GPUQueue] = {}
    for name, raw in view.of(Kind.QUEUE).items():
        try:
            queues[name] = parse_gpuqueue(raw)
        except (InvalidObjectError, ValidationError, ValueError) as error:
            log.warning("skipping unreadable GPUQueue", extra={"queue": name, "error": str(error)})
    return queues


def pool_taints(pool: GPUNodePool) -> tuple[Taint, ...]:
    """The taints every node of `pool` carries (and its worker pods tolerate)."""
    return tuple(Taint(key=t.key, value=t.value or "", effect=str(t.effect.value)) for t in pool.spec.taints)


def _nodes(
    view: CacheView, pools: Mapping[str, GPUNodePool]
) -> tuple[dict[str, GpuNode], dict[str, tuple[Taint, ...]]]:
    nodes: dict[str, GpuNode] = {}
    taints_by_pool = {name: pool_taints(pool) for name, pool in pools.items()}
    for name, raw in view.of(Kind.NODE).items():
        try:
            node = gpu_node_from_k8s(raw, list(pools.values()))
        except (ConversionError, ValueError) as error:
            log.warning("skipping unreadable node", extra={"node": name, "error": str(error)})
            continue
        if node is None:
            continue
        own_taints = taints_by_pool.get(node.pool, ())
        if own_taints:
            node = _without_taints(node, own_taints)
        nodes[name] = node
    return nodes, taints_by_pool


def _without_taints(node: GpuNode, tolerated: tuple[Taint, ...]) -> GpuNode:
    from dataclasses import replace

    return replace(node, taints=tuple(t for t in node.taints if t not in tolerated))


def namespace_may_use(queue: GPUQueue, namespace_labels: Mapping[str, str] | None) -> bool:
    """True when the queue's namespaceSelector admits a namespace with these labels."""
    selector = queue.spec.namespace_selector
    if selector is None:
        return True
    return selector.matches(dict(namespace_labels or {}))


def build_snapshot(
    view: CacheView,
    now: float,
    *,
    decayed_usage: Mapping[str, float],
    budget_exhausted: Mapping[str, bool] | None = None,
    seed: int = 0,
) -> SnapshotBuild:
    """Build the cycle's snapshot from a cache view (see the module docstring)."""
    pools = _pools(view)
    nodes, taints_by_pool = _nodes(view, pools)
    api_queues = _queues(view)
    jobs, invalid = parse_jobs(view)
    namespaces = {
        name: (raw.get("metadata") or {}).get("labels") or {} for name, raw in view.of(Kind.NAMESPACE).items()
    }

    queues: list[Queue] = []
    for name, queue in sorted(api_queues.items()):
        try:
            queues.append(
                queue_from_api(
                    queue,
                    decayed_usage_gpu_seconds=decayed_usage.get(name, 0.0),
                    budget_exhausted=(budget_exhausted or {}).get(name, False),
                )
            )
        except (ConversionError, ValueError) as error:
            log.warning("skipping unreadable GPUQueue", extra={"queue": name, "error": str(error)})

    running: list[Job] = []
    pending: list[Job] = []
    unschedulable: dict[str, Unschedulable] = {}
    for key, job in sorted(jobs.items()):
        phase = job.status.phase
        if phase not in PENDING_PHASES and phase not in HOLDING_PHASES:
            continue
        if (job.metadata or {}).get("deletionTimestamp"):
            continue
        try:
            core_job = job_from_api(job)
        except (ConversionError, ValueError) as error:
            invalid[key] = str(error)
            continue
        if phase in HOLDING_PHASES:
            running.append(core_job)
            continue
        target = api_queues.get(job.spec.queue)
        namespace = str(job.metadata.get("namespace", ""))
        if target is None:
            unschedulable[key] = Unschedulable(
                "QueueNotFound",
                f"queue {job.spec.queue} does not exist; create the GPUQueue or set spec.queue to an existing one "
                f"(kubectl get gpuqueues)",
            )
        elif not namespace_may_use(target, namespaces.get(namespace)):
            unschedulable[key] = Unschedulable(
                "NamespaceNotAllowed",
                f"namespace {namespace} may not submit to queue {job.spec.queue}: its namespaceSelector does not "
                f"match this namespace's labels; ask the platform team or use another queue",
            )
        else:
            pending.append(core_job)

    snapshot = Snapshot(
        now=now,
        nodes=tuple(nodes[name] for name in sorted(nodes)),
        queues=tuple(queues),
        running=tuple(running),
        pending=tuple(pending),
        seed=seed,
    )
    return SnapshotBuild(
        snapshot=snapshot,
        jobs=jobs,
        nodes=nodes,
        pools=pools,
        queues=api_queues,
        pool_taints=taints_by_pool,
        unschedulable=unschedulable,
        invalid_jobs=invalid,
    )
