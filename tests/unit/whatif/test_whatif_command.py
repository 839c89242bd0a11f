"""`gpupool sim` end to end on files small enough to work out by hand: one owned 8-GPU node
against two, three one-node jobs of an hour arriving together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpupool.whatif.command import main

POOL = """\
apiVersion: gpupool.io/v1alpha1
kind: GPUNodePool
metadata:
  name: onprem
  annotations:
    whatif.gpupool.io/nodes: "{nodes}"
    whatif.gpupool.io/amortisation-months: "1"
spec:
  class: OnPrem
  gpuModel: A100
  gpusPerNode: 8
  nodeSelector: {{gpupool.io/pool: onprem}}
  pricePerNodeHour: {{amortised: 10.0}}
  provider: Static
---
apiVersion: gpupool.io/v1alpha1
kind: GPUQueue
metadata:
  name: team
spec:
  quotas: [{{gpuModel: A100, nominal: 16}}]
"""
JOBS = "name,arrival,duration,gpus,workers,queue\na,0,1h,8,1,team\nb,0,1h,8,1,team\nc,0,1h,8,1,team\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"jobs": tmp_path / "jobs.csv", "one": tmp_path / "one.yaml", "two": tmp_path / "two.yaml"}
    paths["jobs"].write_text(JOBS)
    paths["one"].write_text(POOL.format(nodes=1))
    paths["two"].write_text(POOL.format(nodes=2))
    return paths


def test_two_scenarios_side_by_side_with_waits_costs_json_and_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["--workload", str(files["jobs"]), "--scenario", f"one={files['one']}", "--scenario", f"two={files['two']}"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| one | team | 3 | 0 |" in printed and "| two | team | 3 | 0 |" in printed
    figures = {f["scenario"]: f for f in json.loads((out / "whatif.json").read_text())}
    # One node runs the three hours one after the other: waits 0, 1 h and 2 h.
    assert figures["one"]["waits"]["team"]["p50"] == pytest.approx(3600)
    # Two nodes: a and b start at once, c waits one hour.
    assert figures["two"]["waits"]["team"]["p50"] == pytest.approx(0)
    # The purchase is the amortised price over the life: 10 $/h x 720 h per node.
    assert figures["one"]["purchases"][0][0] == pytest.approx(7200)
    assert sum(p for p, _ in figures["two"]["purchases"]) == pytest.approx(14400)
    assert figures["one"]["break_even_month"] is None  # the first scenario is the baseline
    assert (out / "whatif.png").stat().st_size > 0


def test_a_bad_scenario_file_names_itself_and_exits_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(POOL.format(nodes=1).replace("gpusPerNode: 8", "gpusPerNode: many"))
    assert main(["--workload", str(files["jobs"]), "--scenario", f"bad={broken}", "--quiet"]) == 2
    assert "broken.yaml" in capsys.readouterr().err
