"""Each pool's class, GPU model and GPU-hour prices are exported (the chargeback report reads them)."""

from __future__ import annotations

from builders.api import gpunodepool_object, gpuqueue_object
from builders.loop import rig


def test_pool_info_and_gpu_hour_prices_per_capacity() -> None:
    onprem = gpunodepool_object("rack", model="A100", gpus_per_node=8, pricePerNodeHour={"amortised": 16.0})
    cloud = gpunodepool_object("aws", model="H100", gpus_per_node=4, pricePerNodeHour={"onDemand": 40.0, "spot": 12.0})
    cloud["spec"]["class"] = "Cloud"
    unpriced = gpunodepool_object("lab", model="T4")
    r = rig([onprem, cloud, unpriced, gpuqueue_object("q")], clock=1_767_225_600.0)
    r.loop.cycle()

    assert r.metric("gpupool_pool_info", pool="rack", pool_class="on_prem", gpu_model="A100") == 1
    assert r.metric("gpupool_pool_info", pool="aws", pool_class="cloud", gpu_model="H100") == 1
    assert r.metric("gpupool_pool_info", pool="lab", pool_class="on_prem", gpu_model="T4") == 1
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="rack", capacity="on_demand") == 2.0  # 16 / 8
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="rack", capacity="spot") is None
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="aws", capacity="on_demand") == 10.0  # 40 / 4
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="aws", capacity="spot") == 3.0  # 12 / 4
    assert r.metric("gpupool_pool_gpu_hourly_price", pool="lab", capacity="on_demand") is None
