"""The API models parse what the API server sends, refuse what the CRD refuses, and write
status the way a merge patch needs it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpupool.api import (
    GPUJob,
    GPUJobSpec,
    GPUJobStatus,
    GPUNodePool,
    GPUNodePoolSpec,
    GPUQueue,
    GPUQueueSpec,
    InvalidObjectError,
    JobPhase,
    LabelSelector,
    PoolClass,
    WorkerPlacementStatus,
    parse_gpujob,
    parse_object,
    status_patch,
    to_manifest,
)

TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}

JOB: dict[str, Any] = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "GPUJob",
    "metadata": {"name": "train", "namespace": "team-a"},
    "spec": {
        "queue": "team-a",
        "priority": 5,
        "workers": 4,
        "gpus": 2,
        "cpu": "8",
        "memory": "64Gi",
        "gpuModels": ["H100"],
        "placement": "CloudAllowed",
        "maxRuntime": "1h30m",
        "preemptible": False,
        "backoffLimit": 1,
        "ttlSecondsAfterFinished": 3600,
        "template": {
            "metadata": {"labels": {"app": "train"}},
            "spec": {
                "containers": [{"name": "main", "image": "busybox"}],
                "tolerations": [{"key": "gpupool.io/spot", "operator": "Exists"}],
            },
        },
        "provenance": {
            "imageDigest": "sha256:abc",
            "codeRevision": "deadbeef",
            "datasetRef": "s3://data@v3",
            "parameters": {"lr": 0.001, "layers": [1, 2]},
        },
    },
}

QUEUE: dict[str, Any] = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "GPUQueue",
    "metadata": {"name": "team-a"},
    "spec": {
        "namespaceSelector": {
            "matchLabels": {"team": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod", "dev"]}],
        },
        "quotas": [
            {"gpuModel": "H100", "nominal": 16, "borrowingLimit": 8, "lendingLimit": 4},
            {"pool": "cloud-a100", "nominal": 0},
        ],
        "cohort": "research",
        "weight": 2,
        "maxPriority": 100,
        "queueingStrategy": "StrictFIFO",
        "preemption": {"reclaimWithinCohort": False, "withinQueue": True, "minRuntime": "10m"},
        "budget": {"amount": 5000, "currency": "EUR", "period": "Weekly", "gpuHours": 400, "scope": "CloudOnly"},
        "allowCloud": True,
        "allowSpot": True,
    },
}

POOL: dict[str, Any] = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "GPUNodePool",
    "metadata": {"name": "onprem-h100"},
    "spec": {
        "class": "OnPrem",
        "gpuModel": "H100",
        "gpusPerNode": 8,
        "cpuPerNode": "96",
        "memoryPerNode": "1Ti",
        "nodeSelector": {"gpupool.io/pool": "onprem-h100"},
        "taints": [{"key": "gpupool.io/gpu", "value": "", "effect": "NoSchedule"}],
        "pricePerNodeHour": {"amortised": 12.5},
        "minNodes": 1,
        "maxNodes": 4,
        "provider": "Static",
        "provisioningDelay": "60s",
        "scaleDownAfter": "10m",
        "maxNodesInFlight": 10,
    },
}

CAPI_POOL: dict[str, Any] = {
    **POOL,
    "metadata": {"name": "capi-h100"},
    "spec": {
        **POOL["spec"],
        "class": "Cloud",
        "provider": "ClusterAPI",
        "clusterAPI": {"namespace": "capi-system", "machineDeployment": "gpu-h100"},
    },
}

CLAIM = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "GPUNodeClaim",
    "metadata": {"name": "cloud-h100-3f9a2c"},
    "spec": {"pool": "cloud-h100", "capacityType": "Spot", "jobs": ["team-a/train"]},
}


@pytest.mark.parametrize(
    "manifest",
    [JOB, QUEUE, POOL, CAPI_POOL, CLAIM],
    ids=["gpujob", "gpuqueue", "gpunodepool", "gpunodepool-clusterapi", "gpunodeclaim"],
)
def test_manifest_round_trips_through_the_model(manifest: dict[str, Any]) -> None:
    parsed = parse_object(manifest)
    assert to_manifest(parsed) == manifest


def test_fields_are_read_by_their_python_names() -> None:
    job = parse_gpujob(JOB)
    assert job.spec.gpu_models == ["H100"]
    assert job.spec.max_runtime == "1h30m"
    assert job.spec.provenance is not None and job.spec.provenance.parameters["lr"] == 0.001
    pool = parse_object(POOL)
    assert isinstance(pool, GPUNodePool)
    assert pool.spec.pool_class is PoolClass.ON_PREM
    capi = parse_object(CAPI_POOL)
    assert isinstance(capi, GPUNodePool) and capi.spec.cluster_api is not None
    assert capi.spec.cluster_api.machine_deployment == "gpu-h100"


def test_defaults_match_the_issue() -> None:
    spec = GPUJobSpec.model_validate({"queue": "q", "template": TEMPLATE})
    assert (spec.workers, spec.gpus, spec.priority, spec.preemptible) == (1, 1.0, 0, True)
    assert spec.placement.value == "OnPremOnly"
    assert spec.ttl_seconds_after_finished == 7 * 24 * 3600
    queue = GPUQueueSpec()
    assert queue.weight == 1.0 and queue.queueing_strategy.value == "BestEffortFIFO"
    assert queue.preemption.reclaim_within_cohort and queue.preemption.within_queue
    pool = GPUNodePoolSpec.model_validate({"class": "Cloud", "gpuModel": "A100", "gpusPerNode": 8})
    assert pool.provider.value == "Static" and pool.min_nodes == 0 and pool.max_nodes is None


def _job_spec(**overrides: Any) -> dict[str, Any]:
    return {"queue": "q", "template": TEMPLATE, **overrides}


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (GPUJobSpec, _job_spec(workers=0), "workers"),
        (GPUJobSpec, _job_spec(workers=-1), "workers"),
        (GPUJobSpec, _job_spec(workers=1025), "workers"),
        (GPUJobSpec, _job_spec(gpus=0), "gpus"),
        (GPUJobSpec, _job_spec(gpus=-1), "gpus"),
        (GPUJobSpec, _job_spec(gpus=17), "gpus"),
        (GPUJobSpec, _job_spec(gpus=1.5), "spec.gpus"),
        (GPUJobSpec, _job_spec(gpus=0.0001), "spec.gpus"),
        (GPUJobSpec, _job_spec(gpus=0.5, workers=2), "spec.workers"),
        (GPUJobSpec, _job_spec(placement="Anywhere"), "placement"),
        (GPUJobSpec, _job_spec(maxRuntime="2 hours"), "maxRuntime"),
        (GPUJobSpec, _job_spec(maxRuntime=""), "maxRuntime"),
        (GPUJobSpec, _job_spec(cpu="-1"), "cpu"),
        (GPUJobSpec, _job_spec(memory="lots"), "memory"),
        (GPUJobSpec, _job_spec(foo="bar"), "foo"),
        (GPUJobSpec, {"template": TEMPLATE}, "queue"),
        (GPUJobSpec, _job_spec(ttlSecondsAfterFinished=-1), "ttlSecondsAfterFinished"),
        (GPUJobSpec, _job_spec(ttlSecondsAfterFinished=2**31), "ttlSecondsAfterFinished"),
        (GPUNodePoolSpec, {**POOL["spec"], "minNodes": 5, "maxNodes": 2}, "spec.minNodes"),
        (GPUNodePoolSpec, {**POOL["spec"], "pricePerNodeHour": {"onDemand": -1}}, "onDemand"),
        (GPUNodePoolSpec, {**POOL["spec"], "class": "Hybrid"}, "class"),
        (GPUNodePoolSpec, {**POOL["spec"], "provider": "ClusterAPI"}, "spec.clusterAPI must be set"),
        (GPUNodePoolSpec, {**CAPI_POOL["spec"], "provider": "Kwok"}, "remove spec.clusterAPI"),
        (GPUNodePoolSpec, {**CAPI_POOL["spec"], "clusterAPI": {"namespace": "capi-system"}}, "machineDeployment"),
        (GPUQueueSpec, {"quotas": [{"gpuModel": "H100", "nominal": -1}]}, "nominal"),
        (GPUQueueSpec, {"quotas": [{"nominal": 1}]}, "gpuModel or pool"),
        (GPUQueueSpec, {"quotas": [{"gpuModel": "H100", "pool": "p", "nominal": 1}]}, "gpuModel or pool"),
        (GPUQueueSpec, {"quotas": [{"gpuModel": "H100", "nominal": 1, "lendingLimit": 2}]}, "lendingLimit"),
        (GPUQueueSpec, {"weight": 0}, "weight"),
        (GPUQueueSpec, {"budget": {"amount": -1}}, "amount"),
    ],
    ids=[
        "zero-workers",
        "negative-workers",
        "workers-over-cap",
        "zero-gpus",
        "negative-gpus",
        "gpus-over-cap",
        "fraction-above-one",
        "fraction-below-milli",
        "fraction-with-gang",
        "unknown-placement",
        "malformed-max-runtime",
        "empty-max-runtime",
        "negative-cpu",
        "malformed-memory",
        "unknown-field",
        "missing-queue",
        "negative-ttl",
        "ttl-over-int32",
        "pool-min-above-max",
        "pool-negative-price",
        "pool-unknown-class",
        "pool-clusterapi-without-deployment",
        "pool-kwok-with-clusterapi",
        "pool-clusterapi-missing-name",
        "queue-negative-quota",
        "queue-quota-no-flavor",
        "queue-quota-two-flavors",
        "queue-lending-above-nominal",
        "queue-zero-weight",
        "queue-negative-budget",
    ],
)
def test_python_models_refuse_what_the_crd_refuses(model: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    assert field in str(err.value)


@pytest.mark.parametrize("gpus", [1, 2, 16, 0.5, 0.25, 0.001], ids=lambda g: f"gpus={g}")
def test_valid_gpu_counts_parse(gpus: float) -> None:
    assert GPUJobSpec.model_validate(_job_spec(gpus=gpus)).gpus == gpus


def _template(env: list[dict[str, str]] | None = None, **container: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "main", "image": "img", **({"env": env} if env else {}), **container}]}}


# (what, the pod template, the field the refusal names)
DEVICE_SELECTION_TABLE = [
    (
        "a container's NVIDIA_VISIBLE_DEVICES",
        _template([{"name": "A", "value": "1"}, {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]),
        "spec.template.spec.containers[0].env[1] (NVIDIA_VISIBLE_DEVICES)",
    ),
    (
        "any NVIDIA_ variable",
        _template([{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"}]),
        "containers[0].env[0] (NVIDIA_DRIVER_CAPABILITIES)",
    ),
    (
        "an init container's variable",
        {"spec": {"initContainers": [{"name": "i", "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "0"}]}]}},
        "spec.template.spec.initContainers[0].env[0]",
    ),
    (
        "a CDI device annotation",
        {"metadata": {"annotations": {"cdi.k8s.io/gpu": "nvidia.com/gpu=all"}}, "spec": {}},
        "spec.template.metadata.annotations[cdi.k8s.io/gpu]",
    ),
    (
        "a GPU resource of a sidecar",
        {"spec": {"containers": [{"name": "m"}, {"name": "s", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}},
        "spec.template.spec.containers[1].resources.limits[nvidia.com/gpu]",
    ),
    (
        "a MIG resource",
        _template(resources={"requests": {"nvidia.com/mig-1g.10gb": "1"}}),
        "resources.requests[nvidia.com/mig-1g.10gb]",
    ),
]


@pytest.mark.parametrize(
    ("template", "field"), [r[1:] for r in DEVICE_SELECTION_TABLE], ids=[r[0] for r in DEVICE_SELECTION_TABLE]
)
def test_a_template_that_selects_gpus_itself_is_refused_naming_the_field(template: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidObjectError) as err:
        parse_gpujob({**JOB, "spec": {**JOB["spec"], "template": template}})
    assert field in str(err.value) and "set spec.gpus" in str(err.value)


def test_a_template_with_ordinary_variables_and_resources_parses() -> None:
    template = _template([{"name": "NCCL_DEBUG", "value": "INFO"}], resources={"limits": {"cpu": "2"}})
    assert parse_gpujob({**JOB, "spec": {**JOB["spec"], "template": template}}).spec.template.spec


def test_invalid_object_error_names_object_field_and_remedy() -> None:
    bad = {**JOB, "spec": {**JOB["spec"], "workers": 0}}
    with pytest.raises(InvalidObjectError) as err:
        parse_gpujob(bad)
    message = str(err.value)
    assert "GPUJob team-a/train" in message
    assert "spec.workers" in message
    assert "kubectl apply -f crds/" in message


def test_parse_object_refuses_foreign_kinds() -> None:
    with pytest.raises(InvalidObjectError, match="not a gpupool kind"):
        parse_object({"kind": "Pod", "metadata": {"name": "x"}})


def test_status_from_the_server_ignores_fields_it_does_not_know() -> None:
    job = parse_gpujob({**JOB, "status": {"phase": "Running", "addedInV2": True}})
    assert job.status.phase is JobPhase.RUNNING


def test_status_patch_uses_camel_case_and_clears_unset_top_level_fields() -> None:
    status = GPUJobStatus(
        phase=JobPhase.RUNNING,
        placement=[WorkerPlacementStatus(worker=0, pod="p-0", node="n1", gpu_indices=[0, 1])],
        gpu_seconds=12.5,
    )
    body = status_patch(status)["status"]
    assert body["phase"] == "Running"
    assert body["gpuSeconds"] == 12.5
    assert body["placement"] == [
        {
            "worker": 0,
            "pod": "p-0",
            "node": "n1",
            "pool": "",
            "gpuModel": "",
            "gpuIndices": [0, 1],
            "gpuShare": 1.0,
            "gpuUUIDs": [],
            "devices": "Planned",
        }
    ]
    assert body["message"] is None  # a merge patch deletes the old message
    assert body["finishedAt"] is None


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "a", "x": "y"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "b"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}]},
            {"tier": "prod"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]},
            {"tier": "prod"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": ""}, False),
    ],
    ids=[
        "empty-matches-all",
        "match-labels",
        "match-labels-mismatch",
        "in",
        "in-missing",
        "notin-missing",
        "notin-present",
        "exists",
        "does-not-exist",
    ],
)
def test_label_selector_matches(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is expected


def test_whole_objects_default_their_status() -> None:
    assert GPUQueue.model_validate({"metadata": {"name": "q"}}).status.pending_jobs == 0
    job = GPUJob.model_validate(JOB)
    assert job.status.phase is None and job.status.attempts == 0


@pytest.mark.parametrize(
    ("selector", "labels", "admitted"),
    [
        (None, {}, True),
        ({}, {"team": "b"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "a"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "b"}, False),
    ],
    ids=["omitted-admits-all", "empty-admits-all", "matching", "not-matching"],
)
def test_queue_admits_namespaces_by_selector(
    selector: dict[str, Any] | None, labels: dict[str, str], admitted: bool
) -> None:
    spec = GPUQueueSpec.model_validate({} if selector is None else {"namespaceSelector": selector})
    assert spec.admits_namespace(labels) is admitted
