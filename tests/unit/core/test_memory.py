"""What `schedule` carries from cycle to cycle: `PlacementMemory`, passed in and returned.

Two sequences of cycles are simulated on the same small cluster: each cycle new jobs of
mixed shares and whole GPUs arrive, admissions become running jobs and run two cycles.
Each sequence keeps its own memory (`Decisions.memory` passed to its next cycle).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from builders import make_job, make_node, make_queue, make_snapshot
from gpupool.core import Decisions, Job, PlacementMemory, schedule

NODES = [make_node("n1", gpus=4), make_node("n2", gpus=4), make_node("n3", gpus=2), make_node("n4", gpus=8)]
QUEUE = make_queue()
CYCLES = 6


def arrivals(seed: int, sizes: list[float], per_cycle: int = 12) -> list[list[Job]]:
    """`per_cycle` new jobs per cycle, GPUs per job drawn from `sizes` with `seed`."""
    rng = np.random.default_rng(seed)
    return [
        [
            make_job(f"c{c}-{i}", gpus=sizes[int(rng.integers(len(sizes)))], submitted_at=float(c))
            for i in range(per_cycle)
        ]
        for c in range(CYCLES)
    ]


# Chosen so that what a memory holds changes decisions (see the last test).
A = arrivals(25, [0.25, 0.65, 0.32, 0.47, 1, 2])
B = arrivals(125, [0.5, 1, 2, 0.8, 0.1])


class Sequence:
    """One cluster's cycles: arrivals join the pending jobs, admissions run two cycles."""

    def __init__(self, batches: list[list[Job]]) -> None:
        self.batches = batches
        self.cycle = 0
        self.pending: list[Job] = []
        self.running: list[Job] = []
        self.decisions: list[Decisions] = []

    def step(self, memory: PlacementMemory | None) -> Decisions:
        now = 100.0 * self.cycle
        self.running = [j for j in self.running if (j.admitted_at or 0.0) > now - 200.0]
        self.pending += self.batches[self.cycle]
        decisions = schedule(
            make_snapshot(NODES, [QUEUE], self.pending, self.running, now=now, seed=self.cycle), memory=memory
        )
        admitted = {a.job_key: a for a in decisions.admissions}
        self.running += [
            dataclasses.replace(j, placements=admitted[j.key].placements, admitted_at=now)
            for j in self.pending
            if j.key in admitted
        ]
        self.pending = [j for j in self.pending if j.key not in admitted]
        self.decisions.append(decisions)
        self.cycle += 1
        return decisions


def run_alone(batches: list[list[Job]], *, carry: bool = True) -> list[Decisions]:
    """The decisions of one sequence run by itself (`carry=False`: a fresh memory each cycle)."""
    seq = Sequence(batches)
    memory: PlacementMemory | None = None
    for _ in batches:
        decisions = seq.step(memory)
        memory = decisions.memory if carry else None
    return seq.decisions


def test_interleaved_sequences_decide_as_when_run_alone() -> None:
    a, b = Sequence(A), Sequence(B)
    memory_a: PlacementMemory | None = None
    memory_b: PlacementMemory | None = None
    for _ in range(CYCLES):
        memory_a = a.step(memory_a).memory
        memory_b = b.step(memory_b).memory
    assert a.decisions == run_alone(A)
    assert b.decisions == run_alone(B)


def test_what_a_memory_holds_changes_decisions() -> None:
    # So the test above would notice if the two sequences shared what they learn.
    assert run_alone(A) != run_alone(A, carry=False)
    a, b = Sequence(A), Sequence(B)
    shared: PlacementMemory | None = None
    for _ in range(CYCLES):
        shared = a.step(shared).memory
        shared = b.step(shared).memory
    assert a.decisions != run_alone(A)
    assert b.decisions != run_alone(B)


def test_each_job_is_counted_once_and_the_given_memory_never_changes() -> None:
    first = [make_job(f"j{i}", gpus=0.5) for i in range(3)]
    one = schedule(make_snapshot(NODES, [QUEUE], first))
    assert one.memory.mix.total == 3 and one.memory.seen_jobs == {"j0", "j1", "j2"}
    placed = {a.job_key: a.placements for a in one.admissions}
    running = [dataclasses.replace(j, placements=placed[j.key], admitted_at=0.0) for j in first]
    second = make_snapshot(NODES, [QUEUE], [make_job("j3", gpus=2)], running, now=100.0)
    two = schedule(second, memory=one.memory)
    assert two.memory.mix.total == 4  # j0-j2, now running, were counted in the first cycle
    assert one.memory.mix.total == 3 and one.memory.seen_jobs == {"j0", "j1", "j2"}
    assert schedule(second, memory=one.memory) == two
    third = make_snapshot(NODES, [QUEUE], [make_job("j4", gpus=1)], now=200.0)
    assert schedule(third, memory=two.memory).memory.mix.total == 5  # j0-j3 finished, still learned
    assert schedule(third).memory.mix.total == 1  # a fresh memory learns this snapshot alone
