"""The price of a GPU-hour from a GPUNodePool's node-hour price."""

from __future__ import annotations

from typing import Any

import pytest

from gpupool.api import parse_gpunodepool
from gpupool.cluster.translate.snapshot import gpu_hour_price


def make_pool(price: dict[str, Any] | None, pool_class: str = "Cloud", gpus: int = 8) -> Any:
    spec: dict[str, Any] = {"class": pool_class, "gpuModel": "H100", "gpusPerNode": gpus, "provider": "Static"}
    if price is not None:
        spec["pricePerNodeHour"] = price
    return parse_gpunodepool(
        {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "p"}, "spec": spec}
    )


@pytest.mark.parametrize(
    ("pool", "spot", "expected"),
    [
        (make_pool({"amortised": 16.0}, pool_class="OnPrem"), False, 2.0),
        (make_pool({"onDemand": 98.32}), False, 12.29),
        (make_pool({"onDemand": 98.32, "spot": 40.0}), True, 5.0),
        (make_pool({"onDemand": 98.32}), True, 12.29),
        (make_pool(None), False, 0.0),
    ],
    ids=["on-prem-amortised", "cloud-on-demand", "cloud-spot", "spot-node-without-spot-price", "no-price"],
)
def test_gpu_hour_price(pool: Any, spot: bool, expected: float) -> None:
    assert gpu_hour_price(pool, spot=spot) == pytest.approx(expected)
