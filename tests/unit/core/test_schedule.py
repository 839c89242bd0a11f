"""`schedule` as a specification: one scenario per rule, each naming what it shows.

Each case lists nodes, queues, running and pending jobs, and the expected outcome per
pending job: the node(s) it is admitted on ("@n1" or "@n1+n2"), "admitted" when any node
will do, or the `WaitCode` it waits with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from builders import make_job, make_node, make_queue, make_snapshot
from gpupool.core import Decisions, GpuNode, Job, PlacementPolicy, Queue, SchedulerConfig, schedule
from gpupool.core.models import Taint, Toleration, WaitCode

W = WaitCode


@dataclass
class Case:
    nodes: list[GpuNode]
    queues: list[Queue]
    pending: list[Job]
    expect: dict[str, str | WaitCode]
    running: list[Job] = field(default_factory=list)
    preempted: set[str] = field(default_factory=set)


def outcome(decisions: Decisions) -> dict[str, str | WaitCode]:
    out: dict[str, str | WaitCode] = {}
    for a in decisions.admissions:
        out[a.job_key] = "@" + "+".join(sorted({p.node for p in a.placements}))
    for w in decisions.waiting:
        out[w.job_key] = w.code
    return out


def run(case: Case) -> Decisions:
    return schedule(make_snapshot(case.nodes, case.queues, case.pending, case.running))


def check(case: Case) -> None:
    decisions = run(case)
    got = outcome(decisions)
    for key, want in case.expect.items():
        if want == "admitted":
            assert isinstance(got[key], str), (key, got[key], decisions)
        else:
            assert got[key] == want, (key, got[key], decisions)
    assert {p.victim_key for p in decisions.preemptions} == case.preempted
    # every pending job gets exactly one decision
    assert sorted(got) == sorted(j.key for j in case.pending)


NOSCHED = Taint("gpu", "reserved", "NoSchedule")

PLACEMENT = {
    "whole GPUs need idle GPUs on one node": Case(
        [make_node("n1", gpus=4), make_node("n2", gpus=8)],
        [make_queue()],
        [make_job("big", gpus=8)],
        {"big": "@n2"},
    ),
    "fractional jobs share one GPU": Case(
        [make_node("n1", gpus=1)],
        [make_queue()],
        [
            make_job("a", gpus=0.5),
            make_job("b", gpus=0.5, submitted_at=1),
            make_job("c", gpus=0.5, submitted_at=2),
        ],
        {"a": "@n1", "b": "@n1", "c": W.INSUFFICIENT_CAPACITY},
    ),
    "a gang is placed whole or not at all": Case(
        [make_node("n1", gpus=8), make_node("n2", gpus=8)],
        [make_queue()],
        [make_job("gang", gpus=8, workers=2)],
        {"gang": W.INSUFFICIENT_CAPACITY},
        running=[make_job("r", gpus=4, on=("n2",))],
    ),
    "a gang spans nodes": Case(
        [make_node("n1", gpus=8), make_node("n2", gpus=8)],
        [make_queue()],
        [make_job("gang", gpus=8, workers=2)],
        {"gang": "@n1+n2"},
    ),
    "GPU model constraint": Case(
        [make_node("a100", model="A100"), make_node("h100", model="H100")],
        [make_queue(quotas=None, gpus=16)],
        [make_job("j", gpus=8, models=("H100",))],
        {"j": "@h100"},
    ),
    "no node of the model: no fitting node": Case(
        [make_node("n1", model="H100")],
        [make_queue()],
        [make_job("j", gpus=1, models=("B200",))],
        {"j": W.NO_FITTING_NODE},
    ),
    "larger than any node: no fitting node": Case(
        [make_node("n1", gpus=8)],
        [make_queue()],
        [make_job("j", gpus=16)],
        {"j": W.NO_FITTING_NODE},
    ),
    "cpu must fit too": Case(
        [make_node("small", cpu=8_000), make_node("large", cpu=64_000)],
        [make_queue()],
        [make_job("j", gpus=1, cpu=32_000)],
        {"j": "@large"},
    ),
    "a NoSchedule taint keeps jobs off": Case(
        [make_node("tainted", taints=(NOSCHED,)), make_node("plain", gpus=2)],
        [make_queue()],
        [make_job("j", gpus=4)],
        {"j": W.NO_FITTING_NODE},
    ),
    "a toleration lets the job on": Case(
        [make_node("tainted", taints=(NOSCHED,))],
        [make_queue()],
        [make_job("j", gpus=4, tolerations=(Toleration("gpu", "Exists"),))],
        {"j": "@tainted"},
    ),
    "PreferNoSchedule does not block": Case(
        [make_node("n1", taints=(Taint("gpu", "x", "PreferNoSchedule"),))],
        [make_queue()],
        [make_job("j", gpus=4)],
        {"j": "@n1"},
    ),
    "an unready node is not used": Case(
        [make_node("down", ready=False), make_node("up", gpus=2)],
        [make_queue()],
        [make_job("j", gpus=2)],
        {"j": "@up"},
    ),
    "a shares-only node takes shares": Case(
        [make_node("sliced", gpus=2, shares_only=True)],
        [make_queue()],
        [make_job("a", gpus=0.5), make_job("b", gpus=0.5, submitted_at=1)],
        {"a": "@sliced", "b": "@sliced"},
    ),
    "a shares-only node takes no whole GPU, even one": Case(
        [make_node("sliced", gpus=2, shares_only=True)],
        [make_queue()],
        [make_job("one", gpus=1), make_job("two", gpus=2, submitted_at=1)],
        {"one": W.NO_FITTING_NODE, "two": W.NO_FITTING_NODE},
    ),
    "whole GPUs go past a shares-only node": Case(
        [make_node("a-sliced", gpus=8, shares_only=True), make_node("b-whole", gpus=1)],
        [make_queue()],
        [make_job("one", gpus=1), make_job("share", gpus=0.25, submitted_at=1)],
        {"one": "@b-whole", "share": "admitted"},
    ),
    "a whole-GPU job waits for a whole-GPU node, not a shares-only one": Case(
        [make_node("sliced", gpus=1, shares_only=True), make_node("whole", gpus=1)],
        [make_queue()],
        [make_job("one", gpus=1, submitted_at=1)],
        {"one": W.INSUFFICIENT_CAPACITY},
        running=[make_job("r", gpus=1, on=("whole",))],
    ),
}

POOLS = {
    "OnPremOnly never uses cloud": Case(
        [make_node("cloud", cloud=True)],
        [make_queue()],
        [make_job("j", gpus=1, policy=PlacementPolicy.ON_PREM_ONLY)],
        {"j": W.NO_FITTING_NODE},
    ),
    "CloudAllowed prefers on-prem": Case(
        [make_node("cloud", cloud=True), make_node("onprem")],
        [make_queue()],
        [make_job("j", gpus=1, policy=PlacementPolicy.CLOUD_ALLOWED)],
        {"j": "@onprem"},
    ),
    "CloudAllowed spills to cloud when on-prem is full": Case(
        [make_node("cloud", cloud=True), make_node("onprem", gpus=2)],
        [make_queue()],
        [make_job("j", gpus=4, policy=PlacementPolicy.CLOUD_ALLOWED)],
        {"j": "@cloud"},
    ),
    "the queue may forbid cloud": Case(
        [make_node("cloud", cloud=True)],
        [make_queue(allow_cloud=False)],
        [make_job("j", gpus=1, policy=PlacementPolicy.CLOUD_ALLOWED)],
        {"j": W.NO_FITTING_NODE},
    ),
    "CloudAllowed never uses spot": Case(
        [make_node("spot", cloud=True, spot=True)],
        [make_queue(allow_spot=True)],
        [make_job("j", gpus=1, policy=PlacementPolicy.CLOUD_ALLOWED)],
        {"j": W.NO_FITTING_NODE},
    ),
    "SpotAllowed needs the queue to allow spot": Case(
        [make_node("spot", cloud=True, spot=True)],
        [make_queue(allow_spot=False)],
        [make_job("j", gpus=1, policy=PlacementPolicy.SPOT_ALLOWED)],
        {"j": W.NO_FITTING_NODE},
    ),
    "SpotAllowed uses spot when both allow it": Case(
        [make_node("spot", cloud=True, spot=True)],
        [make_queue(allow_spot=True)],
        [make_job("j", gpus=1, policy=PlacementPolicy.SPOT_ALLOWED)],
        {"j": "@spot"},
    ),
}

QUEUES = {
    "unknown queue": Case(
        [make_node()], [make_queue("team-a")], [make_job("j", queue="nope")], {"j": W.QUEUE_NOT_FOUND}
    ),
    "budget exhausted": Case(
        [make_node()], [make_queue(budget_exhausted=True)], [make_job("j")], {"j": W.BUDGET_EXHAUSTED}
    ),
    "priority above the queue's maximum waits (not capped)": Case(
        [make_node()],
        [make_queue(max_priority=10)],
        [make_job("over", priority=11), make_job("ok", priority=10)],
        {"over": W.PRIORITY_ABOVE_QUEUE_MAX, "ok": "admitted"},
    ),
    "quota caps a queue below cluster capacity": Case(
        [make_node(gpus=8)],
        [make_queue(gpus=4)],
        [make_job("a", gpus=4), make_job("b", gpus=1, submitted_at=1)],
        {"a": "admitted", "b": W.QUOTA_EXHAUSTED},
    ),
    "no quota for the nodes the job may use": Case(
        [make_node(model="A100")],
        [make_queue(model="H100")],
        [make_job("j", gpus=1)],
        {"j": W.QUOTA_EXHAUSTED},
    ),
    "borrowing idle quota of a cohort peer": Case(
        [make_node(gpus=8)],
        [make_queue("a", gpus=4, cohort="c"), make_queue("b", gpus=4, cohort="c")],
        [make_job("j", queue="a", gpus=8)],
        {"j": "admitted"},
    ),
    "a borrower never takes what a lender's own pending job can use within nominal": Case(
        [make_node(gpus=8)],
        [make_queue("a", gpus=4, cohort="c"), make_queue("b", gpus=4, cohort="c")],
        [make_job("big", queue="a", gpus=8, priority=10), make_job("own", queue="b", gpus=4, submitted_at=1)],
        {"big": W.QUOTA_EXHAUSTED, "own": "admitted"},
    ),
    "a queue's jobs keep their order when its head must borrow": Case(
        [make_node(gpus=16)],
        [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")],
        [make_job("big", queue="a", gpus=16, priority=10), make_job("small", queue="a", gpus=8, submitted_at=1)],
        {"big": "admitted", "small": W.QUOTA_EXHAUSTED},
    ),
    "a head that must borrow to preempt its own queue waits for the lenders' jobs first": Case(
        [make_node("n0", gpus=8), make_node("n1", gpus=8)],
        [make_queue("a", gpus=8, cohort="c", borrowing=8), make_queue("b", gpus=8, cohort="c")],
        [
            make_job("lender", queue="b", gpus=0.5, submitted_at=1),
            make_job("head", queue="a", gpus=4, workers=4, priority=10, submitted_at=2),
        ],
        {"lender": "admitted", "head": W.QUOTA_EXHAUSTED},
        running=[make_job("own", queue="a", gpus=4, workers=2, on=("n1", "n1"), admitted_at=10.0)],
    ),
    "borrowing stops at the borrowing limit": Case(
        [make_node(gpus=8)],
        [make_queue("a", gpus=4, cohort="c", borrowing=2), make_queue("b", gpus=4, cohort="c")],
        [make_job("j", queue="a", gpus=8)],
        {"j": W.QUOTA_EXHAUSTED},
    ),
    "lending stops at the lending limit": Case(
        [make_node(gpus=8)],
        [make_queue("a", gpus=4, cohort="c"), make_queue("b", gpus=4, cohort="c", lending=1)],
        [make_job("j", queue="a", gpus=6)],
        {"j": W.QUOTA_EXHAUSTED},
    ),
    "a pool quota applies to that pool's nodes": Case(
        [make_node("p1", pool="dgx"), make_node("p2", pool="other")],
        [make_queue(pool="dgx", gpus=8)],
        [make_job("j", gpus=8)],
        {"j": "@p1"},
    ),
}

HEAD_OF_LINE = {
    "StrictFIFO: the rest of the queue waits behind a blocked head": Case(
        [make_node(gpus=8)],
        [make_queue(strict=True)],
        [make_job("head", gpus=8, submitted_at=0), make_job("small", gpus=1, submitted_at=1)],
        {"head": W.INSUFFICIENT_CAPACITY, "small": W.BLOCKED_BY_HEAD_OF_LINE},
        running=[make_job("r", gpus=2, on=("n1",))],
    ),
    "BestEffortFIFO: small jobs backfill on nodes the head is not waiting for": Case(
        [make_node("n1", gpus=8), make_node("n2", gpus=8)],
        [make_queue()],
        [make_job("head", gpus=8), make_job("small", gpus=1, submitted_at=1)],
        {"head": W.INSUFFICIENT_CAPACITY, "small": "@n1"},
        running=[make_job("r1", gpus=2, on=("n1",)), make_job("r2", gpus=1, on=("n2",))],
    ),
    "BestEffortFIFO: backfill never takes the head's reserved node": Case(
        [make_node("n1", gpus=8)],
        [make_queue()],
        [make_job("head", gpus=8), make_job("small", gpus=1, submitted_at=1)],
        {"head": W.INSUFFICIENT_CAPACITY, "small": W.BEHIND_HIGHER_PRIORITY},
        running=[make_job("r", gpus=2, on=("n1",))],
    ),
    "a head blocked by quota keeps later jobs of its queue from taking the quota it waits for": Case(
        [make_node("n1", gpus=8), make_node("n2", gpus=8)],
        [make_queue(gpus=8)],
        [make_job("head", gpus=8), make_job("small", gpus=1, submitted_at=1)],
        {"head": W.QUOTA_EXHAUSTED, "small": W.QUOTA_EXHAUSTED},
        running=[make_job("r", gpus=4, on=("n1",))],
    ),
    "the reservation holds the head's quota too": Case(
        [make_node("n1", gpus=8), make_node("n2", gpus=8)],
        [make_queue(gpus=10)],
        [make_job("head", gpus=8), make_job("small", gpus=2, submitted_at=1)],
        {"head": W.INSUFFICIENT_CAPACITY, "small": W.QUOTA_EXHAUSTED},
        running=[make_job("r1", gpus=1, on=("n1",)), make_job("r2", gpus=1, on=("n2",), queue="other")],
    ),
    "fair share: the queue that used less goes first": Case(
        [make_node(gpus=8)],
        [make_queue("heavy", usage=1e7), make_queue("light")],
        [
            make_job("h", queue="heavy", gpus=8, submitted_at=0),
            make_job("l", queue="light", gpus=8, submitted_at=1),
        ],
        {"l": "admitted", "h": W.INSUFFICIENT_CAPACITY},
    ),
    "fair share: weight counts": Case(
        [make_node(gpus=8)],
        [make_queue("big-team", usage=1e4, weight=10.0), make_queue("small-team", usage=1e4)],
        [
            make_job("s", queue="small-team", gpus=8, submitted_at=0),
            make_job("b", queue="big-team", gpus=8, submitted_at=1),
        ],
        {"b": "admitted", "s": W.INSUFFICIENT_CAPACITY},
    ),
    "priority beats fair share": Case(
        [make_node(gpus=8)],
        [make_queue("heavy", usage=1e7), make_queue("light")],
        [make_job("h", queue="heavy", gpus=8, priority=5), make_job("l", queue="light", gpus=8)],
        {"h": "admitted", "l": W.INSUFFICIENT_CAPACITY},
    ),
}

PREEMPTION = {
    "within a queue, higher priority evicts lower": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=8, priority=10)],
        {"hi": W.WAITING_FOR_PREEMPTION},
        running=[make_job("lo", gpus=8, priority=0, on=("n1",))],
        preempted={"lo"},
    ),
    "equal priority never evicts": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("new", gpus=8, priority=0)],
        {"new": W.INSUFFICIENT_CAPACITY},
        running=[make_job("old", gpus=8, priority=0, on=("n1",))],
    ),
    "non-preemptible jobs are never evicted": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=8, priority=10)],
        {"hi": W.INSUFFICIENT_CAPACITY},
        running=[make_job("lo", gpus=8, on=("n1",), preemptible=False)],
    ),
    "jobs younger than minRuntime are never evicted": Case(
        [make_node(gpus=8)],
        [make_queue(min_runtime=600)],
        [make_job("hi", gpus=8, priority=10)],
        {"hi": W.INSUFFICIENT_CAPACITY},
        running=[make_job("lo", gpus=8, on=("n1",), admitted_at=9_900.0)],
    ),
    "jobs older than minRuntime may be evicted": Case(
        [make_node(gpus=8)],
        [make_queue(min_runtime=600)],
        [make_job("hi", gpus=8, priority=10)],
        {"hi": W.WAITING_FOR_PREEMPTION},
        running=[make_job("lo", gpus=8, on=("n1",), admitted_at=9_000.0)],
        preempted={"lo"},
    ),
    "the cheapest victim: lowest priority": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=4, priority=10)],
        {"hi": W.WAITING_FOR_PREEMPTION},
        running=[
            make_job("p1", gpus=4, priority=1, on=("n1",)),
            make_job("p5", gpus=4, priority=5, on=("n1",), first_gpu=4),
        ],
        preempted={"p1"},
    ),
    "the cheapest victim: most recently admitted": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=4, priority=10)],
        {"hi": W.WAITING_FOR_PREEMPTION},
        running=[
            make_job("older", gpus=4, on=("n1",), admitted_at=100.0),
            make_job("newer", gpus=4, on=("n1",), admitted_at=200.0, first_gpu=4),
        ],
        preempted={"newer"},
    ),
    "fewest victims: an unnecessary cheap victim is spared": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=8, priority=10)],
        {"hi": W.WAITING_FOR_PREEMPTION},
        running=[
            make_job("tiny", gpus=1, priority=0, on=("n1",)),
            make_job("big", gpus=7, priority=1, on=("n1",), first_gpu=1),
        ],
        preempted={"tiny", "big"},
    ),
    "a victim's capacity is held for the preemptor, not backfilled": Case(
        [make_node(gpus=8)],
        [make_queue()],
        [make_job("hi", gpus=4, priority=10), make_job("small", gpus=1, priority=0, submitted_at=1)],
        {"hi": W.WAITING_FOR_PREEMPTION, "small": W.BEHIND_HIGHER_PRIORITY},
        running=[
            make_job("lo", gpus=6, priority=0, on=("n1",)),
            make_job("keep", gpus=2, on=("n1",), first_gpu=6, preemptible=False),
        ],
        preempted={"lo"},
    ),
    "across queues only to reclaim borrowed quota": Case(
        [make_node(gpus=8)],
        [make_queue("owner", gpus=4, cohort="c"), make_queue("borrower", gpus=4, cohort="c")],
        [make_job("mine", queue="owner", gpus=4)],
        {"mine": W.WAITING_FOR_PREEMPTION},
        running=[
            make_job("b1", queue="borrower", gpus=4, on=("n1",), priority=9),
            make_job("b2", queue="borrower", gpus=4, on=("n1",), priority=9, first_gpu=4, admitted_at=50.0),
        ],
        preempted={"b2"},
    ),
    "no cross-queue eviction of a queue within its nominal": Case(
        [make_node(gpus=6)],
        [make_queue("a", gpus=4, cohort="c"), make_queue("b", gpus=4, cohort="c")],
        [make_job("j", queue="a", gpus=4, priority=100)],
        {"j": W.INSUFFICIENT_CAPACITY},
        running=[make_job("theirs", queue="b", gpus=4, on=("n1",))],
    ),
    "no reclaim when the preemptor itself would borrow": Case(
        [make_node(gpus=8)],
        [make_queue("a", gpus=2, cohort="c"), make_queue("b", gpus=6, cohort="c")],
        [make_job("j", queue="a", gpus=4)],
        {"j": W.QUOTA_EXHAUSTED},
        running=[make_job("theirs", queue="b", gpus=8, on=("n1",))],
    ),
}


def _cases(table: dict[str, Case]) -> list[object]:
    return [pytest.param(case, id=name) for name, case in table.items()]


@pytest.mark.parametrize("case", _cases(PLACEMENT))
def test_placement(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", _cases(POOLS))
def test_pool_policy(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", _cases(QUEUES))
def test_queue_rules(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", _cases(HEAD_OF_LINE))
def test_head_of_line_and_order(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", _cases(PREEMPTION))
def test_preemption(case: Case) -> None:
    check(case)


def test_preemption_message_names_the_preemptor_and_why() -> None:
    case = PREEMPTION["across queues only to reclaim borrowed quota"]
    (p,) = run(case).preemptions
    assert p.preemptor_key == "mine"
    assert "preempted by mine" in p.message and "reclaim" in p.message and "borrower" in p.message


def test_waiting_message_is_actionable() -> None:
    case = QUEUES["quota caps a queue below cluster capacity"]
    waiting = {w.job_key: w for w in run(case).waiting}
    assert waiting["b"].message.startswith(
        "waiting for 1 GPU in queue team-a: 4 of 4 GPUs of its model:H100 quota in use"
    )


def test_borrowed_gpus_are_reported() -> None:
    case = QUEUES["borrowing idle quota of a cohort peer"]
    (admission,) = run(case).admissions
    assert admission.borrowed_gpus == 4.0


def test_max_admissions_per_cycle() -> None:
    snap = make_snapshot([make_node()], [make_queue()], [make_job(f"j{i}", submitted_at=i) for i in range(3)])
    decisions = schedule(snap, SchedulerConfig(max_admissions_per_cycle=2))
    assert [a.job_key for a in decisions.admissions] == ["j0", "j1"]
    assert [w.job_key for w in decisions.waiting] == ["j2"]


def test_identical_input_identical_decisions() -> None:
    nodes = [make_node(f"n{i}", gpus=8) for i in range(4)]
    pending = [make_job(f"j{i}", gpus=(0.5, 1, 2, 4)[i % 4], submitted_at=i) for i in range(30)]
    snap = make_snapshot(nodes, [make_queue()], pending, seed=7)
    assert schedule(snap) == schedule(snap)
