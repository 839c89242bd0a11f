"""The arrival sequence of the FGD paper's protocol: shuffle, then tune to a target load.

Who uses this: the placement and bound benches, once per seed (so both see the same
sequence for a seed). It mirrors the paper's simulator
(`hkust-adsl/kubernetes-scheduler-simulator`): the trace pods are shuffled; then, if
their requested GPU is below `ratio` x cluster GPU capacity, random copies of trace pods
(named `<original>-tuned-<k>`) are appended until the next copy would cross the target;
if it is above, random pods are dropped until it is not. All randomness comes from the
one generator, so a seed fixes the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpupool.bench.openb import TracePod
from gpupool.core.models import MILLI_PER_GPU


@dataclass(frozen=True, slots=True)
class Arrival:
    """One pod arrival: the trace pod and the name it arrives under."""

    name: str
    pod: TracePod


def arrival_sequence(
    pods: Sequence[TracePod], capacity_milli: int, ratio: float, rng: np.random.Generator
) -> list[Arrival]:
    """Shuffled trace pods tuned to `ratio` x `capacity_milli` requested milli-GPU.

    `ratio` <= 0 keeps the shuffled trace as it is.
    """
    # Like the simulator: sort by name first, so the file's row order does not matter.
    pods = sorted(pods, key=lambda p: p.name)
    order = rng.permutation(len(pods))
    arrivals = [Arrival(pods[i].name, pods[i]) for i in order]
    if ratio <= 0 or not pods:
        return arrivals
    target = ratio * capacity_milli
    total = sum(p.requested_milli for p in pods)
    if total > target:
        while total > target and arrivals:
            dropped = arrivals.pop(int(rng.integers(len(arrivals))))
            total -= dropped.pod.requested_milli
        return arrivals
    k = 0
    while True:
        pod = pods[int(rng.integers(len(pods)))]
        # The paper's simulator stops at the first sampled copy whose *per-GPU* request
        # would cross the target (its multi-GPU copies may overshoot by a few GPUs); we
        # keep that quirk so the arrival counts match.
        if total + min(pod.requested_milli, MILLI_PER_GPU) > target:
            break
        total += pod.requested_milli
        arrivals.append(Arrival(f"{pod.name}-tuned-{k}", pod))
        k += 1
    return arrivals
