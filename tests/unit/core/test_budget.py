"""Budget periods, spend inside a period, folding old attempts, and a budget's standing."""

from __future__ import annotations

import pytest

from builders import make_job, make_node, make_queue, make_snapshot, utc
from gpupool.core import PlacementPolicy, SchedulerConfig, schedule
from gpupool.core.budget import (
    Accrual,
    BudgetLimits,
    BudgetStanding,
    Period,
    Scope,
    SpendTotals,
    period_bounds,
    record_attempt,
    spend_within,
    standing,
)
from gpupool.core.reasons import budget_exhausted


@pytest.mark.parametrize(
    ("now", "period", "start", "end"),
    [
        ("2026-01-07T13:45", Period.DAILY, "2026-01-07T00:00", "2026-01-08T00:00"),
        ("2026-01-07T00:00", Period.DAILY, "2026-01-07T00:00", "2026-01-08T00:00"),
        ("2026-01-06T23:59:59", Period.DAILY, "2026-01-06T00:00", "2026-01-07T00:00"),
        ("2028-02-29T12:00", Period.DAILY, "2028-02-29T00:00", "2028-03-01T00:00"),
        ("2026-01-07T13:45", Period.WEEKLY, "2026-01-05T00:00", "2026-01-12T00:00"),
        ("2026-01-05T00:00", Period.WEEKLY, "2026-01-05T00:00", "2026-01-12T00:00"),
        ("2026-01-04T23:59", Period.WEEKLY, "2025-12-29T00:00", "2026-01-05T00:00"),
        ("2026-01-15T08:00", Period.MONTHLY, "2026-01-01T00:00", "2026-02-01T00:00"),
        ("2026-01-31T23:59:59", Period.MONTHLY, "2026-01-01T00:00", "2026-02-01T00:00"),
        ("2025-12-31T23:00", Period.MONTHLY, "2025-12-01T00:00", "2026-01-01T00:00"),
        ("2028-02-29T23:00", Period.MONTHLY, "2028-02-01T00:00", "2028-03-01T00:00"),
        ("2027-02-28T23:00", Period.MONTHLY, "2027-02-01T00:00", "2027-03-01T00:00"),
    ],
    ids=[
        "daily: mid-day",
        "daily: exactly midnight starts a new day",
        "daily: a second before midnight",
        "daily: leap day",
        "weekly: Wednesday belongs to the week from Monday",
        "weekly: Monday 00:00 starts a new week",
        "weekly: Sunday night, across a year boundary",
        "monthly: mid-month",
        "monthly: last second of January",
        "monthly: December ends in the next year",
        "monthly: February of a leap year ends after the 29th",
        "monthly: February of a common year",
    ],
)
def test_period_bounds(now: str, period: Period, start: str, end: str) -> None:
    assert period_bounds(utc(now), period) == (utc(start), utc(end))


def attempt(start: str, end: str, cost: float = 0.0, gpu_hours: float = 0.0, *, cloud: bool = False) -> Accrual:
    """An attempt that accrued `cost` and `gpu_hours` evenly from `start` to `end`."""
    seconds = gpu_hours * 3600
    return Accrual(
        utc(start),
        utc(end),
        gpu_seconds=seconds,
        cost=cost,
        cloud_gpu_seconds=seconds if cloud else 0.0,
        cloud_cost=cost if cloud else 0.0,
    )


DAY = (utc("2026-01-07T00:00"), utc("2026-01-08T00:00"))


@pytest.mark.parametrize(
    ("accruals", "cost", "gpu_hours"),
    [
        ([attempt("2026-01-07T01:00", "2026-01-07T03:00", 4.0, 2.0)], 4.0, 2.0),
        ([attempt("2026-01-06T01:00", "2026-01-06T23:00", 4.0, 2.0)], 0.0, 0.0),
        ([attempt("2026-01-06T22:00", "2026-01-07T02:00", 8.0, 4.0)], 4.0, 2.0),
        ([attempt("2026-01-07T23:00", "2026-01-08T01:00", 2.0, 2.0)], 1.0, 1.0),
        ([attempt("2026-01-06T00:00", "2026-01-07T00:00", 24.0, 24.0)], 0.0, 0.0),
        ([attempt("2026-01-07T05:00", "2026-01-07T05:00", 1.0, 0.0)], 1.0, 0.0),
        (
            [
                attempt("2026-01-06T20:00", "2026-01-07T04:00", 16.0, 8.0),
                attempt("2026-01-07T10:00", "2026-01-07T11:00"),
            ],
            8.0,
            4.0,
        ),
    ],
    ids=[
        "inside the day: all of it",
        "the day before: none of it",
        "spans midnight: the part after it",
        "runs past the period's end: the part before it",
        "ends exactly at midnight: none of it",
        "zero-length attempt at a moment inside the day",
        "several attempts: summed",
    ],
)
def test_spend_within_a_day(accruals: list[Accrual], cost: float, gpu_hours: float) -> None:
    spend = spend_within(accruals, *DAY)
    assert (spend.cost, spend.gpu_hours) == (pytest.approx(cost), pytest.approx(gpu_hours))


def test_an_attempt_spanning_midnight_is_split_between_the_two_days_without_loss() -> None:
    spanning = [attempt("2026-01-06T18:00", "2026-01-07T06:00", 12.0, 12.0)]
    before = spend_within(spanning, utc("2026-01-06T00:00"), DAY[0])
    after = spend_within(spanning, *DAY)
    assert (before.cost, after.cost) == (pytest.approx(6.0), pytest.approx(6.0))


def test_folding_keeps_the_history_bounded_and_its_totals() -> None:
    history: tuple[Accrual, ...] = ()
    for hour in range(10):
        history = record_attempt(history, attempt(f"2026-01-06T{hour:02}:00", f"2026-01-06T{hour:02}:30", 1.0), keep=4)
    assert len(history) == 4
    assert [a.attempts for a in history] == [7, 1, 1, 1]
    assert (history[0].started, history[0].ended) == (utc("2026-01-06T00:00"), utc("2026-01-06T06:30"))
    assert sum(a.cost for a in history) == pytest.approx(10.0)
    # Folded attempts that all ended before the period do not count in it; the rest do.
    assert spend_within(history, utc("2026-01-06T06:45"), DAY[1]).cost == pytest.approx(3.0)


def test_a_short_history_is_not_folded() -> None:
    history = record_attempt(
        [attempt("2026-01-06T01:00", "2026-01-06T02:00", 1.0)], attempt("2026-01-06T03:00", "2026-01-06T04:00", 2.0)
    )
    assert [a.attempts for a in history] == [1, 1]


NOW = utc("2026-01-07T12:00")
ON_PREM_12 = attempt("2026-01-07T01:00", "2026-01-07T02:00", 12.0, 6.0)
CLOUD_3 = attempt("2026-01-07T03:00", "2026-01-07T04:00", 3.0, 1.0, cloud=True)


@pytest.mark.parametrize(
    ("limits", "accruals", "exhausted", "nearly", "left"),
    [
        (BudgetLimits(20.0, period=Period.DAILY), [ON_PREM_12, CLOUD_3], False, False, 5.0),
        (BudgetLimits(15.0, period=Period.DAILY), [ON_PREM_12, CLOUD_3], True, True, 0.0),
        (BudgetLimits(10.0, period=Period.DAILY), [ON_PREM_12, CLOUD_3], True, True, 0.0),
        (BudgetLimits(10.0, period=Period.DAILY, scope=Scope.CLOUD_ONLY), [ON_PREM_12, CLOUD_3], False, False, 7.0),
        (BudgetLimits(3.5, period=Period.DAILY, scope=Scope.CLOUD_ONLY), [ON_PREM_12, CLOUD_3], False, True, 0.5),
        (BudgetLimits(3.0, period=Period.DAILY, scope=Scope.CLOUD_ONLY), [ON_PREM_12, CLOUD_3], True, True, 0.0),
        (BudgetLimits(100.0, period=Period.DAILY, gpu_hours=7.0), [ON_PREM_12, CLOUD_3], True, True, 85.0),
        (BudgetLimits(100.0, period=Period.DAILY, gpu_hours=9.0), [ON_PREM_12, CLOUD_3], False, False, 85.0),
        (
            BudgetLimits(100.0, period=Period.DAILY, gpu_hours=1.0, scope=Scope.CLOUD_ONLY),
            [ON_PREM_12, CLOUD_3],
            True,
            True,
            97.0,
        ),
        (BudgetLimits(15.0, period=Period.DAILY), [ON_PREM_12], False, True, 3.0),
        (BudgetLimits(15.01, period=Period.DAILY), [ON_PREM_12], False, False, 3.01),
        (BudgetLimits(0.0, period=Period.DAILY), [], True, True, 0.0),
    ],
    ids=[
        "All: 15 of 20 spent",
        "All: 15 of 15 spent is exhausted",
        "All: over the cap",
        "CloudOnly: on-prem 12 does not count, 3 of 10",
        "CloudOnly: 3 of 3.5 is nearly spent",
        "CloudOnly: 3 of 3 cloud is exhausted",
        "GPU-hour cap: 7 of 7 exhausts with money left",
        "GPU-hour cap: 7 of 9 is under 80%",
        "CloudOnly GPU-hour cap counts cloud GPU-hours only",
        "80% exactly is nearly spent",
        "just under 80% is not",
        "a budget of 0 admits nothing",
    ],
)
def test_standing(limits: BudgetLimits, accruals: list[Accrual], exhausted: bool, nearly: bool, left: float) -> None:
    result = standing(limits, accruals, NOW, accruing=False)
    assert (result.exhausted, result.nearly_spent) == (exhausted, nearly)
    assert result.left == pytest.approx(left)
    assert (result.spend.cost, result.spend.cloud_cost) == (
        pytest.approx(sum(a.cost for a in accruals)),
        pytest.approx(sum(a.cloud_cost for a in accruals)),
    )


def test_a_spent_budget_is_fresh_in_the_next_period() -> None:
    limits = BudgetLimits(10.0, period=Period.DAILY)
    spent = [attempt("2026-01-07T01:00", "2026-01-07T02:00", 12.0)]
    assert standing(limits, spent, utc("2026-01-07T23:59:59"), accruing=False).exhausted
    fresh = standing(limits, spent, utc("2026-01-08T00:00:00"), accruing=False)
    assert not fresh.exhausted and fresh.left == 10.0 and fresh.period_start == utc("2026-01-08T00:00")


def exhausted_standing(limits: BudgetLimits, spend: SpendTotals) -> BudgetStanding:
    return BudgetStanding(limits, spend, utc("2026-01-07T00:00"), utc("2026-01-08T00:00"))


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (
            exhausted_standing(BudgetLimits(10.0, "EUR", Period.DAILY), SpendTotals(cost=10.2371)),
            "queue team-a has spent 10.2 of its daily budget of 10 EUR: no new job is admitted until the budget "
            "resets at 2026-01-08T00:00:00Z",
        ),
        (
            exhausted_standing(BudgetLimits(500.0, period=Period.DAILY, gpu_hours=4.0), SpendTotals(20.0, 0, 4.05, 0)),
            "queue team-a has spent 4.04 of its daily budget of 4 GPU-hours",
        ),
        (
            exhausted_standing(
                BudgetLimits(2.0, period=Period.DAILY, scope=Scope.CLOUD_ONLY), SpendTotals(cost=50, cloud_cost=2)
            ),
            "has spent 2 of its daily budget of 2 USD on cloud pools",
        ),
    ],
    ids=["money, rounded down to 1% of the cap", "the GPU-hour cap, when it binds", "CloudOnly says so"],
)
def test_the_budget_reason_names_spend_budget_and_reset(budget: BudgetStanding, expected: str) -> None:
    assert expected in budget_exhausted(make_job(), budget)


def test_a_queue_with_an_exhausted_standing_admits_nothing_and_says_why() -> None:
    budget = exhausted_standing(BudgetLimits(10.0, period=Period.DAILY), SpendTotals(cost=11.0))
    queue = make_queue(budget_exhausted=budget.exhausted, budget=budget)
    decisions = schedule(make_snapshot([make_node()], [queue], [make_job("j")]), SchedulerConfig())
    assert decisions.admissions == ()
    (waiting,) = decisions.waiting
    assert "spent 11 of its daily budget of 10 USD" in waiting.message


def test_a_spent_cloud_only_budget_keeps_on_prem_open_and_closes_cloud() -> None:
    budget = exhausted_standing(
        BudgetLimits(2.0, period=Period.DAILY, scope=Scope.CLOUD_ONLY), SpendTotals(cost=50, cloud_cost=2)
    )
    queue = make_queue(budget_exhausted=budget.exhausted, budget=budget)
    nodes = [make_node("onprem", gpus=8), make_node("cloud", gpus=8, cloud=True)]
    local = make_job("ns/local", gpus=8, submitted_at=1)
    bursting = make_job("ns/burst", gpus=8, policy=PlacementPolicy.CLOUD_ALLOWED, submitted_at=2)
    decisions = schedule(make_snapshot(nodes, [queue], [local, bursting]), SchedulerConfig())
    assert [(a.job_key, a.placements[0].node) for a in decisions.admissions] == [("ns/local", "onprem")]
    (waiting,) = decisions.waiting
    assert waiting.job_key == "ns/burst" and "CloudOnly budget is spent" in waiting.message
