"""What the agent sends the API server for its node: an annotation as a merge patch of the
metadata, and its condition as a patch of `nodes/status` that carries only that condition (the
API server merges conditions by `type`, so the kubelet's own stay)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gpupool.agent import kube
from gpupool.agent.kube import NodeAnnotator, node_condition


class FakeCoreV1:
    def __init__(self, _api: object) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def patch_node(self, name: str, body: Any) -> None:
        self.calls.append(("patch_node", name, body))

    def patch_node_status(self, name: str, body: Any) -> None:
        self.calls.append(("patch_node_status", name, body))


def test_a_condition_is_a_status_patch_of_that_condition_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "client", SimpleNamespace(CoreV1Api=FakeCoreV1))
    annotator = NodeAnnotator(api=None)
    condition = node_condition("GPUPoolAgentNVML", False, "NVMLUnavailable", "check the toolkit", 1_750_000_000.0)
    annotator.set_condition("gpu-1", condition)
    annotator.annotate("gpu-1", "gpupool.io/pod-devices", "{}")
    core = annotator._core
    assert isinstance(core, FakeCoreV1)
    assert core.calls == [
        (
            "patch_node_status",
            "gpu-1",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "GPUPoolAgentNVML",
                            "status": "False",
                            "reason": "NVMLUnavailable",
                            "message": "check the toolkit",
                            "lastHeartbeatTime": "2025-06-15T15:06:40Z",
                            "lastTransitionTime": "2025-06-15T15:06:40Z",
                        }
                    ]
                }
            },
        ),
        ("patch_node", "gpu-1", {"metadata": {"annotations": {"gpupool.io/pod-devices": "{}"}}}),
    ]


def test_a_true_condition_says_true() -> None:
    assert node_condition("T", True, "R", "m", 0.0)["status"] == "True"
