"""The claim reconciler over the recording writer and provider: claims are made once per
requested node, follow their node to Ready, fail over, and idle nodes are given back."""

from __future__ import annotations

from typing import Any

from builders.api import gpujob_object, gpunodepool_object, gpuqueue_object, namespace_object, node_object
from builders.loop import Rig, rig
from gpupool.api import ClaimPhase, GPUNodeClaim, JobPhase
from gpupool.cluster.nodes.claims import MAX_LAUNCH_ATTEMPTS, claim_name
from gpupool.cluster.nodes.kwok_nodes import pool_node_spec
from gpupool.cluster.nodes.providers import CapacityUnavailable, ProviderTransient
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.state.parsing import parse_object_of
from gpupool.cluster.writes.recording import RecordingProvider

CLOUD_POOL = gpunodepool_object(
    "cloud",
    model="A100",
    **{"class": "Cloud", "provider": "Kwok", "pricePerNodeHour": {"onDemand": 20.0}, "scaleDownAfter": "60s"},
)


class Clock:
    """The loop's time; a test moves it on."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def world(*jobs: dict[str, Any]) -> tuple[Rig, RecordingProvider, Clock]:
    """An on-prem A100 node, a Kwok cloud pool and a queue that may burst; `jobs` pending."""
    provider = RecordingProvider()
    clock = Clock()
    objects = [
        namespace_object("ns"),
        node_object("onprem", model="A100", gpus="0"),
        gpuqueue_object("q", quotas=[{"gpuModel": "A100", "nominal": 64}], allowCloud=True),
        CLOUD_POOL,
        *jobs,
    ]
    return rig(objects, clock=clock, provider=provider), provider, clock


def burst_job(name: str = "train", workers: int = 2) -> dict[str, Any]:
    return gpujob_object(name, queue="q", gpus=8, workers=workers, placement="CloudAllowed")


def claims(r: Rig) -> dict[str, GPUNodeClaim]:
    return r.cache.view().parsed(Kind.CLAIM)


def node_registers(r: Rig, name: str) -> None:
    """The node the provider launched for claim `name` appears, Ready."""
    pool, _ = parse_object_of(Kind.POOL, CLOUD_POOL)
    manifest = pool_node_spec(pool, name, spot=False).manifest()
    manifest["metadata"]["resourceVersion"] = "1"
    manifest["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    r.cache.upsert(Kind.NODE, manifest)


def test_a_gang_gets_one_claim_per_node_and_runs_when_they_are_ready() -> None:
    r, provider, clock = world(burst_job())
    r.loop.cycle()
    made = claims(r)
    assert sorted(made) == sorted(claim_name("cloud", False, ["ns/train"], i) for i in range(2))
    assert all(c.spec.jobs == ["ns/train"] for c in made.values())

    clock.now += 1
    r.loop.cycle()  # launched: Registered
    assert {c.status.phase for c in claims(r).values()} == {ClaimPhase.REGISTERED}
    assert sorted(c.target for c in provider.calls) == sorted(made)

    for name in made:
        node_registers(r, name)
    clock.now += 1
    r.loop.cycle()
    clock.now += 1
    r.loop.cycle()
    assert {c.status.phase for c in claims(r).values()} == {ClaimPhase.READY}
    assert r.phase() in (JobPhase.ADMITTED, JobPhase.RUNNING)
    assert [c.verb for c in r.writer.calls].count("create_claim") == 2
    assert r.metric("gpupool_scale_ups_total", pool="cloud", result="requested") == 2
    assert r.metric("gpupool_scale_ups_total", pool="cloud", result="ready") == 2
    # Claimed at t0, Ready at t0 + 2 (claims carry no creationTimestamp here: first seen).
    assert r.metric("gpupool_node_provisioning_duration_seconds_sum", pool="cloud") == 2 * 2.0
    assert r.metric("gpupool_pool_nodes", pool="cloud", state="ready") == 2


def test_a_request_retried_after_a_lost_answer_makes_no_second_claim() -> None:
    r, _provider, _clock = world(burst_job(workers=1))
    r.loop.cycle()
    (name,) = claims(r)
    r.cache.delete(Kind.CLAIM, name)  # the answer was lost: the cache never saw the claim
    r.loop.cycle()
    assert [c.target for c in r.writer.calls if c.verb == "create_claim"] == [f"gpunodeclaims/{name}"] * 2
    assert len([k for k in r.writer.objects if k.startswith("gpunodeclaims/")]) == 1


def test_capacity_unavailable_fails_the_claim_releases_it_and_backs_the_pool_off() -> None:
    r, provider, clock = world(burst_job(workers=1))
    r.loop.cycle()
    (name,) = claims(r)
    provider.fail_next("create", CapacityUnavailable("no A100 now"))
    clock.now += 1
    r.loop.cycle()
    claim = claims(r)[name]
    assert (claim.status.phase, claim.status.reason) == (ClaimPhase.FAILED, "CapacityUnavailable")
    assert r.metric("gpupool_scale_ups_total", pool="cloud", result="failed") == 1
    assert r.metric("gpupool_pool_nodes", pool="cloud", state="provisioning") == 0
    assert ("release", name) in [(c.verb, c.target) for c in provider.calls]
    clock.now += 1
    r.loop.cycle()  # the only pool backs off: no new claim yet
    assert list(claims(r)) == [name]


def test_transient_failures_are_retried_then_fail() -> None:
    r, provider, clock = world(burst_job(workers=1))
    r.loop.cycle()
    (name,) = claims(r)
    for attempt in range(1, MAX_LAUNCH_ATTEMPTS + 1):
        provider.fail_next("create", ProviderTransient("timeout"))
        clock.now += 1
        r.loop.cycle()
        claim = claims(r)[name]
        if attempt < MAX_LAUNCH_ATTEMPTS:
            assert claim.status.phase == ClaimPhase.LAUNCHING and claim.status.launch_attempts == attempt
    assert claims(r)[name].status.phase == ClaimPhase.FAILED


def test_an_idle_node_is_cordoned_and_released_after_scale_down_after() -> None:
    r, provider, clock = world()
    r.cache.upsert(
        Kind.CLAIM,
        {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "GPUNodeClaim",
            "metadata": {"name": "cloud-x", "resourceVersion": "5"},
            "spec": {"pool": "cloud", "jobs": []},
            "status": {"phase": "Ready", "nodeName": "cloud-x"},
        },
    )
    r.writer.seed("gpunodeclaims", dict(r.cache.view().raw(Kind.CLAIM, "cloud-x") or {}))
    node_registers(r, "cloud-x")
    r.writer.seed("nodes", dict(r.cache.view().raw(Kind.NODE, "cloud-x") or {}))
    r.loop.cycle()  # idle from now
    assert claims(r)["cloud-x"].status.idle_since is not None
    clock.now += 30
    r.loop.cycle()
    assert claims(r)["cloud-x"].status.phase == ClaimPhase.READY
    clock.now += 31
    r.loop.cycle()
    assert claims(r)["cloud-x"].status.phase == ClaimPhase.DELETING
    assert ("cordon_node", "nodes/cloud-x") in [(c.verb, c.target) for c in r.writer.calls]
    assert r.metric("gpupool_scale_downs_total", pool="cloud", reason="idle") == 1
    assert r.metric("gpupool_pool_nodes", pool="cloud", state="draining") == 1
    assert r.metric("gpupool_scale_ups_total", pool="cloud", result="requested") == 0, "made before: not counted"
    clock.now += 1
    r.loop.cycle()
    assert ("delete", "cloud-x") in [(c.verb, c.target) for c in provider.calls]
    r.cache.delete(Kind.NODE, "cloud-x")
    r.loop.cycle()
    assert claims(r) == {}
