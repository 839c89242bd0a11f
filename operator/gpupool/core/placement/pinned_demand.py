"""How much of each GPU model's capacity the model-pinned part of the workload will want.

Who uses this: the `gpupool` scoring policy (through `MixTables.pinned` in `memory.py`),
to keep jobs off the GPU models that model-pinned jobs depend on. A job pinned to
`T4|P100` has nowhere else to go; a job that accepts any model does. If flexible jobs
fill the T4s first, the pinned ones fail later while other models sit idle. On a
synthetic openb variant with half the GPU jobs pinned to two of four models (`spec50` in
docs/benchmarks.md), keeping jobs off the models pinned jobs still need halved
unallocated GPU at arrived = 100% (16.7% with FGD, 8.8%).

The measures, per GPU model m:
    demand(m) = sum over pinned model sets S that contain m of
                pinned_milli(S) / (GPUs of the models in S)
where pinned_milli(S) is the milli-GPU per observed worker pinned to exactly S
(`MixSnapshot.pinned_milli`, which keeps the rare pinned types the mix's coverage cut
drops: with many model pairs, most pinned types are rare). That is the pinned milli-GPU
per arrival that lands on each GPU of m if pinned jobs spread evenly over what they allow.
    ratio(m) = demand(m) / (milli-GPU per arrival / all GPUs of the cluster)
compares it with the average: at ratio 1 the pinned jobs alone fill m by the time the
arrived work equals the cluster's capacity. Models no pinned job wants score 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpupool.core.placement.mix import MixSnapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def pinned_demand_per_model(snapshot: MixSnapshot, models: tuple[str, ...], capacity: FloatArray) -> FloatArray:
    """demand(m) of each of `models` (see module doc); `capacity[m]` is the GPUs of model m."""
    position = {m: k for k, m in enumerate(models)}
    demand = np.zeros(len(models), dtype=np.float64)
    for model_set, milli in snapshot.pinned_milli:
        allowed = [position[m] for m in set(model_set) if m in position]
        gpus = float(capacity[allowed].sum()) if allowed else 0.0
        if gpus > 0:
            demand[allowed] += milli / gpus
    return demand


def pinned_demand_per_node(
    snapshot: MixSnapshot, models: tuple[str, ...], model_id: IntArray, gpu_count: IntArray
) -> FloatArray:
    """demand(m) of each node's GPU model (see module doc); one value per node.

    `models[model_id[i]]` is node i's GPU model and `gpu_count[i]` its GPU count.
    """
    demand = pinned_demand_per_model(snapshot, models, gpus_per_model(model_id, gpu_count, len(models)))
    per_node: FloatArray = demand[model_id] if len(models) else np.zeros(len(model_id), dtype=np.float64)
    return per_node


def gpus_per_model(model_id: IntArray, gpu_count: IntArray, models: int) -> FloatArray:
    """GPUs of each of the `models` GPU models, from the per-node model ids and GPU counts."""
    capacity: FloatArray = np.bincount(model_id, weights=gpu_count, minlength=models).astype(np.float64)
    return capacity


def pinned_ratio(demand: FloatArray, snapshot: MixSnapshot, gpu_count: IntArray) -> FloatArray:
    """ratio(m) for each `demand(m)` value (see module doc), per model or per node alike.

    `gpu_count` holds the cluster's per-node GPU counts (only their sum matters).
    """
    average = snapshot.milli_per_worker / max(float(gpu_count.sum()), 1.0)
    if average <= 0:
        return np.zeros_like(demand)
    ratio: FloatArray = demand / average
    return ratio


__all__ = ["gpus_per_model", "pinned_demand_per_model", "pinned_demand_per_node", "pinned_ratio"]
