"""`gpupool report`: flags, the queries with progress on stderr, and the files written.

Who calls this: `gpupool.cli` (`gpupool report ...`). Exit codes: 0 written; 2 bad flags,
or Prometheus unreachable or refusing a query, in which case nothing is written (files are
written only once every query has answered, each through a temporary file renamed into place).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from gpupool.report.build import build_report
from gpupool.report.gather import gather
from gpupool.report.period import PeriodError, make_window, parse_duration, parse_period, parse_timestamp
from gpupool.report.plot import spend_png
from gpupool.report.prom import PrometheusClient, PrometheusError, QueryClient
from gpupool.report.render import FORMATS, render

EXIT_PROMETHEUS = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpupool report",
        description="The chargeback report: GPU-hours, cost, idle time, spot savings and budgets per queue and "
        "namespace, read from Prometheus (so it covers jobs already deleted).",
    )
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL, e.g. http://localhost:9090")
    p.add_argument("--period", help="a UTC month YYYY-MM or a UTC day YYYY-MM-DD")
    p.add_argument("--from", dest="start", metavar="TIME", help="window start: ISO 8601 (UTC if no offset) or epoch s")
    p.add_argument("--to", dest="end", metavar="TIME", help="window end (exclusive), as --from")
    p.add_argument("--queue", help="only this GPUQueue")
    p.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    p.add_argument("--out", type=Path, help="write here (default: stdout); md writes its plot next to it")
    p.add_argument("--step", default="60s", help="sampling step, e.g. 15s, 60s (default 60s)")
    p.add_argument("--bucket", help="spend-over-time bucket (default: a day from 2 days, an hour from 2 hours)")
    p.add_argument("--top", type=int, default=10, help="costliest jobs to list (default 10)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each query (default 60)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv: Sequence[str] | None = None, client: QueryClient | None = None) -> int:
    """Run the report; `client` replaces the HTTP client (tests)."""
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.period and (args.start or args.end):
            raise PeriodError("give either --period or --from/--to, not both")
        if args.period:
            start, end = parse_period(args.period)
        elif args.start and args.end:
            start, end = parse_timestamp(args.start), parse_timestamp(args.end)
        else:
            raise PeriodError("give --period YYYY-MM or YYYY-MM-DD, or both --from and --to")
        step = parse_duration(args.step)
        window = make_window(start, end, step, parse_duration(args.bucket) if args.bucket else None)
    except PeriodError as error:
        p.error(str(error))
    if args.top < 0:
        p.error("--top must be 0 or more")

    progress = None if args.quiet else Progress()
    client = client or PrometheusClient(args.prometheus, timeout=args.timeout)
    try:
        gathered = gather(client, window, queue=args.queue, progress=progress)
    except PrometheusError as error:
        if progress:
            progress.done()
        print(f"gpupool report: {error}", file=sys.stderr)
        print("gpupool report: nothing was written.", file=sys.stderr)
        return EXIT_PROMETHEUS
    if progress:
        progress.done()
    report = build_report(gathered, top_jobs=args.top)
    png = spend_png(report) if args.format == "html" or (args.format == "md" and args.out) else None
    if args.out is None:
        sys.stdout.write(render(report, args.format, png=png))
        return 0
    files: dict[Path, bytes] = {}
    png_name = None
    if args.format == "md" and png:
        png_path = args.out.with_name(f"{args.out.stem}-spend.png")
        files[png_path] = png
        png_name = png_path.name
    files[args.out] = render(report, args.format, png=png, png_name=png_name).encode()
    for path, content in files.items():
        write_atomically(path, content)
    if not args.quiet:
        print(f"gpupool report: wrote {', '.join(str(path) for path in files)}", file=sys.stderr)
    return 0


def write_atomically(path: Path, content: bytes) -> None:
    """Write through a temporary file in the same folder, renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Progress:
    """Progress on stderr: one line rewritten in place on a terminal, else a line per step."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.shown = False

    def __call__(self, message: str) -> None:
        line = f"gpupool report: {message}"
        self.stream.write(f"\r\033[K{line}" if self.tty else line + "\n")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
