"""Liveness and readiness endpoints of the operator.

Who calls this: `gpupool.controllers.runner` starts `HealthServer` next to kopf. Kubernetes
probes (and the tests) ask:
- `/healthz`: the process is alive and the scheduling loop has cycled recently;
- `/readyz`: the cache has listed every kind and at least one cycle has run; with leader
  election, a standby whose cache is synced answers 200 with `standby: leader is <identity>`
  (it is ready to take over; a 503 would hold a rolling update forever).

A check returns a bool (body `ok` / `not ok`) or a pair (ok, body).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A check's answer: healthy or not, optionally with the text to answer.
Check = Callable[[], bool | tuple[bool, str]]


class HealthServer:
    """A tiny HTTP server in a daemon thread; `port` 0 picks a free port (see `.port`)."""

    def __init__(self, host: str, port: int, live: Check, ready: Check) -> None:
        checks = {"/healthz": live, "/livez": live, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                check = checks.get(self.path.split("?")[0])
                if check is None:
                    self.send_error(404)
                    return
                answer = check()
                ok, text = answer if isinstance(answer, tuple) else (answer, "ok" if answer else "not ok")
                body = f"{text}\n".encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()


def loop_is_live(last_cycle_at: Callable[[], float | None], started_at: float, budget_seconds: float) -> bool:
    """Live while the loop cycled within `budget_seconds` (or start-up is still within it)."""
    last = last_cycle_at()
    reference = last if last is not None else started_at
    return time.time() - reference < budget_seconds
