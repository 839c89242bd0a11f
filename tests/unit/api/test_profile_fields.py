"""GPUJob `spec.profile`, GPUNodePool `spec.gpuModelSpec` and `status.modelChoice`: what parses,
what is refused (the error names the field), and what the converters make of it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from builders.api import gpujob, gpunodepool_object
from gpupool.api import GPUJobSpec, GPUNodePoolSpec, ModelChoiceStatus, parse_gpunodepool
from gpupool.cluster.translate.convert import gpu_spec_of_pool, job_from_api
from gpupool.core.roofline import GpuSpec, JobProfile, Optimize, Precision, ReferenceRuntime

TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
POOL = {"class": "OnPrem", "gpuModel": "L40S", "gpusPerNode": 8}
SPEC = {"peakTflopsFp16": 362.05, "peakTflopsFp32": 91.6, "memoryBandwidthGBps": 864, "memoryGiB": 48}


def job_spec(profile: dict[str, Any]) -> dict[str, Any]:
    return {"queue": "q", "template": TEMPLATE, "profile": profile}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(job_spec({"totalFlops": 1e18}), "operationalIntensity", id="intensity-missing"),
        pytest.param(job_spec({"operationalIntensity": 0, "totalFlops": 1e18}), "operationalIntensity", id="zero-oi"),
        pytest.param(job_spec({"operationalIntensity": 10, "totalFlops": -1}), "totalFlops", id="negative-flops"),
        pytest.param(job_spec({"operationalIntensity": 10}), "spec.profile.totalFlops", id="no-work"),
        pytest.param(
            job_spec(
                {"operationalIntensity": 10, "totalFlops": 1, "referenceRuntime": {"model": "A100", "seconds": 1}}
            ),
            "spec.profile.referenceRuntime",
            id="both-kinds-of-work",
        ),
        pytest.param(
            job_spec({"operationalIntensity": 10, "referenceRuntime": {"model": "A100", "seconds": 0}}),
            "seconds",
            id="zero-reference-seconds",
        ),
        pytest.param(
            job_spec({"operationalIntensity": 10, "referenceRuntime": {"seconds": 5}}), "model", id="reference-no-model"
        ),
        pytest.param(
            job_spec({"operationalIntensity": 10, "totalFlops": 1, "precision": "FP8"}), "precision", id="bad-precision"
        ),
        pytest.param(
            job_spec({"operationalIntensity": 10, "totalFlops": 1, "optimize": "Speed"}), "optimize", id="bad-optimize"
        ),
        pytest.param(
            job_spec({"operationalIntensity": 10, "totalFlops": 1, "flops": 2}), "flops", id="unknown-profile-field"
        ),
    ],
)
def test_profile_refusals_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        GPUJobSpec.model_validate(data)
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({**SPEC, "peakTflopsFp16": 0}, "peakTflopsFp16", id="zero-fp16"),
        pytest.param({**SPEC, "peakTflopsFp32": -1}, "peakTflopsFp32", id="negative-fp32"),
        pytest.param({k: v for k, v in SPEC.items() if k != "memoryBandwidthGBps"}, "memoryBandwidthGBps", id="no-bw"),
        pytest.param({**SPEC, "memoryGiB": 0}, "memoryGiB", id="zero-memory"),
        pytest.param({**SPEC, "memoryBandwidthGbps": 1}, "memoryBandwidthGbps", id="misspelt-field"),
    ],
)
def test_gpu_model_spec_refusals_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        GPUNodePoolSpec.model_validate({**POOL, "gpuModelSpec": data})
    assert field in str(err.value)


def test_profile_defaults_and_conversion() -> None:
    job = gpujob(profile={"operationalIntensity": 12.5, "totalFlops": 3e18})
    assert job_from_api(job).profile == JobProfile(12.5, total_flops=3e18)
    measured = gpujob(
        profile={
            "operationalIntensity": 80,
            "referenceRuntime": {"model": "A100", "seconds": 7200},
            "precision": "FP32",
            "optimize": "Time",
        }
    )
    assert job_from_api(measured).profile == JobProfile(
        80, reference=ReferenceRuntime("A100", 7200), precision=Precision.FP32, optimize=Optimize.TIME
    )
    assert job_from_api(gpujob()).profile is None


def test_pool_gpu_model_spec_conversion() -> None:
    pool = parse_gpunodepool(gpunodepool_object("l40s", model="L40S", gpuModelSpec=SPEC))
    assert gpu_spec_of_pool(pool) == GpuSpec("L40S", 362.05, 91.6, 864, 48)
    assert gpu_spec_of_pool(parse_gpunodepool(gpunodepool_object("plain"))) is None


def test_model_choice_status_reads_camel_case() -> None:
    status = ModelChoiceStatus.model_validate(
        {
            "model": "L40S",
            "pool": "cloud-l40s",
            "optimize": "Cost",
            "estimatedSeconds": 7560,
            "estimatedCost": 18,
            "alternatives": [{"model": "H100", "estimatedSeconds": 6840, "estimatedCost": 41}],
        }
    )
    assert status.alternatives[0].estimated_cost == 41
