"""The node agent's settings: `GPUPOOL_AGENT_*` variables, each overridable by a flag.

Who uses this: `gpupool.agent.run.main`, once at start-up. A flag wins over its variable
(`--port` over `GPUPOOL_AGENT_PORT`); a bad value of either stops the agent before it
reads a GPU, naming the variable (flags share the variables' names).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GPUPOOL_AGENT_"


class AgentSettings(BaseSettings):
    """Knobs of `gpupool agent run`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    backend: Literal["nvml", "simulated"] = Field(
        default="nvml", description="`nvml` reads this node's NVIDIA GPUs; `simulated` makes up kwok nodes' GPUs."
    )
    node: str = Field(
        default="", description="The node reported on (a DaemonSet sets it from spec.nodeName); labels and annotation."
    )
    all_kwok_nodes: bool = Field(
        default=False, description="Simulated backend only: report every kwok node instead of one `node`."
    )
    host: str = Field(default="0.0.0.0", description="Address /metrics is served on.")
    port: int = Field(default=9401, ge=0, le=65535, description="Port /metrics is served on (0: any free port).")
    interval_seconds: float = Field(default=5.0, gt=0, le=3600, description="Seconds between two readings.")
    window_seconds: int = Field(
        default=300, gt=0, le=86400, description="Span the Node annotation's utilisation average covers."
    )
    summary_min_interval_seconds: float = Field(
        default=30.0, ge=0, description="Least time between two writes of one node's annotation."
    )
    summary_refresh_seconds: float = Field(
        default=300.0, gt=0, description="The annotation is rewritten this often even when unchanged (fresh `at`)."
    )
    publish_summary: bool = Field(
        default=True, description="Write the `gpupool.io/gpu-utilization` annotation (false: metrics only)."
    )
    pod_resources_socket: str = Field(
        default="/var/lib/kubelet/pod-resources/kubelet.sock",
        description="The kubelet's PodResources socket: which pod holds which GPU, published as the Node annotation "
        "`gpupool.io/pod-devices` (one named node only; empty: not read).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Least level logged.")

    @model_validator(mode="after")
    def _nodes_named(self) -> Self:
        if self.all_kwok_nodes and self.backend != "simulated":
            raise ValueError(
                f"{ENV_PREFIX}ALL_KWOK_NODES (--all-kwok-nodes) needs {ENV_PREFIX}BACKEND=simulated: "
                "kwok nodes have no GPUs for NVML to read"
            )
        if self.all_kwok_nodes and self.node:
            raise ValueError(
                f"set {ENV_PREFIX}NODE (--node) or {ENV_PREFIX}ALL_KWOK_NODES (--all-kwok-nodes), not both"
            )
        if not self.all_kwok_nodes and not self.node:
            raise ValueError(
                f"name the node: {ENV_PREFIX}NODE (--node NAME), or, with the simulated backend, "
                f"{ENV_PREFIX}ALL_KWOK_NODES=true (--all-kwok-nodes)"
            )
        return self
