"""Unit tests of the share packing plan and the pinned-demand measure."""

from __future__ import annotations

import numpy as np
import pytest

from gpupool.core.models import WorkerShape
from gpupool.core.placement import WorkloadMix
from gpupool.core.placement.pinned_demand import pinned_demand_per_node
from gpupool.core.placement.share_plan import SharePlan


@pytest.mark.parametrize(
    ("counts", "patterns"),
    [
        pytest.param({}, {}, id="nothing-seen"),
        pytest.param({470: 4}, {(470, 470): 2}, id="equal-halves-pair"),
        pytest.param({650: 2, 320: 2}, {(650, 320): 2}, id="complements-pair"),
        pytest.param({810: 3, 160: 1}, {(810, 160): 1, (810,): 2}, id="scarce-small-share-completes-one"),
        pytest.param({50: 4}, {(50, 50, 50, 50): 1}, id="small-shares-fill-one-gpu-first"),
        pytest.param(
            {650: 1, 470: 2, 320: 1},
            {(650, 320): 1, (470, 470): 1},
            id="mixed-sizes-pair-up",
        ),
    ],
)
def test_patterns_from_counts(counts: dict[int, float], patterns: dict[tuple[int, ...], int]) -> None:
    assert SharePlan.from_counts(counts).patterns == patterns


def test_large_counts_are_scaled_but_rare_sizes_survive() -> None:
    plan = SharePlan.from_counts({810: 1_000_000, 50: 1})
    assert sum(plan.patterns.values()) <= 4000
    assert any(50 in p for p in plan.patterns)
    assert plan.min_share == 50


@pytest.mark.parametrize(
    ("size", "free", "home"),
    [
        pytest.param(320, 350, True, id="320-completes-a-650"),
        pytest.param(650, 680, True, id="650-completes-a-320"),
        pytest.param(320, 1000, True, id="320-opens-its-pattern"),
        pytest.param(470, 530, True, id="470-completes-a-470"),
        pytest.param(320, 530, False, id="320-beside-470-is-not-planned"),
        pytest.param(999, 1000, False, id="unknown-size-has-no-home"),
    ],
)
def test_homes(size: int, free: int, home: bool) -> None:
    plan = SharePlan.from_counts({650: 10, 320: 10, 470: 20})
    assert bool(plan.homes(size)[free]) is home


def test_homes_are_read_only() -> None:
    homes = SharePlan.from_counts({470: 2}).homes(470)
    with pytest.raises(ValueError):
        homes[0] = True


def test_mix_snapshot_counts_every_share_size() -> None:
    mix = WorkloadMix(coverage=0.5)
    mix.observe(WorkerShape(810, 1000), 100)
    mix.observe(WorkerShape(50, 1000), 1)  # far outside the 50% coverage of types
    mix.observe(WorkerShape(1000, 1000), 100)
    snap = mix.snapshot()
    assert snap is not None
    assert dict(snap.share_counts) == {50: 1.0, 810: 100.0}


def test_pinned_demand_per_node() -> None:
    mix = WorkloadMix()
    mix.observe(WorkerShape(1000, 1000), 2, gpu_models=("T4",))  # pinned to T4
    mix.observe(WorkerShape(500, 1000), 2, gpu_models=("T4", "V100"))  # either of two
    mix.observe(WorkerShape(1000, 1000), 4)  # flexible: no demand anywhere
    snap = mix.snapshot()
    assert snap is not None
    models = ("G2", "T4", "V100")
    model_id = np.array([0, 1, 2, 1], dtype=np.int64)  # nodes: G2, T4, V100, T4
    gpu_count = np.array([8, 2, 4, 2], dtype=np.int64)
    got = pinned_demand_per_node(snap, models, model_id, gpu_count)
    # T4 (4 GPUs): 0.25 * 1000 / 4 + 0.25 * 500 / 8; V100 (4 GPUs): 0.25 * 500 / 8; G2: 0.
    assert got == pytest.approx([0.0, 62.5 + 15.625, 15.625, 62.5 + 15.625])


def test_mix_snapshot_keeps_pinned_demand_of_rare_types() -> None:
    mix = WorkloadMix(coverage=0.5)
    mix.observe(WorkerShape(1000, 1000), 8)
    mix.observe(WorkerShape(500, 1000), 1, gpu_models=("T4",))  # dropped from `types`
    mix.observe(WorkerShape(2000, 1000), 1, gpu_models=("V100", "T4"))
    snap = mix.snapshot()
    assert snap is not None
    assert len(snap.types) == 1
    assert dict(snap.pinned_milli) == pytest.approx({("T4",): 50.0, ("T4", "V100"): 200.0})
    assert snap.milli_per_worker == pytest.approx((8000 + 500 + 2000) / 10)
