"""The one scheduling loop: snapshot -> core.schedule -> decisions -> apply.

Who runs this: `gpupool.controllers.runner` starts it in a thread once the cache has listed
every kind (step 1: never decide on a half-listed cluster). Each cycle:

1. Lifecycle: for every job holding GPUs, compare its pods with its phase (pure rules in
   `gpupool.cluster.lifecycle`) and create missing pods, mark it Running, Succeeded,
   Failed or queue it again. Stray pods (of deleted jobs, old attempts) are deleted.
2. Snapshot the cache (`gpupool.cluster.snapshot`).
3. `core.schedule(snapshot)` returns admissions, preemptions and reasons, as values.
4. Apply: preemptions first (status, then pod deletions), then admissions (status with
   the placement, then pods). Every write's answer goes straight into the cache (assume),
   so the next cycle sees it even before the watch does; a failed write is logged and the
   next cycle retries from the API server's truth. Pod names are deterministic, so a
   crash between two writes leaves nothing duplicated.
5. Waiting jobs get their reason as status message and condition; queues and pools get
   their usage in status; each decision that changes a job's life gets an Event.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from gpupool.api import GPUJob, GPUNodePool, JobPhase, parse_gpujob, parse_gpunodepool
from gpupool.cluster import pods as podlib
from gpupool.cluster.cache import CacheView, ClusterCache, Kind, object_key
from gpupool.cluster.convert import parse_duration_seconds, parse_timestamp, placement_status
from gpupool.cluster.lifecycle import LifecycleStep, Step, next_step, pods_of_attempt
from gpupool.cluster.snapshot import HOLDING_PHASES, SnapshotBuild, build_snapshot, parse_jobs, pool_taints
from gpupool.cluster.writer import ClusterWriter
from gpupool.core import Decisions, SchedulerConfig, schedule
from gpupool.core.fairshare import decay_usage
from gpupool.settings import OperatorSettings

log = logging.getLogger("gpupool.loop")

RawObject = dict[str, Any]
TERMINAL_PHASES = frozenset({JobPhase.SUCCEEDED, JobPhase.FAILED})


def iso(ts: float) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gpu_hour_price(pool: GPUNodePool, *, spot: bool) -> float:
    """Price of one GPU-hour in `pool`: its node-hour price (amortised on-prem, on-demand or
    spot in the cloud) over its GPUs per node; 0 when the pool names no price."""
    price = pool.spec.price_per_node_hour
    if price is None:
        return 0.0
    per_node = (price.spot if spot and price.spot is not None else None) or price.on_demand or price.amortised or 0.0
    return float(per_node) / pool.spec.gpus_per_node


def set_condition(
    status: RawObject, ctype: str, value: bool, reason: str, message: str, now: float, generation: int | None
) -> None:
    """Set one Kubernetes-style condition, keeping lastTransitionTime when the status holds."""
    conditions: list[RawObject] = list(status.get("conditions") or [])
    wanted = "True" if value else "False"
    for condition in conditions:
        if condition.get("type") == ctype:
            if condition.get("status") != wanted:
                condition["lastTransitionTime"] = iso(now)
            condition.update(status=wanted, reason=reason, message=message[:32000])
            if generation is not None:
                condition["observedGeneration"] = generation
            break
    else:
        condition = {
            "type": ctype,
            "status": wanted,
            "reason": reason,
            "message": message[:32000],
            "lastTransitionTime": iso(now),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        conditions.append(condition)
    status["conditions"] = conditions


class SchedulingLoop:
    """Runs cycles until stopped; all Kubernetes writes go through `writer`."""

    def __init__(
        self,
        cache: ClusterCache,
        writer: ClusterWriter,
        settings: OperatorSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.writer = writer
        self.settings = settings
        self.clock = clock
        self.config = SchedulerConfig(
            placement_policy=settings.placement_policy,
            fair_share_half_life_seconds=settings.fair_share_half_life_seconds,
        )
        self.last_cycle_at: float | None = None
        self.cycles = 0
        self._usage: dict[str, float] = {}
        self._usage_at: float | None = None
        self._announced: set[str] = set()

    # ------------------------------------------------------------------ running

    def run(self, stop: threading.Event) -> None:
        """Cycle until `stop` is set; a cycle that raises is logged and the next one retries."""
        while not stop.is_set() and not self.cache.synced:
            stop.wait(0.2)
        while not stop.is_set():
            try:
                self.cycle()
            except Exception:
                log.exception("scheduling cycle failed; retrying next cycle")
            self.cache.wait_for_change(self.settings.schedule_interval_seconds)
            # Let a burst of watch events settle into one cycle.
            stop.wait(0.05)

    def cycle(self) -> Decisions:
        """One full cycle (see the module docstring); returns the core's decisions."""
        now = self.clock()
        self._reconcile_lifecycles(now)
        view = self.cache.view()
        build = build_snapshot(view, now, decayed_usage=self._decayed_usage(view, now), seed=self.cycles)
        decisions = schedule(build.snapshot, self.config)
        self._apply(build, decisions, now)
        self._update_queue_and_pool_status(build, now)
        self.last_cycle_at = now
        self.cycles += 1
        return decisions

    # ------------------------------------------------------------------ step 1: lifecycle

    def _reconcile_lifecycles(self, now: float) -> None:
        view = self.cache.view()
        jobs, invalid = parse_jobs(view)
        pods_by_job: dict[str, list[RawObject]] = {}
        for pod in view.of(Kind.POD).values():
            metadata = pod.get("metadata") or {}
            job_name = (metadata.get("labels") or {}).get(podlib.LABEL_JOB)
            if job_name:
                pods_by_job.setdefault(f"{metadata.get('namespace')}/{job_name}", []).append(pod)

        for key, reason in invalid.items():
            self._report_invalid(view.of(Kind.JOB)[key], reason, now)
        for key, job in jobs.items():
            if job.status.phase is None:
                self._mark_queued(job, now)
            elif job.status.phase in HOLDING_PHASES and not job.metadata.get("deletionTimestamp"):
                self._advance(job, pods_by_job.get(key, []), now)
        self._delete_stray_pods(jobs, pods_by_job)

    def _mark_queued(self, job: GPUJob, now: float) -> None:
        status = self._raw_status(job)
        status.update(phase=JobPhase.QUEUED.value, queuedAt=iso(now), attempts=status.get("attempts", 0))
        status["message"] = f"queued in {job.spec.queue}"
        set_condition(status, "Admitted", False, "Queued", status["message"], now, self._generation(job))
        if self._patch_status(job, status):
            self._event(job, "Queued", f"queued in queue {job.spec.queue}")

    def _advance(self, job: GPUJob, pods: list[RawObject], now: float) -> None:
        status = self._raw_status(job)
        attempt = int(status.get("attempts") or 0)
        started_at = parse_timestamp(status.get("startedAt"))
        max_runtime = (
            parse_duration_seconds(job.spec.max_runtime, what="spec.maxRuntime") if job.spec.max_runtime else None
        )
        step = next_step(
            job,
            pods_of_attempt(pods, attempt),
            now,
            started_at=started_at,
            max_runtime_seconds=max_runtime,
            failures=int(status.get("failures") or 0),
        )
        if step.step == Step.CREATE_PODS:
            self._create_pods(job, attempt, step.missing_workers)
        elif step.step == Step.MARK_RUNNING:
            status.update(phase=JobPhase.RUNNING.value, startedAt=iso(now), message=self._running_message(job))
            set_condition(status, "Running", True, step.reason, step.message, now, self._generation(job))
            if self._patch_status(job, status):
                self._event(job, "Started", step.message)
        elif step.step in (Step.SUCCEED, Step.FAIL, Step.RETRY):
            self._stop_attempt(job, status, step, now)

    def _stop_attempt(self, job: GPUJob, status: RawObject, step: LifecycleStep, now: float) -> None:
        self._account_gpu_seconds(job, status, now)
        generation = self._generation(job)
        set_condition(status, "Running", False, step.reason, step.message, now, generation)
        if step.step == Step.SUCCEED:
            status.update(phase=JobPhase.SUCCEEDED.value, finishedAt=iso(now), message=f"succeeded: {step.message}")
            set_condition(status, "Finished", True, "Succeeded", step.message, now, generation)
        elif step.step == Step.FAIL:
            status.update(phase=JobPhase.FAILED.value, finishedAt=iso(now), message=f"failed: {step.message}")
            set_condition(status, "Finished", True, step.reason, step.message, now, generation)
        else:
            status.update(
                phase=JobPhase.QUEUED.value,
                placement=[],
                startedAt=None,
                admittedAt=None,
                failures=int(status.get("failures") or 0) + 1,
                message=f"queued again: {step.message}",
            )
            set_condition(status, "Admitted", False, step.reason, step.message, now, generation)
        if not self._patch_status(job, status):
            return
        kind = "Warning" if step.step != Step.SUCCEED else "Normal"
        self._event(
            job,
            {Step.SUCCEED: "Finished", Step.FAIL: "Failed", Step.RETRY: "Restarting"}[step.step],
            step.message,
            kind,
        )
        if step.step != Step.SUCCEED:
            self._delete_job_pods(job, only_unfinished=step.step == Step.FAIL)

    def _delete_stray_pods(self, jobs: Mapping[str, GPUJob], pods_by_job: Mapping[str, list[RawObject]]) -> None:
        """Pods of deleted jobs, of jobs no longer holding GPUs, or of an older attempt."""
        for key, pods in pods_by_job.items():
            job = jobs.get(key)
            for pod in pods:
                metadata = pod["metadata"]
                if metadata.get("deletionTimestamp"):
                    continue
                labels = metadata.get("labels") or {}
                phase = (pod.get("status") or {}).get("phase")
                stray = (
                    job is None
                    or job.metadata.get("deletionTimestamp") is not None
                    or (job.status.phase in (JobPhase.QUEUED, JobPhase.PREEMPTED))
                    or (
                        job.status.phase in HOLDING_PHASES
                        and labels.get(podlib.LABEL_ATTEMPT) != str(job.status.attempts)
                    )
                    or (job.status.phase == JobPhase.FAILED and phase not in ("Succeeded", "Failed"))
                )
                if stray:
                    self._delete_pod(metadata["namespace"], metadata["name"])

    # ------------------------------------------------------------------ step 4: apply

    def _apply(self, build: SnapshotBuild, decisions: Decisions, now: float) -> None:
        for preemption in decisions.preemptions:
            job = build.jobs.get(preemption.victim_key)
            if job is not None:
                self._preempt(job, preemption.message, now)
        for admission in decisions.admissions:
            job = build.jobs.get(admission.job_key)
            if job is not None:
                self._admit(build, job, admission.placements, admission.borrowed_gpus, now)
        for waiting in decisions.waiting:
            job = build.jobs.get(waiting.job_key)
            if job is not None:
                self._mark_waiting(job, str(waiting.code), waiting.message, now)
        for key, reason in build.unschedulable.items():
            self._mark_waiting(build.jobs[key], reason.code, reason.message, now)

    def _admit(self, build: SnapshotBuild, job: GPUJob, placements: Any, borrowed: float, now: float) -> None:
        status = self._raw_status(job)
        attempt = int(status.get("attempts") or 0) + 1
        job_name = str(job.metadata["name"])
        workers = placement_status(placements, build.nodes, lambda w: podlib.pod_name(job_name, attempt, w))
        where = ", ".join(f"{w.node} (GPU {','.join(map(str, w.gpu_indices)) or '-'})" for w in workers)
        borrowed_note = f", borrowing {borrowed:g} GPU(s) from the cohort" if borrowed else ""
        message = f"admitted to {job.spec.queue}{borrowed_note}; starting {job.spec.workers} worker(s) on {where}"
        status.update(
            phase=JobPhase.ADMITTED.value,
            admittedAt=iso(now),
            startedAt=None,
            attempts=attempt,
            placement=[w.model_dump(mode="json", by_alias=True) for w in workers],
            message=message,
        )
        set_condition(status, "Admitted", True, "Admitted", message, now, self._generation(job))
        if any(c.get("type") == "Preempted" for c in status.get("conditions") or []):
            set_condition(status, "Preempted", False, "Readmitted", message, now, self._generation(job))
        if not self._patch_status(job, status):
            return
        self._event(job, "Admitted", message)
        refreshed = self.cache.get(Kind.JOB, f"{job.metadata['namespace']}/{job_name}")
        if refreshed is not None:
            self._create_pods(parse_gpujob(refreshed), attempt, tuple(range(job.spec.workers)))

    def _preempt(self, job: GPUJob, message: str, now: float) -> None:
        status = self._raw_status(job)
        self._account_gpu_seconds(job, status, now)
        status.update(
            phase=JobPhase.PREEMPTED.value,
            placement=[],
            admittedAt=None,
            startedAt=None,
            message=f"preempted and queued again: {message}",
        )
        set_condition(status, "Admitted", False, "Preempted", message, now, self._generation(job))
        set_condition(status, "Preempted", True, "Preempted", message, now, self._generation(job))
        if self._patch_status(job, status):
            self._event(job, "Preempted", message, "Warning")
            self._delete_job_pods(job, only_unfinished=False)

    def _mark_waiting(self, job: GPUJob, code: str, message: str, now: float) -> None:
        status = self._raw_status(job)
        if status.get("message") == message and status.get("phase") in (JobPhase.QUEUED, JobPhase.PREEMPTED):
            return
        status["message"] = message
        status.setdefault("phase", JobPhase.QUEUED.value)
        set_condition(status, "Admitted", False, code, message, now, self._generation(job))
        self._patch_status(job, status)

    # ------------------------------------------------------------------ pods

    def _create_pods(self, job: GPUJob, attempt: int, workers: tuple[int, ...]) -> None:
        by_worker = {p.worker: p for p in job.status.placement}
        pool_taints = self._pool_taints()
        for worker in workers:
            placement = by_worker.get(worker)
            if placement is None:
                continue
            try:
                manifest = podlib.worker_pod(
                    job,
                    placement,
                    attempt=attempt,
                    pool_taints=pool_taints.get(placement.pool, ()),
                    scheduler_name=self.settings.scheduler_name,
                )
                created = self.writer.create_pod(manifest)
            except podlib.PodTemplateError as error:
                log.warning("cannot build worker pod", extra={"job": job.metadata.get("name"), "error": str(error)})
                return
            except ApiException as error:
                log.warning(
                    "pod create failed",
                    extra={"job": job.metadata.get("name"), "status": error.status, "reason": error.reason},
                )
                self._event(
                    job, "PodCreateFailed", f"could not create worker pod {placement.pod}: {error.reason}", "Warning"
                )
                return
            if created is not None:
                self.cache.upsert(Kind.POD, created)

    def _pool_taints(self) -> dict[str, Any]:
        return {name: pool_taints(pool) for name, pool in self._pools().items()}

    def _delete_job_pods(self, job: GPUJob, *, only_unfinished: bool) -> None:
        namespace = str(job.metadata["namespace"])
        name = str(job.metadata["name"])
        for pod in self.cache.view().of(Kind.POD).values():
            metadata = pod["metadata"]
            if metadata.get("namespace") != namespace or (metadata.get("labels") or {}).get(podlib.LABEL_JOB) != name:
                continue
            if only_unfinished and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            self._delete_pod(namespace, metadata["name"])

    def _delete_pod(self, namespace: str, name: str) -> None:
        try:
            self.writer.delete_pod(namespace, name)
        except ApiException as error:
            log.warning("pod delete failed", extra={"pod": f"{namespace}/{name}", "status": error.status})
            return
        self.cache.delete(Kind.POD, f"{namespace}/{name}")

    # ------------------------------------------------------------------ status helpers

    @staticmethod
    def _raw_status(job: GPUJob) -> RawObject:
        raw: RawObject = job.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        return raw

    @staticmethod
    def _generation(job: GPUJob) -> int | None:
        generation = job.metadata.get("generation")
        return int(generation) if generation is not None else None

    def _patch_status(self, job: GPUJob, status: RawObject) -> bool:
        namespace = str(job.metadata["namespace"])
        name = str(job.metadata["name"])
        try:
            updated = self.writer.patch_job_status(namespace, name, status)
        except ApiException as error:
            log.warning(
                "status patch failed",
                extra={"job": f"{namespace}/{name}", "status": error.status, "reason": error.reason},
            )
            return False
        if updated is None:
            self.cache.delete(Kind.JOB, f"{namespace}/{name}")
            return False
        self.cache.upsert(Kind.JOB, updated)
        return True

    def _event(self, job: GPUJob | RawObject, reason: str, message: str, event_type: str = "Normal") -> None:
        obj: RawObject = (
            {"apiVersion": job.api_version, "kind": "GPUJob", "metadata": dict(job.metadata)}
            if isinstance(job, GPUJob)
            else job
        )
        self.writer.emit_event(obj, reason, message, event_type)
        metadata = obj.get("metadata") or {}
        log.info(message, extra={"event": reason, "job": f"{metadata.get('namespace')}/{metadata.get('name')}"})

    def _report_invalid(self, raw: RawObject, reason: str, now: float) -> None:
        key = object_key(raw)
        if key in self._announced:
            return
        self._announced.add(key)
        message = f"gpupool cannot read this GPUJob and will not schedule it: {reason}"
        log.warning("unreadable GPUJob", extra={"job": key, "error": reason})
        metadata = raw.get("metadata") or {}
        with contextlib.suppress(ApiException):
            self.writer.patch_job_status(
                str(metadata.get("namespace")),
                str(metadata.get("name")),
                {"phase": JobPhase.FAILED.value, "message": message[:1000]},
            )
        self._event(raw, "Invalid", message, "Warning")

    def _running_message(self, job: GPUJob) -> str:
        nodes = sorted({p.node for p in job.status.placement})
        return f"running {job.spec.workers} worker(s) on {', '.join(nodes)}"

    def _account_gpu_seconds(self, job: GPUJob, status: RawObject, now: float) -> None:
        """Add the attempt that ends now to `gpuSeconds` and `cost` (per worker, at its pool's price)."""
        started = parse_timestamp(status.get("startedAt"))
        if started is None:
            return
        seconds = max(0.0, now - started)
        gpus = job.spec.gpus * job.spec.workers
        status["gpuSeconds"] = round(float(status.get("gpuSeconds") or 0.0) + gpus * seconds, 3)
        pools = self._pools()
        cost = 0.0
        for worker in job.status.placement:
            pool = pools.get(worker.pool)
            if pool is not None:
                node = self.cache.get(Kind.NODE, worker.node) or {}
                spot = ((node.get("metadata") or {}).get("labels") or {}).get("gpupool.io/spot") == "true"
                cost += gpu_hour_price(pool, spot=spot) * job.spec.gpus * seconds / 3600.0
        status["cost"] = round(float(status.get("cost") or 0.0) + cost, 4)

    def _pools(self) -> dict[str, GPUNodePool]:
        pools: dict[str, GPUNodePool] = {}
        for name, raw in self.cache.view().of(Kind.POOL).items():
            try:
                pools[name] = parse_gpunodepool(raw)
            except ValueError:
                continue
        return pools

    # ------------------------------------------------------------------ fair share and usage status

    def _decayed_usage(self, view: CacheView, now: float) -> dict[str, float]:
        """Advance every queue's decayed GPU usage to `now` from what it holds in `view`."""
        jobs, _ = parse_jobs(view)
        held: dict[str, float] = {}
        for job in jobs.values():
            if job.status.phase in HOLDING_PHASES:
                held[job.spec.queue] = held.get(job.spec.queue, 0.0) + job.spec.gpus * job.spec.workers
        if self._usage_at is None:
            for name, raw in view.of(Kind.QUEUE).items():
                self._usage[name] = float((raw.get("status") or {}).get("decayedUsageGpuSeconds") or 0.0)
            self._usage_at = now
        elapsed = now - self._usage_at
        for name in set(self._usage) | set(held):
            self._usage[name] = decay_usage(
                self._usage.get(name, 0.0), elapsed, held.get(name, 0.0), self.settings.fair_share_half_life_seconds
            )
        self._usage_at = now
        return dict(self._usage)

    def _update_queue_and_pool_status(self, build: SnapshotBuild, now: float) -> None:
        view = self.cache.view()
        jobs, _ = parse_jobs(view)
        held_by_node: dict[str, float] = {}
        for name, raw in view.of(Kind.QUEUE).items():
            mine = [j for j in jobs.values() if j.spec.queue == name]
            holding = [j for j in mine if j.status.phase in HOLDING_PHASES]
            used: dict[str, float] = {}
            for job in holding:
                for worker in job.status.placement:
                    gpus = len(worker.gpu_indices) * worker.gpu_share
                    held_by_node[worker.node] = held_by_node.get(worker.node, 0.0) + gpus
                    node = build.nodes.get(worker.node)
                    flavor = self._flavor_of(build, name, node.pool if node else worker.pool, worker.gpu_model)
                    used[flavor] = used.get(flavor, 0.0) + gpus
            nominal = self._nominal(build, name)
            status = {
                "pendingJobs": sum(1 for j in mine if j.status.phase in (None, JobPhase.QUEUED, JobPhase.PREEMPTED)),
                "admittedJobs": len(holding),
                "usage": [
                    {
                        "flavor": flavor,
                        "nominal": nominal.get(flavor, 0),
                        "used": round(used.get(flavor, 0.0), 3),
                        "borrowed": round(max(0.0, used.get(flavor, 0.0) - nominal.get(flavor, 0)), 3),
                    }
                    for flavor in sorted(set(nominal) | set(used))
                ],
                "decayedUsageGpuSeconds": round(self._usage.get(name, 0.0), 3),
            }
            self._patch_if_changed("gpuqueues", name, raw, status)
        for name, raw in view.of(Kind.POOL).items():
            nodes = [n for n in build.nodes.values() if n.pool == name]
            status = {
                "nodesReady": sum(1 for n in nodes if n.ready),
                "nodesProvisioning": 0,
                "gpusTotal": sum(n.gpus for n in nodes if n.ready),
                "gpusAllocated": round(sum(held_by_node.get(n.name, 0.0) for n in nodes), 3),
            }
            self._patch_if_changed("gpunodepools", name, raw, status)

    @staticmethod
    def _nominal(build: SnapshotBuild, queue: str) -> dict[str, int]:
        """Nominal GPUs by quota flavor (`model:<m>` / `pool:<p>`) of one queue."""
        for core_queue in build.snapshot.queues:
            if core_queue.name == queue:
                return {q.flavor: q.nominal_gpus for q in core_queue.quotas}
        return {}

    @classmethod
    def _flavor_of(cls, build: SnapshotBuild, queue: str, pool: str, model: str) -> str:
        """The queue's quota entry a GPU on (pool, model) counts against (pool first, as the core does)."""
        flavors = cls._nominal(build, queue)
        if f"pool:{pool}" in flavors:
            return f"pool:{pool}"
        return f"model:{model}"

    def _patch_if_changed(self, plural: str, name: str, raw: RawObject, status: RawObject) -> None:
        current = raw.get("status") or {}
        if all(current.get(k) == v for k, v in status.items() if k != "decayedUsageGpuSeconds") and (
            abs(
                float(current.get("decayedUsageGpuSeconds") or 0.0) - float(status.get("decayedUsageGpuSeconds") or 0.0)
            )
            < 60.0
        ):
            return
        try:
            updated = self.writer.patch_cluster_status(plural, name, status)
        except ApiException as error:
            log.warning("status patch failed", extra={"object": f"{plural}/{name}", "status": error.status})
            return
        if updated is not None:
            self.cache.upsert(Kind.QUEUE if plural == "gpuqueues" else Kind.POOL, updated)
