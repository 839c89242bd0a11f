"""Operator settings: a bad value stops `gpupool operator run` at start-up, naming the variable."""

from __future__ import annotations

import pytest

from gpupool.controllers import runner
from gpupool.core.placement.registry import SCORING_POLICY_NAMES
from gpupool.settings import OperatorSettings


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("GPUPOOL_PLACEMENT_POLICY", "tetris", ", ".join(SCORING_POLICY_NAMES)),
        ("GPUPOOL_SCHEDULE_INTERVAL_SECONDS", "-1", "greater than 0"),
        ("GPUPOOL_WRITE_CONCURRENCY", "0", "greater than or equal to 1"),
        ("GPUPOOL_LOG_FORMAT", "xml", "'json' or 'text'"),
    ],
    ids=["unknown-policy", "negative-interval", "no-writers", "log-format"],
)
def test_a_bad_setting_stops_the_operator_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert runner.main([]) == 2
    error = capsys.readouterr().err
    assert variable in error
    assert named in error


@pytest.mark.parametrize("policy", SCORING_POLICY_NAMES)
def test_every_known_policy_is_accepted(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    monkeypatch.setenv("GPUPOOL_PLACEMENT_POLICY", policy)
    assert OperatorSettings().placement_policy == policy
