"""Node inventory as the node reports it (`gpupool.cluster.translate.convert.gpu_node_from_k8s`): the
GPU model from GPU feature discovery's product label (gpupool's own label overrides it),
physical GPUs from the allocatable count over time-slicing or MPS replicas, MIG nodes and
unknown products refused with a reason that says what to fix; and what the snapshot and the
pool's status make of it (`NodeConverter`, `pool_status`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from builders.api import gfd_labels, gpunodepool_object, node_object, view_of
from gpupool.api import ConditionStatus, GPUNodePool
from gpupool.cluster.nodes.scaling import pool_template
from gpupool.cluster.translate.convert import RefusedNode, gpu_node_from_k8s, unused_gpu_node
from gpupool.cluster.translate.snapshot import NodeConverter, build_snapshot
from gpupool.cluster.writes.status import NODES_REFUSED, SHARED_GPU_NODES, pool_status
from gpupool.core.accounting import NOTHING_HELD

A100 = "NVIDIA-A100-SXM4-80GB"
# A pool that selects its nodes by a GFD label alone, as a cluster labelled only by GFD needs.
GFD_POOL = GPUNodePool.model_validate(
    gpunodepool_object("a100", model="A100", nodeSelector={"nvidia.com/gpu.product": A100})
)
SHARED_POOL = GPUNodePool.model_validate(
    gpunodepool_object("shared", model="A100", nodeSelector={"nvidia.com/gpu.product": f"{A100}-SHARED"})
)
LABEL_POOL = GPUNodePool.model_validate(gpunodepool_object("a100-pool", model="A100"))
POOLS = [GFD_POOL, SHARED_POOL, LABEL_POOL]
IN_POOL = {"gpupool.io/pool": "a100-pool"}


@dataclass(frozen=True)
class Seen:
    """What a node becomes: its model, physical GPUs and whether only shares go there."""

    model: str
    gpus: int
    shares_only: bool = False
    pool: str = "a100-pool"


def node(labels: dict[str, str], *, model: str | None = None, **fields: Any) -> dict[str, Any]:
    return node_object(model=model, labels=labels, **fields)


CASES: dict[str, tuple[dict[str, Any], Seen | str | None]] = {
    # --- the model -------------------------------------------------------------------------
    "GFD product only, pool by a GFD selector": (node(gfd_labels(A100)), Seen("A100", 8, pool="a100")),
    "GFD product, pool by gpupool's label": (node(gfd_labels(A100, **IN_POOL)), Seen("A100", 8)),
    "GFD product and no pool: not used": (node(gfd_labels("NVIDIA-H100-80GB-HBM3")), None),
    "no GFD label: the pool's model": (node(IN_POOL), Seen("A100", 8)),
    "gpupool's label overrides the product": (
        node(gfd_labels("NVIDIA-H100-80GB-HBM3"), model="H100-custom"),
        Seen("H100-custom", 8, pool=""),
    ),
    "gpupool's label makes an unknown product usable": (
        node(gfd_labels("NVIDIA-A100-80GB-PCIe", **IN_POOL), model="A100"),
        Seen("A100", 8),
    ),
    "unknown product in a pool: refused": (node(gfd_labels("NVIDIA-A100-80GB-PCIe", **IN_POOL)), "UnknownGPUProduct"),
    "product of another model than the pool's: refused": (
        node(gfd_labels("NVIDIA-H100-80GB-HBM3", **IN_POOL)),
        "GPUModelMismatch",
    ),
    # --- GPUs: allocatable, over replicas ------------------------------------------------
    "an unhealthy GPU: allocatable, not capacity": (node(IN_POOL, gpus="7", capacity_gpus="8"), Seen("A100", 7)),
    "time-slicing: allocatable over replicas, shares only": (
        node(gfd_labels(f"{A100}-SHARED", replicas=4, sharing="time-slicing"), gpus="16"),
        Seen("A100", 4, shares_only=True, pool="shared"),
    ),
    "MPS: allocatable over replicas, shares only": (
        node(gfd_labels(A100, replicas=3, sharing="mps", **IN_POOL), gpus="6"),
        Seen("A100", 2, shares_only=True),
    ),
    "time-slicing with an unhealthy GPU: whole GPUs only": (
        node(gfd_labels(A100, replicas=4, sharing="time-slicing", **IN_POOL), gpus="6", capacity_gpus="8"),
        Seen("A100", 1, shares_only=True),
    ),
    "GFD before the sharing-strategy label: replicas alone": (
        node(gfd_labels(A100, replicas=2, **IN_POOL), gpus="8"),
        Seen("A100", 4, shares_only=True),
    ),
    "one replica: not shared": (node(gfd_labels(A100, replicas=1, sharing="none", **IN_POOL)), Seen("A100", 8)),
    "sharing disabled (0 replicas): not shared": (node(gfd_labels(A100, replicas=0, **IN_POOL)), Seen("A100", 8)),
    "replicas that are not a number: refused": (
        node(gfd_labels(A100, replicas="four", sharing="time-slicing", **IN_POOL)),
        "InvalidSharingLabels",
    ),
    "a SHARED product without replicas: refused": (
        node(gfd_labels(f"{A100}-SHARED", **IN_POOL)),
        "InvalidSharingLabels",
    ),
    "a sharing strategy without replicas: refused": (
        node(gfd_labels(A100, replicas=1, sharing="time-slicing", **IN_POOL)),
        "InvalidSharingLabels",
    ),
    # --- MIG -----------------------------------------------------------------------------
    "MIG mixed: partitions as nvidia.com/mig-*": (
        node(gfd_labels(A100, mig_strategy="mixed", **IN_POOL), gpus="0", resources={"nvidia.com/mig-1g.10gb": "7"}),
        "MIGPartitions",
    ),
    "MIG mixed, some GPUs whole: the node is refused whole": (
        node(gfd_labels(A100, mig_strategy="mixed", **IN_POOL), gpus="4", resources={"nvidia.com/mig-3g.40gb": "2"}),
        "MIGPartitions",
    ),
    "MIG mixed with no partition left: whole GPUs": (
        node(gfd_labels(A100, mig_strategy="mixed", **IN_POOL), resources={"nvidia.com/mig-1g.10gb": "0"}),
        Seen("A100", 8),
    ),
    "MIG single: partitions as nvidia.com/gpu": (
        node(gfd_labels("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", mig_strategy="single", **IN_POOL), gpus="56"),
        "MIGPartitions",
    ),
    "MIG single, a layout GFD refuses": (
        node(gfd_labels("NVIDIA-A100-SXM4-40GB-MIG-INVALID", mig_strategy="single", **IN_POOL), gpus="0"),
        "MIGPartitions",
    ),
    "MIG with gpupool's model label: still refused": (
        node(gfd_labels(A100), model="A100", resources={"nvidia.com/mig-1g.10gb": "7"}),
        "MIGPartitions",
    ),
    "MIG strategy single on GPUs without MIG: whole GPUs": (
        node(gfd_labels(A100, mig_strategy="single", **IN_POOL)),
        Seen("A100", 8),
    ),
    # --- other labels ----------------------------------------------------------------------
    "a bad class label on a pool's node: refused as unreadable": (
        node({**IN_POOL, "gpupool.io/class": "Hybrid"}),
        "UnreadableNode",
    ),
}


@pytest.mark.parametrize(("raw", "expected"), list(CASES.values()), ids=list(CASES))
def test_node_inventory(raw: dict[str, Any], expected: Seen | str | None) -> None:
    if isinstance(expected, str):
        with pytest.raises(RefusedNode) as err:
            gpu_node_from_k8s(raw, POOLS)
        assert err.value.reason == expected
        assert str(err.value).startswith("node n1: ")
        return
    got = gpu_node_from_k8s(raw, POOLS)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert Seen(got.gpu_model, got.gpus, got.shares_only, got.pool) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (
            CASES["unknown product in a pool: refused"][0],
            [
                "nvidia.com/gpu.product=NVIDIA-A100-80GB-PCIe is not a product of gpupool's GPU catalogue",
                "gpupool.io/gpu-model=<model>",
                "catalogue/gpu_models.yaml",
            ],
        ),
        (
            CASES["MIG mixed: partitions as nvidia.com/mig-*"][0],
            ["exposes MIG partitions (nvidia.com/mig-1g.10gb: 7)", "does not place on MIG yet", "issue DRA"],
        ),
        (
            CASES["MIG single: partitions as nvidia.com/gpu"][0],
            ["nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB-MIG-1g.5gb, nvidia.com/mig.strategy=single"],
        ),
        (CASES["product of another model than the pool's: refused"][0], ["is model H100 but its pool a100-pool"]),
        (CASES["a SHARED product without replicas: refused"][0], ["nvidia.com/gpu.replicas is None"]),
    ],
    ids=["unknown-product", "mig-mixed", "mig-single", "mismatch", "shared-without-replicas"],
)
def test_refusals_say_what_and_how_to_fix(raw: dict[str, Any], says: list[str]) -> None:
    with pytest.raises(RefusedNode) as err:
        gpu_node_from_k8s(raw, POOLS)
    for text in says:
        assert text in str(err.value)
    assert err.value.pool == "a100-pool"


def test_a_product_mapping_can_be_given() -> None:
    raw = node(gfd_labels("Acme-X1", **IN_POOL))
    got = gpu_node_from_k8s(raw, POOLS, products={"acme-x1": "A100"})
    assert got is not None and got.gpu_model == "A100"


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (node(gfd_labels("NVIDIA-H100-80GB-HBM3")), "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3"),
        (node({}), "nvidia.com/gpu=8"),
        (node({}, gpus=None), None),
        (node({}, gpus="0"), None),
    ],
    ids=["gfd-product", "gpus-only", "cpu-node", "no-gpus"],
)
def test_a_gpu_node_in_no_pool_is_described(raw: dict[str, Any], logged: str | None) -> None:
    text = unused_gpu_node(raw)
    if logged is None:
        assert text is None
    else:
        assert text is not None and logged in text and "no GPUNodePool selects it" in text


# --- the snapshot and the pool's status ----------------------------------------------------


def _pools() -> dict[str, dict[str, Any]]:
    return {"a100-pool": gpunodepool_object("a100-pool", model="A100")}


def test_a_refused_node_is_not_counted_and_its_pool_says_why(caplog: pytest.LogCaptureFixture) -> None:
    nodes = {
        "good": node_object("good", model=None, labels=IN_POOL),
        "mig": node_object("mig", model=None, labels=IN_POOL, resources={"nvidia.com/mig-1g.10gb": "7"}),
    }
    converter = NodeConverter()
    with caplog.at_level(logging.WARNING, logger="gpupool.snapshot"):
        snap = build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 1.0, decayed_usage={}, nodes=converter)
    assert set(snap.nodes) == {"good"}
    assert snap.node_notes["mig"].reason == "MIGPartitions"
    pool = snap.pools["a100-pool"].pool
    status = pool_status(pool, snap, NOTHING_HELD)
    assert (status.nodes_ready, status.gpus_total) == (1, 8)
    (condition,) = [c for c in status.conditions if c.type == NODES_REFUSED]
    assert condition.status == ConditionStatus.TRUE
    assert condition.reason == "MIGPartitions"
    assert condition.message.startswith("node mig: exposes MIG partitions (nvidia.com/mig-1g.10gb: 7)")
    assert not [c for c in status.conditions if c.type == SHARED_GPU_NODES]
    assert [r.getMessage() for r in caplog.records] == ["refusing node"]

    # Logged once: the next cycles (the node's heartbeat changes its object) log nothing new.
    caplog.clear()
    nodes["mig"] = node_object("mig", model=None, labels=IN_POOL, resources={"nvidia.com/mig-1g.10gb": "7"})
    with caplog.at_level(logging.WARNING, logger="gpupool.snapshot"):
        build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 2.0, decayed_usage={}, nodes=converter)
    assert caplog.records == []

    # MIG turned off: the node counts and the condition turns False, naming no node.
    nodes["mig"] = node_object("mig", model=None, labels=IN_POOL)
    fixed = build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 3.0, decayed_usage={}, nodes=converter)
    after = pool_status(pool.model_copy(update={"status": status}), fixed, NOTHING_HELD)
    assert after.gpus_total == 16
    (condition,) = [c for c in after.conditions if c.type == NODES_REFUSED]
    assert (condition.status, condition.reason) == (ConditionStatus.FALSE, "AllNodesUsable")


def test_a_pool_without_node_notes_gets_no_inventory_condition() -> None:
    nodes = {"good": node_object("good", model=None, labels=IN_POOL)}
    snap = build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 1.0, decayed_usage={})
    assert pool_status(snap.pools["a100-pool"].pool, snap, NOTHING_HELD).conditions == []


def test_several_refusals_name_the_first_nodes_and_count_the_rest() -> None:
    nodes = {f"n{i}": node_object(f"n{i}", model=None, labels=gfd_labels(f"Acme-X{i}", **IN_POOL)) for i in range(5)}
    nodes["mig"] = node_object("mig", model=None, labels=IN_POOL, resources={"nvidia.com/mig-1g.10gb": "7"})
    snap = build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 1.0, decayed_usage={})
    (condition,) = pool_status(snap.pools["a100-pool"].pool, snap, NOTHING_HELD).conditions
    assert condition.reason == NODES_REFUSED  # two reasons: the condition's own name
    assert condition.message.startswith("node mig: exposes MIG")
    assert "node n0: nvidia.com/gpu.product=Acme-X0" in condition.message
    assert condition.message.endswith("; and 3 more node(s)")


def test_a_time_sliced_node_counts_physical_gpus_and_its_pool_says_shares_only() -> None:
    labels = gfd_labels(f"{A100}-SHARED", replicas=4, sharing="time-slicing", **IN_POOL)
    nodes = {"sliced": node_object("sliced", model=None, labels=labels, gpus="32")}
    snap = build_snapshot(view_of(nodes=nodes, gpunodepools=_pools()), 1.0, decayed_usage={})
    assert snap.nodes["sliced"].gpus == 8 and snap.nodes["sliced"].shares_only
    status = pool_status(snap.pools["a100-pool"].pool, snap, NOTHING_HELD)
    assert status.gpus_total == 8
    (condition,) = status.conditions
    assert (condition.type, condition.status, condition.reason) == (
        SHARED_GPU_NODES,
        ConditionStatus.TRUE,
        "SharedGPUs",
    )
    assert condition.message.startswith(
        "node sliced: nvidia.com/gpu=32 are time-slicing replicas (4 per GPU) of 8 GPUs; gpupool places only GPU "
        "shares there, never whole-GPU workers"
    )


def test_a_gpu_node_in_no_pool_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    converter = NodeConverter()
    with caplog.at_level(logging.INFO, logger="gpupool.snapshot"):
        for now in (1.0, 2.0):
            stray = node_object("stray", model=None, labels=gfd_labels("NVIDIA-L4"))
            snap = build_snapshot(view_of(nodes={"stray": stray}), now, decayed_usage={}, nodes=converter)
            assert snap.nodes == {} and snap.node_notes == {}
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, "GPU node in no pool")]
    assert "nvidia.com/gpu.product=NVIDIA-L4" in caplog.records[0].__dict__["error"]


def test_a_refusal_is_logged_again_after_the_node_was_fine(caplog: pytest.LogCaptureFixture) -> None:
    converter = NodeConverter()
    mig = {"nvidia.com/mig-1g.10gb": "7"}
    with caplog.at_level(logging.WARNING, logger="gpupool.snapshot"):
        for resources in (mig, {}, mig):
            raw = node_object("n", model=None, labels=IN_POOL, resources=resources)
            build_snapshot(view_of(nodes={"n": raw}, gpunodepools=_pools()), 1.0, decayed_usage={}, nodes=converter)
    assert [r.getMessage() for r in caplog.records] == ["refusing node", "refusing node"]


@pytest.mark.parametrize(
    ("selector", "offered"),
    [
        ({"gpupool.io/pool": "cloud"}, True),
        ({"nvidia.com/gpu.product": A100}, True),
        ({"nvidia.com/gpu.product": f"{A100}-SHARED", "nvidia.com/gpu.replicas": "4"}, False),
        ({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}, False),
        ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, True),  # gpupool's own model label wins
    ],
    ids=["gpupool-label", "gfd-product", "time-sliced", "mig", "other-product"],
)
def test_a_pool_is_grown_only_with_nodes_that_take_whole_gpus(selector: dict[str, str], offered: bool) -> None:
    raw = gpunodepool_object("cloud", model="A100", provider="Kwok", nodeSelector=selector)
    raw["spec"]["class"] = "Cloud"
    template = pool_template(GPUNodePool.model_validate(raw), spot=False)
    assert (template is not None) == offered
    if template is not None:
        assert (template.gpu_model, template.gpus, template.shares_only) == ("A100", 8, False)
