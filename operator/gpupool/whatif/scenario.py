"""A scenario of `gpupool sim`: the GPUNodePool / GPUQueue YAML a platform team applies.

Who calls this: `gpupool.whatif.command` (one `--scenario NAME=FILE` each); the unit tests.
`load_scenario` returns a `gpupool.whatif.planning.SimCluster`, built with the operator's own
converters so that every field means what it means on a cluster.

The file is multi-document YAML of GPUNodePools and GPUQueues (other kinds are refused).
What a cluster knows and the YAML does not is given by annotations on a pool, which the
operator ignores, so the same file can still be applied:

- `whatif.gpupool.io/nodes`: how many nodes a Static pool has (default: its `maxNodes`;
  one of the two is required). They exist for the whole simulation and are paid every
  hour at the pool's regular node-hour price (the price rule of `gpupool.core.accounting`:
  `pricePerNodeHour.onDemand` when stated, else `amortised`).
- `whatif.gpupool.io/amortisation-months`: the life over which the amortised price
  spreads the purchase (default 36): a node's purchase price is its amortised node-hour
  price times the hours of that life (see `gpupool.whatif.breakeven`).

A pool whose provider is not Static (Kwok, ClusterAPI) is grown and shrunk by the planner:
its offers are the operator's (`PoolPricing.offers` of `cluster.translate.accounting.pool_pricing`,
`cluster.nodes.scaling.pool_template`), with its
`provisioningDelay`, `scaleDownAfter`, `minNodes`, `maxNodes` and `maxNodesInFlight`.
Queues are `cluster.translate.convert.queue_from_api`; a queue's `spec.budget` is enforced.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gpupool.api import GPUNodePool, GPUQueue, Provider
from gpupool.cluster.nodes.scaling import pool_template
from gpupool.cluster.translate.accounting import pool_pricing
from gpupool.cluster.translate.convert import ConversionError, budget_from_api, parse_duration_seconds, queue_from_api
from gpupool.cluster.translate.snapshot import hardware_of, pool_info
from gpupool.core.budget import BudgetLimits
from gpupool.core.models import NodeOffer, Queue
from gpupool.whatif.planning import FixedPool, ScalingPool, SimCluster

NODES_ANNOTATION = "whatif.gpupool.io/nodes"
AMORTISATION_ANNOTATION = "whatif.gpupool.io/amortisation-months"
DEFAULT_AMORTISATION_MONTHS = 36.0
KINDS: dict[str, type[BaseModel]] = {"GPUNodePool": GPUNodePool, "GPUQueue": GPUQueue}


class ScenarioError(ValueError):
    """A scenario file cannot be read; the message names the file, line, object and field."""


def _documents(path: Path) -> list[tuple[int, Any]]:
    """Each non-empty document with the line it starts on."""
    try:
        text = path.read_text()
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        return [(n.start_mark.line + 1, yaml.safe_load(yaml.serialize(n))) for n in nodes if n is not None]
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not YAML: {error}") from None


def _parse(path: Path, line: int, doc: Any) -> GPUNodePool | GPUQueue:
    where = f"{path}:{line}"
    if not isinstance(doc, dict):
        raise ScenarioError(f"{where}: a document is a GPUNodePool or a GPUQueue mapping")
    kind = doc.get("kind")
    model = KINDS.get(str(kind))
    if model is None:
        raise ScenarioError(f"{where}: field 'kind': {kind!r} is not one of {', '.join(KINDS)}")
    name = (doc.get("metadata") or {}).get("name")
    if not name:
        raise ScenarioError(f"{where}: {kind}: field 'metadata.name' is required")
    try:
        parsed = model.model_validate(doc)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"{where}: {kind} {name}: field {field!r}: {first['msg']}") from None
    assert isinstance(parsed, GPUNodePool | GPUQueue)
    return parsed


def _annotation(pool: GPUNodePool, key: str, where: str) -> float | None:
    raw = ((pool.metadata.get("annotations") or {}) if isinstance(pool.metadata, dict) else {}).get(key)
    if raw is None:
        return None
    try:
        value = float(str(raw))
    except ValueError:
        raise ScenarioError(f"{where}: field 'metadata.annotations.{key}': {raw!r} is not a number") from None
    if value < 0:
        raise ScenarioError(f"{where}: field 'metadata.annotations.{key}': {raw!r} is negative")
    return value


def _fixed(pool: GPUNodePool, where: str) -> FixedPool:
    name = str(pool.metadata["name"])
    count = _annotation(pool, NODES_ANNOTATION, where)
    if count is None:
        if pool.spec.max_nodes is None:
            raise ScenarioError(
                f"{where}: field 'metadata.annotations.{NODES_ANNOTATION}': a Static pool needs its node count "
                "there (or spec.maxNodes)"
            )
        count = float(pool.spec.max_nodes)
    if count != int(count):
        raise ScenarioError(f"{where}: field 'metadata.annotations.{NODES_ANNOTATION}': {count} is not whole")
    template = pool_template(pool, spot=False)
    if template is None:  # pragma: no cover - a validated pool always names its model
        raise ScenarioError(f"{where}: field 'spec.gpuModel' is required")
    life = _annotation(pool, AMORTISATION_ANNOTATION, where) or DEFAULT_AMORTISATION_MONTHS
    return FixedPool(
        name=name,
        nodes=tuple(replace(template, name=f"{name}-{i}", ready=True) for i in range(int(count))),
        amortised_per_node_hour=pool_pricing(pool).node_hour(spot=False),
        amortisation_months=life,
    )


def _scaling(pool: GPUNodePool, where: str) -> ScalingPool:
    name = str(pool.metadata["name"])
    offers = []
    for spot, price in pool_pricing(pool).offers():
        template = pool_template(pool, spot=spot)
        if template is not None:
            offers.append(NodeOffer(pool=name, node=template, price_per_hour=price, headroom=0))
    try:
        delay = parse_duration_seconds(pool.spec.provisioning_delay, what=f"{where}: field 'spec.provisioningDelay'")
        after = parse_duration_seconds(pool.spec.scale_down_after, what=f"{where}: field 'spec.scaleDownAfter'")
    except ConversionError as error:
        raise ScenarioError(str(error)) from None
    return ScalingPool(
        name=name,
        offers=tuple(offers),
        provisioning_delay=delay,
        scale_down_after=after,
        min_nodes=pool.spec.min_nodes,
        max_nodes=pool.spec.max_nodes,
        max_in_flight=pool.spec.max_nodes_in_flight,
    )


def load_scenario(path: str | Path, name: str) -> SimCluster:
    """The scenario in `path` as core values (see the module docstring)."""
    path = Path(path)
    pools: dict[str, tuple[str, GPUNodePool]] = {}
    queues: dict[str, tuple[str, GPUQueue]] = {}
    for line, doc in _documents(path):
        obj = _parse(path, line, doc)
        where = f"{path}:{line}"
        target: dict[str, Any] = pools if isinstance(obj, GPUNodePool) else queues
        obj_name = str(obj.metadata["name"])
        if obj_name in target:
            raise ScenarioError(f"{where}: field 'metadata.name': a second {obj.kind} named {obj_name}")
        target[obj_name] = (where, obj)
    if not pools or not queues:
        raise ScenarioError(f"{path}: a scenario needs at least one GPUNodePool and one GPUQueue")
    fixed = []
    scaling = []
    for where, pool in pools.values():
        if pool.spec.provider == Provider.STATIC:
            fixed.append(_fixed(pool, where))
        else:
            scaling.append(_scaling(pool, where))
    core_queues: list[Queue] = []
    budgets: dict[str, BudgetLimits] = {}
    for queue_name, (where, queue) in queues.items():
        try:
            core_queues.append(queue_from_api(queue))
        except ConversionError as error:
            raise ScenarioError(f"{where}: {error}") from None
        if queue.spec.budget is not None:
            budgets[queue_name] = budget_from_api(queue.spec.budget)
    infos = {pool_name: pool_info(pool) for pool_name, (_, pool) in pools.items()}
    return SimCluster(
        name=name,
        fixed=tuple(fixed),
        scaling=tuple(scaling),
        queues=tuple(core_queues),
        budgets=budgets,
        hardware=hardware_of(infos),
    )


__all__ = ["AMORTISATION_ANNOTATION", "NODES_ANNOTATION", "ScenarioError", "load_scenario"]
