"""A job's provenance record on the real control plane, with the operator and the simulated
node agent running as processes.

kwok runs the pods and reports no `imageID` in `status.containerStatuses` (our kwok stages
in `devcluster/kwok-stages.yaml`, like kwok's own, have no image to pull), so the record
must show each container's digest as unknown and the declared digest can be neither
confirmed nor refuted: `ProvenanceVerified` is Unknown here. The mismatch (event and False
condition) is tested at unit level (`tests/unit/cluster/test_provenance.py`) for that
reason. Nodes, GPU UUIDs (the agent's deterministic fake ones), prices and exit codes are
checked here, as are the record surviving an operator SIGKILL, `gpupool provenance -o
json`, the log line and the deletion after `ttlSecondsAfterFinished`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import AgentProcess, OperatorProcess, kubectl
from gpupool.agent.simulated import simulated_uuid
from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import parse_uuids
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

DECLARED = "sha256:" + "4b1c" * 16


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


@pytest.fixture
def agent(kubeconfig: str, tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(kubeconfig, tmp_path / "agent.log")
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.stop()


def provenance_cli(kubeconfig: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpupool.cli", "provenance", key, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def test_a_finished_jobs_record_shows_nodes_gpu_uuids_and_exit_codes_and_survives_a_restart(
    world: Scenario, agent: AgentProcess, operator: OperatorProcess
) -> None:
    (node,) = world.nodes(1, gpus=4)
    world.pool(gpus_per_node=4, amortised_price=36.0)  # 9 per GPU-hour
    queue = world.queue("team", nominal=4)
    uuids = wait_for(
        lambda: parse_uuids((world.core_api.read_node(node).metadata.annotations or {}).get(UUIDS_ANNOTATION)),
        30,
        f"the agent's {UUIDS_ANNOTATION} annotation on {node}",
    )
    assert uuids == {i: simulated_uuid(node, i) for i in range(4)}

    provenance = {"imageDigest": DECLARED, "codeRevision": "9f1e2d", "datasetRef": "s3://sets/imagenet@v3"}
    world.job("train", queue, workers=2, gpus=2, duration="3s", provenance=provenance)
    status = world.wait_phase("train", "Succeeded", 60)

    (attempt,) = status["provenance"]["attempts"]
    assert attempt["attempt"] == 1 and attempt["outcome"] == "Succeeded"
    assert attempt["startedAt"] <= attempt["endedAt"] == status["finishedAt"]
    assert (attempt["imageDigest"], attempt["codeRevision"], attempt["datasetRef"]) == (
        DECLARED,
        "9f1e2d",
        "s3://sets/imagenet@v3",
    )
    held = {p["worker"]: p["gpuIndices"] for p in status["placement"]}
    assert sorted(w["worker"] for w in attempt["workers"]) == [0, 1]
    for worker in attempt["workers"]:
        assert worker["node"] == node and worker["pool"] == f"pool-{world.model.lower()}"
        assert worker["gpuModel"] == world.model and worker["pricePerGpuHour"] == 9.0
        assert worker["gpus"] == [{"index": i, "uuid": simulated_uuid(node, i)} for i in held[worker["worker"]]]
        (container,) = worker["containers"]
        assert container["name"] == "main" and container["image"] == "busybox"
        assert container["exitCode"] == 0  # kwok's success stage terminates each container with 0
        # kwok reports no imageID: the record says nothing rather than inventing a digest.
        assert "imageID" not in container and "digest" not in container
    verified = {c["type"]: c for c in status["conditions"]}["ProvenanceVerified"]
    assert (verified["status"], verified["reason"]) == ("Unknown", "DigestNotReported")

    # The record lives in the job's status: a SIGKILLed operator's successor keeps it as it is.
    operator.kill(signal.SIGKILL)
    operator.start()
    job_after = wait_for(lambda: world.get_job("train"), 10, "the job after the restart")
    assert job_after["status"]["provenance"] == status["provenance"]

    result = provenance_cli(world.kubeconfig, f"{world.namespace}/train", "-o", "json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["job"] == f"{world.namespace}/train" and printed["phase"] == "Succeeded"
    assert printed["provenance"] == status["provenance"]
    assert printed["provenanceVerified"]["status"] == "Unknown"
    text = provenance_cli(world.kubeconfig, f"{world.namespace}/train")
    assert text.returncode == 0 and "attempt 1: Succeeded" in text.stdout and simulated_uuid(node, 0) in text.stdout

    # The ended attempt was logged as one JSON line on gpupool.provenance by the operator.
    def logged() -> list[dict[str, Any]]:
        lines = operator.log_path.read_text(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{") and '"gpupool.provenance"' in line]
        return [r["provenance"] for r in records if r["provenance"]["job"] == f"{world.namespace}/train"]

    (line,) = logged()
    assert line["workers"] == attempt["workers"] and line["outcome"] == "Succeeded"

    # ttlSecondsAfterFinished may change after creation; 0 deletes the finished job at once.
    assert job_after["spec"]["ttlSecondsAfterFinished"] == 604800
    kubectl(
        world.kubeconfig,
        "patch",
        "gpujob",
        "train",
        "-n",
        world.namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"ttlSecondsAfterFinished":0}}',
    )
    wait_for(
        lambda: kubectl(world.kubeconfig, "get", "gpujob", "train", "-n", world.namespace, check=False).returncode != 0,
        30,
        "the finished job to be deleted",
    )
    gone = provenance_cli(world.kubeconfig, f"{world.namespace}/train")
    assert gone.returncode == 1 and "gpupool.provenance" in gone.stderr
