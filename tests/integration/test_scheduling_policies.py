"""The scheduling core wired into the operator, on the real control plane: borrowing
within a cohort, reclaim by preemption, fair-share order between two teams, and backfill
that never delays a waiting big gang."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cluster_tools import OperatorProcess
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


def queue_usage(world: Scenario, queue: str) -> dict[str, Any]:
    import json

    from cluster_tools import kubectl

    raw = json.loads(kubectl(world.kubeconfig, "get", "gpuqueue", queue, "-o", "json").stdout)
    usage = (raw.get("status") or {}).get("usage") or []
    return usage[0] if usage else {}


def test_a_queue_borrows_idle_quota_of_its_cohort(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    team_a = world.queue("a", nominal=4, cohort="lab")
    world.queue("b", nominal=4, cohort="lab")
    world.job("wide", team_a, gpus=8, duration="10m")

    status = world.wait_phase("wide", "Running", 30)
    assert (
        "borrowing 4 GPU(s) from the cohort"
        in next(c for c in status["conditions"] if c["type"] == "Admitted")["message"]
    )
    usage = wait_for(lambda: (u := queue_usage(world, team_a)).get("borrowed") == 4 and u, 20, "borrowed GPUs")
    assert usage["used"] == 8 and usage["nominal"] == 4


def test_owner_reclaims_borrowed_quota_by_preemption(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    team_a = world.queue("a", nominal=4, cohort="lab")
    team_b = world.queue("b", nominal=4, cohort="lab")
    world.job("borrower", team_a, gpus=8, duration="10m")
    world.wait_phase("borrower", "Running", 30)

    world.job("owner", team_b, gpus=4, duration="4s")
    preempted = world.wait_phase("borrower", "Preempted", 30)
    # The Preempted condition keeps who and why; the message moves on to why it now waits.
    why = next(c for c in preempted["conditions"] if c["type"] == "Preempted")
    assert why["status"] == "True"
    assert "preempted by" in why["message"] and "owner" in why["message"] and "reclaim" in why["message"]
    assert preempted["attempts"] == 1
    world.wait_phase("owner", "Running", 20)
    wait_for(lambda: "Preempted" in world.events("borrower"), 10, "the Preempted event")

    # Once the owner is done, the borrower comes back for a second attempt.
    world.wait_phase("owner", "Succeeded", 30)
    again = world.wait_phase("borrower", "Running", 30)
    assert again["attempts"] == 2
    assert next(c for c in again["conditions"] if c["type"] == "Preempted")["status"] == "False"


def test_fair_share_lets_the_team_that_used_less_go_first(world: Scenario) -> None:
    world.nodes(1, gpus=4)
    team_a = world.queue("a", nominal=4, cohort="lab")
    team_b = world.queue("b", nominal=4, cohort="lab")
    for i in range(4):
        world.job(f"history-{i}", team_a, gpus=1, duration="6s")
    for i in range(4):
        world.wait_phase(f"history-{i}", "Running", 30)

    # Team A submits first; team B later. The node is busy, so both wait.
    world.job("a-next", team_a, gpus=4, duration="30s")
    time.sleep(1.5)
    world.job("b-next", team_b, gpus=4, duration="30s")

    winner = wait_for(
        lambda: next((n for n in ("a-next", "b-next") if world.phase(n) in ("Admitted", "Running")), None),
        60,
        "one of the two waiting jobs to start",
    )
    assert winner == "b-next", "team B used less GPU time lately, so its job goes first despite arriving later"
    assert world.phase("a-next") == "Queued"


def test_backfill_runs_small_jobs_beside_a_waiting_gang_without_delaying_it(world: Scenario) -> None:
    world.nodes(2, gpus=8)
    queue = world.queue("team", nominal=32)  # capacity binds here, not quota
    world.job("resident", queue, workers=2, gpus=5, duration="10s")  # 5 GPUs on each node
    world.wait_phase("resident", "Running", 30)

    world.job("big", queue, gpus=8, duration="30s")
    time.sleep(1.5)
    for i in range(4):
        world.job(f"small-{i}", queue, gpus=1, duration="10m")

    # Three small jobs fit beside the big job's reserved node; the fourth would take from it.
    wait_for(lambda: sum(world.phase(f"small-{i}") == "Running" for i in range(4)) == 3, 30, "three backfilled jobs")
    assert world.phase("big") == "Queued"
    blocked = [i for i in range(4) if world.phase(f"small-{i}") == "Queued"]
    assert len(blocked) == 1
    assert "big" in (world.status(f"small-{blocked[0]}").get("message") or "")

    resident_done = world.wait_phase("resident", "Succeeded", 30)["finishedAt"]
    big = world.wait_phase("big", "Running", 20)
    from datetime import datetime

    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    assert at(big["admittedAt"]) - at(resident_done) <= 5, "the big job started as soon as the resident finished"


def test_small_jobs_do_not_starve_a_gang_waiting_for_quota(world: Scenario) -> None:
    world.nodes(2, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("resident", queue, gpus=4, duration="8s")
    world.wait_phase("resident", "Running", 30)
    world.job("big", queue, gpus=8, duration="20s")
    time.sleep(1.5)
    for i in range(3):
        world.job(f"small-{i}", queue, gpus=1, duration="10m")

    wait_for(lambda: "8 GPUs" in (world.status("big").get("message") or ""), 20, "big to wait for quota")
    time.sleep(3)
    assert all(world.phase(f"small-{i}") == "Queued" for i in range(3)), "small jobs took the big job's quota"
    world.wait_phase("resident", "Succeeded", 30)
    world.wait_phase("big", "Running", 15)
