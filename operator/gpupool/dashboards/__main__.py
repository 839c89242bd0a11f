"""`python -m gpupool.dashboards --out dashboards [--check]`: write (or check) the dashboard JSON.

Each dashboard of `gpupool.dashboards.catalogue.DASHBOARDS` becomes `<out>/<uid>.json`.
`--check` writes nothing and exits 1 when a file is missing, differs, or is a JSON file no
dashboard produces (`make lint` runs it, so the committed JSON cannot go stale).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gpupool.dashboards.catalogue import DASHBOARDS
from gpupool.dashboards.grafana import to_json

COMMAND = "python -m gpupool.dashboards"


def expected() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {f"{spec.uid}.json": to_json(spec) for spec in DASHBOARDS}


def stale(out: Path) -> list[str]:
    """What in `out` differs from the generated dashboards (empty: up to date)."""
    files = expected()
    problems = []
    for name, text in files.items():
        path = out / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif path.read_text() != text:
            problems.append(f"{path} differs from gpupool.dashboards.catalogue")
    for path in sorted(out.glob("*.json")):
        if path.name not in files:
            problems.append(f"{path} is no generated dashboard")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Generate the Grafana dashboards' JSON.")
    parser.add_argument("--out", type=Path, default=Path("dashboards"), help="folder to write (default: dashboards)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.out)
        for problem in problems:
            print(f"stale: {problem}", file=sys.stderr)
        if problems:
            print(f"Regenerate with `make dashboards` ({COMMAND} --out {args.out}) and commit it.", file=sys.stderr)
            return 1
        print(f"{args.out}/ is up to date ({len(DASHBOARDS)} dashboards).")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in expected().items():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
