"""kopf handlers: they feed the cache and wake the loop; they never decide anything.

Who calls this: `gpupool.controllers.runner` registers these on a kopf registry. One
`on.event` handler per watched kind puts the object in the cache (or removes it on
DELETED). The handlers are coroutines: storing an object is quick, and a sync handler
would cost a hop to kopf's thread pool for every watch event. Event handlers write
nothing to the objects they watch (no finalizers, no
progress annotations), so watching costs no extra API writes per object.
"""

from __future__ import annotations

from typing import Any

import kopf

from gpupool.api import GROUP, VERSION
from gpupool.cluster.cache import ClusterCache, Kind, object_key
from gpupool.cluster.pods import LABEL_JOB


def _feed(cache: ClusterCache, kind: Kind, event: kopf.RawEvent, body: kopf.Body) -> None:
    obj = dict(body)
    if event.get("type") == "DELETED":
        cache.delete(kind, object_key(obj))
    else:
        cache.upsert(kind, obj)


def register(registry: kopf.OperatorRegistry, cache: ClusterCache) -> None:
    """Register one cache-feeding handler per kind on `registry`."""

    @kopf.on.event(GROUP, VERSION, "gpujobs", registry=registry)
    async def gpujob_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.JOB, event, body)

    @kopf.on.event(GROUP, VERSION, "gpuqueues", registry=registry)
    async def gpuqueue_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.QUEUE, event, body)

    @kopf.on.event(GROUP, VERSION, "gpunodepools", registry=registry)
    async def gpunodepool_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.POOL, event, body)

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def node_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.NODE, event, body)

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.NAMESPACE, event, body)

    @kopf.on.event("", "v1", "pods", labels={LABEL_JOB: kopf.PRESENT}, registry=registry)
    async def pod_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        _feed(cache, Kind.POD, event, body)
