"""The node provider port: what creates and removes a pool's nodes.

Who uses this: the claim reconciler (`gpupool.cluster.nodes.claims`) asks a pool's provider for a
node per GPUNodeClaim and gives idle nodes back through it. `gpupool.controllers.runner`
(`Operator`) builds the map of one provider per `GPUNodePool.spec.provider` kind
(`StaticProvider` here, `KwokProvider`, `ClusterAPIProvider`) and hands it to
`ClaimReconciler`, whose `_provider(pool)` picks the pool's. Real providers live in their
own modules (`gpupool.cluster.nodes.kwok_provider`,
`gpupool.cluster.nodes.clusterapi_provider`); tests use the recording fake
`RecordingProvider` in `gpupool.cluster.writes.recording`. The contract, after Karpenter's
cloud provider:

- `create(launch, now)` is idempotent by `launch.name` (the claim's name, which is also the
  node's name): a create retried after a crash never makes a second node. It returns the
  provider's id of the node once it is launched, or None while the launch is still under
  way (call again next cycle). It raises `CapacityUnavailable` (try another pool),
  `ProviderQuotaExceeded` (the account's limit; try another pool) or `ProviderTransient`
  (retry later with backoff).
- `node_name(launch)` names the Node the launch made once it is known (None until then:
  a Cluster API Machine learns its node only when the node registers).
- `delete(node)` releases a node; a node already gone counts as released.
- `release(launch)` gives back what a claim that ended without `delete` still holds (a
  failed launch, a lost node): a late node, a counted replica. Idempotent.
- `list(pool)` names the nodes the provider holds for a pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gpupool.api import GPUNodePool


class ProviderError(Exception):
    """A provider refused or failed; the subclass says what the reconciler should do."""

    reason = "ProviderError"


class CapacityUnavailable(ProviderError):
    """The provider has no capacity of this kind now: fall back to the next pool."""

    reason = "CapacityUnavailable"


class ProviderQuotaExceeded(ProviderError):
    """The account's quota for this kind of node is used up: fall back to the next pool."""

    reason = "ProviderQuotaExceeded"


class ProviderTransient(ProviderError):
    """A failure worth retrying (timeouts, throttling, 5xx)."""

    reason = "ProviderTransient"


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    """One node to launch: `name` is the claim's (and the node's) name, the request id."""

    name: str
    pool: GPUNodePool
    spot: bool
    requested_at: float
    attempt: int = 0


class NodeProvider(Protocol):
    """Creates, deletes and lists the nodes of the pools it serves (see the module docstring)."""

    def create(self, launch: NodeLaunch, now: float) -> str | None:
        """Launch the node (idempotent by name); its provider id, or None while under way."""

    def node_name(self, launch: NodeLaunch) -> str | None:
        """The Node a launched claim became, or None while it is not known yet."""

    def delete(self, node: str) -> None:
        """Release a node; one already gone counts as released."""

    def release(self, launch: NodeLaunch) -> None:
        """Give back what an ended claim still holds (idempotent)."""

    def list(self, pool: str) -> list[str]:
        """Names of the nodes the provider holds for `pool`."""


class StaticProvider:
    """On-prem nodes that exist: never created or deleted (the planner never asks it)."""

    def create(self, launch: NodeLaunch, now: float) -> str | None:
        pool = launch.pool.metadata.get("name", "")
        raise CapacityUnavailable(f"pool {pool} is Static: gpupool never creates its nodes")

    def node_name(self, launch: NodeLaunch) -> str | None:
        return None

    def delete(self, node: str) -> None:
        raise ProviderError(f"node {node} belongs to a Static pool: gpupool never deletes it")

    def release(self, launch: NodeLaunch) -> None:
        return

    def list(self, pool: str) -> list[str]:
        return []
