"""The ClusterAPI node provider on the real API server, with Cluster API's own CRDs.

The MachineDeployment and Machine CRDs are Cluster API v1.14.2's, unchanged
(`tests/fixtures/clusterapi/`, see its README), so the provider's scale-subresource calls,
annotations and labels meet the real schemas. Cluster API's controllers are not run: the
test stands in for them (`CapiStandIn`). Like the MachineSet controller, it creates Machines
when replicas go up and deletes them when replicas go down, taking those marked with
`cluster.x-k8s.io/delete-machine` first. Like the Machine controller, it creates the Node
(a kwok node) and sets the Machine's `status.nodeRef`. Each test makes its own
MachineDeployment in its own namespace. The provider tests call the provider directly; the
last test runs the operator, and the stand-in runs in a thread as the controllers would.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from gpupool.api import GPUNodePool
from gpupool.cluster.nodes.clusterapi_provider import (
    DELETE_MACHINE_ANNOTATION,
    DEPLOYMENT_LABEL,
    GROUP,
    LEDGER_ANNOTATION,
    VERSION,
    ClusterAPIProvider,
)
from gpupool.cluster.nodes.kwok_nodes import LABEL_CLAIM, LABEL_POOL, pool_node_spec
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.cluster.nodes.providers import NodeLaunch, ProviderError, ProviderTransient
from gpupool.devcluster.tools import install_crds
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

CRDS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "clusterapi").glob("*.yaml"))


@pytest.fixture(scope="module")
def capi_crds(kubeconfig: str) -> str:
    install_crds(Path(kubeconfig), CRDS)
    return kubeconfig


@pytest.fixture
def custom_api(api_client: Any, capi_crds: str) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


def machine_template(cluster: str) -> dict[str, Any]:
    return {
        "clusterName": cluster,
        "bootstrap": {"dataSecretName": "bootstrap-data"},
        "infrastructureRef": {
            "apiGroup": "infrastructure.cluster.x-k8s.io",
            "kind": "DockerMachineTemplate",
            "name": "gpu",
        },
    }


class CapiStandIn:
    """One MachineDeployment and what Cluster API's controllers would do for it (see the module docstring)."""

    def __init__(self, custom_api: Any, core_api: Any, namespace: str, pool_name: str, gpu_model: str) -> None:
        self.custom = custom_api
        self.core = core_api
        self.namespace = namespace
        self.name = "gpu-machines"
        self.pool_name = pool_name
        self.gpu_model = gpu_model
        self.nodes: list[str] = []
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "machinedeployments",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MachineDeployment",
                "metadata": {"name": self.name},
                "spec": {
                    "clusterName": "gpu-cluster",
                    "replicas": 0,
                    "selector": {"matchLabels": {DEPLOYMENT_LABEL: self.name}},
                    "template": {
                        "metadata": {"labels": {DEPLOYMENT_LABEL: self.name}},
                        "spec": machine_template("gpu-cluster"),
                    },
                },
            },
        )

    def pool(self, machine_deployment: str | None = None) -> GPUNodePool:
        return GPUNodePool.model_validate(
            {
                "metadata": {"name": self.pool_name},
                "spec": {
                    "class": "Cloud",
                    "gpuModel": self.gpu_model,
                    "gpusPerNode": 8,
                    "nodeSelector": {LABEL_POOL: self.pool_name},
                    "provider": "ClusterAPI",
                    "clusterAPI": {"namespace": self.namespace, "machineDeployment": machine_deployment or self.name},
                },
            }
        )

    def deployment(self) -> dict[str, Any]:
        md: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "machinedeployments", self.name
        )
        return md

    def replicas(self) -> int:
        return int(self.deployment()["spec"].get("replicas") or 0)

    def ledger(self) -> dict[str, str]:
        raw = (self.deployment()["metadata"].get("annotations") or {}).get(LEDGER_ANNOTATION, "{}")
        ledger: dict[str, str] = json.loads(raw)
        return ledger

    def machines(self) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "machines", label_selector=f"{DEPLOYMENT_LABEL}={self.name}"
        )
        return sorted(listed["items"], key=lambda m: m["metadata"]["name"])

    def machine_set_sync(self) -> None:
        """The MachineSet controller's step: as many Machines as replicas, marked ones deleted first."""
        machines = self.machines()
        want = self.replicas()
        for _ in range(want - len(machines)):
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "machines",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Machine",
                    "metadata": {
                        "name": f"{self.name}-{uuid.uuid4().hex[:5]}",
                        "labels": {DEPLOYMENT_LABEL: self.name},
                    },
                    "spec": machine_template("gpu-cluster"),
                },
            )
        marked = sorted(
            machines, key=lambda m: DELETE_MACHINE_ANNOTATION not in (m["metadata"].get("annotations") or {})
        )
        for machine in marked[: max(len(machines) - want, 0)]:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "machines", machine["metadata"]["name"]
            )
            node = ((machine.get("status") or {}).get("nodeRef") or {}).get("name")
            if node:  # the Machine controller deletes a deleted Machine's Node
                self.core.delete_node(node, grace_period_seconds=0)
                self.nodes.remove(node)

    def run(self, stop: threading.Event, errors: list[BaseException]) -> None:
        """Both controllers, every 0.3s until `stop`: the operator's end-to-end counterpart."""
        while not stop.wait(0.3):
            try:
                self.machine_set_sync()
                for machine in self.machines():
                    if not (machine.get("status") or {}).get("nodeRef"):
                        self.register(machine)
            except Exception as error:
                errors.append(error)
                return

    def register(self, machine: dict[str, Any]) -> str:
        """The Machine controller's step: the Node comes up and the Machine points at it."""
        node = f"{machine['metadata']['name']}-node"
        spec = dataclasses.replace(pool_node_spec(self.pool(), node, spot=False), extra_labels={})
        create_gpu_node(self.core, spec)
        self.nodes.append(node)
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            "machines",
            machine["metadata"]["name"],
            {"status": {"nodeRef": {"name": node}}},
            _content_type="application/merge-patch+json",
        )
        return node

    def cleanup(self) -> None:
        for node in self.nodes:
            self.core.delete_node(node, grace_period_seconds=0, _request_timeout=10)


@pytest.fixture
def capi(custom_api: Any, core_api: Any, namespace: str) -> Iterator[CapiStandIn]:
    stand_in = CapiStandIn(custom_api, core_api, namespace, f"capi-{namespace}"[:63], f"H100-{namespace[-5:]}")
    try:
        yield stand_in
    finally:
        stand_in.cleanup()


def launch(pool: GPUNodePool, claim: str, requested_at: float | None = None) -> NodeLaunch:
    return NodeLaunch(claim, pool, False, time.time() if requested_at is None else requested_at)


def claim_of(machine: dict[str, Any]) -> str | None:
    label: str | None = (machine["metadata"].get("labels") or {}).get(LABEL_CLAIM)
    return label


def test_create_raises_replicas_by_exactly_one_per_claim_even_when_retried(capi: CapiStandIn, custom_api: Any) -> None:
    provider = ClusterAPIProvider(custom_api)
    pool = capi.pool()
    first = launch(pool, "claim-a")

    assert provider.create(first, time.time()) == f"clusterapi://{capi.namespace}/{capi.name}/claim-a"
    assert provider.create(first, time.time()) is not None  # a retry, as after a lost answer
    assert capi.replicas() == 1
    provider.create(launch(pool, "claim-b"), time.time())
    provider.create(first, time.time())
    assert capi.replicas() == 2
    assert set(capi.ledger()) == {"claim-a", "claim-b"}


def test_a_claim_recorded_before_a_crash_is_scaled_once_on_retry(capi: CapiStandIn, custom_api: Any) -> None:
    """The ledger write went through, the scale did not (the operator died in between): the
    annotation write left the generation where the ledger says, so the retry scales once."""
    md = capi.deployment()
    generation = md["metadata"]["generation"]
    patch = {"metadata": {"annotations": {LEDGER_ANNOTATION: json.dumps({"claim-a": f"up@{generation}"})}}}
    after = custom_api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        capi.namespace,
        "machinedeployments",
        capi.name,
        patch,
        _content_type="application/merge-patch+json",
    )
    assert after["metadata"]["generation"] == generation

    provider = ClusterAPIProvider(custom_api)
    provider.create(launch(capi.pool(), "claim-a"), time.time())
    provider.create(launch(capi.pool(), "claim-a"), time.time())
    assert capi.replicas() == 1
    assert capi.deployment()["metadata"]["generation"] > generation


def test_node_name_adopts_a_new_machine_and_returns_its_node_once_registered(
    capi: CapiStandIn, custom_api: Any
) -> None:
    provider = ClusterAPIProvider(custom_api)
    pool = capi.pool()
    provider.create(launch(pool, "old"), time.time())
    capi.machine_set_sync()
    old_machine = capi.machines()[0]
    time.sleep(1.1)  # creationTimestamp has whole seconds: the next claim comes strictly later
    claim = launch(pool, "claim-a")

    assert provider.node_name(claim) is None  # no Machine of its own yet: the older one is not taken
    assert claim_of(capi.machines()[0]) is None
    provider.create(claim, time.time())
    capi.machine_set_sync()
    new_machine = next(m for m in capi.machines() if m["metadata"]["name"] != old_machine["metadata"]["name"])

    assert provider.node_name(claim) is None  # adopted, but its node has not registered
    adopted = {m["metadata"]["name"]: claim_of(m) for m in capi.machines()}
    assert adopted == {old_machine["metadata"]["name"]: None, new_machine["metadata"]["name"]: "claim-a"}
    node = capi.register(new_machine)
    assert provider.node_name(claim) == node
    assert provider.node_name(claim) == node
    assert provider.list(pool.metadata["name"]) == [node]


def test_delete_marks_the_nodes_machine_and_lowers_replicas_once(capi: CapiStandIn, custom_api: Any) -> None:
    provider = ClusterAPIProvider(custom_api)
    pool = capi.pool()
    claims = [launch(pool, name) for name in ("claim-a", "claim-b")]
    for claim in claims:
        provider.create(claim, time.time())
    capi.machine_set_sync()
    nodes = {}
    for claim in claims:
        provider.node_name(claim)
    for machine in capi.machines():
        nodes[claim_of(machine)] = capi.register(machine)
    assert sorted(provider.node_name(c) or "" for c in claims) == sorted(nodes.values())
    assert capi.replicas() == 2

    provider.delete(nodes["claim-a"])
    provider.delete(nodes["claim-a"])  # the claim reconciler calls again until the node is gone
    assert capi.replicas() == 1
    marked = {
        claim_of(m): DELETE_MACHINE_ANNOTATION in (m["metadata"].get("annotations") or {}) for m in capi.machines()
    }
    assert marked == {"claim-a": True, "claim-b": False}
    assert capi.ledger()["claim-a"].startswith("down@")

    capi.machine_set_sync()
    assert [claim_of(m) for m in capi.machines()] == ["claim-b"]
    provider.delete(nodes["claim-a"])  # the Machine is gone: released, nothing changes
    assert capi.replicas() == 1
    assert provider.list(pool.metadata["name"]) == [nodes["claim-b"]]
    provider.create(launch(pool, "claim-c"), time.time())  # the next ledger write drops the finished step
    assert set(capi.ledger()) == {"claim-b", "claim-c"} and capi.replicas() == 2


def test_a_missing_machine_deployment_is_an_error_naming_the_pool_and_field(capi: CapiStandIn, custom_api: Any) -> None:
    provider = ClusterAPIProvider(custom_api)
    pool = capi.pool(machine_deployment="no-such-md")
    with pytest.raises(ProviderError) as error:
        provider.create(launch(pool, "claim-a"), time.time())
    assert not isinstance(error.value, ProviderTransient)
    message = str(error.value)
    assert f"GPUNodePool {capi.pool_name}" in message
    assert "spec.clusterAPI" in message and "no-such-md" in message


def test_a_gang_bursts_into_a_cluster_api_pool_runs_and_the_machines_go_when_idle(
    custom_api: Any, core_api: Any, kubeconfig: str, namespace: str, operator: OperatorProcess
) -> None:
    """The whole loop with the operator running and the test as Cluster API's controllers."""
    world = Scenario(kubeconfig, core_api, namespace)
    world.nodes(1, gpus=8)
    world.pool()
    queue = world.queue("team", nominal=64, allowCloud=True)
    world.job("hog", queue, gpus=8, duration="10m")
    world.wait_phase("hog", "Running", 30)
    pool = f"cloud-{world.model.lower()}-capi"
    capi = CapiStandIn(custom_api, core_api, namespace, pool, world.model)
    world.cloud_pool(
        "capi",
        provider="ClusterAPI",
        clusterAPI={"namespace": namespace, "machineDeployment": capi.name},
        scale_down_after="6s",
    )
    stop, errors = threading.Event(), []
    controllers = threading.Thread(target=capi.run, args=(stop, errors), daemon=True)
    controllers.start()
    try:
        world.job("burst", queue, workers=2, gpus=8, duration="4s", placement="CloudAllowed")
        running = world.wait_phase("burst", "Running", 90)
        machines = capi.machines()
        assert capi.replicas() == 2 and len(machines) == 2
        nodes = sorted(m["status"]["nodeRef"]["name"] for m in machines)
        assert sorted({p["node"] for p in running["placement"]}) == nodes
        claims = {c["metadata"]["name"]: c for c in world.claims(pool)}
        assert {claim_of(m) for m in machines} == set(claims)
        assert sorted(c["status"]["nodeName"] for c in claims.values()) == nodes
        world.wait_phase("burst", "Succeeded", 60)

        wait_for(lambda: world.claims(pool) == [] and capi.machines() == [], 90, "the idle machines to go")
        assert capi.replicas() == 0 and not errors
    finally:
        stop.set()
        controllers.join(timeout=5)
        capi.cleanup()
        kubectl(kubeconfig, "delete", "gpunodepool", pool, "--ignore-not-found")
    assert not errors, errors
