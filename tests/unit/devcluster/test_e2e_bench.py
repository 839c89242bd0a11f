"""Pure parts of `gpupool bench e2e`: placement, the table, the flags."""

from __future__ import annotations

from typing import Any

import pytest

from gpupool.devcluster.e2e_bench import E2eResult, format_table, main, round_robin


def test_round_robin_spreads_pods_and_never_overfills_a_node() -> None:
    placement = round_robin(10, ["a", "b", "c"], per_node=4)
    assert placement[:4] == ["a", "b", "c", "a"]
    assert max(placement.count(n) for n in "abc") == 4
    assert round_robin(6, ["a", "b", "c"], per_node=2).count("a") == 2


def test_round_robin_refuses_more_pods_than_gpus() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        round_robin(7, ["a", "b", "c"], per_node=2)


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
