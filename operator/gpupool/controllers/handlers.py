"""kopf handlers: they feed the cache and wake the loop; they never decide anything.

Who calls this: `gpupool.controllers.runner` registers these on a kopf registry. One
`on.event` handler per kind with few objects and few changes - GPUQueues, GPUNodePools,
GPUNodeClaims, nodes, namespaces: five handlers - puts the object in the cache (or removes
it on DELETED), whose wake-up starts the loop's next cycle. GPUJobs and worker pods,
thousands of objects changing several times each, are fed by
`gpupool.cluster.kube.reflector` instead (so are the share reservation pods and the pods
gpupool did not create): kopf's per-event machinery cost the operator more CPU than
everything else together in `gpupool bench e2e`. The handlers are coroutines (a sync
handler costs a hop to kopf's thread pool per event) and write nothing to the objects
they watch (no finalizers, no progress annotations).
"""

from __future__ import annotations

from typing import Any

import kopf

from gpupool.api import GROUP, VERSION
from gpupool.cluster.state.cache import ClusterCache, Kind, object_key, resource_version


def _feed(cache: ClusterCache, kind: Kind, event: kopf.RawEvent, body: kopf.Body) -> None:
    obj = dict(body)
    if event.get("type") == "DELETED":
        cache.delete(kind, object_key(obj), resource_version(obj))
    else:
        cache.upsert(kind, obj)


def register(registry: kopf.OperatorRegistry, cache: ClusterCache) -> None:
    """Register one cache-feeding handler per kopf-fed kind on `registry`."""

    @kopf.on.event(GROUP, VERSION, "gpuqueues", registry=registry)
    async def gpuqueue_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.QUEUE, event, body)

    @kopf.on.event(GROUP, VERSION, "gpunodepools", registry=registry)
    async def gpunodepool_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.POOL, event, body)

    @kopf.on.event(GROUP, VERSION, "gpunodeclaims", registry=registry)
    async def gpunodeclaim_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.CLAIM, event, body)

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def node_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.NODE, event, body)

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.NAMESPACE, event, body)
