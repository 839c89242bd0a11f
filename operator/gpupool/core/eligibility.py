"""Which nodes a pending job may use: taints, pool policy and static fit.

Who calls this: `gpupool.core.schedule` asks a `NodeEligibility` (built once per cycle
from the snapshot's nodes) for boolean masks over the nodes, which it hands to the
placement engine as `allowed=`. Masks are cached per distinct input, so thousands of jobs
with the same tolerations and policy cost one computation.

Pool policy, widening from cheapest to dearest ("on-prem before cloud"):

* stage 0: on-prem nodes — every job may use them;
* stage 1: adds non-spot cloud nodes — the job's policy is `CloudAllowed` or
  `SpotAllowed` and its queue has `allow_cloud`;
* stage 2: adds spot cloud nodes — the job's policy is `SpotAllowed` and its queue has
  `allow_cloud` and `allow_spot`.

Only `NoSchedule` and `NoExecute` taints keep a job off a node (`PreferNoSchedule` is a
preference the core ignores). A job with whole-GPU workers never uses a `shares_only` node
(time-slicing or MPS replicas: see `GpuNode`); its stages leave such nodes out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gpupool.core.models import (
    MILLI_PER_GPU,
    GpuNode,
    Job,
    PlacementPolicy,
    PoolClass,
    Queue,
    Taint,
    Toleration,
    WorkerShape,
)

Mask = npt.NDArray[np.bool_]

_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_MANY = np.int64(1 << 40)


class NodeEligibility:
    """Static facts about the cycle's nodes, as numpy arrays, and cached masks over them."""

    def __init__(self, nodes: Sequence[GpuNode]) -> None:
        self.nodes = tuple(nodes)
        n = len(self.nodes)
        self.on_prem: Mask = np.array([x.pool_class == PoolClass.ON_PREM for x in nodes], dtype=bool)
        spot = np.array([x.spot for x in nodes], dtype=bool)
        cloud = ~self.on_prem
        self.cloud_on_demand: Mask = cloud & ~spot
        self.cloud_spot: Mask = cloud & spot
        self.ready: Mask = np.array([x.ready for x in nodes], dtype=bool)
        self.takes_whole_gpus: Mask = np.array([not x.shares_only for x in nodes], dtype=bool)
        self.gpus = np.array([x.gpus for x in nodes], dtype=np.int64)
        # A node that cannot give a share its GPU hosts none (`GpuNode.accepts_shares`).
        self.share_gpus = np.array([x.gpus if x.accepts_shares else 0 for x in nodes], dtype=np.int64)
        self.cpu = np.array([max(0, x.cpu_milli - x.reserved_cpu_milli) for x in nodes], dtype=np.int64)
        self.memory = np.array([max(0, x.memory_bytes - x.reserved_memory_bytes) for x in nodes], dtype=np.int64)
        # Like GPUs, pod slots foreign pods hold count as passing (tenant pods finish);
        # their cpu and memory do not (DaemonSets hold theirs as long as the node lives).
        self.pods = np.array([x.max_pods for x in nodes], dtype=np.int64)
        self.models = np.array([x.gpu_model for x in nodes], dtype=object)
        self._model_masks: dict[tuple[str, ...], Mask] = {}
        # nodes grouped by their blocking taints, so tolerations are checked per group
        groups: dict[tuple[tuple[str, str, str], ...], list[int]] = {}
        for i, node in enumerate(nodes):
            blocking = tuple(sorted((t.key, t.value, t.effect) for t in node.taints if t.effect in _BLOCKING_EFFECTS))
            groups.setdefault(blocking, []).append(i)
        self._taint_groups = [(k, np.array(v, dtype=np.int64)) for k, v in sorted(groups.items())]
        self._toleration_masks: dict[tuple[Toleration, ...], Mask] = {}
        self._stage_masks: dict[tuple[tuple[Toleration, ...], int, bool], Mask] = {}
        self._all: Mask = np.ones(n, dtype=bool)

    def model_mask(self, models: tuple[str, ...]) -> Mask:
        """Nodes whose GPU model is one of `models` (every node when `models` is empty)."""
        if not models:
            return self._all
        mask = self._model_masks.get(models)
        if mask is None:
            mask = np.isin(self.models, np.array(models, dtype=object))
            self._model_masks[models] = mask
        return mask

    def toleration_mask(self, tolerations: tuple[Toleration, ...]) -> Mask:
        """Nodes none of whose blocking taints the tolerations leave untolerated."""
        mask = self._toleration_masks.get(tolerations)
        if mask is not None:
            return mask
        mask = np.zeros(len(self.nodes), dtype=bool)
        for blocking, members in self._taint_groups:
            ok = all(
                any(t.tolerates(Taint(key, value, effect)) for t in tolerations) for key, value, effect in blocking
            )
            if ok:
                mask[members] = True
        self._toleration_masks[tolerations] = mask
        return mask

    def stages(self, job: Job, queue: Queue) -> list[Mask]:
        """Cumulative pool masks to try in order (on-prem, then + cloud, then + spot),
        already narrowed by taints and readiness (and, for whole-GPU workers, to nodes that
        are not `shares_only`); stages that add no node are left out."""
        top = 0
        if queue.allow_cloud and job.placement_policy in (
            PlacementPolicy.CLOUD_ALLOWED,
            PlacementPolicy.SPOT_ALLOWED,
        ):
            top = 1
            if queue.allow_spot and job.placement_policy == PlacementPolicy.SPOT_ALLOWED:
                top = 2
        out: list[Mask] = []
        previous: Mask | None = None
        whole = job.shape.whole_gpus > 0
        for stage in range(top + 1):
            mask = self._stage_mask(job.tolerations, stage, whole)
            if previous is not None and np.array_equal(mask, previous):
                continue
            out.append(mask)
            previous = mask
        return out

    def _stage_mask(self, tolerations: tuple[Toleration, ...], stage: int, whole: bool) -> Mask:
        key = (tolerations, stage, whole)
        mask = self._stage_masks.get(key)
        if mask is None:
            pools = self.on_prem.copy()
            if stage >= 1:
                pools |= self.cloud_on_demand
            if stage >= 2:
                pools |= self.cloud_spot
            mask = pools & self.ready & self.toleration_mask(tolerations)
            if whole:
                mask = mask & self.takes_whole_gpus
            self._stage_masks[key] = mask
        return mask

    def workers_per_node(self, shape: WorkerShape) -> npt.NDArray[np.int64]:
        """How many workers of `shape` each node could host if it were empty."""
        if shape.gpu_milli <= 0:
            by_gpu = np.full(len(self.nodes), _MANY, dtype=np.int64)
        elif shape.gpu_milli < MILLI_PER_GPU:
            by_gpu = self.share_gpus * (MILLI_PER_GPU // shape.gpu_milli)
        else:
            by_gpu = np.where(self.takes_whole_gpus, self.gpus // max(1, shape.gpu_milli // MILLI_PER_GPU), 0)
        by_cpu = self.cpu // shape.cpu_milli if shape.cpu_milli > 0 else np.full_like(by_gpu, _MANY)
        by_mem = self.memory // shape.memory_bytes if shape.memory_bytes > 0 else np.full_like(by_gpu, _MANY)
        result: npt.NDArray[np.int64] = np.minimum(np.minimum(np.minimum(by_gpu, by_cpu), by_mem), self.pods)
        return result

    def could_ever_fit(self, job: Job, allowed: Mask) -> bool:
        """True when the job would fit on the allowed nodes were they all empty."""
        mask = allowed & self.model_mask(job.gpu_models)
        if not mask.any():
            return False
        return int(self.workers_per_node(job.shape)[mask].sum()) >= job.workers
