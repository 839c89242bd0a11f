"""Roofline arithmetic against hand-worked examples (`gpupool.core.roofline`).

The three made-up chips have round figures so every expected number can be checked by hand:

| chip  | FP16 peak | bandwidth | ridge (FLOP/byte) | price per GPU-hour |
|-------|-----------|-----------|-------------------|--------------------|
| FAST  | 1000 TF   | 4000 GB/s | 250               | 4.0                |
| WIDE  | 300 TF    | 2000 GB/s | 150               | 1.5                |
| CHEAP | 400 TF    | 800 GB/s  | 500               | 1.0                |
"""

from __future__ import annotations

import pytest

from gpupool.core.roofline import (
    GpuSpec,
    JobProfile,
    Optimize,
    PoolCandidate,
    Precision,
    ReferenceRuntime,
    attainable_flops,
    choice_of,
    estimate_seconds,
    rank_candidates,
    ridge_point,
)

FAST = GpuSpec("FAST", peak_tflops_fp16=1000, peak_tflops_fp32=60, memory_bandwidth_gbps=4000)
WIDE = GpuSpec("WIDE", peak_tflops_fp16=300, peak_tflops_fp32=20, memory_bandwidth_gbps=2000)
CHEAP = GpuSpec("CHEAP", peak_tflops_fp16=400, peak_tflops_fp32=90, memory_bandwidth_gbps=800)
MODELS = {s.model: s for s in (FAST, WIDE, CHEAP)}
CANDIDATES = (
    PoolCandidate("fast", "FAST", False, FAST, 4.0),
    PoolCandidate("wide", "WIDE", False, WIDE, 1.5),
    PoolCandidate("cheap", "CHEAP", False, CHEAP, 1.0),
)
# Memory-bound: 50 FLOP/byte is below every ridge, so each chip runs at 50 x bandwidth:
# FAST 200 TF, WIDE 100 TF, CHEAP 40 TF.
MEMORY_BOUND = JobProfile(operational_intensity=50, total_flops=3.6e17)
# Compute-bound: 1000 FLOP/byte is above every ridge, so each chip runs at its peak.
COMPUTE_BOUND = JobProfile(operational_intensity=1000, total_flops=3.6e18)


def test_gtx_1080_ridge_point() -> None:
    # 8.8 TFLOPS FP32 over 320 GB/s: 8.8e12 / 320e9 = 27.5 FLOP/byte.
    gtx_1080 = GpuSpec("GTX1080", peak_tflops_fp16=0.14, peak_tflops_fp32=8.8, memory_bandwidth_gbps=320)
    assert ridge_point(gtx_1080, Precision.FP32) == pytest.approx(27.5)
    # Below the ridge a kernel gets intensity x bandwidth, above it the peak.
    assert attainable_flops(gtx_1080, 10, Precision.FP32) == pytest.approx(3.2e12)
    assert attainable_flops(gtx_1080, 100, Precision.FP32) == pytest.approx(8.8e12)


@pytest.mark.parametrize(
    ("profile", "spec", "gpus", "seconds"),
    [
        # 3.6e17 FLOP at 200 TF: 1800 s.
        pytest.param(MEMORY_BOUND, FAST, 1, 1800, id="memory-bound-fast"),
        # 3.6e17 FLOP at 40 TF: 9000 s.
        pytest.param(MEMORY_BOUND, CHEAP, 1, 9000, id="memory-bound-cheap"),
        # The whole job's FLOP spread over 4 GPUs: a quarter of the time.
        pytest.param(MEMORY_BOUND, CHEAP, 4, 2250, id="spread-over-the-gang"),
        # A share of one GPU gets that share of its throughput.
        pytest.param(MEMORY_BOUND, FAST, 0.5, 3600, id="half-a-gpu"),
        # 3.6e18 FLOP at the 1000 TF peak: 3600 s.
        pytest.param(COMPUTE_BOUND, FAST, 1, 3600, id="compute-bound-fast"),
        # FP32: CHEAP's 90 TF peak is below 1000 x 800 GB/s: 3.6e18 / 9e13 = 40000 s.
        pytest.param(JobProfile(1000, total_flops=3.6e18, precision=Precision.FP32), CHEAP, 1, 40000, id="fp32-peak"),
        # Measured 9000 s on CHEAP (400 TF attained); FAST attains 1000 TF: 9000 x 400/1000.
        pytest.param(
            JobProfile(1000, reference=ReferenceRuntime("CHEAP", 9000)), FAST, 1, 3600, id="scaled-from-reference"
        ),
        # Memory-bound reference on FAST (200 TF) scaled to WIDE (100 TF): twice as long.
        pytest.param(JobProfile(50, reference=ReferenceRuntime("FAST", 1800)), WIDE, 1, 3600, id="reference-mem"),
        pytest.param(JobProfile(50, reference=ReferenceRuntime("UNKNOWN", 60)), WIDE, 1, None, id="unknown-ref"),
    ],
)
def test_runtime_estimates(profile: JobProfile, spec: GpuSpec, gpus: float, seconds: float | None) -> None:
    found = estimate_seconds(profile, spec, gpus, MODELS)
    assert found == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("profile", "order", "costs"),
    [
        # Memory-bound, Cost: WIDE 1 h x 1.5 = 1.5; FAST 0.5 h x 4 = 2.0; CHEAP 2.5 h x 1 = 2.5.
        # The bandwidth-rich WIDE wins over CHEAP, whose GPU-hour is cheaper.
        pytest.param(MEMORY_BOUND, ["wide", "fast", "cheap"], [1.5, 2.0, 2.5], id="memory-bound-cost"),
        # Same job, Time: FAST 0.5 h, WIDE 1 h, CHEAP 2.5 h.
        pytest.param(
            JobProfile(50, total_flops=3.6e17, optimize=Optimize.TIME),
            ["fast", "wide", "cheap"],
            [2.0, 1.5, 2.5],
            id="memory-bound-time",
        ),
        # Compute-bound, Time: FAST 1 h, CHEAP 2.5 h, WIDE 3.33 h.
        pytest.param(
            JobProfile(1000, total_flops=3.6e18, optimize=Optimize.TIME),
            ["fast", "cheap", "wide"],
            [4.0, 2.5, 5.0],
            id="compute-bound-time",
        ),
        # Compute-bound, Cost: CHEAP 2.5 h x 1 = 2.5; FAST 1 h x 4 = 4; WIDE 3.33 h x 1.5 = 5.
        pytest.param(COMPUTE_BOUND, ["cheap", "fast", "wide"], [2.5, 4.0, 5.0], id="compute-bound-cost"),
    ],
)
def test_ranking(profile: JobProfile, order: list[str], costs: list[float]) -> None:
    ranked = rank_candidates(profile, CANDIDATES, 1, MODELS)
    assert [e.pool for e in ranked] == order
    assert [e.cost for e in ranked] == [pytest.approx(c) for c in costs]


def test_cost_ties_go_to_the_faster_then_the_name() -> None:
    # FAST at 3.0 per GPU-hour costs 0.5 h x 3 = 1.5, as WIDE does (1 h x 1.5): FAST is faster.
    tied = (PoolCandidate("wide", "WIDE", False, WIDE, 1.5), PoolCandidate("fast", "FAST", False, FAST, 3.0))
    assert [e.pool for e in rank_candidates(MEMORY_BOUND, tied, 1, MODELS)] == ["fast", "wide"]
    # Two pools of one model at one price: by name.
    twins = (PoolCandidate("b", "WIDE", False, WIDE, 1.5), PoolCandidate("a", "WIDE", False, WIDE, 1.5))
    assert [e.pool for e in rank_candidates(MEMORY_BOUND, twins, 1, MODELS)] == ["a", "b"]


def test_cost_counts_every_gpu_of_the_gang() -> None:
    # 8 GPUs: an eighth of the time, eight GPUs paid: the same money.
    one = rank_candidates(MEMORY_BOUND, CANDIDATES, 1, MODELS)[0]
    eight = rank_candidates(MEMORY_BOUND, CANDIDATES, 8, MODELS)[0]
    assert eight.seconds == pytest.approx(one.seconds / 8)
    assert eight.cost == pytest.approx(one.cost)


def test_unknown_models_rank_last() -> None:
    candidates = (PoolCandidate("mystery", "MYSTERY", False, None, 0.0), *CANDIDATES)
    ranked = rank_candidates(MEMORY_BOUND, candidates, 1, MODELS)
    assert ranked[-1].pool == "mystery"
    assert ranked[-1].seconds is None


def test_choice_lists_one_alternative_per_other_model() -> None:
    candidates = (*CANDIDATES, PoolCandidate("fast-2", "FAST", False, FAST, 5.0))
    ranked = rank_candidates(MEMORY_BOUND, candidates, 1, MODELS)
    choice = choice_of(ranked[0], ranked, Optimize.COST)
    assert (choice.model, choice.pool, choice.cost) == ("WIDE", "wide", pytest.approx(1.5))
    assert [(a.model, a.pool) for a in choice.alternatives] == [("FAST", "fast"), ("CHEAP", "cheap")]
