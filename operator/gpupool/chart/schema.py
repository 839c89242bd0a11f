"""The JSON schema of the Helm chart's values (`charts/gpupool/values.schema.json`).

Who uses this: `gpupool.chart.__main__` writes it into the chart; `helm install`,
`helm upgrade` and `helm template` check every values file against it, so a wrong type,
an unknown key or an out-of-range setting fails before anything reaches the cluster, with
the field named. The operator's and the agent's settings are not restated here: their
properties come from the pydantic settings objects (`gpupool.settings.OperatorSettings`,
`gpupool.agent.settings.AgentSettings`), camelCased, with their descriptions and bounds, so
the chart cannot accept a setting the operator does not know.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings

from gpupool.agent.settings import AgentSettings
from gpupool.core.placement.registry import SCORING_POLICY_NAMES
from gpupool.settings import OperatorSettings

Schema = dict[str, Any]

# Settings the chart derives from the pod, so they are not values.
AGENT_SETTINGS_SET_BY_CHART = frozenset({"node"})


def camel(name: str) -> str:
    """snake_case -> camelCase (`schedule_interval_seconds` -> `scheduleIntervalSeconds`).

    The chart's templates turn a key back into its variable with sprig's `snakecase`, which
    inverts this for every settings name (a test checks each round trip).
    """
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def settings_schema(model: type[BaseSettings], description: str, skip: frozenset[str] = frozenset()) -> Schema:
    """An object schema with one property per field of a pydantic settings class."""
    properties: Schema = {}
    for name, field_schema in model.model_json_schema()["properties"].items():
        if name in skip:
            continue
        kept = {k: v for k, v in field_schema.items() if k not in ("title", "default")}
        properties[camel(name)] = kept
    if "placementPolicy" in properties:
        properties["placementPolicy"]["enum"] = list(SCORING_POLICY_NAMES)
    return obj(description, properties)


def obj(description: str, properties: Schema | None = None, *, free_form: bool = False) -> Schema:
    """An object; unknown keys are refused unless `free_form` (labels, selectors, resources)."""
    schema: Schema = {"type": "object", "description": description}
    if properties is not None:
        schema["properties"] = properties
    if not free_form:
        schema["additionalProperties"] = False
    return schema


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def integer(description: str, minimum: int = 0) -> Schema:
    return {"type": "integer", "minimum": minimum, "description": description}


def strings(description: str, min_items: int = 0) -> Schema:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": min_items,
        "description": description,
    }


def free_list(description: str) -> Schema:
    return {"type": "array", "items": {"type": "object"}, "description": description}


def string_map(description: str) -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}, "description": description}


def probe(description: str) -> Schema:
    return obj(
        description,
        {
            "initialDelaySeconds": integer("Seconds after start before the first probe."),
            "periodSeconds": integer("Seconds between probes.", minimum=1),
            "failureThreshold": integer("Failures in a row that count as failed.", minimum=1),
            "timeoutSeconds": integer("Seconds a probe may take.", minimum=1),
        },
    )


def values_schema() -> Schema:
    """The whole schema; `values.yaml` documents the same keys (a test keeps them in step)."""
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "gpupool Helm chart values",
        **obj(
            "Values of the gpupool chart.",
            {
                "image": obj(
                    "Container image for both the operator and the node agent.",
                    {
                        "repository": string("Image repository.", minLength=1),
                        "tag": string("Image tag; empty means the chart's appVersion."),
                        "pullPolicy": string("Kubernetes imagePullPolicy.", enum=["Always", "IfNotPresent", "Never"]),
                    },
                ),
                "imagePullSecrets": free_list("Secrets holding registry credentials, as [{name: regcred}]."),
                "operator": obj(
                    "The operator Deployment.",
                    {
                        "replicas": integer("Operator replicas; more than one stand by under leader election."),
                        "settings": settings_schema(
                            OperatorSettings, "Operator settings (GPUPOOL_* variables), keys in camelCase."
                        ),
                        "resources": obj("Container resources of each replica.", free_form=True),
                        "livenessProbe": probe("Liveness probe timing (GET /healthz)."),
                        "readinessProbe": probe("Readiness probe timing (GET /readyz)."),
                        "nodeSelector": string_map("Node selector for the operator pods."),
                        "tolerations": free_list("Tolerations for the operator pods."),
                        "affinity": obj("Affinity for the operator pods (default: spread replicas).", free_form=True),
                        "priorityClassName": string("Priority class of the operator pods (empty: none)."),
                        "podLabels": string_map("Extra labels on the operator pods."),
                        "podAnnotations": string_map("Extra annotations on the operator pods."),
                    },
                ),
                "podDisruptionBudget": obj(
                    "PodDisruptionBudget of the operator.",
                    {
                        "enabled": boolean("Create the PodDisruptionBudget."),
                        "maxUnavailable": integer("Replicas that may be voluntarily down at once.", minimum=1),
                    },
                ),
                "serviceAccount": obj(
                    "The operator's ServiceAccount.",
                    {
                        "name": string("Name; empty means the release's full name."),
                        "annotations": string_map("Annotations on the ServiceAccount."),
                    },
                ),
                "rbac": obj(
                    "Optional permissions and the user-facing roles.",
                    {
                        "kwokNodes": boolean("Let the operator create and delete Nodes (Kwok provider only)."),
                        "clusterAPI": boolean("Let the operator scale Cluster API MachineDeployments."),
                        "userRoles": boolean("Create the gpupool-user, gpupool-viewer and gpupool-admin ClusterRoles."),
                        "queuesReadableByAllUsers": boolean(
                            "With userRoles: every signed-in user may read GPUQueues and GPUNodePools."
                        ),
                    },
                ),
                "metrics": obj(
                    "Exposing the operator's metrics.",
                    {
                        "service": boolean("Create the metrics Service."),
                        "serviceMonitor": obj(
                            "Prometheus Operator ServiceMonitor (and a PodMonitor for the agents).",
                            {
                                "enabled": boolean("Create it (needs the Prometheus Operator's CRDs)."),
                                "interval": string("Scrape interval.", pattern="^[0-9]+(ms|s|m|h)$"),
                                "labels": string_map("Extra labels, to match a serviceMonitorSelector."),
                            },
                        ),
                        "prometheusRule": obj(
                            "Prometheus Operator PrometheusRule with gpupool's alerts.",
                            {
                                "enabled": boolean("Create it (needs the Prometheus Operator's CRDs)."),
                                "labels": string_map("Extra labels, to match a ruleSelector."),
                            },
                        ),
                    },
                ),
                "agent": obj(
                    "The node agent DaemonSet on GPU nodes.",
                    {
                        "enabled": boolean("Run the agent."),
                        "settings": settings_schema(
                            AgentSettings,
                            "Agent settings (GPUPOOL_AGENT_* variables), keys in camelCase; node comes from the pod.",
                            skip=AGENT_SETTINGS_SET_BY_CHART,
                        ),
                        "nodeSelector": string_map("Nodes the agent runs on."),
                        "tolerations": free_list(
                            "Tolerations of the agent (default: the nvidia.com/gpu and gpupool.io/pool taints)."
                        ),
                        "runtimeClassName": string(
                            "RuntimeClass giving the agent the NVIDIA driver (default nvidia; empty: left out)."
                        ),
                        "resources": obj("Container resources of the agent.", free_form=True),
                        "priorityClassName": string("Priority class of the agent pods (empty: none)."),
                    },
                ),
                "admissionPolicy": obj(
                    "The ValidatingAdmissionPolicy that keeps tenants from bypassing the queue.",
                    {
                        "enabled": boolean("Install the policy and its binding."),
                        "exemptNamespaces": strings("Namespaces besides the release's that the policy leaves alone."),
                        "gpuResources": strings("Extended resources that count as GPUs.", min_items=1),
                        "gpuNodeLabelKeys": strings("Node label keys that identify GPU nodes."),
                        "gpuTaintKeys": strings("Taint keys on GPU nodes."),
                        "validationActions": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["Deny", "Warn", "Audit"]},
                            "minItems": 1,
                            "uniqueItems": True,
                            "description": "What the API server does on a violation.",
                        },
                    },
                ),
            },
        ),
    }
