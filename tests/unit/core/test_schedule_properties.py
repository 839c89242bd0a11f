"""Invariants of `schedule` on random snapshots (hypothesis).

For any snapshot: no GPU, node cpu or memory is over-allocated; no queue ends a cycle above
its nominal quota plus borrowing limit (nor a cohort above its members' nominal quota);
a gang is admitted with all its workers or not at all; admissions respect models, pool
policy, taints and readiness; victims are preemptible and old enough; every pending job
gets exactly one decision; identical input gives identical decisions.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import GIB
from gpupool.core import (
    GpuNode,
    Job,
    PlacementPolicy,
    PoolClass,
    PreemptionRules,
    Queue,
    QueueingStrategy,
    Quota,
    Snapshot,
    Taint,
    Toleration,
    WorkerShape,
    schedule,
)
from gpupool.core.quota import resolve_flavors

NOW = 100_000.0
MODELS = ("H100", "A100")


@st.composite
def nodes(draw: st.DrawFn) -> tuple[GpuNode, ...]:
    count = draw(st.integers(1, 6))
    out = []
    for i in range(count):
        cloud = draw(st.integers(0, 3)) == 0
        out.append(
            GpuNode(
                name=f"n{i}",
                gpu_model=draw(st.sampled_from(MODELS)),
                gpus=draw(st.sampled_from([1, 4, 8, 8])),
                cpu_milli=draw(st.sampled_from([16_000, 64_000, 128_000])),
                memory_bytes=draw(st.sampled_from([64, 512])) * GIB,
                pool=draw(st.sampled_from(["", "dgx"])),
                pool_class=PoolClass.CLOUD if cloud else PoolClass.ON_PREM,
                spot=cloud and draw(st.booleans()),
                taints=(Taint("gpu", "x", "NoSchedule"),) if draw(st.integers(0, 7)) == 0 else (),
                ready=draw(st.integers(0, 9)) > 0,
            )
        )
    return tuple(out)


@st.composite
def queues(draw: st.DrawFn) -> tuple[Queue, ...]:
    count = draw(st.integers(1, 3))
    out = []
    for i in range(count):
        quotas = []
        for model in draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=2, unique=True)):
            quotas.append(
                Quota(
                    nominal_gpus=draw(st.integers(0, 16)),
                    gpu_model=model,
                    borrowing_limit_gpus=draw(st.none() | st.integers(0, 8)),
                    lending_limit_gpus=draw(st.none() | st.integers(0, 8)),
                )
            )
        if draw(st.booleans()):
            quotas.insert(0, Quota(nominal_gpus=draw(st.integers(0, 16)), pool="dgx"))
        out.append(
            Queue(
                name=f"q{i}",
                quotas=tuple(quotas),
                cohort=draw(st.sampled_from([None, "c"])),
                weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
                max_priority=draw(st.sampled_from([None, None, None, 5])),
                strategy=draw(st.sampled_from(list(QueueingStrategy))),
                preemption=PreemptionRules(
                    reclaim_within_cohort=draw(st.booleans()),
                    within_queue=draw(st.booleans()),
                    min_runtime_seconds=draw(st.sampled_from([0.0, 500.0])),
                ),
                allow_cloud=draw(st.booleans()),
                allow_spot=draw(st.booleans()),
                decayed_usage_gpu_seconds=draw(st.sampled_from([0.0, 1e5])),
            )
        )
    return tuple(out)


@st.composite
def jobs(draw: st.DrawFn, prefix: str, queue_names: list[str], max_size: int, top: int) -> list[Job]:
    count = draw(st.integers(0, max_size))
    out = []
    for k in range(count):
        milli = draw(st.sampled_from([250, 500, 1000, 2000, 4000, 8000]))
        out.append(
            Job(
                key=f"{prefix}{k}",
                queue=draw(st.sampled_from([*queue_names, "missing"]))
                if k % 7 == 6
                else draw(st.sampled_from(queue_names)),
                shape=WorkerShape(
                    gpu_milli=milli,
                    cpu_milli=draw(st.sampled_from([0, 2_000, 8_000])),
                    memory_bytes=draw(st.sampled_from([0, 32])) * GIB,
                ),
                workers=draw(st.sampled_from([1, 1, 1, 2, 3])),
                priority=draw(st.integers(0, top)),
                gpu_models=draw(st.sampled_from([(), (), ("H100",), ("A100",)])),
                placement_policy=draw(st.sampled_from([PlacementPolicy.ON_PREM_ONLY, *PlacementPolicy])),
                preemptible=draw(st.integers(0, 3)) > 0,
                submitted_at=float(draw(st.integers(0, 50))),
                tolerations=(Toleration("gpu", "Exists"),) if draw(st.integers(0, 3)) == 0 else (),
            )
        )
    return out


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    ns = draw(nodes())
    qs = draw(queues())
    names = [q.name for q in qs]
    # Running jobs come from a first cycle on the empty cluster, so they are consistent.
    seed_jobs = draw(jobs("r", names, 16, 3))
    first = schedule(Snapshot(now=NOW - 1000, nodes=ns, queues=qs, pending=tuple(seed_jobs)))
    by_key = {j.key: j for j in seed_jobs}
    running = []
    for a in first.admissions:
        job = by_key[a.job_key]
        admitted = NOW - draw(st.sampled_from([10.0, 1000.0]))
        running.append(_replace(job, admitted_at=admitted, placements=a.placements))
    pending = draw(jobs("p", names, 10, 7))
    return Snapshot(
        now=NOW,
        nodes=ns,
        queues=qs,
        running=tuple(running),
        pending=tuple(pending),
        seed=draw(st.integers(0, 3)),
    )


def _replace(job: Job, **changes: object) -> Job:
    from dataclasses import replace

    return replace(job, **changes)  # type: ignore[arg-type]


def _ceiling(queue: Queue, flavor: str) -> float:
    for q in queue.quotas:
        if q.flavor == flavor:
            if queue.cohort is None:
                return q.nominal_gpus * 1000
            if q.borrowing_limit_gpus is None:
                return float("inf")
            return (q.nominal_gpus + q.borrowing_limit_gpus) * 1000
    return 0


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def crowded_snapshots(draw: st.DrawFn) -> Snapshot:
    """A cluster full of small low-priority jobs and a few high-priority arrivals: preemption."""
    ns = tuple(GpuNode(f"n{i}", "H100", 8, 128_000, 512 * GIB) for i in range(draw(st.integers(1, 3))))
    qs = tuple(
        Queue(
            f"q{i}",
            (
                Quota(
                    nominal_gpus=draw(st.integers(0, 12)),
                    gpu_model="H100",
                    borrowing_limit_gpus=draw(st.none() | st.integers(0, 8)),
                ),
            ),
            cohort="c",
            preemption=PreemptionRules(
                reclaim_within_cohort=draw(st.booleans()),
                within_queue=draw(st.booleans()),
                min_runtime_seconds=draw(st.sampled_from([0.0, 500.0])),
            ),
        )
        for i in range(2)
    )
    names = [q.name for q in qs]
    seed_jobs = [
        Job(
            f"r{k}",
            draw(st.sampled_from(names)),
            WorkerShape(draw(st.sampled_from([500, 1000, 2000]))),
            priority=draw(st.integers(0, 3)),
            preemptible=draw(st.integers(0, 3)) > 0,
            submitted_at=float(k),
        )
        for k in range(draw(st.integers(4, 30)))
    ]
    first = schedule(Snapshot(now=NOW - 1000, nodes=ns, queues=qs, pending=tuple(seed_jobs)))
    by_key = {j.key: j for j in seed_jobs}
    running = [
        _replace(
            by_key[a.job_key],
            admitted_at=NOW - draw(st.sampled_from([10.0, 1000.0])),
            placements=a.placements,
        )
        for a in first.admissions
    ]
    pending = [
        Job(
            f"p{k}",
            draw(st.sampled_from(names)),
            WorkerShape(draw(st.sampled_from([1000, 2000, 4000, 8000]))),
            workers=draw(st.sampled_from([1, 1, 2])),
            priority=draw(st.integers(4, 7)),
            submitted_at=float(k),
        )
        for k in range(draw(st.integers(1, 4)))
    ]
    return Snapshot(now=NOW, nodes=ns, queues=qs, running=tuple(running), pending=tuple(pending))


@SETTINGS
@given(snapshots())
def test_invariants(snap: Snapshot) -> None:
    check_invariants(snap)


@SETTINGS
@given(crowded_snapshots())
def test_invariants_under_preemption(snap: Snapshot) -> None:
    check_invariants(snap)


def check_invariants(snap: Snapshot) -> None:
    decisions = schedule(snap)
    nodes_by_name = {n.name: n for n in snap.nodes}
    index = {n.name: i for i, n in enumerate(snap.nodes)}
    queues_by_name = {q.name: q for q in snap.queues}
    pending = {j.key: j for j in snap.pending}
    running = {j.key: j for j in snap.running}

    # one decision per pending job
    decided = [a.job_key for a in decisions.admissions] + [w.job_key for w in decisions.waiting]
    assert sorted(decided) == sorted(pending)

    # victims: running, preemptible, old enough
    victims = set()
    for p in decisions.preemptions:
        victim = running[p.victim_key]
        assert victim.preemptible
        min_runtime = queues_by_name[victim.queue].preemption.min_runtime_seconds
        assert victim.admitted_at is not None and snap.now - victim.admitted_at >= min_runtime
        assert p.preemptor_key in pending and p.preemptor_key in p.message
        victims.add(p.victim_key)

    # gang all-or-nothing and per-worker shape
    for a in decisions.admissions:
        job = pending[a.job_key]
        assert sorted(p.worker for p in a.placements) == list(range(job.workers))
        for p in a.placements:
            assert sum(s.milli for s in p.gpus) == job.shape.gpu_milli
            assert len({s.index for s in p.gpus}) == len(p.gpus)
            node = nodes_by_name[p.node]
            assert node.ready
            assert not job.gpu_models or node.gpu_model in job.gpu_models
            queue = queues_by_name[job.queue]
            if node.pool_class == PoolClass.CLOUD:
                assert queue.allow_cloud and job.placement_policy != PlacementPolicy.ON_PREM_ONLY
                if node.spot:
                    assert queue.allow_spot and job.placement_policy == PlacementPolicy.SPOT_ALLOWED
            for taint in node.taints:
                assert any(t.tolerates(taint) for t in job.tolerations)

    # no GPU, cpu or memory over-allocated (victims still hold theirs until evicted)
    gpu_used: dict[tuple[str, int], int] = defaultdict(int)
    cpu_used: dict[str, int] = defaultdict(int)
    mem_used: dict[str, int] = defaultdict(int)
    holders = [(j, j.placements) for j in snap.running]
    holders += [(pending[a.job_key], a.placements) for a in decisions.admissions]
    for job, placements in holders:
        for p in placements:
            cpu_used[p.node] += job.shape.cpu_milli
            mem_used[p.node] += job.shape.memory_bytes
            for s in p.gpus:
                assert 0 <= s.index < nodes_by_name[p.node].gpus
                gpu_used[(p.node, s.index)] += s.milli
    assert all(v <= 1000 for v in gpu_used.values())
    for name, node in nodes_by_name.items():
        assert cpu_used[name] <= node.cpu_milli - node.reserved_cpu_milli
        assert mem_used[name] <= node.memory_bytes - node.reserved_memory_bytes

    # quota: admissions stay within nominal + borrowing limit, in one flavor per job
    flavor_maps = {q.name: resolve_flavors(q, snap.nodes) for q in snap.queues}

    def flavor_of(queue: str, node: str) -> str | None:
        names, idx = flavor_maps[queue]
        i = int(idx[index[node]])
        return None if i < 0 else names[i]

    usage: dict[tuple[str, str], int] = defaultdict(int)
    for job in snap.running:
        if job.key in victims or job.queue not in queues_by_name:
            continue
        for p in job.placements:
            f = flavor_of(job.queue, p.node)
            if f is not None:
                usage[(job.queue, f)] += job.shape.gpu_milli
    touched = set()
    for a in decisions.admissions:
        job = pending[a.job_key]
        flavors = {flavor_of(job.queue, p.node) for p in a.placements}
        assert len(flavors) == 1 and None not in flavors
        f = flavors.pop()
        assert f is not None
        usage[(job.queue, f)] += job.total_gpu_milli
        touched.add((job.queue, f))
    for queue_name, f in touched:
        assert usage[(queue_name, f)] <= _ceiling(queues_by_name[queue_name], f)
        queue = queues_by_name[queue_name]
        if queue.cohort is not None:
            members = [q for q in snap.queues if q.cohort == queue.cohort]
            nominal = sum(qq.nominal_gpus * 1000 for q in members for qq in q.quotas if qq.flavor == f)
            assert sum(usage[(q.name, f)] for q in members) <= nominal
            # lending limits: usage above each member's unlendable part fits what members lend
            drawn = lent = 0
            for q in members:
                for qq in q.quotas:
                    if qq.flavor != f:
                        continue
                    nominal_q = qq.nominal_gpus * 1000
                    lend = nominal_q if qq.lending_limit_gpus is None else min(nominal_q, qq.lending_limit_gpus * 1000)
                    guaranteed = nominal_q - lend
                    lent += lend
                    drawn += max(0, usage[(q.name, f)] - guaranteed)
                    break
            assert drawn <= lent


@SETTINGS
@given(snapshots())
def test_identical_input_identical_decisions(snap: Snapshot) -> None:
    assert schedule(snap) == schedule(snap)
