"""Queue budgets on the real control plane with the operator running.

The pool's GPU-hour is priced very high (4,500 per GPU-hour, 1.25 a second) so a few
seconds of a simulated job spend a small budget. Budgets here are Monthly: a test that
straddles the first of a month at 00:00 UTC would see its spend start afresh. That reset
itself is tested with an injected clock in tests/unit/cluster/test_spend.py: the
operator runs as a separate process on the real clock.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


def queue_status(world: Scenario, queue: str) -> dict[str, Any]:
    out = kubectl(world.kubeconfig, "get", "gpuqueue", queue, "-o", "json").stdout
    status: dict[str, Any] = json.loads(out).get("status") or {}
    return status


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


def queue_events(world: Scenario, queue: str) -> list[str]:
    """Reasons of the Events about a GPUQueue (cluster-scoped: they live in namespace default)."""
    selector = f"involvedObject.name={queue},involvedObject.kind=GPUQueue"
    out = kubectl(world.kubeconfig, "get", "events", "-n", "default", "--field-selector", selector, "-o", "json").stdout
    return [e["reason"] for e in json.loads(out)["items"]]


def next_month_start() -> str:
    now = datetime.now(UTC)
    start = (
        datetime(now.year + 1, 1, 1, tzinfo=UTC)
        if now.month == 12
        else datetime(now.year, now.month + 1, 1, tzinfo=UTC)
    )
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_spent_budget_stops_admissions_and_spend_survives_an_operator_restart(
    world: Scenario, operator: OperatorProcess
) -> None:
    world.nodes(1, gpus=8)
    world.pool(gpus_per_node=8, amortised_price=36_000.0)  # 4,500 per GPU-hour
    queue = world.queue("team", nominal=8, budget={"amount": 5, "period": "Monthly"})

    # Admitted while the budget is unspent; it spends 1.25 a second, so the budget runs out
    # while it runs, and it keeps running to the end.
    world.job("first", queue, gpus=1, duration="6s")
    world.wait_phase("first", "Running", 30)
    exhausted = wait_for(
        lambda: condition(s := queue_status(world, queue), "BudgetExhausted").get("status") == "True" and s,
        30,
        "the BudgetExhausted condition",
    )
    assert condition(exhausted, "BudgetNearlySpent")["status"] == "True"
    assert "of its monthly budget of 5 USD" in condition(exhausted, "BudgetExhausted")["message"]
    first = world.wait_phase("first", "Succeeded", 30)
    assert first["attempts"] == 1 and first["cost"] >= 5

    # Once the job is done, spend settles at exactly what it cost.
    settled = wait_for(
        lambda: ((s := queue_status(world, queue)).get("spend") or {}).get("amount") == first["cost"] and s,
        20,
        "spend to equal the finished job's cost",
    )
    spend = settled["spend"]
    assert spend["currency"] == "USD" and spend["gpuHours"] == pytest.approx(first["gpuSeconds"] / 3600, abs=1e-3)
    assert spend["resetsAt"] == next_month_start()

    world.job("second", queue, gpus=1, duration="2s")
    waiting = wait_for(
        lambda: "has spent" in ((s := world.status("second")).get("message") or "") and s, 30, "a budget reason"
    )
    assert waiting["phase"] == "Queued" and world.pods("second") == []
    assert "of its monthly budget of 5 USD" in waiting["message"]
    assert f"resets at {next_month_start()}" in waiting["message"]
    assert condition(waiting, "Admitted")["reason"] == "BudgetExhausted"
    wait_for(lambda: {"BudgetNearlySpent", "BudgetExhausted"} <= set(queue_events(world, queue)), 20, "queue events")

    # Restart: stop the operator, wipe the spend and conditions it wrote, start it again.
    # The new operator derives the same spend from the jobs alone.
    operator.kill(signal.SIGKILL)
    wiped = json.dumps({"status": {"spend": None, "conditions": None}})
    kubectl(world.kubeconfig, "patch", "gpuqueue", queue, "--subresource=status", "--type=merge", "-p", wiped)
    assert "spend" not in queue_status(world, queue)
    operator.start()

    again = wait_for(
        lambda: condition(s := queue_status(world, queue), "BudgetExhausted").get("status") == "True" and s,
        30,
        "the BudgetExhausted condition after the restart",
    )
    assert again["spend"] == spend
    assert world.phase("second") == "Queued" and world.pods("second") == []
