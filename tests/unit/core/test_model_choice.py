"""Jobs with a profile are placed on, and autoscaled to, the GPU model their roofline
estimates favour (`gpupool.core.schedule`, `gpupool.core.autoscale`).

The chips are those of `test_roofline.py` (FAST, WIDE, CHEAP), one on-prem pool of each.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import make_job, make_node, make_offer, make_queue, make_snapshot
from gpupool.core import PlacementPolicy, Quota, WaitCode, schedule
from gpupool.core.models import Decisions, Job
from gpupool.core.roofline import GpuSpec, Hardware, JobProfile, Optimize, ReferenceRuntime

FAST = GpuSpec("FAST", peak_tflops_fp16=1000, peak_tflops_fp32=60, memory_bandwidth_gbps=4000)
WIDE = GpuSpec("WIDE", peak_tflops_fp16=300, peak_tflops_fp32=20, memory_bandwidth_gbps=2000)
CHEAP = GpuSpec("CHEAP", peak_tflops_fp16=400, peak_tflops_fp32=90, memory_bandwidth_gbps=800)
PRICES = {"fast": 4.0, "wide": 1.5, "cheap": 1.0}  # per GPU-hour
HARDWARE = Hardware(
    models={s.model: s for s in (FAST, WIDE, CHEAP)},
    gpu_hour_prices={(pool, False): price for pool, price in PRICES.items()},
)
NODES = (
    make_node("fast-0", model="FAST", pool="fast", gpus=8),
    make_node("wide-0", model="WIDE", pool="wide", gpus=8),
    make_node("cheap-0", model="CHEAP", pool="cheap", gpus=8),
)
QUEUE = make_queue(quotas=tuple(Quota(nominal_gpus=100, gpu_model=m) for m in ("FAST", "WIDE", "CHEAP")))

MEMORY_BOUND = JobProfile(operational_intensity=50, total_flops=3.6e17)
COMPUTE_BOUND = JobProfile(operational_intensity=1000, total_flops=3.6e18)
COMPUTE_BOUND_TIME = replace(COMPUTE_BOUND, optimize=Optimize.TIME)


def decide(*pending: Job, running: tuple[Job, ...] = (), hardware: Hardware = HARDWARE) -> Decisions:
    return schedule(make_snapshot(NODES, (QUEUE,), pending, running, hardware=hardware))


def placed_on(decisions: Decisions) -> dict[str, str]:
    """The node of each admitted job's first worker."""
    return {a.job_key: a.placements[0].node for a in decisions.admissions}


@pytest.mark.parametrize(
    ("job", "running", "node"),
    [
        pytest.param(make_job(profile=MEMORY_BOUND), (), "wide-0", id="memory-bound-prefers-bandwidth-at-a-price"),
        pytest.param(make_job(profile=COMPUTE_BOUND), (), "cheap-0", id="compute-bound-cost-takes-cheap-flops"),
        pytest.param(make_job(profile=COMPUTE_BOUND_TIME), (), "fast-0", id="compute-bound-time-takes-fast"),
        pytest.param(
            make_job(profile=COMPUTE_BOUND),
            (make_job("ns/hog", gpus=8, on=("cheap-0",), models=("CHEAP",)),),
            "fast-0",
            id="best-full-falls-back-to-next",
        ),
        pytest.param(
            make_job(profile=COMPUTE_BOUND_TIME, models=("WIDE", "CHEAP")),
            (),
            "cheap-0",
            id="only-among-the-jobs-models",
        ),
        pytest.param(
            make_job(profile=JobProfile(1000, reference=ReferenceRuntime("CHEAP", 9000), optimize=Optimize.TIME)),
            (),
            "fast-0",
            id="reference-runtime",
        ),
    ],
)
def test_profiled_jobs_go_to_the_model_their_estimates_favour(job: Job, running: tuple[Job, ...], node: str) -> None:
    assert placed_on(decide(job, running=running)) == {job.key: node}


def test_the_choice_and_its_alternatives_are_in_the_admission() -> None:
    (admission,) = decide(make_job(profile=MEMORY_BOUND)).admissions
    choice = admission.model_choice
    assert choice is not None
    # WIDE: 1 h at 1.5; FAST: 0.5 h at 4 = 2; CHEAP: 2.5 h at 1 = 2.5.
    assert (choice.model, choice.pool, choice.optimize) == ("WIDE", "wide", Optimize.COST)
    assert (choice.seconds, choice.cost) == (pytest.approx(3600), pytest.approx(1.5))
    assert [(a.model, a.seconds, a.cost) for a in choice.alternatives] == [
        ("FAST", pytest.approx(1800), pytest.approx(2.0)),
        ("CHEAP", pytest.approx(9000), pytest.approx(2.5)),
    ]


def test_without_a_profile_nothing_changes() -> None:
    plain = make_job()
    assert decide(plain) == decide(plain, hardware=Hardware())
    assert decide(plain).admissions[0].model_choice is None


def test_an_unknown_reference_model_schedules_as_without_a_profile() -> None:
    job = make_job(profile=JobProfile(50, reference=ReferenceRuntime("NOPE", 60)))
    plain = replace(job, profile=None)
    assert decide(job) == decide(plain)


def test_a_gang_no_single_pool_holds_is_placed_as_without_a_profile() -> None:
    # 2 workers x 8 GPUs: neither FAST pool alone holds it, the two together do (one quota
    # flavor per model keeps a gang on one model).
    nodes = (*NODES, make_node("fast-b-0", model="FAST", pool="fast-b", gpus=8))
    job = make_job(gpus=8, workers=2, profile=COMPUTE_BOUND)
    decisions = schedule(make_snapshot(nodes, (QUEUE,), (job,), hardware=HARDWARE))
    (admission,) = decisions.admissions
    assert {p.node for p in admission.placements} == {"fast-0", "fast-b-0"}
    assert admission.model_choice is None
    assert decisions == schedule(make_snapshot(nodes, (QUEUE,), (replace(job, profile=None),), hardware=HARDWARE))


def test_a_profiled_job_that_fits_nowhere_waits_with_the_usual_reason() -> None:
    job = make_job(gpus=8, workers=4, profile=COMPUTE_BOUND)
    (waiting,) = decide(job).waiting
    assert waiting.code == WaitCode.NO_FITTING_NODE


# ------------------------------------------------------------------------------ autoscale

CLOUD = PlacementPolicy.CLOUD_ALLOWED
OFFERS = (
    make_offer("cloud-fast", model="FAST", price=32.0),  # 4.0 per GPU-hour
    make_offer("cloud-wide", model="WIDE", price=12.0),  # 1.5
    make_offer("cloud-cheap", model="CHEAP", price=8.0),  # 1.0
)
CLOUD_QUEUE = make_queue(
    quotas=tuple(Quota(nominal_gpus=100, gpu_model=m) for m in ("FAST", "WIDE", "CHEAP")), allow_cloud=True
)


def plan(job: Job, *, budget_left: float | None = None) -> Decisions:
    queue = replace(CLOUD_QUEUE, budget_left=budget_left)
    return schedule(make_snapshot((), (queue,), (job,), offers=OFFERS, hardware=HARDWARE))


def requested_pools(decisions: Decisions) -> list[str]:
    return [r.pool for r in decisions.node_requests]


@pytest.mark.parametrize(
    ("profile", "pool"),
    [
        pytest.param(None, "cloud-cheap", id="no-profile-cheapest-node-hour"),
        # 8 GPUs, memory-bound: WIDE 1/8 h x 8 x 1.5 = 1.5 beats CHEAP's 2.5 and FAST's 2.
        pytest.param(MEMORY_BOUND, "cloud-wide", id="memory-bound-cost"),
        pytest.param(COMPUTE_BOUND, "cloud-cheap", id="compute-bound-cost"),
        pytest.param(COMPUTE_BOUND_TIME, "cloud-fast", id="compute-bound-time"),
    ],
)
def test_the_autoscaler_grows_the_pool_the_estimates_favour(profile: JobProfile | None, pool: str) -> None:
    job = make_job(gpus=8, policy=CLOUD, profile=profile)
    assert requested_pools(plan(job)) == [pool]


def test_the_budget_projection_uses_the_estimate() -> None:
    # Without a profile the 8 GPUs are projected over the hour's horizon: 8 x 1.0 = 8 > 5 left.
    plain = make_job(gpus=8, policy=CLOUD)
    assert requested_pools(plan(plain, budget_left=5.0)) == []
    # Compute-bound on CHEAP: 3.6e18 / (8 x 400 TF) = 1125 s, 8 x 1.0 x 1125/3600 = 2.5 <= 5.
    profiled = replace(plain, profile=COMPUTE_BOUND)
    assert requested_pools(plan(profiled, budget_left=5.0)) == ["cloud-cheap"]
    # maxRuntime caps the estimate: a run killed after 60 s costs at most 8 x 60/3600.
    slow = replace(plain, profile=replace(COMPUTE_BOUND, total_flops=3.6e20), max_runtime_seconds=60.0)
    assert requested_pools(plan(slow, budget_left=0.2)) == ["cloud-cheap"]


@settings(max_examples=60, deadline=None)
@given(
    intensity=st.floats(min_value=0.1, max_value=5000),
    optimize=st.sampled_from(list(Optimize)),
    gpus=st.sampled_from([0.5, 1, 2, 4, 8]),
    workers=st.integers(min_value=1, max_value=3),
    held=st.lists(st.sampled_from(["fast-0", "wide-0", "cheap-0"]), max_size=3, unique=True),
)
def test_a_profile_never_makes_a_job_wait_that_would_run(
    intensity: float, optimize: Optimize, gpus: float, workers: int, held: list[str]
) -> None:
    if gpus < 1:
        workers = 1
    running = tuple(make_job(f"ns/hog-{n}", gpus=8, on=(n,)) for n in held)
    profiled = make_job(gpus=gpus, workers=workers, profile=JobProfile(intensity, total_flops=1e15, optimize=optimize))
    with_profile = decide(profiled, running=running)
    without = decide(replace(profiled, profile=None), running=running)
    assert bool(with_profile.admissions) == bool(without.admissions)
    assert [w.code for w in with_profile.waiting] == [w.code for w in without.waiting]
