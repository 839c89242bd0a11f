"""Every invalid gpupool manifest is refused by the real API server at `kubectl apply`, with a
message that names the field to fix; valid manifests of each kind apply and get defaults.

The table below is the issue's "Bad input" list. Each row is applied exactly as a person
would (`kubectl apply -f -`), so this tests the generated CRDs (schema bounds, enums,
patterns, CEL rules, unknown-field rejection) as the API server enforces them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from cluster_tools import kubectl

pytestmark = pytest.mark.cluster

TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def gpujob(namespace: str, **spec: Any) -> dict[str, Any]:
    """A valid GPUJob manifest, with `spec` overriding (or adding) fields."""
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUJob",
        "metadata": {"name": "train", "namespace": namespace},
        "spec": {"queue": "team-a", "template": copy.deepcopy(TEMPLATE), **spec},
    }


def gpuqueue(name: str, **spec: Any) -> dict[str, Any]:
    """A valid GPUQueue manifest, with `spec` overriding (or adding) fields."""
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUQueue",
        "metadata": {"name": name},
        "spec": {"quotas": [{"gpuModel": "H100", "nominal": 8}], **spec},
    }


def gpunodepool(name: str, **spec: Any) -> dict[str, Any]:
    """A valid GPUNodePool manifest, with `spec` overriding (or adding) fields."""
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUNodePool",
        "metadata": {"name": name},
        "spec": {"class": "OnPrem", "gpuModel": "H100", "gpusPerNode": 8, **spec},
    }


@dataclass(frozen=True)
class BadInput:
    """One row: how to build the manifest (given the test namespace) and what the error must say."""

    id: str
    kind: str
    spec: dict[str, Any]
    expect: tuple[str, ...]
    top_level: dict[str, Any] = field(default_factory=dict)

    def manifest(self, namespace: str) -> dict[str, Any]:
        # Cluster-scoped objects are named after the (unique) namespace so tests never collide.
        builders: dict[str, Callable[..., dict[str, Any]]] = {
            "GPUJob": gpujob,
            "GPUQueue": gpuqueue,
            "GPUNodePool": gpunodepool,
        }
        build = builders[self.kind]
        body = build(namespace, **self.spec)
        body.update(self.top_level)
        return body


BAD_INPUT = [
    BadInput("job-zero-workers", "GPUJob", {"workers": 0}, ("spec.workers", "greater than or equal to 1")),
    BadInput("job-negative-workers", "GPUJob", {"workers": -3}, ("spec.workers", "greater than or equal to 1")),
    BadInput("job-zero-gpus", "GPUJob", {"gpus": 0}, ("spec.gpus", "greater than 0")),
    BadInput("job-negative-gpus", "GPUJob", {"gpus": -1}, ("spec.gpus", "greater than 0")),
    BadInput("job-fraction-above-one", "GPUJob", {"gpus": 1.5}, ("spec.gpus", "whole number")),
    BadInput("job-fraction-below-milli", "GPUJob", {"gpus": 0.0001}, ("spec.gpus", "at least 0.001")),
    BadInput(
        "job-fraction-with-gang",
        "GPUJob",
        {"gpus": 0.5, "workers": 2},
        ("spec.gpus", "only with spec.workers = 1"),
    ),
    BadInput("job-unknown-placement", "GPUJob", {"placement": "Anywhere"}, ("spec.placement", "Unsupported value")),
    BadInput("job-malformed-max-runtime", "GPUJob", {"maxRuntime": "2 hours"}, ("spec.maxRuntime", "should match")),
    BadInput("job-max-runtime-no-unit", "GPUJob", {"maxRuntime": "90"}, ("spec.maxRuntime", "should match")),
    BadInput("job-workers-over-cap", "GPUJob", {"workers": 2000}, ("spec.workers", "less than or equal to 1024")),
    BadInput("job-gpus-over-cap", "GPUJob", {"gpus": 32}, ("spec.gpus", "less than or equal to 16")),
    BadInput("job-negative-cpu", "GPUJob", {"cpu": -2}, ("spec.cpu", "greater than or equal to 0")),
    BadInput("job-malformed-memory", "GPUJob", {"memory": "16 gigs"}, ("spec.memory", "should match")),
    BadInput("job-missing-queue", "GPUJob", {"queue": None}, ("spec.queue", "Required value")),
    BadInput(
        "job-negative-ttl",
        "GPUJob",
        {"ttlSecondsAfterFinished": -1},
        ("spec.ttlSecondsAfterFinished", "greater than or equal to 0"),
    ),
    BadInput(
        "job-malformed-ttl", "GPUJob", {"ttlSecondsAfterFinished": "7d"}, ("spec.ttlSecondsAfterFinished", "integer")
    ),
    BadInput("job-unknown-spec-field", "GPUJob", {"gpuCount": 2}, ('unknown field "spec.gpuCount"',)),
    BadInput(
        "job-unknown-template-field",
        "GPUJob",
        {"template": {"spec": {}, "containers": []}},
        ('unknown field "spec.template.containers"',),
    ),
    BadInput("job-unknown-top-level-field", "GPUJob", {}, ('unknown field "specs"',), top_level={"specs": {}}),
    BadInput(
        "pool-min-above-max",
        "GPUNodePool",
        {"minNodes": 5, "maxNodes": 2},
        ("spec.minNodes", "less than or equal to spec.maxNodes"),
    ),
    BadInput(
        "pool-negative-amortised-price",
        "GPUNodePool",
        {"pricePerNodeHour": {"amortised": -1}},
        ("spec.pricePerNodeHour.amortised", "greater than or equal to 0"),
    ),
    BadInput(
        "pool-negative-spot-price",
        "GPUNodePool",
        {"class": "Cloud", "pricePerNodeHour": {"onDemand": 3, "spot": -0.5}},
        ("spec.pricePerNodeHour.spot", "greater than or equal to 0"),
    ),
    BadInput("pool-unknown-class", "GPUNodePool", {"class": "Hybrid"}, ("spec.class", "Unsupported value")),
    BadInput("pool-zero-gpus-per-node", "GPUNodePool", {"gpusPerNode": 0}, ("spec.gpusPerNode",)),
    BadInput("pool-unknown-field", "GPUNodePool", {"gpus": 8}, ('unknown field "spec.gpus"',)),
    BadInput(
        "pool-clusterapi-without-deployment",
        "GPUNodePool",
        {"class": "Cloud", "provider": "ClusterAPI"},
        ("spec.clusterAPI", "must be set exactly when spec.provider is ClusterAPI"),
    ),
    BadInput(
        "pool-kwok-with-clusterapi",
        "GPUNodePool",
        {"class": "Cloud", "provider": "Kwok", "clusterAPI": {"namespace": "capi", "machineDeployment": "gpu"}},
        ("spec.clusterAPI", "remove spec.clusterAPI"),
    ),
    BadInput(
        "queue-negative-quota",
        "GPUQueue",
        {"quotas": [{"gpuModel": "H100", "nominal": -4}]},
        ("spec.quotas[0].nominal", "greater than or equal to 0"),
    ),
    BadInput(
        "queue-negative-borrowing-limit",
        "GPUQueue",
        {"quotas": [{"gpuModel": "H100", "nominal": 4, "borrowingLimit": -1}]},
        ("spec.quotas[0].borrowingLimit", "greater than or equal to 0"),
    ),
    BadInput(
        "queue-quota-with-two-flavors",
        "GPUQueue",
        {"quotas": [{"gpuModel": "H100", "pool": "onprem", "nominal": 4}]},
        ("spec.quotas[0]", "exactly one of gpuModel or pool"),
    ),
    BadInput(
        "queue-quota-without-flavor",
        "GPUQueue",
        {"quotas": [{"nominal": 4}]},
        ("spec.quotas[0]", "exactly one of gpuModel or pool"),
    ),
    BadInput("queue-zero-weight", "GPUQueue", {"weight": 0}, ("spec.weight", "greater than 0")),
    BadInput("queue-unknown-strategy", "GPUQueue", {"queueingStrategy": "LIFO"}, ("spec.queueingStrategy",)),
    BadInput("queue-negative-budget", "GPUQueue", {"budget": {"amount": -1}}, ("spec.budget.amount",)),
    BadInput(
        "queue-malformed-min-runtime",
        "GPUQueue",
        {"preemption": {"minRuntime": "ten minutes"}},
        ("spec.preemption.minRuntime", "should match"),
    ),
]


def _without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    """Drop keys set to None (how a row removes a required field such as `queue`)."""
    spec = {k: v for k, v in body["spec"].items() if v is not None}
    return {**body, "spec": spec}


@pytest.mark.parametrize("case", BAD_INPUT, ids=[c.id for c in BAD_INPUT])
def test_bad_manifest_is_rejected_naming_the_field(case: BadInput, kubeconfig: str, namespace: str) -> None:
    manifest = _without_nulls(case.manifest(namespace))
    result = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0, f"{case.id} was accepted:\n{result.stdout}"
    for fragment in case.expect:
        assert fragment in result.stderr, f"{case.id}: {fragment!r} not in the error:\n{result.stderr}"
    if case.kind != "GPUJob":  # nothing was created, so there is nothing to clean up
        assert kubectl(kubeconfig, "get", case.kind.lower(), namespace, check=False).returncode != 0


def test_valid_manifests_of_every_kind_apply_with_defaults(kubeconfig: str, namespace: str) -> None:
    job = gpujob(
        namespace,
        workers=4,
        gpus=2,
        cpu="8",
        memory="64Gi",
        gpuModels=["H100"],
        maxRuntime="1h30m",
        provenance={"imageDigest": "sha256:abc", "parameters": {"lr": 0.001, "schedule": {"warmup": 100}}},
    )
    share = gpujob(namespace, gpus=0.5)
    share["metadata"]["name"] = "notebook"
    queue = gpuqueue(
        namespace,
        namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        quotas=[
            {"gpuModel": "H100", "nominal": 8, "borrowingLimit": 4, "lendingLimit": 2},
            {"pool": "cloud", "nominal": 0},
        ],
        cohort="research",
        budget={"amount": 1000, "period": "Weekly"},
        preemption={"minRuntime": "10m"},
    )
    pool = gpunodepool(
        namespace,
        nodeSelector={"gpupool.io/pool": namespace},
        taints=[{"key": "gpupool.io/gpu"}],
        pricePerNodeHour={"amortised": 12.5},
        cpuPerNode=96,
        memoryPerNode="1Ti",
        minNodes=1,
        maxNodes=4,
    )
    stream = yaml.safe_dump_all([job, share, queue, pool])
    try:
        applied = kubectl(kubeconfig, "apply", "-f", "-", stdin=stream, check=False)
        assert applied.returncode == 0, applied.stderr

        listed = kubectl(kubeconfig, "get", "gpupool", "-n", namespace, "-o", "name", check=False)
        assert listed.returncode == 0, listed.stderr
        names = set(listed.stdout.split())
        assert {
            "gpujob.gpupool.io/train",
            "gpujob.gpupool.io/notebook",
            f"gpuqueue.gpupool.io/{namespace}",
            f"gpunodepool.gpupool.io/{namespace}",
        } <= names

        got = json.loads(
            kubectl(kubeconfig, "get", "gj", "notebook", "-n", namespace, "-o", "json", check=False).stdout
        )
        spec = got["spec"]
        assert (spec["workers"], spec["placement"], spec["preemptible"], spec["priority"]) == (
            1,
            "OnPremOnly",
            True,
            0,
        )
        assert spec["ttlSecondsAfterFinished"] == 604800
        got = json.loads(kubectl(kubeconfig, "get", "gj", "train", "-n", namespace, "-o", "json", check=False).stdout)
        assert got["spec"]["provenance"]["parameters"] == {"lr": 0.001, "schedule": {"warmup": 100}}

        got = json.loads(kubectl(kubeconfig, "get", "gq", namespace, "-o", "json", check=False).stdout)
        assert got["spec"]["queueingStrategy"] == "BestEffortFIFO"
        assert got["spec"]["preemption"] == {
            "minRuntime": "10m",
            "reclaimWithinCohort": True,
            "withinQueue": True,
        }
        assert got["spec"]["budget"]["currency"] == "USD"

        table = kubectl(kubeconfig, "get", "gj", "-n", namespace, check=False)
        header = table.stdout.splitlines()[0].split()
        assert header == ["NAME", "QUEUE", "PHASE", "WORKERS", "GPUS", "MESSAGE", "AGE"]
        table = kubectl(kubeconfig, "get", "gnp", namespace, check=False)
        assert table.stdout.splitlines()[0].split() == [
            "NAME",
            "CLASS",
            "MODEL",
            "NODES",
            "GPUS",
            "PROVISIONING",
            "AGE",
        ]
        table = kubectl(kubeconfig, "get", "gq", namespace, check=False)
        assert table.stdout.splitlines()[0].split() == ["NAME", "COHORT", "ADMITTED", "PENDING", "AGE"]
    finally:
        kubectl(kubeconfig, "delete", "gq,gnp", namespace, "--ignore-not-found", "--wait=false", check=False)


def test_kubectl_explain_describes_the_fields(kubeconfig: str) -> None:
    result = kubectl(kubeconfig, "explain", "gpujob.spec.workers", check=False)
    assert result.returncode == 0, result.stderr
    assert "all-or-nothing" in result.stdout
    result = kubectl(kubeconfig, "explain", "gpuqueue.spec.quotas", check=False)
    assert "borrowingLimit" in result.stdout and "nominal" in result.stdout


# Each row: a merge patch of a GPUJob's spec after creation, and the field the API server must
# name in refusing it (None: the edit is allowed).
SPEC_EDITS = [
    ("queue", {"queue": "team-b"}, "spec.queue"),
    ("workers", {"workers": 2}, "spec.workers"),
    ("gpus", {"gpus": 8}, "spec.gpus"),
    ("cpu-added", {"cpu": "4"}, "spec.cpu"),
    ("memory-added", {"memory": "8Gi"}, "spec.memory"),
    ("gpu-models", {"gpuModels": ["A100"]}, "spec.gpuModels"),
    ("placement", {"placement": "SpotAllowed"}, "spec.placement"),
    ("template-image", {"template": {"spec": {"containers": [{"name": "main", "image": "other"}]}}}, "spec.template"),
    ("priority", {"priority": 7}, None),
    ("max-runtime", {"maxRuntime": "10m"}, None),
    ("preemptible", {"preemptible": False}, None),
    ("backoff-limit", {"backoffLimit": 1}, None),
    ("ttl-after-finished", {"ttlSecondsAfterFinished": 60}, None),
    ("provenance", {"provenance": {"codeRevision": "f00d"}}, None),
]


@pytest.mark.parametrize(("patch", "named"), [(p, n) for _, p, n in SPEC_EDITS], ids=[i for i, _, _ in SPEC_EDITS])
def test_what_a_job_holds_cannot_change_after_creation(
    kubeconfig: str, namespace: str, patch: dict[str, Any], named: str | None
) -> None:
    created = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(gpujob(namespace, gpus=2)), check=False)
    assert created.returncode == 0, created.stderr
    edit = json.dumps({"spec": patch})
    result = kubectl(kubeconfig, "patch", "gj", "train", "-n", namespace, "--type", "merge", "-p", edit, check=False)
    if named is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0
    assert named in result.stderr
    assert "cannot change after creation: delete the GPUJob and create it again" in result.stderr
