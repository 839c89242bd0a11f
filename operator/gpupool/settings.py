"""The operator's settings: one pydantic settings object, read from `GPUPOOL_*` variables.

Who uses this: `gpupool.controllers.runner` builds it once at start-up and hands it down;
no other module reads the environment for configuration. Every field says what it does.
A bad value stops the operator at start-up with the variable named and, for names, the
list of valid values (`settings_problems` words it), never inside a scheduling cycle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gpupool.cluster.kube.leader import LeaseTiming
from gpupool.cluster.writes.reservations import DEFAULT_IMAGE as DEFAULT_RESERVATION_IMAGE
from gpupool.cluster.writes.reservations import ReservationSettings
from gpupool.core.placement.registry import SCORING_POLICY_NAMES

ENV_PREFIX = "GPUPOOL_"


class OperatorSettings(BaseSettings):
    """Knobs of `gpupool operator run`; defaults are safe for production."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    schedule_interval_seconds: float = Field(
        default=2.0, gt=0, description="Longest pause between two scheduling cycles; events wake the loop earlier."
    )
    placement_policy: str = Field(
        default="default",
        description="Which scoring function places workers on nodes: "
        + ", ".join(f"`{name}`" for name in SCORING_POLICY_NAMES)
        + " (a job's spec.placement chooses which pools, not this).",
    )
    fair_share_half_life_seconds: float = Field(
        default=3600.0, gt=0, description="Half-life of the decayed GPU usage that fair share compares."
    )
    health_host: str = Field(default="0.0.0.0", description="Address the liveness/readiness server binds.")
    health_port: int = Field(default=8080, ge=0, le=65535, description="Port of /healthz and /readyz (0 = off).")
    metrics_host: str = Field(default="0.0.0.0", description="Address the Prometheus metrics server binds.")
    metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of /metrics, for Prometheus to scrape (0 = off)."
    )
    metrics_opencost: bool = Field(
        default=True,
        description="Also export OpenCost-compatible node price and container GPU allocation series "
        "(turn off when the same Prometheus scrapes OpenCost).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json` for one structured object per line, `text` for people."
    )
    scheduler_name: str = Field(
        default="gpupool", description="`schedulerName` set on worker pods; kube-scheduler leaves them alone."
    )
    write_concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Writes of different jobs the operator sends to the API server at once.",
    )
    resync_seconds: float = Field(
        default=300.0, gt=0, description="Seconds between full re-lists that repair anything a watch missed."
    )
    kwok_failure_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Kwok pools only: the fraction of node launches that fail (simulated), for fault tests.",
    )
    leader_election: bool = Field(
        default=False,
        description="Run as one of several replicas: only the holder of the leader Lease schedules and writes; "
        "the others keep their cache warm and take over when the Lease expires.",
    )
    leader_election_namespace: str = Field(default="default", description="Namespace of the leader Lease.")
    leader_election_lease_name: str = Field(default="gpupool-leader", description="Name of the leader Lease.")
    leader_election_lease_duration_seconds: int = Field(
        default=15,
        gt=0,
        description="How long a standby waits, after it last saw the Lease change, before taking it over.",
    )
    leader_election_renew_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the leader keeps writing without a successful renewal; then it exits.",
    )
    leader_election_retry_period_seconds: float = Field(
        default=2.0, gt=0, description="Seconds between two attempts to renew (leader) or acquire (standby)."
    )
    share_reservations: bool = Field(
        default=True,
        description="On nodes that report their pods' devices, hold each GPU that carries shares with one "
        "reservation pod requesting nvidia.com/gpu: 1, so the kubelet never hands it to another pod; the shares "
        "get its UUID. false: shares are told their GPU by index and nothing protects it (for tests).",
    )
    share_reservation_namespace: str = Field(
        default="",
        description="Namespace of the reservation pods; empty: the operator's own (leaderElectionNamespace, which "
        "the chart sets to the release namespace).",
    )
    share_reservation_image: str = Field(
        default=DEFAULT_RESERVATION_IMAGE,
        min_length=1,
        description="Image of the reservation pods' one container: anything that runs and does nothing "
        "(a pause image).",
    )
    share_reservation_command: str = Field(
        default="",
        description="Command of the reservation pods' container, as shell words (e.g. `sleep infinity`); empty: "
        "the image's own.",
    )

    share_reservation_host_network: bool = Field(
        default=False,
        description="Run the reservation pods in the node's network namespace (hostNetwork): they then need no "
        "pod IP, but Pod Security's baseline level refuses them; for nodes without a pod network (the dev "
        "cluster's real node).",
    )

    @property
    def reservations(self) -> ReservationSettings:
        """How share reservation pods are made (`gpupool.cluster.writes.reservations`)."""
        return ReservationSettings(
            enabled=self.share_reservations,
            namespace=self.share_reservation_namespace or self.leader_election_namespace,
            image=self.share_reservation_image,
            command=ReservationSettings.command_of(self.share_reservation_command),
            host_network=self.share_reservation_host_network,
            scheduler_name=self.scheduler_name,
        )

    @property
    def lease_timing(self) -> LeaseTiming:
        return LeaseTiming(
            self.leader_election_lease_duration_seconds,
            self.leader_election_renew_deadline_seconds,
            self.leader_election_retry_period_seconds,
        )

    @model_validator(mode="after")
    def _usable_lease_timing(self) -> OperatorSettings:
        problems = self.lease_timing.problems()
        if problems:
            raise ValueError("GPUPOOL_LEADER_ELECTION_*: " + "; ".join(problems))
        return self

    @field_validator("share_reservation_command")
    @classmethod
    def _shell_words(cls, value: str) -> str:
        try:
            ReservationSettings.command_of(value)
        except ValueError as error:
            raise ValueError(f"not a command line ({error}); write it as shell words, e.g. sleep infinity") from None
        return value

    @field_validator("placement_policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        if value not in SCORING_POLICY_NAMES:
            raise ValueError(f"unknown placement policy {value!r}; choose one of {', '.join(SCORING_POLICY_NAMES)}")
        return value


def settings_problems(error: ValidationError, prefix: str = ENV_PREFIX) -> str:
    """One line per bad setting, naming its environment variable and what is wrong (a
    problem of the settings as a whole, with no one field to blame, is shown alone)."""
    lines = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"])
        lines.append(f"  {prefix}{name.upper()}: {problem['msg']}" if name else f"  {problem['msg']}")
    return "\n".join(lines)
