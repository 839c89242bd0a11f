"""The one place money and held GPUs are computed (`gpupool.core.accounting`), as tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpupool.core.accounting import (
    HeldWorker,
    NodeHourPrices,
    PoolPricing,
    PriceBook,
    PriceUnit,
    WorkerUse,
    attempt_accrual,
    cost_per_hour,
    holdings,
)

BOOK = PriceBook.of(
    [
        PoolPricing("onprem", cloud=False, gpus_per_node=4, prices=NodeHourPrices(amortised=8.0)),
        PoolPricing("cloud", cloud=True, gpus_per_node=8, prices=NodeHourPrices(on_demand=32.0, spot=8.0)),
        PoolPricing("free", cloud=True, gpus_per_node=8, prices=NodeHourPrices(amortised=5.0, on_demand=0.0)),
        PoolPricing("cpu", cloud=False, gpus_per_node=0, prices=NodeHourPrices(amortised=16.0), cores_per_node=32),
    ]
)


@pytest.mark.parametrize(
    ("prices", "spot", "expected"),
    [
        (NodeHourPrices(amortised=8.0), False, 8.0),
        (NodeHourPrices(amortised=8.0, on_demand=12.0), False, 12.0),
        (NodeHourPrices(amortised=5.0, on_demand=0.0), False, 0.0),
        (NodeHourPrices(on_demand=12.0, spot=3.0), True, 3.0),
        (NodeHourPrices(on_demand=12.0, spot=0.0), True, 0.0),
        (NodeHourPrices(on_demand=12.0), True, 12.0),
        (NodeHourPrices(), False, 0.0),
    ],
    ids=[
        "amortised",
        "on-demand-over-amortised",
        "zero-is-a-price",
        "spot",
        "spot-zero",
        "spot-node-without-spot-price",
        "unpriced",
    ],
)
def test_the_node_hour_price_rule(prices: NodeHourPrices, spot: bool, expected: float) -> None:
    assert prices.of(spot=spot) == expected


@dataclass(frozen=True)
class Bill:
    workers: tuple[WorkerUse, ...]
    hours: float
    gpu_seconds: float
    cost: float
    cloud_cost: float


BILLS = {
    # 2 workers x 2 GPUs x (8 / 4 per GPU-hour) x 1.5 h
    "whole GPUs on-prem": Bill((WorkerUse("onprem", False, 2.0),) * 2, 1.5, 2 * 2 * 5400.0, 12.0, 0.0),
    # a 0.5 share at 32 / 8 per GPU-hour for 2 h
    "a share on a cloud node": Bill((WorkerUse("cloud", False, 0.5),), 2.0, 3600.0, 4.0, 4.0),
    # 1 GPU at 8 / 8 per GPU-hour (spot) for 3 h
    "a spot node": Bill((WorkerUse("cloud", True, 1.0),), 3.0, 10800.0, 3.0, 3.0),
    # onDemand 0 is the price, amortised 5 is not used
    "onDemand 0": Bill((WorkerUse("free", False, 4.0),), 1.0, 14400.0, 0.0, 0.0),
    # 4 cores of a 64-core node at 16 / 64 per core-hour for 2 h; no GPU-seconds
    "a CPU run": Bill((WorkerUse("cpu", False, 0.0, cores=4.0, node_cores=64.0),), 2.0, 0.0, 2.0, 0.0),
    # a node not known: the pool's cpuPerNode (32 cores)
    "a CPU run on an unknown node": Bill((WorkerUse("cpu", False, 0.0, cores=4.0),), 1.0, 0.0, 2.0, 0.0),
    "a pool not in the book": Bill((WorkerUse("gone", False, 1.0),), 1.0, 3600.0, 0.0, 0.0),
}


@pytest.mark.parametrize("case", BILLS.values(), ids=BILLS.keys())
def test_an_attempt_accrues_each_workers_units_at_its_rate(case: Bill) -> None:
    start = 1_000.0
    accrual = attempt_accrual(BOOK, case.workers, start, start + case.hours * 3600)
    assert (accrual.started, accrual.ended) == (start, start + case.hours * 3600)
    assert accrual.gpu_seconds == pytest.approx(case.gpu_seconds)
    assert accrual.cost == pytest.approx(case.cost)
    assert accrual.cloud_cost == pytest.approx(case.cloud_cost)
    assert cost_per_hour(BOOK, case.workers) * case.hours == pytest.approx(case.cost)


def test_an_attempt_that_has_not_run_yet_accrues_nothing() -> None:
    accrual = attempt_accrual(BOOK, (WorkerUse("onprem", False, 1.0),), 500.0, 400.0)
    assert (accrual.ended, accrual.gpu_seconds, accrual.cost) == (500.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("pool", "spot", "price", "unit"),
    [
        ("onprem", False, 2.0, PriceUnit.GPU),
        ("cloud", True, 1.0, PriceUnit.GPU),
        ("cpu", False, 0.5, PriceUnit.CPU_CORE),
        ("gone", False, 0.0, PriceUnit.GPU),
    ],
)
def test_a_rate_names_its_unit(pool: str, spot: bool, price: float, unit: PriceUnit) -> None:
    rate = BOOK.rate(pool, spot=spot)
    assert (rate.price, rate.unit) == (price, unit)


def test_holdings_sum_by_queue_flavor_and_the_pool_of_the_node() -> None:
    held = holdings(
        [
            HeldWorker("a", "onprem", "model:A100", 2.0),
            HeldWorker("a", "onprem", "model:A100", 0.5),
            HeldWorker("a", "cloud", "pool:cloud", 1.0),
            HeldWorker("b", "onprem", None, 1.0),  # no quota entry for it
            HeldWorker("b", None, "model:A100", 4.0),  # its node is gone
        ]
    )
    assert held.by_queue == {"a": 3.5, "b": 5.0}
    assert held.flavors_of("a") == {"model:A100": 2.5, "pool:cloud": 1.0}
    assert held.flavors_of("b") == {"model:A100": 4.0}
    assert (held.of_pool("onprem"), held.of_pool("cloud"), held.of_pool("cpu")) == (3.5, 1.0, 0.0)
