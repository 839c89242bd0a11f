"""The benches' shared helpers (`gpupool.devcluster.bench_support`): percentiles, /proc
parsing, node readiness and the phase watch over a fake API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gpupool.devcluster.bench_support import PhaseWatch, cpu_seconds_of, node_ready, peak_rss_mib_of, percentile


def test_percentile_interpolates_between_ranks_and_is_none_without_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_cpu_seconds_sum_user_system_and_waited_children() -> None:
    # A command name with spaces and a parenthesis must not shift the fields.
    stat = "4242 (python3 (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 10 5 20 0 3 0 1 2 3"
    assert cpu_seconds_of(stat, clock_ticks=100) == pytest.approx(3.15)


def test_peak_rss_reads_vmhwm_in_mib() -> None:
    status = "Name:\tpython3\nVmPeak:\t 900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert peak_rss_mib_of(status) == 200.0
    assert peak_rss_mib_of("Name:\tkthreadd\n") == 0.0


def test_node_ready_needs_the_condition_and_no_lifecycle_taints() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {}}
    assert node_ready(ready)
    tainted = {**ready, "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}
    assert not node_ready(tainted)
    assert node_ready({**ready, "spec": {"taints": [{"key": "gpu", "effect": "NoSchedule"}]}})
    assert not node_ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})


# ---------------------------------------------------------------- the watch, over a fake API


@dataclass
class _Response:
    data: bytes = b""
    chunks: tuple[bytes, ...] = ()

    def stream(self, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.chunks

    def release_conn(self) -> None:
        pass


class _FakeList:
    """A list call: one list, one watch stream of `chunks`, then idle empty streams."""

    def __init__(self, items: list[dict[str, Any]], chunks: tuple[bytes, ...]) -> None:
        self.items = items
        self.chunks = chunks
        self.watches = 0
        self.watched_from: list[str] = []
        self.idle = threading.Event()

    def __call__(self, **kwargs: Any) -> _Response:
        if not kwargs.get("watch"):
            return _Response(json.dumps({"metadata": {"resourceVersion": "1"}, "items": self.items}).encode())
        self.watches += 1
        self.watched_from.append(kwargs["resource_version"])
        if self.watches == 1:
            return _Response(chunks=self.chunks)
        self.idle.set()
        threading.Event().wait(0.02)
        return _Response()


def _obj(name: str, phase: str | None, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}, "status": {"phase": phase} if phase else {}}


def test_watch_records_first_sight_of_each_mark_and_forgets_deleted_objects() -> None:
    events = [
        {"type": "MODIFIED", "object": _obj("a", "Admitted", "2")},
        {"type": "ADDED", "object": _obj("b", None, "3")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "4"}}},
        {"type": "MODIFIED", "object": _obj("a", "Running", "5")},
        {"type": "DELETED", "object": _obj("old", "Running", "6")},
    ]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    # Chunks cut events in the middle, as a real chunked response may.
    fake = _FakeList([_obj("a", "Queued", "1"), _obj("old", "Running", "1")], (stream[:17], stream[17:90], stream[90:]))
    watch = PhaseWatch(fake, {"admitted": {"Admitted", "Running"}, "running": {"Running"}})
    watch.start()
    try:
        assert watch.wait(lambda w: "old" not in w.phases, timeout=5)
        assert fake.idle.wait(5)
        assert watch.phases == {"a": "Running", "b": None}
        assert set(watch.first["admitted"]) == {"a", "old"}
        assert watch.first["admitted"]["a"] <= watch.first["running"]["a"]
        assert fake.watched_from[:2] == ["1", "6"]  # the next watch resumes after the last event
        assert watch.count("running") == 2
        assert watch.phase_counts() == {"Running": 1, "none": 1}
    finally:
        watch.stop()
