"""The agent's Kubernetes reads and writes: nodes, worker pods, the summary annotation.

Who uses this: `gpupool.agent.run`. The simulated backend reads nodes and running gpupool
worker pods through `KubeSource`; both backends publish the utilisation summary through
`NodeAnnotator`, which also sets the agent's Node condition (`GPUPoolAgentNVML`). Lists ask
for raw JSON (`_preload_content=False`), so the agent handles plain dicts, the same shape its
unit tests build. RBAC: `patch` nodes (the annotations) and `nodes/status` (the condition);
the simulated backend also `list`s nodes and pods (all namespaces).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from gpupool.agent.simulated import is_kwok_node
from gpupool.cluster.writes.pods import LABEL_JOB


def _items(response: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
    return items


class KubeSource:
    """Nodes and running worker pods: one named node, or every kwok node (`node=None`)."""

    def __init__(self, api: Any, node: str | None) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._node = node

    def nodes(self) -> Sequence[Mapping[str, Any]]:
        if self._node is not None:
            selector = f"metadata.name={self._node}"
            return _items(self._core.list_node(field_selector=selector, _preload_content=False))
        return [n for n in _items(self._core.list_node(_preload_content=False)) if is_kwok_node(n)]

    def worker_pods(self) -> Sequence[Mapping[str, Any]]:
        fields = "status.phase=Running"
        if self._node is not None:
            fields += f",spec.nodeName={self._node}"
        response = self._core.list_pod_for_all_namespaces(
            label_selector=LABEL_JOB, field_selector=fields, _preload_content=False
        )
        return _items(response)

    def close(self) -> None:
        self._api.close()


def node_condition(kind: str, status: bool, reason: str, message: str, now: float) -> dict[str, str]:
    """A Node condition as the API has it; both times are `now` (the agent writes on change only)."""
    at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
    }


class NodeAnnotator:
    """Sets one annotation on a Node (a merge patch of `metadata.annotations`), or one condition
    of its status (a strategic merge patch of `status.conditions`, merged by `type`, so the
    kubelet's own conditions stay as they are)."""

    def __init__(self, api: Any) -> None:
        self._core = client.CoreV1Api(api)

    def annotate(self, node: str, key: str, value: str) -> None:
        self._core.patch_node(node, {"metadata": {"annotations": {key: value}}})

    def set_condition(self, node: str, condition: Mapping[str, str]) -> None:
        # A dict body is sent as a strategic merge patch; conditions merge on `type`.
        self._core.patch_node_status(node, {"status": {"conditions": [dict(condition)]}})
