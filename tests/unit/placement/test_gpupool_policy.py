"""Behaviour of gpupool's own placement policy (`gpupool.core.placement.gpupool_policy`)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from builders import GIB
from builders import make_job as job_of
from builders import make_node as node_of
from gpupool.core.models import GpupoolParams, Job, WorkerShape
from gpupool.core.placement import PlacementMemory, PlacementState, WorkloadMix
from gpupool.core.placement.gpupool_policy import narrow_ties, unclaimed_models

# This file's defaults: one-GPU A100 nodes of 64 cores and 256 GiB; single-worker jobs of
# one core and 1 GiB. `on=(node,)` with `first_gpu=g` makes a job running on GPU g of node.
make_node = partial(node_of, gpus=1, model="A100", cpu=64_000, memory=256 * GIB)
make_job = partial(job_of, key="ns/j", queue="q", cpu=1000, memory=GIB)
DEFAULT_PARAMS = GpupoolParams()


def mix_of(*seen: tuple[int, int, tuple[str, ...]]) -> WorkloadMix:
    """A mix that has seen `count` workers of (milli, count, pinned models) each."""
    mix = WorkloadMix()
    for milli, count, models in seen:
        mix.observe(WorkerShape(milli, 1000), count, gpu_models=models)
    return mix


# The openb-like share mix: 0.65 pairs with 0.32, 0.47 with 0.47; one 0.11 makes a 0.21
# gap "still usable" so it is not mistaken for a full GPU.
SHARES = mix_of((650, 10, ()), (320, 10, ()), (470, 20, ()), (110, 1, ()))


@pytest.mark.parametrize(
    ("held", "share", "expect"),
    [
        pytest.param([("a", 470), ("b", 650)], 320, ("b", 0), id="planned-home-beats-idle-and-others"),
        pytest.param(
            [("a", 200)],
            470,
            ("idle", 0),
            id="no-home-falls-back-to-least-fragmentation",  # 330 left on a: few shares fit
        ),
        pytest.param([("a", 470), ("b", 350)], 470, ("a", 0), id="tightest-planned-home"),
        pytest.param([("a", 900)], 50, ("a", 0), id="left-too-full-for-any-share-counts-as-home"),
    ],
)
def test_share_goes_to_its_planned_home(held: list[tuple[str, int]], share: int, expect: tuple[str, int]) -> None:
    nodes = [make_node(name) for name, _ in held] + [make_node("idle")]
    running = [make_job(gpu_milli=milli, key=f"ns/{name}", on=(name,)) for name, milli in held]
    state = PlacementState.build(nodes, running)
    got = state.place(make_job(gpu_milli=share), scoring_policy="gpupool", memory=PlacementMemory(SHARES))
    assert got is not None
    assert (got[0].node, got[0].gpus[0].index) == expect


def test_tightest_home_wins_whatever_the_tie_order() -> None:
    # a: 400 free, the 320 leaves 80 (too little for any share); b: 350 free, leaves 30.
    # Both look alike to the fragmentation buckets, and the tie order favours a.
    nodes = [make_node("a"), make_node("b"), make_node("idle")]
    running = [make_job(gpu_milli=600, key="ns/a", on=("a",)), make_job(gpu_milli=650, key="ns/b", on=("b",))]
    state = PlacementState.build(nodes, running, tie_rank=[0, 1, 2])
    got = state.place(make_job(gpu_milli=320), scoring_policy="gpupool", memory=PlacementMemory(SHARES))
    assert got is not None and got[0].node == "b"


def test_without_a_plan_a_share_takes_the_tightest_gpu() -> None:
    nodes = [make_node("a"), make_node("b"), make_node("idle")]
    state = PlacementState.build(
        nodes, [make_job(gpu_milli=470, key="ns/a", on=("a",)), make_job(gpu_milli=600, key="ns/b", on=("b",))]
    )
    got = state.place(make_job(gpu_milli=320), scoring_policy="gpupool", memory=None)
    assert got is not None and got[0].node == "b"  # 400 free: leaves 80, the least


@pytest.mark.parametrize(
    ("job", "expect"),
    [
        pytest.param(make_job(gpu_milli=1000), ["g2"], id="flexible-gpu-job-spares-the-pinned-model"),
        pytest.param(make_job(gpu_milli=500), ["g2"], id="flexible-share-spares-the-pinned-model"),
        pytest.param(make_job(gpu_milli=0), ["t4", "g2"], id="cpu-only-job-ignores-models"),
    ],
)
def test_ties_spare_pinned_models(job: Job, expect: list[str]) -> None:
    nodes = [make_node("t4", gpus=2, model="T4"), make_node("g2", gpus=2, model="G2")]
    state = PlacementState.build(nodes)
    mix = mix_of((1000, 10, ("T4",)), (1000, 10, ()), (0, 5, ()))
    tied = np.array([0, 1], dtype=np.int64)  # both nodes ranked equal by fragmentation
    kept = narrow_ties(state, tied, tied, job.shape, PlacementMemory(mix).tables(), DEFAULT_PARAMS)
    assert [state.node_names[i] for i in kept] == expect


@pytest.mark.parametrize(
    ("gpu_milli", "expect"),
    [
        pytest.param(500, ["small"], id="share-keeps-big-nodes-whole"),
        pytest.param(0, ["small"], id="cpu-only-keeps-big-nodes-whole"),
        pytest.param(1000, ["big", "small"], id="whole-gpu-leaves-it-to-fragmentation"),
    ],
)
def test_small_nodes_first_among_ties(gpu_milli: int, expect: list[str]) -> None:
    state = PlacementState.build([make_node("big", gpus=8), make_node("small", gpus=2)])
    tied = np.array([0, 1], dtype=np.int64)
    kept = narrow_ties(state, tied, tied, WorkerShape(gpu_milli, 1000), None, DEFAULT_PARAMS)
    assert [state.node_names[i] for i in kept] == expect


# Twelve GPUs. Pinned jobs will want a quarter of A, three quarters of B and one and a half
# times C by the time the arrived work equals the cluster.
CLAIMED = mix_of((1000, 1, ("A",)), (1000, 3, ("B",)), (1000, 6, ("C",)), (1000, 2, ()))


@pytest.mark.parametrize(
    ("busy", "among", "expect"),
    [
        pytest.param([], ["a", "b", "c"], ["a"], id="empty-cluster-only-lightly-claimed-model-open"),
        pytest.param([], ["b", "c"], ["b", "c"], id="all-claimed-keeps-all"),
        pytest.param([("a", 4), ("c", 2)], ["b", "c2"], ["b"], id="half-full-cluster-opens-untouched-b-but-not-c"),
    ],
)
def test_unclaimed_models(busy: list[tuple[str, int]], among: list[str], expect: list[str]) -> None:
    nodes = [
        make_node("a", gpus=4, model="A"),
        make_node("b", gpus=4, model="B"),
        make_node("c", gpus=2, model="C"),
        make_node("c2", gpus=2, model="C"),
    ]
    running = [
        make_job(gpu_milli=1000, key=f"ns/{name}-{g}", on=(name,), first_gpu=g)
        for name, gpus in busy
        for g in range(gpus)
    ]
    state = PlacementState.build(nodes, running)
    tables = PlacementMemory(CLAIMED).tables()
    assert tables is not None
    candidates = np.array([state.index_of(n) for n in among], dtype=np.int64)
    kept = unclaimed_models(state, candidates, tables, DEFAULT_PARAMS)
    assert [state.node_names[i] for i in kept] == expect


def test_flexible_job_avoids_claimed_model_even_when_fragmentation_prefers_it() -> None:
    # b has a partly used GPU, so packing there looks best, but pinned jobs will fill B.
    nodes = [make_node("b", gpus=2, model="B"), make_node("a", gpus=2, model="A")]
    state = PlacementState.build(nodes, [make_job(gpu_milli=500, key="ns/b", on=("b",))], tie_rank=[0, 1])
    mix = mix_of((500, 10, ("B",)), (500, 10, ()))
    got = state.place(make_job(gpu_milli=500), scoring_policy="gpupool", memory=PlacementMemory(mix))
    assert got is not None and got[0].node == "a"
