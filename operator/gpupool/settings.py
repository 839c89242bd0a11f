"""The operator's settings: one pydantic settings object, read from `GPUPOOL_*` variables.

Who uses this: `gpupool.controllers.runner` builds it once at start-up and hands it down;
no other module reads the environment for configuration. Helm values become these
environment variables (see the chart); every field says what it does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Knobs of `gpupool operator run`; defaults are safe for production."""

    model_config = SettingsConfigDict(env_prefix="GPUPOOL_", extra="ignore")

    schedule_interval_seconds: float = Field(
        default=2.0, gt=0, description="Longest pause between two scheduling cycles; events wake the loop earlier."
    )
    placement_policy: str = Field(
        default="default",
        description="Placement scoring policy of the core (`default`, `fgd`, `bestfit`, `random`, ...).",
    )
    fair_share_half_life_seconds: float = Field(
        default=3600.0, gt=0, description="Half-life of the decayed GPU usage that fair share compares."
    )
    health_host: str = Field(default="0.0.0.0", description="Address the liveness/readiness server binds.")
    health_port: int = Field(default=8080, ge=0, le=65535, description="Port of /healthz and /readyz (0 = off).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="`json` for one structured object per line, `text` for people."
    )
    scheduler_name: str = Field(
        default="gpupool", description="`schedulerName` set on worker pods; kube-scheduler leaves them alone."
    )
