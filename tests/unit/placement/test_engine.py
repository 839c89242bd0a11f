"""Unit tests of the placement engine (`gpupool.core.placement`)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import GIB
from builders import make_job as job_of
from builders import make_node as node_of
from gpupool.core.models import GpuNode, GpuSlice, Job, WorkerPlacement, WorkerShape
from gpupool.core.placement import (
    DEFAULT_SCORING_POLICY,
    SCORING_POLICY_NAMES,
    PlacementError,
    PlacementMemory,
    PlacementState,
    WorkloadMix,
)

ALL_POLICIES = [p for p in SCORING_POLICY_NAMES]
# This file's defaults: A100 nodes of 64 cores and 256 GiB; jobs of one worker asking
# one GPU, one core and 1 GiB.
make_node = partial(node_of, model="A100", cpu=64_000, memory=256 * GIB)
make_job = partial(job_of, queue="q", gpu_milli=1000, cpu=1000, memory=GIB)


def running(node: str, slices: list[tuple[int, int]], key: str = "ns/r", cpu: int = 1000) -> Job:
    """A running single-worker job holding `slices` (index, milli) on `node`."""
    milli = slices[0][1] if len(slices) == 1 and slices[0][1] < 1000 else 1000 * len(slices)
    return make_job(
        key=key,
        gpu_milli=milli,
        cpu=cpu,
        placements=(WorkerPlacement(0, node, tuple(GpuSlice(i, m) for i, m in slices)),),
    )


@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize(
    ("nodes", "busy", "job", "expect_node"),
    [
        pytest.param(
            [make_node("a", gpus=2), make_node("b", gpus=2)],
            [running("a", [(0, 300)])],
            make_job(gpu_milli=2000),
            "b",
            id="whole-gpus-need-idle-gpus",
        ),
        pytest.param(
            [make_node("a", gpus=1), make_node("b", gpus=1)],
            [running("a", [(0, 1000)])],
            make_job(gpu_milli=0),
            None,  # CPU-only: any node with cpu fits
            id="cpu-only-ignores-gpus",
        ),
        pytest.param(
            [make_node("a", gpus=1, model="T4"), make_node("b", gpus=1, model="V100")],
            [],
            make_job(models=("V100",)),
            "b",
            id="model-constraint",
        ),
        pytest.param(
            [make_node("a", gpus=1, cpu=2000), make_node("b", gpus=1, cpu=8000)],
            [],
            make_job(cpu=4000),
            "b",
            id="cpu-must-fit",
        ),
        pytest.param(
            [make_node("a", gpus=1, memory=GIB), make_node("b", gpus=1, memory=8 * GIB)],
            [],
            make_job(memory=4 * GIB),
            "b",
            id="memory-must-fit",
        ),
        pytest.param(
            [make_node("a", gpus=1, ready=False), make_node("b", gpus=1)],
            [],
            make_job(),
            "b",
            id="not-ready-skipped",
        ),
        pytest.param(
            [make_node("a", gpus=1), make_node("b", gpus=1)],
            [running("a", [(0, 600)]), running("b", [(0, 1000)], key="ns/r2")],
            make_job(gpu_milli=500),
            None,
            id="share-needs-room-on-one-gpu",
        ),
    ],
)
def test_fit_rules(policy: str, nodes: list[GpuNode], busy: list[Job], job: Job, expect_node: str | None) -> None:
    state = PlacementState.build(nodes, busy)
    got = state.place(job, scoring_policy=policy, rng=np.random.default_rng(1))
    if job.shape.gpu_milli == 500:  # no GPU has 500 left
        assert got is None
        return
    assert got is not None and len(got) == 1
    if expect_node is not None:
        assert got[0].node == expect_node


@pytest.mark.parametrize(
    ("policy", "whole_gpu_jobs_seen"),
    [
        pytest.param("bestfit", 0, id="bestfit"),
        pytest.param("gpupool", 50, id="gpupool-keeps-idle-gpu-for-whole-gpu-jobs"),
        pytest.param("fgd", 50, id="fgd-keeps-idle-gpu-for-whole-gpu-jobs"),
    ],
)
def test_share_packs_tightest(policy: str, whole_gpu_jobs_seen: int) -> None:
    node = make_node("a", gpus=4)
    busy = [
        running("a", [(0, 500)]),
        running("a", [(1, 300)], key="ns/r2"),
        running("a", [(2, 800)], key="ns/r3"),
    ]
    state = PlacementState.build([node], busy)
    memory = PlacementMemory()
    memory.mix.observe(WorkerShape(1000, 1000), whole_gpu_jobs_seen)
    memory.mix.observe(WorkerShape(400, 1000), 5)
    got = state.place(make_job(gpu_milli=400), scoring_policy=policy, memory=memory)
    assert got is not None
    assert got[0].gpus == (GpuSlice(0, 400),)  # GPU 0 has 500 left: the tightest fit


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_gang_all_or_nothing(policy: str) -> None:
    nodes = [make_node("a", gpus=2), make_node("b", gpus=2)]
    state = PlacementState.build(nodes)
    before = state.gpu_free.copy()
    assert state.place(make_job(gpu_milli=1000, workers=5), scoring_policy=policy) is None
    got = state.place(make_job(gpu_milli=1000, workers=4), scoring_policy=policy)
    assert got is not None and [p.worker for p in got] == [0, 1, 2, 3]
    used = {(p.node, s.index) for p in got for s in p.gpus}
    assert len(used) == 4  # four distinct GPUs
    assert (state.gpu_free == before).all()  # place() does not mutate


def test_gang_workers_share_a_node() -> None:
    state = PlacementState.build([make_node("a", gpus=8)])
    got = state.place(make_job(gpu_milli=2000, workers=4))
    assert got is not None and {p.node for p in got} == {"a"}


def test_allocate_release_round_trip() -> None:
    state = PlacementState.build([make_node("a", gpus=2), make_node("b", gpus=2)])
    snapshot = (state.gpu_free.copy(), state.cpu_free.copy(), state.memory_free.copy())
    job = make_job(gpu_milli=300, workers=3)
    got = state.place(job)
    assert got is not None
    state.allocate(got, job.shape)
    assert state.free_milli_total() == 4000 - 900
    state.release(got, job.shape)
    assert (state.gpu_free == snapshot[0]).all()
    assert (state.cpu_free == snapshot[1]).all() and (state.memory_free == snapshot[2]).all()
    assert state.idle_gpus_total() == 4


def test_allocate_rejects_over_allocation() -> None:
    state = PlacementState.build([make_node("a", gpus=1)])
    p = (WorkerPlacement(0, "a", (GpuSlice(0, 700),)),)
    state.allocate(p, WorkerShape(700))
    with pytest.raises(PlacementError):
        state.allocate(p, WorkerShape(700))
    assert state.free_milli_total() == 300


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_deterministic_with_same_seed(policy: str) -> None:
    nodes = [make_node(f"n{i}", gpus=8) for i in range(20)]

    def run(seed: int) -> list[tuple[WorkerPlacement, ...] | None]:
        state = PlacementState.build(nodes)
        rng = np.random.default_rng(seed)
        memory = PlacementMemory()
        out = []
        for k in range(60):
            job = make_job(key=f"ns/j{k}", gpu_milli=[250, 1000, 2000, 500][k % 4])
            memory.mix.observe(job.shape)
            got = state.place(job, scoring_policy=policy, rng=rng, memory=memory)
            if got is not None:
                state.allocate(got, job.shape)
            out.append(got)
        return out

    assert run(7) == run(7)


def test_fits_anywhere_and_masks() -> None:
    state = PlacementState.build([make_node("a", gpus=2, model="T4"), make_node("b", gpus=8, model="A100")])
    assert state.index_of("b") == 1
    assert state.model_mask(["T4"]).tolist() == [True, False]
    assert state.model_mask([]).tolist() == [True, True]
    assert state.fits_anywhere(WorkerShape(8000))
    assert not state.fits_anywhere(WorkerShape(8000), allowed=state.model_mask(["T4"]))
    assert not state.fits_anywhere(WorkerShape(1000, cpu_milli=10**9))
    job = make_job(gpu_milli=1000)
    got = state.place(job, allowed=np.array([True, False]))
    assert got is not None and got[0].node == "a"
    assert DEFAULT_SCORING_POLICY in SCORING_POLICY_NAMES and {"random", "bestfit", "fgd"} <= set(SCORING_POLICY_NAMES)


def test_unknown_policy_is_an_error() -> None:
    state = PlacementState.build([make_node()])
    with pytest.raises(ValueError, match="unknown placement policy"):
        state.place(make_job(), scoring_policy="nope")


request = st.tuples(
    st.sampled_from([0, 100, 250, 470, 810, 1000, 2000, 4000, 8000]),
    st.integers(1, 3),  # workers
    st.integers(0, 40_000),  # cpu
    st.integers(0, 64),  # memory GiB
)


@settings(max_examples=40, deadline=None)
@given(
    reqs=st.lists(request, min_size=1, max_size=40),
    policy=st.sampled_from(ALL_POLICIES),
    seed=st.integers(0, 1000),
)
def test_never_over_allocates(reqs: list[tuple[int, int, int, int]], policy: str, seed: int) -> None:
    nodes = [
        make_node("a", gpus=8, cpu=96_000, memory=128 * GIB),
        make_node("b", gpus=2, cpu=16_000, memory=64 * GIB, model="T4"),
        make_node("c", gpus=4, cpu=32_000, memory=64 * GIB),
    ]
    state = PlacementState.build(nodes)
    rng = np.random.default_rng(seed)
    memory = PlacementMemory()
    for k, (milli, workers, cpu, mem) in enumerate(reqs):
        job = make_job(key=f"ns/{k}", gpu_milli=milli, workers=workers, cpu=cpu, memory=mem * GIB)
        memory.mix.observe(job.shape, workers)
        got = state.place(job, scoring_policy=policy, rng=rng, memory=memory)
        if got is None:
            continue
        assert len(got) == workers
        state.allocate(got, job.shape)
    assert (state.gpu_free >= 0).all() and (state.gpu_free <= 1000).all()
    assert (state.cpu_free >= 0).all() and (state.memory_free >= 0).all()
    # Independent recount from scratch must agree with the incremental arrays.
    assert state.sum_free.tolist() == state.gpu_free.sum(axis=1).tolist()


def test_ties_go_to_lowest_tie_rank() -> None:
    nodes = [make_node(f"n{i}", gpus=8) for i in range(4)]
    state = PlacementState.build(nodes, tie_rank=[3, 1, 0, 2])
    for policy in ("bestfit", "fgd", "gpupool"):
        got = state.place(make_job(), scoring_policy=policy)
        assert got is not None and got[0].node == "n2", policy
    with pytest.raises(ValueError, match="tie_rank"):
        PlacementState.build(nodes, tie_rank=[0])


def _reference_frag(free: list[int], cpu: int, model: str, mix: WorkloadMix) -> float:
    """FGD's node fragmentation written the slow, obvious way (the paper's definition)."""
    snap = mix.snapshot()
    assert snap is not None
    total = 0.0
    for t, p in zip(snap.types, snap.weight, strict=True):
        free_sum = sum(free)
        if t.gpu_milli == 0 or (t.gpu_models and model not in t.gpu_models):
            total += p * free_sum
            continue
        per_gpu = min(t.gpu_milli, 1000)
        fits = sum(1 for f in free if f >= per_gpu) >= max(1, t.gpu_milli // 1000)
        if fits and cpu >= t.cpu_milli:
            total += p * sum(f for f in free if f < per_gpu)
        else:
            total += p * free_sum
    return total


@settings(max_examples=60, deadline=None)
@given(
    free=st.lists(st.sampled_from([0, 60, 190, 530, 770, 1000]), min_size=1, max_size=8),
    cpu=st.integers(0, 40_000),
    share=st.sampled_from([230, 470, 810]),
)
def test_vectorised_fragmentation_matches_definition(free: list[int], cpu: int, share: int) -> None:
    from gpupool.core.placement.fragmentation import FragModel

    mix = WorkloadMix(coverage=1.0)
    for milli, c, models, n in [
        (1000, 8000, (), 9),
        (470, 4000, (), 5),
        (810, 3000, (), 4),
        (0, 12000, (), 2),
        (2000, 16000, (), 3),
        (230, 2000, ("T4",), 2),
        (8000, 32000, (), 1),
    ]:
        mix.observe(WorkerShape(milli, c), n, models)
    snap = mix.snapshot()
    assert snap is not None
    model = FragModel(snap, ("A100", "T4"))
    arr = np.array([free], dtype=np.int64)
    idle = np.array([sum(f == 1000 for f in free)])
    for m, name in enumerate(("A100", "T4")):
        mid = np.array([m])
        got = model.node_frag(arr, np.array([cpu]), idle, mid)[0]
        assert got == pytest.approx(_reference_frag(free, cpu, name, mix))
        after = model.frag_after_share(arr, np.array([cpu - 1000]), idle, mid, share)[0]
        for g, f in enumerate(free):
            if f < share:
                assert np.isinf(after[g])
                continue
            changed = list(free)
            changed[g] -= share
            assert after[g] == pytest.approx(_reference_frag(changed, cpu - 1000, name, mix))
