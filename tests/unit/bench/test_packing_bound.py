"""Unit tests of the packing bound (`gpupool.bench.packing_bound`) and `gpupool bench bound`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpupool.bench.bound_bench import main as bound_main
from gpupool.bench.bound_bench import seed_floor
from gpupool.bench.openb import load_nodes, load_pods
from gpupool.bench.packing_bound import ForcedItemsDoNotFit, PackingBound, best_pattern, item_counts
from gpupool.bench.placement_bench import main as placement_main


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize(
    ("sizes", "limits", "values", "best", "pattern"),
    [
        pytest.param((810, 190), (5, 5), (810.0, 190.0), 1000.0, (1, 1), id="pair-fills-gpu"),
        pytest.param((300,), (2,), (300.0,), 600.0, (2,), id="limit-caps-copies"),
        pytest.param((300,), (9,), (300.0,), 900.0, (3,), id="capacity-caps-copies"),
        pytest.param((500, 400), (2, 2), (1.0, 5.0), 10.0, (0, 2), id="value-not-size"),
        pytest.param((500, 400), (2, 2), (-1.0, 0.0), 0.0, (0, 0), id="nothing-worth-taking"),
        pytest.param((1000, 250), (3, 4), (1000.0, 300.0), 1200.0, (0, 4), id="whole-gpu-item"),
    ],
)
def test_best_pattern(
    sizes: tuple[int, ...], limits: tuple[int, ...], values: tuple[float, ...], best: float, pattern: tuple[int, ...]
) -> None:
    got, chosen = best_pattern(ints(*sizes), ints(*limits), np.array(values))
    assert got == pytest.approx(best)
    assert tuple(chosen) == pattern


@pytest.mark.parametrize(
    ("items", "forced", "gpus", "packed"),
    [
        pytest.param({600: 2}, {}, 2, 1200, id="one-share-per-gpu"),
        pytest.param({600: 2}, {}, 1, 600, id="too-few-gpus"),
        pytest.param({810: 4, 500: 4}, {}, 3, 2810, id="halves-pair-first"),
        pytest.param({810: 4, 500: 4}, {810: 3}, 3, 2430, id="forced-shares-take-the-gpus"),
        pytest.param({810: 10, 190: 3}, {}, 10, 8670, id="only-three-completions"),
        pytest.param({1000: 2, 250: 8}, {}, 3, 3000, id="whole-gpus-and-quarters"),
        pytest.param({}, {}, 4, 0, id="no-items"),
    ],
)
def test_max_packed_milli(items: dict[int, int], forced: dict[int, int], gpus: int, packed: int) -> None:
    sizes = ints(*sorted(items))
    bound = PackingBound(sizes)
    assert bound.max_packed_milli(item_counts(items, sizes), item_counts(forced, sizes), gpus) == pytest.approx(packed)


def test_forced_items_that_cannot_fit_raise() -> None:
    sizes = ints(600)
    with pytest.raises(ForcedItemsDoNotFit):
        PackingBound(sizes).max_packed_milli(ints(3), ints(3), 1)


def test_sizes_outside_a_gpu_are_rejected() -> None:
    with pytest.raises(ValueError, match="item sizes"):
        PackingBound(ints(0, 500))


def brute_force_best(sizes: list[int], counts: list[int], forced: list[int], gpus: int) -> int | None:
    """Most milli that fits, trying every bin (or none) for every item; None if forced ones cannot fit."""
    items = [(s, i) for i, (s, c) in enumerate(zip(sizes, counts, strict=True)) for _ in range(c)]
    best: int | None = None
    for choice in itertools.product(range(gpus + 1), repeat=len(items)):  # gpus = "left out"
        load = [0] * gpus
        placed = [0] * len(sizes)
        for (size, kind), where in zip(items, choice, strict=True):
            if where < gpus:
                load[where] += size
                placed[kind] += 1
        if max(load, default=0) <= 1000 and all(p >= f for p, f in zip(placed, forced, strict=True)):
            best = max(best or 0, sum(load))
    return best


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([150, 250, 330, 400, 500, 620, 810, 1000]), st.integers(1, 2), st.integers(0, 2)),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    st.integers(1, 3),
)
def test_bound_is_never_below_the_best_real_packing(spec: list[tuple[int, int, int]], gpus: int) -> None:
    spec = sorted(spec)
    sizes = [s for s, _, _ in spec]
    counts = [c for _, c, _ in spec]
    forced = [min(f, c) for _, c, f in spec]
    exact = brute_force_best(sizes, counts, forced, gpus)
    try:
        packed = PackingBound(ints(*sizes)).max_packed_milli(ints(*counts), ints(*forced), gpus)
    except ForcedItemsDoNotFit:
        # Forced items that do not fit even fractionally cannot fit for real either.
        assert exact is None
        return
    if exact is not None:  # the LP may fit forced items fractionally where the truth cannot
        assert packed >= exact - 1e-6
    assert packed <= min(sum(s * c for s, c in zip(sizes, counts, strict=True)), gpus * 1000) + 1e-6


NODES = "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,T4\n"
PODS_HEADER = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"


def write_trace(tmp_path: Path, pods: list[tuple[int, int]]) -> tuple[Path, Path]:
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(NODES)
    trace = tmp_path / "pods.csv"
    trace.write_text(PODS_HEADER + "".join(f"p{i},1000,1024,{n},{m}\n" for i, (n, m) in enumerate(pods)))
    return nodes, trace


def test_three_sixty_percent_shares_on_two_gpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Arrived 30, 60, 90%: at 90% only two of the three 0.6 shares can be allocated (60%).
    nodes, trace = write_trace(tmp_path, [(1, 600)] * 3)
    out = tmp_path / "bound.json"
    assert bound_main(["--nodes", str(nodes), "--pods", str(trace), "--seeds", "1", "--tune", "0", "--at", "90",
                       "--json", str(out)]) == 0  # fmt: skip
    assert "at least 40.00%" in capsys.readouterr().out
    assert json.loads(out.read_text())["per_seed"] == [{"seed": 1, "min_unallocated_pct": pytest.approx(40.0)}]


def random_trace(tmp_path: Path, seed: int, count: int, extra_nodes: str) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    mix = [(1, 1000), (2, 1000), (1, 810), (1, 500), (1, 330), (1, 190), (0, 0)]
    nodes, trace = write_trace(tmp_path, [mix[int(i)] for i in rng.integers(len(mix), size=count)])
    nodes.write_text(NODES + extra_nodes)
    return nodes, trace


def policy_curve(nodes: Path, trace: Path, policy: str, seed: int, out: Path) -> dict[str, Any]:
    """One seed of `gpupool bench placement`: its per-seed record and its unallocated curve."""
    args = ["--nodes", str(nodes), "--pods", str(trace), "--seeds", str(seed), "--policy", policy]
    assert placement_main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    return {**doc["per_seed"][0], "curve": doc["curve_unallocated_pct"]}


@pytest.mark.parametrize("policy", ["random", "bestfit", "fgd", "default"])
def test_every_policy_stays_at_or_above_the_bound(tmp_path: Path, policy: str) -> None:
    nodes, trace = random_trace(tmp_path, 7, 60, "n1,8000,262144,4,T4\nn2,64000,262144,8,V100\n")
    gpus = sum(n.gpus for n in load_nodes(nodes))
    pods = load_pods(trace)
    compared = 0
    for seed in (42, 43):
        curve = policy_curve(nodes, trace, policy, seed, tmp_path / "run.json")["curve"]
        for at, unallocated in enumerate(curve):
            if unallocated is not None and at >= 50:
                assert unallocated >= seed_floor(pods, gpus, seed, 1.3, at, 0.0) - 1e-9, (seed, at)
                compared += 1
    assert compared >= 20


def test_forced_bound_applies_to_a_policy_that_places_until_then(tmp_path: Path) -> None:
    nodes, trace = random_trace(tmp_path, 3, 60, "n1,64000,262144,8,V100\n")
    gpus = sum(n.gpus for n in load_nodes(nodes))
    pods = load_pods(trace)
    run = policy_curve(nodes, trace, "bestfit", 42, tmp_path / "run.json")
    until = run["first_share_failure_arrived_pct"]
    assert until is not None and 50 < until < 130
    tighter = 0
    for at, unallocated in enumerate(run["curve"]):
        if unallocated is None or at < until:
            continue
        floor_any = seed_floor(pods, gpus, 42, 1.3, at, 0.0)
        floor_class = seed_floor(pods, gpus, 42, 1.3, at, until - 1e-9)
        assert floor_any - 1e-9 <= floor_class <= unallocated + 1e-9, at
        tighter += floor_class > floor_any + 1e-9
    assert tighter > 0


def test_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bound_main(["--nodes", str(tmp_path / "missing.csv"), "--pods", str(tmp_path / "p.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_forced_items_beyond_the_cluster_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes, trace = write_trace(tmp_path, [(1, 600)] * 3)
    args = ["--nodes", str(nodes), "--pods", str(trace), "--seeds", "1", "--tune", "0", "--at", "90"]
    assert bound_main([*args, "--placed-until", "100"]) == 2
    assert "--placed-until" in capsys.readouterr().err
