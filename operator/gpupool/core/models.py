"""Value types the scheduling core reads and returns.

Who uses this: the operator's adapter (`gpupool.cluster`) converts Kubernetes objects into
these values to build a `Snapshot`; `gpupool.core.schedule` turns a snapshot into
`Decisions`; the trace simulator (`gpupool.sim`) builds the same values from CSV rows.
Everything here is an immutable value with no I/O, so identical input gives identical
decisions.

Units: GPUs are counted in milli-GPU (1000 = one whole GPU), cpu in millicores, memory in
bytes, time in seconds since the epoch (the clock is an input, never read here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from gpupool.core.roofline import NO_HARDWARE, Hardware, JobProfile, ModelChoice

if TYPE_CHECKING:
    from gpupool.core.budget import BudgetStanding
    from gpupool.core.placement.memory import PlacementMemory

MILLI_PER_GPU = 1000


class PoolClass(StrEnum):
    """Where a node lives: bought hardware or rented capacity."""

    ON_PREM = "OnPrem"
    CLOUD = "Cloud"


class PlacementPolicy(StrEnum):
    """Which pools a job accepts (GPUJob `spec.placement`)."""

    ON_PREM_ONLY = "OnPremOnly"
    CLOUD_ALLOWED = "CloudAllowed"
    SPOT_ALLOWED = "SpotAllowed"


class CpuFallback(StrEnum):
    """Whether a single-worker job may run on a CPU-only node (GPUJob `spec.cpuFallback`)."""

    NEVER = "Never"
    ALLOWED = "Allowed"
    PREFERRED = "Preferred"


class Device(StrEnum):
    """What an admitted job runs on: GPUs, or a CPU-only node (CPU fallback)."""

    GPU = "GPU"
    CPU = "CPU"


CPU_MODEL = "CPU"
"""The `gpu_model` of a CPU-only node (a GPUNodePool with `gpusPerNode: 0`); only jobs that
fall back to CPU (`gpupool.core.cpufallback`) are placed there."""


class QueueingStrategy(StrEnum):
    """Head-of-line policy of a queue."""

    STRICT_FIFO = "StrictFIFO"
    BEST_EFFORT_FIFO = "BestEffortFIFO"


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint; only `NoSchedule` and `NoExecute` keep jobs off a node."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration with Kubernetes semantics (`Equal` or `Exists`; empty effect = any)."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """True when this toleration lets a pod onto a node carrying `taint`."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return self.key == "" or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


NO_POD_LIMIT = 1 << 31
"""`GpuNode.max_pods` of a node without a pod limit (large enough never to bind)."""


@dataclass(frozen=True, slots=True)
class GpuNode:
    """A schedulable node with identical GPUs, as the core sees it.

    `gpu_used_milli` is not stored here: allocation is derived from the running jobs of a
    snapshot (plus `reserved_*` for capacity held by pods gpupool does not manage), so a
    snapshot can never disagree with itself. `reserved_gpu_indices` are those of the
    `reserved_gpus` whose GPUs the node reports (its device report); the rest are taken
    from the first idle GPUs, the fallback (`gpupool.core.placement.state`). `accepts_shares`
    is False on a node that refuses to give a share its GPU (no env-var device selection):
    no share is placed there. `max_pods` is the node's allocatable pod
    count (each worker is one pod); the trace simulator, whose nodes have no pod limit,
    keeps the default `NO_POD_LIMIT`. `shares_only` marks a node whose GPUs the device
    plugin hands out as time-slicing or MPS replicas: only GPU shares (which gpupool pins
    to a GPU index itself) are placed there, never a whole-GPU worker, since a request for
    whole GPUs would get replicas the device plugin may put on one physical GPU.
    """

    name: str
    gpu_model: str
    gpus: int
    cpu_milli: int
    memory_bytes: int
    pool: str = ""
    pool_class: PoolClass = PoolClass.ON_PREM
    spot: bool = False
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    reserved_cpu_milli: int = 0
    reserved_memory_bytes: int = 0
    reserved_gpus: int = 0
    max_pods: int = NO_POD_LIMIT
    reserved_pods: int = 0
    shares_only: bool = False
    reserved_gpu_indices: tuple[int, ...] = ()
    accepts_shares: bool = True


@dataclass(frozen=True, slots=True)
class WorkerShape:
    """What one worker of a job asks for.

    `gpu_milli` is either a share of one GPU (1..999) or a whole number of GPUs
    (a multiple of 1000); 0 means a CPU-only worker.
    """

    gpu_milli: int
    cpu_milli: int = 0
    memory_bytes: int = 0

    @property
    def is_fractional(self) -> bool:
        """True for a share of a single GPU."""
        return 0 < self.gpu_milli < MILLI_PER_GPU

    @property
    def whole_gpus(self) -> int:
        """Whole GPUs per worker (0 for a share or a CPU-only worker)."""
        return self.gpu_milli // MILLI_PER_GPU if self.gpu_milli >= MILLI_PER_GPU else 0


@dataclass(frozen=True, slots=True)
class GpuSlice:
    """`milli` milli-GPU of the GPU at `index` (counting from 0 within its node)."""

    index: int
    milli: int


@dataclass(frozen=True, slots=True)
class WorkerPlacement:
    """Where worker number `worker` of a job runs and which GPU slices it holds."""

    worker: int
    node: str
    gpus: tuple[GpuSlice, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """A GPUJob as the core sees it: pending when `placements` is empty, else holding them.

    `key` is unique and stable (`namespace/name`). `submitted_at` orders equal-priority
    work (FIFO) and is when the job was queued, from which `cpu_fallback_after_seconds`
    counts; `admitted_at` is when the current attempt was admitted (used for
    `minRuntime` and for choosing the most recently started victim). `profile` (GPUJob
    `spec.profile`) lets the scheduler choose among GPU models by roofline estimates
    (`gpupool.core.roofline`); None schedules the job as before. `cpu_fallback` (GPUJob
    `spec.cpuFallback`) lets a pending single-worker job run on a CPU-only node
    (`gpupool.core.cpufallback`); a running job that does holds a `shape` with
    `gpu_milli` 0 (the adapter sets it from the job's status).
    """

    key: str
    queue: str
    shape: WorkerShape
    workers: int = 1
    priority: int = 0
    gpu_models: tuple[str, ...] = ()
    placement_policy: PlacementPolicy = PlacementPolicy.ON_PREM_ONLY
    preemptible: bool = True
    submitted_at: float = 0.0
    tolerations: tuple[Toleration, ...] = ()
    admitted_at: float | None = None
    placements: tuple[WorkerPlacement, ...] = ()
    max_runtime_seconds: float | None = None
    profile: JobProfile | None = None
    cpu_fallback: CpuFallback = CpuFallback.NEVER
    cpu_fallback_after_seconds: float = 300.0

    @property
    def total_gpu_milli(self) -> int:
        """milli-GPU the whole gang holds when running."""
        return self.shape.gpu_milli * self.workers

    @property
    def is_running(self) -> bool:
        """True when the job holds placements (admitted, possibly still starting)."""
        return bool(self.placements)


@dataclass(frozen=True, slots=True)
class Quota:
    """Nominal GPUs a queue owns of one flavor: a GPU model or a pool (exactly one is set).

    `borrowing_limit` caps how many GPUs beyond nominal the queue may borrow from its
    cohort (None = unlimited); `lending_limit` caps how many of its idle nominal GPUs the
    cohort may borrow (None = all of them).
    """

    nominal_gpus: int
    gpu_model: str | None = None
    pool: str | None = None
    borrowing_limit_gpus: int | None = None
    lending_limit_gpus: int | None = None

    @property
    def flavor(self) -> str:
        """The name this quota is keyed by: `pool:<name>` or `model:<name>`."""
        return f"pool:{self.pool}" if self.pool is not None else f"model:{self.gpu_model}"


@dataclass(frozen=True, slots=True)
class PreemptionRules:
    """GPUQueue `spec.preemption`."""

    reclaim_within_cohort: bool = True
    within_queue: bool = True
    min_runtime_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Queue:
    """A GPUQueue: quotas, cohort, fair-share weight and what history the core needs.

    `decayed_usage_gpu_seconds` is the queue's GPU usage decayed with the configured
    half-life up to the snapshot's clock; the adapter keeps it (see
    `gpupool.core.fairshare`). `budget_exhausted` is decided by the cost layer, and so is
    `budget_left`: the money the queue may still spend in its budget period (None: no
    money budget); the autoscale planner requests no node whose projected cost exceeds it.
    `budget_standing` carries the spend, caps and reset time the budget reason names.
    """

    name: str
    quotas: tuple[Quota, ...] = ()
    cohort: str | None = None
    weight: float = 1.0
    max_priority: int | None = None
    strategy: QueueingStrategy = QueueingStrategy.BEST_EFFORT_FIFO
    preemption: PreemptionRules = field(default_factory=PreemptionRules)
    allow_cloud: bool = True
    allow_spot: bool = False
    decayed_usage_gpu_seconds: float = 0.0
    budget_exhausted: bool = False
    budget_left: float | None = None
    budget_standing: BudgetStanding | None = None


@dataclass(frozen=True, slots=True)
class GpupoolParams:
    """Knobs of the `gpupool` scoring policy (`gpupool.core.placement.gpupool_policy`).

    See docs/benchmarks.md for how they were chosen.
    """

    # Step 1: a model is claimed while its free share <= claim_margin x pinned ratio x
    # the cluster's unallocated share; 0 turns step 1 off.
    claim_margin: float = 1.5
    # Shares go to their planned homes first (step 2).
    plan_shares: bool = True
    # Width (milli-GPU) of the growth buckets that count as equally good for shares (step 3).
    growth_bin: float = 100.0
    # Ties: GPU jobs prefer the models that model-pinned jobs need least (step 4).
    spare_pinned_models: bool = True
    # Ties: shares and CPU-only jobs prefer nodes with fewer GPUs (step 4). Whole-GPU jobs
    # do not: whole-GPU-heavy mixes lost about 0.05 points to it.
    small_nodes_first: bool = True


DEFAULT_GPUPOOL_PARAMS = GpupoolParams()


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Knobs of one scheduling cycle; the operator fills it from its settings.

    `scoring_policy` names the function that scores nodes for a worker
    (`gpupool.core.placement.SCORING_POLICY_NAMES`: `default`, `random`, `bestfit`, `fgd`,
    `gpupool`); which pools a job may use is `Job.placement_policy`, a different thing.
    `gpupool_params` are the parameters of the `gpupool` policy. They live here, not in the
    `PlacementMemory` a cycle carries to the next: they are chosen by whoever runs the
    scheduler and never learned from the jobs, so the same memory can be scored with other
    parameters (a what-if) and no parameter is ever a global.
    """

    scoring_policy: str = "default"
    gpupool_params: GpupoolParams = DEFAULT_GPUPOOL_PARAMS
    fair_share_half_life_seconds: float = 3600.0
    max_admissions_per_cycle: int | None = None
    # How long a job without maxRuntime is expected to run when its cost is projected
    # against its queue's budget before new nodes are requested for it.
    cost_horizon_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class NodeOffer:
    """A pool the autoscale planner may add nodes to, with one capacity type.

    `node` is the template of one new node (its name is unused; pool taints the pool's
    pods tolerate are already left out, as for existing nodes). `price_per_hour` is one
    node-hour at this capacity type. `headroom` is how many nodes of the pool may be
    requested now, shared by its on-demand and spot offers: the pool's `maxNodes` and
    in-flight limit less what it has and has in flight, 0 while the pool backs off after a
    failure.
    """

    pool: str
    node: GpuNode
    price_per_hour: float
    headroom: int


@dataclass(frozen=True, slots=True)
class InFlightNode:
    """A node requested (a GPUNodeClaim) and not Ready yet: capacity that is coming."""

    claim: str
    pool: str
    node: GpuNode
    jobs: tuple[str, ...] = ()
    requested_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scheduling cycle may look at, frozen at `now`.

    `offers` and `in_flight` feed the autoscale planner (none: no planning);
    `nominations` maps a node that was requested for some jobs, and is Ready now, to
    those jobs: other jobs may not take it while they wait (Karpenter's nominated nodes).
    `hardware` (GPU specs and GPU-hour prices) is read only for jobs with a profile.
    """

    now: float
    nodes: tuple[GpuNode, ...]
    queues: tuple[Queue, ...]
    running: tuple[Job, ...] = ()
    pending: tuple[Job, ...] = ()
    seed: int = 0
    offers: tuple[NodeOffer, ...] = ()
    in_flight: tuple[InFlightNode, ...] = ()
    nominations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hardware: Hardware = NO_HARDWARE


class WaitCode(StrEnum):
    """Why a job was left waiting; `message` on `Waiting` carries the human sentence."""

    QUEUE_NOT_FOUND = "QueueNotFound"
    QUOTA_EXHAUSTED = "QuotaExhausted"
    NO_FITTING_NODE = "NoFittingNode"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    BEHIND_HIGHER_PRIORITY = "BehindHigherPriority"
    BLOCKED_BY_HEAD_OF_LINE = "BlockedByHeadOfLine"
    BUDGET_EXHAUSTED = "BudgetExhausted"
    PRIORITY_ABOVE_QUEUE_MAX = "PriorityAboveQueueMax"
    WAITING_FOR_PREEMPTION = "WaitingForPreemption"
    NODES_PROVISIONING = "NodesProvisioning"


@dataclass(frozen=True, slots=True)
class Admission:
    """Admit `job_key` with these placements (one per worker). `borrowed_gpus` > 0 when
    the admission uses capacity borrowed from the cohort. `model_choice` is set for a job
    with a profile placed on one of the pools it was ranked for: the chosen GPU model, the
    estimates and the alternatives (the operator writes it to `status.modelChoice`).
    `device` is CPU when a job with `cpu_fallback` is placed on a CPU-only node, with
    `device_reason` the sentence saying why (the operator writes both to the job's status
    and a `RunningOnCPU` event); such an admission holds no GPU and no quota."""

    job_key: str
    placements: tuple[WorkerPlacement, ...]
    borrowed_gpus: float = 0.0
    model_choice: ModelChoice | None = None
    device: Device = Device.GPU
    device_reason: str = ""


@dataclass(frozen=True, slots=True)
class Preemption:
    """Evict `victim_key` so that `preemptor_key` can run; `message` says who and why."""

    victim_key: str
    preemptor_key: str
    message: str


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """Ask pool `pool` for `nodes` new nodes (spot or on-demand) for `jobs`; every job's
    whole gang fits the nodes of this request (with what is in flight in the pool)."""

    pool: str
    spot: bool
    nodes: int
    jobs: tuple[str, ...]
    price_per_hour: float


@dataclass(frozen=True, slots=True)
class Waiting:
    """`job_key` stays queued for `code`; `message` is a sentence a person can act on."""

    job_key: str
    code: WaitCode
    message: str


def _fresh_memory() -> PlacementMemory:
    # Imported here: the placement package imports this module.
    from gpupool.core.placement.memory import PlacementMemory

    return PlacementMemory()


@dataclass(frozen=True, slots=True)
class Decisions:
    """The output of one cycle; the operator's loop applies all but `memory`.

    `memory` is what placement learned up to and including this cycle; pass it to the next
    `schedule` call. It is not part of equality: two `Decisions` are equal when they decide
    the same admissions, preemptions and waits.
    """

    admissions: tuple[Admission, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    node_requests: tuple[NodeRequest, ...] = ()
    memory: PlacementMemory = field(default_factory=_fresh_memory, compare=False, repr=False)
