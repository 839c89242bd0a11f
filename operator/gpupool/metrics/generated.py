"""The command line shared by the files generated from the metric declarations.

Who uses this: `gpupool.metrics.docgen` (docs/metrics.md) and `gpupool.metrics.alerts`
(the Prometheus rules file). Each writes its file with `--out`, or with `--check` writes
nothing and exits 1 when the file is missing or stale, naming the make target to run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Generated:
    """One generated file: how it is made, from what, and how to regenerate it."""

    command: str
    description: str
    default_out: Path
    source: str
    make_target: str

    def main(self, text: str, counted: str, argv: Sequence[str] | None = None) -> int:
        """Write `text` to `--out`, or with `--check` compare it; returns the exit status."""
        parser = argparse.ArgumentParser(prog=self.command, description=self.description)
        parser.add_argument(
            "--out", type=Path, default=self.default_out, help=f"file to write (default: {self.default_out})"
        )
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out is missing or stale")
        args = parser.parse_args(argv)
        if args.check:
            current = args.out.read_text() if args.out.exists() else None
            if current != text:
                print(f"stale: {args.out} differs from {self.source}", file=sys.stderr)
                print(
                    f"Regenerate with `make {self.make_target}` ({self.command} --out {args.out}) and commit it.",
                    file=sys.stderr,
                )
                return 1
            print(f"{args.out} is up to date ({counted}).")
            return 0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
        return 0
