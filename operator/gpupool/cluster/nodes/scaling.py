"""What the autoscale planner sees of the cluster: offers, capacity in flight, nominations.

Who calls this: `gpupool.cluster.translate.snapshot.build_snapshot` fills the core snapshot's
`offers`, `in_flight` and `nominations` with `scaling_inputs`; the claim reconciler
(`gpupool.cluster.nodes.claims`) and the pool status read the same facts from here, so one rule
decides what is in flight. Everything comes from API objects (GPUNodePools, GPUNodeClaims,
nodes, jobs), so a restarted operator sees exactly what the old one saw.

- A pool is offered when its provider is not Static and it is not a CPU pool (gpusPerNode
  0; the planner plans no CPU-only nodes): one offer per capacity type it has a
  price for, at the price rule of `gpupool.core.accounting` (`PoolPricing.offers`: the
  regular kind at on-demand, else amortised; spot for cloud pools with a spot price; a
  pool with no price at all is offered on its regular kind at 0). The node template is exactly the
  node its provider will make (`pool_node_spec`), converted as any node is.
- A claim is in flight while Launching or Registered and its node is not Ready yet.
- A Ready claim's node is nominated for the claim's jobs that still wait, until the pool's
  `scaleDownAfter` has passed since it became Ready.
- After a failed launch the pool backs off: 30 s, doubling per failure in the last 30
  minutes, at most 10 minutes; while it does, its headroom is 0 and the planner falls back
  to the next cheapest pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace

from gpupool.api import ClaimPhase, GPUNodeClaim, GPUNodePool, Provider
from gpupool.cluster.nodes.kwok_nodes import pool_node_spec
from gpupool.cluster.translate.accounting import pool_pricing
from gpupool.cluster.translate.convert import (
    ConversionError,
    gpu_node_from_k8s,
    parse_duration_seconds,
    parse_timestamp,
)
from gpupool.core.models import GpuNode, InFlightNode, NodeOffer

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 600.0
FAILURE_MEMORY_SECONDS = 1800.0
_NO_LIMIT = 1_000_000
_IN_FLIGHT = frozenset({ClaimPhase.LAUNCHING, ClaimPhase.REGISTERED})


@dataclass(frozen=True, slots=True)
class ScalingInputs:
    """The autoscale planner's view of the cluster (see the module docstring)."""

    offers: tuple[NodeOffer, ...] = ()
    in_flight: tuple[InFlightNode, ...] = ()
    nominations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    in_flight_by_pool: dict[str, int] = field(default_factory=dict)


def pool_template(pool: GPUNodePool, *, spot: bool) -> GpuNode | None:
    """One node of `pool` as the core will see it once it registers (pool taints left out,
    as `NodeConverter` leaves them out of existing nodes); None if it cannot be read, would
    be refused (its nodeSelector names GFD labels of MIG partitions) or takes GPU shares
    only (GFD's replicas labels): the planner places whole-GPU workers on any template, so
    such a pool is not grown."""
    name = str(pool.metadata.get("name", ""))
    try:
        node = gpu_node_from_k8s(pool_node_spec(pool, f"{name}-template", spot=spot).manifest(), [pool])
    except ConversionError:
        return None
    if node is None or node.shares_only:
        return None
    tolerated = {(t.key, t.value, t.effect.value) for t in pool.spec.taints}
    return replace(node, taints=tuple(t for t in node.taints if (t.key, t.value, t.effect) not in tolerated))


def claim_in_flight(claim: GPUNodeClaim, nodes: Mapping[str, GpuNode]) -> bool:
    """True while the claim's node is asked for and not Ready in the cluster yet."""
    if claim.status.phase not in _IN_FLIGHT:
        return False
    node = nodes.get(claim.status.node_name or "")
    return node is None or not node.ready


def backoff_until(claims: Mapping[str, GPUNodeClaim], pool: str, now: float) -> float:
    """Until when `pool` backs off after failed launches (0: it does not)."""
    failures = sorted(
        t
        for c in claims.values()
        if c.spec.pool == pool
        and c.status.phase == ClaimPhase.FAILED
        and (t := parse_timestamp(c.status.failed_at)) is not None
        and now - t < FAILURE_MEMORY_SECONDS
    )
    if not failures:
        return 0.0
    return failures[-1] + min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (len(failures) - 1))


def scaling_inputs(
    pools: Mapping[str, GPUNodePool],
    claims: Mapping[str, GPUNodeClaim],
    nodes: Mapping[str, GpuNode],
    waiting_jobs: Set[str],
    now: float,
) -> ScalingInputs:
    """Offers, capacity in flight and nominations (see the module docstring)."""
    in_flight: list[InFlightNode] = []
    in_flight_by_pool: dict[str, int] = {}
    nominations: dict[str, tuple[str, ...]] = {}
    templates: dict[tuple[str, bool], GpuNode | None] = {}

    def template(pool: GPUNodePool, spot: bool) -> GpuNode | None:
        key = (str(pool.metadata.get("name", "")), spot)
        if key not in templates:
            templates[key] = pool_template(pool, spot=spot)
        return templates[key]

    for name, claim in sorted(claims.items()):
        pool = pools.get(claim.spec.pool)
        if pool is None:
            continue
        spot = claim.spec.capacity_type.value == "Spot"
        if claim_in_flight(claim, nodes):
            node = template(pool, spot)
            if node is not None:
                requested = parse_timestamp(claim.metadata.get("creationTimestamp")) or now
                in_flight.append(InFlightNode(name, claim.spec.pool, node, tuple(claim.spec.jobs), requested))
                in_flight_by_pool[claim.spec.pool] = in_flight_by_pool.get(claim.spec.pool, 0) + 1
            continue
        held_for = tuple(j for j in claim.spec.jobs if j in waiting_jobs)
        ready_at = parse_timestamp(claim.status.ready_at)
        node_name = claim.status.node_name or ""
        window = parse_duration_seconds(pool.spec.scale_down_after, what="spec.scaleDownAfter")
        if held_for and node_name in nodes and (ready_at is None or now - ready_at < window):
            nominations[node_name] = held_for

    offers: list[NodeOffer] = []
    for name, pool in sorted(pools.items()):
        if pool.spec.provider == Provider.STATIC or pool.spec.gpus_per_node == 0:
            continue  # a CPU pool (no GPUs) is never grown: CPU fallback uses the nodes it has
        flying = in_flight_by_pool.get(name, 0)
        have = sum(1 for n in nodes.values() if n.pool == name) + flying
        limit = pool.spec.max_nodes if pool.spec.max_nodes is not None else _NO_LIMIT
        headroom = max(0, min(limit - have, pool.spec.max_nodes_in_flight - flying))
        if backoff_until(claims, name, now) > now:
            headroom = 0
        for spot, price in pool_pricing(pool).offers():
            node = template(pool, spot)
            if node is not None:
                offers.append(NodeOffer(pool=name, node=node, price_per_hour=price, headroom=headroom))
    return ScalingInputs(tuple(offers), tuple(in_flight), nominations, in_flight_by_pool)
