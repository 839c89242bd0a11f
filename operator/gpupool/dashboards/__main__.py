"""`python -m gpupool.dashboards --out dashboards [--check]`: write (or check) the dashboard JSON.

Each dashboard of `gpupool.dashboards.catalogue.DASHBOARDS` becomes `<out>/<uid>.json`.
`--check` writes nothing and exits 1 when a file is missing, differs, or is a JSON file no
dashboard produces (`make lint` runs it, so the committed JSON cannot go stale).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gpupool.dashboards.catalogue import DASHBOARDS
from gpupool.dashboards.grafana import to_json
from gpupool.generated_folder import GeneratedFolder


def expected() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {f"{spec.uid}.json": to_json(spec) for spec in DASHBOARDS}


GENERATED = GeneratedFolder(
    command="python -m gpupool.dashboards",
    description="Generate the Grafana dashboards' JSON.",
    default_out=Path("dashboards"),
    source="gpupool.dashboards.catalogue",
    make_target="dashboards",
    files=expected,
    owned_globs=("*.json",),
)


stale = GENERATED.stale
main = GENERATED.main


if __name__ == "__main__":
    sys.exit(GENERATED.main())
