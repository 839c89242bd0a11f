"""Hot standby on the real control plane: two operators with leader election. A leader
SIGKILLed mid-run is replaced by the standby within the lease duration plus a retry; a
leader paused past its lease exits when it wakes up to find another holder.

The session's operator (election off) is replaced for the test by two that elect a leader
on a Lease of their own, and comes back after it.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster_tools import OperatorProcess
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

LEASE_NAMESPACE = "default"
# Lease duration 15 s, retry period 2 s (the defaults): the standby last sees the dead
# leader's renewal at most one jittered retry period (2.4 s) after the kill and tries again
# the moment 15 s have passed since: 17.4 s at worst, plus the API round trips.
TAKEOVER_LIMIT_SECONDS = 20.0


def holder(api_client: Any, lease: str) -> str | None:
    spec = client.CoordinationV1Api(api_client).read_namespaced_lease(lease, LEASE_NAMESPACE).spec
    return spec.holder_identity


def ready_body(process: OperatorProcess, prefix: str) -> str:
    status, body = process.readyz()
    return body if status == 200 and body.startswith(prefix) else ""


@contextmanager
def two_operators(
    operator: OperatorProcess, api_client: Any, log_dir: Path
) -> Iterator[tuple[str, str, OperatorProcess]]:
    """The session operator restarted with election on a fresh Lease and leading, and a
    second one standing by: yields (Lease name, the leader's identity, the standby)."""
    lease = f"gpupool-failover-{uuid.uuid4().hex[:6]}"
    env = {"GPUPOOL_LEADER_ELECTION": "true", "GPUPOOL_LEADER_ELECTION_LEASE_NAME": lease}
    standby = OperatorProcess(operator.kubeconfig, log_dir / "standby.log")
    standby.extra_env = dict(env)
    try:
        with operator.running_with(**env):
            body = wait_for(lambda: ready_body(operator, "ok: leader "), 30, "the first operator to lead")
            first = body.removeprefix("ok: leader ")
            standby.start()
            assert wait_for(lambda: ready_body(standby, "standby: "), 30, "the second to stand by") == (
                f"standby: leader is {first}"
            )
            assert holder(api_client, lease) == first
            yield lease, first, standby
            standby.stop()
    finally:
        standby.stop()
        with suppress(client.ApiException):
            client.CoordinationV1Api(api_client).delete_namespaced_lease(lease, LEASE_NAMESPACE)


def test_the_standby_takes_over_a_killed_leader_and_loses_or_duplicates_nothing(
    kubeconfig: str, core_api: Any, api_client: Any, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    world = Scenario(kubeconfig, core_api, namespace)
    with two_operators(operator, api_client, tmp_path) as (lease, first, standby):
        world.nodes(3, gpus=8)
        team = world.queue("team", nominal=16)  # 4 gangs of 4 GPUs at a time: half wait
        probe_queue = world.queue("probe", nominal=8)  # 8 GPUs team can never hold
        names = [world.job(f"gang-{i}", team, workers=2, gpus=2, duration="8s") for i in range(8)]
        wait_for(lambda: any(world.phase(n) == "Running" for n in names), 60, "a gang to run")
        assert any(world.phase(n) in (None, "Queued") for n in names), "some gangs must still wait"
        assert "scheduling loop started" not in standby.log_path.read_text()

        operator.kill(signal.SIGKILL)
        killed = time.monotonic()
        world.job("probe", probe_queue, gpus=1, duration="2s")  # only a new leader can admit it
        second = wait_for(lambda: (h := holder(api_client, lease)) != first and h, 40, "a new Lease holder")
        lease_taken = time.monotonic() - killed
        wait_for(lambda: world.phase("probe") in ("Admitted", "Running", "Succeeded"), 30, "the probe's admission")
        writing = time.monotonic() - killed
        print(f"\ntakeover: Lease taken {lease_taken:.1f} s and first admission {writing:.1f} s after SIGKILL")

        assert wait_for(lambda: ready_body(standby, "ok: leader "), 30, "the standby to lead") == f"ok: leader {second}"
        assert lease_taken <= writing <= TAKEOVER_LIMIT_SECONDS

        for name in names:
            world.wait_phase(name, "Succeeded", 120)
        by_worker = Counter(
            (p["metadata"]["labels"]["gpupool.io/job"], p["metadata"]["labels"]["gpupool.io/worker"])
            for p in world.pods()
            if p["metadata"]["labels"]["gpupool.io/job"] != "probe"
        )
        assert set(by_worker) == {(n, w) for n in names for w in ("0", "1")}
        assert all(count == 1 for count in by_worker.values()), by_worker
        assert all(world.status(n)["attempts"] == 1 for n in names)


def test_a_leader_paused_past_its_lease_exits_when_it_wakes_up(
    api_client: Any, operator: OperatorProcess, tmp_path: Path
) -> None:
    """A stopped-the-world leader (SIGSTOP: a long GC pause, a frozen VM) is replaced; on
    waking it finds its renewal deadline long past and another holder, and exits (status 1)."""
    with two_operators(operator, api_client, tmp_path) as (lease, first, standby):
        assert operator.proc is not None
        operator.proc.send_signal(signal.SIGSTOP)
        try:
            second = wait_for(lambda: (h := holder(api_client, lease)) != first and h, 40, "a new Lease holder")
        finally:
            operator.proc.send_signal(signal.SIGCONT)
        assert operator.proc.wait(timeout=15) == 1
        assert "leader Lease lost; exiting" in operator.log_path.read_text()
        assert holder(api_client, lease) == second
        assert ready_body(standby, "ok: leader ") == f"ok: leader {second}"
