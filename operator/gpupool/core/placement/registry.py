"""Placement policy names, and which one `default` means.

Who uses this: `ClusterState.place` resolves its `policy` argument here; the operator's
settings and the trace bench validate names against `POLICY_NAMES`.
"""

from __future__ import annotations

from gpupool.core.placement.gpupool_policy import gpupool_policy
from gpupool.core.placement.policies import Policy, bestfit_policy, fgd_policy, random_policy

POLICIES: dict[str, Policy] = {
    "random": random_policy,
    "bestfit": bestfit_policy,
    "fgd": fgd_policy,
    "gpupool": gpupool_policy,
}
DEFAULT_POLICY = "default"
# What `default` stands for: the best policy on the openb trace bench (docs/benchmarks.md).
DEFAULT_RESOLVES_TO = "gpupool"
POLICY_NAMES: tuple[str, ...] = (DEFAULT_POLICY, *POLICIES)


def resolve_policy(name: str) -> Policy:
    """The policy function for `name` (`default` = `DEFAULT_RESOLVES_TO`)."""
    key = DEFAULT_RESOLVES_TO if name == DEFAULT_POLICY else name
    try:
        return POLICIES[key]
    except KeyError:
        raise ValueError(f"unknown placement policy {name!r}; choose one of {', '.join(POLICY_NAMES)}") from None
