"""The discrete-event loop the simulations share: jobs arrive, the core decides, nodes come and go.

Who uses this: `gpupool.bench.burst` (`gpupool bench burst`) and `gpupool.whatif.planning`
(`gpupool sim`, the what-if capacity planner) subclass `EventSim`; their tests drive it
through them.

At every event time that can change a decision (arrivals; completions, nodes turning Ready,
nominations and `wake` calls while jobs wait) it builds a `Snapshot` — the fixed nodes and the Ready
cloud nodes, running jobs with their placements, pending jobs, `offers` for the pools that
scale, `in_flight` for nodes requested and not Ready, `nominations` for Ready nodes
requested for jobs that still wait — and calls `gpupool.core.schedule`. Admissions start
jobs, which run for `duration(key)`; `Decisions.node_requests` become in-flight nodes that
turn Ready after `provisioning_delay(pool)`; cloud nodes idle for
`scale_down_after(pool)` are given back as `gpupool.core.autoscale.nodes_to_release`
picks them. Nothing runs per second: between events nothing changes.

Subclasses say what differs through the hooks: `queues_at` (e.g. budgets that move with
time), `offers_at` (e.g. headroom under a pool's `maxNodes`), `duration`,
`provisioning_delay`, `scale_down_after`, `min_nodes`, `on_preempted` (the base raises:
a bench with one queue and one priority never preempts), `on_started` / `on_ended`
(accounting) and `after_decide`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gpupool.core import Job, Queue, SchedulerConfig, Snapshot, schedule
from gpupool.core.autoscale import ReleaseCandidate, nodes_to_release
from gpupool.core.models import Admission, Decisions, GpuNode, InFlightNode, NodeOffer
from gpupool.core.placement import PlacementMemory
from gpupool.core.roofline import NO_HARDWARE

ARRIVE, FINISH, READY, CHECK, WAKE = 0, 1, 2, 3, 4


@dataclass(slots=True)
class CloudNode:
    """A node the simulation rented: from its request to its release."""

    node: GpuNode
    price_per_hour: float
    requested_at: float
    jobs: tuple[str, ...] = ()
    ready_at: float | None = None
    released_at: float | None = None
    idle_since: float | None = None
    running: int = 0
    used_gpu_seconds: float = 0.0


class EventSim:
    """The mutable state of one simulation; `run()` plays every event (see the module docstring)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        fixed_nodes: Sequence[GpuNode],
        queues: Sequence[Queue],
        offers: Sequence[NodeOffer],
        config: SchedulerConfig | None = None,
    ) -> None:
        self.jobs = {j.key: j for j in jobs}
        self.fixed_nodes = list(fixed_nodes)
        self.queues = tuple(queues)
        self.offers = tuple(offers)
        self.scheduler_config = config or SchedulerConfig()
        self.hardware = NO_HARDWARE
        self.events: list[tuple[float, int, int, str]] = []
        self.seq = 0
        self.pending: dict[str, Job] = {}
        self.running: dict[str, Job] = {}
        self.started: dict[str, float] = {}  # first start of each job
        self.finish_at: dict[str, float] = {}  # the running attempt's end
        self.cloud: dict[str, CloudNode] = {}
        self.in_flight: dict[str, CloudNode] = {}
        self.checks: set[float] = set()
        self.memory: PlacementMemory | None = None
        self.calls = 0
        self.claims = 0
        self.released = 0
        self.gone: list[CloudNode] = []
        for job in jobs:
            self.push(job.submitted_at, ARRIVE, job.key)

    # -- hooks ----------------------------------------------------------------------------

    def duration(self, job: Job, admission: Admission) -> float:
        raise NotImplementedError

    def queues_at(self, now: float) -> tuple[Queue, ...]:
        return self.queues

    def offers_at(self, now: float) -> tuple[NodeOffer, ...]:
        return self.offers

    def provisioning_delay(self, pool: str) -> float:
        raise NotImplementedError

    def scale_down_after(self, pool: str) -> float:
        raise NotImplementedError

    def min_nodes(self, pool: str) -> int:
        return 0

    def on_started(self, job: Job, now: float, duration: float) -> None:
        """A job's attempt started (its placements are set)."""

    def on_ended(self, job: Job, now: float, completed: bool) -> None:
        """A job's attempt ended: it completed, or it was preempted (`completed` False)."""

    def on_preempted(self, victim: str, now: float) -> None:
        raise RuntimeError(f"unexpected preemption of {victim} at {now}")

    def after_decide(self, now: float, decisions: Decisions) -> None:
        """Runs after each decision step's admissions and node requests are applied."""

    def on_step(self, now: float) -> None:
        """Runs after each event time (progress reports)."""

    # -- the loop -------------------------------------------------------------------------

    def wake(self, at: float) -> None:
        """Decide again at `at` if jobs still wait then (the operator's next cycle)."""
        self.push(at, WAKE, "")

    def push(self, at: float, kind: int, key: str) -> None:
        heapq.heappush(self.events, (at, kind, self.seq, key))
        self.seq += 1

    def run(self) -> None:
        while self.events:
            now = self.events[0][0]
            decide = False
            while self.events and self.events[0][0] == now:
                _, kind, _, key = heapq.heappop(self.events)
                if kind == ARRIVE:
                    self.pending[key] = self.jobs[key]
                    decide = True
                elif kind == FINISH:
                    if self.finish_at.get(key) == now and key in self.running:
                        self.finish(key, now)
                        decide = decide or bool(self.pending)
                elif kind == READY:
                    self.ready(key, now)
                    decide = decide or bool(self.pending)
                elif kind == WAKE:
                    decide = decide or bool(self.pending)
                else:
                    self.checks.discard(now)
            if decide:
                self.decide(now)
            self.scale_down(now)
            self.on_step(now)

    def finish(self, key: str, now: float, completed: bool = True) -> Job:
        """End the running attempt of `key`: free its cloud nodes and report it."""
        job = self.running.pop(key)
        del self.finish_at[key]
        for name in {p.node for p in job.placements}:
            node = self.cloud.get(name)
            if node is not None:
                node.running -= 1
                if node.running == 0:
                    node.idle_since = now
        self.on_ended(job, now, completed)
        return job

    def ready(self, claim: str, now: float) -> None:
        node = self.in_flight.pop(claim)
        node.ready_at = now
        node.idle_since = now
        node.jobs = tuple(k for k in node.jobs if k in self.pending)
        self.cloud[claim] = node

    # -- one decision step ------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        ready = [c.node for c in self.cloud.values()]
        in_flight = tuple(
            InFlightNode(claim, c.node.pool, c.node, c.jobs, c.requested_at) for claim, c in self.in_flight.items()
        )
        nominations = {name: c.jobs for name, c in self.cloud.items() if c.jobs}
        return Snapshot(
            now=now,
            nodes=(*self.fixed_nodes, *ready),
            queues=self.queues_at(now),
            running=tuple(self.running.values()),
            pending=tuple(self.pending.values()),
            offers=self.offers_at(now),
            in_flight=in_flight,
            nominations=nominations,
            hardware=self.hardware,
        )

    def decide(self, now: float) -> None:
        decisions = schedule(self.snapshot(now), self.scheduler_config, self.memory)
        self.memory = decisions.memory
        self.calls += 1
        for preemption in decisions.preemptions:
            self.on_preempted(preemption.victim_key, now)
        for admission in decisions.admissions:
            job = replace(self.pending.pop(admission.job_key), placements=admission.placements, admitted_at=now)
            duration = self.duration(job, admission)
            self.running[job.key] = job
            self.started.setdefault(job.key, now)
            self.finish_at[job.key] = now + duration
            self.push(now + duration, FINISH, job.key)
            for name in {p.node for p in job.placements}:
                node = self.cloud.get(name)
                if node is not None:
                    node.running += 1
                    node.idle_since = None
                    node.used_gpu_seconds += job.total_gpu_milli / 1000 * duration
            self.on_started(job, now, duration)
        for node in self.cloud.values():
            if node.jobs:
                node.jobs = tuple(k for k in node.jobs if k in self.pending)
        for claim in self.in_flight.values():
            claim.jobs = tuple(k for k in claim.jobs if k in self.pending)
        for request in decisions.node_requests:
            offer = next(o for o in self.offers if o.pool == request.pool and o.node.spot == request.spot)
            for _ in range(request.nodes):
                self.request(offer.node, offer.price_per_hour, request.jobs, now)
        self.after_decide(now, decisions)

    def request(self, template: GpuNode, price: float, jobs: tuple[str, ...], now: float) -> str:
        """Ask for one node like `template`; it turns Ready after the pool's provisioning delay."""
        claim = f"{template.pool}{'-spot' if template.spot else ''}-{self.claims:05d}"
        self.claims += 1
        node = replace(template, name=claim, ready=True)
        self.in_flight[claim] = CloudNode(node, price, now, jobs)
        self.push(now + self.provisioning_delay(template.pool), READY, claim)
        return claim

    def scale_down(self, now: float) -> None:
        pool_nodes: dict[str, int] = {}
        for c in self.cloud.values():
            pool_nodes[c.node.pool] = pool_nodes.get(c.node.pool, 0) + 1
        candidates = [
            ReleaseCandidate(
                node=name,
                pool=c.node.pool,
                idle_since=c.idle_since,
                scale_down_after_seconds=self.scale_down_after(c.node.pool),
                pool_nodes=pool_nodes[c.node.pool],
                min_nodes=self.min_nodes(c.node.pool),
                nominated=bool(c.jobs),
            )
            for name, c in self.cloud.items()
        ]
        for name in nodes_to_release(candidates, now):
            node = self.cloud.pop(name)
            node.released_at = now
            self.released += 1
            self.gone.append(node)
        for c in self.cloud.values():
            if c.idle_since is not None and not c.jobs:
                due = c.idle_since + self.scale_down_after(c.node.pool)
                if due > now and due not in self.checks:
                    self.checks.add(due)
                    self.push(due, CHECK, "")


__all__ = ["ARRIVE", "CHECK", "FINISH", "READY", "WAKE", "CloudNode", "EventSim"]
