"""The governance scenario several integration tests run on the session cluster.

Who uses this: `tests/integration/test_governance_metrics.py` (checks each family's values)
and `tests/integration/test_dashboards.py` (runs every dashboard query). Two teams in a
cohort on three 4-GPU kwok nodes: team-a runs a gang and a job holding a GPU doing nothing,
under a budget and an idle rule of 20 s; team-b runs two half-GPU shares and a
low-priority job that an urgent one of the same queue preempts. `with_cloud=True` adds a
team-c queue whose 8-GPU job no on-prem node fits, so it bursts to a new spot node of a
Kwok cloud pool. The simulated node agent must run (the `agent` fixture) for utilisation.

    gov = run_governance_scenario(Scenario(kubeconfig, core_api, namespace))
    gov.world.wait_phase("idler", ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kube_helpers import Scenario, job_manifest, wait_for

JOBS = ("gang", "idler", "share-1", "share-2", "low")


@dataclass(frozen=True)
class Governance:
    """What the scenario made: its world, nodes, pools and queues."""

    world: Scenario
    nodes: list[str]
    pool: str
    team_a: str
    team_b: str
    cloud_pool: str | None = None
    team_c: str | None = None

    @property
    def queues(self) -> list[str]:
        return [q for q in (self.team_a, self.team_b, self.team_c) if q]

    @property
    def pools(self) -> list[str]:
        return [p for p in (self.pool, self.cloud_pool) if p]


def sim_job(world: Scenario, name: str, queue: str, gpus: float, util: str, **spec: Any) -> dict[str, Any]:
    """A 10-minute job of the scenario's model whose simulated GPUs run at `util` (0..1)."""
    annotations = {"gpupool.io/sim-gpu-util": util}
    return job_manifest(
        name, world.namespace, queue, gpus=gpus, duration="10m", models=[world.model], annotations=annotations, **spec
    )


def run_governance_scenario(world: Scenario, *, with_cloud: bool = False) -> Governance:
    """Set the scenario up and return once every job runs and `urgent` has preempted `low`."""
    nodes = world.nodes(3, gpus=4)
    pool = world.pool(gpus_per_node=4, amortised_price=8.0)  # 2 per GPU-hour
    team_a = world.queue(
        "team-a",
        nominal=6,
        cohort="org",
        idle={"threshold": 0.05, "after": "20s", "action": "Warn"},
        budget={"amount": 1000, "currency": "USD", "period": "Monthly"},
    )
    team_b = world.queue("team-b", nominal=6, cohort="org", borrowing_limit=0)  # must preempt, cannot borrow
    world.apply(
        sim_job(world, "gang", team_a, 2, "0.8", workers=2),
        sim_job(world, "idler", team_a, 1, "0"),
        sim_job(world, "share-1", team_b, 0.5, "0.6"),
        sim_job(world, "share-2", team_b, 0.5, "0.6"),
        sim_job(world, "low", team_b, 4, "0.5", priority=0),
    )
    cloud_pool = team_c = None
    if with_cloud:
        # 6 s to provision: Prometheus (2 s scrapes) must see the pool's histogram at 0 before
        # the node is Ready, or increase() finds one sample and the provisioning panel no data.
        cloud_pool = world.cloud_pool("spot", on_demand=32.0, spot=10.0, delay="6s", scale_down_after="10m")
        team_c = world.queue("team-c", nominal=8, allowCloud=True, allowSpot=True)
        world.apply(sim_job(world, "burst", team_c, 8, "0.7", placement="SpotAllowed"))
    for name in JOBS:
        world.wait_phase(name, "Running", 60)
    world.apply(sim_job(world, "urgent", team_b, 2, "0.9", priority=10))
    world.wait_phase("urgent", "Running", 90)
    if with_cloud:
        world.wait_phase("burst", "Running", 90)
    return Governance(world, nodes, pool, team_a, team_b, cloud_pool, team_c)


def wait_until_idle_flagged(world: Scenario, job: str = "idler") -> None:
    """Wait for the operator to flag `job` GPUIdle (idle.after plus the agent's window)."""
    wait_for(
        lambda: any(c["type"] == "GPUIdle" and c["status"] == "True" for c in world.status(job)["conditions"]),
        90,
        f"GPUIdle on {job}",
    )
