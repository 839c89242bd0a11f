"""Buying versus renting: cumulative cost curves and the month they cross.

Who calls this: `gpupool.whatif.command` (the table and the plot of `gpupool sim`); the
unit tests check it on hand-worked curves. Pure arithmetic on lists of numbers.

The assumption, stated once: a scenario **buys** its on-prem nodes. A pool's nodes are
bought at month 0 for their amortised node-hour price times the hours of their life
(`amortisationMonths`; the amortised price is read as purchase and running cost spread
over that life) and bought again each time a life ends; every month adds the scenario's
cloud cost. So the cumulative cost at the end of month m is

    sum over pools of purchase x max(1, ceil(m / life))  +  cloud cost of months 1..m

Months the simulation did not cover are projected at its mean monthly cloud cost. The
**break-even month** of a candidate B against a baseline A is the first month-end m at
which B's cumulative cost is no more than A's: 0 when B costs no more from the start, None when the
curves do not cross within the projection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def cumulative_cost(
    purchases: Sequence[tuple[float, float]], cloud_by_month: Sequence[float], months: int
) -> list[float]:
    """Cumulative cost at the end of months 0..`months` (see the module docstring).

    `purchases`: per on-prem pool, (purchase price, life in months); `cloud_by_month`: the
    simulated months' cloud cost, projected beyond at their mean.
    """
    mean = sum(cloud_by_month) / len(cloud_by_month) if cloud_by_month else 0.0
    out = []
    cloud = 0.0
    for m in range(months + 1):
        if m >= 1:
            cloud += cloud_by_month[m - 1] if m - 1 < len(cloud_by_month) else mean
        bought = sum(price * max(1, math.ceil(m / life)) for price, life in purchases if price > 0)
        out.append(bought + cloud)
    return out


def break_even_month(baseline: Sequence[float], candidate: Sequence[float]) -> int | None:
    """The first month at which `candidate`'s cumulative cost is no more than `baseline`'s
    (0: from the start); None when it is dearer at every month-end of both curves."""
    for month, (a, b) in enumerate(zip(baseline, candidate, strict=True)):
        if b <= a:
            return month
    return None


__all__ = ["break_even_month", "cumulative_cost"]
