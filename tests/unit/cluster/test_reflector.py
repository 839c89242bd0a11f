"""The reflector: list into the cache, then apply watch events in order, relisting on 410."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gpupool.cluster.kube.reflector import Expired, Reflector
from gpupool.cluster.state.cache import ClusterCache, Kind


def pod(name: str, version: int, phase: str = "Pending") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)}, "status": {"phase": phase}}


class RawResponse:
    """What the Kubernetes client returns with `_preload_content=False`."""

    def __init__(self, body: bytes) -> None:
        self.data = body
        self.released = False

    def stream(self, decode_content: bool = True) -> Iterator[bytes]:
        # Chunks that cut lines in the middle, as a chunked HTTP body does.
        for start in range(0, len(self.data), 7):
            yield self.data[start : start + 7]

    def release_conn(self) -> None:
        self.released = True


class FakeList:
    """A list method: a list answer, then one watch answer made of `events`."""

    def __init__(self, items: list[dict[str, Any]], version: int, events: list[dict[str, Any]]) -> None:
        self.list_body = json.dumps({"metadata": {"resourceVersion": str(version)}, "items": items}).encode()
        self.watch_body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> RawResponse:
        self.calls.append(kwargs)
        return RawResponse(self.watch_body if kwargs.get("watch") else self.list_body)


def phase(cache: ClusterCache, key: str) -> str | None:
    entry = cache.get(Kind.POD, key)
    return None if entry is None else str(entry.raw["status"]["phase"])


def test_a_list_then_a_watch_keep_the_cache_in_step() -> None:
    events = [
        {"type": "MODIFIED", "object": pod("a", 11, "Running")},
        {"type": "ADDED", "object": pod("c", 12)},
        {"type": "DELETED", "object": pod("b", 13)},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
    ]
    listing = FakeList([pod("a", 5), pod("b", 6)], 10, events)
    cache = ClusterCache()
    reflector = Reflector(cache, Kind.POD, listing)
    reflector.list_once()
    assert (phase(cache, "ns/a"), phase(cache, "ns/b")) == ("Pending", "Pending")
    reflector._watch()
    assert (phase(cache, "ns/a"), phase(cache, "ns/b"), phase(cache, "ns/c")) == ("Running", None, "Pending")
    assert listing.calls[1]["resource_version"] == "10" and listing.calls[1]["allow_watch_bookmarks"]
    reflector._watch()  # the next watch starts from the bookmark
    assert listing.calls[2]["resource_version"] == "20"


def test_an_old_event_never_replaces_a_newer_object() -> None:
    cache = ClusterCache()
    cache.upsert(Kind.POD, pod("a", 30, "Running"))  # the loop's own write answer
    reflector = Reflector(cache, Kind.POD, FakeList([], 0, []))
    reflector.apply_event({"type": "MODIFIED", "object": pod("a", 25, "Pending")})
    reflector.apply_event({"type": "DELETED", "object": pod("a", 28)})  # an older pod of that name
    assert phase(cache, "ns/a") == "Running"


def test_an_expired_watch_asks_for_a_new_list() -> None:
    reflector = Reflector(ClusterCache(), Kind.POD, FakeList([], 0, []))
    with pytest.raises(Expired):
        reflector.apply_event({"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}})
