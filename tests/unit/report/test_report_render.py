"""Each format from a Report made by hand: the figures, the plot, and what csv and json carry."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime

import pytest

from gpupool.report.model import Budget, JobLine, Line, QueueTotal, Report, SpendPoint, Usage
from gpupool.report.plot import spend_png
from gpupool.report.render import num, render

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = datetime(2026, 11, 2, tzinfo=UTC)
T2 = datetime(2026, 11, 3, tzinfo=UTC)
# 2 GPUs x 3 h x 2.0 per GPU-hour = 12.0, of which 1 h idle (4.0); on 1 spot GPU x 2 h at 3.0 = 6.0
# instead of 2 x 10.0 = 20.0 on demand.
TRAIN = Usage(gpu_hours=6.0, cost=12.0, idle_gpu_hours=2.0, idle_cost=4.0)
RENDER = Usage(gpu_hours=2.0, cost=6.0, spot_gpu_hours=2.0, spot_cost=6.0, spot_on_demand_cost=20.0)
REPORT = Report(
    start=T0,
    end=T2,
    step_seconds=60,
    bucket_seconds=86400,
    queues=(
        QueueTotal("team-a", TRAIN, Usage(), TRAIN, Budget("team-a", "EUR", 100.0, 30.0), 11.5),
        QueueTotal("team-b", RENDER, RENDER, Usage()),
    ),
    lines=(Line("team-a", "ml", "on_prem", "A100", TRAIN), Line("team-b", "cv|x", "cloud", "H100", RENDER)),
    jobs=(
        JobLine("team-a", "ml", "train", TRAIN, ("GPU-0a", "GPU-1b")),
        JobLine("team-b", "cv|x", "render", RENDER),
    ),
    spend={
        "team-a": (SpendPoint(T0, T1, 12.0), SpendPoint(T1, T2, 0.0)),
        "team-b": (SpendPoint(T0, T1, 2.0), SpendPoint(T1, T2, 4.0)),
    },
    source="http://prom:9090",
    jobs_total=2,
)


def test_markdown_tables_and_the_plot_link() -> None:
    text = render(REPORT, "md", png_name="bill-spend.png")
    assert "2026-11-01 00:00:00 UTC to 2026-11-03 00:00:00 UTC (all queues)" in text
    team_a = "| team-a | 6.0000 | 12.0000 | 0.0000 | 12.0000 | 2.0000 | 4.0000 | 0.0000 | 100.00 EUR | 30.0000 EUR |"
    assert f"{team_a} 30.0% | 11.5000 |" in text
    assert "| team-b | 2.0000 | 6.0000 | 6.0000 | 0.0000 | 0.0000 | 0.0000 | 14.0000 |  |  |  |  |" in text
    assert "| **all** | 8.0000 | 18.0000 | 6.0000 | 12.0000 | 2.0000 | 4.0000 | 14.0000 |" in text
    assert "| team-b | cv\\|x | cloud | H100 | 2.0000 | 6.0000 |" in text  # a | in a name is escaped
    assert "| 1 | team-a | ml | train | 6.0000 | 12.0000 | 2.0000 | 4.0000 |" in text
    assert "| 0.0000 | GPU-0a, GPU-1b |" in text  # the job's GPUs by UUID, last column
    assert "![Spend per day, per queue](bill-spend.png)" in text
    assert "No plot" in render(REPORT, "md")


def test_csv_one_row_per_record_unrounded() -> None:
    rows = list(csv.DictReader(io.StringIO(render(REPORT, "csv"))))
    queues = {r["queue"]: r for r in rows if r["record"] == "queue"}
    assert float(queues["team-a"]["cost"]) == 12.0
    assert (queues["team-a"]["budget_amount"], queues["team-a"]["budget_spent"]) == ("100.0", "30.0")
    assert float(queues["team-b"]["spot_savings"]) == 14.0 and queues["team-b"]["counter_cost"] == ""
    lines = [r for r in rows if r["record"] == "line"]
    assert [(r["namespace"], r["gpu_model"], float(r["gpu_hours"])) for r in lines] == [
        ("ml", "A100", 6.0),
        ("cv|x", "H100", 2.0),
    ]
    assert [(r["job"], r["gpu_uuids"]) for r in rows if r["record"] == "job"] == [
        ("train", "GPU-0a GPU-1b"),
        ("render", ""),
    ]
    spend = [(r["queue"], r["start"], float(r["cost"])) for r in rows if r["record"] == "spend"]
    assert spend[1] == ("team-a", T1.isoformat(), 0.0) and len(spend) == 4


def test_json_carries_every_figure() -> None:
    data = json.loads(render(REPORT, "json"))
    assert data["total"]["cost"] == 18.0
    a, b = data["queues"]
    assert a["budget"] == {"queue": "team-a", "currency": "EUR", "amount": 100.0, "spent": 30.0, "share": 0.3}
    assert a["on_prem"]["cost"] == 12.0 and a["idle_cost"] == 4.0 and a["counter_cost"] == 11.5
    assert b["spot_savings"] == 14.0 and b["spot_on_demand_cost"] == 20.0 and b["budget"] is None
    assert [(j["job"], j["gpu_uuids"]) for j in data["jobs"]] == [("train", ["GPU-0a", "GPU-1b"]), ("render", [])]
    assert data["spend"]["team-b"][1] == {"start": T1.isoformat(), "end": T2.isoformat(), "cost": 4.0}
    assert data["start"] == T0.isoformat() and data["method"]


def test_html_escapes_names_and_embeds_the_png() -> None:
    png = spend_png(REPORT)
    assert png is not None and png.startswith(b"\x89PNG")
    text = render(REPORT, "html", png=png)
    assert text.startswith("<!DOCTYPE html>") and "<td>cv|x</td>" in text
    assert "<td>team-a</td><td>6.0000</td><td>12.0000</td>" in text
    embedded = text.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(embedded) == png
    assert "<h2>Spend over time</h2>\n<p>No plot" in render(REPORT, "html")


@pytest.mark.parametrize(
    ("value", "shown"), [(0.0, "0.0000"), (0.04446, "0.0445"), (99.5, "99.5000"), (1234.5, "1,234.50")]
)
def test_numbers_for_people(value: float, shown: str) -> None:
    assert num(value) == shown
