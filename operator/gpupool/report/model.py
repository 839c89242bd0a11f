"""The chargeback report as data: what `build` makes and `render` writes.

GPU-hours count shares as fractions (half a GPU for an hour is 0.5 GPU-hours); money is in
the unit the GPUNodePools' prices are given in (a budget's currency is its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True)
class Usage:
    """GPU time and its cost, all of it, the part while the job was flagged idle, and the
    part on spot nodes (at the spot price, and what it would have cost on demand)."""

    gpu_hours: float = 0.0
    cost: float = 0.0
    idle_gpu_hours: float = 0.0
    idle_cost: float = 0.0
    spot_gpu_hours: float = 0.0
    spot_cost: float = 0.0
    spot_on_demand_cost: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def spot_savings(self) -> float:
        """What running on spot nodes saved against the same GPU time at on-demand prices."""
        return self.spot_on_demand_cost - self.spot_cost


@dataclass(frozen=True)
class Line:
    """Usage of one queue and namespace on one pool class and GPU model."""

    queue: str
    namespace: str
    pool_class: str
    gpu_model: str
    usage: Usage


@dataclass(frozen=True)
class JobLine:
    """Usage of one GPUJob (all its attempts and pools in the window)."""

    queue: str
    namespace: str
    job: str
    usage: Usage
    gpu_uuids: tuple[str, ...] = ()
    """The UUIDs of the physical GPUs the job held in the window (sorted; none when unknown)."""


@dataclass(frozen=True)
class Budget:
    """A queue's budget as the operator last reported it in the window."""

    queue: str
    currency: str
    amount: float
    spent: float

    @property
    def share(self) -> float | None:
        """spent / amount; None for a budget of 0."""
        return self.spent / self.amount if self.amount else None


@dataclass(frozen=True)
class QueueTotal:
    """One queue's totals: all, cloud and on-prem; its budget; the operator counter's figure."""

    queue: str
    usage: Usage
    cloud: Usage
    on_prem: Usage
    budget: Budget | None = None
    counter_cost: float | None = None


@dataclass(frozen=True)
class SpendPoint:
    """What a queue's jobs cost in one bucket."""

    start: datetime
    end: datetime
    cost: float


@dataclass(frozen=True)
class Report:
    """The chargeback report for [start, end)."""

    start: datetime
    end: datetime
    step_seconds: int
    bucket_seconds: int
    queues: tuple[QueueTotal, ...]
    lines: tuple[Line, ...]
    jobs: tuple[JobLine, ...]
    spend: dict[str, tuple[SpendPoint, ...]] = field(default_factory=dict)
    source: str = ""
    queue_filter: str | None = None
    unknown_pools: tuple[str, ...] = ()
    jobs_total: int = 0

    @property
    def total(self) -> Usage:
        total = Usage()
        for queue in self.queues:
            total = total + queue.usage
        return total
