"""How much of each GPU model's capacity the model-pinned part of the workload wants.

Who uses this: the `gpupool` placement policy, to keep jobs that may run on any GPU off
the models that pinned jobs depend on. A job pinned to `T4|P100` has nowhere else to
go; a job that accepts any model does. If the flexible jobs fill the T4s first, the
pinned ones fail later while other models sit idle (on the openb `gpuspec10` trace this
alone cost about half a point of unallocated GPU).

The measure, per GPU model m:
    demand(m) = sum over pinned request types k that allow m of
                weight_k * gpu_milli_k / (GPUs of the models k allows)
i.e. the expected pinned milli-GPU per arrival that lands on each GPU of m if pinned
jobs spread evenly over what they allow. Models no pinned type wants score 0. Only the
ordering matters to the policy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpupool.core.placement.mix import MixSnapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def pinned_demand_per_node(
    snapshot: MixSnapshot, models: tuple[str, ...], model_id: IntArray, gpu_count: IntArray
) -> FloatArray:
    """The pinned demand on each node's GPU model (see module doc); one value per node.

    `models[model_id[i]]` is node i's GPU model and `gpu_count[i]` its GPU count.
    """
    capacity = np.bincount(model_id, weights=gpu_count, minlength=len(models)).astype(np.float64)
    position = {m: k for k, m in enumerate(models)}
    demand = np.zeros(len(models), dtype=np.float64)
    for t, weight in zip(snapshot.types, snapshot.weight, strict=True):
        if not t.gpu_models or t.gpu_milli == 0:
            continue
        allowed = [position[m] for m in set(t.gpu_models) if m in position]
        gpus = float(capacity[allowed].sum()) if allowed else 0.0
        if gpus > 0:
            demand[allowed] += float(weight) * t.gpu_milli / gpus
    per_node: FloatArray = demand[model_id] if len(models) else np.zeros(len(model_id), dtype=np.float64)
    return per_node


__all__ = ["pinned_demand_per_node"]
