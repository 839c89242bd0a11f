"""GPUNodeClaims: asking providers for nodes, following them to Ready, giving idle ones back.

Who calls this: the scheduling loop's "nodes" step (`gpupool.controllers.loop`) calls
`ClaimReconciler.reconcile` once per cycle with the snapshot and the core's
`Decisions.node_requests`. Each step is a few writes through the `ClusterWriter` port and
calls to the pool's `NodeProvider`; every answer goes into the cache at once, so the next
cycle plans with it. A claim moves through its phases like this:

- created for each requested node (name: the pool and a digest of the request, so a create
  retried after a lost answer finds the claim it made and never makes a second one);
  event `NodesRequested` on each job it is for;
- Launching: the provider is asked each cycle until it launches the node (→ Registered);
  capacity-unavailable or provider-quota refusals fail the claim at once, transient errors
  are retried up to `MAX_LAUNCH_ATTEMPTS` times (→ Failed; the pool backs off, see
  `gpupool.cluster.nodes.scaling`, and the planner falls back to the next pool);
- Registered → Ready when the node is Ready; a node that never shows up within
  `REGISTRATION_TIMEOUT_SECONDS` fails the claim;
- Ready: `idleSince` is set when the node stops holding gpupool work and cleared when it
  holds some again; a node idle for its pool's `scaleDownAfter` (not below `minNodes`, not
  nominated for a waiting job; `gpupool.core.autoscale.nodes_to_release`) is cordoned and
  the claim goes to Deleting; a node that disappears (a spot reclaim, a lost machine) ends
  its claim with event `NodeLost`;
- Deleting: the provider releases the node; once it is gone the claim is deleted;
- Failed claims are kept `FAILED_CLAIM_TTL_SECONDS` (they drive the pool's backoff), then
  deleted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from gpupool.api import (
    API_VERSION,
    CapacityType,
    ClaimPhase,
    GPUNodeClaim,
    GPUNodeClaimStatus,
    GPUNodePool,
    Provider,
)
from gpupool.cluster.nodes.providers import NodeLaunch, NodeProvider, ProviderError, ProviderTransient
from gpupool.cluster.nodes.scaling import FAILURE_MEMORY_SECONDS
from gpupool.cluster.state.cache import ClusterCache, Kind
from gpupool.cluster.translate.convert import parse_duration_seconds, parse_timestamp
from gpupool.cluster.translate.snapshot import ClusterSnapshot
from gpupool.cluster.writes.ports import ClusterWriter, ObjectRef, WriteError
from gpupool.core.autoscale import ReleaseCandidate, nodes_to_release
from gpupool.core.models import NodeRequest

log = logging.getLogger("gpupool.claims")

MAX_LAUNCH_ATTEMPTS = 5
REGISTRATION_TIMEOUT_SECONDS = 600.0
FAILED_CLAIM_TTL_SECONDS = FAILURE_MEMORY_SECONDS


def _stamp(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def claim_name(pool: str, spot: bool, jobs: Sequence[str], index: int) -> str:
    """`<pool>-<digest>`: the same request always gets the same names (DNS-1123, <= 63)."""
    digest = hashlib.sha256(f"{pool}|{spot}|{','.join(sorted(jobs))}|{index}".encode()).hexdigest()[:10]
    return f"{pool[:52]}-{digest}"


def claim_manifest(name: str, request: NodeRequest) -> dict[str, object]:
    """The GPUNodeClaim to create for one node of `request`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "GPUNodeClaim",
        "metadata": {"name": name, "labels": {"gpupool.io/pool": request.pool}},
        "spec": {
            "pool": request.pool,
            "capacityType": (CapacityType.SPOT if request.spot else CapacityType.ON_DEMAND).value,
            "jobs": list(request.jobs),
        },
    }


class ClaimReconciler:
    """Drives GPUNodeClaims (see the module docstring); one per operator, owned by the loop."""

    def __init__(self, writer: ClusterWriter, cache: ClusterCache, providers: Mapping[Provider, NodeProvider]) -> None:
        self.writer = writer
        self.cache = cache
        self.providers = providers

    def reconcile(self, snap: ClusterSnapshot, requests: Sequence[NodeRequest], now: float) -> None:
        """Create claims for `requests`, then move every claim one step on."""
        for request in requests:
            self._request(request, snap.claims, snap, now)
        busy = {p.node for job in snap.snapshot.running for p in job.placements}
        for name, claim in sorted(snap.claims.items()):
            try:
                self._advance(name, claim, snap, busy, now)
            except (WriteError, ProviderError) as error:
                log.warning("claim step failed; retrying next cycle", extra={"claim": name, "error": str(error)})
        self._scale_down(snap, busy, now)

    # ------------------------------------------------------------------ requests

    def _request(
        self, request: NodeRequest, claims: Mapping[str, GPUNodeClaim], snap: ClusterSnapshot, now: float
    ) -> None:
        made = 0
        index = 0
        while made < request.nodes:
            name = claim_name(request.pool, request.spot, request.jobs, index)
            index += 1
            if name in claims:
                continue
            try:
                created = self.writer.create_claim(claim_manifest(name, request))
            except WriteError as error:
                log.warning("could not create a node claim", extra={"claim": name, "error": str(error)})
                return
            if created is not None:
                self.cache.upsert(Kind.CLAIM, created)
                # The status subresource ignores status on create: say Launching at once, so
                # `kubectl get gpunodeclaims` never shows a claim without a phase.
                claim = GPUNodeClaim.model_validate(created)
                self._status(name, claim, message=f"asking pool {request.pool} for a node")
            made += 1
        kind = "spot " if request.spot else ""
        for key in request.jobs:
            job = snap.jobs.get(key)
            if job is not None:
                message = f"requested {request.nodes} {kind}node(s) of pool {request.pool} for this job"
                self._event(
                    ObjectRef.of(job.metadata, api_version=API_VERSION, kind="GPUJob"), "NodesRequested", message
                )
        log.info("requested nodes", extra={"pool": request.pool, "nodes": request.nodes, "jobs": list(request.jobs)})

    # ------------------------------------------------------------------ phases

    def _advance(self, name: str, claim: GPUNodeClaim, snap: ClusterSnapshot, busy: set[str], now: float) -> None:
        phase = claim.status.phase
        pool = snap.pools.get(claim.spec.pool)
        node_name = claim.status.node_name or ""
        node = snap.nodes.get(node_name) if node_name else None
        if phase == ClaimPhase.FAILED:
            failed = parse_timestamp(claim.status.failed_at) or now
            if now - failed >= FAILED_CLAIM_TTL_SECONDS:
                self._delete(name)
            return
        if phase == ClaimPhase.DELETING:
            if pool is not None and node_name:
                self._provider(pool.pool).delete(node_name)
            if node_name not in self.cache.view().entries(Kind.NODE):
                self._delete(name)
            return
        if pool is None:
            self._fail(name, claim, None, "PoolNotFound", f"GPUNodePool {claim.spec.pool} does not exist", now)
            return
        if phase == ClaimPhase.LAUNCHING:
            self._launch(name, claim, pool.pool, now)
            return
        if phase == ClaimPhase.REGISTERED:
            learned = node_name or self._provider(pool.pool).node_name(self._launch_of(name, claim, pool.pool, now))
            if learned and not node_name:
                self._status(name, claim, node_name=learned)
                return
            if node is not None and node.ready:
                self._status(
                    name,
                    claim,
                    phase=ClaimPhase.READY,
                    reason="NodeReady",
                    message=f"node {node_name} is Ready",
                    ready_at=_stamp(now),
                    idle_since=_stamp(now),
                )
                self._event(self._ref(claim), "NodeReady", f"node {node_name} of pool {claim.spec.pool} is Ready")
                return
            launched = parse_timestamp(claim.status.launched_at) or now
            if node is None and now - launched > REGISTRATION_TIMEOUT_SECONDS:
                self._fail(
                    name,
                    claim,
                    pool.pool,
                    "NodeNeverRegistered",
                    f"node {learned or name} did not register within {REGISTRATION_TIMEOUT_SECONDS:.0f}s",
                    now,
                )
            return
        # Ready
        if node_name not in self.cache.view().entries(Kind.NODE):
            self._event(
                self._ref(claim),
                "NodeLost",
                f"node {node_name} of pool {claim.spec.pool} is gone (interrupted or deleted)",
                "Warning",
            )
            self._release(name, claim, pool.pool, now)
            self._delete(name)
            return
        holds_work = node_name in busy
        idle_since = claim.status.idle_since
        if holds_work and idle_since is not None:
            self._status(name, claim, idle_since=None)
        elif not holds_work and idle_since is None:
            self._status(name, claim, idle_since=_stamp(now))

    @staticmethod
    def _launch_of(name: str, claim: GPUNodeClaim, pool: GPUNodePool, now: float) -> NodeLaunch:
        requested = parse_timestamp(claim.metadata.get("creationTimestamp")) or now
        spot = claim.spec.capacity_type == CapacityType.SPOT
        return NodeLaunch(name, pool, spot, requested, claim.status.launch_attempts)

    def _launch(self, name: str, claim: GPUNodeClaim, pool: GPUNodePool, now: float) -> None:
        launch = self._launch_of(name, claim, pool, now)
        try:
            provider_id = self._provider(pool).create(launch, now)
        except ProviderTransient as error:
            attempts = claim.status.launch_attempts + 1
            if attempts >= MAX_LAUNCH_ATTEMPTS:
                self._fail(name, claim, pool, error.reason, f"{error} ({attempts} attempts)", now)
            else:
                self._status(
                    name,
                    claim,
                    launch_attempts=attempts,
                    reason=error.reason,
                    message=f"{error}; retrying (attempt {attempts} of {MAX_LAUNCH_ATTEMPTS})",
                )
            return
        except ProviderError as error:
            self._fail(name, claim, pool, error.reason, str(error), now)
            return
        if provider_id is None:
            return
        self._status(
            name,
            claim,
            phase=ClaimPhase.REGISTERED,
            node_name=self._provider(pool).node_name(launch),
            provider_id=provider_id,
            launched_at=_stamp(now),
            reason="Launched",
            message=f"node {name} launched",
            launch_attempts=claim.status.launch_attempts + 1,
        )

    # ------------------------------------------------------------------ scale-down

    def _scale_down(self, snap: ClusterSnapshot, busy: set[str], now: float) -> None:
        pool_nodes: dict[str, int] = {}
        for node in snap.nodes.values():
            pool_nodes[node.pool] = pool_nodes.get(node.pool, 0) + 1
        candidates = []
        by_node: dict[str, tuple[str, GPUNodeClaim]] = {}
        for name, claim in snap.claims.items():
            info = snap.pools.get(claim.spec.pool)
            node_name = claim.status.node_name or ""
            if claim.status.phase != ClaimPhase.READY or info is None or node_name not in snap.nodes:
                continue
            by_node[node_name] = (name, claim)
            candidates.append(
                ReleaseCandidate(
                    node=node_name,
                    pool=claim.spec.pool,
                    idle_since=parse_timestamp(claim.status.idle_since),
                    scale_down_after_seconds=parse_duration_seconds(
                        info.pool.spec.scale_down_after, what="spec.scaleDownAfter"
                    ),
                    pool_nodes=pool_nodes.get(claim.spec.pool, 0),
                    min_nodes=info.pool.spec.min_nodes,
                    nominated=node_name in snap.scaling.nominations or node_name in busy,
                )
            )
        for node_name in nodes_to_release(candidates, now):
            name, claim = by_node[node_name]
            try:
                self.cache.upsert(Kind.NODE, self.writer.cordon_node(node_name))
            except WriteError as error:
                log.warning("could not cordon an idle node", extra={"node": node_name, "error": str(error)})
                continue
            message = f"node {node_name} held no gpupool work for {claim.spec.pool}'s scaleDownAfter; releasing it"
            self._status(name, claim, phase=ClaimPhase.DELETING, reason="Idle", message=message)
            self._event(self._ref(claim), "ScaleDown", message)

    # ------------------------------------------------------------------ writes

    def _provider(self, pool: GPUNodePool) -> NodeProvider:
        return self.providers[pool.spec.provider]

    def _status(self, name: str, claim: GPUNodeClaim, **fields: object) -> None:
        status: GPUNodeClaimStatus = claim.status.model_copy(update=fields)
        try:
            self.cache.upsert(Kind.CLAIM, self.writer.patch_claim_status(name, status))
        except WriteError as error:
            log.warning("could not update a node claim", extra={"claim": name, "error": str(error)})

    def _fail(
        self, name: str, claim: GPUNodeClaim, pool: GPUNodePool | None, reason: str, message: str, now: float
    ) -> None:
        if pool is not None:
            self._release(name, claim, pool, now)
        self._status(name, claim, phase=ClaimPhase.FAILED, reason=reason, message=message, failed_at=_stamp(now))
        self._event(self._ref(claim), "LaunchFailed", f"pool {claim.spec.pool}: {message}", "Warning")
        log.warning("node launch failed", extra={"claim": name, "pool": claim.spec.pool, "reason": reason})

    def _release(self, name: str, claim: GPUNodeClaim, pool: GPUNodePool, now: float) -> None:
        """Let the provider give back what a claim ending without `delete` still holds."""
        try:
            self._provider(pool).release(self._launch_of(name, claim, pool, now))
        except ProviderError as error:
            log.warning("could not release an ended claim", extra={"claim": name, "error": str(error)})

    def _delete(self, name: str) -> None:
        self.writer.delete_claim(name)
        self.cache.delete(Kind.CLAIM, name)

    def _ref(self, claim: GPUNodeClaim) -> ObjectRef:
        return ObjectRef.of(claim.metadata, api_version=API_VERSION, kind="GPUNodeClaim")

    def _event(self, about: ObjectRef, reason: str, message: str, event_type: str = "Normal") -> None:
        try:
            self.writer.emit_event(about, reason, message, event_type)
        except WriteError as error:
            log.info("event not posted", extra={"reason": reason, "error": str(error)})
