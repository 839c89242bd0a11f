"""The operator's watch-fed, typed view of the cluster.

Who uses this: kopf event handlers (`gpupool.controllers.handlers`), the reflectors of
GPUJobs and pods (`gpupool.cluster.kube.reflector`) and the start-up and periodic re-lists
(`gpupool.controllers.runner`) put every object they see here; the
scheduling loop (`gpupool.controllers.loop`) takes a `view()` at each step of its cycle,
and the applier (`gpupool.cluster.writes.apply`) records each object the API server answers a
write with ("assume"), so the next cycle never decides on a state older than its own
last write. The API server stays the source of truth: a restarted operator lists
everything and carries on.

Each object is parsed once, when it enters the cache (`gpupool.cluster.state.parsing`): the
cache holds immutable `CachedObject`s carrying the raw object, its parsed model (or why
it could not be parsed). A view is a shallow copy of the maps - it shares the immutable
entries - so taking one costs a pointer per object, never a deep copy.

Ordering: an object is never replaced by one of an older `resourceVersion`, whether the
older one comes from a late watch event, a write answer or a re-list; a re-list drops an
object it does not contain only when the cached copy is not newer than the list itself
(an object created after the list started stays).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

RawObject = dict[str, Any]


class Kind(StrEnum):
    """What the cache holds, one map per kind."""

    JOB = "gpujobs"
    QUEUE = "gpuqueues"
    POOL = "gpunodepools"
    CLAIM = "gpunodeclaims"
    NODE = "nodes"
    POD = "pods"
    NAMESPACE = "namespaces"
    # Non-terminal pods bound to a node that gpupool did not create (kept in a compact form).
    FOREIGN_POD = "foreignpods"
    # gpupool's share reservation pods (`gpupool.cluster.writes.reservations`), in its own namespace.
    RESERVATION = "reservations"


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name") or "")
    return f"{namespace}/{name}" if namespace else name


def resource_version(obj: Mapping[str, Any]) -> int:
    """The object's `metadata.resourceVersion` as a number (0 when absent or odd).

    Kubernetes calls resource versions opaque, but every etcd-backed API server issues them
    from one increasing revision counter; gpupool relies on that to order watch events
    against its own write answers, as client-go's informers do for `ListMeta`.
    """
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class CachedObject:
    """One object as the cache holds it: never mutated after it is stored.

    `parsed` is the kind's model (`gpupool.cluster.state.parsing` says which) or None when the
    object could not be parsed, in which case `error` says why in words a person can act on.
    """

    raw: Mapping[str, Any]
    parsed: Any
    error: str | None
    resource_version: int


Parser = Callable[[Kind, Mapping[str, Any]], tuple[Any, str | None]]


def copy_without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of an API object without `metadata.managedFields`.

    Server-side apply's field ownership is read by nothing in gpupool, yet on an object
    whose status the operator patches it is often the biggest part of the object; the
    footprint bench (10,000 GPUJobs) measured the cache's memory with and without it.
    """
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or "managedFields" not in metadata:
        return copy.deepcopy(dict(obj))
    trimmed = copy.deepcopy({key: value for key, value in obj.items() if key != "metadata"})
    trimmed["metadata"] = copy.deepcopy({key: value for key, value in metadata.items() if key != "managedFields"})
    return trimmed


def _keep_raw(_kind: Kind, raw: Mapping[str, Any]) -> tuple[Any, str | None]:
    return raw, None


class CacheView:
    """The cache at one moment: immutable entries by kind and key, safe to read unlocked."""

    def __init__(self, entries: Mapping[Kind, Mapping[str, CachedObject]] | None = None) -> None:
        self._entries: dict[Kind, Mapping[str, CachedObject]] = dict(entries or {})

    def entries(self, kind: Kind) -> Mapping[str, CachedObject]:
        """Every cached entry of one kind by key."""
        return self._entries.get(kind, {})

    def parsed(self, kind: Kind) -> dict[str, Any]:
        """The parsed models of one kind by key, leaving out objects that did not parse."""
        return {key: e.parsed for key, e in self.entries(kind).items() if e.error is None}

    def invalid(self, kind: Kind) -> dict[str, str]:
        """Why each object of one kind that did not parse was refused, by key."""
        return {key: e.error for key, e in self.entries(kind).items() if e.error is not None}

    def raw(self, kind: Kind, key: str) -> Mapping[str, Any] | None:
        """The raw object (read-only) of one key, or None."""
        entry = self.entries(kind).get(key)
        return entry.raw if entry is not None else None


class ClusterCache:
    """Thread-safe maps of parsed objects by kind and key, plus a 'synced' flag and a wake-up.

    `parse(kind, raw)` returns `(model, None)` or `(None, reason)`; it is called once per
    stored version of an object. The default keeps raw objects (used by tests of the
    cache itself); the operator passes `gpupool.cluster.state.parsing.parse_object_of`.
    """

    def __init__(self, parse: Parser = _keep_raw) -> None:
        self._parse = parse
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[str, CachedObject]] = {kind: {} for kind in Kind}
        self._synced = threading.Event()
        self._changed = threading.Event()

    def _entry(self, kind: Kind, obj: Mapping[str, Any]) -> CachedObject:
        # One deep copy per stored version: the caller (kopf, the client) may reuse its dict.
        raw = MappingProxyType(copy_without_managed_fields(obj))
        parsed, error = self._parse(kind, raw)
        return CachedObject(raw=raw, parsed=parsed, error=error, resource_version=resource_version(obj))

    # ------------------------------------------------------------------ writes

    def upsert(self, kind: Kind, obj: Mapping[str, Any]) -> bool:
        """Store `obj` unless the cache already holds a newer version; True if stored."""
        key = object_key(obj)
        version = resource_version(obj)
        with self._lock:
            current = self._objects[kind].get(key)
            if current is not None and current.resource_version > version:
                return False
            if current is not None and current.resource_version == version and version:
                return False
        entry = self._entry(kind, obj)
        with self._lock:
            # Checked again: another thread may have stored a newer version meanwhile.
            current = self._objects[kind].get(key)
            if current is not None and current.resource_version > version:
                return False
            self._objects[kind][key] = entry
        self._changed.set()
        return True

    def delete(self, kind: Kind, key: str, version: int = 0) -> None:
        """Forget an object that the API server deleted (or that the loop just deleted).

        With `version` (the deleted object's resourceVersion, from a watch event), a cached
        object newer than that - a new object of the same name - is kept.
        """
        with self._lock:
            current = self._objects[kind].get(key)
            if current is not None and version and current.resource_version > version:
                return
            self._objects[kind].pop(key, None)
        self._changed.set()

    def replace_all(self, kind: Kind, objects: Iterable[Mapping[str, Any]], list_version: int = 0) -> None:
        """Merge a fresh list of one kind (start-up, or a periodic re-list).

        Listed objects replace cached ones unless the cached copy is newer; cached objects
        missing from the list are dropped unless they are newer than the list itself
        (`list_version`, the list's own resourceVersion; 0 drops every missing object).
        """
        fresh = {object_key(o): o for o in objects}
        with self._lock:
            cached = dict(self._objects[kind])
        merged: dict[str, CachedObject] = {}
        for key, obj in fresh.items():
            current = cached.get(key)
            if current is not None and current.resource_version >= resource_version(obj):
                merged[key] = current
            else:
                merged[key] = self._entry(kind, obj)
        with self._lock:
            for key, current in self._objects[kind].items():
                listed = merged.get(key)
                if listed is None:
                    if list_version and current.resource_version > list_version:
                        merged[key] = current
                elif current.resource_version > listed.resource_version:
                    merged[key] = current
            self._objects[kind] = merged
        self._changed.set()

    # ------------------------------------------------------------------ reads

    def view(self) -> CacheView:
        """The cache now: a shallow copy of each map, sharing the immutable entries."""
        with self._lock:
            return CacheView({kind: dict(objs) for kind, objs in self._objects.items()})

    def get(self, kind: Kind, key: str) -> CachedObject | None:
        """One cached entry, or None."""
        with self._lock:
            return self._objects[kind].get(key)

    # ------------------------------------------------------------------ sync and wake-up

    def mark_synced(self) -> None:
        """Called once every kind has been listed: the loop may start deciding."""
        self._synced.set()

    @property
    def synced(self) -> bool:
        """True after the first full list."""
        return self._synced.is_set()

    def wait_for_change(self, timeout: float) -> bool:
        """Block until something changed or `timeout` passed; True if something changed.

        The flag is cleared before returning, so a change that lands while the caller
        works sets it again and the next wait returns at once (no lost wake-up).
        """
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed
