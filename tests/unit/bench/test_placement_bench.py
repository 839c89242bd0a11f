"""Unit tests of the openb placement bench harness (`gpupool.bench`)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gpupool.bench.metrics import allocation_curve, mean_sd, unallocated_at
from gpupool.bench.openb import MIB, TraceFormatError, TracePod, load_nodes, load_pods
from gpupool.bench.placement_bench import main, parse_seeds
from gpupool.bench.workload import arrival_sequence

NODE_CSV = "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,65536,2,T4\nn1,64000,131072,4,V100\n"
POD_HEADER_FULL = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
)


def make_pod(name: str = "p", num_gpu: int = 1, gpu_milli: int = 1000, cpu: int = 1000) -> TracePod:
    return TracePod(name=name, cpu_milli=cpu, memory_bytes=MIB, num_gpu=num_gpu, gpu_milli=gpu_milli)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        pytest.param("42-51", list(range(42, 52)), id="range"),
        pytest.param("42,43,50", [42, 43, 50], id="list"),
        pytest.param("42-44,50,43", [42, 43, 44, 50], id="mixed-dedup"),
        pytest.param("7", [7], id="single"),
    ],
)
def test_parse_seeds(text: str, expect: list[int]) -> None:
    assert parse_seeds(text) == expect


@pytest.mark.parametrize("text", ["", "a-b", "51-42"])
def test_parse_seeds_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_seeds(text)


@pytest.mark.parametrize(
    ("pod", "milli"),
    [
        pytest.param(make_pod(num_gpu=4, gpu_milli=1000), 4000, id="multi-gpu"),
        pytest.param(make_pod(num_gpu=1, gpu_milli=460), 460, id="share"),
        pytest.param(make_pod(num_gpu=1, gpu_milli=1000), 1000, id="whole"),
        pytest.param(make_pod(num_gpu=0, gpu_milli=0), 0, id="cpu-only"),
    ],
)
def test_requested_milli(pod: TracePod, milli: int) -> None:
    assert pod.requested_milli == milli
    assert pod.to_job().shape.gpu_milli == milli


def test_tune_up_stops_before_crossing_target() -> None:
    pods = [make_pod(f"p{i}", gpu_milli=m) for i, m in enumerate([500, 1000, 250])]
    arrivals = arrival_sequence(pods, capacity_milli=10_000, ratio=1.3, rng=np.random.default_rng(1))
    total = sum(a.pod.requested_milli for a in arrivals)
    assert total <= 13_000
    assert total > 13_000 - 1000  # it stopped only when a copy would have crossed
    tuned = [a.name for a in arrivals[3:]]
    assert sorted(a.name for a in arrivals[:3]) == ["p0", "p1", "p2"]
    assert [int(n.rsplit("-", 1)[1]) for n in tuned] == list(range(len(tuned)))
    assert all("-tuned-" in n for n in tuned)


def test_tune_down_drops_pods() -> None:
    pods = [make_pod(f"p{i}", gpu_milli=1000) for i in range(20)]
    arrivals = arrival_sequence(pods, capacity_milli=10_000, ratio=1.3, rng=np.random.default_rng(1))
    assert len(arrivals) == 13
    assert len({a.name for a in arrivals}) == 13


def test_no_tuning_is_a_shuffle_and_seeded() -> None:
    pods = [make_pod(f"p{i:02d}") for i in range(30)]
    a = arrival_sequence(pods, 1000, 0, np.random.default_rng(5))
    b = arrival_sequence(pods, 1000, 0, np.random.default_rng(5))
    assert [x.name for x in a] == [x.name for x in b]
    assert sorted(x.name for x in a) == [p.name for p in pods]
    assert [x.name for x in a] != [p.name for p in pods]


def test_load_pods_full_and_five_column(tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    full.write_text(
        POD_HEADER_FULL + "a,6000,12288,1,460,V100|T4,LS,Running,0,10,0\nb,1000,1024,2,1000,,BE,Running,0,1,0\n"
    )
    short = tmp_path / "short.csv"
    short.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,6000,12288,1,460\nc,500,10,0,0\n")
    a, b = load_pods(full)
    assert a == TracePod("a", 6000, 12288 * MIB, 1, 460, ("V100", "T4"))
    assert b.requested_milli == 2000 and b.gpu_models == ()
    a2, c = load_pods(short)
    assert a2.gpu_models == () and a2.requested_milli == 460
    assert c.requested_milli == 0


def test_load_rejects_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,cpu_milli\nx,1\n")
    with pytest.raises(TraceFormatError, match="missing column"):
        load_pods(bad)


def test_load_nodes(tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(NODE_CSV)
    n0, n1 = load_nodes(path)
    assert (n0.name, n0.gpus, n0.gpu_model, n0.memory_bytes) == ("n0", 2, "T4", 65536 * MIB)
    assert n1.cpu_milli == 64000


def test_allocation_curve_rounds_and_averages() -> None:
    arrived = np.array([0.4, 0.6, 1.4, 1.5, 2.49])
    allocated = np.array([0.4, 0.6, 1.0, 1.5, 2.0])
    curve = allocation_curve(arrived, allocated, top=3)
    assert curve[0] == pytest.approx(0.4)
    assert curve[1] == pytest.approx((0.6 + 1.0) / 2)
    assert curve[2] == pytest.approx((1.5 + 2.0) / 2)
    assert np.isnan(curve[3])
    assert unallocated_at(curve, 2) == pytest.approx(100 - 1.75)
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2)))


@pytest.mark.parametrize("policy", ["random", "bestfit", "fgd", "default"])
def test_end_to_end_tiny_trace(tmp_path: Path, policy: str) -> None:
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(NODE_CSV)
    pods = tmp_path / "pods.csv"
    rows = ["a,2000,1024,1,500", "b,2000,1024,2,1000", "c,1000,1024,0,0", "d,2000,1024,1,1000", "e,2000,1024,4,1000"]
    pods.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "\n".join(rows) + "\n")
    out_json = tmp_path / "r.json"
    out_csv = tmp_path / "p.csv"
    rc = main(
        [
            "--nodes", str(nodes), "--pods", str(pods), "--policy", policy, "--seeds", "1-2",
            "--json", str(out_json), "--placements-out", str(out_csv),
        ]
    )  # fmt: skip
    assert rc == 0
    doc = json.loads(out_json.read_text())
    assert [s["seed"] for s in doc["per_seed"]] == [1, 2]
    assert {"unallocated_pct_at_100", "unallocated_pct_at_130"} <= set(doc["mean"])
    assert doc["pods_per_second"] > 0
    with out_csv.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["seed", "seq", "pod", "node", "gpus"]
    for seed in ("1", "2"):
        mine = [r for r in table if r["seed"] == seed]
        assert [int(r["seq"]) for r in mine] == list(range(len(mine)))
        assert len(mine) == next(s["arrivals"] for s in doc["per_seed"] if str(s["seed"]) == seed)
        used: dict[tuple[str, int], int] = {}
        for r in mine:
            if not r["node"]:
                assert r["gpus"] == ""
                continue
            for part in filter(None, r["gpus"].split(";")):
                index, milli = (int(x) for x in part.split(":"))
                used[(r["node"], index)] = used.get((r["node"], index), 0) + milli
            if r["pod"].split("-tuned-")[0] == "c":
                assert r["gpus"] == ""  # CPU-only
        assert all(v <= 1000 for v in used.values())
        assert all(idx < (2 if node == "n0" else 4) for node, idx in used)


def test_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(NODE_CSV)
    rc = main(["--nodes", str(nodes), "--pods", str(tmp_path / "missing.csv"), "--policy", "bestfit"])
    assert rc == 2
    assert "missing.csv" in capsys.readouterr().err
