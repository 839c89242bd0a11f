"""The chaos runs' handles on the session cluster's operator (see `gpupool.devcluster.chaos`).

Kept out of `cluster_tools.py` so the chaos tests add no weight to the helpers every cluster
test imports.
"""

from __future__ import annotations

import signal
import urllib.request

from cluster_tools import OperatorProcess


class SessionOperator:
    """`OperatorControl` over the session's `OperatorProcess`: SIGKILL, start, liveness."""

    def __init__(self, process: OperatorProcess) -> None:
        self.process = process

    def kill(self) -> None:
        self.process.kill(signal.SIGKILL)

    def start(self) -> None:
        self.process.start()

    def alive(self) -> bool:
        return self.process.proc is not None and self.process.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.process.port}/healthz", timeout=3) as response:
                return bool(response.status == 200)
        except OSError:
            return False
