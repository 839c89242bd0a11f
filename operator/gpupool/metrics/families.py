"""Every Prometheus metric family the operator exports, declared once, here.

Who uses this: `gpupool.metrics.collect.OperatorMetrics` builds its prometheus-client
counters and histograms and its per-cycle gauges from `FAMILIES`; `gpupool.metrics.docgen`
writes docs/metrics.md from the same table, so the reference cannot drift from the code.

Rules the table keeps (a unit test checks them):
- names start with `gpupool_`, except the OpenCost-compatible families (`source="opencost"`),
  which carry OpenCost's own names and labels so OpenCost-style queries work unchanged;
- base units (seconds, GPUs as a count, money in the pools' price unit, ratios 0..1), and
  counters end in `_total`;
- every label is either a closed set of values (listed) or bounded by API objects a
  platform team creates (queues, pools, nodes); series per job or worker exist only on
  gauges marked `per_job`, which are rebuilt each cycle, so they vanish with the job;
- the help text names each label and lists its values (built by `Family.help`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricType(StrEnum):
    """The Prometheus type of a family."""

    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Label:
    """One label: its name, what it holds, and its values when they are a closed set."""

    name: str
    meaning: str
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        """`reason (why it waits: one of quota, capacity)` - the help text's words for it."""
        if self.values:
            return f"{self.name} ({self.meaning}: one of {', '.join(self.values)})"
        return f"{self.name} ({self.meaning})"


@dataclass(frozen=True)
class Family:
    """One metric family: name, type, what it measures and in what unit, and its labels."""

    name: str
    type: MetricType
    summary: str
    labels: tuple[Label, ...] = ()
    buckets: tuple[float, ...] = ()
    per_job: bool = False
    source: str = "gpupool"

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def help(self) -> str:
        """The summary, then every label with its meaning and, when closed, its values."""
        if not self.labels:
            return self.summary
        return f"{self.summary} Labels: {'; '.join(label.describe() for label in self.labels)}."

    @property
    def exported_name(self) -> str:
        """The name as scraped: prometheus-client adds `_total` to counters itself."""
        return self.name.removesuffix("_total") if self.type == MetricType.COUNTER else self.name


# --------------------------------------------------------------------------- closed label sets

PENDING_REASONS = ("quota", "capacity", "provisioning", "preemption", "ordering", "budget", "config")
"""Reason classes of a waiting job (`gpupool.metrics.gauges.REASON_CLASS` maps each WaitCode)."""
ADMISSION_REASONS = ("nominal", "borrowed")
PREEMPTION_REASONS = ("within_queue", "reclaim")
RESTART_REASONS = ("worker_failed", "node_lost", "admission_rejected")
FINISH_RESULTS = ("succeeded", "failed")
SCALE_UP_RESULTS = ("requested", "ready", "failed")
SCALE_DOWN_REASONS = ("idle", "lost")
NODE_STATES = ("ready", "not_ready", "provisioning", "draining")
POOL_CLASSES = ("on_prem", "cloud")
CAPACITY_TYPES = ("on_demand", "spot")
STEPS = ("snapshot", "lifecycle", "decide", "apply", "nodes", "report")
"""The scheduling loop's steps (`gpupool.controllers.loop.STEPS`; a unit test keeps them equal)."""

# --------------------------------------------------------------------------- labels

QUEUE = Label("queue", "GPUQueue name")
POOL = Label("pool", "GPUNodePool name")
FLAVOR = Label("flavor", "quota flavor, model:<GPU model> or pool:<pool name>")
CURRENCY = Label("currency", "currency of the queue's budget")
NODE = Label("node", "Node name")
INSTANCE = Label("instance", "Node name, as OpenCost sets it")
INSTANCE_TYPE = Label("instance_type", "the node's node.kubernetes.io/instance-type label, else its pool")
REGION = Label("region", "the node's topology.kubernetes.io/region label, empty when absent")
PROVIDER_ID = Label("provider_id", "the node's spec.providerID, empty when absent")
NAMESPACE = Label("namespace", "namespace of the GPUJob")
OPENCOST_NODE = (INSTANCE, NODE, INSTANCE_TYPE, REGION, PROVIDER_ID)

# Seconds to wait for admission: from one second to a day.
WAIT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
# Seconds one step of a cycle takes: from a millisecond to a minute.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds from a node claim to a Ready node: from five seconds to an hour.
PROVISIONING_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)


def gauge(name: str, summary: str, *labels: Label, per_job: bool = False, source: str = "gpupool") -> Family:
    """A gauge family (recomputed each cycle)."""
    return Family(name, MetricType.GAUGE, summary, labels, per_job=per_job, source=source)


def counter(name: str, summary: str, *labels: Label) -> Family:
    """A counter family; `name` ends in `_total`."""
    return Family(name, MetricType.COUNTER, summary, labels)


def histogram(name: str, summary: str, *labels: Label, buckets: tuple[float, ...]) -> Family:
    """A histogram family with its bucket bounds."""
    return Family(name, MetricType.HISTOGRAM, summary, labels, buckets=buckets)


def closed(name: str, meaning: str, values: tuple[str, ...]) -> Label:
    """A label whose values are a closed set."""
    return Label(name, meaning, values)


FAMILIES: tuple[Family, ...] = (
    # ---- queues: jobs
    gauge(
        "gpupool_queue_pending_jobs",
        "GPUJobs waiting for admission after this cycle's decisions, per queue and reason class.",
        QUEUE,
        closed("reason", "why they wait, a class of the job's WaitCode", PENDING_REASONS),
    ),
    gauge("gpupool_queue_admitted_jobs", "GPUJobs holding GPUs (phase Admitted or Running), per queue.", QUEUE),
    gauge("gpupool_queue_running_jobs", "GPUJobs in phase Running (every worker running), per queue.", QUEUE),
    # ---- queues: quota
    gauge("gpupool_queue_nominal_gpus", "Nominal quota in GPUs, per queue and flavor.", QUEUE, FLAVOR),
    gauge(
        "gpupool_queue_borrowing_limit_gpus",
        "Most GPUs the queue may borrow from its cohort, per flavor; no series when unlimited.",
        QUEUE,
        FLAVOR,
    ),
    gauge("gpupool_queue_used_gpus", "GPUs held by the queue's admitted jobs, per flavor.", QUEUE, FLAVOR),
    gauge("gpupool_queue_borrowed_gpus", "GPUs used beyond nominal quota, borrowed from the cohort.", QUEUE, FLAVOR),
    # ---- queues: budgets and cost
    gauge(
        "gpupool_queue_budget_spent",
        "Money counted toward the queue's budget in the current period (only cloud spend under "
        "scope CloudOnly), in the budget's currency; queues with a budget only.",
        QUEUE,
        CURRENCY,
    ),
    gauge("gpupool_queue_budget_amount", "The queue's budget per period, in its currency.", QUEUE, CURRENCY),
    gauge(
        "gpupool_queue_budget_period_end_timestamp_seconds",
        "When the queue's current budget period ends (UTC calendar period), in seconds since the "
        "epoch; queues with a budget only.",
        QUEUE,
    ),
    gauge(
        "gpupool_queue_budget_spent_gpu_seconds",
        "GPU-seconds counted toward the queue's budget in the current period; queues with a budget only.",
        QUEUE,
    ),
    counter(
        "gpupool_queue_cost_total",
        "What the queue's jobs cost, at their pools' GPU-hour prices, as observed by this operator "
        "process (chargeback; restarts at 0 with the operator, so use increase() or rate()).",
        QUEUE,
        closed("pool_class", "class of the pool the GPUs were in", POOL_CLASSES),
    ),
    # ---- scheduling
    counter(
        "gpupool_admissions_total",
        "GPUJobs admitted (each attempt counts); borrowed when the admission borrows from the cohort.",
        QUEUE,
        closed("reason", "within nominal quota or borrowing", ADMISSION_REASONS),
    ),
    counter(
        "gpupool_preemptions_total",
        "GPUJobs preempted (evicted and queued again), per queue of the victim.",
        QUEUE,
        closed("reason", "for a job of the same queue, or to reclaim borrowed quota", PREEMPTION_REASONS),
    ),
    counter(
        "gpupool_job_restarts_total",
        "Gang restarts: a worker failed within backoffLimit, a node of the job was lost, or a kubelet refused a "
        "worker at admission (requeued, not counted as a failure).",
        QUEUE,
        closed("reason", "what ended the attempt", RESTART_REASONS),
    ),
    counter(
        "gpupool_jobs_finished_total",
        "GPUJobs that ended for good, per queue.",
        QUEUE,
        closed("result", "how they ended", FINISH_RESULTS),
    ),
    histogram(
        "gpupool_admission_wait_seconds",
        "Seconds from queued (or from losing the previous admission) to admitted, per queue.",
        QUEUE,
        buckets=WAIT_BUCKETS,
    ),
    histogram(
        "gpupool_scheduling_step_duration_seconds",
        "Seconds each step of a scheduling cycle took.",
        closed("step", "the loop's step", STEPS),
        buckets=STEP_BUCKETS,
    ),
    histogram("gpupool_scheduling_cycle_duration_seconds", "Seconds one whole cycle took.", buckets=STEP_BUCKETS),
    # ---- pools and nodes
    gauge(
        "gpupool_pool_nodes",
        "Nodes of the pool by state; provisioning counts claims not yet Ready, draining the nodes "
        "being given back (idle past scaleDownAfter).",
        POOL,
        closed("state", "the node's state", NODE_STATES),
    ),
    gauge(
        "gpupool_pool_info",
        "1 for each GPUNodePool: its class and GPU model (join on pool to group GPU time by them).",
        POOL,
        closed("pool_class", "where the pool's nodes live", POOL_CLASSES),
        Label("gpu_model", "GPU model of the pool's nodes"),
    ),
    gauge(
        "gpupool_pool_gpu_hourly_price",
        "Price of one GPU-hour on the pool's nodes: on_demand for a node that is not spot (the cloud "
        "on-demand price, or the on-prem amortised one), spot for a spot node (only when the pool names a "
        "spot price); GPU pools with a price only.",
        POOL,
        closed("capacity", "the kind of node the price is for", CAPACITY_TYPES),
    ),
    gauge("gpupool_pool_gpus", "GPUs on the pool's Ready nodes.", POOL),
    gauge("gpupool_pool_spot_gpus", "GPUs on the pool's Ready spot nodes.", POOL),
    gauge("gpupool_pool_allocated_gpus", "GPUs held by admitted jobs on the pool's nodes.", POOL),
    gauge(
        "gpupool_pool_fragmented_gpus",
        "Free GPU capacity on the pool's Ready nodes where no waiting job's worker fits (its GPU "
        "models and GPU need only: a share needs one GPU with that much free, n whole GPUs need n "
        "idle GPUs); 0 while no job waits.",
        POOL,
    ),
    counter(
        "gpupool_scale_ups_total",
        "Node claims per pool and how far they got: requested, then ready or failed.",
        POOL,
        closed("result", "the claim's step", SCALE_UP_RESULTS),
    ),
    counter(
        "gpupool_scale_downs_total",
        "Claimed nodes released, per pool: idle past scaleDownAfter, or lost (gone while Ready).",
        POOL,
        closed("reason", "why it was released", SCALE_DOWN_REASONS),
    ),
    histogram(
        "gpupool_node_provisioning_duration_seconds",
        "Seconds from a node claim's creation to its node being Ready, per pool.",
        POOL,
        buckets=PROVISIONING_BUCKETS,
    ),
    # ---- per worker (gone with the job)
    gauge(
        "gpupool_gpu_allocation_info",
        "One series per GPU a worker holds; the value is the share held (1 whole GPU, 0.5 half). "
        "Join with the node agent's per-GPU series on (node, uuid).",
        NODE,
        Label("gpu", "GPU index on the node (the reported one where the node reports its pods' devices)"),
        Label(
            "uuid",
            "the GPU's UUID as the node reports the worker holds it (kwok nodes: the UUID of the planned index); "
            "empty until reported",
        ),
        NAMESPACE,
        Label("job", "GPUJob name"),
        QUEUE,
        POOL,
        Label("worker", "worker index in the gang"),
        per_job=True,
    ),
    gauge(
        "gpupool_job_cost_per_hour",
        "What the job's running attempt is billed per hour on the pool's nodes while it accrues (from "
        "status.startedAt, phase Admitted or Running): each worker's GPUs at its node's GPU-hour price, or on a "
        "CPU-only node its requested cores at the core-hour price. The same rate the job's status.cost and its "
        "queue's budget spend accrue at; gpupool report integrates it.",
        NAMESPACE,
        Label("job", "GPUJob name"),
        QUEUE,
        POOL,
        per_job=True,
    ),
    gauge(
        "gpupool_job_gpu_idle",
        "1 for each running job whose GPUs have stayed below its queue's idle threshold for the queue's idle.after "
        "(condition GPUIdle=True); no series for other jobs.",
        NAMESPACE,
        Label("job", "GPUJob name"),
        QUEUE,
        per_job=True,
    ),
    # ---- OpenCost-compatible (OpenCost's names and labels; pkg/costmodel/metrics.go)
    gauge(
        "node_gpu_hourly_cost",
        "Hourly cost per GPU on this node: its pool's node-hour price (spot when the node is spot) over its GPUs; "
        "GPU nodes only.",
        *OPENCOST_NODE,
        source="opencost",
    ),
    gauge(
        "node_cpu_hourly_cost",
        "Hourly cost per CPU core on a CPU pool's node (what a job that fell back to CPU is billed per core): its "
        "pool's node-hour price over its allocatable cores; CPU pool nodes only (GPU nodes do not price CPUs apart).",
        *OPENCOST_NODE,
        source="opencost",
    ),
    gauge("node_gpu_count", "GPUs on this node.", *OPENCOST_NODE, source="opencost"),
    gauge(
        "node_total_hourly_cost",
        "Hourly cost of this node: its pool's node-hour price (CPU and memory are not priced apart).",
        *OPENCOST_NODE,
        source="opencost",
    ),
    gauge("kubecost_node_is_spot", "1 when the node is a spot node, else 0.", *OPENCOST_NODE, source="opencost"),
    gauge(
        "container_gpu_allocation",
        "GPUs allocated to the worker pod's first container, with real fractions (a 0.5 share reports 0.5).",
        NAMESPACE,
        Label("pod", "worker pod name"),
        Label("container", "name of the pod's first container, which gpupool gives the GPUs"),
        INSTANCE,
        NODE,
        per_job=True,
        source="opencost",
    ),
)

BY_NAME = {family.name: family for family in FAMILIES}
