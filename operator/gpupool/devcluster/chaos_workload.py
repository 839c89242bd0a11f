"""What a chaos run creates: its world (nodes, pools, queues) and its seeded mixed workload.

Who calls this: `devcluster/chaos.py`, which applies these manifests to a cluster. Pure: the
same arguments give the same objects, so a run is reproduced by its seed.

The world, all of one private GPU model (so it mixes with nothing else on a shared cluster):
`nodes` on-prem kwok nodes of 8 GPUs in one Static pool, a Kwok cloud pool (up to
`CLOUD_MAX_NODES` nodes, a 2 s provisioning delay, released 10 s after they go idle), and
three queues in one cohort: `a` (weight 2, nominal half the on-prem GPUs plus the cloud pool's,
so its cloud-allowed jobs burst once on-prem is full), `b` and `c` (a quarter each; `c` has a
budget, large enough never to stop it, so its spend is derived and reported every cycle).

The workload: single jobs of 1, 2 or 4 GPUs, half-GPU shares, gangs of 2 to 4 workers of 1 or
2 GPUs; a fifth at priority 10 (they preempt priority-0 jobs of their queue when it is full);
a quarter allowed on cloud; a few that fail after 1 s with one retry (two attempts, both
costed); the rest run 2 to 6 s (kwok's `gpupool.io/sim-duration`, `duration_scale` times).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

GROUP_VERSION = "gpupool.io/v1alpha1"
GPUS_PER_NODE = 8
CLOUD_MAX_NODES = 2
HIGH_PRIORITY = 10


@dataclass(frozen=True)
class World:
    """The names of one run's objects, all derived from its GPU model and namespace."""

    model: str
    namespace: str
    nodes: int

    @property
    def prefix(self) -> str:
        return self.model.lower()

    @property
    def node_names(self) -> list[str]:
        return [f"{self.prefix}-n{i}" for i in range(self.nodes)]

    @property
    def onprem_pool(self) -> str:
        return f"{self.prefix}-onprem"

    @property
    def cloud_pool(self) -> str:
        return f"{self.prefix}-cloud"

    def queue(self, team: str) -> str:
        return f"{self.prefix}-{team}"

    @property
    def queues(self) -> list[str]:
        return [self.queue(team) for team in ("a", "b", "c")]

    def pool_manifests(self) -> list[dict[str, Any]]:
        onprem = {
            "class": "OnPrem",
            "gpuModel": self.model,
            "gpusPerNode": GPUS_PER_NODE,
            "nodeSelector": {"gpupool.io/pool": self.onprem_pool},
            "pricePerNodeHour": {"amortised": 16.0},
            "provider": "Static",
        }
        cloud = {
            "class": "Cloud",
            "gpuModel": self.model,
            "gpusPerNode": GPUS_PER_NODE,
            "cpuPerNode": "64",
            "memoryPerNode": "512Gi",
            "nodeSelector": {"gpupool.io/pool": self.cloud_pool},
            "pricePerNodeHour": {"onDemand": 32.0},
            "provider": "Kwok",
            "provisioningDelay": "2s",
            "scaleDownAfter": "10s",
            "maxNodes": CLOUD_MAX_NODES,
        }
        return [_object("GPUNodePool", self.onprem_pool, onprem), _object("GPUNodePool", self.cloud_pool, cloud)]

    def queue_manifests(self) -> list[dict[str, Any]]:
        onprem = self.nodes * GPUS_PER_NODE
        cloud = CLOUD_MAX_NODES * GPUS_PER_NODE
        nominal = {"a": onprem // 2 + cloud, "b": onprem // 4, "c": onprem - onprem // 2 - onprem // 4}
        manifests = []
        for team, gpus in nominal.items():
            spec: dict[str, Any] = {
                "quotas": [{"gpuModel": self.model, "nominal": gpus}],
                "cohort": f"{self.prefix}-cohort",
                "weight": 2 if team == "a" else 1,
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
            }
            if team == "c":
                spec["budget"] = {"amount": 1_000_000, "period": "Daily"}
            manifests.append(_object("GPUQueue", self.queue(team), spec))
        return manifests


@dataclass(frozen=True)
class JobPlan:
    """One GPUJob of the workload."""

    name: str
    team: str
    workers: int
    gpus: float
    priority: int
    cloud: bool
    duration_s: float
    fails: bool

    def manifest(self, world: World) -> dict[str, Any]:
        """The GPUJob in `world`'s namespace and queue."""
        annotations = (
            {"gpupool.io/sim-fail-after": "1s"} if self.fails else {"gpupool.io/sim-duration": f"{self.duration_s:g}s"}
        )
        spec: dict[str, Any] = {
            "queue": world.queue(self.team),
            "workers": self.workers,
            "gpus": self.gpus,
            "priority": self.priority,
            "gpuModels": [world.model],
            "placement": "CloudAllowed" if self.cloud else "OnPremOnly",
            "backoffLimit": 1,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        }
        body = _object("GPUJob", self.name, spec)
        body["metadata"]["namespace"] = world.namespace
        return body


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def workload(count: int, seed: int, duration_scale: float = 1.0) -> list[JobPlan]:
    """`count` jobs drawn from the mix in the module's docstring, reproducibly from `seed`."""
    rng = random.Random(seed)
    jobs = []
    for index in range(count):
        shape = rng.random()
        if shape < 0.45:
            workers, gpus = 1, 1.0
        elif shape < 0.60:
            workers, gpus = 1, float(rng.choice((2, 4)))
        elif shape < 0.70:
            workers, gpus = 1, 0.5
        else:
            workers, gpus = rng.randint(2, 4), float(rng.choice((1, 2)))
        jobs.append(
            JobPlan(
                name=f"job-{index:05d}",
                team=rng.choices(("a", "b", "c"), weights=(2, 1, 1))[0],
                workers=workers,
                gpus=gpus,
                priority=HIGH_PRIORITY if rng.random() < 0.2 else 0,
                cloud=rng.random() < 0.25,
                duration_s=round(rng.uniform(2.0, 6.0) * duration_scale, 1),
                fails=rng.random() < 0.05,
            )
        )
    return jobs


@dataclass(frozen=True)
class KillPoint:
    """When to kill the operator: once `finished` jobs have ended, after `delay_s` more."""

    finished: int
    delay_s: float


def kill_points(kills: int, jobs: int, seed: int) -> list[KillPoint]:
    """`kills` moments spread over a run of `jobs` jobs (5% to 85% of them finished), seeded."""
    rng = random.Random(seed * 7919 + 1)
    fractions = sorted(rng.uniform(0.05, 0.85) for _ in range(kills))
    return [KillPoint(int(fraction * jobs), round(rng.uniform(0.0, 2.0), 2)) for fraction in fractions]
