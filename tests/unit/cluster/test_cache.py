"""The typed cache: never goes back in time, parses each version once, views share entries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

import gpupool.cluster.state.cache as cache_module
from builders.api import gpujob_object, gpuqueue_object, node_object
from gpupool.cluster.state.cache import ClusterCache, Kind
from gpupool.cluster.state.parsing import ParsedJob, parse_object_of
from gpupool.cluster.writes.apply import Applier
from gpupool.cluster.writes.recording import RecordingWriter
from gpupool.controllers.loop import SchedulingLoop
from gpupool.settings import OperatorSettings


def pod(name: str, version: int, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)}, "status": {"phase": phase}}


def phase_of(cache: ClusterCache, key: str) -> str | None:
    entry = cache.get(Kind.POD, key)
    return None if entry is None else str(entry.raw["status"]["phase"])


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [
        (pod("p", 5, "Running"), pod("p", 3, "Pending"), "Running"),
        (pod("p", 3, "Pending"), pod("p", 5, "Running"), "Running"),
        (pod("p", 5, "Running"), pod("p", 5, "Pending"), "Running"),
    ],
    ids=["older-write-answer-after-newer-event", "newer-event-after-older", "same-version-again"],
)
def test_upsert_never_replaces_a_newer_version(first: dict[str, Any], second: dict[str, Any], kept: str) -> None:
    cache = ClusterCache()
    cache.upsert(Kind.POD, first)
    cache.upsert(Kind.POD, second)
    assert phase_of(cache, "ns/p") == kept


def test_a_relist_keeps_newer_objects_and_those_created_after_it() -> None:
    cache = ClusterCache()
    cache.upsert(Kind.POD, pod("watched", 12, "Running"))  # the watch was ahead of the list
    cache.upsert(Kind.POD, pod("created-later", 15))  # created after the list was taken
    cache.upsert(Kind.POD, pod("gone", 4))  # deleted before the list was taken
    cache.replace_all(Kind.POD, [pod("watched", 9, "Pending"), pod("listed", 10)], list_version=11)
    assert phase_of(cache, "ns/watched") == "Running"
    assert phase_of(cache, "ns/listed") == "Running"
    assert phase_of(cache, "ns/created-later") == "Running"
    assert phase_of(cache, "ns/gone") is None


def test_a_view_is_not_changed_by_later_writes_and_shares_entries() -> None:
    cache = ClusterCache()
    cache.upsert(Kind.POD, pod("p", 1, "Pending"))
    cache.upsert(Kind.POD, pod("q", 1, "Pending"))
    before = cache.view()
    cache.upsert(Kind.POD, pod("p", 2, "Running"))
    after = cache.view()
    assert before.entries(Kind.POD)["ns/p"].raw["status"]["phase"] == "Pending"
    assert after.entries(Kind.POD)["ns/p"].raw["status"]["phase"] == "Running"
    assert before.entries(Kind.POD)["ns/q"] is after.entries(Kind.POD)["ns/q"]
    with pytest.raises(TypeError):
        before.entries(Kind.POD)["ns/q"].raw["status"] = {}  # type: ignore[index]


def test_an_unreadable_job_is_kept_with_its_reason() -> None:
    cache = ClusterCache(parse_object_of)
    cache.upsert(Kind.JOB, gpujob_object("odd", gpus="lots"))
    view = cache.view()
    assert "ns/odd" not in view.parsed(Kind.JOB)
    assert "gpus" in view.invalid(Kind.JOB)["ns/odd"]


def test_each_object_is_parsed_once_per_version_and_a_cycle_deep_copies_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses: Counter[tuple[Kind, str]] = Counter()
    versions: dict[tuple[Kind, str], set[str]] = {}

    def counting_parse(kind: Kind, raw: Mapping[str, Any]) -> tuple[Any, str | None]:
        key = (kind, str(raw["metadata"]["name"]))
        parses[key] += 1
        versions.setdefault(key, set()).add(str(raw["metadata"].get("resourceVersion")))
        return parse_object_of(kind, raw)

    cache = ClusterCache(counting_parse)
    writer = RecordingWriter()
    objects = [node_object(f"n{i}") for i in range(4)] + [
        gpuqueue_object("q", quotas=[{"gpuModel": "A100", "nominal": 64}])
    ]
    objects += [gpujob_object(f"j{i}") for i in range(40)]
    for obj in objects:
        kind = {"Node": Kind.NODE, "GPUQueue": Kind.QUEUE, "GPUJob": Kind.JOB}[obj["kind"]]
        cache.upsert(kind, obj)
        writer.seed(kind.value, obj)
    loop = SchedulingLoop(cache, Applier(writer, cache, concurrency=1), OperatorSettings(), clock=lambda: 1e9)
    loop.cycle()  # queues and admits all 40 jobs: one status write each, plus a pod
    assert all(isinstance(cache.get(Kind.JOB, f"ns/j{i}").parsed, ParsedJob) for i in range(40))  # type: ignore[union-attr]
    assert all(count == len(versions[key]) for key, count in parses.items())
    assert parses[(Kind.JOB, "j0")] == 2  # as created, then Admitted

    deep_copies = Counter[str]()
    real_deepcopy = cache_module.copy.deepcopy
    monkeypatch.setattr(
        cache_module.copy, "deepcopy", lambda obj, *a: deep_copies.update(["call"]) or real_deepcopy(obj, *a)
    )
    parsed_before = sum(parses.values())
    loop.cycle()  # nothing changed: no write, no parse, no copy
    assert sum(parses.values()) == parsed_before
    assert deep_copies["call"] == 0


def test_the_cache_keeps_no_managed_fields_and_leaves_the_callers_object_alone() -> None:
    from gpupool.cluster.state.cache import copy_without_managed_fields

    managed = [{"manager": "gpupool", "operation": "Update", "fieldsV1": {"f:status": {"f:phase": {}}}}]
    obj = {"metadata": {"name": "j", "resourceVersion": "7", "managedFields": managed}, "spec": {"gpus": 1}}
    copied = copy_without_managed_fields(obj)
    assert copied == {"metadata": {"name": "j", "resourceVersion": "7"}, "spec": {"gpus": 1}}
    assert obj["metadata"]["managedFields"] == managed  # the caller's dict is untouched
    copied["spec"]["gpus"] = 2
    assert obj["spec"]["gpus"] == 1  # and the copy is deep
