"""`Reflector`: keeps one kind of the cache in step with the API server by list and watch.

Who uses this: `gpupool.controllers.runner` runs one for each kind with many objects and
many changes (`operator_reflectors`: GPUJobs, gpupool's worker pods, its share reservation
pods and the foreign pods that hold resources on a node) while kopf's handlers feed the few
queues, pools, node claims, nodes and namespaces. A watch event costs kopf about a millisecond of
CPU (its causes, kwargs and per-object workers, built for handlers that act on each
object); a reflector only parses the line and stores the object, which the scheduling
loop needs and nothing more (the `gpupool bench e2e` section of docs/benchmarks.md
measures the difference).

It is client-go's reflector, reduced: list (raw JSON) into the cache with the list's
resourceVersion, then watch from there with bookmarks; each event is stored (the cache
refuses older versions) or deleted. An expired resourceVersion (410 Gone) lists again; a
broken connection watches again from the last version seen, after a short back-off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any

from gpupool.cluster.kube.writer import list_version, read_json
from gpupool.cluster.state.cache import ClusterCache, Kind, object_key, resource_version

log = logging.getLogger("gpupool.reflector")

WATCH_SECONDS = 300
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


def watch_events(
    list_call: Callable[..., Any], version: str, hold: Callable[[Any], None] = lambda _r: None
) -> Iterator[dict[str, Any]]:
    """The events of one watch from `version` (bookmarks on), as dicts, read as raw JSON lines.

    `hold(response)` receives the open response (and None when it closes), so another
    thread can shut its socket to end a blocked read. Also used by `gpupool bench e2e`.
    """
    response = list_call(
        watch=True,
        resource_version=version,
        allow_watch_bookmarks=True,
        timeout_seconds=WATCH_SECONDS,
        _preload_content=False,
        _request_timeout=WATCH_SECONDS + 30,
    )
    hold(response)
    try:
        pending = b""
        for chunk in response.stream(decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
    finally:
        hold(None)
        response.release_conn()


class Expired(Exception):
    """The watch's resourceVersion is too old (HTTP 410 Gone): list again."""


def stop_watch_thread(stop: threading.Event, response: Any, thread: threading.Thread) -> None:
    """Stop a thread that reads a watch: set its `stop` event, shut the read side of the
    `response` it is blocked on (closing it from here would wait for the reader, up to the
    next bookmark), and join it. `Reflector.stop` and the benches' `PhaseWatch` use this."""
    stop.set()
    if response is not None:
        with suppress(Exception):
            response.shutdown()
    thread.join(timeout=5)


class Reflector:
    """Lists then watches one kind into `cache` until stopped.

    `list_call(**kwargs)` is a list method of the Kubernetes client with its arguments
    bound (group, version, plural, selectors); it is called with `watch=True` and
    `_preload_content=False` for the watch. `shrink(obj)` (default: keep it whole) is what
    of each object goes into the cache.
    """

    def __init__(
        self,
        cache: ClusterCache,
        kind: Kind,
        list_call: Callable[..., Any],
        shrink: Callable[[Mapping[str, Any]], Mapping[str, Any]] = lambda obj: obj,
    ) -> None:
        self.cache = cache
        self.kind = kind
        self._list_call = list_call
        self._shrink = shrink
        self._version = ""
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"reflector-{kind.value}", daemon=True)

    # ------------------------------------------------------------------ control

    def list_once(self) -> None:
        """List every object into the cache; the watch continues from this list."""
        doc = read_json(self._list_call(_preload_content=False))
        version = list_version(doc)
        self.cache.replace_all(self.kind, [self._shrink(o) for o in doc.get("items") or []], version)
        self._version = str(version or "")

    def start(self) -> None:
        """Watch in a background thread (call `list_once` first)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; a blocked read returns at once."""
        stop_watch_thread(self._stop, self._response, self._thread)

    # ------------------------------------------------------------------ the watch

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._watch()
                failures = 0
            except Expired:
                log.info("watch expired; listing again", extra={"kind": self.kind.value})
                failures = self._relist(failures)
            except Exception as error:
                if self._stop.is_set():
                    return
                log.warning("watch broke; watching again", extra={"kind": self.kind.value, "error": str(error)})
                self._stop.wait(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
                failures += 1

    def _relist(self, failures: int) -> int:
        try:
            self.list_once()
            return 0
        except Exception as error:
            log.warning("list failed; trying again", extra={"kind": self.kind.value, "error": str(error)})
            self._stop.wait(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
            return failures + 1

    def _watch(self) -> None:
        for event in watch_events(self._list_call, self._version, self._hold):
            self.apply_event(event)
            if self._stop.is_set():
                return

    def _hold(self, response: Any) -> None:
        self._response = response

    def apply_event(self, event: Mapping[str, Any]) -> None:
        """Store, delete or note the version of one watch event (`type`, `object`)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(str(obj.get("message", "")))
            raise RuntimeError(f"watch error: {obj.get('message')}")
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "DELETED":
            self.cache.delete(self.kind, object_key(obj), resource_version(obj))
        elif kind in ("ADDED", "MODIFIED"):
            self.cache.upsert(self.kind, self._shrink(obj))
        if version:
            self._version = version


# Pods gpupool did not create that hold a node's resources: bound, not finished.
FOREIGN_POD_FIELDS = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"


def operator_reflectors(api_client: Any, cache: ClusterCache, reservation_namespace: str) -> list[Reflector]:
    """The reflectors of GPUJobs (all namespaces), gpupool's worker pods (by label), its share
    reservation pods (by label, in `reservation_namespace`) and the pods gpupool did not
    create that hold resources on a node (compact, see
    `gpupool.cluster.state.parsing.compact_foreign_pod`). A foreign pod that finishes stops
    matching the field selector, and the watch reports it DELETED."""
    from functools import partial

    from kubernetes import client

    from gpupool.api import GROUP, VERSION
    from gpupool.cluster.state.parsing import compact_foreign_pod
    from gpupool.cluster.writes.pods import LABEL_JOB
    from gpupool.cluster.writes.reservations import LABEL_RESERVATION

    custom = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    foreign = partial(
        core.list_pod_for_all_namespaces,
        label_selector=f"!{LABEL_JOB},!{LABEL_RESERVATION}",
        field_selector=FOREIGN_POD_FIELDS,
    )
    reservations = partial(core.list_namespaced_pod, reservation_namespace, label_selector=LABEL_RESERVATION)
    return [
        Reflector(cache, Kind.JOB, partial(custom.list_cluster_custom_object, GROUP, VERSION, Kind.JOB.value)),
        Reflector(cache, Kind.POD, partial(core.list_pod_for_all_namespaces, label_selector=LABEL_JOB)),
        Reflector(cache, Kind.FOREIGN_POD, foreign, shrink=compact_foreign_pod),
        Reflector(cache, Kind.RESERVATION, reservations),
    ]
