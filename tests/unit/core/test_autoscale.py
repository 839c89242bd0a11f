"""The autoscale planner: which nodes a cycle asks for, and which idle nodes it gives back."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import make_in_flight, make_job, make_node, make_offer, make_queue, make_snapshot
from gpupool.core import PlacementPolicy, Quota, WaitCode, schedule
from gpupool.core.autoscale import ReleaseCandidate, nodes_to_release
from gpupool.core.models import Decisions, NodeOffer, Queue, Snapshot

CLOUD = PlacementPolicy.CLOUD_ALLOWED
SPOT = PlacementPolicy.SPOT_ALLOWED


def queue_of(*models: str, gpus: int = 1000, allow_spot: bool = True, budget_left: float | None = None) -> Queue:
    """A queue with `gpus` of quota on each of `models`, cloud (and spot) allowed."""
    return make_queue(
        quotas=tuple(Quota(nominal_gpus=gpus, gpu_model=m) for m in models),
        allow_spot=allow_spot,
        budget_left=budget_left,
    )


def full_onprem() -> tuple:
    """One on-prem H100 node, all of whose GPUs are held."""
    node = make_node("onprem-0", gpus=8)
    return (node,), (make_job("ns/hog", gpus=8, on=("onprem-0",)),)


def decide(pending: list, offers: list[NodeOffer], queue: Queue | None = None, **extra: object) -> Decisions:
    nodes, running = full_onprem()
    snapshot: Snapshot = make_snapshot(
        nodes=nodes,
        queues=(queue or queue_of("H100", "A100"),),
        pending=pending,
        running=running,
        offers=offers,
        **extra,  # type: ignore[arg-type]
    )
    return schedule(snapshot)


def requested(decisions: Decisions) -> dict[str, tuple[int, tuple[str, ...]]]:
    return {f"{r.pool}{'/spot' if r.spot else ''}": (r.nodes, r.jobs) for r in decisions.node_requests}


A100 = make_offer("cloud-a100", model="A100", price=20.0)
H100 = make_offer("cloud-h100", model="H100", price=32.0)
H100_SPOT = make_offer("cloud-h100", model="H100", price=12.0, spot=True)
SMALL = make_offer("cloud-h100-small", model="H100", gpus=2, price=9.0)


@pytest.mark.parametrize(
    ("pending", "offers", "queue", "expected"),
    [
        pytest.param(
            [make_job("ns/big", gpus=8, workers=2, policy=CLOUD)],
            [A100, H100],
            None,
            {"cloud-a100": (2, ("ns/big",))},
            id="cheapest-pool-holds-the-whole-gang",
        ),
        pytest.param(
            [make_job("ns/big", gpus=8, workers=2, policy=CLOUD, models=("H100",))],
            [A100, H100],
            None,
            {"cloud-h100": (2, ("ns/big",))},
            id="gpu-model-constraint",
        ),
        pytest.param(
            [make_job("ns/local", gpus=8)],
            [A100, H100],
            None,
            {},
            id="onprem-only-never-causes-cloud-nodes",
        ),
        pytest.param(
            [make_job("ns/s", gpus=8, policy=SPOT, models=("H100",))],
            [H100, H100_SPOT],
            queue_of("H100", allow_spot=False),
            {"cloud-h100": (1, ("ns/s",))},
            id="queue-without-spot-never-gets-spot",
        ),
        pytest.param(
            [make_job("ns/s", gpus=8, policy=SPOT, models=("H100",))],
            [H100, H100_SPOT],
            None,
            {"cloud-h100/spot": (1, ("ns/s",))},
            id="spot-when-allowed-and-cheaper",
        ),
        pytest.param(
            [make_job("ns/c", gpus=8, policy=CLOUD, models=("H100",))],
            [H100, H100_SPOT],
            None,
            {"cloud-h100": (1, ("ns/c",))},
            id="cloud-allowed-job-never-gets-spot",
        ),
        pytest.param(
            [
                make_job("ns/a", gpus=4, policy=CLOUD, models=("H100",), submitted_at=1),
                make_job("ns/b", gpus=4, policy=CLOUD, models=("H100",), submitted_at=2),
            ],
            [H100],
            None,
            {"cloud-h100": (1, ("ns/a", "ns/b"))},
            id="two-jobs-share-a-new-node",
        ),
        pytest.param(
            [make_job("ns/big", gpus=8, workers=3, policy=CLOUD, models=("H100",))],
            [make_offer("cloud-h100", price=32.0, headroom=2), make_offer("cloud-h100-b", price=40.0)],
            None,
            {"cloud-h100-b": (3, ("ns/big",))},
            id="headroom-too-small-falls-to-the-next-pool",
        ),
        pytest.param(
            [make_job("ns/big", gpus=8, workers=3, policy=CLOUD, models=("H100",))],
            [make_offer("cloud-h100", price=32.0, headroom=2)],
            None,
            {},
            id="no-partial-gang-request",
        ),
        pytest.param(
            [make_job("ns/two", gpus=2, workers=2, policy=CLOUD, models=("H100",))],
            [H100, SMALL],
            None,
            {"cloud-h100-small": (2, ("ns/two",))},
            id="cheaper-total-of-smaller-nodes",
        ),
        pytest.param(
            [make_job("ns/big", gpus=8, workers=2, policy=CLOUD, models=("H100",))],
            [H100],
            queue_of("H100", gpus=8),
            {},
            id="quota-refuses",
        ),
    ],
)
def test_node_requests(
    pending: list, offers: list[NodeOffer], queue: Queue | None, expected: dict[str, tuple[int, tuple[str, ...]]]
) -> None:
    assert requested(decide(pending, offers, queue)) == expected


def test_a_planned_job_says_which_nodes_it_waits_for() -> None:
    decisions = decide([make_job("ns/big", gpus=8, workers=2, policy=CLOUD, models=("H100",))], [H100])
    (waiting,) = decisions.waiting
    assert waiting.code == WaitCode.NODES_PROVISIONING
    assert waiting.message.startswith("waiting for 2 new nodes in pool cloud-h100 (requested now)")


def test_capacity_in_flight_is_not_requested_again() -> None:
    job = make_job("ns/big", gpus=8, workers=2, policy=CLOUD, models=("H100",))
    in_flight = [make_in_flight(f"claim-{i}", H100, jobs=("ns/big",), requested_at=9_960.0) for i in range(2)]
    decisions = decide([job], [H100], in_flight=in_flight)
    assert decisions.node_requests == ()
    (waiting,) = decisions.waiting
    assert waiting.message.startswith("waiting for 2 new nodes in pool cloud-h100 (requested 40s ago)")


def test_a_half_made_request_is_completed_not_repeated() -> None:
    """After a crash between two claim creations only the missing node is asked for."""
    job = make_job("ns/big", gpus=8, workers=2, policy=CLOUD, models=("H100",))
    decisions = decide([job], [H100], in_flight=[make_in_flight("claim-0", H100, jobs=("ns/big",))])
    assert requested(decisions) == {"cloud-h100": (1, ("ns/big",))}


def test_no_node_is_requested_beyond_the_budget_left() -> None:
    job = make_job("ns/big", gpus=8, policy=CLOUD, models=("H100",))
    decisions = decide([job], [H100], queue_of("H100", budget_left=10.0))
    assert decisions.node_requests == ()
    (waiting,) = decisions.waiting
    assert "projected cost 32.00 exceeds the 10.00 its queue may still spend" in waiting.message


def test_a_nominated_node_is_held_for_its_job() -> None:
    nodes = (make_node("cloud-0", gpus=8, pool="cloud-h100", cloud=True),)
    first = make_job("ns/first", gpus=8, policy=CLOUD, submitted_at=1)
    owner = make_job("ns/owner", gpus=8, policy=CLOUD, submitted_at=2)
    snapshot = make_snapshot(
        nodes=nodes, queues=(queue_of("H100"),), pending=[first, owner], nominations={"cloud-0": ("ns/owner",)}
    )
    (admission,) = schedule(snapshot).admissions
    assert admission.job_key == "ns/owner"


# -- properties -------------------------------------------------------------------------------


@st.composite
def offers(draw: st.DrawFn) -> list[NodeOffer]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        out.append(
            make_offer(
                f"pool-{i}",
                gpus=draw(st.sampled_from([1, 2, 4, 8])),
                price=draw(st.integers(1, 40)) * 1.0,
                headroom=draw(st.integers(0, 5)),
                spot=draw(st.booleans()),
            )
        )
    return out


@st.composite
def cloud_jobs(draw: st.DrawFn) -> list:
    return [
        make_job(
            f"ns/j{k}",
            gpus=draw(st.sampled_from([0.5, 1, 2, 4, 8])),
            workers=draw(st.integers(1, 4)),
            policy=draw(st.sampled_from([CLOUD, SPOT, PlacementPolicy.ON_PREM_ONLY])),
            submitted_at=float(k),
        )
        for k in range(draw(st.integers(1, 6)))
    ]


def per_node(offer: NodeOffer, gpu_milli: int) -> int:
    return offer.node.gpus * (1000 // gpu_milli) if gpu_milli < 1000 else offer.node.gpus // (gpu_milli // 1000)


@settings(max_examples=150, deadline=None)
@given(offers(), cloud_jobs())
def test_requests_respect_headroom_gangs_and_policy(pool_offers: list[NodeOffer], pending: list) -> None:
    decisions = decide(pending, pool_offers, queue_of("H100"))
    by_key = {(o.pool, o.node.spot): o for o in pool_offers}
    jobs = {j.key: j for j in pending}
    seen: Counter[str] = Counter()
    for request in decisions.node_requests:
        offer = by_key[(request.pool, request.spot)]
        assert 0 < request.nodes <= offer.headroom
        capacity = request.nodes * offer.node.gpus * 1000
        assert sum(jobs[k].total_gpu_milli for k in request.jobs) <= capacity
        for key in request.jobs:
            seen[key] += 1
            job = jobs[key]
            assert job.placement_policy != PlacementPolicy.ON_PREM_ONLY
            assert not request.spot or job.placement_policy == SPOT
    assert all(count == 1 for count in seen.values()), seen


@settings(max_examples=150, deadline=None)
@given(offers(), st.sampled_from([0.5, 1, 2, 4, 8]), st.integers(1, 4), st.sampled_from([CLOUD, SPOT]))
def test_never_a_dearer_pool_when_a_cheaper_one_holds_the_gang(
    pool_offers: list[NodeOffer], gpus: float, workers: int, policy: PlacementPolicy
) -> None:
    job = make_job("ns/only", gpus=gpus, workers=workers, policy=policy)
    decisions = decide([job], pool_offers, queue_of("H100"))
    costs = []
    for offer in pool_offers:
        fits = per_node(offer, job.shape.gpu_milli)
        if fits == 0 or (offer.node.spot and policy != SPOT):
            continue
        nodes = math.ceil(workers / fits)
        if nodes <= offer.headroom:
            costs.append(nodes * offer.price_per_hour)
    if not costs:
        assert decisions.node_requests == ()
        return
    (request,) = decisions.node_requests
    assert request.price_per_hour == min(costs)


@settings(max_examples=100, deadline=None)
@given(offers(), cloud_jobs())
def test_jobs_covered_in_flight_are_never_requested_again(pool_offers: list[NodeOffer], pending: list) -> None:
    """Each job gets claims that hold its gang alone (as the operator makes them)."""
    in_flight = []
    for job in pending:
        if job.placement_policy == PlacementPolicy.ON_PREM_ONLY:
            continue
        for offer in pool_offers:
            fits = per_node(offer, job.shape.gpu_milli)
            if fits and not offer.node.spot:
                for i in range(math.ceil(job.workers / fits)):
                    in_flight.append(make_in_flight(f"{offer.pool}-{job.key}-{i}", offer, jobs=(job.key,)))
                break
    covered = {k for node in in_flight for k in node.jobs}
    decisions = decide(pending, pool_offers, queue_of("H100"), in_flight=in_flight)
    for request in decisions.node_requests:
        assert not covered & set(request.jobs)


# -- scale-down ---------------------------------------------------------------------------------


def candidate(
    node: str, idle_since: float | None, *, pool_nodes: int = 3, min_nodes: int = 0, **kw: object
) -> ReleaseCandidate:
    return ReleaseCandidate(
        node=node,
        pool="cloud-h100",
        idle_since=idle_since,
        scale_down_after_seconds=600.0,
        pool_nodes=pool_nodes,
        min_nodes=min_nodes,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param([candidate("a", 0.0), candidate("b", 500.0)], ("a",), id="only-past-scale-down-after"),
        pytest.param([candidate("a", None)], (), id="never-a-node-with-work"),
        pytest.param(
            [candidate("a", 0.0, pool_nodes=2, min_nodes=1), candidate("b", 100.0, pool_nodes=2, min_nodes=1)],
            ("a",),
            id="never-below-min-nodes-longest-idle-first",
        ),
        pytest.param([candidate("a", 0.0, nominated=True)], (), id="never-a-node-held-for-a-job"),
    ],
)
def test_nodes_to_release(candidates: list[ReleaseCandidate], expected: tuple[str, ...]) -> None:
    assert nodes_to_release(candidates, now=1_000.0) == expected


def test_a_job_behind_a_reserved_head_gets_nodes_too() -> None:
    """The head does not fit now and holds the on-prem node for when it frees; the small job
    behind it would fit the free half but must not delay the head: new nodes end its wait."""
    node = make_node("onprem-0", gpus=8)
    half = make_job("ns/half", gpus=4, on=("onprem-0",))
    head = make_job("ns/head", gpus=8, submitted_at=1)  # OnPremOnly: never bursts
    small = make_job("ns/small", gpus=4, policy=CLOUD, models=("H100",), submitted_at=2)
    snapshot = make_snapshot(
        nodes=(node,), queues=(queue_of("H100"),), pending=[head, small], running=[half], offers=[H100]
    )
    decisions = schedule(snapshot)
    assert requested(decisions) == {"cloud-h100": (1, ("ns/small",))}


def test_a_gang_uses_free_cloud_capacity_next_to_new_nodes() -> None:
    """After a spot reclaim took one of its two nodes, a 2 x 8 gang needs one new node, not
    two: the surviving node is free (the gang was stopped whole)."""
    onprem, running = full_onprem()
    survivor = make_node("cloud-h100-a", gpus=8, pool="cloud-h100", cloud=True)
    gang = make_job("ns/gang", gpus=8, workers=2, policy=CLOUD, models=("H100",))
    snapshot = make_snapshot(
        nodes=(*onprem, survivor), queues=(queue_of("H100"),), pending=[gang], running=running, offers=[H100]
    )
    decisions = schedule(snapshot)
    assert requested(decisions) == {"cloud-h100": (1, ("ns/gang",))}
    (waiting,) = decisions.waiting
    assert waiting.message.startswith("waiting for 1 new node in pool cloud-h100")


def test_a_job_that_fits_free_cloud_capacity_asks_for_nothing() -> None:
    onprem, running = full_onprem()
    held = make_node("cloud-h100-a", gpus=8, pool="cloud-h100", cloud=True)
    owner = make_job("ns/owner", gpus=8, policy=CLOUD, submitted_at=1)
    other = make_job("ns/other", gpus=8, policy=CLOUD, models=("H100",), submitted_at=2)
    snapshot = make_snapshot(
        nodes=(*onprem, held),
        queues=(queue_of("H100"),),
        pending=[other, owner],
        running=running,
        offers=[H100],
        nominations={"cloud-h100-a": ("ns/owner",)},
    )
    decisions = schedule(snapshot)
    assert [a.job_key for a in decisions.admissions] == ["ns/owner"]
    assert requested(decisions) == {"cloud-h100": (1, ("ns/other",))}
