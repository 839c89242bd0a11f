"""Decayed usage and fair share."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpupool.core.fairshare import decay_usage, dominant_share, mean_life_seconds

H = 3600.0


@pytest.mark.parametrize(
    ("previous", "elapsed", "gpus", "expected"),
    [
        pytest.param(100.0, H, 0.0, 50.0, id="one half-life halves idle usage"),
        pytest.param(100.0, 2 * H, 0.0, 25.0, id="two half-lives quarter it"),
        pytest.param(100.0, 0.0, 8.0, 100.0, id="no time passes: unchanged"),
        pytest.param(0.0, 1e9, 4.0, 4.0 * H / math.log(2), id="steady use converges to gpus x mean life"),
    ],
)
def test_decay_usage(previous: float, elapsed: float, gpus: float, expected: float) -> None:
    assert decay_usage(previous, elapsed, gpus, H) == pytest.approx(expected)


@given(st.floats(0, 1e9), st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 64), st.floats(0, 64))
def test_decay_in_two_steps_equals_one_step(prev: float, a: float, b: float, g: float, _: float) -> None:
    two = decay_usage(decay_usage(prev, a, g, H), b, g, H)
    one = decay_usage(prev, a + b, g, H)
    assert two == pytest.approx(one, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("usage", "held", "weight", "expected"),
    [
        pytest.param(0.0, 8.0, 1.0, 0.5, id="held GPUs over cluster GPUs"),
        pytest.param(0.0, 8.0, 2.0, 0.25, id="double weight halves the share"),
        pytest.param(8 * mean_life_seconds(H), 0.0, 1.0, 0.5, id="history counts as average GPUs"),
        pytest.param(0.0, 8.0, 0.0, math.inf, id="zero weight goes last"),
    ],
)
def test_dominant_share(usage: float, held: float, weight: float, expected: float) -> None:
    assert dominant_share(usage, held, weight, 16.0, H) == pytest.approx(expected)
