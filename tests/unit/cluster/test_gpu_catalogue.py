"""The GPU model catalogue shipped with gpupool (`gpupool.catalogue`): complete, sourced, and
covering the models the repository's examples, benchmarks and tests name; bad files are
refused with the entry and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.catalogue import CatalogueError, gpu_catalogue, load_gpu_catalogue
from gpupool.core.roofline import Precision, ridge_point

# Models named by examples/, bench/cloud_catalogue.yaml (but its undisclosed G2, G3) and tests.
USED = ("H100", "A100", "L40S", "T4", "V100", "V100M16", "V100M32", "A10", "P100", "GTX1080")


def test_the_shipped_catalogue_covers_the_models_in_use() -> None:
    catalogue = gpu_catalogue()
    assert set(USED) <= set(catalogue)


def test_the_gtx_1080_ridge_point() -> None:
    # 8.873 TFLOPS FP32 (the GP104 whitepaper's 8873 GFLOPS) over 320 GB/s: 27.7 FLOP/byte.
    gtx = gpu_catalogue()["GTX1080"]
    assert (gtx.peak_tflops_fp32, gtx.memory_bandwidth_gbps) == (8.873, 320)
    assert ridge_point(gtx, Precision.FP32) == pytest.approx(27.73, abs=0.01)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("nothing: here\n", "models:", id="no-models-list"),
        pytest.param("models:\n  - peak_tflops_fp16: 1\n", "model must be", id="no-model-name"),
        pytest.param(
            "models:\n  - {model: X, peak_tflops_fp16: 1, peak_tflops_fp32: 1, memory_bandwidth_gbps: 1,"
            " memory_gib: 1}\n",
            "(X): source",
            id="no-source",
        ),
        pytest.param(
            "models:\n  - {model: X, source: s, peak_tflops_fp16: 0, peak_tflops_fp32: 1,"
            " memory_bandwidth_gbps: 1, memory_gib: 1}\n",
            "peak_tflops_fp16 must be a number > 0",
            id="zero-peak",
        ),
        pytest.param(
            "models:\n  - {model: X, source: s, peak_tflops_fp16: 1, peak_tflops_fp32: 1,"
            " memory_bandwidth_gbps: 1, memory_gib: 1, bandwidth: 2}\n",
            "unknown field(s) bandwidth",
            id="unknown-field",
        ),
        pytest.param(
            "models:\n"
            + "  - {model: X, source: s, peak_tflops_fp16: 1, peak_tflops_fp32: 1, memory_bandwidth_gbps: 1,"
            " memory_gib: 1}\n" * 2,
            "listed twice",
            id="duplicate",
        ),
    ],
)
def test_bad_catalogues_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gpu_models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_gpu_catalogue(path)
    assert message in str(err.value)
