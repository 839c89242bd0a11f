"""Wording of requests in waiting messages."""

from __future__ import annotations

import pytest

from builders import make_job
from gpupool.core.reasons import describe_request


@pytest.mark.parametrize(
    ("job", "text"),
    [
        pytest.param(make_job(gpus=1), "1 GPU", id="one GPU"),
        pytest.param(make_job(gpus=8, models=("H100",)), "8 GPUs (H100)", id="whole GPUs with a model"),
        pytest.param(make_job(gpus=0.5), "0.5 GPU", id="a share of one GPU"),
        pytest.param(make_job(gpus=8, workers=4), "4 x 8 GPUs", id="a gang"),
    ],
)
def test_describe_request(job: object, text: str) -> None:
    assert describe_request(job) == text  # type: ignore[arg-type]
