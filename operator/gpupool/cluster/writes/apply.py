"""The applier: carries out `JobChange`s and status writes through the `ClusterWriter` port.

Who calls this: the scheduling loop (`gpupool.controllers.loop`), once per batch of
changes (lifecycle; preemptions; admissions and waits) and once for queue and pool status.
Every object a write answers with goes into the cache at once ("assume"), so the next
cycle never decides on a state older than its own write.

Order and concurrency. One job's writes run in order: status, event, pod deletions, pod
creations; if the status write fails the rest is skipped (the cache still holds the old
status, so the next cycle plans the same change again: that is the retry). Different
jobs' writes do not depend on each other within a batch, so they run concurrently on a
bounded pool of threads (`concurrency`, the operator's `GPUPOOL_WRITE_CONCURRENCY`): a
write costs the API server little but the operator a round trip, and one at a time the
loop could not keep up with the API server (1,000 admissions meant 5,000 sequential
round trips).

A change that ends an attempt carries the attempt's provenance record, logged on the
`gpupool.provenance` logger (one JSON object per line in the operator's default log
format) right after its status write succeeds, so it outlives the GPUJob. A change with
`delete_job` deletes the GPUJob (its time to live after finishing has passed), guarded by
its uid so that a new job of the same name is never deleted.

Events are best-effort, as in client-go's event recorder: a failed post is logged, never
retried. With `event_queue` > 0 they are posted by one background thread from a queue of
that size, so status and pod writes (which the next cycle depends on) never wait behind
them; a full queue drops the event with a warning. With 0 they are posted inline, in
order with the job's other writes (what the unit tests use).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from gpupool.api import API_VERSION, GPUNodePoolStatus, GPUQueueStatus
from gpupool.cluster.state.cache import ClusterCache, Kind
from gpupool.cluster.writes.plan import ChangeKind, JobChange
from gpupool.cluster.writes.ports import ClusterWriter, EventNote, NotFound, ObjectRef, RawObject, WriteError
from gpupool.cluster.writes.provenance import LOG_NAME

log = logging.getLogger("gpupool.apply")
provenance_log = logging.getLogger(LOG_NAME)


class Applier:
    """Writes changes through `writer` and records each answer in `cache`."""

    def __init__(self, writer: ClusterWriter, cache: ClusterCache, concurrency: int = 16, event_queue: int = 0) -> None:
        self.writer = writer
        self.cache = cache
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="gpupool-write")
        self._events: queue.Queue[tuple[ObjectRef, EventNote] | None] | None = None
        self._poster: threading.Thread | None = None
        if event_queue > 0:
            self._events = queue.Queue(maxsize=event_queue)
            self._poster = threading.Thread(target=self._post_queued, name="gpupool-events", daemon=True)
            self._poster.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer threads (after the writes in flight) and post the queued events."""
        self._pool.shutdown(wait=True)
        if self._events is not None and self._poster is not None:
            self._events.put(None)
            self._poster.join(timeout)

    # ------------------------------------------------------------------ jobs

    def apply(self, changes: Sequence[JobChange]) -> list[JobChange]:
        """Carry out one batch: changes of the same job in order, different jobs concurrently.
        Returns the changes whose status write succeeded (or that had none), in batch order
        per job: what happened, for the metrics."""
        chains: dict[str, list[JobChange]] = {}
        for change in changes:
            chains.setdefault(change.key, []).append(change)
        if self.concurrency == 1 or len(chains) <= 1:
            return [done for chain in chains.values() for done in self._chain(chain)]
        futures = [self._pool.submit(self._chain, chain) for chain in chains.values()]
        return [done for future in futures for done in future.result()]

    def _chain(self, chain: list[JobChange]) -> list[JobChange]:
        return [change for change in chain if self._one(change)]

    def _one(self, change: JobChange) -> bool:
        if change.delete_job:
            return self._delete_job(change)
        if change.status is not None and not self._status(change):
            if change.events_without_status:
                self._emit(change)
            return False
        self._emit(change)
        for record in change.log_records:
            provenance_log.info(
                "attempt %s of %s ended: %s",
                record.get("attempt"),
                change.key,
                record.get("outcome"),
                extra={"provenance": record},
            )
        # A share reservation pod (`gpupool.cluster.writes.reservations`) lives in the cache's own map.
        pods = Kind.RESERVATION if change.kind == ChangeKind.RESERVE else Kind.POD
        for pod in change.delete_pods:
            try:
                self.writer.delete_pod(change.namespace, pod)
            except WriteError as error:
                log.warning("pod delete failed", extra={"pod": f"{change.namespace}/{pod}", "error": str(error)})
                continue
            self.cache.delete(pods, f"{change.namespace}/{pod}")
        for manifest in change.create_pods:
            try:
                created = self.writer.create_pod(manifest)
            except WriteError as error:
                name = manifest["metadata"]["name"]
                log.warning("pod create failed", extra={"job": change.key, "error": str(error)})
                note = EventNote("PodCreateFailed", f"could not create worker pod {name}: {error}", "Warning")
                self._post(change.about, note)
                break
            if created is not None:
                self.cache.upsert(pods, created)
        return True

    def _delete_job(self, change: JobChange) -> bool:
        try:
            self.writer.delete_job(change.namespace, change.name, change.about.uid)
        except NotFound:
            pass
        except WriteError as error:
            log.warning("finished job not deleted", extra={"job": change.key, "error": str(error)})
            return False
        log.info("deleted a finished job past its ttlSecondsAfterFinished", extra={"job": change.key})
        self.cache.delete(Kind.JOB, change.key)
        return True

    def _status(self, change: JobChange) -> bool:
        assert change.status is not None
        try:
            updated = self.writer.patch_job_status(change.namespace, change.name, change.status)
        except NotFound:
            self.cache.delete(Kind.JOB, change.key)
            return False
        except WriteError as error:
            log.warning(
                "status write failed", extra={"job": change.key, "change": str(change.kind), "error": str(error)}
            )
            return False
        self.cache.upsert(Kind.JOB, updated)
        return True

    def _emit(self, change: JobChange) -> None:
        for note in change.events:
            log.debug(note.message, extra={"event": note.reason, "job": change.key})
            self._post(change.about, note)

    def _post(self, about: ObjectRef, note: EventNote) -> None:
        if self._events is not None:
            try:
                self._events.put_nowait((about, note))
            except queue.Full:
                log.warning("event queue full; event dropped", extra={"reason": note.reason, "job": about.name})
            return
        self._post_now(about, note)

    def _post_now(self, about: ObjectRef, note: EventNote) -> None:
        try:
            self.writer.emit_event(about, note.reason, note.message, note.type)
        except WriteError as error:
            where = f"{about.namespace}/{about.name}"
            log.warning("could not post event", extra={"reason": note.reason, "job": where, "error": str(error)})

    def _post_queued(self) -> None:
        assert self._events is not None
        while (item := self._events.get()) is not None:
            self._post_now(*item)

    # ------------------------------------------------------------------ queues and pools

    def write_queue_status(self, name: str, status: GPUQueueStatus, events: Sequence[EventNote] = ()) -> None:
        """Replace a queue's status, then post `events` about the queue (only once the status is
        written, so an event about a change is posted again if its write failed); a failure is
        logged and retried next cycle."""
        updated = self._cluster_status(Kind.QUEUE, name, lambda: self.writer.patch_queue_status(name, status))
        if updated is not None:
            metadata = updated.get("metadata") or {}
            about = ObjectRef(API_VERSION, "GPUQueue", "", name, uid=metadata.get("uid"))
            for note in events:
                self._post(about, note)

    def write_pool_status(self, name: str, status: GPUNodePoolStatus) -> None:
        """Replace a pool's status; a failure is logged and retried next cycle."""
        self._cluster_status(Kind.POOL, name, lambda: self.writer.patch_pool_status(name, status))

    def _cluster_status(self, kind: Kind, name: str, write: Callable[[], RawObject]) -> RawObject | None:
        try:
            updated = write()
        except NotFound:
            self.cache.delete(kind, name)
            return None
        except WriteError as error:
            log.warning("status write failed", extra={"object": f"{kind}/{name}", "error": str(error)})
            return None
        self.cache.upsert(kind, updated)
        return updated
