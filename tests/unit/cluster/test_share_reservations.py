"""Shares that cannot collide: on a node that reports its pods' devices, each GPU carrying
shares is held by one reservation pod requesting `nvidia.com/gpu: 1`, created before the
first share's pod, deleted after the last share leaves, recreated if deleted; the shares are
given its UUID. Over the loop rig, with the node's report written by the test as the agent
would write it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders.api import (
    gpu_uuid,
    gpujob_object,
    gpunodepool_object,
    placement_entry,
    pool_node_object,
    reporting_node,
    reservation_pod_object,
    running_gpujob_object,
    view_of,
    worker_pod_object,
)
from builders.loop import Rig, device_world
from gpupool.api import DeviceSource, JobPhase
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.snapshot import build_snapshot
from gpupool.cluster.writes.reservations import (
    ReservationBook,
    ReservationSettings,
    reservation_manifest,
    reservation_name,
    reservation_of,
)
from gpupool.settings import OperatorSettings

NOW = 1_800_000_000.0
RESERVE_0 = "default/gpupool-reserve-n1-g0"
POOL = {"gpupool.io/pool": "gpu"}


def world(
    report: dict[str, list[int]] | None,
    *objects: dict[str, Any],
    operator: OperatorSettings | None = None,
    labels: dict[str, str] | None = None,
) -> Rig:
    return device_world(report, *objects, clock=NOW, settings=operator, node=pool_node_object(report, labels=labels))


def env_of(pod: dict[str, Any] | None) -> dict[str, str]:
    assert pod is not None
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0].get("env") or []}


def report(r: Rig, pods: dict[str, list[int]], version: int) -> None:
    r.cache.upsert(Kind.NODE, pool_node_object(pods, version=version))


def finish(r: Rig, name: str, version: int) -> None:
    """The share pod of `name` succeeded (as its watch event would say)."""
    pod = r.pod(name)
    assert pod is not None
    done = {**pod, "status": {"phase": "Succeeded"}, "metadata": {**pod["metadata"], "resourceVersion": str(version)}}
    r.cache.upsert(Kind.POD, done)


# --------------------------------------------------------------------------- the life of one


def test_a_share_is_held_by_its_reservation_from_before_its_pod_to_after_it_leaves() -> None:
    r = world({}, gpujob_object("half", gpus=0.5))
    r.loop.cycle()
    placed = r.job("half").status.placement[0]
    assert placed.reservation == RESERVE_0 and placed.devices == DeviceSource.PLANNED
    # The status names the reservation first, then its pod is created; no share pod yet.
    order = r.writes()
    assert order.index(("patch_job_status", "gpujobs/ns/half")) < order.index(("create_pod", f"pods/{RESERVE_0}"))
    assert r.pod("half") is None
    reserve = r.cache.get(Kind.RESERVATION, RESERVE_0)
    assert reserve is not None and reserve.raw["spec"]["nodeName"] == "n1"

    r.loop.cycle()  # the agent has not reported the reservation yet: still no share pod
    assert r.pod("half") is None and "waiting for the node agent" in (r.job("half").status.message or "")

    report(r, {RESERVE_0: [5]}, 2)  # the kubelet gave the reservation pod GPU 5
    r.loop.cycle()
    pod = r.pod("half")
    assert pod is not None
    assert env_of(pod)["NVIDIA_VISIBLE_DEVICES"] == gpu_uuid("n1", 5)
    assert env_of(pod)["GPUPOOL_GPU_SHARE"] == "0.5"
    assert pod["metadata"]["annotations"]["gpupool.io/reservation"] == RESERVE_0
    assert "nvidia.com/gpu" not in (pod["spec"]["containers"][0].get("resources") or {}).get("requests", {})
    r.loop.cycle()
    placed = r.job("half").status.placement[0]
    assert (placed.gpu_indices, placed.gpu_uuids, placed.devices) == ([5], [gpu_uuid("n1", 5)], DeviceSource.REPORTED)

    # The share ends: its reservation goes after it.
    r.cache.upsert(
        Kind.POD, {**pod, "status": {"phase": "Succeeded"}, "metadata": {**pod["metadata"], "resourceVersion": "99999"}}
    )
    r.loop.cycle()
    assert r.job("half").status.phase == JobPhase.SUCCEEDED
    r.loop.cycle()
    assert ("delete_pod", f"pods/{RESERVE_0}") in r.writes()
    assert r.cache.get(Kind.RESERVATION, RESERVE_0) is None


def test_shares_packed_on_one_gpu_share_one_reservation_until_the_last_leaves() -> None:
    r = world({}, gpujob_object("a", gpus=0.5), gpujob_object("b", gpus=0.5), gpujob_object("c", gpus=0.25))
    r.loop.cycle()
    named = {n: r.job(n).status.placement[0].reservation for n in "abc"}
    assert named == {"a": RESERVE_0, "b": RESERVE_0, "c": "default/gpupool-reserve-n1-g1"}
    assert [t for v, t in r.writes() if v == "create_pod"] == [
        f"pods/{RESERVE_0}",
        "pods/default/gpupool-reserve-n1-g1",
    ]
    report(r, {RESERVE_0: [3], "default/gpupool-reserve-n1-g1": [4]}, 2)
    r.loop.cycle()
    told = {n: env_of(r.pod(n))["NVIDIA_VISIBLE_DEVICES"] for n in "abc"}
    assert told == {"a": gpu_uuid("n1", 3), "b": gpu_uuid("n1", 3), "c": gpu_uuid("n1", 4)}
    for name, version in (("a", 99998), ("b", 99999)):
        finish(r, name, version)
        r.loop.cycle()
        r.loop.cycle()
        gone = ("delete_pod", f"pods/{RESERVE_0}") in r.writes()
        assert gone == (name == "b"), name  # kept while a share is left on the GPU
    assert ("delete_pod", "pods/default/gpupool-reserve-n1-g1") not in r.writes()


def running_share(
    name: str = "half", index: int = 5, reservation: str = RESERVE_0, phase: str = "Running", **fields: Any
) -> dict[str, Any]:
    """A share job holding `index` of n1 through `reservation`; `fields` are its placement's."""
    entry = placement_entry(job=name, indices=(index,), share=0.5, reservation=reservation, **fields)
    return running_gpujob_object(name, [entry], gpus=0.5, phase=phase)


def share_pod_object(name: str = "half", uuid: str = gpu_uuid("n1", 5), reservation: str = RESERVE_0) -> dict[str, Any]:
    env = {"NVIDIA_VISIBLE_DEVICES": uuid, "GPUPOOL_GPU_SHARE": "0.5"}
    return worker_pod_object(name, annotations={"gpupool.io/reservation": reservation}, env=env)


REPORTED_5 = {"devices": "Reported", "gpuUUIDs": [gpu_uuid("n1", 5)]}


def interrupted(r: Rig, saying: str, name: str = "half") -> bool:
    """The job's attempt 1 ended Interrupted, without a failure counted, with an event `saying`."""
    status = r.job(name).status
    assert status.provenance is not None
    first = next(a for a in status.provenance.attempts if a.attempt == 1)
    said = [m for t, reason, m in r.writer.events if t == f"GPUJob/ns/{name}" and reason == "Interrupted"]
    return first.outcome == "Interrupted" and status.failures == 0 and any(saying in m for m in said)


def test_a_deleted_reservation_is_created_again_and_a_share_it_moved_restarts() -> None:
    r = world({RESERVE_0: [5]}, running_share(**REPORTED_5), share_pod_object())
    r.loop.cycle()
    assert ("create_pod", f"pods/{RESERVE_0}") in r.writes()  # it was missing: created again
    report(r, {RESERVE_0: [6]}, 2)  # ... and the kubelet gave it another GPU
    r.loop.cycle()
    assert interrupted(r, "now holds GPU GPU-n1-6, not GPU-n1-5")


def test_a_failed_reservation_queues_its_shares_again_and_is_deleted() -> None:
    failed = reservation_pod_object("n1", 0, phase="Failed", reason="UnexpectedAdmissionError", message="no GPU left")
    r = world({}, running_share(phase="Admitted"), failed)
    r.loop.cycle()
    assert interrupted(r, "ended Failed (UnexpectedAdmissionError no GPU left)")
    assert ("delete_pod", f"pods/{RESERVE_0}") in r.writes()


def test_a_reservation_nothing_names_is_deleted_and_one_named_is_kept() -> None:
    orphan = reservation_pod_object("n1", 3)
    kept = reservation_pod_object("n1", 0)
    r = world({RESERVE_0: [5]}, running_share(**REPORTED_5), share_pod_object(), orphan, kept)
    r.loop.cycle()
    assert ("delete_pod", "pods/default/gpupool-reserve-n1-g3") in r.writes()
    assert ("delete_pod", f"pods/{RESERVE_0}") not in r.writes()
    assert ("create_pod", f"pods/{RESERVE_0}") not in r.writes()


def test_a_restart_after_the_admission_but_before_the_reservation_finishes_the_job() -> None:
    # What the API server holds after a crash right after the admission's status write.
    admitted = running_share(phase="Admitted", index=0)
    r = world({}, admitted)
    r.loop.cycle()
    assert [t for v, t in r.writes() if v == "create_pod"] == [f"pods/{RESERVE_0}"]  # one, and no share pod
    r.loop.cycle()
    assert [t for v, t in r.writes() if v == "create_pod"] == [f"pods/{RESERVE_0}"]  # not twice


def test_a_second_share_on_the_same_gpu_joins_its_reservation() -> None:
    book = ReservationBook(ReservationSettings(), holders={("n1", 5): RESERVE_0}, named={RESERVE_0: "n1"})
    assert book.for_share("n1", 5, 8) == RESERVE_0
    fresh = book.for_share("n1", 0, 8)  # GPU 0 is idle: a new reservation, though slot 0 is taken
    assert fresh == "default/gpupool-reserve-n1-g8"
    assert book.for_share("n1", 0, 8) == fresh  # a second share admitted onto it in the same cycle


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 7), max_size=20),
    st.dictionaries(st.integers(0, 7), st.integers(0, 15), max_size=6),
)
def test_one_reservation_per_shared_gpu_and_never_one_for_two(asks: list[int], existing: dict[int, int]) -> None:
    # `existing`: GPU index -> the slot of the live reservation its shares already name.
    named = {f"default/{reservation_name('n1', slot)}": "n1" for slot in existing.values()}
    holders = {("n1", index): f"default/{reservation_name('n1', slot)}" for index, slot in existing.items()}
    book = ReservationBook(ReservationSettings(), holders=dict(holders), named=dict(named))
    got = {index: book.for_share("n1", index, 8) for index in asks}
    for index, key in got.items():
        assert book.for_share("n1", index, 8) == key  # the same GPU, the same reservation
        if ("n1", index) in holders:
            assert key == holders[("n1", index)]
    fresh = [key for index, key in got.items() if ("n1", index) not in holders]
    assert len(set(fresh)) == len(fresh)  # two new shared GPUs never share one
    assert not set(fresh) & set(named)  # nor take a name that already holds another GPU


# --------------------------------------------------------------------------- where there is no reservation


@pytest.mark.parametrize(
    ("pods", "operator"),
    [
        pytest.param(None, None, id="kwok: no report, the fallback"),
        pytest.param({}, OperatorSettings(share_reservations=False), id="reservations switched off"),
    ],
)
def test_without_a_reservation_a_share_is_told_its_index_as_before(
    pods: dict[str, list[int]] | None, operator: OperatorSettings | None
) -> None:
    r = world(pods, gpujob_object("half", gpus=0.5), operator=operator)
    r.loop.cycle()
    assert r.job("half").status.placement[0].reservation is None
    pod = r.pod("half")
    assert pod is not None and env_of(pod)["NVIDIA_VISIBLE_DEVICES"] == "0"
    assert not [t for v, t in r.writes() if v == "create_pod" and "reserve" in t]


# --------------------------------------------------------------------------- nodes that refuse


def test_a_node_that_refuses_env_var_devices_gets_no_share_and_the_share_says_why() -> None:
    refusing = {"gpupool.io/share-envvar": "false"}
    r = world({}, gpujob_object("half", gpus=0.5), gpujob_object("whole", gpus=1), labels=refusing)
    r.loop.cycle()
    assert r.job("whole").status.phase == JobPhase.ADMITTED  # whole GPUs still go there
    status = r.job("half").status
    assert status.phase == JobPhase.QUEUED
    condition = next(c for c in status.conditions if c.type == "ShareDeviceSelection")
    assert (condition.status.value, condition.reason) == ("False", "EnvVarRefused")
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged" in condition.message
    r.loop.cycle()
    events = [c.detail for c in r.writer.calls if c.verb == "emit_event" and c.target.endswith("/ns/half")]
    assert events.count("ShareDeviceRefused") == 1


def test_an_admitted_share_whose_node_starts_refusing_is_queued_again() -> None:
    r = world({}, running_share(phase="Admitted"), labels={"gpupool.io/share-envvar": "false"})
    r.loop.cycle()
    assert interrupted(r, "refuse NVIDIA_VISIBLE_DEVICES from unprivileged containers")
    assert r.job("half").status.phase == JobPhase.QUEUED  # and no other node to go to


# --------------------------------------------------------------------------- the core's view


@dataclass(frozen=True)
class CountCase:
    reservations: tuple[dict[str, Any], ...]
    jobs: tuple[dict[str, Any], ...]
    report: dict[str, list[int]]
    reserved_gpus: int
    reserved_pods: int
    idle: int


COUNT_CASES = {
    "a named reservation: its shares hold the GPU, it takes a pod slot": CountCase(
        (reservation_pod_object("n1", 0),), (running_share(**REPORTED_5),), {RESERVE_0: [5]}, 0, 1, 7
    ),
    "one nothing names any more still holds its GPU until it is gone": CountCase(
        (reservation_pod_object("n1", 3),), (), {"default/gpupool-reserve-n1-g3": [2]}, 1, 1, 7
    ),
    "a failed one holds nothing": CountCase((reservation_pod_object("n1", 3, phase="Failed"),), (), {}, 0, 0, 8),
}


@pytest.mark.parametrize("case", list(COUNT_CASES.values()), ids=list(COUNT_CASES))
def test_a_shared_gpu_counts_as_one_whole_gpu_held(case: CountCase) -> None:
    from gpupool.core.placement.state import PlacementState

    view = view_of(
        nodes={"n1": reporting_node("n1", case.report, labels=POOL)},
        gpunodepools={"gpu": gpunodepool_object("gpu")},
        gpujobs={f"ns/{j['metadata']['name']}": j for j in case.jobs},
        reservations={reservation_of(p).key: p for p in case.reservations},
    )
    snap = build_snapshot(view, NOW, decayed_usage={})
    n1 = snap.nodes["n1"]
    assert (n1.reserved_gpus, n1.reserved_pods) == (case.reserved_gpus, case.reserved_pods)
    state = PlacementState.build(snap.snapshot.nodes, snap.snapshot.running)
    assert int(state.idle[0]) == case.idle


# --------------------------------------------------------------------------- the pod itself

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@settings(max_examples=200)
@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,200}[a-z0-9])?", fullmatch=True), st.integers(0, 99))
def test_reservation_names_are_dns_labels_and_never_shared_by_two_nodes(node_name: str, slot: int) -> None:
    name = reservation_name(node_name, slot)
    assert len(name) <= 63 and DNS_LABEL.match(name) and name.endswith(f"-g{slot}")
    assert reservation_name(node_name, slot) == name  # deterministic
    assert reservation_name(node_name + "x", slot) != name


def test_the_reservation_pod_requests_one_whole_gpu_with_the_image_and_command_set() -> None:
    chosen = ReservationSettings(namespace="gpupool-system", image="local/toolbox:1", command=("sleep", "infinity"))
    pod = reservation_manifest(chosen, "n1", 2)
    assert pod["metadata"]["namespace"] == "gpupool-system" and pod["metadata"]["name"] == "gpupool-reserve-n1-g2"
    (container,) = pod["spec"]["containers"]
    assert container["resources"]["requests"] == {"nvidia.com/gpu": "1"} == container["resources"]["limits"]
    assert (container["image"], container["command"]) == ("local/toolbox:1", ["sleep", "infinity"])
    assert pod["spec"]["nodeName"] == "n1" and pod["spec"]["restartPolicy"] == "Always"
    default = reservation_manifest(ReservationSettings(), "n1", 0)["spec"]["containers"][0]
    assert "command" not in default and "pause" in default["image"]
    operator = OperatorSettings(share_reservation_command="sleep infinity", leader_election_namespace="ops")
    assert (operator.reservations.command, operator.reservations.namespace) == (("sleep", "infinity"), "ops")


def test_reservation_pods_join_the_node_network_only_when_told() -> None:
    assert "hostNetwork" not in reservation_manifest(ReservationSettings(), "n1", 0)["spec"]
    told = OperatorSettings(share_reservation_host_network=True).reservations
    assert reservation_manifest(told, "n1", 0)["spec"]["hostNetwork"] is True
