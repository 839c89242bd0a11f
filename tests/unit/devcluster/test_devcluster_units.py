"""Pure parts of the dev cluster: kwok stages, node manifests, state records."""

from __future__ import annotations

import os
from importlib import resources

import pytest
import yaml

from gpupool.cluster.nodes.kwok_nodes import GPU_RESOURCE, KWOK_ANNOTATION, GpuNodeSpec, NodeTaint
from gpupool.devcluster.cluster import ClusterState, ProcessRecord, pid_alive
from gpupool.devcluster.versions import COMPONENTS, bin_dir


def load_stages() -> list[dict]:
    text = resources.files("gpupool.devcluster").joinpath("kwok-stages.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_kwok_manages_only_annotated_nodes() -> None:
    config = next(doc for doc in load_stages() if doc["kind"] == "KwokConfiguration")
    assert config["options"]["manageAllNodes"] is False
    assert config["options"]["manageNodesWithAnnotationSelector"] == f"{KWOK_ANNOTATION}=fake"


@pytest.mark.parametrize(
    ("stage", "annotation"),
    [("gpupool-pod-succeed", "gpupool.io/sim-duration"), ("gpupool-pod-fail", "gpupool.io/sim-fail-after")],
    ids=["success-after-duration", "failure-after-duration"],
)
def test_completion_stages_read_the_delay_from_the_annotation_without_jitter(stage: str, annotation: str) -> None:
    spec = next(doc for doc in load_stages() if doc.get("metadata", {}).get("name") == stage)["spec"]
    assert annotation in spec["delay"]["durationFrom"]["expressionFrom"]
    assert "jitterDurationMilliseconds" not in spec["delay"]
    assert "jitterDurationFrom" not in spec["delay"]
    # The stock pod-complete stage only matches Job-owned pods; ours must not filter on owners.
    assert all("ownerReferences" not in e["key"] for e in spec["selector"]["matchExpressions"])


def test_gpu_node_manifest_carries_capacity_labels_taints_and_kwok_annotation() -> None:
    manifest = GpuNodeSpec(
        name="n1",
        gpus=4,
        gpu_model="H100",
        pool="burst",
        node_class="Cloud",
        spot=True,
        taints=(NodeTaint("dedicated", "gpu"),),
    ).manifest()
    assert manifest["status"]["capacity"][GPU_RESOURCE] == "4"
    assert manifest["status"]["allocatable"] == manifest["status"]["capacity"]
    labels = manifest["metadata"]["labels"]
    assert (labels["gpupool.io/gpu-model"], labels["gpupool.io/pool"], labels["gpupool.io/class"]) == (
        "H100",
        "burst",
        "Cloud",
    )
    assert labels["gpupool.io/spot"] == "true"
    assert labels["node.kubernetes.io/instance-type"] == "h100-x4"
    assert manifest["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
    assert manifest["spec"]["taints"] == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]


def test_cluster_state_round_trips_through_json() -> None:
    state = ClusterState(
        kubeconfig="/k",
        apiserver_url="https://127.0.0.1:1",
        ports={"etcd": 2},
        processes=[ProcessRecord("etcd", 10, ["/bin/etcd"], "/l", "http://h")],
    )
    assert ClusterState.from_json(state.to_json()) == state


def test_pid_alive_rejects_a_pid_that_runs_another_program() -> None:
    me = ProcessRecord("self", os.getpid(), ["/definitely/not/python"], "", "")
    assert not pid_alive(me)
    assert not pid_alive(ProcessRecord("gone", 2**22 + 12345, ["/x"], "", ""))


def test_each_component_has_a_versioned_cache_folder() -> None:
    folders = {bin_dir(c).name for c in COMPONENTS}
    assert folders == {f"{c.name}-{c.version}" for c in COMPONENTS}
