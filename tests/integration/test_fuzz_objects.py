"""Bad input, fuzzed and by hand, on the real API server with the operator running.

Hypothesis mutates one field of otherwise valid GPUJobs, GPUQueues and GPUNodePools
(`fuzz_objects.py`). Each object is either refused, with a message naming the mutated field,
or accepted and then handled: the operator logs no error or traceback, and an accepted
GPUJob gets a status that says why it waits. test_bad_input.py has the hand-written table of
refusals and the edits refused after creation; this file does not repeat them. An unknown
queue is covered by test_job_lifecycle.py.

Then by hand: a pool that selects no node, nodes with odd labels, a running gang's spec
edited, and a namespace deleted under running jobs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster_tools import OperatorProcess, kubectl
from fuzz_objects import Fuzzed, fuzzed_objects, operator_errors
from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

GROUP, VERSION = "gpupool.io", "v1alpha1"
PLURALS = {"GPUJob": "gpujobs", "GPUQueue": "gpuqueues", "GPUNodePool": "gpunodepools"}
EXAMPLES = 40  # per kind: about 15 s each on a 2-core machine


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


@pytest.fixture
def log_offset(operator: OperatorProcess) -> int:
    """Where the operator's log stands when the test begins."""
    return operator.log_path.stat().st_size


def names_field(message: str, field: str) -> bool:
    """The message names the field: its whole path, or (for a rule on the enclosing object,
    e.g. 'exactly one of gpuModel or pool') the parent's path and the field's own name."""
    if field in message:
        return True
    parent, _, leaf = field.rpartition(".")
    return parent in message and leaf.split("[")[0] in message


@pytest.fixture
def cluster_scoped(api_client: Any) -> Iterator[list[tuple[str, str]]]:
    """(plural, name) of every cluster-scoped object a test created, deleted after it."""
    from kubernetes import client

    created: list[tuple[str, str]] = []
    yield created
    custom = client.CustomObjectsApi(api_client)
    for plural, name in created:
        with contextlib.suppress(client.ApiException):
            custom.delete_cluster_custom_object(GROUP, VERSION, plural, name)


@pytest.mark.parametrize("kind", ["GPUJob", "GPUQueue", "GPUNodePool"])
def test_fuzzed_objects_are_refused_naming_the_field_or_handled_without_an_error(
    kind: str,
    world: Scenario,
    api_client: Any,
    operator: OperatorProcess,
    log_offset: int,
    cluster_scoped: list[tuple[str, str]],
) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client)
    queue = world.queue("fuzz", nominal=8)  # the jobs' queue: its model has no node, so they wait
    prefix = f"fz{uuid.uuid4().hex[:5]}"
    counter = itertools.count()
    accepted: list[Fuzzed] = []
    refused: list[Fuzzed] = []

    def send(fuzzed: Fuzzed) -> None:
        plural = PLURALS[fuzzed.kind]
        try:
            if fuzzed.kind == "GPUJob":
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, world.namespace, plural, fuzzed.body, field_validation="Strict"
                )
            else:
                cluster_scoped.append((plural, fuzzed.body["metadata"]["name"]))
                custom.create_cluster_custom_object(GROUP, VERSION, plural, fuzzed.body, field_validation="Strict")
        except client.ApiException as error:
            assert error.status in (400, 422), f"{fuzzed}: {error.status} {error.body}"
            message = json.loads(error.body)["message"]
            assert names_field(message, fuzzed.field), f"{fuzzed}: the refusal does not name it:\n{message}"
            refused.append(fuzzed)
            return
        accepted.append(fuzzed)

    @settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        name = f"{prefix}-{next(counter)}"
        send(data.draw(fuzzed_objects(kind, name, world.namespace, world.model, queue)))

    fuzz()

    print(f"{kind}: {len(refused)} refused, {len(accepted)} accepted: " + "; ".join(map(str, accepted)))
    assert refused, "no mutation was refused: the strategies mutate nothing that matters"
    assert accepted, "every mutation was refused: nothing reached the operator"
    if kind == "GPUJob":
        names = [f.body["metadata"]["name"] for f in accepted]
        wait_for(lambda: all(world.status(n).get("message") for n in names), 60, "every accepted job to say why")
    else:  # a few cycles with the accepted queues and pools in the cache
        wait_for(lambda: operator.readyz()[0] == 200, 10, "the operator to be ready")
        world.job("probe", queue)
        wait_for(lambda: world.status("probe").get("message"), 30, "a job to be handled after them")
    assert operator.proc is not None and operator.proc.poll() is None, "the operator exited"
    assert operator_errors(operator.log_path, log_offset) == []


def test_a_pool_that_selects_no_node_leaves_its_jobs_waiting_with_a_reason(
    world: Scenario, operator: OperatorProcess, log_offset: int, cluster_scoped: list[tuple[str, str]]
) -> None:
    pool = f"empty-{world.model.lower()}"
    spec = {"class": "OnPrem", "gpuModel": world.model, "gpusPerNode": 8, "nodeSelector": {"gpupool.io/pool": pool}}
    world.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "GPUNodePool", "metadata": {"name": pool}, "spec": spec})
    cluster_scoped.append(("gpunodepools", pool))
    queue = world.queue("team", nominal=0, quotas=[{"pool": pool, "nominal": 8}])
    world.job("stranded", queue, gpus=2)

    status = wait_for(lambda: (s := world.status("stranded")).get("message") and s, 30, "a reason")
    assert status["phase"] == "Queued" and world.pods("stranded") == []
    pool_status = json.loads(kubectl(world.kubeconfig, "get", "gnp", pool, "-o", "json").stdout).get("status") or {}
    assert not pool_status.get("readyNodes")
    assert operator_errors(operator.log_path, log_offset) == []


def odd_node(world: Scenario, suffix: str, labels: dict[str, str | None], gpus: int = 8) -> str:
    """A kwok GPU node of the scenario, its labels overridden (None removes one)."""
    spec = GpuNodeSpec(name=f"{world.model.lower()}-{suffix}", gpus=gpus, gpu_model=world.model, pool="odd")
    body = spec.manifest()
    for key, value in labels.items():
        if value is None:
            body["metadata"]["labels"].pop(key, None)
        else:
            body["metadata"]["labels"][key] = value
    world.core_api.create_node(body)
    return spec.name


ODD_LABELS: list[tuple[str, dict[str, str | None], int]] = [
    ("no-model", {"gpupool.io/gpu-model": None}, 8),
    ("other-model", {"gpupool.io/gpu-model": "Z" * 63}, 8),
    ("unknown-pool", {"gpupool.io/pool": "no-such-pool"}, 8),
    ("unknown-class", {"gpupool.io/class": "Hybrid"}, 8),
    ("odd-spot", {"gpupool.io/spot": "maybe"}, 8),
    ("no-gpus", {}, 0),
]


def test_nodes_with_odd_labels_do_not_stop_jobs_on_good_nodes(
    world: Scenario, operator: OperatorProcess, log_offset: int
) -> None:
    odd = [odd_node(world, suffix, labels, gpus) for suffix, labels, gpus in ODD_LABELS]
    (good,) = world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("fine", queue, gpus=8, duration="2s")

    done = world.wait_phase("fine", "Succeeded", 60)
    assert {p["node"] for p in done["placement"]} == {good}
    assert operator_errors(operator.log_path, log_offset) == []
    for name in odd:
        world.core_api.delete_node(name)


def test_editing_a_running_gangs_mutable_fields_keeps_one_pod_per_worker(
    world: Scenario, operator: OperatorProcess, log_offset: int
) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("gang", queue, workers=2, gpus=2, duration="6s")
    world.wait_phase("gang", "Running", 30)
    edit = {"priority": 50, "preemptible": False, "backoffLimit": 0, "provenance": {"codeRevision": "c0ffee"}}
    kubectl(
        world.kubeconfig,
        "patch",
        "gj",
        "gang",
        "-n",
        world.namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": edit}),
    )

    final = world.wait_phase("gang", "Succeeded", 40)
    assert final["attempts"] == 1
    assert sorted(p["metadata"]["name"] for p in world.pods("gang")) == ["gang-a1-w0", "gang-a1-w1"]
    assert operator_errors(operator.log_path, log_offset) == []


def test_deleting_a_namespace_under_running_jobs_frees_their_gpus(
    world: Scenario, core_api: Any, operator: OperatorProcess, log_offset: int
) -> None:
    world.nodes(1, gpus=8)
    doomed = f"{world.namespace[:40]}-gone"
    core_api.create_namespace({"metadata": {"name": doomed}})
    wait_for(lambda: core_api.list_namespaced_service_account(doomed).items, 30, "the default service account")
    queue = world.queue("team", nominal=8)
    other = Scenario(world.kubeconfig, core_api, doomed, model=world.model)
    for name in ("left", "right"):
        other.job(name, queue, gpus=4, duration="10m")
    for name in ("left", "right"):
        other.wait_phase(name, "Running", 30)
    world.job("after", queue, gpus=8, duration="2s")
    wait_for(lambda: world.status("after").get("message"), 20, "the job to wait for the GPUs")

    core_api.delete_namespace(doomed)

    world.wait_phase("after", "Succeeded", 120)
    assert operator_errors(operator.log_path, log_offset) == []
