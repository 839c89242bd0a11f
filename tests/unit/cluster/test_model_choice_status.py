"""A profiled job admitted by its roofline choice: `status.modelChoice` and the `ModelChosen`
event, written by the loop through the recording writer; and the hardware the snapshot
hands the core (the catalogue, pool overrides, GPU-hour prices)."""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import gpujob_object, gpunodepool_object, gpuqueue_object, node_object
from builders.loop import rig
from gpupool.api import parse_gpunodepool
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.snapshot import hardware_of, pool_info
from gpupool.core.roofline import GpuSpec

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# Memory-bound at 20 FLOP/byte: L40S attains 20 x 864 GB/s = 17.28 TF, H100 20 x 3350 GB/s
# = 67 TF. 17.28e12 x 7560 FLOP take 7560 s (2.1 h) on one L40S, 1950 s (33 min) on one H100.
PROFILE = {"operationalIntensity": 20, "totalFlops": 17.28e12 * 7560}


def cluster(profile: dict[str, Any] | None, *, budget: bool = True) -> list[dict[str, Any]]:
    queue_spec: dict[str, Any] = {"budget": {"amount": 1000, "currency": "EUR"}} if budget else {}
    job_spec = {"profile": profile} if profile is not None else {}
    return [
        # 1 per GPU-hour (8 a node-hour over 8 GPUs) and 5 per GPU-hour.
        gpunodepool_object("l40s", model="L40S", pricePerNodeHour={"amortised": 8.0}),
        gpunodepool_object("h100", model="H100", pricePerNodeHour={"amortised": 40.0}),
        node_object("l40s-0", model="L40S", labels={"gpupool.io/pool": "l40s"}),
        node_object("h100-0", model="H100", labels={"gpupool.io/pool": "h100"}),
        gpuqueue_object(
            "q", quotas=[{"gpuModel": "L40S", "nominal": 8}, {"gpuModel": "H100", "nominal": 8}], **queue_spec
        ),
        gpujob_object(**job_spec),
    ]


def test_the_choice_is_written_to_status_and_told_in_an_event() -> None:
    r = rig(cluster(PROFILE), clock=NOW)
    r.loop.cycle()
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    choice = entry.parsed.api.status.model_choice
    # L40S: 2.1 h x 1 = 2.1; H100: 0.54 h x 5 = 2.71.
    assert (choice.model, choice.pool, choice.optimize) == ("L40S", "l40s", "Cost")
    assert (choice.estimated_seconds, choice.estimated_cost) == (pytest.approx(7560), pytest.approx(2.1))
    assert [(a.model, a.pool) for a in choice.alternatives] == [("H100", "h100")]
    assert entry.parsed.api.status.placement[0].node == "l40s-0"
    assert [c[1] for c in r.job_calls() if c[0] == "emit_event"] == ["Queued", "Admitted", "ModelChosen"]
    (message,) = [m for _, reason, m in r.writer.events if reason == "ModelChosen"]
    assert message == (
        "placed on L40S (pool l40s) for the lowest estimated cost: estimated 2.1 h, 2.1 EUR; "
        "H100 would be 32 min, 2.71 EUR"
    )


def test_time_takes_the_fast_model_and_says_so() -> None:
    r = rig(cluster({**PROFILE, "optimize": "Time"}, budget=False), clock=NOW)
    r.loop.cycle()
    (message,) = [m for _, reason, m in r.writer.events if reason == "ModelChosen"]
    assert message == (
        "placed on H100 (pool h100) for the shortest estimated time: estimated 32 min, cost 2.71; "
        "L40S would be 2.1 h, cost 2.1"
    )


def test_a_job_without_a_profile_gets_neither() -> None:
    r = rig(cluster(None), clock=NOW)
    r.loop.cycle()
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    assert entry.parsed.api.status.model_choice is None
    assert [c[1] for c in r.job_calls() if c[0] == "emit_event"] == ["Queued", "Admitted"]


def test_hardware_holds_the_catalogue_pool_overrides_and_prices() -> None:
    faster = {"peakTflopsFp16": 400, "peakTflopsFp32": 100, "memoryBandwidthGBps": 1000}
    pools = {
        name: pool_info(pool)
        for name, pool in (
            ("tuned", parse_gpunodepool(gpunodepool_object("tuned", model="L40S", gpuModelSpec=faster))),
            ("new", parse_gpunodepool(gpunodepool_object("new", model="X1", gpuModelSpec=faster))),
            (
                "spot",
                parse_gpunodepool(
                    gpunodepool_object("spot", model="L40S", pricePerNodeHour={"onDemand": 16.0, "spot": 4.0})
                ),
            ),
        )
    }
    catalogue = {"L40S": GpuSpec("L40S", 362.05, 91.6, 864)}
    hardware = hardware_of(pools, catalogue)
    assert hardware.spec_for("tuned", "L40S") == GpuSpec("L40S", 400, 100, 1000)
    assert hardware.spec_for("spot", "L40S") == catalogue["L40S"]
    assert hardware.models["X1"] == GpuSpec("X1", 400, 100, 1000)
    assert hardware.models["L40S"] == catalogue["L40S"]
    assert (hardware.gpu_hour_price("spot", False), hardware.gpu_hour_price("spot", True)) == (2.0, 0.5)
