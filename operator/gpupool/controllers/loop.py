"""The one scheduling loop: a cycle of six numbered steps over the cache.

Who runs this: `gpupool.controllers.runner` starts `run` in a thread once the cache has
listed every kind (never decide on a half-listed cluster). Each `cycle`:

1. Snapshot - each queue's decayed usage is advanced and the cache becomes a
   `ClusterSnapshot` (`gpupool.cluster.translate.snapshot`): the core's snapshot plus pools,
   the cycle's price book, taints and quota flavors, and each running attempt's accrual
   (computed once here; budgets, the planner and the cost metrics read it).
2. Lifecycle - planned from that snapshot: jobs holding GPUs advance by their pods (pure
   rules in `gpupool.cluster.writes.lifecycle`); stray pods go; share reservation pods are
   created where a share names one that is missing and deleted where nothing names them
   (`gpupool.cluster.writes.reservations`); unreadable jobs are reported. Only when this
   step wrote something is the snapshot built again from the cache (the core must see the
   GPUs a finished job gave back); in a cycle where no pod changed it is built once.
3. Decide - `core.schedule` returns admissions, preemptions and reasons, as values; the
   placement memory it returns is passed back in next cycle.
4. Apply - the planner (`gpupool.cluster.writes.plan`) turns decisions into per-job changes and
   the applier (`gpupool.cluster.writes.apply`) writes them: preemptions first, then admissions
   (status with the placement, then pods built from the decision) and waiting reasons;
   a job new to gpupool is queued by this, its first decision. Then the reservation pods
   the admitted shares name, so a share's GPU is held before its pod exists.
5. Nodes - the claim reconciler (`gpupool.cluster.nodes.claims`) creates GPUNodeClaims for the
   core's node requests, follows each claim through its provider to a Ready node, and
   releases nodes idle past their pool's `scaleDownAfter`.
6. Report - queues' and pools' status, written when it changed (a queue's budget spend
   and conditions too, with an event when a budget condition turns True).

Then, with `metrics`, the cycle's values go to `gpupool.metrics.collect.OperatorMetrics`
(gauges recomputed, counters from the changes whose writes succeeded, step durations).

Every write's answer goes into the cache at once, so the next cycle sees it before the
watch does; a failed write is logged and the next cycle plans it again. Each step's
duration of the last cycle is kept in `step_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gpupool.cluster.nodes.claims import ClaimReconciler
from gpupool.cluster.state.cache import CacheView, ClusterCache, Kind
from gpupool.cluster.state.usage import DecayedUsage
from gpupool.cluster.translate.snapshot import ClusterSnapshot, NodeConverter, build_snapshot, held_gpus, jobs_of
from gpupool.cluster.writes.apply import Applier
from gpupool.cluster.writes.plan import ChangeKind, JobChange, Planner
from gpupool.cluster.writes.status import budget_events, pool_status, queue_status, queue_status_changed
from gpupool.core import Decisions, PlacementMemory, SchedulerConfig, schedule
from gpupool.metrics.collect import CycleRecord, OperatorMetrics
from gpupool.settings import OperatorSettings

log = logging.getLogger("gpupool.loop")

STEPS = ("snapshot", "lifecycle", "decide", "apply", "nodes", "report")


class SchedulingLoop:
    """Runs cycles until stopped; all writes go through `applier`."""

    def __init__(
        self,
        cache: ClusterCache,
        applier: Applier,
        settings: OperatorSettings,
        clock: Callable[[], float] = time.time,
        *,
        claims: ClaimReconciler | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.cache = cache
        self.applier = applier
        self.settings = settings
        # None: no node autoscaling (tests of the loop alone).
        self.claims = claims
        # None: no metrics (tests of the loop alone); else observed once at each cycle's end.
        self.metrics = metrics
        self.clock = clock
        self.config = SchedulerConfig(
            scoring_policy=settings.placement_policy,
            fair_share_half_life_seconds=settings.fair_share_half_life_seconds,
        )
        self.planner = Planner(scheduler_name=settings.scheduler_name, reservations=settings.reservations)
        self.usage = DecayedUsage(settings.fair_share_half_life_seconds)
        self.nodes = NodeConverter()
        # Kept across cycles (not across restarts: a new operator learns it again).
        self.memory: PlacementMemory | None = None
        self.last_cycle_at: float | None = None
        self.cycles = 0
        self.step_seconds: dict[str, float] = {}
        self._announced: set[str] = set()

    # ------------------------------------------------------------------ running

    def run(self, stop: threading.Event, may_write: Callable[[], bool] | None = None) -> None:
        """Cycle until `stop` is set; a cycle that raises is logged and the next one retries.
        With `may_write` (leader election: still holding the Lease), a cycle starts only
        while it says so."""
        while not stop.is_set() and not self.cache.synced:
            stop.wait(0.2)
        while not stop.is_set():
            if may_write is not None and not may_write():
                stop.wait(0.2)
                continue
            try:
                self.cycle()
            except Exception:
                log.exception("scheduling cycle failed; retrying next cycle")
            self.cache.wait_for_change(self.settings.schedule_interval_seconds)
            # Let a burst of watch events settle into one cycle.
            stop.wait(0.05)

    def cycle(self) -> Decisions:
        """One cycle of the six steps in the module docstring; returns the core's decisions."""
        now = self.clock()
        with self._step("snapshot"):
            view = self.cache.view()
            usage = self._advance_usage(view, now)
            snap = self._snapshot(view, now, usage)
        with self._step("lifecycle"):
            lifecycle = self._invalid(view, snap) + self.planner.plan_lifecycle(snap, now)
            applied = self.applier.apply(lifecycle)
            if lifecycle:
                snap = self._snapshot(self.cache.view(), now, usage)
        with self._step("decide"):
            decisions = schedule(snap.snapshot, self.config, self.memory)
            self.memory = decisions.memory
        with self._step("apply"):
            changes = self.planner.plan_decisions(snap, decisions, now)
            applied += self.applier.apply([c for c in changes if c.kind == ChangeKind.PREEMPT])
            admitted = self.applier.apply([c for c in changes if c.kind != ChangeKind.PREEMPT])
            applied += admitted
            # The reservation pods the new shares name, right after the statuses that name them.
            self.applier.apply(self.planner.new_reservations(admitted, snap))
        with self._step("nodes"):
            if self.claims is not None:
                self.claims.reconcile(snap, decisions.node_requests, now)
        with self._step("report"):
            self._report(snap)
        if self.metrics is not None:
            self.metrics.observe(CycleRecord(now, snap, decisions, applied, self.cache.view(), dict(self.step_seconds)))
        self.last_cycle_at = now
        self.cycles += 1
        return decisions

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.step_seconds[name] = time.perf_counter() - started

    # ------------------------------------------------------------------ steps

    def _invalid(self, view: CacheView, snap: ClusterSnapshot) -> list[JobChange]:
        """Each job gpupool cannot read, reported once per operator run."""
        changes = []
        for key, reason in sorted({**snap.invalid_jobs, **view.invalid(Kind.JOB)}.items()):
            raw = view.raw(Kind.JOB, key)
            if key in self._announced or raw is None:
                continue
            self._announced.add(key)
            log.warning("unreadable GPUJob", extra={"job": key, "error": reason})
            changes.append(self.planner.invalid(key, raw, reason))
        return changes

    def _advance_usage(self, view: CacheView, now: float) -> dict[str, float]:
        """Each queue's decayed usage, advanced to `now` by what its jobs hold (once a cycle)."""
        jobs, _ = jobs_of(view)
        recorded = {name: q.status.decayed_usage_gpu_seconds for name, q in view.parsed(Kind.QUEUE).items()}
        return self.usage.advance(held_gpus(jobs), now, recorded)

    def _snapshot(self, view: CacheView, now: float, usage: dict[str, float]) -> ClusterSnapshot:
        return build_snapshot(
            view, now, decayed_usage=usage, seed=self.cycles, nodes=self.nodes, reservations=self.planner.reservations
        )

    def _report(self, snap: ClusterSnapshot) -> None:
        view = self.cache.view()
        jobs = {key: parsed.api for key, parsed in jobs_of(view)[0].items()}
        held = snap.holdings_of(jobs.values())
        for name, queue in sorted(view.parsed(Kind.QUEUE).items()):
            queue_now = queue_status(queue, snap, jobs, self.usage.of(name), held)
            if queue_status_changed(queue.status, queue_now):
                self.applier.write_queue_status(name, queue_now, budget_events(queue.status, queue_now))
        for name, pool in sorted(view.parsed(Kind.POOL).items()):
            pool_now = pool_status(pool, snap, held)
            if pool_now != pool.status:
                self.applier.write_pool_status(name, pool_now)
