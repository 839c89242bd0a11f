"""A private control plane for one benchmark run: built if missing, started in a temporary
folder without Prometheus, and always stopped and deleted afterwards.

Who calls this: `gpupool bench footprint` and `gpupool bench load` (`footprint_bench`,
`load_bench`); each hands over what to run on the cluster and prints its own figures.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gpupool.devcluster.build import BuildError, ensure_built
from gpupool.devcluster.cluster import DevCluster

T = TypeVar("T")


def say_as(command: str) -> Callable[[str], None]:
    """A progress printer that prefixes each line with the command's name, on stderr."""

    def say(message: str) -> None:
        print(f"{command}: {message}", file=sys.stderr, flush=True)

    return say


def run_on_private_cluster(command: str, run: Callable[[DevCluster], T]) -> T | None:
    """Run `run` on a fresh DevCluster (no Prometheus: the benches measure the operator and the
    control plane alone); None after a build failure, an error or Ctrl-C, each said on stderr."""
    say = say_as(command)
    try:
        ensure_built(progress=say)
    except BuildError as error:
        say(str(error))
        return None
    folder = Path(tempfile.mkdtemp(prefix=f"{command.replace(' ', '-')}-"))
    cluster = DevCluster(folder / "state", with_prometheus=False)
    try:
        return run(cluster)
    except KeyboardInterrupt:
        say("interrupted")
    except Exception as error:  # a ClusterError or an ApiException: say it, then clean up
        say(f"failed: {type(error).__name__}: {error}")
    finally:
        cluster.down(progress=lambda _msg: None)
        shutil.rmtree(folder, ignore_errors=True)
    return None
