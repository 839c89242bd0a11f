"""Order of consideration: priority, then fair share, then submission time."""

from __future__ import annotations

import pytest

from builders import make_job, make_queue
from gpupool.core.models import Job
from gpupool.core.ordering import QueueTurns, priority_allowed


def _order(jobs: list[Job], shares: dict[str, float]) -> list[str]:
    turns = QueueTurns(jobs, lambda q: shares.get(q, 0.0))
    out = []
    while (job := turns.pop()) is not None:
        out.append(job.key)
    return out


@pytest.mark.parametrize(
    ("jobs", "shares", "expected"),
    [
        pytest.param(
            [make_job("a", submitted_at=2), make_job("b", submitted_at=1)],
            {},
            ["b", "a"],
            id="same queue and priority: first submitted first",
        ),
        pytest.param(
            [make_job("a", submitted_at=1), make_job("b", submitted_at=2, priority=5)],
            {},
            ["b", "a"],
            id="higher priority first",
        ),
        pytest.param(
            [make_job("a", queue="q1", submitted_at=1), make_job("b", queue="q2", submitted_at=2)],
            {"q1": 0.5, "q2": 0.1},
            ["b", "a"],
            id="equal priority: lower fair share first",
        ),
        pytest.param(
            [make_job("a", queue="q1", priority=1), make_job("b", queue="q2")],
            {"q1": 0.9, "q2": 0.0},
            ["a", "b"],
            id="priority beats fair share",
        ),
        pytest.param(
            [make_job("a", queue="q1", submitted_at=2), make_job("b", queue="q2", submitted_at=1)],
            {"q1": 0.2, "q2": 0.2},
            ["b", "a"],
            id="equal share: first submitted first",
        ),
    ],
)
def test_order(jobs: list[Job], shares: dict[str, float], expected: list[str]) -> None:
    assert _order(jobs, shares) == expected


def test_share_is_reread_each_turn_so_queues_take_turns() -> None:
    shares = {"q1": 0.0, "q2": 0.0}
    jobs = [make_job(f"{q}-{i}", queue=q, submitted_at=i) for q in ("q1", "q2") for i in range(3)]
    turns = QueueTurns(jobs, lambda q: shares[q])
    order = []
    while (job := turns.pop()) is not None:
        order.append(job.key)
        shares[job.queue] += 1.0  # every admission raises the queue's share
    assert order == ["q1-0", "q2-0", "q1-1", "q2-1", "q1-2", "q2-2"]


def test_drain_takes_the_rest_of_a_queue() -> None:
    jobs = [make_job(f"q1-{i}", queue="q1", submitted_at=i) for i in range(3)] + [make_job("q2-0", queue="q2")]
    turns = QueueTurns(jobs, lambda q: 0.0 if q == "q1" else 1.0)
    first = turns.pop()
    assert first is not None and first.key == "q1-0"
    assert [j.key for j in turns.drain("q1")] == ["q1-1", "q1-2"]
    rest = turns.pop()
    assert rest is not None and rest.key == "q2-0"
    assert turns.pop() is None


@pytest.mark.parametrize(
    ("priority", "max_priority", "allowed"),
    [
        pytest.param(5, None, True, id="no maximum"),
        pytest.param(5, 5, True, id="at the maximum"),
        pytest.param(6, 5, False, id="above the maximum waits"),
    ],
)
def test_priority_cap(priority: int, max_priority: int | None, allowed: bool) -> None:
    assert priority_allowed(make_job(priority=priority), make_queue(max_priority=max_priority)) is allowed
