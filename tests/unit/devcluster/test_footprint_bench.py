"""The footprint bench's pure parts: reading the cycle histogram and the window between scrapes."""

from __future__ import annotations

import pytest

from gpupool.devcluster.footprint_bench import CYCLE_HISTOGRAM, Histogram, parse_histogram


def page(buckets: dict[str, int], total: float) -> str:
    lines = [f"# HELP {CYCLE_HISTOGRAM} Seconds one whole cycle took.", f"# TYPE {CYCLE_HISTOGRAM} histogram"]
    lines += [f'{CYCLE_HISTOGRAM}_bucket{{le="{le}"}} {n}' for le, n in buckets.items()]
    lines += [f"{CYCLE_HISTOGRAM}_sum {total}", f"{CYCLE_HISTOGRAM}_count {buckets['+Inf']}"]
    return "\n".join(lines) + "\n"


def test_a_window_between_two_scrapes_holds_only_its_own_cycles() -> None:
    before = parse_histogram(page({"0.1": 10, "0.5": 10, "1.0": 10, "+Inf": 10}, 0.5), CYCLE_HISTOGRAM)
    after = parse_histogram(page({"0.1": 12, "0.5": 18, "1.0": 20, "+Inf": 20}, 5.5), CYCLE_HISTOGRAM)
    window = after.since(before)
    assert window.count == 10 and window.mean() == pytest.approx(0.5)
    # 2 cycles <= 0.1 s, 8 <= 0.5 s, 10 <= 1 s: the 95th percentile lies in the 1 s bucket.
    assert window.quantile_bound(0.95) == 1.0
    assert window.quantile_bound(0.5) == 0.5


@pytest.mark.parametrize("text", ["", "# TYPE other_metric counter\nother_metric_total 3\n"])
def test_a_page_without_the_histogram_reads_as_empty(text: str) -> None:
    empty = parse_histogram(text, CYCLE_HISTOGRAM)
    assert empty == Histogram((), 0.0, 0.0)
    assert empty.mean() is None and empty.quantile_bound(0.95) is None
