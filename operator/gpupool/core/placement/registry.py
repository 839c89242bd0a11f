"""Scoring policy names, and which one `default` means.

Who uses this: `PlacementState.place` resolves its `scoring_policy` argument here (the
scheduling core passes `SchedulerConfig.scoring_policy`, the trace bench its `--policy`);
the operator's settings (`gpupool.settings`) check their `placement_policy` against
`SCORING_POLICY_NAMES` at start-up, and the trace bench offers them as `--policy` choices.
"""

from __future__ import annotations

from gpupool.core.placement.gpupool_policy import gpupool_policy
from gpupool.core.placement.policies import ScoringPolicy, bestfit_policy, fgd_policy, random_policy

SCORING_POLICIES: dict[str, ScoringPolicy] = {
    "random": random_policy,
    "bestfit": bestfit_policy,
    "fgd": fgd_policy,
    "gpupool": gpupool_policy,
}
DEFAULT_SCORING_POLICY = "default"
# What `default` stands for: the best policy on the openb trace bench (docs/benchmarks.md).
DEFAULT_RESOLVES_TO = "gpupool"
SCORING_POLICY_NAMES: tuple[str, ...] = (DEFAULT_SCORING_POLICY, *SCORING_POLICIES)


def resolve_scoring_policy(name: str) -> ScoringPolicy:
    """The scoring policy function for `name` (`default` = `DEFAULT_RESOLVES_TO`)."""
    key = DEFAULT_RESOLVES_TO if name == DEFAULT_SCORING_POLICY else name
    try:
        return SCORING_POLICIES[key]
    except KeyError:
        choices = ", ".join(SCORING_POLICY_NAMES)
        raise ValueError(f"unknown placement policy {name!r}: the scoring policy is one of {choices}") from None
