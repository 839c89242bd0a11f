"""The Helm chart on the real control plane: `helm install` with the defaults, the
operator's ServiceAccount allowed what the operator does and denied what it does not,
tenants bound to gpupool-user kept to their namespace and to GPUJobs, and the admission
policy refusing pods that would take GPUs around the queue.

The release stays installed for this module only and is uninstalled after it, because its
admission policy refuses GPU pods that anyone but the release's operator creates. No image
can be pulled here, so the release runs no replicas of its own (after the install proves the
defaults); the operator runs as a local process with a token of the chart's ServiceAccount.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from chart_tools import CHART, RELEASE, RELEASE_NAMESPACE, helm, permission_denials, service_account_kubeconfig
from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, job_manifest, wait_for

pytestmark = pytest.mark.cluster

OPERATOR = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}"
POLICY = f"{RELEASE}-no-queue-bypass"


@pytest.fixture(scope="module")
def release(kubeconfig: str) -> Iterator[str]:
    """The chart installed with its defaults; then scaled to no replicas (see the docstring)."""
    helm("install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--create-namespace", kubeconfig=kubeconfig)
    try:
        yield RELEASE
    finally:
        helm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", kubeconfig=kubeconfig)


@pytest.fixture(scope="module")
def operator_identity(kubeconfig: str, release: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kubeconfig that authenticates with a token of the release's operator ServiceAccount."""
    out = tmp_path_factory.mktemp("identity") / "operator.kubeconfig"
    return service_account_kubeconfig(kubeconfig, RELEASE_NAMESPACE, release, out)


def get_json(kubeconfig: str, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl(kubeconfig, "get", *args, "-o", "json").stdout)
    return result


def test_helm_install_with_the_defaults_creates_the_operator_agent_roles_and_policy(
    kubeconfig: str, release: str
) -> None:
    status = json.loads(helm("status", release, "-n", RELEASE_NAMESPACE, "-o", "json", kubeconfig=kubeconfig).stdout)
    assert status["info"]["status"] == "deployed"
    deployment = get_json(kubeconfig, "deployment", release, "-n", RELEASE_NAMESPACE)
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "GPUPOOL_LEADER_ELECTION", "value": "true"} in container["env"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == release
    get_json(kubeconfig, "daemonset", f"{release}-agent", "-n", RELEASE_NAMESPACE)
    assert get_json(kubeconfig, "pdb", release, "-n", RELEASE_NAMESPACE)["spec"]["maxUnavailable"] == 1
    get_json(kubeconfig, "service", f"{release}-metrics", "-n", RELEASE_NAMESPACE)
    get_json(kubeconfig, "validatingadmissionpolicy", POLICY)
    get_json(kubeconfig, "validatingadmissionpolicybinding", POLICY)
    for crd in ("gpujobs", "gpuqueues", "gpunodepools", "gpunodeclaims"):
        get_json(kubeconfig, "crd", f"{crd}.gpupool.io")

    # gpupool-user and gpupool-viewer are aggregated into the built-in edit and view roles.
    def aggregated(role: str, resource: str, verb: str) -> bool:
        rules = get_json(kubeconfig, "clusterrole", role).get("rules") or []
        return any(resource in r.get("resources", []) and verb in r["verbs"] for r in rules)

    wait_for(lambda: aggregated("edit", "gpujobs", "create"), 30, "gpupool-user aggregated into edit")
    wait_for(lambda: aggregated("view", "gpuqueues", "list"), 30, "gpupool-viewer aggregated into view")
    # An upgrade applies cleanly too; the release then runs no replicas (no image here).
    helm(
        "upgrade", release, str(CHART), "-n", RELEASE_NAMESPACE, "--reuse-values",
        "--set", "operator.replicas=0", "--set", "agent.enabled=false", kubeconfig=kubeconfig,
    )  # fmt: skip
    assert get_json(kubeconfig, "deployment", release, "-n", RELEASE_NAMESPACE)["spec"]["replicas"] == 0


def can_i(kubeconfig: str, *args: str) -> bool:
    """`kubectl auth can-i`; a resource written `kind/subresource` is asked as --subresource."""
    split: list[str] = []
    for arg in args:
        resource, _, subresource = arg.partition("/")
        split += [resource, f"--subresource={subresource}"] if subresource and "." in resource else [arg]
    result = kubectl(kubeconfig, "auth", "can-i", *split, check=False)
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "gpujobs.gpupool.io", True),
        ("patch", "gpujobs.gpupool.io/status", True),
        ("create", "pods", True),
        ("patch", "nodes", True),
        ("create", "gpunodeclaims.gpupool.io", True),
        ("create", "events", True),
        ("get", "secrets", False),
        ("list", "configmaps", False),
        ("patch", "gpuqueues.gpupool.io", False),
        ("update", "gpujobs.gpupool.io", False),
        ("create", "nodes", False),  # only with rbac.kwokNodes
        ("create", "clusterrolebindings", False),
        ("update", "deployments", False),
    ],
)
def test_the_operator_service_account_may_do_what_the_operator_does_and_nothing_more(
    operator_identity: str, verb: str, resource: str, allowed: bool
) -> None:
    assert can_i(operator_identity, verb, resource, "--all-namespaces") is allowed


def test_reading_a_secret_with_the_operator_token_is_forbidden(operator_identity: str) -> None:
    result = kubectl(operator_identity, "get", "secrets", "-n", RELEASE_NAMESPACE, check=False)
    assert result.returncode != 0 and "forbidden" in result.stderr.lower()


@pytest.fixture
def tenants(kubeconfig: str, namespace: str, release: str) -> Iterator[tuple[str, str]]:
    """Two tenant namespaces: `namespace` (team-a, alice is a gpupool-user there, bob an
    editor) and a second one (team-b) where neither has a binding."""
    other = f"{namespace[:50]}-b"
    kubectl(kubeconfig, "create", "namespace", other)
    kubectl(kubeconfig, "create", "rolebinding", "alice", "--clusterrole=gpupool-user", "--user=alice", "-n", namespace)
    kubectl(kubeconfig, "create", "rolebinding", "bob", "--clusterrole=edit", "--user=bob", "-n", namespace)
    try:
        yield namespace, other
    finally:
        kubectl(kubeconfig, "delete", "namespace", other, "--wait=false")


def job_yaml(name: str, namespace: str) -> str:
    return yaml.safe_dump(job_manifest(name, namespace, "team-a"))


def as_user(kubeconfig: str, user: str, *args: str, stdin: str | None = None) -> Any:
    return kubectl(kubeconfig, "--as", user, *args, stdin=stdin, check=False)


def test_a_gpupool_user_submits_and_deletes_jobs_in_their_namespace_only(
    kubeconfig: str, tenants: tuple[str, str]
) -> None:
    team_a, team_b = tenants
    created = as_user(kubeconfig, "alice", "create", "-f", "-", stdin=job_yaml("mine", team_a))
    assert created.returncode == 0, created.stderr
    assert as_user(kubeconfig, "alice", "get", "gpujobs", "-n", team_a).returncode == 0
    assert as_user(kubeconfig, "alice", "get", "gpuqueues").returncode == 0
    elsewhere = as_user(kubeconfig, "alice", "create", "-f", "-", stdin=job_yaml("theirs", team_b))
    assert elsewhere.returncode != 0 and "forbidden" in elsewhere.stderr
    status_patch = as_user(
        kubeconfig, "alice", "patch", "gpujob", "mine", "-n", team_a, "--subresource=status",
        "--type=merge", "-p", '{"status": {"phase": "Succeeded"}}',
    )  # fmt: skip
    assert status_patch.returncode != 0 and "forbidden" in status_patch.stderr
    for kind in ("gpuqueues", "gpunodepools"):
        assert not can_i(kubeconfig, "--as", "alice", "patch", f"{kind}.gpupool.io")
        assert not can_i(kubeconfig, "--as", "alice", "create", f"{kind}.gpupool.io")
    assert not can_i(kubeconfig, "--as", "alice", "create", "pods", "-n", team_a)
    deleted = as_user(kubeconfig, "alice", "delete", "gpujob", "mine", "-n", team_a)
    assert deleted.returncode == 0, deleted.stderr
    # The built-in edit role carries gpupool-user by aggregation.
    assert as_user(kubeconfig, "bob", "create", "-f", "-", stdin=job_yaml("bobs", team_a)).returncode == 0
    # gpupool-admin manages queues and pools (cluster-wide), and cannot write job status.
    kubectl(
        kubeconfig, "create", "clusterrolebinding", f"carol-{team_a}", "--clusterrole=gpupool-admin", "--user=carol"
    )
    try:
        assert can_i(kubeconfig, "--as", "carol", "create", "gpuqueues.gpupool.io")
        assert can_i(kubeconfig, "--as", "carol", "delete", "gpunodepools.gpupool.io")
        assert not can_i(kubeconfig, "--as", "carol", "patch", "gpujobs.gpupool.io/status", "-n", team_a)
    finally:
        kubectl(kubeconfig, "delete", "clusterrolebinding", f"carol-{team_a}")


def pod(name: str, **spec: Any) -> str:
    """A Pod manifest; `gpus`, `env` (of the main container) and `annotations` are shorthands."""
    container: dict[str, Any] = {"name": "main", "image": "busybox"}
    gpus = spec.pop("gpus", None)
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    env = spec.pop("env", None)
    if env:
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    metadata: dict[str, Any] = {"name": name}
    annotations = spec.pop("annotations", None)
    if annotations:
        metadata["annotations"] = annotations
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [container], **spec}}
    return yaml.safe_dump(body)


INIT_WITH_NVIDIA_ENV = [
    {"name": "setup", "image": "busybox", "env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"}]}
]


GPU_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpupool.io/gpu-model", "operator": "Exists"}]}]
        }
    }
}


def dry_run_create(kubeconfig: str, identity: list[str], namespace: str, manifest: str) -> Any:
    """Create `manifest` with the server's dry run: admission runs, nothing is stored."""
    args = [*identity, "create", "--dry-run=server", "-n", namespace, "-f", "-"]
    return kubectl(kubeconfig, *args, stdin=manifest, check=False)


@pytest.mark.parametrize(
    ("case", "spec", "refusal"),
    [
        ("gpu-request", {"gpus": 1}, "may not request GPUs (nvidia.com/gpu) directly: submit a GPUJob"),
        ("node-name", {"nodeName": "some-gpu-node"}, "spec.nodeName is reserved to gpupool"),
        ("scheduler-name", {"schedulerName": "gpupool"}, "spec.schedulerName gpupool is reserved"),
        ("pool-selector", {"nodeSelector": {"gpupool.io/pool": "onprem"}}, "may not select GPU nodes"),
        ("gpu-affinity", {"affinity": GPU_AFFINITY}, "may not select GPU nodes"),
        ("gpu-toleration", {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}, "tolerate GPU node"),
        ("tolerate-all", {"tolerations": [{"operator": "Exists"}]}, "tolerate GPU node"),
        (
            "nvidia-env",
            {"env": {"NVIDIA_VISIBLE_DEVICES": "all"}},
            "spec.containers[main].env NVIDIA_VISIBLE_DEVICES is reserved to gpupool",
        ),
        (
            "nvidia-init-env",
            {"initContainers": INIT_WITH_NVIDIA_ENV},
            "spec.initContainers[setup].env NVIDIA_DRIVER_CAPABILITIES is reserved to gpupool",
        ),
        (
            "cdi-annotation",
            {"annotations": {"cdi.k8s.io/gpu": "nvidia.com/gpu=all"}},
            "metadata.annotations cdi.k8s.io/gpu is reserved to gpupool",
        ),
    ],
)
def test_pods_that_would_take_gpus_around_the_queue_are_refused_with_what_to_do(
    kubeconfig: str, tenants: tuple[str, str], case: str, spec: dict[str, Any], refusal: str
) -> None:
    team_a, _ = tenants
    for who in (["--as", "bob"], []):  # an editor of the namespace, and the cluster admin
        result = dry_run_create(kubeconfig, who, team_a, pod(case, **spec))
        assert result.returncode != 0, f"{who or 'admin'} created a {case} pod"
        assert refusal in result.stderr, result.stderr


def test_ordinary_pods_and_the_operators_own_gpu_pods_are_admitted(kubeconfig: str, tenants: tuple[str, str]) -> None:
    team_a, _ = tenants
    plain = dry_run_create(kubeconfig, ["--as", "bob"], team_a, pod("plain"))
    assert plain.returncode == 0, plain.stderr
    ordinary = pod("ordinary", env={"CUDA_CACHE_PATH": "/tmp/cuda"}, annotations={"example.com/team": "a"})
    with_env = dry_run_create(kubeconfig, ["--as", "bob"], team_a, ordinary)
    assert with_env.returncode == 0, with_env.stderr
    worker = pod("worker", gpus=2, nodeName="some-gpu-node", schedulerName="gpupool")
    by_operator = dry_run_create(kubeconfig, ["--as", OPERATOR], team_a, worker)
    assert by_operator.returncode == 0, by_operator.stderr
    # What the operator sets: void in a container without GPUs, the reserved GPU on a share.
    for env in ({"NVIDIA_VISIBLE_DEVICES": "void"}, {"NVIDIA_VISIBLE_DEVICES": "GPU-1b07", "GPUPOOL_GPU_SHARE": "0.5"}):
        share = pod("share", env=env, nodeName="some-gpu-node", schedulerName="gpupool")
        by_operator = dry_run_create(kubeconfig, ["--as", OPERATOR], team_a, share)
        assert by_operator.returncode == 0, by_operator.stderr


def test_the_operator_runs_gangs_as_the_chart_service_account_under_the_policy_and_leads_on_its_lease(
    kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess, operator_identity: str
) -> None:
    lease = f"gpupool-chart-{uuid.uuid4().hex[:6]}"
    env = {
        "GPUPOOL_LEADER_ELECTION": "true",
        "GPUPOOL_LEADER_ELECTION_NAMESPACE": RELEASE_NAMESPACE,
        "GPUPOOL_LEADER_ELECTION_LEASE_NAME": lease,
    }
    log_offset = operator.log_path.stat().st_size
    with operator.running_with(kubeconfig=operator_identity, **env):
        world = Scenario(kubeconfig, core_api, namespace)
        world.nodes(2, gpus=4)
        world.pool(gpus_per_node=4)
        queue = world.queue("team", nominal=8)
        world.job("gang", queue, workers=2, gpus=4, duration="3s")
        final = world.wait_phase("gang", "Succeeded", 90)
        assert final["attempts"] == 1
        assert wait_for(lambda: "Finished" in world.events("gang"), 15, "the Finished event")
        lease_object = get_json(kubeconfig, "lease", lease, "-n", RELEASE_NAMESPACE)
        status, body = operator.readyz()
        assert status == 200 and body == f"ok: leader {lease_object['spec']['holderIdentity']}"
        denials = permission_denials(operator.log_path, log_offset)
        assert denials == [], f"the operator lacks a permission: {denials[0][:600]}"
