"""The GPUQueue kind (cluster-scoped): who may submit, how many GPUs they own, and how they
share with their cohort.

Who uses this: `gpupool.api.crdgen` writes `crds/gpuqueues.gpupool.io.yaml` from these
models; the operator parses GPUQueue objects, checks `spec.namespaceSelector` with
`LabelSelector.matches`, and writes `GPUQueueStatus`; `gpupool.cluster.translate.convert.queue_from_api`
turns a GPUQueue into the core's `Queue`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from gpupool.api.common import (
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    Condition,
    Duration,
    LabelSelector,
    Metadata,
    SpecModel,
    StatusModel,
    cel,
)
from gpupool.core.budget import Period, Scope


class QueueingStrategy(StrEnum):
    """Head-of-line policy (mirrors `gpupool.core.models.QueueingStrategy`)."""

    STRICT_FIFO = "StrictFIFO"
    BEST_EFFORT_FIFO = "BestEffortFIFO"


# The budget's enums are the core's own (`gpupool.core.budget`), which does the arithmetic.
BudgetPeriod = Period
BudgetScope = Scope


class QueueQuota(SpecModel):
    """GPUs a queue owns of one flavor: a GPU model or a pool (set exactly one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.gpuModel) != has(self.pool)",
                    "spec.quotas[]: set exactly one of gpuModel or pool",
                ),
                cel(
                    "!has(self.lendingLimit) || self.lendingLimit <= self.nominal",
                    "spec.quotas[].lendingLimit must not exceed nominal",
                    field_path=".lendingLimit",
                ),
            ]
        }
    )

    gpu_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="GPU model this quota covers, e.g. H100 (or set pool).",
    )
    pool: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="GPUNodePool this quota covers (or set gpuModel).",
    )
    nominal: int = Field(ge=0, le=1_000_000, description="GPUs the queue owns of this flavor (>= 0).")
    borrowing_limit: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Most GPUs beyond nominal the queue may borrow from its cohort; unset = no limit.",
    )
    lending_limit: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Most idle nominal GPUs the cohort may borrow from this queue; unset = all of them.",
    )

    @model_validator(mode="after")
    def _one_flavor(self) -> Self:
        """Mirror the CRD's CEL rules so an object built in Python fails the same way."""
        if (self.gpu_model is None) == (self.pool is None):
            raise ValueError("spec.quotas[]: set exactly one of gpuModel or pool")
        if self.lending_limit is not None and self.lending_limit > self.nominal:
            raise ValueError(f"spec.quotas[].lendingLimit={self.lending_limit} must not exceed nominal={self.nominal}")
        return self


class PreemptionSpec(SpecModel):
    """When a queue may take GPUs back by evicting running jobs."""

    reclaim_within_cohort: bool = Field(
        default=True,
        description="Evict jobs that borrowed this queue's nominal GPUs from the cohort (default true).",
    )
    within_queue: bool = Field(
        default=True,
        description="Evict lower-priority jobs of the same queue for higher-priority ones (default true).",
    )
    min_runtime: Duration | None = Field(
        default=None, description="A job that has run less than this (e.g. 10m) is not evicted."
    )


class IdleAction(StrEnum):
    """What happens to a job whose GPUs stay idle (mirrors `gpupool.core.idle.IdleAction`)."""

    WARN = "Warn"
    STOP = "Stop"


class IdleSpec(SpecModel):
    """When a job holding GPUs counts as idle, and what then happens to it."""

    threshold: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Utilisation (0..1) below which a job's busiest GPU counts as idle (default 0.05).",
    )
    after: Duration = Field(default="30m", description="How long below the threshold makes a job idle (default 30m).")
    action: IdleAction = Field(
        default=IdleAction.WARN,
        description="Warn (condition GPUIdle and an event; default) or Stop (the job fails with reason GPUIdle).",
    )


class Budget(SpecModel):
    """Spending cap of a queue per period; when spent, new work is not admitted.

    Spend is what the queue's existing GPUJobs accrued inside the current UTC calendar
    period (each job's status records its attempts); a deleted GPUJob's spend no longer
    counts. Jobs already running when the budget runs out keep running.
    """

    amount: float = Field(
        ge=0,
        description=(
            "Money the queue may spend per period (>= 0), counted from the GPUJobs that exist (a deleted GPUJob's "
            "spend no longer counts). Once reached, no new job of the queue is admitted until the period resets; "
            "running jobs are not stopped. 0 admits nothing."
        ),
    )
    currency: str = Field(
        default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code of amount (default USD)."
    )
    period: BudgetPeriod = Field(
        default=BudgetPeriod.MONTHLY,
        description="How often the budget resets: Monthly, Weekly or Daily (default Monthly).",
    )
    gpu_hours: float | None = Field(
        default=None, ge=0, description="Optional cap on GPU-hours per period (>= 0), enforced like amount."
    )
    scope: BudgetScope = Field(
        default=BudgetScope.ALL,
        description=(
            "What counts toward amount and gpuHours: All (default) or CloudOnly (only cloud pools; on-prem "
            "amortised cost is still reported in status.spend but is already paid for)."
        ),
    )


class GPUQueueSpec(SpecModel):
    """Who may submit to the queue, what it owns, and how it shares with its cohort."""

    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=("Namespaces whose GPUJobs may use this queue; omitted or {} lets every namespace submit."),
    )
    quotas: list[QueueQuota] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Nominal GPUs per GPU model or pool, with borrowing and lending limits.",
    )
    cohort: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Queues naming the same cohort lend each other idle GPUs.",
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Fair-share weight: GPUs beyond quota are shared in proportion to weight (default 1).",
    )
    max_priority: int | None = Field(
        default=None,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Jobs with a higher spec.priority are not admitted from this queue.",
    )
    queueing_strategy: QueueingStrategy = Field(
        default=QueueingStrategy.BEST_EFFORT_FIFO,
        description=(
            "StrictFIFO: the head job blocks the rest; BestEffortFIFO: smaller jobs may pass a head job that "
            "does not fit (default BestEffortFIFO)."
        ),
    )
    preemption: PreemptionSpec = Field(
        default_factory=PreemptionSpec,
        description="When this queue may evict running jobs.",
        json_schema_extra={"default": {}},
    )
    budget: Budget | None = Field(default=None, description="Spending cap per period; omitted means no cap.")
    idle: IdleSpec | None = Field(
        default=None,
        description="When a running job's GPUs count as idle (from the node agents' summaries) and what happens; "
        "omitted: below 5% for 30m, Warn.",
    )
    allow_cloud: bool = Field(default=True, description="Jobs of this queue may run on cloud pools (default true).")
    allow_spot: bool = Field(
        default=False, description="Jobs of this queue may run on spot cloud nodes (default false)."
    )

    def admits_namespace(self, namespace_labels: dict[str, str]) -> bool:
        """True when GPUJobs from a namespace with these labels may use this queue; the
        snapshot builder calls this before it asks the core about a job (omitted selector
        = every namespace)."""
        return self.namespace_selector is None or self.namespace_selector.matches(namespace_labels)


class FlavorUsage(StatusModel):
    """GPUs in use of one flavor (GPU model or pool)."""

    flavor: str = Field(description="The flavor: model:<gpu model> or pool:<pool name>.")
    nominal: int = Field(default=0, ge=0, description="Nominal GPUs of this flavor (from spec.quotas).")
    used: float = Field(default=0.0, ge=0, description="GPUs held by admitted jobs of this queue.")
    borrowed: float = Field(default=0.0, ge=0, description="GPUs in use beyond nominal, borrowed from the cohort.")


class Spend(StatusModel):
    """Money and GPU-hours spent in the current budget period (UTC calendar period).

    Derived every cycle from the queue's GPUJobs (their recorded attempts and the running
    one); written when it moved by 1% of a cap, and exactly once no job of the queue runs.
    """

    amount: float = Field(
        default=0.0,
        ge=0,
        description="Money spent in the current period on every pool (on-prem at its amortised price), by the "
        "GPUJobs that exist now.",
    )
    cloud_amount: float = Field(default=0.0, ge=0, description="The part of amount spent on cloud pools.")
    currency: str = Field(default="USD", description="Currency of amount.")
    gpu_hours: float = Field(default=0.0, ge=0, description="GPU-hours used in the current period.")
    cloud_gpu_hours: float = Field(default=0.0, ge=0, description="The part of gpuHours used on cloud pools.")
    period_start: datetime | None = Field(default=None, description="When the current period began.")
    resets_at: datetime | None = Field(default=None, description="When the next period begins.")


class GPUQueueStatus(StatusModel):
    """What the queue holds now; written only by the operator."""

    usage: list[FlavorUsage] = Field(default_factory=list, description="Used and borrowed GPUs per GPU model or pool.")
    pending_jobs: int = Field(default=0, ge=0, description="GPUJobs waiting in this queue.")
    admitted_jobs: int = Field(default=0, ge=0, description="GPUJobs admitted from this queue and not finished.")
    decayed_usage_gpu_seconds: float = Field(
        default=0.0,
        ge=0,
        description="GPU-seconds used, decayed with the operator's fair-share half-life; lower goes first "
        "among equal priorities. Kept here so fair share survives operator restarts.",
    )
    spend: Spend | None = Field(default=None, description="Spend in the current budget period (queues with a budget).")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Kubernetes-style conditions: BudgetExhausted (no new job is admitted) and BudgetNearlySpent "
        "(80% of a cap) for queues with a budget.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status was computed from."
    )


class GPUQueue(BaseModel):
    """A whole GPUQueue object as the API server returns it (metadata, spec, status)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    KIND: ClassVar[str] = "GPUQueue"

    api_version: str = Field(default="gpupool.io/v1alpha1", description="gpupool.io/v1alpha1")
    kind: str = Field(default="GPUQueue", description="GPUQueue")
    metadata: Metadata = Field(default_factory=dict, description="Standard object metadata.")
    spec: GPUQueueSpec = Field(default_factory=GPUQueueSpec)
    status: GPUQueueStatus = Field(default_factory=GPUQueueStatus)
