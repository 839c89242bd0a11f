"""The CRDs in crds/ are generated from the models, are structural, document every field and
carry the validation the issue asks for."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpupool.api.crdgen import main, rendered_files
from gpupool.api.objects import KINDS

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(rendered_files()[name])
    return doc


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path (list items as `[]`, map values as `{}`)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


FILES = sorted(rendered_files())
JOB = "gpujobs.gpupool.io.yaml"
QUEUE = "gpuqueues.gpupool.io.yaml"
POOL = "gpunodepools.gpupool.io.yaml"


def test_committed_crds_are_up_to_date() -> None:
    stale = [name for name, text in rendered_files().items() if (CRDS / name).read_text() != text]
    assert not stale, f"{stale} are stale: run `make crds` (python -m gpupool.api.crdgen --out crds/)"


def test_check_passes_on_fresh_output_and_names_a_stale_file(tmp_path: Path, capsys: Any) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / QUEUE
    stale.write_text(stale.read_text().replace("StrictFIFO", "LIFO"))
    assert main(["--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert str(stale) in err
    assert "make crds" in err


def test_check_reports_a_missing_file(tmp_path: Path, capsys: Any) -> None:
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert JOB in capsys.readouterr().err


def test_module_runs_as_a_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpupool.api.crdgen", "--out", str(tmp_path), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "stale:" in result.stderr


@pytest.mark.parametrize("name", FILES)
def test_every_field_has_a_description(name: str) -> None:
    undocumented = [
        path
        for path, node in walk(root_schema(load(name)))
        if path not in (".metadata",) and not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert not undocumented, f"add Field(description=...) for {undocumented}"


@pytest.mark.parametrize("name", FILES)
def test_schema_is_structural(name: str) -> None:
    for path, node in walk(root_schema(load(name))):
        int_or_string = node.get("x-kubernetes-int-or-string")
        assert "type" in node or int_or_string, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "$ref" not in node and "allOf" not in node and "oneOf" not in node, path
        assert not node.get("uniqueItems"), path
        assert "nullable" not in node, path
        if "anyOf" in node:
            assert int_or_string and node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        if node.get("type") == "object" and "properties" not in node and path != ".metadata":
            assert "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


@pytest.mark.parametrize("name", FILES)
def test_unknown_fields_are_kept_only_in_template_and_parameters(name: str) -> None:
    open_paths = {
        path for path, node in walk(root_schema(load(name))) if node.get("x-kubernetes-preserve-unknown-fields")
    }
    allowed = {".spec.template.metadata", ".spec.template.spec", ".spec.provenance.parameters"}
    assert open_paths <= allowed


@pytest.mark.parametrize("name", FILES)
def test_every_cel_rule_reads_only_fields_of_its_object(name: str) -> None:
    """A typo in a CEL rule makes the API server refuse the whole CRD; catch it offline."""
    rules = 0
    for path, node in walk(root_schema(load(name))):
        for rule in node.get("x-kubernetes-validations", []):
            rules += 1
            assert rule["message"], path
            for field in re.findall(r"self\.(\w+)", rule["rule"]):
                assert field in node.get("properties", {}), f"{path}: rule {rule['rule']!r} reads unknown {field}"
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], path
            assert rule["rule"].count("(") == rule["rule"].count(")"), path
    assert rules > 0


def rules_at(name: str, path: str) -> list[str]:
    nodes = dict(walk(root_schema(load(name))))
    return [r["rule"] for r in nodes[path].get("x-kubernetes-validations", [])]


@pytest.mark.parametrize(
    ("name", "path", "fragment"),
    [
        (JOB, ".spec", "self.workers == 1"),
        (JOB, ".spec.gpus", "self == double(int(self))"),
        (JOB, ".spec.gpus", "self >= 0.001"),
        (QUEUE, ".spec.quotas[]", "has(self.gpuModel) != has(self.pool)"),
        (QUEUE, ".spec.quotas[]", "self.lendingLimit <= self.nominal"),
        (POOL, ".spec", "self.minNodes <= self.maxNodes"),
        (POOL, ".spec", "self.provider == 'ClusterAPI') == has(self.clusterAPI)"),
    ],
    ids=[
        "fraction-needs-one-worker",
        "gpus-whole-or-fraction",
        "gpus-milli",
        "one-flavor",
        "lending",
        "min-max",
        "clusterapi-exactly-when-provider",
    ],
)
def test_cross_field_rules_are_present(name: str, path: str, fragment: str) -> None:
    assert any(fragment in rule for rule in rules_at(name, path))


@pytest.mark.parametrize(
    ("name", "path", "key", "value"),
    [
        (JOB, ".spec.workers", "minimum", 1),
        (JOB, ".spec.workers", "maximum", 1024),
        (JOB, ".spec.gpus", "type", "number"),
        (JOB, ".spec.gpus", "exclusiveMinimum", True),
        (JOB, ".spec.gpus", "maximum", 16),
        (JOB, ".spec.placement", "enum", ["OnPremOnly", "CloudAllowed", "SpotAllowed"]),
        (JOB, ".spec.placement", "default", "OnPremOnly"),
        (JOB, ".spec.preemptible", "default", True),
        (JOB, ".spec.priority", "default", 0),
        (JOB, ".spec.cpu", "x-kubernetes-int-or-string", True),
        (JOB, ".spec.memory", "minimum", 0),
        (JOB, ".status.phase", "enum", ["Queued", "Admitted", "Running", "Succeeded", "Failed", "Preempted"]),
        (QUEUE, ".spec.weight", "default", 1.0),
        (QUEUE, ".spec.weight", "exclusiveMinimum", True),
        (QUEUE, ".spec.queueingStrategy", "default", "BestEffortFIFO"),
        (QUEUE, ".spec.preemption", "default", {}),
        (QUEUE, ".spec.preemption.reclaimWithinCohort", "default", True),
        (QUEUE, ".spec.budget.currency", "default", "USD"),
        (QUEUE, ".spec.budget.period", "enum", ["Monthly", "Weekly", "Daily"]),
        (QUEUE, ".spec.quotas[].nominal", "minimum", 0),
        (POOL, ".spec.class", "enum", ["OnPrem", "Cloud"]),
        (POOL, ".spec.provider", "enum", ["Static", "Kwok", "ClusterAPI"]),
        (POOL, ".spec.clusterAPI", "required", ["namespace", "machineDeployment"]),
        (POOL, ".spec.provider", "default", "Static"),
        (POOL, ".spec.pricePerNodeHour.spot", "minimum", 0),
        (POOL, ".spec.gpusPerNode", "maximum", 16),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith(".") else None,
)
def test_bounds_enums_and_defaults(name: str, path: str, key: str, value: Any) -> None:
    assert dict(walk(root_schema(load(name))))[path][key] == value


@pytest.mark.parametrize("name", FILES)
def test_max_runtime_pattern_accepts_durations_and_refuses_others(name: str) -> None:
    patterns = {
        node["pattern"] for path, node in walk(root_schema(load(name))) if path.endswith(("maxRuntime", "minRuntime"))
    }
    for pattern in patterns:
        for good in ("30s", "90m", "2h", "1h30m", "1h30m15s", "5m30s"):
            assert re.match(pattern, good), good
        for bad in ("", "2 hours", "1.5h", "30", "m", "30m1h", "-1h"):
            assert not re.match(pattern, bad), bad


@pytest.mark.parametrize(
    ("info_index", "scope", "short", "columns"),
    [
        (0, "Namespaced", ["gj"], ["Queue", "Phase", "Workers", "GPUs", "Message", "Age"]),
        (1, "Cluster", ["gq"], ["Cohort", "Admitted", "Pending", "Age"]),
        (2, "Cluster", ["gnp"], ["Class", "Model", "Nodes", "GPUs", "Provisioning", "Age"]),
        (3, "Cluster", ["gnc"], ["Pool", "Type", "Phase", "Node", "Reason", "Age"]),
    ],
    ids=["gpujob", "gpuqueue", "gpunodepool", "gpunodeclaim"],
)
def test_names_scope_columns_and_status_subresource(
    info_index: int, scope: str, short: list[str], columns: list[str]
) -> None:
    info = KINDS[info_index]
    crd = load(f"{info.crd_name}.yaml")
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{info.plural}.gpupool.io"
    assert spec["group"] == "gpupool.io"
    assert spec["scope"] == scope
    assert spec["names"]["shortNames"] == short
    assert spec["names"]["categories"] == ["gpupool"]
    version = spec["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    schema_paths = dict(walk(root_schema(crd)))
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"] != ".metadata.creationTimestamp":
            assert column["jsonPath"] in schema_paths, column
