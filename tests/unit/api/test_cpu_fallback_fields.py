"""GPUJob `spec.cpuFallback` / `spec.cpuFallbackAfter` and CPU pools (`gpusPerNode: 0`): what
parses, what is refused (the error names the field), the CRDs' rules, and the core `Job`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from builders.api import gpujob
from gpupool.api import KINDS, GPUJobSpec, GPUNodePoolSpec
from gpupool.api.crdgen import crd_document
from gpupool.cluster.translate.convert import job_from_api
from gpupool.core.models import CpuFallback

TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def job_spec(**fields: Any) -> dict[str, Any]:
    return {"queue": "q", "template": TEMPLATE, **fields}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(job_spec(cpuFallback="Preferred", workers=2, cpu="4"), "spec.cpuFallback", id="two-workers"),
        pytest.param(job_spec(cpuFallback="Allowed"), "spec.cpuFallback", id="no-cpu"),
        pytest.param(job_spec(cpuFallback="Sometimes", cpu="4"), "cpuFallback", id="unknown-value"),
        pytest.param(job_spec(cpuFallback="Allowed", cpu="4", cpuFallbackAfter="5 min"), "cpuFallbackAfter", id="dur"),
    ],
)
def test_a_bad_cpu_fallback_names_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        GPUJobSpec.model_validate(data)
    assert field in str(error.value)


@pytest.mark.parametrize(
    "data",
    [
        job_spec(),
        job_spec(cpuFallback="Never", workers=4),
        job_spec(cpuFallback="Preferred", cpu="8"),
        job_spec(cpuFallback="Allowed", cpu="500m", cpuFallbackAfter="1h30m", gpus=0.5),
    ],
    ids=["unset", "never-any-gang", "preferred", "allowed-with-bound"],
)
def test_good_cpu_fallback_specs_parse(data: dict[str, Any]) -> None:
    GPUJobSpec.model_validate(data)


POOL = {"class": "OnPrem", "nodeSelector": {"gpupool.io/pool": "p"}}


@pytest.mark.parametrize(
    ("model", "gpus", "ok"),
    [("CPU", 0, True), ("A100", 8, True), ("A100", 0, False), ("CPU", 8, False)],
    ids=["cpu-pool", "gpu-pool", "zero-gpus-of-a-gpu-model", "cpu-with-gpus"],
)
def test_a_cpu_pool_has_model_cpu_and_no_gpus(model: str, gpus: int, ok: bool) -> None:
    data = {**POOL, "gpuModel": model, "gpusPerNode": gpus}
    if ok:
        GPUNodePoolSpec.model_validate(data)
        return
    with pytest.raises(ValidationError) as error:
        GPUNodePoolSpec.model_validate(data)
    assert "gpusPerNode" in str(error.value) and "spec.gpuModel must be CPU" in str(error.value)


def rules(kind: str) -> list[str]:
    crd = crd_document(next(info for info in KINDS if info.kind == kind))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return [r["rule"] for r in spec.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("GPUJob", "self.cpuFallback == 'Never'"), ("GPUNodePool", "(self.gpusPerNode == 0) == (self.gpuModel == 'CPU')")],
)
def test_the_crds_carry_the_rules(kind: str, fragment: str) -> None:
    assert any(fragment in rule for rule in rules(kind))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (CpuFallback.NEVER, 300.0, 1000)),
        ({"cpuFallback": "Preferred", "cpu": "4", "cpuFallbackAfter": "10m"}, (CpuFallback.PREFERRED, 600.0, 1000)),
        (
            {"cpuFallback": "Allowed", "cpu": "4", "phase": "Running", "status": {"device": "CPU", "placement": []}},
            (CpuFallback.ALLOWED, 300.0, 0),
        ),
        (
            {"cpuFallback": "Allowed", "cpu": "4", "phase": "Queued", "status": {"device": "CPU"}},
            (CpuFallback.ALLOWED, 300.0, 1000),
        ),
    ],
    ids=["default-never", "preferred-10m", "running-on-cpu-holds-no-gpu", "queued-again-asks-for-its-gpu"],
)
def test_the_core_job_carries_the_fallback(fields: dict[str, Any], expected: tuple[CpuFallback, float, int]) -> None:
    core = job_from_api(gpujob(**fields))
    assert (core.cpu_fallback, core.cpu_fallback_after_seconds, core.shape.gpu_milli) == expected
