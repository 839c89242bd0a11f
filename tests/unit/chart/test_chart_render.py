"""The Helm chart rendered with the Helm built from Go modules: lint, golden files for the
defaults and for every option on, the schema refusing bad values with the field named,
settings reaching the operator as the variables it reads, and least privilege in the roles.

Regenerate the golden files after an intended change with
`GPUPOOL_UPDATE_GOLDEN=1 pytest tests/unit/chart/test_chart_render.py`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_tools import CHART, KUBE_VERSION, documents, find, helm, render

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "chart"
ALL_ON = Path(__file__).resolve().parents[2] / "fixtures" / "chart" / "all-on.yaml"


def test_helm_lint_passes_for_the_defaults_and_with_everything_on() -> None:
    for values in ([], ["--values", str(ALL_ON)]):
        result = helm("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, *values)
        assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("golden", "values"),
    [("defaults.yaml", ()), ("all-on.yaml", (ALL_ON,))],
)
def test_rendered_chart_matches_its_golden_file(golden: str, values: tuple[Path, ...]) -> None:
    text = render(values=values)
    path = GOLDEN / golden
    if os.environ.get("GPUPOOL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} is stale; see this module's docstring to regenerate it"


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("operator.replicas=-1", "/operator/replicas"),
        ("operator.settings.placementPolicy=tightest", "/operator/settings/placementPolicy"),
        ("operator.settings.scheduleIntervalSecs=2", "scheduleIntervalSecs"),
        ("operator.settings.logLevel=LOUD", "/operator/settings/logLevel"),
        ("agent.settings.port=70000", "/agent/settings/port"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("admissionPolicy.validationActions={Block}", "/admissionPolicy/validationActions"),
        ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
        ("rbac.secrets=true", "secrets"),
    ],
)
def test_a_wrong_value_fails_with_the_field_named(assignment: str, named: str) -> None:
    args = ["template", "gpupool", str(CHART), "--kube-version", KUBE_VERSION, "--set", assignment]
    result = helm(*args, check=False)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr


def env_of(objects: list[dict[str, Any]], kind: str) -> dict[str, str]:
    container = find(objects, kind)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"] if "value" in e}


def test_every_operator_and_agent_setting_reaches_the_variable_the_settings_object_reads(tmp_path: Path) -> None:
    from gpupool.agent.settings import ENV_PREFIX as AGENT_PREFIX
    from gpupool.agent.settings import AgentSettings
    from gpupool.chart.schema import AGENT_SETTINGS_SET_BY_CHART, camel
    from gpupool.settings import ENV_PREFIX, OperatorSettings

    operator_fields = OperatorSettings.model_fields
    agent_fields = {k: v for k, v in AgentSettings.model_fields.items() if k not in AGENT_SETTINGS_SET_BY_CHART}
    every_setting = {
        "operator": {"settings": {camel(name): field.default for name, field in operator_fields.items()}},
        "agent": {"settings": {camel(name): field.default for name, field in agent_fields.items()}},
    }
    every_setting["operator"]["settings"]["scheduleIntervalSeconds"] = 1.5
    values = tmp_path / "every-setting.yaml"
    values.write_text(yaml.safe_dump(every_setting))
    objects = documents(render(values=[values]))

    operator_env = env_of(objects, "Deployment")
    assert set(operator_env) == {ENV_PREFIX + name.upper() for name in operator_fields}
    # The variables build the settings object the operator starts with, with the values given.
    settings = OperatorSettings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in operator_env.items()})
    assert settings.schedule_interval_seconds == 1.5
    agent_env = env_of(objects, "DaemonSet")
    # The chart sets the PodResources socket itself (a settings default, so a value overrides it).
    assert set(agent_env) == {AGENT_PREFIX + name.upper() for name in agent_fields} | {
        "GPUPOOL_AGENT_POD_RESOURCES_SOCKET",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
    }


def test_the_defaults_run_two_replicas_under_leader_election_hardened_and_probed() -> None:
    objects = documents(render())
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert env["GPUPOOL_LEADER_ELECTION"] == "true"
    assert env["GPUPOOL_LEADER_ELECTION_NAMESPACE"] == "gpupool-system"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    context = container["securityContext"]
    assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"]
    assert context["capabilities"]["drop"] == ["ALL"] and not context["allowPrivilegeEscalation"]
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    daemonset = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert daemonset["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


POD_RESOURCES = "/var/lib/kubelet/pod-resources"


def test_the_agent_reads_the_kubelets_pod_resources_under_the_nvidia_runtime_on_tainted_gpu_nodes() -> None:
    objects = documents(render())
    pod = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists"},
        {"key": "gpupool.io/pool", "operator": "Exists"},
    ]
    container = pod["containers"][0]
    assert env_of(objects, "DaemonSet")["GPUPOOL_AGENT_POD_RESOURCES_SOCKET"] == f"{POD_RESOURCES}/kubelet.sock"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["pod-resources"] == {"name": "pod-resources", "mountPath": POD_RESOURCES, "readOnly": True}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["pod-resources"]["hostPath"] == {"path": POD_RESOURCES, "type": "Directory"}
    # The kubelet's socket is root's: the agent connects as root, with no capability.
    context = container["securityContext"]
    assert context["runAsUser"] == 0 and "runAsNonRoot" not in pod["securityContext"]
    assert context["capabilities"]["drop"] == ["ALL"] and not context["allowPrivilegeEscalation"]
    assert context["readOnlyRootFilesystem"]


def test_the_agent_runtime_class_can_be_left_out_and_its_socket_and_tolerations_changed() -> None:
    sets = [
        "agent.runtimeClassName=",
        "agent.settings.podResourcesSocket=/run/kubelet.sock",
        "agent.tolerations[0].key=gpu-team",
        "agent.tolerations[0].operator=Exists",
    ]
    objects = documents(render(sets=sets))
    pod = find(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert "runtimeClassName" not in pod
    assert pod["tolerations"] == [{"key": "gpu-team", "operator": "Exists"}]
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert names.count("GPUPOOL_AGENT_POD_RESOURCES_SOCKET") == 1
    assert env_of(objects, "DaemonSet")["GPUPOOL_AGENT_POD_RESOURCES_SOCKET"] == "/run/kubelet.sock"


def rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for o in objects if o["kind"] in ("ClusterRole", "Role") for rule in o["rules"]]


def test_no_role_grants_secrets_wildcards_or_escalation_even_with_everything_on() -> None:
    for rule in rules(documents(render(values=(ALL_ON,)))):
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert not {"secrets", "configmaps", "clusterroles", "roles", "rolebindings"} & set(rule["resources"])
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_the_operator_may_create_nodes_only_for_the_kwok_provider() -> None:
    def node_verbs(objects: list[dict[str, Any]]) -> set[str]:
        role = find(objects, "ClusterRole", "-operator")
        return {v for rule in role["rules"] if "nodes" in rule["resources"] for v in rule["verbs"]}

    assert node_verbs(documents(render())) == {"get", "list", "watch", "patch"}
    assert {"create", "delete"} <= node_verbs(documents(render(sets=["rbac.kwokNodes=true"])))


def test_the_agent_may_patch_its_nodes_annotations_and_status_and_list_pods_nothing_more() -> None:
    role = find(documents(render()), "ClusterRole", "-agent")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == {("nodes", "list"), ("nodes", "patch"), ("nodes/status", "patch"), ("pods", "list")}


def test_chart_version_and_app_version_follow_the_package() -> None:
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == project["version"]


def leaf_paths(values: Any, prefix: str = "") -> set[str]:
    if isinstance(values, dict) and values:
        return {p for key, value in values.items() for p in leaf_paths(value, f"{prefix}/{key}")}
    return {prefix}


def schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    properties = schema.get("properties")
    if not properties or prefix.endswith("/settings"):
        return {prefix}
    return {p for key, sub in properties.items() for p in schema_paths(sub, f"{prefix}/{key}")}


def test_every_value_is_in_the_schema_with_a_description_and_every_schema_value_in_values_yaml() -> None:
    from gpupool.chart.schema import values_schema

    schema = values_schema()
    in_values = leaf_paths(yaml.safe_load((CHART / "values.yaml").read_text()))
    in_schema = schema_paths(schema)
    # Free-form maps (resources, selectors) are leaves in the schema; their inner keys are examples.
    covered = {v for v in in_values if any(v == s or v.startswith(s + "/") for s in in_schema)}
    assert covered == in_values
    optional = {"/operator/livenessProbe/timeoutSeconds", "/operator/readinessProbe/timeoutSeconds"}
    assert {s for s in in_schema if not any(v == s or v.startswith(s + "/") for v in in_values)} == optional

    def undocumented(node: dict[str, Any], path: str) -> list[str]:
        missing = [] if node.get("description") else [path]
        for key, sub in node.get("properties", {}).items():
            missing += undocumented(sub, f"{path}/{key}")
        return missing

    assert undocumented(schema, "") == []
