"""Unit tests of the synthetic trace variants (`gpupool.bench.variants`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpupool.bench.openb import MIB, TracePod, load_pods
from gpupool.bench.variants import main, pod_class, resample


def pod(name: str, num_gpu: int, gpu_milli: int, spec: tuple[str, ...] = ()) -> TracePod:
    return TracePod(name=name, cpu_milli=1000, memory_bytes=MIB, num_gpu=num_gpu, gpu_milli=gpu_milli, gpu_models=spec)


SOURCE = [pod("c", 0, 0), pod("s", 1, 470), pod("w", 1, 1000), pod("m", 8, 1000)] * 100
SETS = [("T4",), ("V100M16", "V100M32")]


def test_pinned_pods_take_sets_from_the_given_list() -> None:
    out = resample(
        SOURCE,
        {"cpu": 0.25, "share": 0.25, "whole": 0.25, "multi": 0.25},
        np.random.default_rng(3),
        spec_fraction=0.5,
        spec_sets=SETS,
    )
    pinned = [p for p in out if p.gpu_models]
    assert pinned and {p.gpu_models for p in pinned} <= set(SETS)
    assert all(pod_class(p) != "cpu" for p in pinned)  # CPU-only pods are never pinned
    assert 0.3 < len(pinned) / sum(p.requested_milli > 0 for p in out) < 0.7


def test_cli_draws_sets_from_another_trace(tmp_path: Path) -> None:
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
    (tmp_path / "in.csv").write_text(header + "a,1000,1024,1,1000,\nb,1000,1024,1,500,\n")
    (tmp_path / "sets.csv").write_text(header + "x,1000,1024,1,1000,T4\ny,1000,1024,1,1000,\n")
    args = [
        "--pods",
        str(tmp_path / "in.csv"),
        "--out",
        str(tmp_path / "out.csv"),
        "--seed",
        "1",
        "--share",
        "0.5",
        "--whole",
        "0.5",
        "--spec",
        "1.0",
        "--spec-sets-from",
        str(tmp_path / "sets.csv"),
    ]
    assert main(args) == 0
    assert {p.gpu_models for p in load_pods(tmp_path / "out.csv")} == {("T4",)}


def test_cli_rejects_a_set_source_without_pins(tmp_path: Path) -> None:
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
    (tmp_path / "in.csv").write_text(header + "a,1000,1024,1,1000,\n")
    with pytest.raises(SystemExit):
        main(
            [
                "--pods",
                str(tmp_path / "in.csv"),
                "--out",
                str(tmp_path / "o.csv"),
                "--whole",
                "1",
                "--spec",
                "1",
                "--spec-sets-from",
                str(tmp_path / "in.csv"),
            ]
        )
