"""The GPUJob lifecycle rules, one row per situation (see gpupool.cluster.writes.lifecycle)."""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import gpujob
from gpupool.api import ADMISSION_REJECTION_LIMIT, GPUJob
from gpupool.cluster.writes.lifecycle import (
    Step,
    admission_hold_seconds,
    admission_rejection,
    next_step,
    pods_of_attempt,
)
from gpupool.cluster.writes.pods import LABEL_ATTEMPT, LABEL_WORKER

NOW = 1_000_000.0


def make_job(
    phase: str = "Admitted", workers: int = 2, backoff_limit: int = 1, max_runtime: str | None = None
) -> GPUJob:
    extra = {"maxRuntime": max_runtime} if max_runtime else {}
    return gpujob(phase=phase, workers=workers, backoffLimit=backoff_limit, status={"attempts": 1}, **extra)


def make_pod(worker: int, phase: str, attempt: int = 1, deleting: bool = False, exit_code: int = 1) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"train-a{attempt}-w{worker}",
        "labels": {LABEL_ATTEMPT: str(attempt), LABEL_WORKER: str(worker)},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if phase == "Failed":
        status["containerStatuses"] = [{"state": {"terminated": {"reason": "Error", "exitCode": exit_code}}}]
    return {"metadata": metadata, "status": status}


@pytest.mark.parametrize(
    ("phase", "pods", "failures", "expected"),
    [
        ("Admitted", {}, 0, Step.CREATE_PODS),
        ("Admitted", {0: make_pod(0, "Running")}, 0, Step.CREATE_PODS),
        ("Admitted", {0: make_pod(0, "Pending"), 1: make_pod(1, "Running")}, 0, Step.NOTHING),
        ("Admitted", {0: make_pod(0, "Running"), 1: make_pod(1, "Running")}, 0, Step.MARK_RUNNING),
        ("Running", {0: make_pod(0, "Running"), 1: make_pod(1, "Running")}, 0, Step.NOTHING),
        ("Running", {0: make_pod(0, "Succeeded"), 1: make_pod(1, "Running")}, 0, Step.NOTHING),
        ("Running", {0: make_pod(0, "Succeeded"), 1: make_pod(1, "Succeeded")}, 0, Step.SUCCEED),
        ("Running", {0: make_pod(0, "Failed"), 1: make_pod(1, "Running")}, 0, Step.RETRY),
        ("Running", {0: make_pod(0, "Failed"), 1: make_pod(1, "Running")}, 1, Step.FAIL),
        ("Running", {0: make_pod(0, "Running")}, 0, Step.RETRY),
        ("Running", {0: make_pod(0, "Running"), 1: make_pod(1, "Running", deleting=True)}, 0, Step.RETRY),
    ],
    ids=[
        "admitted-without-pods-creates-them",
        "admitted-with-one-pod-missing-creates-it",
        "admitted-while-a-worker-is-pending-waits",
        "all-workers-running-marks-running",
        "running-stays-running",
        "partly-succeeded-keeps-running",
        "all-succeeded-succeeds",
        "a-failed-worker-restarts-the-gang-within-backoff",
        "a-failed-worker-past-backoff-fails-the-job",
        "a-vanished-pod-of-a-running-job-is-a-failure",
        "a-pod-being-deleted-counts-as-failed",
    ],
)
def test_next_step(phase: str, pods: dict[int, Any], failures: int, expected: Step) -> None:
    step = next_step(make_job(phase), pods, NOW, started_at=NOW - 10, max_runtime_seconds=None, failures=failures)
    assert step.step == expected


def test_missing_workers_are_named() -> None:
    step = next_step(
        make_job("Admitted", workers=3),
        {1: make_pod(1, "Running")},
        NOW,
        started_at=None,
        max_runtime_seconds=None,
        failures=0,
    )
    assert step.missing_workers == (0, 2)


def test_failure_message_names_the_worker_pod_and_exit_code() -> None:
    pods = {0: make_pod(0, "Running"), 1: make_pod(1, "Failed", exit_code=137)}
    step = next_step(make_job("Running"), pods, NOW, started_at=NOW - 5, max_runtime_seconds=None, failures=0)
    assert "worker 1 (pod train-a1-w1) failed: Error, exit code 137" in step.message
    assert "failure 1 of backoffLimit 1" in step.message


@pytest.mark.parametrize(
    ("ran_for", "expected"),
    [(3599.0, Step.NOTHING), (3601.0, Step.FAIL)],
    ids=["within-max-runtime", "past-max-runtime"],
)
def test_max_runtime_is_enforced(ran_for: float, expected: Step) -> None:
    pods = {0: make_pod(0, "Running"), 1: make_pod(1, "Running")}
    step = next_step(
        make_job("Running", max_runtime="1h"),
        pods,
        NOW,
        started_at=NOW - ran_for,
        max_runtime_seconds=3600.0,
        failures=0,
    )
    assert step.step == expected
    if expected == Step.FAIL:
        assert step.reason == "MaxRuntimeExceeded" and "spec.maxRuntime (1h)" in step.message


def test_pods_of_attempt_keeps_only_that_attempt() -> None:
    pods = [make_pod(0, "Running", attempt=1), make_pod(0, "Failed", attempt=2), make_pod(1, "Running", attempt=2)]
    assert sorted(pods_of_attempt(pods, 2)) == [0, 1]
    assert pods_of_attempt(pods, 2)[0]["status"]["phase"] == "Failed"


@pytest.mark.parametrize("failures", [0, 1], ids=["within-backoff", "at-the-backoff-limit"])
def test_a_lost_node_interrupts_the_gang_whatever_its_failures(failures: int) -> None:
    placement = [
        {
            "worker": w,
            "pod": f"train-a1-w{w}",
            "node": f"spot-{w}",
            "pool": "cloud",
            "gpuModel": "A100",
            "gpuIndices": [0],
        }
        for w in range(2)
    ]
    job = gpujob(phase="Running", workers=2, backoffLimit=1, status={"attempts": 1, "placement": placement})
    pods = {0: make_pod(0, "Running")}  # worker 1's pod went with its node
    step = next_step(
        job, pods, NOW, started_at=NOW - 10, max_runtime_seconds=None, failures=failures, lost_nodes={"spot-1"}
    )
    assert (step.step, step.reason) == (Step.INTERRUPT, "Interrupted")
    assert "spot-1" in step.message and "does not count against backoffLimit" in step.message


# --------------------------------------------------------------------------- kubelet admission rejections


def rejected_pod(worker: int, reason: str, *, message: str = "", node: str = "n1", ran: bool = False) -> dict[str, Any]:
    """A worker pod as the kubelet leaves it after refusing it at admission (`ran`: a container had run)."""
    pod = make_pod(worker, "Running")
    status: dict[str, Any] = {"phase": "Failed", "reason": reason, "message": message}
    if ran:
        status["containerStatuses"] = [{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]
    return {**pod, "spec": {"nodeName": node}, "status": status}


@pytest.mark.parametrize(
    ("pod", "rejection_reason"),
    [
        (rejected_pod(0, "OutOfnvidia.com/gpu"), "OutOfnvidia.com/gpu"),
        (rejected_pod(0, "OutOfcpu"), "OutOfcpu"),
        (rejected_pod(0, "OutOfmemory"), "OutOfmemory"),
        (rejected_pod(0, "UnexpectedAdmissionError"), "UnexpectedAdmissionError"),
        (rejected_pod(0, "NodeAffinity"), "NodeAffinity"),
        (rejected_pod(0, "TaintToleration"), "TaintToleration"),
        (rejected_pod(0, "TopologyAffinityError"), "TopologyAffinityError"),
        (rejected_pod(0, "SomeNewReason", message="Pod was rejected: a newer kubelet's check"), "SomeNewReason"),
        (rejected_pod(0, "OutOfnvidia.com/gpu", ran=True), None),
        (rejected_pod(0, "OutOf"), None),
        (rejected_pod(0, "Error"), None),
        (make_pod(0, "Failed"), None),
        (make_pod(0, "Running"), None),
    ],
    ids=[
        "out-of-a-device-plugin-resource",
        "out-of-cpu",
        "out-of-memory",
        "unexpected-admission-error",
        "node-affinity",
        "taint-toleration",
        "topology-affinity",
        "an-unknown-reason-with-the-kubelets-rejection-message",
        "a-pod-whose-container-ran-is-not-an-admission-rejection",
        "the-bare-prefix-is-no-resource",
        "an-ordinary-failure-reason",
        "a-container-that-exited",
        "a-running-pod",
    ],
)
def test_admission_rejection_recognises_what_the_kubelet_writes(
    pod: dict[str, Any], rejection_reason: str | None
) -> None:
    rejection = admission_rejection(pod)
    assert (rejection.reason if rejection else None) == rejection_reason
    if rejection is not None:
        assert (rejection.pod, rejection.node) == ("train-a1-w0", "n1")


@pytest.mark.parametrize(
    ("phase", "pods", "in_a_row", "failures", "expected"),
    [
        ("Admitted", {0: rejected_pod(0, "OutOfnvidia.com/gpu"), 1: make_pod(1, "Pending")}, 0, 0, Step.REQUEUE),
        ("Admitted", {0: rejected_pod(0, "UnexpectedAdmissionError"), 1: make_pod(1, "Running")}, 4, 0, Step.REQUEUE),
        ("Admitted", {0: rejected_pod(0, "OutOfcpu"), 1: rejected_pod(1, "OutOfcpu")}, 0, 1, Step.REQUEUE),
        ("Admitted", {0: rejected_pod(0, "OutOfnvidia.com/gpu"), 1: make_pod(1, "Running")}, 5, 0, Step.RETRY),
        ("Admitted", {0: rejected_pod(0, "OutOfnvidia.com/gpu"), 1: make_pod(1, "Running")}, 5, 1, Step.FAIL),
        ("Admitted", {0: rejected_pod(0, "OutOfcpu"), 1: make_pod(1, "Failed")}, 0, 0, Step.RETRY),
        ("Running", {0: rejected_pod(0, "OutOfcpu")}, 0, 0, Step.RETRY),
    ],
    ids=[
        "a-first-rejection-requeues",
        "the-fifth-in-a-row-still-requeues",
        "a-job-at-its-backoff-limit-is-requeued-not-failed",
        "the-sixth-in-a-row-counts-as-a-failure",
        "past-the-limit-at-the-backoff-limit-fails",
        "a-rejection-beside-a-real-failure-is-a-failure",
        "a-rejection-beside-a-vanished-pod-is-a-failure",
    ],
)
def test_a_kubelet_admission_rejection_requeues_within_its_limit(
    phase: str, pods: dict[int, Any], in_a_row: int, failures: int, expected: Step
) -> None:
    step = next_step(
        make_job(phase),
        pods,
        NOW,
        started_at=None,
        max_runtime_seconds=None,
        failures=failures,
        admission_rejections=in_a_row,
    )
    assert step.step == expected
    if expected == Step.REQUEUE:
        assert step.reason == "AdmissionRejected" and step.rejection is not None
    if in_a_row >= ADMISSION_REJECTION_LIMIT:
        assert step.rejection is not None and "rejections in a row" in step.message


def test_a_requeue_message_names_the_node_pod_reason_and_that_it_is_not_a_failure() -> None:
    pods = {0: rejected_pod(0, "OutOfnvidia.com/gpu", node="gpu-7"), 1: make_pod(1, "Pending")}
    step = next_step(make_job(), pods, NOW, started_at=None, max_runtime_seconds=None, failures=0)
    assert step.message.startswith(
        "the kubelet on node gpu-7 refused pod train-a1-w0 at admission (OutOfnvidia.com/gpu): its device plugin "
        "may still be registering; requeued, not counted as a failure"
    )
    assert f"rejection 1 of {ADMISSION_REJECTION_LIMIT} in a row" in step.message


def test_the_hold_doubles_with_each_rejection_in_a_row() -> None:
    assert [admission_hold_seconds(n) for n in range(1, 6)] == [10, 20, 40, 80, 160]
