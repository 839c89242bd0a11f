"""Capacity held by pods gpupool does not manage (`GpuNode.reserved_*`) is never promised again,
and no node gets more pods than its pod limit (`GpuNode.max_pods`)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import GIB, make_job, make_node, make_queue, make_snapshot
from gpupool.core import GpuNode, Job, schedule
from gpupool.core.models import MILLI_PER_GPU
from gpupool.core.placement.state import PlacementState


@st.composite
def foreign_nodes(draw: st.DrawFn) -> tuple[GpuNode, ...]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        gpus = draw(st.sampled_from([1, 4, 8]))
        cpu = draw(st.sampled_from([16_000, 64_000]))
        memory = draw(st.sampled_from([64, 512])) * GIB
        reserved = draw(st.integers(0, gpus + 2))
        # Those of them the node reports (its device report); the rest by the fallback rule.
        reported = draw(st.lists(st.integers(0, gpus - 1), unique=True, max_size=min(gpus, reserved)))
        out.append(
            make_node(
                f"n{i}",
                gpus=gpus,
                cpu=cpu,
                memory=memory,
                reserved_gpus=reserved,
                reserved_gpu_indices=tuple(sorted(reported)),
                reserved_cpu=draw(st.integers(0, cpu + 4_000)),
                reserved_memory=draw(st.integers(0, 600)) * GIB,
                max_pods=(max_pods := draw(st.integers(0, 6))),
                reserved_pods=draw(st.integers(0, max_pods + 1)),
            )
        )
    return tuple(out)


@st.composite
def pending_jobs(draw: st.DrawFn) -> list[Job]:
    return [
        make_job(
            f"ns/j{k}",
            gpu_milli=draw(st.sampled_from([250, 500, 1000, 2000, 4000, 8000])),
            cpu=draw(st.sampled_from([0, 2_000, 8_000])),
            memory=draw(st.sampled_from([0, 32])) * GIB,
            workers=draw(st.sampled_from([1, 1, 2])),
            submitted_at=float(k),
        )
        for k in range(draw(st.integers(1, 12)))
    ]


@settings(max_examples=200)
@given(foreign_nodes(), pending_jobs())
def test_no_admission_exceeds_what_foreign_pods_leave(nodes: tuple[GpuNode, ...], pending: list[Job]) -> None:
    snapshot = make_snapshot(nodes=nodes, queues=(make_queue(gpus=1000),), pending=pending)
    decisions = schedule(snapshot)
    shapes = {job.key: job.shape for job in pending}
    gpu: dict[str, int] = defaultdict(int)
    cpu: dict[str, int] = defaultdict(int)
    memory: dict[str, int] = defaultdict(int)
    pods: dict[str, int] = defaultdict(int)
    for admission in decisions.admissions:
        shape = shapes[admission.job_key]
        for worker in admission.placements:
            gpu[worker.node] += sum(s.milli for s in worker.gpus)
            held = next(n for n in nodes if n.name == worker.node).reserved_gpu_indices
            assert not {s.index for s in worker.gpus} & set(held), "a GPU the node reports a foreign pod holds"
            cpu[worker.node] += shape.cpu_milli
            memory[worker.node] += shape.memory_bytes
            pods[worker.node] += 1
    for node in nodes:
        assert gpu[node.name] <= max(0, node.gpus - node.reserved_gpus) * MILLI_PER_GPU
        assert cpu[node.name] <= max(0, node.cpu_milli - node.reserved_cpu_milli)
        assert memory[node.name] <= max(0, node.memory_bytes - node.reserved_memory_bytes)
        assert pods[node.name] <= max(0, node.max_pods - node.reserved_pods)


def test_a_node_whose_gpus_a_foreign_pod_holds_is_left_alone() -> None:
    nodes = (make_node("full", gpus=8, reserved_gpus=8), make_node("free", gpus=8))
    snapshot = make_snapshot(nodes=nodes, queues=(make_queue(gpus=16),), pending=[make_job("ns/a", gpus=8)])
    (admission,) = schedule(snapshot).admissions
    assert {w.node for w in admission.placements} == {"free"}


def test_a_job_kept_waiting_by_foreign_pods_is_told_so() -> None:
    nodes = (make_node("full", gpus=8, reserved_gpus=8), make_node("busy", gpus=8, cpu=64_000, reserved_cpu=60_000))
    snapshot = make_snapshot(nodes=nodes, queues=(make_queue(gpus=16),), pending=[make_job("ns/a", gpus=8, cpu=8_000)])
    (waiting,) = schedule(snapshot).waiting
    assert "pods gpupool does not manage hold 8 GPUs on full, most CPU, memory or pod slots of busy" in waiting.message


def test_a_gang_spreads_when_a_node_runs_out_of_pod_slots() -> None:
    nodes = (make_node("small", gpus=8, max_pods=3, reserved_pods=1), make_node("other", gpus=8))
    snapshot = make_snapshot(nodes=nodes, queues=(make_queue(gpus=16),), pending=[make_job("ns/a", gpus=1, workers=4)])
    (admission,) = schedule(snapshot).admissions
    per_node = defaultdict(int)
    for worker in admission.placements:
        per_node[worker.node] += 1
    assert per_node["small"] <= 2
    assert sum(per_node.values()) == 4


def test_a_node_whose_pod_slots_are_all_taken_is_left_alone_and_named() -> None:
    nodes = (make_node("crowded", gpus=8, max_pods=110, reserved_pods=110),)
    snapshot = make_snapshot(nodes=nodes, queues=(make_queue(gpus=16),), pending=[make_job("ns/a", gpus=1)])
    (waiting,) = schedule(snapshot).waiting
    assert "most CPU, memory or pod slots of crowded" in waiting.message


@pytest.mark.parametrize(
    ("reserved", "reported", "running", "free"),
    [
        pytest.param(2, (), (), [0, 0, 1, 1], id="kwok: the first idle GPUs (the fallback)"),
        pytest.param(2, (2, 3), (), [1, 1, 0, 0], id="reported: exactly those"),
        pytest.param(2, (3,), (), [0, 1, 1, 0], id="one reported, one by the fallback"),
        pytest.param(1, (1,), (0,), [0, 0, 1, 1], id="beside a running job"),
        pytest.param(1, (), (0,), [0, 0, 1, 1], id="fallback skips a running job's GPU"),
    ],
)
def test_foreign_gpus_are_held_where_the_node_reports_them(
    reserved: int, reported: tuple[int, ...], running: tuple[int, ...], free: list[int]
) -> None:
    node = make_node("n1", gpus=4, reserved_gpus=reserved, reserved_gpu_indices=reported)
    jobs = [make_job("ns/r", gpus=len(running), on=("n1",), first_gpu=running[0])] if running else []
    state = PlacementState.build([node], jobs)
    assert [int(m) // MILLI_PER_GPU for m in state.gpu_free[0]] == free
