"""Pure parts of `gpupool bench e2e`: placement, percentiles, /proc parsing, the table, the watch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gpupool.devcluster.e2e_bench import (
    E2eResult,
    PhaseWatch,
    cpu_seconds_of,
    format_table,
    main,
    node_ready,
    peak_rss_mib_of,
    percentile,
    round_robin,
)


def test_round_robin_spreads_pods_and_never_overfills_a_node() -> None:
    placement = round_robin(10, ["a", "b", "c"], per_node=4)
    assert placement[:4] == ["a", "b", "c", "a"]
    assert max(placement.count(n) for n in "abc") == 4
    assert round_robin(6, ["a", "b", "c"], per_node=2).count("a") == 2


def test_round_robin_refuses_more_pods_than_gpus() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        round_robin(7, ["a", "b", "c"], per_node=2)


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


def _result(**figures: Any) -> E2eResult:
    base: dict[str, Any] = {"jobs": 1000, "nodes": 125, "gpus_per_node": 8, "concurrency": 16, "timeout_s": 1800.0}
    return E2eResult(**{**base, **figures})


def test_table_shows_every_figure_and_the_ratio() -> None:
    result = _result(
        bound_running_s=15.5,
        gpupool_running_s=930.0,
        admission_p50_s=400.0,
        admission_p99_s=850.25,
        operator_cpu_s=512.34,
        operator_peak_rss_mib=210.6,
        gpupool_create_s=9.5,
        bound_control_plane_cpu_s=8.12,
        gpupool_control_plane_cpu_s=30.0,
        scripted_running_s=12.4,
    )
    header, rule, row = format_table(result).splitlines()
    assert header.count("|") == rule.count("|") == row.count("|") == 13
    assert row == (
        "| 1000 | 15.50 | 930.00 | 60.0x | 400.00 | 850.25 | 512.3 | 211 | 9.50 | 8.1 / 30.0 | 12.40 | 75.00x |"
    )
    assert result.to_json()["ratio"] == pytest.approx(60.0)


def test_table_reports_progress_when_gpupool_timed_out() -> None:
    result = _result(bound_running_s=15.0, gpupool_running_s=None, gpupool_running=412)
    row = format_table(result).splitlines()[2]
    assert "> 1800 (412/1000 Running)" in row
    assert "> 120.0x" in row
    assert "—" in row  # no admission figures
    assert result.ratio is None


@pytest.mark.parametrize(
    "argv",
    [["--jobs", "0"], ["--timeout", "0"], ["--jobs", "81", "--nodes", "10"]],
    ids=["no-jobs", "no-timeout", "more-jobs-than-gpus"],
)
def test_bad_flags_exit_2_before_starting_anything(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "gpupool bench e2e:" in capsys.readouterr().err


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
