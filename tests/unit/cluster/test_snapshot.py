"""The snapshot builder: odd objects are skipped with a reason, never a crash."""

from __future__ import annotations

from typing import Any

from builders.api import cache_of, gpunodepool_object, node_object, view_of
from gpupool.cluster.state.cache import CacheView, Kind
from gpupool.cluster.translate.snapshot import NodeConverter, build_snapshot


def node(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"gpupool.io/gpu-model": "A100", **labels}},
        "status": {
            "allocatable": {"nvidia.com/gpu": "8", "cpu": "64", "memory": "512Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def job(name: str, spec: dict[str, Any], phase: str | None = "Queued", namespace: str = "ns") -> dict[str, Any]:
    body = {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUJob",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
        "status": {"phase": phase} if phase else {},
    }
    return body


GOOD_SPEC = {"queue": "q", "gpus": 1, "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}}}


def view(**kinds: dict[str, Any]) -> CacheView:
    return view_of(**kinds)


def test_odd_objects_are_skipped_or_reported_not_fatal() -> None:
    queue = {"metadata": {"name": "q"}, "spec": {"quotas": [{"gpuModel": "A100", "nominal": 8}]}}
    cache = view(
        nodes={"ok": node("ok"), "weird": node("weird", **{"gpupool.io/class": "Moon"})},
        gpuqueues={"q": queue},
        gpujobs={
            "ns/good": job("good", GOOD_SPEC),
            "ns/garbage": job("garbage", {"queue": "q", "gpus": "lots", "surprise": True}),
            "ns/lost": job("lost", {**GOOD_SPEC, "queue": "nope"}),
        },
        namespaces={"ns": {"metadata": {"name": "ns"}}},
    )
    build = build_snapshot(cache, 100.0, decayed_usage={})
    assert [n.name for n in build.snapshot.nodes] == ["ok"]
    assert [j.key for j in build.snapshot.pending] == ["ns/good"]
    assert "ns/garbage" in build.invalid_jobs
    assert build.unschedulable["ns/lost"].code == "QueueNotFound"


def test_namespace_selector_keeps_other_namespaces_out() -> None:
    queue = {
        "metadata": {"name": "q"},
        "spec": {
            "quotas": [{"gpuModel": "A100", "nominal": 8}],
            "namespaceSelector": {"matchLabels": {"team": "a"}},
        },
    }
    cache = view(
        nodes={"ok": node("ok")},
        gpuqueues={"q": queue},
        gpujobs={"a/in": job("in", GOOD_SPEC, namespace="a"), "b/out": job("out", GOOD_SPEC, namespace="b")},
        namespaces={
            "a": {"metadata": {"name": "a", "labels": {"team": "a"}}},
            "b": {"metadata": {"name": "b", "labels": {"team": "b"}}},
        },
    )
    build = build_snapshot(cache, 100.0, decayed_usage={})
    assert [j.key for j in build.snapshot.pending] == ["a/in"]
    assert build.unschedulable["b/out"].code == "NamespaceNotAllowed"
    assert "namespaceSelector" in build.unschedulable["b/out"].message


def test_pool_taints_are_hidden_from_the_core() -> None:
    pool = {
        "metadata": {"name": "gpu"},
        "spec": {
            "class": "OnPrem",
            "gpuModel": "A100",
            "gpusPerNode": 8,
            "provider": "Static",
            "nodeSelector": {"gpupool.io/pool": "gpu"},
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
        },
    }
    tainted = node("t", **{"gpupool.io/pool": "gpu"})
    tainted["spec"] = {
        "taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "other", "effect": "NoSchedule"},
        ]
    }
    build = build_snapshot(view(nodes={"t": tainted}, gpunodepools={"gpu": pool}), 1.0, decayed_usage={})
    (core_node,) = build.snapshot.nodes
    assert [t.key for t in core_node.taints] == ["other"]
    assert [t.key for t in build.pool_taints["gpu"]] == ["dedicated"]


def test_nodes_are_converted_again_only_when_they_or_the_pools_change() -> None:
    cache = cache_of([node_object("a"), node_object("b")])
    converter = NodeConverter()
    first = build_snapshot(cache.view(), 1.0, decayed_usage={}, nodes=converter).nodes
    cache.upsert(Kind.NODE, node_object("b", gpus="4"))
    second = build_snapshot(cache.view(), 2.0, decayed_usage={}, nodes=converter).nodes
    assert second["a"] is first["a"]
    assert (second["b"].gpus, first["b"].gpus) == (4, 8)
    cache.upsert(Kind.POOL, gpunodepool_object("gpu", taints=[{"key": "k", "effect": "NoSchedule"}]))
    third = build_snapshot(cache.view(), 3.0, decayed_usage={}, nodes=converter).nodes
    assert third["a"] is not second["a"] and third["a"] == second["a"]
