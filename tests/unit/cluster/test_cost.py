"""The price rule (`gpupool.core.accounting`) read from a GPUNodePool's `pricePerNodeHour`:
GPU-hour prices and the offers the autoscaler weighs come from one rule, in which 0 is a price."""

from __future__ import annotations

from typing import Any

import pytest

from gpupool.api import parse_gpunodepool
from gpupool.cluster.translate.accounting import pool_pricing


def make_pool(price: dict[str, Any] | None, pool_class: str = "Cloud", gpus: int = 8) -> Any:
    spec: dict[str, Any] = {"class": pool_class, "gpuModel": "H100", "gpusPerNode": gpus, "provider": "Static"}
    if price is not None:
        spec["pricePerNodeHour"] = price
    return parse_gpunodepool(
        {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": "p"}, "spec": spec}
    )


@pytest.mark.parametrize(
    ("price", "pool_class", "spot", "gpu_hour", "offers"),
    [
        ({"amortised": 16.0}, "OnPrem", False, 2.0, ((False, 16.0),)),
        ({"onDemand": 98.32}, "Cloud", False, 12.29, ((False, 98.32),)),
        ({"onDemand": 98.32, "spot": 40.0}, "Cloud", True, 5.0, ((False, 98.32), (True, 40.0))),
        ({"onDemand": 98.32}, "Cloud", True, 12.29, ((False, 98.32),)),
        (None, "Cloud", False, 0.0, ((False, 0.0),)),
        # 0 is a price, not a missing one: on-demand 0 wins over amortised 5, and a spot price of 0 is paid
        ({"onDemand": 0, "amortised": 5.0}, "Cloud", False, 0.0, ((False, 0.0),)),
        ({"onDemand": 8.0, "spot": 0}, "Cloud", True, 0.0, ((False, 8.0), (True, 0.0))),
        # a spot-only pool offers only spot; an on-prem pool never offers spot
        ({"spot": 4.0}, "Cloud", True, 0.5, ((True, 4.0),)),
        ({"amortised": 16.0, "spot": 4.0}, "OnPrem", False, 2.0, ((False, 16.0),)),
    ],
    ids=[
        "on-prem-amortised",
        "cloud-on-demand",
        "cloud-spot",
        "spot-node-without-spot-price",
        "no-price",
        "on-demand-zero-over-amortised",
        "spot-zero",
        "spot-only",
        "on-prem-spot-not-offered",
    ],
)
def test_one_price_rule_for_gpu_hours_and_offers(
    price: dict[str, Any] | None, pool_class: str, spot: bool, gpu_hour: float, offers: tuple[tuple[bool, float], ...]
) -> None:
    pricing = pool_pricing(make_pool(price, pool_class=pool_class))
    assert pricing.gpu_hour(spot=spot) == pytest.approx(gpu_hour)
    assert pricing.offers() == offers
