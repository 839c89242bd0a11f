"""Idle-GPU verdicts: one row per situation (see gpupool.core.idle)."""

from __future__ import annotations

import pytest

from gpupool.core.idle import IdleAction, IdlePolicy, IdleVerdict, job_utilization, judge_idle

POLICY = IdlePolicy(threshold=0.05, after_seconds=600.0, action=IdleAction.WARN)
NOW = 10_000.0


@pytest.mark.parametrize(
    ("utilization", "below_since", "expected"),
    [
        (0.02, None, IdleVerdict(below=True, since=NOW, idle=False)),
        (0.02, NOW - 300, IdleVerdict(below=True, since=NOW - 300, idle=False)),
        (0.02, NOW - 600, IdleVerdict(below=True, since=NOW - 600, idle=True)),
        (0.05, NOW - 900, IdleVerdict(below=False, since=None, idle=False)),
        (None, NOW - 900, IdleVerdict(below=None, since=NOW - 900, idle=True)),
        (None, None, IdleVerdict(below=None, since=None, idle=False)),
    ],
    ids=[
        "first-low-reading-starts-the-clock",
        "low-for-less-than-after",
        "low-for-after-is-idle",
        "at-the-threshold-is-busy-and-resets",
        "no-reading-keeps-what-was-known",
        "no-reading-no-history-is-not-idle",
    ],
)
def test_judge_idle(utilization: float | None, below_since: float | None, expected: IdleVerdict) -> None:
    assert judge_idle(utilization, POLICY, below_since, NOW) == expected


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ([("n1", 0), ("n1", 1)], 0.9),
        ([("n1", 1)], 0.01),
        ([("n1", 0), ("n2", 0)], None),
        ([], None),
    ],
    ids=["busiest-gpu-counts", "one-quiet-gpu", "a-gpu-without-reading-is-unknown", "no-gpu-is-unknown"],
)
def test_job_utilization(gpus: list[tuple[str, int]], expected: float | None) -> None:
    assert job_utilization(gpus, {("n1", 0): 0.9, ("n1", 1): 0.01}) == expected
