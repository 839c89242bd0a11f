"""Query results to the bill: the fake Prometheus' answers (report_fakes.SCENARIO) give the
figures worked out here by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
from report_fakes import BUCKET, END, START, STEP, FakePrometheus

from gpupool.report.build import build_report
from gpupool.report.gather import gather
from gpupool.report.model import Report
from gpupool.report.period import make_window


def report(queue: str | None = None, top: int = 10) -> tuple[Report, FakePrometheus]:
    client = FakePrometheus(queue=queue)
    window = make_window(START, END, STEP, BUCKET)
    return build_report(gather(client, window, queue=queue), top_jobs=top), client


def test_the_bill_per_queue_matches_the_hand_computation() -> None:
    built, _ = report()
    a, b = built.queues
    assert (a.queue, b.queue) == ("team-a", "team-b")
    # team-a: train 2 GPUs x 3 h + tune 0.5 GPU x 1 h = 6.5 GPU-hours, at 2.0 per GPU-hour = 13.0.
    assert a.usage.gpu_hours == pytest.approx(6.5)
    assert a.usage.cost == pytest.approx(13.0)
    assert a.on_prem.cost == pytest.approx(13.0) and a.cloud.cost == 0
    # train idle for its last hour: 2 GPUs x 1 h = 2 GPU-hours, x 2.0 = 4.0.
    assert a.usage.idle_gpu_hours == pytest.approx(2.0)
    assert a.usage.idle_cost == pytest.approx(4.0)
    assert a.usage.spot_savings == 0
    # Budget 100 EUR, 30 spent: 30%; the operator's counter as it is.
    assert a.budget is not None and a.budget.share == pytest.approx(0.3) and a.budget.currency == "EUR"
    assert a.counter_cost == pytest.approx(12.9)
    # team-b: render 1 GPU x 2 h on a spot node at 3.0 = 6.0; on demand 10.0 would be 20.0: saved 14.0.
    assert b.usage.gpu_hours == pytest.approx(2.0)
    assert b.usage.cost == pytest.approx(6.0) and b.cloud.cost == pytest.approx(6.0)
    assert b.usage.spot_gpu_hours == pytest.approx(2.0)
    assert b.usage.spot_on_demand_cost == pytest.approx(20.0)
    assert b.usage.spot_savings == pytest.approx(14.0)
    assert b.budget is None
    assert built.total.cost == pytest.approx(19.0)


def test_lines_by_namespace_pool_class_and_model_and_the_costliest_jobs() -> None:
    built, _ = report()
    lines = {(x.queue, x.namespace, x.pool_class, x.gpu_model): x.usage for x in built.lines}
    assert set(lines) == {("team-a", "ml", "on_prem", "A100"), ("team-b", "cv", "cloud", "H100")}
    assert lines[("team-a", "ml", "on_prem", "A100")].cost == pytest.approx(13.0)
    # train 6 GPU-hours x 2.0 = 12.0; render 6.0; tune 0.5 x 2.0 = 1.0.
    assert [(j.job, round(j.usage.cost, 9)) for j in built.jobs] == [("train", 12.0), ("render", 6.0), ("tune", 1.0)]
    top, _ = report(top=2)
    assert [j.job for j in top.jobs] == ["train", "render"] and top.jobs_total == 3


def test_each_job_names_the_physical_gpus_it_held_by_uuid() -> None:
    built, _ = report()
    # render's node reported no devices: its series carry no uuid, so none is named (no guess).
    assert {j.job: j.gpu_uuids for j in built.jobs} == {
        "train": ("GPU-r0", "GPU-r1"),
        "render": (),
        "tune": ("GPU-r5",),
    }


def test_spend_per_hour_per_queue() -> None:
    built, _ = report()
    # team-a: 00-01 train 2 x 2.0 = 4.0; 01-02 train 4.0 + tune 0.5 x 2.0 = 5.0; 02-03 train 4.0.
    assert [p.cost for p in built.spend["team-a"]] == pytest.approx([4.0, 5.0, 4.0, 0, 0, 0])
    assert [p.cost for p in built.spend["team-b"]] == pytest.approx([0, 0, 3.0, 3.0, 0, 0])
    assert [p.start.hour for p in built.spend["team-b"]] == [0, 1, 2, 3, 4, 5]


def test_each_bucket_is_asked_1ms_before_its_end_and_the_window_once() -> None:
    _, client = report()
    times = sorted({at for _, at in client.asked})
    assert times == pytest.approx([START.timestamp() + h * 3600 - 0.001 for h in range(1, 7)])
    assert len(client.asked) == 6 * 7 + 5  # seven measures per bucket, five window queries


def test_one_queue_only() -> None:
    built, client = report(queue="team-b")
    assert [q.queue for q in built.queues] == ["team-b"]
    assert built.queues[0].usage.cost == pytest.approx(6.0)
    assert all('queue="team-b"' in promql for promql, _ in client.asked if "pool_info" not in promql)
    empty, _ = report(queue="nobody")
    assert [(q.queue, q.usage.cost) for q in empty.queues] == [("nobody", 0.0)]


def test_a_pool_without_info_is_named_and_its_time_still_counted() -> None:
    client = FakePrometheus()
    client.holdings[2] = replace(client.holdings[2], pool="gone")
    built = build_report(gather(client, make_window(START, END, STEP, BUCKET)))
    assert built.unknown_pools == ("gone",)
    b = built.queues[1]
    assert b.usage.cost == pytest.approx(6.0) and b.cloud.cost == 0 and b.on_prem.cost == 0
    assert ("team-b", "cv", "unknown", "unknown") in {
        (x.queue, x.namespace, x.pool_class, x.gpu_model) for x in built.lines
    }
