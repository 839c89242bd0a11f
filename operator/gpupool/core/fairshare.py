"""Decayed GPU usage and the fair share that orders queues.

Who calls this: the operator's adapter (`gpupool.cluster.state.usage.DecayedUsage`) calls
`decay_usage` once per cycle to advance each queue's `decayed_usage_gpu_seconds` (kept in
the GPUQueue status, so history survives restarts), and `gpupool.core.schedule` calls
`dominant_share` for the fair share that `gpupool.core.ordering.QueueTurns` compares to
decide which queue goes next when priorities tie.

Usage decays exponentially with a half-life: GPU-seconds consumed one half-life ago count
half as much as GPU-seconds consumed now. A queue that holds `g` GPUs for a long time
converges to `g * half_life / ln 2` decayed GPU-seconds, so dividing by that mean life turns
history into "GPUs held on average lately".
"""

from __future__ import annotations

import math


def mean_life_seconds(half_life_seconds: float) -> float:
    """The exponential's mean life: decayed GPU-seconds per GPU held forever."""
    return half_life_seconds / math.log(2.0)


def decay_usage(
    previous_gpu_seconds: float,
    elapsed_seconds: float,
    gpus_in_use: float,
    half_life_seconds: float,
) -> float:
    """Decayed usage after `elapsed_seconds` during which the queue held `gpus_in_use` GPUs.

    Exact for a constant `gpus_in_use` over the interval: the old value decays by
    2^(-elapsed/half_life) and the new consumption is integrated with the same decay.
    A non-positive half-life means "no memory": only the latest interval counts.
    """
    elapsed = max(0.0, elapsed_seconds)
    gpus = max(0.0, gpus_in_use)
    if half_life_seconds <= 0.0:
        return gpus * elapsed
    factor = math.pow(2.0, -elapsed / half_life_seconds)
    return previous_gpu_seconds * factor + gpus * mean_life_seconds(half_life_seconds) * (1.0 - factor)


def dominant_share(
    decayed_gpu_seconds: float,
    gpus_held: float,
    weight: float,
    cluster_gpus: float,
    half_life_seconds: float,
) -> float:
    """A queue's share of the cluster's GPUs over its weight; lower goes first.

    share = (GPUs held on average lately + GPUs held now) / weight / cluster GPUs.
    "Lately" is the decayed history turned into an average (see the module docstring);
    "now" includes what this cycle has granted so far, so queues take turns within one
    cycle instead of one queue taking everything. GPUs are the only resource the share
    counts, so the dominant share is the GPU share. A queue with weight <= 0 goes last.
    """
    if weight <= 0.0:
        return math.inf
    historic = 0.0
    if half_life_seconds > 0.0:
        historic = max(0.0, decayed_gpu_seconds) / mean_life_seconds(half_life_seconds)
    total = max(1.0, cluster_gpus)
    return (historic + max(0.0, gpus_held)) / weight / total
