"""The rolling average behind the Node annotation and the write rate limit, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpupool.agent.rolling import UtilizationWindow, WritePolicy
from gpupool.annotations.summary import UtilizationSummary

T0 = 1_750_000_000.0


def test_no_summary_before_the_first_sample() -> None:
    assert UtilizationWindow(300).summary(T0) is None


def test_the_mean_of_the_samples_in_the_window() -> None:
    window = UtilizationWindow(60)
    for offset, (gpu0, gpu1) in enumerate([(1.0, 0.0), (0.5, 0.0), (0.0, 0.3)]):
        window.add(T0 + 10 * offset, {0: gpu0, 1: gpu1})
    summary = window.summary(T0 + 20)
    assert summary is not None
    assert summary.gpus == pytest.approx({0: 0.5, 1: 0.1})
    assert (summary.window_seconds, summary.observed_seconds) == (60, 30)  # three samples 10 s apart: 30 s
    assert summary.at == datetime.fromtimestamp(T0 + 20, UTC)


def test_samples_older_than_the_window_drop_out() -> None:
    window = UtilizationWindow(60)
    window.add(T0, {0: 1.0})
    window.add(T0 + 30, {0: 1.0})
    window.add(T0 + 60, {0: 0.0})  # T0 is exactly 60 s old: still in
    summary = window.summary(T0 + 60)
    assert summary is not None and summary.gpus[0] == pytest.approx(2 / 3) and summary.covers_window
    window.add(T0 + 90, {0: 0.0})  # T0 is out, T0+30 exactly on the edge
    summary = window.summary(T0 + 90)
    assert summary is not None and summary.gpus[0] == pytest.approx(1 / 3)
    assert summary.observed_seconds == 60


def test_a_gpu_missing_from_some_samples_is_averaged_over_those_that_have_it() -> None:
    window = UtilizationWindow(300)
    window.add(T0, {0: 0.2})
    window.add(T0 + 5, {0: 0.4, 1: 0.9})
    summary = window.summary(T0 + 5)
    assert summary is not None and summary.gpus == pytest.approx({0: 0.3, 1: 0.9})


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        UtilizationWindow(0)


def summary(gpus: dict[int, float], observed: int = 300) -> UtilizationSummary:
    return UtilizationSummary(300, observed, datetime.fromtimestamp(T0, UTC), gpus)


def test_writes_are_rate_limited_and_skipped_when_unchanged() -> None:
    policy = WritePolicy(min_interval_seconds=30, refresh_seconds=300)
    # (seconds after T0, summary, due?, written if due)
    steps = [
        (0, summary({0: 0.9}), True),  # the first one at once
        (5, summary({0: 0.1}), False),  # changed, but only 5 s later
        (29.9, summary({0: 0.1}), False),
        (30, summary({0: 0.1}), True),  # changed, 30 s later
        (60, summary({0: 0.1}), False),  # unchanged
        (90, summary({0: 0.104}), False),  # unchanged once rounded to two decimals
        (120, summary({0: 0.11}), True),
        (150, summary({0: 0.11, 1: 0.0}), True),  # a GPU appeared
        (420, summary({0: 0.11, 1: 0.0}), False),  # unchanged, 270 s after the last write
        (450, summary({0: 0.11, 1: 0.0}), True),  # unchanged for 300 s: refreshed
    ]
    for offset, value, expected in steps:
        now = T0 + offset
        assert policy.due(value, now) is expected, f"at +{offset}s"
        if expected:
            policy.written(value, now)


def test_the_window_becoming_fully_observed_is_a_change() -> None:
    policy = WritePolicy(min_interval_seconds=30, refresh_seconds=3600)
    policy.written(summary({0: 0.0}, observed=200), T0)
    assert not policy.due(summary({0: 0.0}, observed=250), T0 + 50)
    assert policy.due(summary({0: 0.0}, observed=300), T0 + 100)


def test_a_failed_write_is_retried_at_the_next_sample() -> None:
    policy = WritePolicy(min_interval_seconds=30, refresh_seconds=300)
    assert policy.due(summary({0: 0.5}), T0)
    # The write failed: `written` was not called, so the next sample tries again.
    assert policy.due(summary({0: 0.5}), T0 + 5)


def test_a_window_sampled_all_through_is_fully_observed() -> None:
    """Samples every second over a 10 s window never reach back a full 10 s, yet they stand
    for all of it (each reports the second before it): the window counts as covered."""
    window = UtilizationWindow(10)
    for second in range(30):
        window.add(T0 + second + 0.3, {0: 0.0})
    summary = window.summary(T0 + 29.3)
    assert summary is not None and summary.covers_window
