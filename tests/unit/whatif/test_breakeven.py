"""Buy-versus-rent curves (`gpupool.whatif.breakeven`) on numbers worked out by hand."""

from __future__ import annotations

import pytest

from gpupool.whatif.breakeven import break_even_month, cumulative_cost


@pytest.mark.parametrize(
    ("purchases", "cloud", "months", "expected"),
    [
        # nothing owned: the cloud bill adds up, projected at its mean (15) past month 2
        ((), [10.0, 20.0], 4, [0, 10, 30, 45, 60]),
        # bought at month 0 for 100, life 2 months: bought again once month 2 is over
        (((100.0, 2.0),), [1.0], 3, [100, 101, 102, 203]),
        # two pools: each bought once within its life
        (((50.0, 12.0), (30.0, 12.0)), [5.0, 5.0], 2, [80, 85, 90]),
    ],
)
def test_cumulative_cost(
    purchases: tuple[tuple[float, float], ...], cloud: list[float], months: int, expected: list[float]
) -> None:
    assert cumulative_cost(purchases, cloud, months) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("baseline", "candidate", "month"),
    [
        # rent only at 30 a month vs buy for 100 and pay 5 a month: 30m = 100 + 5m at m = 4
        ([0, 30, 60, 90, 120, 150], [100, 105, 110, 115, 120, 125], 4),
        ([0, 30, 60], [100, 105, 110], None),  # not within three month-ends
        ([50, 80], [40, 60], 0),  # cheaper from the start
    ],
)
def test_break_even_month(baseline: list[float], candidate: list[float], month: int | None) -> None:
    assert break_even_month(baseline, candidate) == month
