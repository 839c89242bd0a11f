"""Quota rules: nominal, cohort borrowing, borrowing and lending limits, flavor resolution."""

from __future__ import annotations

import pytest

from builders import make_node, make_queue
from gpupool.core.models import Quota
from gpupool.core.quota import QuotaLedger, resolve_flavors

G = 1000  # milli per GPU


@pytest.mark.parametrize(
    ("queues", "charges", "ask", "fits"),
    [
        pytest.param([make_queue("a", gpus=8)], [], 8 * G, True, id="alone: up to nominal fits"),
        pytest.param([make_queue("a", gpus=8)], [], 9 * G, False, id="alone: never above nominal"),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")],
            [],
            16 * G,
            True,
            id="cohort: borrows a peer's idle nominal",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c", borrowing=2), make_queue("b", gpus=8, cohort="c")],
            [],
            11 * G,
            False,
            id="cohort: never beyond the borrowing limit",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c", borrowing=2), make_queue("b", gpus=8, cohort="c")],
            [],
            10 * G,
            True,
            id="cohort: up to the borrowing limit fits",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c", lending=3)],
            [],
            12 * G,
            False,
            id="cohort: a peer lends at most its lending limit",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c", lending=3)],
            [],
            11 * G,
            True,
            id="cohort: lending limit allows that much",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")],
            [("b", 6 * G)],
            12 * G,
            False,
            id="cohort: what a peer uses is not lendable",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")],
            [("b", 14 * G)],
            4 * G,
            False,
            id="cohort: within nominal but lent out: must reclaim",
        ),
        pytest.param(
            [make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c", lending=0)],
            [("a", 8 * G)],
            1 * G,
            False,
            id="cohort: nothing to borrow when peers lend nothing",
        ),
        pytest.param([make_queue("a", gpus=None)], [], 1, False, id="no quota entry: zero quota"),
    ],
)
def test_fits(queues: list, charges: list, ask: int, fits: bool) -> None:
    ledger = QuotaLedger(queues)
    for name, milli in charges:
        ledger.charge(name, "model:H100", milli)
    assert ledger.fits("a", "model:H100", ask) is fits


def test_refund_gives_back_to_the_cohort_pool() -> None:
    ledger = QuotaLedger([make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")])
    ledger.charge("b", "model:H100", 14 * G)
    assert not ledger.fits("a", "model:H100", 4 * G)
    ledger.refund("b", "model:H100", 6 * G)
    assert ledger.fits("a", "model:H100", 8 * G)
    assert ledger.borrowing("b", "model:H100") == 0


def test_borrowed_after_counts_only_above_nominal() -> None:
    ledger = QuotaLedger([make_queue("a", gpus=8, cohort="c"), make_queue("b", gpus=8, cohort="c")])
    ledger.charge("a", "model:H100", 6 * G)
    assert ledger.borrowed_after("a", "model:H100", 4 * G) == 2 * G


@pytest.mark.parametrize(
    ("node", "flavor"),
    [
        pytest.param(make_node("n", model="H100", pool="dgx"), "pool:dgx", id="pool entry wins over model"),
        pytest.param(make_node("n", model="H100", pool="other"), "model:H100", id="else the model entry"),
        pytest.param(make_node("n", model="A100", pool="other"), None, id="no entry: not usable"),
    ],
)
def test_flavor_resolution(node: object, flavor: str | None) -> None:
    queue = make_queue("a", quotas=(Quota(nominal_gpus=4, gpu_model="H100"), Quota(nominal_gpus=4, pool="dgx")))
    names, index = resolve_flavors(queue, [node])  # type: ignore[list-item]
    got = None if index[0] < 0 else names[index[0]]
    assert got == flavor
