"""Scenario files of `gpupool sim` (`gpupool.whatif.scenario`): the example files load, and a
bad document names its line, object and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.core.budget import Period
from gpupool.whatif.scenario import ScenarioError, load_scenario

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "whatif"
POOL = """apiVersion: gpupool.io/v1alpha1
kind: GPUNodePool
metadata:
  name: onprem
  annotations: {ANNOTATIONS}
spec:
  class: OnPrem
  gpuModel: A100
  gpusPerNode: {GPUS}
  cpuPerNode: "64"
  memoryPerNode: 512Gi
  pricePerNodeHour: {amortised: 8.0}
  provider: Static
"""
QUEUE = """---
apiVersion: gpupool.io/v1alpha1
kind: GPUQueue
metadata: {name: team}
spec:
  quotas: [{gpuModel: A100, nominal: 8}]
  budget: {amount: 100, currency: USD, period: Daily}
"""


def scenario(tmp_path: Path, annotations: str = '{"whatif.gpupool.io/nodes": "3"}', gpus: str = "8") -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(POOL.replace("{ANNOTATIONS}", annotations).replace("{GPUS}", gpus) + QUEUE)
    return path


def test_the_examples_load() -> None:
    base = load_scenario(EXAMPLES / "base.yaml", "base")
    bought = load_scenario(EXAMPLES / "buy-2-g2.yaml", "buy")
    assert [len(p.nodes) for p in base.fixed] == [2]
    assert [len(p.nodes) for p in bought.fixed] == [4]
    (cloud,) = base.scaling
    assert (cloud.provisioning_delay, cloud.scale_down_after, cloud.max_nodes) == (180.0, 300.0, 16)
    assert [o.price_per_hour for o in cloud.offers] == [32.7726]
    assert [q.name for q in base.queues] == ["research", "product"]


def test_a_static_pool_gets_its_nodes_price_and_life(tmp_path: Path) -> None:
    path = scenario(tmp_path, '{"whatif.gpupool.io/nodes": "3", "whatif.gpupool.io/amortisation-months": "48"}')
    cluster = load_scenario(path, "s")
    (pool,) = cluster.fixed
    assert [n.name for n in pool.nodes] == ["onprem-0", "onprem-1", "onprem-2"]
    assert all(n.ready and n.gpus == 8 and n.gpu_model == "A100" for n in pool.nodes)
    assert (pool.amortised_per_node_hour, pool.amortisation_months) == (8.0, 48.0)
    assert cluster.budgets["team"].period == Period.DAILY


@pytest.mark.parametrize(
    ("annotations", "gpus", "message"),
    [
        ("{}", "8", "cluster.yaml:1: field 'metadata.annotations.whatif.gpupool.io/nodes': a Static pool needs"),
        ('{"whatif.gpupool.io/nodes": "many"}', "8", "field 'metadata.annotations.whatif.gpupool.io/nodes': 'many'"),
        ('{"whatif.gpupool.io/nodes": "2"}', "0", "cluster.yaml:1: GPUNodePool onprem: field 'spec.gpusPerNode'"),
        ('{"whatif.gpupool.io/nodes": "2"}', "eight", "GPUNodePool onprem: field 'spec.gpusPerNode'"),
    ],
)
def test_a_bad_pool_names_its_field(tmp_path: Path, annotations: str, gpus: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario(tmp_path, annotations, gpus), "s")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("---\nkind: GPUJob\nmetadata: {name: j}\n", "cluster.yaml:22: field 'kind': 'GPUJob' is not one of"),
        ("---\nkind: GPUQueue\nspec: {}\n", "cluster.yaml:22: GPUQueue: field 'metadata.name' is required"),
        ("---\nkind: GPUQueue\nmetadata: {name: team}\n", "cluster.yaml:22: field 'metadata.name': a second GPUQueue"),
        ("---\nkind: GPUQueue\nmetadata: {name: x}\nspec: {weight: -1}\n", "GPUQueue x: field 'spec.weight'"),
    ],
)
def test_a_bad_document_names_its_line_and_field(tmp_path: Path, extra: str, message: str) -> None:
    path = scenario(tmp_path)
    path.write_text(path.read_text() + extra)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path, "s")
    assert message in str(error.value)
