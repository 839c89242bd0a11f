"""Which nodes a job may use (taints, pool stages) and the fast fit counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import make_job, make_node, make_queue
from gpupool.core.capacity import FitCounter, workers_fitting_now
from gpupool.core.eligibility import NodeEligibility
from gpupool.core.models import PlacementPolicy, Taint, Toleration
from gpupool.core.placement import PlacementState

TAINT = Taint("dedicated", "ml", "NoSchedule")


@pytest.mark.parametrize(
    ("taint", "toleration", "allowed"),
    [
        pytest.param(TAINT, None, False, id="NoSchedule blocks"),
        pytest.param(Taint("k", "v", "NoExecute"), None, False, id="NoExecute blocks"),
        pytest.param(Taint("k", "v", "PreferNoSchedule"), None, True, id="PreferNoSchedule does not"),
        pytest.param(TAINT, Toleration("dedicated", "Equal", "ml"), True, id="Equal with the value tolerates"),
        pytest.param(TAINT, Toleration("dedicated", "Equal", "other"), False, id="Equal with another value does not"),
        pytest.param(TAINT, Toleration("dedicated", "Exists"), True, id="Exists on the key tolerates"),
        pytest.param(TAINT, Toleration("", "Exists"), True, id="Exists without key tolerates all"),
        pytest.param(TAINT, Toleration("dedicated", "Exists", effect="NoExecute"), False, id="other effect does not"),
    ],
)
def test_taints(taint: Taint, toleration: Toleration | None, allowed: bool) -> None:
    elig = NodeEligibility([make_node("n", taints=(taint,))])
    tolerations = (toleration,) if toleration else ()
    assert bool(elig.toleration_mask(tolerations)[0]) is allowed


@pytest.mark.parametrize(
    ("policy", "allow_cloud", "allow_spot", "stages"),
    [
        pytest.param(PlacementPolicy.ON_PREM_ONLY, True, True, [["onprem"]], id="OnPremOnly: on-prem only"),
        pytest.param(
            PlacementPolicy.CLOUD_ALLOWED,
            True,
            True,
            [["onprem"], ["onprem", "cloud"]],
            id="CloudAllowed: on-prem, then cloud",
        ),
        pytest.param(
            PlacementPolicy.SPOT_ALLOWED,
            True,
            True,
            [["onprem"], ["onprem", "cloud"], ["onprem", "cloud", "spot"]],
            id="SpotAllowed: on-prem, then cloud, then spot",
        ),
        pytest.param(
            PlacementPolicy.SPOT_ALLOWED, True, False, [["onprem"], ["onprem", "cloud"]], id="queue forbids spot"
        ),
        pytest.param(PlacementPolicy.SPOT_ALLOWED, False, True, [["onprem"]], id="queue forbids cloud"),
    ],
)
def test_pool_stages(policy: PlacementPolicy, allow_cloud: bool, allow_spot: bool, stages: list[list[str]]) -> None:
    nodes = [make_node("onprem"), make_node("cloud", cloud=True), make_node("spot", cloud=True, spot=True)]
    elig = NodeEligibility(nodes)
    got = elig.stages(make_job(policy=policy), make_queue(allow_cloud=allow_cloud, allow_spot=allow_spot))
    assert [[nodes[i].name for i in np.flatnonzero(m)] for m in got] == stages


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([250, 500, 1000, 2000, 4000]), min_size=0, max_size=12),
    st.sampled_from([250, 500, 1000, 2000, 8000]),
    st.integers(1, 3),
)
def test_fit_counter_matches_a_full_count(running: list[int], ask: int, workers: int) -> None:
    nodes = [make_node("n1"), make_node("n2", gpus=4)]
    state = PlacementState(nodes)
    job = make_job("p", gpus=ask / 1000, workers=workers)
    allowed = np.ones(2, dtype=bool)
    counter = FitCounter(state, job, allowed)
    for k, milli in enumerate(running):
        placed = state.place(make_job(f"r{k}", gpus=milli / 1000), scoring_policy="bestfit")
        if placed is None:
            continue
        state.allocate(placed, make_job(gpus=milli / 1000).shape)
        counter.refresh(tuple(state.index_of(p.node) for p in placed))
        total = workers_fitting_now(state, job, allowed)
        assert counter.fits() == (total >= workers)
        assert (state.place(job, allowed=allowed, scoring_policy="bestfit") is not None) == (total >= workers)


def test_whole_gpu_jobs_skip_shares_only_nodes_and_shares_do_not() -> None:
    nodes = [make_node("sliced", gpus=4, shares_only=True), make_node("whole", gpus=4)]
    elig = NodeEligibility(nodes)
    queue = make_queue()
    whole, share = make_job("w", gpus=1), make_job("s", gpus=0.5)
    assert [m.tolist() for m in elig.stages(whole, queue)] == [[False, True]]
    assert [m.tolist() for m in elig.stages(share, queue)] == [[True, True]]
    assert elig.workers_per_node(whole.shape).tolist()[0] == 0
    assert elig.workers_per_node(share.shape).tolist()[0] == 8
    assert not elig.could_ever_fit(make_job("big", gpus=4, workers=2), elig.stages(whole, queue)[-1])
