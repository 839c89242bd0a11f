"""Budget periods and spend: pure arithmetic over accruals, with the clock passed in.

Who calls this: `gpupool.cluster.translate.spend` turns each GPUJob's recorded attempts (and its
running attempt) into `Accrual`s, records ended attempts with `record_attempt`, and asks
`standing` for each budgeted queue's `BudgetStanding`; the snapshot hands the standing to
the core's `Queue.budget_standing`, where `gpupool.core.reasons.budget_exhausted` reads
its numbers. Nothing here reads the clock or touches Kubernetes objects.

A period is a calendar period in UTC: Daily starts at midnight, Weekly on Monday 00:00,
Monthly on the 1st at 00:00. An accrual (one attempt of a job) accrued evenly between its
start and end, so the part of it inside a period is its amounts times the share of its
duration inside the period; this is exact for one attempt (its workers and prices are
fixed while it runs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

NEARLY_SPENT_FRACTION = 0.8
"""A budget is nearly spent from this share of its cap on (the `BudgetNearlySpent` condition)."""

MAX_RECORDED_ATTEMPTS = 32
"""Most entries a job's usage history keeps; older attempts are folded into its first entry."""


class Period(StrEnum):
    """How often a queue's budget resets (the API's `BudgetPeriod` is this enum)."""

    MONTHLY = "Monthly"
    WEEKLY = "Weekly"
    DAILY = "Daily"


class Scope(StrEnum):
    """What counts toward a budget's caps (the API's `BudgetScope` is this enum)."""

    ALL = "All"
    CLOUD_ONLY = "CloudOnly"


def period_bounds(now: float, period: Period) -> tuple[float, float]:
    """Start and end (the next reset) of the UTC calendar period holding `now`, as seconds
    since the epoch."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAILY:
        start, end = day, day + timedelta(days=1)
    elif period == Period.WEEKLY:
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True, slots=True)
class Accrual:
    """GPU time and money accrued evenly between `started` and `ended` (seconds since the
    epoch); the `cloud_*` amounts are the part accrued on cloud pools. `attempts` > 1 marks
    several old attempts folded together (see `record_attempt`)."""

    started: float
    ended: float
    gpu_seconds: float = 0.0
    cost: float = 0.0
    cloud_gpu_seconds: float = 0.0
    cloud_cost: float = 0.0
    attempts: int = 1

    def share_within(self, start: float, end: float) -> float:
        """The fraction of this accrual that fell in `[start, end)`."""
        if self.ended <= self.started:
            return 1.0 if start <= self.started < end else 0.0
        overlap = min(self.ended, end) - max(self.started, start)
        return max(0.0, overlap) / (self.ended - self.started)

    def folded_with(self, later: Accrual) -> Accrual:
        """One accrual holding this one and `later` (their span and summed amounts)."""
        return Accrual(
            started=min(self.started, later.started),
            ended=max(self.ended, later.ended),
            gpu_seconds=self.gpu_seconds + later.gpu_seconds,
            cost=self.cost + later.cost,
            cloud_gpu_seconds=self.cloud_gpu_seconds + later.cloud_gpu_seconds,
            cloud_cost=self.cloud_cost + later.cloud_cost,
            attempts=self.attempts + later.attempts,
        )


def record_attempt(
    history: Sequence[Accrual], ended: Accrual, keep: int = MAX_RECORDED_ATTEMPTS
) -> tuple[Accrual, ...]:
    """`history` with the attempt that just `ended` appended, at most `keep` entries long: the
    oldest entries are folded into the first one.

    A folded entry is counted by the share of its whole span inside a period, so it is exact
    while the period boundary does not fall among its attempts, i.e. unless a job ends more
    than `keep` attempts within one period.
    """
    entries = [*history, ended]
    while len(entries) > max(1, keep):
        entries[0:2] = [entries[0].folded_with(entries[1])]
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class SpendTotals:
    """Money and GPU-hours accrued in one period: everything, and the part on cloud pools."""

    cost: float = 0.0
    cloud_cost: float = 0.0
    gpu_hours: float = 0.0
    cloud_gpu_hours: float = 0.0


def spend_within(accruals: Iterable[Accrual], start: float, end: float) -> SpendTotals:
    """What `accruals` accrued inside `[start, end)`, each prorated by its share of time there."""
    cost = cloud_cost = gpu_seconds = cloud_gpu_seconds = 0.0
    for accrual in accruals:
        share = accrual.share_within(start, end)
        if share <= 0.0:
            continue
        cost += accrual.cost * share
        cloud_cost += accrual.cloud_cost * share
        gpu_seconds += accrual.gpu_seconds * share
        cloud_gpu_seconds += accrual.cloud_gpu_seconds * share
    return SpendTotals(cost, cloud_cost, gpu_seconds / 3600.0, cloud_gpu_seconds / 3600.0)


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """A queue's budget: `amount` of `currency` (and at most `gpu_hours`, when set) per period;
    under `Scope.CLOUD_ONLY` only what runs on cloud pools counts toward either cap."""

    amount: float
    currency: str = "USD"
    period: Period = Period.MONTHLY
    gpu_hours: float | None = None
    scope: Scope = Scope.ALL


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """Where a queue stands against its budget in the current period.

    `accruing` is True while a running attempt of the queue adds to `spend`.
    """

    limits: BudgetLimits
    spend: SpendTotals
    period_start: float
    period_end: float
    accruing: bool = False

    @property
    def counted_amount(self) -> float:
        """Money counted toward the cap: all of it, or only the cloud part under CloudOnly."""
        return self.spend.cloud_cost if self.limits.scope == Scope.CLOUD_ONLY else self.spend.cost

    @property
    def counted_gpu_hours(self) -> float:
        """GPU-hours counted toward the GPU-hour cap (only cloud ones under CloudOnly)."""
        return self.spend.cloud_gpu_hours if self.limits.scope == Scope.CLOUD_ONLY else self.spend.gpu_hours

    @property
    def left(self) -> float:
        """Money the queue may still spend this period (never below 0)."""
        return max(0.0, self.limits.amount - self.counted_amount)

    @property
    def money_fraction(self) -> float:
        """Counted money over the cap (a cap of 0 counts as fully spent)."""
        return self.counted_amount / self.limits.amount if self.limits.amount > 0 else math.inf

    @property
    def gpu_hours_fraction(self) -> float:
        """Counted GPU-hours over their cap; 0 without a GPU-hour cap (a cap of 0: fully spent)."""
        cap = self.limits.gpu_hours
        if cap is None:
            return 0.0
        return self.counted_gpu_hours / cap if cap > 0 else math.inf

    @property
    def exhausted(self) -> bool:
        """True once either cap is reached: no new job of the queue is admitted."""
        return max(self.money_fraction, self.gpu_hours_fraction) >= 1.0

    @property
    def nearly_spent(self) -> bool:
        """True from `NEARLY_SPENT_FRACTION` of either cap on."""
        return max(self.money_fraction, self.gpu_hours_fraction) >= NEARLY_SPENT_FRACTION

    def binding(self) -> tuple[float, float, str]:
        """`(counted, cap, unit)` of the cap most used: money in its currency, or GPU-hours."""
        if self.limits.gpu_hours is not None and self.gpu_hours_fraction > self.money_fraction:
            return self.counted_gpu_hours, self.limits.gpu_hours, "GPU-hours"
        return self.counted_amount, self.limits.amount, self.limits.currency

    def summary(self) -> str:
        """`8.1 of its daily budget of 10 USD` for the cap most used, the spend rounded down to
        1% of the cap: the sentences built on it (job reasons, queue conditions, both written
        to the API server) change at most a hundred times a period while jobs keep spending."""
        counted, cap, unit = self.binding()
        step = cap / 100 if cap > 0 else 0.01
        shown = math.floor(counted / step + 1e-9) * step
        scope = " on cloud pools" if self.limits.scope == Scope.CLOUD_ONLY else ""
        period = self.limits.period.value.lower()
        return f"{_number(shown)} of its {period} budget of {_number(cap)} {unit}{scope}"

    @property
    def resets_at(self) -> str:
        """When the period ends, as an RFC 3339 UTC timestamp."""
        return datetime.fromtimestamp(self.period_end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> str:
    """`10.0` -> `10`, `10.2` -> `10.2`, `10.256` -> `10.26`."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def standing(limits: BudgetLimits, accruals: Iterable[Accrual], now: float, *, accruing: bool) -> BudgetStanding:
    """The standing of a budget at `now`, from everything its queue's jobs accrued."""
    start, end = period_bounds(now, limits.period)
    return BudgetStanding(limits, spend_within(accruals, start, end), start, end, accruing)
