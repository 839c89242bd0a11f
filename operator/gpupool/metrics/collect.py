"""The operator's metrics: collected once per scheduling cycle, into a registry passed in.

Who calls this: `gpupool.controllers.runner` builds one `OperatorMetrics` over a dedicated
`CollectorRegistry` (never prometheus-client's global one) and hands it to the scheduling
loop, which calls `observe` once at the end of each cycle with a `CycleRecord`: the values
the cycle already has (snapshot, decisions, the changes whose writes succeeded, the cache
after the writes, each step's duration). `gpupool.metrics.server` serves the registry.

- Gauges are recomputed from scratch each cycle (`gpupool.metrics.gauges`) and swapped in
  whole; per-job series live only there, so they vanish with their job.
- Counters and histograms count what this cycle did: the applied changes (admissions,
  preemptions, restarts, finished jobs), transitions of GPUNodeClaims between cycles
  (`ClaimWatch`), and cost (`CostMeter`). None has a per-job label.
- State kept between cycles (last cost seen per job, last phase per claim) is bounded by the
  objects that exist: entries of deleted jobs and claims are dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from gpupool.api import ClaimPhase, GPUJob, GPUNodeClaim
from gpupool.cluster.state.cache import CacheView, Kind
from gpupool.cluster.translate.convert import parse_timestamp
from gpupool.cluster.translate.snapshot import ClusterSnapshot, jobs_of
from gpupool.cluster.translate.spend import recorded_accruals
from gpupool.cluster.writes.plan import ChangeKind, JobChange
from gpupool.core.models import Decisions
from gpupool.metrics.families import FAMILIES, MetricType
from gpupool.metrics.gauges import CycleGauges, GaugeInputs, cycle_samples

log = logging.getLogger("gpupool.metrics")


@dataclass(frozen=True)
class CycleRecord:
    """What one scheduling cycle knew and did, as the metrics need it."""

    now: float
    snap: ClusterSnapshot
    decisions: Decisions
    # Lifecycle and decision changes whose status write succeeded (`Applier.apply`).
    applied: Sequence[JobChange]
    # The cache after the cycle's writes (jobs, claims and nodes as they are now).
    view: CacheView
    step_seconds: Mapping[str, float] = field(default_factory=dict)


def wait_started(job: GPUJob, now: float) -> float:
    """Since when `job` has waited for admission: when its Admitted condition last turned
    False (a wait reason, a preemption or a restart), else when it was queued, else now."""
    for condition in job.status.conditions:
        if condition.type == "Admitted" and condition.status == "False":
            since = parse_timestamp(condition.last_transition_time)
            if since is not None:
                return since
    return parse_timestamp(job.status.queued_at) or now


def job_cost(job: GPUJob, snap: ClusterSnapshot) -> tuple[float, float]:
    """(on-prem, cloud) cost of everything the job has run: its recorded attempts plus the
    running one up to the cycle's now (`ClusterSnapshot.accrual_of`: the cycle's one accrual)."""
    accruals = recorded_accruals(job)
    running = snap.accrual_of(job)
    if running is not None:
        accruals.append(running)
    cost = sum(a.cost for a in accruals)
    cloud = sum(a.cloud_cost for a in accruals)
    return max(0.0, cost - cloud), cloud


class CostMeter:
    """Turns each job's cost so far into increments of `gpupool_queue_cost_total`.

    Per job (by uid) it keeps the highest (on-prem, cloud) cost seen and adds only what goes
    above it, so nothing is counted twice across cycles: not a running attempt that becomes
    a recorded one, nor a price lowered and raised again. A job seen for the first time is
    taken as its baseline, without an increment: after an operator restart the counter starts
    at 0 and counts from there (what ran while no operator watched is not in it; Prometheus'
    `increase()` treats the restart as a counter reset). Deleted jobs are forgotten.
    """

    def __init__(self) -> None:
        self._high: dict[str, tuple[str, float, float]] = {}

    def observe(self, jobs: Iterable[GPUJob], snap: ClusterSnapshot) -> dict[tuple[str, str], float]:
        """Increments by (queue, pool class) since the last call."""
        added: dict[tuple[str, str], float] = {}
        seen: dict[str, tuple[str, float, float]] = {}
        for job in jobs:
            uid = str(job.metadata.get("uid") or f"{job.metadata.get('namespace')}/{job.metadata.get('name')}")
            on_prem, cloud = job_cost(job, snap)
            before = self._high.get(uid)
            if before is None:
                seen[uid] = (job.spec.queue, on_prem, cloud)
                continue
            queue, high_on_prem, high_cloud = before
            for pool_class, high, value in (("on_prem", high_on_prem, on_prem), ("cloud", high_cloud, cloud)):
                if value > high:
                    added[(queue, pool_class)] = added.get((queue, pool_class), 0.0) + value - high
            seen[uid] = (queue, max(high_on_prem, on_prem), max(high_cloud, cloud))
        self._high = seen
        return added


@dataclass(frozen=True)
class ClaimStep:
    """One claim's move between two cycles: a scale-up result or a scale-down reason."""

    pool: str
    family: str
    result: str
    seconds_to_ready: float | None = None


class ClaimWatch:
    """Compares each cycle's GPUNodeClaims with the previous cycle's and reports the moves.

    At the first call the claims of `before` (those the cycle started with) stand for the
    previous cycle's, so claims made before this operator started are not counted again but
    the ones its first cycle makes are. A claim's provisioning time runs from its
    creationTimestamp (else from when it was first seen) to its `readyAt`.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, ClaimPhase]] | None = None
        self._first_seen: dict[str, float] = {}

    def observe(
        self, claims: Mapping[str, GPUNodeClaim], now: float, before: Mapping[str, GPUNodeClaim]
    ) -> list[ClaimStep]:
        """The moves from the last call's claims (or `before`, the first time) to `claims`."""
        last = self._last
        if last is None:
            last = {name: (c.spec.pool, c.status.phase) for name, c in before.items()}
        self._last = {name: (c.spec.pool, c.status.phase) for name, c in claims.items()}
        self._first_seen = {name: self._first_seen.get(name, now) for name in claims}
        steps: list[ClaimStep] = []
        for name, claim in sorted(claims.items()):
            pool, phase = claim.spec.pool, claim.status.phase
            previous = last.get(name)
            if previous is None:
                steps.append(ClaimStep(pool, "gpupool_scale_ups_total", "requested"))
            elif previous[1] == phase:
                continue
            if phase == ClaimPhase.READY:
                created = parse_timestamp(claim.metadata.get("creationTimestamp")) or self._first_seen[name]
                ready = parse_timestamp(claim.status.ready_at) or now
                steps.append(ClaimStep(pool, "gpupool_scale_ups_total", "ready", max(0.0, ready - created)))
            elif phase == ClaimPhase.FAILED:
                steps.append(ClaimStep(pool, "gpupool_scale_ups_total", "failed"))
            elif phase == ClaimPhase.DELETING:
                steps.append(ClaimStep(pool, "gpupool_scale_downs_total", "idle"))
        for name, (pool, phase) in sorted(last.items()):
            if name not in claims and phase == ClaimPhase.READY:
                steps.append(ClaimStep(pool, "gpupool_scale_downs_total", "lost"))
        return steps


class OperatorMetrics:
    """Every family of `gpupool.metrics.families`, registered in `registry`, fed once per cycle.

    `opencost=False` leaves the OpenCost-compatible families out (for a Prometheus that also
    scrapes OpenCost itself and should not get two sources of the same series).
    """

    def __init__(self, registry: CollectorRegistry, *, opencost: bool = True) -> None:
        self.registry = registry
        self.opencost = opencost
        self.counters = {
            f.name: Counter(f.name, f.help, f.label_names, registry=registry)
            for f in FAMILIES
            if f.type == MetricType.COUNTER
        }
        self.histograms = {
            f.name: Histogram(f.name, f.help, f.label_names, registry=registry, buckets=f.buckets)
            for f in FAMILIES
            if f.type == MetricType.HISTOGRAM
        }
        self.gauges = CycleGauges(
            [f for f in FAMILIES if f.type == MetricType.GAUGE and (opencost or f.source != "opencost")]
        )
        registry.register(self.gauges)
        self.cost = CostMeter()
        self.claims = ClaimWatch()
        self._zeroed: set[tuple[str, str]] = set()

    def observe(self, cycle: CycleRecord) -> None:
        """Publish the cycle's gauges and count what it did. A failure here is logged and never
        fails the cycle: the scheduling loop's work is done by then."""
        try:
            self._observe(cycle)
        except Exception:
            log.exception("metrics collection failed; the next cycle tries again")

    def _zero_pool_counters(self, pools: Iterable[str]) -> None:
        """Create each pool's scale-up and scale-down series at 0: a labelled counter is born
        at its first increment otherwise, and `increase()` cannot see that first step (so a
        pool's first failed launch would never raise GPUPoolScaleUpFailing)."""
        for pool in pools:
            for result in ("requested", "ready", "failed"):
                self.counters["gpupool_scale_ups_total"].labels(pool, result)
            for reason in ("idle", "lost"):
                self.counters["gpupool_scale_downs_total"].labels(pool, reason)

    def _observe(self, cycle: CycleRecord) -> None:
        jobs = {key: parsed.api for key, parsed in jobs_of(cycle.view)[0].items()}
        self._zero_pool_counters(cycle.snap.pools)
        inputs = GaugeInputs(cycle.snap, cycle.decisions, jobs, cycle.view)
        self.gauges.publish(cycle_samples(inputs, opencost=self.opencost))
        self._zero_new_series(cycle.snap.queues, cycle.snap.pools)
        self._count_changes(cycle, jobs)
        costs = self.cost.observe(jobs.values(), cycle.snap)
        for (queue, pool_class), amount in costs.items():
            self.counters["gpupool_queue_cost_total"].labels(queue, pool_class).inc(amount)
        for step in self.claims.observe(cycle.view.parsed(Kind.CLAIM), cycle.now, cycle.snap.claims):
            self.counters[step.family].labels(step.pool, step.result).inc()
            if step.seconds_to_ready is not None:
                self.histograms["gpupool_node_provisioning_duration_seconds"].labels(step.pool).observe(
                    step.seconds_to_ready
                )
        for name, seconds in cycle.step_seconds.items():
            self.histograms["gpupool_scheduling_step_duration_seconds"].labels(name).observe(seconds)
        if cycle.step_seconds:
            self.histograms["gpupool_scheduling_cycle_duration_seconds"].observe(sum(cycle.step_seconds.values()))

    def _zero_new_series(self, queues: Iterable[str], pools: Iterable[str]) -> None:
        """Create, at 0, every counter and histogram series of a queue or pool seen for the first
        time (each value of the other, closed labels), so its first event shows in increase()."""
        for family in FAMILIES:
            if family.type == MetricType.GAUGE or not family.labels:
                continue
            key, *others = family.labels
            names = queues if key.name == "queue" else pools if key.name == "pool" else ()
            metric = self.counters.get(family.name) or self.histograms[family.name]
            for name in names:
                if (family.name, name) in self._zeroed:
                    continue
                self._zeroed.add((family.name, name))
                for values in itertools.product(*(label.values for label in others)):
                    metric.labels(name, *values)

    def _count_changes(self, cycle: CycleRecord, jobs: Mapping[str, GPUJob]) -> None:
        admissions = {a.job_key: a for a in cycle.decisions.admissions}
        preemptions = {p.victim_key: p for p in cycle.decisions.preemptions}
        for change in cycle.applied:
            job = cycle.snap.jobs.get(change.key) or jobs.get(change.key)
            if job is None:
                continue
            queue = job.spec.queue
            if change.kind == ChangeKind.ADMIT and change.key in admissions:
                reason = "borrowed" if admissions[change.key].borrowed_gpus > 0 else "nominal"
                self.counters["gpupool_admissions_total"].labels(queue, reason).inc()
                waited = max(0.0, cycle.now - wait_started(job, cycle.now))
                self.histograms["gpupool_admission_wait_seconds"].labels(queue).observe(waited)
            elif change.kind == ChangeKind.PREEMPT and change.key in preemptions:
                preemptor = cycle.snap.jobs.get(preemptions[change.key].preemptor_key)
                same = preemptor is not None and preemptor.spec.queue == queue
                self.counters["gpupool_preemptions_total"].labels(queue, "within_queue" if same else "reclaim").inc()
            elif change.kind == ChangeKind.RESTART:
                reasons = {event.reason for event in change.events}
                reason = (
                    "node_lost"
                    if "Interrupted" in reasons
                    else "admission_rejected"
                    if "AdmissionRejected" in reasons
                    else "worker_failed"
                )
                self.counters["gpupool_job_restarts_total"].labels(queue, reason).inc()
            elif change.kind in (ChangeKind.FINISH, ChangeKind.FAIL):
                result = "succeeded" if change.kind == ChangeKind.FINISH else "failed"
                self.counters["gpupool_jobs_finished_total"].labels(queue, result).inc()
