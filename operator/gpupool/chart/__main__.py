"""`python -m gpupool.chart --out charts/gpupool [--check]`: the chart's generated files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gpupool.api.crdgen import rendered_files
from gpupool.chart.schema import values_schema
from gpupool.generated_folder import GeneratedFolder
from gpupool.metrics.alerts import render as render_alert_rules

RULES_FILE = "files/gpupool.rules.yaml"


def chart_files() -> dict[str, str]:
    """Path within the chart -> text, for every generated file of the chart."""
    files = {f"crds/{name}": text for name, text in rendered_files().items()}
    files[RULES_FILE] = render_alert_rules()
    files["values.schema.json"] = json.dumps(values_schema(), indent=2) + "\n"
    return files


CHART = GeneratedFolder(
    command="python -m gpupool.chart",
    description="Generate the Helm chart's CRDs, alert rules and values schema from code.",
    default_out=Path("charts/gpupool"),
    source="gpupool.api, gpupool.metrics.alerts and gpupool.chart.schema",
    make_target="chart",
    files=chart_files,
    owned_globs=("crds/*", "files/*"),
)

if __name__ == "__main__":
    sys.exit(CHART.main())
