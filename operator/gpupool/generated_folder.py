"""The command line shared by generators that write a folder of files from code.

Who uses this: `gpupool.chart` (the Helm chart's generated files) and `gpupool.dashboards`
(the dashboards' JSON). A generator hands over its file map (relative path -> text); with
`--out` every file is written, and with `--check` nothing is written and the command exits
1 when a file is missing or differs, or when a file in one of the generator's own folders
matching its pattern is not one it makes (a leftover of a renamed kind or dashboard).
`make lint` runs each with `--check`, so a committed generated file cannot go stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedFolder:
    """A folder whose files (or some of them) are generated: how, and how to regenerate them."""

    command: str
    description: str
    default_out: Path
    source: str
    make_target: str
    files: Callable[[], dict[str, str]]
    owned_globs: tuple[str, ...] = ()
    """Patterns (relative to --out) whose every match must be a generated file."""

    def stale(self, out: Path) -> list[str]:
        """What in `out` is missing, differs or should not be there (empty: up to date)."""
        files = self.files()
        problems = []
        for name, text in files.items():
            path = out / name
            if not path.is_file():
                problems.append(f"{path} is missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{path} differs from {self.source}")
        for pattern in self.owned_globs:
            for path in sorted(out.glob(pattern)):
                if path.relative_to(out).as_posix() not in files:
                    problems.append(f"{path} is not generated from {self.source}")
        return problems

    def write(self, out: Path) -> list[Path]:
        """Write every generated file under `out`; returns the paths written."""
        written = []
        for name, text in self.files().items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse `--out`/`--check`, write or check; returns the exit status."""
        parser = argparse.ArgumentParser(prog=self.command, description=self.description)
        parser.add_argument(
            "--out", type=Path, default=self.default_out, help=f"folder to write (default: {self.default_out})"
        )
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out is stale")
        args = parser.parse_args(argv)
        if args.check:
            problems = self.stale(args.out)
            for problem in problems:
                print(f"stale: {problem}", file=sys.stderr)
            if problems:
                print(
                    f"Regenerate with `make {self.make_target}` ({self.command} --out {args.out}) and commit it.",
                    file=sys.stderr,
                )
                return 1
            print(f"{args.out}/ is up to date ({len(self.files())} generated files).")
            return 0
        for path in self.write(args.out):
            print(f"wrote {path}")
        return 0
