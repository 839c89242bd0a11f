"""The operator's watch-fed view of the cluster.

Who uses this: kopf event handlers (`gpupool.controllers.handlers`) put every object they
see here; the scheduling loop reads a consistent copy at the start of each cycle and, after
a write, records the object the API server returned ("assume") so the next cycle never
decides on a state older than its own last write. The API server stays the source of
truth: a restarted operator lists everything (`replace_all`) and carries on.

Objects are plain dicts as the API server returns them. An update never replaces a newer
object with an older one (resourceVersion order), because watch events and the loop's own
write responses can arrive in either order.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RawObject = dict[str, Any]


class Kind(StrEnum):
    """What the cache holds, one map per kind."""

    JOB = "gpujobs"
    QUEUE = "gpuqueues"
    POOL = "gpunodepools"
    NODE = "nodes"
    POD = "pods"
    NAMESPACE = "namespaces"


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = str(metadata.get("name") or "")
    return f"{namespace}/{name}" if namespace else name


def _resource_version(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass
class CacheView:
    """A deep copy of the cache at one moment: what one scheduling cycle works on."""

    objects: dict[Kind, dict[str, RawObject]] = field(default_factory=dict)

    def of(self, kind: Kind) -> dict[str, RawObject]:
        """Objects of one kind by key."""
        return self.objects.get(kind, {})


class ClusterCache:
    """Thread-safe maps of raw objects by kind and key, plus a 'synced' flag and a wake-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[str, RawObject]] = {kind: {} for kind in Kind}
        self._synced = threading.Event()
        self._changed = threading.Event()

    # ------------------------------------------------------------------ writes

    def upsert(self, kind: Kind, obj: Mapping[str, Any]) -> bool:
        """Store `obj` unless the cache already holds a newer version; True if stored."""
        key = object_key(obj)
        with self._lock:
            current = self._objects[kind].get(key)
            if current is not None and _resource_version(current) > _resource_version(obj):
                return False
            self._objects[kind][key] = copy.deepcopy(dict(obj))
        self._changed.set()
        return True

    def delete(self, kind: Kind, key: str) -> None:
        """Forget an object that the API server deleted (or that the loop just deleted)."""
        with self._lock:
            self._objects[kind].pop(key, None)
        self._changed.set()

    def replace_all(self, kind: Kind, objects: Iterable[Mapping[str, Any]]) -> None:
        """Replace everything of one kind with a fresh list (start-up, or a re-list)."""
        fresh = {object_key(o): copy.deepcopy(dict(o)) for o in objects}
        with self._lock:
            self._objects[kind] = fresh
        self._changed.set()

    # ------------------------------------------------------------------ reads

    def view(self) -> CacheView:
        """A deep copy of everything, safe to read without the lock."""
        with self._lock:
            return CacheView({kind: copy.deepcopy(objs) for kind, objs in self._objects.items()})

    def get(self, kind: Kind, key: str) -> RawObject | None:
        """A copy of one object, or None."""
        with self._lock:
            found = self._objects[kind].get(key)
            return copy.deepcopy(found) if found is not None else None

    # ------------------------------------------------------------------ sync and wake-up

    def mark_synced(self) -> None:
        """Called once every kind has been listed: the loop may start deciding."""
        self._synced.set()

    @property
    def synced(self) -> bool:
        """True after the first full list."""
        return self._synced.is_set()

    def wait_for_change(self, timeout: float) -> bool:
        """Block until something changed or `timeout` passed; True if something changed."""
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed
