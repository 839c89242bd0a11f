"""One scheduling cycle: a snapshot in, decisions out.

Who calls this: the operator's scheduling loop calls `schedule(snapshot, config)` once per
cycle and applies the returned `Decisions`; `gpupool bench cycle` calls the very same
function. (The trace bench replays pods through the placement engine directly.) Nothing
here performs I/O, reads the clock, uses global randomness or keeps state between calls:
the placement engine's random generator is seeded from `snapshot.seed`, and what
placement learns is passed in and out explicitly (`memory`, a `PlacementMemory`), so
identical snapshots, configs and memories give identical decisions.

The cycle, step by step:

1. Build the cycle's working state: per-GPU allocation (`PlacementState`), quota usage
   (`QuotaLedger`) and node eligibility masks, from the snapshot's nodes and running
   jobs; and a fork of the given `PlacementMemory` (or a fresh one) whose workload mix,
   which the scoring policy scores against, counts every running and pending job it has
   not seen before. The fork comes back in `Decisions.memory`.
2. Take pending jobs one at a time in scheduling order (`QueueTurns`: priority, fair
   share, submission time), in two passes: the first admits only jobs that fit within
   their queue's nominal quota, the second lets the rest borrow from the cohort (so a
   borrower never takes capacity a lender's own job could use this cycle and is then
   reclaimed by preemption a cycle later). Once a queue's job needs to borrow, the rest
   of that queue follows it to the second pass, keeping the order within the queue.
   Preemption, too, happens in the second pass unless the job fits within nominal.
   Jobs of unknown queues, of queues whose budget is spent and with priority above
   their queue's maximum wait with a reason right away.
3. For each job, try pool stages from on-prem outwards and, within a stage, the queue's
   quota flavors in quota order; the first (stage, flavor) whose quota has room and
   whose allowed nodes hold the whole gang wins. Shapes that failed on a mask are
   remembered: capacity only shrinks within a cycle, so they fail fast afterwards.
4. A job that does not fit tries preemption (`gpupool.core.preemption`). When victims
   are found, the job's placement and the victims' nodes are held for it this cycle and
   it waits for the evictions.
5. Otherwise it waits. The first job a queue cannot fit for lack of capacity reserves
   the nodes it would start on (those with the most free capacity for its shape) and the
   quota it needs; jobs after it — of any queue — only backfill onto other nodes, so
   they never delay it. Under StrictFIFO the rest of its queue waits behind it.

A job whose `cpu_fallback` is not Never may also run on a CPU-only node
(`gpupool.core.cpufallback`): a Preferred one tries that first unless its profile says a
GPU is much cheaper; past its `cpu_fallback_after_seconds` any such job tries it after a
GPU could not take it now and before preemption or a reservation. Such an admission holds
no GPU and no quota.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from gpupool.core import reasons
from gpupool.core.autoscale import plan_nodes
from gpupool.core.budget import Scope
from gpupool.core.capacity import fits_now
from gpupool.core.cpufallback import CpuCandidate, CpuVerdict, cpu_first, fallback_due, is_cpu_node, on_cpu
from gpupool.core.eligibility import Mask, NodeEligibility
from gpupool.core.fairshare import dominant_share
from gpupool.core.models import (
    MILLI_PER_GPU,
    Admission,
    CpuFallback,
    Decisions,
    Device,
    GpuNode,
    Job,
    NodeRequest,
    PlacementPolicy,
    Preemption,
    Queue,
    QueueingStrategy,
    SchedulerConfig,
    Snapshot,
    WaitCode,
    Waiting,
    WorkerPlacement,
)
from gpupool.core.ordering import QueueTurns, priority_allowed
from gpupool.core.placement import PlacementMemory, PlacementState
from gpupool.core.preemption import Candidate, may_be_victim, plan_preemption
from gpupool.core.quota import QuotaLedger, resolve_flavors
from gpupool.core.roofline import Estimate, ModelChoice, PoolCandidate, choice_of, rank_candidates

DEFAULT_CONFIG = SchedulerConfig()
# Waits that new nodes could end (the autoscale planner considers these jobs).
_NODE_CODES = frozenset({WaitCode.INSUFFICIENT_CAPACITY, WaitCode.NO_FITTING_NODE, WaitCode.QUOTA_EXHAUSTED})


def _closed_to_cloud_if_spent(queue: Queue) -> Queue:
    """A queue whose CloudOnly budget is spent still admits on-prem work: it loses cloud
    (and with it any new node) instead of being stopped."""
    standing = queue.budget_standing
    if queue.budget_exhausted and standing is not None and standing.limits.scope == Scope.CLOUD_ONLY:
        return replace(queue, allow_cloud=False, budget_exhausted=False, budget_left=0.0)
    return queue


def _flavor_of(queue: Queue, node: GpuNode) -> str | None:
    """The flavor of `queue` a node like `node` counts against (None: no quota there)."""
    names, index = resolve_flavors(queue, (node,))
    return names[int(index[0])] if index[0] >= 0 else None


def schedule(
    snapshot: Snapshot, config: SchedulerConfig = DEFAULT_CONFIG, memory: PlacementMemory | None = None
) -> Decisions:
    """Decide one cycle: admissions with placements, preemptions, and why the rest wait.

    `memory` is the previous cycle's `Decisions.memory` (None: start fresh); it is never
    changed. The returned `Decisions.memory` is its updated fork, for the next cycle.
    """
    return _Cycle(snapshot, config, memory).run()


@dataclass(slots=True)
class _Option:
    """One (pool stage, quota flavor) a job may try, with its allowed-node mask."""

    flavor: str
    mask: Mask
    mask_id: int


@dataclass(slots=True)
class _Outcome:
    """What considering one job produced."""

    placements: tuple[WorkerPlacement, ...] | None = None
    flavor: str = ""
    waiting: Waiting | None = None
    needs_borrowing: bool = False
    choice: ModelChoice | None = None
    device: Device = Device.GPU
    device_reason: str = ""


class _QueueFlavors:
    """One queue's flavors and, per flavor, the mask of nodes that resolve to it."""

    def __init__(self, queue: Queue, eligibility: NodeEligibility) -> None:
        self.names, self.index = resolve_flavors(queue, eligibility.nodes)
        self.masks: list[Mask] = [self.index == i for i in range(len(self.names))]

    def of_row(self, row: int) -> str | None:
        i = int(self.index[row])
        return None if i < 0 else self.names[i]


class _Cycle:
    """The mutable working state of one `schedule` call (never outlives it)."""

    def __init__(self, snapshot: Snapshot, config: SchedulerConfig, memory: PlacementMemory | None) -> None:
        self.snapshot = snapshot
        self.config = config
        self.queues: dict[str, Queue] = {q.name: _closed_to_cloud_if_spent(q) for q in snapshot.queues}
        self.cloud_closed = {q.name for q in snapshot.queues if q.allow_cloud and not self.queues[q.name].allow_cloud}
        self.eligibility = NodeEligibility(snapshot.nodes)
        self.state = PlacementState.build(snapshot.nodes, snapshot.running)
        # Rows of nodes where pods gpupool does not manage hold something (usually few).
        self.foreign_rows = np.array(
            [
                i
                for i, n in enumerate(snapshot.nodes)
                if n.reserved_gpus or n.reserved_cpu_milli or n.reserved_memory_bytes or n.reserved_pods
            ],
            dtype=np.int64,
        )
        self.ledger = QuotaLedger(snapshot.queues)
        self.flavors: dict[str, _QueueFlavors] = {
            name: _QueueFlavors(q, self.eligibility) for name, q in self.queues.items()
        }
        self.rng = np.random.default_rng(snapshot.seed)
        self.memory = memory.fork() if memory is not None else PlacementMemory()
        self.memory.observe_jobs((*snapshot.running, *snapshot.pending))
        self.cluster_gpus = float(sum(n.gpus for n in snapshot.nodes))
        # Nodes of CPU pools: only the CPU fallback option places jobs there.
        self.cpu_rows: Mask = np.array([is_cpu_node(n) for n in snapshot.nodes], dtype=bool)
        self.held: dict[str, int] = dict.fromkeys(self.queues, 0)
        self.candidates: dict[str, list[Candidate]] = {}
        for job in snapshot.running:
            self._account_running(job)
        # per-cycle caches and reservations
        self.reserved: Mask = np.zeros(len(snapshot.nodes), dtype=bool)
        self.reserved_for: list[str] = []
        self.reserving_queues: set[str] = set()
        # Quota charged for jobs that wait holding it, refunded if the autoscaler plans them.
        self.reserved_quota: dict[str, tuple[str, str, int]] = {}
        self.reserved_rows: dict[str, npt.NDArray[np.int64]] = {}
        # Jobs that would fit now but for capacity held for jobs ahead: new nodes end their
        # wait too (jobs held back by the per-cycle admission limit are not among them).
        self.behind_reserved: set[str] = set()
        # Ready nodes requested for some jobs are held for them (Karpenter's nominated nodes).
        self.nominated_for: dict[str, Mask] = {}
        for name, job_keys in sorted(snapshot.nominations.items()):
            try:
                row = self.state.index_of(name)
            except KeyError:
                continue
            self.reserved[row] = True
            for key in job_keys:
                mask = self.nominated_for.setdefault(key, np.zeros(len(snapshot.nodes), dtype=bool))
                mask[row] = True
                if key not in self.reserved_for:
                    self.reserved_for.append(key)
        self._mask_ids: dict[bytes, int] = {}
        self._options: dict[tuple[object, ...], list[_Option]] = {}
        self._ever: dict[tuple[object, ...], bool] = {}
        self._failed: set[tuple[object, ...]] = set()
        self._preempt_failed: set[tuple[object, ...]] = set()
        self._pool_candidates: dict[tuple[object, ...], list[tuple[PoolCandidate, Mask]]] = {}
        self.admissions: list[Admission] = []
        self.preemptions: list[Preemption] = []
        self.waiting: list[Waiting] = []

    # -- set-up --------------------------------------------------------------------------

    def _account_running(self, job: Job) -> None:
        flavors = self.flavors.get(job.queue)
        if flavors is None:
            return
        per_flavor: dict[str, int] = {}
        known: list[WorkerPlacement] = []
        rows: list[int] = []
        for p in job.placements:
            try:
                row = self.state.index_of(p.node)
            except KeyError:
                continue
            known.append(p)
            rows.append(row)
            milli = sum(s.milli for s in p.gpus) if p.gpus else job.shape.gpu_milli
            self.held[job.queue] += milli
            flavor = flavors.of_row(row)
            if flavor is not None:
                per_flavor[flavor] = per_flavor.get(flavor, 0) + milli
        for flavor, milli in sorted(per_flavor.items()):
            self.ledger.charge(job.queue, flavor, milli)
        if known and may_be_victim(job, self.queues, self.snapshot.now):
            self.candidates.setdefault(job.queue, []).append(
                Candidate(
                    job=job,
                    placements=tuple(known),
                    flavor_milli=tuple(sorted(per_flavor.items())),
                    rows=tuple(rows),
                )
            )

    def _share_of(self, queue_name: str) -> float:
        queue = self.queues[queue_name]
        return dominant_share(
            queue.decayed_usage_gpu_seconds,
            self.held.get(queue_name, 0) / MILLI_PER_GPU,
            queue.weight,
            self.cluster_gpus,
            self.config.fair_share_half_life_seconds,
        )

    def _mask_id(self, mask: Mask) -> int:
        key = mask.tobytes()
        found = self._mask_ids.get(key)
        if found is None:
            found = len(self._mask_ids)
            self._mask_ids[key] = found
        return found

    def _options_for(self, job: Job, queue: Queue) -> list[_Option]:
        """(stage, flavor) options in the order to try them, cached per distinct input."""
        key = (job.tolerations, job.placement_policy, queue.name, job.shape.whole_gpus > 0)
        found = self._options.get(key)
        if found is not None:
            return found
        out: list[_Option] = []
        seen: set[int] = set()
        flavors = self.flavors[queue.name]
        for stage in self.eligibility.stages(job, queue):
            for name, flavor_mask in zip(flavors.names, flavors.masks, strict=True):
                mask = stage & flavor_mask
                if not mask.any():
                    continue
                mask_id = self._mask_id(mask)
                if mask_id in seen:
                    continue
                seen.add(mask_id)
                out.append(_Option(name, mask, mask_id))
        self._options[key] = out
        return out

    def _could_ever_fit(self, job: Job, mask: Mask, mask_id: int) -> bool:
        key = (job.shape, job.workers, job.gpu_models, mask_id)
        found = self._ever.get(key)
        if found is None:
            found = self.eligibility.could_ever_fit(job, mask)
            self._ever[key] = found
        return found

    def _place(self, job: Job, mask: Mask) -> tuple[WorkerPlacement, ...] | None:
        return self.state.place(
            job,
            allowed=mask,
            scoring_policy=self.config.scoring_policy,
            gpupool_params=self.config.gpupool_params,
            rng=self.rng,
            memory=self.memory,
        )

    # -- the cycle -------------------------------------------------------------------------

    def run(self) -> Decisions:
        known = [j for j in self.snapshot.pending if j.queue in self.queues]
        for orphan in self.snapshot.pending:
            if orphan.queue not in self.queues:
                self._wait(orphan, WaitCode.QUEUE_NOT_FOUND, reasons.queue_not_found(orphan))
        # Pass 1 admits only what fits within nominal quota; pass 2 lets the rest borrow.
        # Borrowing is opportunistic (as in Kueue): a job that would borrow never takes
        # capacity that a lender's own pending job could use within its nominal quota this
        # cycle, so a borrower is not admitted only to be reclaimed one cycle later.
        deferred = self._pass(known, allow_borrow=False)
        self._pass(deferred, allow_borrow=True)
        node_requests = self._plan_nodes() if self.snapshot.offers or self.snapshot.in_flight else ()
        return Decisions(
            admissions=tuple(self.admissions),
            preemptions=tuple(self.preemptions),
            waiting=tuple(self.waiting),
            node_requests=node_requests,
            memory=self.memory,
        )

    def _plan_nodes(self) -> tuple[NodeRequest, ...]:
        """New nodes for jobs left waiting for capacity (`gpupool.core.autoscale`); their
        waiting reasons then name the nodes they wait for."""
        pending = {j.key: j for j in self.snapshot.pending}
        candidates = [
            pending[w.job_key]
            for w in self.waiting
            if w.job_key in pending and (w.code in _NODE_CODES or w.job_key in self.behind_reserved)
        ]
        for job in candidates:
            held = self.reserved_quota.pop(job.key, None)
            if held is not None:
                self.ledger.refund(*held)
            rows = self.reserved_rows.pop(job.key, None)
            if rows is not None:
                self.reserved[rows] = False  # the planner may count them for this job's gang
        plan = plan_nodes(
            candidates,
            self.queues,
            self.snapshot.offers,
            self.snapshot.in_flight,
            self.ledger,
            _flavor_of,
            cost_horizon_seconds=self.config.cost_horizon_seconds,
            existing=self._free_on_scalable_nodes(),
            hardware=self.snapshot.hardware,
        )
        waits = {w.job_key: w for w in plan.waits}
        updated: list[Waiting] = []
        for waiting in self.waiting:
            waiter = pending.get(waiting.job_key)
            wait = waits.get(waiting.job_key)
            if waiter is not None and wait is not None:
                message = reasons.waiting_for_nodes(waiter, wait.pool, wait.nodes, wait.requested_at, self.snapshot.now)
                waiting = Waiting(waiter.key, WaitCode.NODES_PROVISIONING, message)
            elif waiter is not None and waiting.job_key in plan.refused_by_budget:
                left = self.queues[waiter.queue].budget_left or 0.0
                projected = plan.refused_by_budget[waiting.job_key]
                waiting = Waiting(
                    waiter.key, waiting.code, reasons.over_budget_for_new_nodes(waiting.message, projected, left)
                )
            updated.append(waiting)
        self.waiting = updated
        return plan.requests

    def _pass(self, jobs: list[Job], *, allow_borrow: bool) -> list[Job]:
        """Consider `jobs` in scheduling order; return those deferred to the borrowing pass."""
        deferred: list[Job] = []
        turns = QueueTurns(jobs, self._share_of)
        limit = self.config.max_admissions_per_cycle
        while (job := turns.pop()) is not None:
            queue = self.queues[job.queue]
            if queue.budget_exhausted:
                for j in (job, *turns.drain(queue.name)):
                    self._wait(j, WaitCode.BUDGET_EXHAUSTED, reasons.budget_exhausted(j, queue.budget_standing))
                continue
            if not priority_allowed(job, queue):
                assert queue.max_priority is not None
                self._wait(
                    job,
                    WaitCode.PRIORITY_ABOVE_QUEUE_MAX,
                    reasons.priority_above_max(job, queue.max_priority),
                )
                continue
            if limit is not None and len(self.admissions) >= limit:
                self._wait(
                    job,
                    WaitCode.BEHIND_HIGHER_PRIORITY,
                    f"this cycle admitted its maximum of {limit} jobs; {job.key} is considered again next cycle",
                )
                continue
            if job.cpu_fallback == CpuFallback.NEVER:
                outcome = self._consider_gpu(job, queue, allow_borrow=allow_borrow)
            else:
                outcome = self._consider_with_fallback(job, queue, allow_borrow=allow_borrow)
            if outcome.placements is not None and outcome.device == Device.CPU:
                self._admit_on_cpu(job, outcome.placements, outcome.device_reason)
                continue
            if outcome.placements is not None:
                self._admit(job, queue, outcome.flavor, outcome.placements, outcome.choice)
                continue
            if outcome.needs_borrowing:
                # The rest of its queue moves to the borrowing pass too: passes reorder
                # queues, never jobs within a queue (a lower-priority job of the same
                # queue must not take, within nominal, what this one is waiting for).
                deferred.append(job)
                deferred.extend(turns.drain(queue.name))
                continue
            assert outcome.waiting is not None
            waiting = outcome.waiting
            if queue.name in self.cloud_closed and job.placement_policy != PlacementPolicy.ON_PREM_ONLY:
                standing = queue.budget_standing
                assert standing is not None
                waiting = replace(waiting, message=reasons.cloud_closed_by_budget(waiting.message, job, standing))
            self.waiting.append(waiting)
            if queue.strategy == QueueingStrategy.STRICT_FIFO:
                for j in turns.drain(queue.name):
                    self._wait(j, WaitCode.BLOCKED_BY_HEAD_OF_LINE, reasons.blocked_by_head(j, job.key))
        return deferred

    def _free_on_scalable_nodes(self) -> list[GpuNode]:
        """Ready nodes of the offered pools, not held for anyone this cycle, as nodes whose
        `reserved_*` hold everything but what is free on them now (whole idle GPUs).
        `shares_only` nodes are left out: the plan would put whole-GPU workers there."""
        pools = {offer.pool for offer in self.snapshot.offers}
        state = self.state
        out = []
        for row in np.flatnonzero(state.ready & ~self.reserved):
            node = state.nodes[row]
            if node.pool not in pools or state.idle[row] == 0 or node.shares_only:
                continue
            out.append(
                replace(
                    node,
                    reserved_gpus=node.gpus - int(state.idle[row]),
                    reserved_cpu_milli=node.cpu_milli - int(state.cpu_free[row]),
                    reserved_memory_bytes=node.memory_bytes - int(state.memory_free[row]),
                    reserved_pods=node.max_pods - int(state.pods_free[row]),
                )
            )
        return out

    def _blocked_for(self, job: Job) -> Mask:
        """Nodes held this cycle for other jobs (reserved, or nominated for someone else)."""
        own = self.nominated_for.get(job.key)
        return self.reserved if own is None else self.reserved & ~own

    def _wait(self, job: Job, code: WaitCode, message: str) -> None:
        self.waiting.append(Waiting(job.key, code, message))

    def _admit(
        self,
        job: Job,
        queue: Queue,
        flavor: str,
        placements: tuple[WorkerPlacement, ...],
        choice: ModelChoice | None = None,
    ) -> None:
        need = job.total_gpu_milli
        borrowed = self.ledger.borrowed_after(queue.name, flavor, need)
        self.state.allocate(placements, job.shape)
        self.ledger.charge(queue.name, flavor, need)
        self.held[queue.name] = self.held.get(queue.name, 0) + need
        self.admissions.append(Admission(job.key, placements, borrowed / MILLI_PER_GPU, choice))

    def _admit_on_cpu(self, job: Job, placements: tuple[WorkerPlacement, ...], reason: str) -> None:
        """Admit `job` on a CPU-only node: it takes cpu, memory and a pod slot, no GPU and no quota."""
        self.state.allocate(placements, on_cpu(job).shape)
        self.admissions.append(Admission(job.key, placements, device=Device.CPU, device_reason=reason))

    def _consider_gpu(self, job: Job, queue: Queue, *, allow_borrow: bool, try_only: bool = False) -> _Outcome:
        """Consider `job` on GPUs: by its profile first when it has one, else as any job."""
        outcome = self._consider_profiled(job, queue, allow_borrow=allow_borrow) if job.profile else None
        if outcome is None:
            outcome = self._consider(job, queue, allow_borrow=allow_borrow, try_only=try_only)
        return outcome

    def _consider_with_fallback(self, job: Job, queue: Queue, *, allow_borrow: bool) -> _Outcome:
        """Consider a job that may run on a CPU-only node (`gpupool.core.cpufallback`).

        Preferred: the CPU option first, unless the profile says a GPU is much cheaper; when
        no CPU-only node has room now, GPUs as for any job. Past its bound (and for a
        Preferred job a GPU was preferred for): a GPU that can take it now, else the CPU
        option, else GPUs as for any job (preemption, reservation, the reason it waits).
        Before its bound: GPUs only.
        """
        now = self.snapshot.now
        if job.cpu_fallback == CpuFallback.PREFERRED:
            verdict = self._cpu_verdict(job, queue)
            if verdict.first:
                found = self._consider_cpu(job, queue, lambda node: reasons.on_cpu_preferred(node, verdict.why))
                return found or self._consider_gpu(job, queue, allow_borrow=allow_borrow)
        if not fallback_due(job, now):
            return self._consider_gpu(job, queue, allow_borrow=allow_borrow)
        tried = self._consider_gpu(job, queue, allow_borrow=allow_borrow, try_only=True)
        if tried.placements is not None or tried.needs_borrowing:
            return tried
        found = self._consider_cpu(job, queue, lambda node: reasons.on_cpu_after_wait(job, node, now))
        return found or self._consider_gpu(job, queue, allow_borrow=allow_borrow)

    def _cpu_rows_for(self, job: Job, queue: Queue) -> Mask:
        """The CPU-only nodes `job` may use: its widest pool stage, taints and readiness."""
        stages = self.eligibility.stages(job, queue)
        if not stages:
            return np.zeros(len(self.snapshot.nodes), dtype=bool)
        return stages[-1] & self.cpu_rows

    def _cpu_verdict(self, job: Job, queue: Queue) -> CpuVerdict:
        """Whether a Preferred job tries the CPU option first (`cpufallback.cpu_first`)."""
        hardware = self.snapshot.hardware
        pools: dict[tuple[str, bool], GpuNode] = {}
        for row in np.flatnonzero(self._cpu_rows_for(job, queue)):
            node = self.snapshot.nodes[row]
            pools.setdefault((node.pool, node.spot), node)
        cpus = [
            CpuCandidate(pool, hardware.pools.get(pool), hardware.cpu_node_hour_price(pool, spot), node.cpu_milli)
            for (pool, spot), node in sorted(pools.items())
        ]
        gpu_estimates: tuple[Estimate, ...] = ()
        if job.profile is not None and cpus:
            groups = self._candidates_for(job, queue)
            gpu_estimates = rank_candidates(
                job.profile, [c for c, _ in groups], job.total_gpu_milli / MILLI_PER_GPU, hardware.models
            )
        return cpu_first(job, cpus, gpu_estimates, hardware.models)

    def _consider_cpu(self, job: Job, queue: Queue, reason: Callable[[str], str]) -> _Outcome | None:
        """Place `job` on a CPU-only node that has room now (None: none has); `reason(node)` is
        why it runs there. Nothing is reserved or preempted for the CPU option."""
        mask = self._cpu_rows_for(job, queue)
        if not mask.any():
            return None
        if self.reserved.any():
            mask = mask & ~self._blocked_for(job)
        cpu_job = on_cpu(job)
        placements = self._place(cpu_job, mask) if fits_now(self.state, cpu_job, mask) else None
        if placements is None:
            return None
        return _Outcome(placements=placements, device=Device.CPU, device_reason=reason(placements[0].node))

    def _candidates_for(self, job: Job, queue: Queue) -> list[tuple[PoolCandidate, Mask]]:
        """The (pool, GPU model, capacity type) groups of nodes a profiled job may use, each
        with its node mask, cached per distinct input."""
        key = (job.tolerations, job.placement_policy, queue.name, job.gpu_models, job.shape.whole_gpus > 0)
        found = self._pool_candidates.get(key)
        if found is not None:
            return found
        stages = self.eligibility.stages(job, queue)
        out: list[tuple[PoolCandidate, Mask]] = []
        if stages:
            rows = np.flatnonzero(stages[-1] & self.eligibility.model_mask(job.gpu_models) & ~self.cpu_rows)
            grouped: dict[tuple[str, str, bool], list[int]] = {}
            for row in rows:
                node = self.eligibility.nodes[row]
                grouped.setdefault((node.pool, node.gpu_model, node.spot), []).append(int(row))
            hardware = self.snapshot.hardware
            for (pool, model, spot), members in sorted(grouped.items()):
                mask = np.zeros(len(self.snapshot.nodes), dtype=bool)
                mask[members] = True
                price = hardware.gpu_hour_price(pool, spot)
                out.append((PoolCandidate(pool, model, spot, hardware.spec_for(pool, model), price), mask))
        self._pool_candidates[key] = out
        return out

    def _consider_profiled(self, job: Job, queue: Queue, *, allow_borrow: bool) -> _Outcome | None:
        """Place a job with a profile on the best pool its roofline estimates name that can
        take the whole gang now, trying the next best when it cannot (`gpupool.core.roofline`).

        None when no pool of one model can take it now (or nothing could be estimated): the
        job is then considered as any other (`_consider`: preemption, reservation, reasons),
        so a profile never makes a job wait where it would otherwise run.
        """
        profile = job.profile
        assert profile is not None
        groups = self._candidates_for(job, queue)
        ranked = rank_candidates(
            profile, [c for c, _ in groups], job.total_gpu_milli / MILLI_PER_GPU, self.snapshot.hardware.models
        )
        if all(e.seconds is None for e in ranked):
            return None
        masks = {(c.pool, c.model, c.spot): mask for c, mask in groups}
        for chosen in ranked:
            within = masks[(chosen.pool, chosen.model, chosen.spot)]
            outcome = self._consider(job, queue, allow_borrow=allow_borrow, within=within, try_only=True)
            if outcome.placements is not None:
                if chosen.seconds is not None:
                    outcome.choice = choice_of(chosen, ranked, profile.optimize)
                return outcome
        return None

    def _consider(
        self, job: Job, queue: Queue, *, allow_borrow: bool = True, within: Mask | None = None, try_only: bool = False
    ) -> _Outcome:
        """Place `job` on the first option with quota and room, else say why it waits (after
        trying preemption; the first blocked job of a queue reserves). `within` narrows every
        option to those nodes; `try_only` returns an outcome without placements instead of
        waiting (saying only whether an option needs borrowing), with nothing reserved or
        preempted."""
        need = job.total_gpu_milli
        needs_borrowing = False
        fitting: list[_Option] = []
        quota_blocked: list[_Option] = []
        capacity_blocked: list[_Option] = []
        any_reserved = bool(self.reserved.any())
        for option in self._options_for(job, queue):
            option_mask, mask_id = option.mask, option.mask_id
            if within is not None:
                option_mask = option_mask & within
                if not option_mask.any():
                    continue
                mask_id = self._mask_id(option_mask)
            if not self._could_ever_fit(job, option_mask, mask_id):
                continue
            fitting.append(option)
            if not allow_borrow and self.ledger.borrowed_after(queue.name, option.flavor, need) > 0:
                # Beyond nominal (now, before any preemption): the borrowing pass decides.
                needs_borrowing = True
                continue
            if not self.ledger.fits(queue.name, option.flavor, need):
                quota_blocked.append(option)
                continue
            # A job with nominated nodes sees more than others: its failures are its own.
            owner = job.key if job.key in self.nominated_for else ""
            key = (job.shape, job.workers, job.gpu_models, mask_id, owner)
            if key in self._failed:
                capacity_blocked.append(option)
                continue
            mask = option_mask & ~self._blocked_for(job) if any_reserved else option_mask
            placements = self._place(job, mask) if fits_now(self.state, job, mask) else None
            if placements is not None:
                return _Outcome(placements=placements, flavor=option.flavor)
            self._failed.add(key)
            capacity_blocked.append(option)
        if try_only:
            return _Outcome(needs_borrowing=needs_borrowing)
        if not fitting:
            return _Outcome(waiting=self._never_fits(job, queue))
        if needs_borrowing:
            return _Outcome(needs_borrowing=True)
        planned = self._try_preemption(job, queue, fitting)
        if planned is not None:
            return _Outcome(waiting=planned)
        if not capacity_blocked:
            first = quota_blocked[0]
            lim = self.ledger.limits(queue.name, first.flavor)
            message = reasons.quota_exhausted(
                job,
                first.flavor,
                self.ledger.usage(queue.name, first.flavor),
                0 if lim is None else lim.nominal,
                self.ledger.headroom(queue.name, first.flavor),
            )
            # A head blocked by quota holds it too: later, smaller jobs of its queue must
            # not keep the quota busy forever (no starvation of big gangs).
            if queue.name not in self.reserving_queues:
                self._reserve(job, queue, first)
            return _Outcome(waiting=Waiting(job.key, WaitCode.QUOTA_EXHAUSTED, message))
        first = capacity_blocked[0]
        if any_reserved and any(fits_now(self.state, job, o.mask) for o in capacity_blocked):
            message = reasons.behind_higher_priority(job, self.reserved_for)
            code = WaitCode.BEHIND_HIGHER_PRIORITY
            self.behind_reserved.add(job.key)
        else:
            lim = self.ledger.limits(queue.name, first.flavor)
            message = reasons.insufficient_capacity(
                job,
                first.flavor,
                self.ledger.usage(queue.name, first.flavor),
                0 if lim is None else lim.nominal,
                int(self.state.sum_free[first.mask].sum()),
                reasons.held_by_other_pods(
                    [self.state.nodes[i] for i in self.foreign_rows[first.mask[self.foreign_rows]]]
                ),
            )
            code = WaitCode.INSUFFICIENT_CAPACITY
        if queue.name not in self.reserving_queues:
            self._reserve(job, queue, first)
        return _Outcome(waiting=Waiting(job.key, code, message))

    def _never_fits(self, job: Job, queue: Queue) -> Waiting:
        stages = self.eligibility.stages(job, queue)
        widest = stages[-1] if stages else np.zeros(len(self.snapshot.nodes), dtype=bool)
        if self.eligibility.could_ever_fit(job, widest):
            return Waiting(job.key, WaitCode.QUOTA_EXHAUSTED, reasons.no_quota_for_nodes(job))
        note = f"placement policy {job.placement_policy}, queue {queue.name}"
        if not queue.allow_cloud:
            note += " which allows no cloud nodes"
        if job.tolerations:
            note += f", {len(job.tolerations)} toleration(s)"
        return Waiting(job.key, WaitCode.NO_FITTING_NODE, reasons.no_fitting_node(job, note))

    def _try_preemption(self, job: Job, queue: Queue, options: list[_Option]) -> Waiting | None:
        if not self.candidates:
            return None
        for option in options:
            owner = job.key if job.key in self.nominated_for else ""
            key = (queue.name, job.priority, job.shape, job.workers, job.gpu_models, option.mask_id, owner)
            if key in self._preempt_failed:
                continue
            mask = option.mask & ~self._blocked_for(job)
            plan = plan_preemption(
                job,
                queue,
                option.flavor,
                mask,
                self.candidates,
                self.ledger,
                self.state,
                self._place,
            )
            if plan is None:
                self._preempt_failed.add(key)
                continue
            victim_keys = {c.job.key for c, _ in plan.victims}
            for name in {c.job.queue for c, _ in plan.victims}:
                self.candidates[name] = [c for c in self.candidates[name] if c.job.key not in victim_keys]
            for c, why in plan.victims:
                self.preemptions.append(Preemption(c.job.key, job.key, reasons.preempted(c.job, job, why)))
                self.reserved[list(c.rows)] = True
                self.held[c.job.queue] = self.held.get(c.job.queue, 0) - sum(m for _, m in c.flavor_milli)
            # Hold the preemptor's placement and quota until the victims are gone.
            self.state.allocate(plan.placements, job.shape)
            self.ledger.charge(queue.name, option.flavor, job.total_gpu_milli)
            for p in plan.placements:
                self.reserved[self.state.index_of(p.node)] = True
            self.reserved_for.append(job.key)
            return Waiting(
                job.key,
                WaitCode.WAITING_FOR_PREEMPTION,
                reasons.waiting_for_preemption(job, sorted(victim_keys)),
            )
        return None

    def _reserve(self, job: Job, queue: Queue, option: _Option) -> None:
        """Hold, for the rest of the cycle, the nodes `job` would start on and its quota."""
        per_node = self.eligibility.workers_per_node(job.shape)
        usable = option.mask & ~self._blocked_for(job) & self.eligibility.model_mask(job.gpu_models) & (per_node > 0)
        rows = np.flatnonzero(usable)
        if len(rows) == 0:
            return
        shape = job.shape
        now: npt.NDArray[np.int64]
        if shape.gpu_milli >= MILLI_PER_GPU:
            now = self.state.idle[rows]
        elif shape.gpu_milli > 0:
            now = self.state.max_free[rows]
        else:
            now = self.state.cpu_free[rows]
        order = rows[np.lexsort((rows, -now))]
        room = np.cumsum(np.minimum(per_node[order], job.workers))
        if int(room[-1]) < job.workers:
            return
        take = int(np.searchsorted(room, job.workers)) + 1
        self.reserved[order[:take]] = True
        self.reserved_rows[job.key] = order[:take]
        self.reserved_for.append(job.key)
        self.reserving_queues.add(queue.name)
        self.ledger.charge(queue.name, option.flavor, job.total_gpu_milli)
        self.reserved_quota[job.key] = (queue.name, option.flavor, job.total_gpu_milli)
