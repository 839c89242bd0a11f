"""Worker pod manifests: deterministic names, binding, GPU requests and shares, owner."""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import gpujob
from gpupool.api import GPUJob, WorkerPlacementStatus
from gpupool.cluster.writes.pods import GPU_RESOURCE, pod_name, worker_pod
from gpupool.core.models import Taint


def make_job(gpus: float, workers: int = 1, template_spec: dict[str, Any] | None = None) -> GPUJob:
    return gpujob(
        gpus=gpus,
        workers=workers,
        uid="uid-1",
        cpu="4",
        memory="8Gi",
        template_metadata={"annotations": {"gpupool.io/sim-duration": "5s"}, "labels": {"app": "x"}},
        template_spec=template_spec or {"containers": [{"name": "main", "image": "img"}]},
    )


def placement(worker: int, indices: list[int], share: float = 1.0) -> WorkerPlacementStatus:
    return WorkerPlacementStatus(
        worker=worker,
        pod=pod_name("train", 2, worker),
        node="n1",
        pool="p",
        gpu_model="A100",
        gpu_indices=indices,
        gpu_share=share,
    )


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_pod_names_are_deterministic_per_attempt_and_worker() -> None:
    assert pod_name("train", 2, 3) == "train-a2-w3"


def test_whole_gpu_worker_requests_gpus_and_is_bound_to_its_node() -> None:
    pod = worker_pod(make_job(2, workers=2), placement(1, [4, 5]), attempt=2, pool_taints=(Taint("dedicated", "gpu"),))
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"][GPU_RESOURCE] == "2"
    assert container["resources"]["requests"] == {GPU_RESOURCE: "2", "cpu": "4", "memory": "8Gi"}
    assert pod["spec"]["nodeName"] == "n1" and pod["spec"]["schedulerName"] == "gpupool"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(pod)  # the device plugin sets it
    assert pod["metadata"]["annotations"]["gpupool.io/gpu-indices"] == "4,5"
    assert env_of(pod)["GPUPOOL_WORKER_INDEX"] == "1"
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("GPUJob", "uid-1", True)
    assert pod["metadata"]["labels"] == {
        "app": "x",
        "gpupool.io/job": "train",
        "gpupool.io/attempt": "2",
        "gpupool.io/worker": "1",
    }
    assert pod["metadata"]["annotations"]["gpupool.io/sim-duration"] == "5s"


def test_fractional_worker_requests_no_device_and_sees_its_gpu_index_and_share() -> None:
    pod = worker_pod(make_job(0.5), placement(0, [3], share=0.5), attempt=1)
    container = pod["spec"]["containers"][0]
    assert GPU_RESOURCE not in container["resources"]["requests"]
    assert GPU_RESOURCE not in container["resources"]["limits"]
    assert env_of(pod)["NVIDIA_VISIBLE_DEVICES"] == "3"
    assert env_of(pod)["GPUPOOL_GPU_SHARE"] == "0.5"
    assert pod["metadata"]["annotations"]["gpupool.io/gpu-share"] == "0.5"


def test_user_environment_is_not_overwritten() -> None:
    env = [{"name": "GPUPOOL_JOB", "value": "mine"}]
    template_spec = {"containers": [{"name": "main", "image": "img", "env": env}]}
    pod = worker_pod(make_job(1, template_spec=template_spec), placement(0, [0]), attempt=1)
    values = [e["value"] for e in pod["spec"]["containers"][0]["env"] if e["name"] == "GPUPOOL_JOB"]
    assert values == ["mine"]


SIDECAR = {"containers": [{"name": "main", "image": "img"}, {"name": "sidecar", "image": "img"}]}


@pytest.mark.parametrize(
    ("gpus", "indices", "share", "on_cpu", "main", "sidecar"),
    [
        (2, [4, 5], 1.0, False, None, "void"),
        (0.5, [3], 0.5, False, "3", "void"),
        (1, [], 1.0, True, "void", "void"),
    ],
    ids=["whole-gpus-left-to-the-device-plugin", "share-told-its-gpu", "cpu-run-sees-none"],
)
def test_visible_devices_per_container(
    gpus: float, indices: list[int], share: float, on_cpu: bool, main: str | None, sidecar: str
) -> None:
    pod = worker_pod(
        make_job(gpus, template_spec=SIDECAR), placement(0, indices, share=share), attempt=1, on_cpu=on_cpu
    )
    seen = [
        {e["name"]: e["value"] for e in container["env"]}.get("NVIDIA_VISIBLE_DEVICES")
        for container in pod["spec"]["containers"]
    ]
    assert seen == [main, sidecar]
