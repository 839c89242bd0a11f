"""The kubelet's side of its gRPC APIs, faked in-process over real gRPC on unix sockets.

Who uses this: the device-plugin tests (`FakeRegistration`, the kubelet's Registration
service the simulated plugin registers with) and the PodResources client tests
(`FakePodResources`, the kubelet's PodResourcesLister). Each fake is a real `grpc.server` on
a socket in a short temporary folder (`short_dir`: a unix socket path may hold at most 107
bytes, more than pytest's `tmp_path` leaves) and is stopped by the test that made it.
"""

from __future__ import annotations

import queue
import tempfile
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from gpupool.agent import kubelet_api as api


@contextmanager
def short_dir() -> Iterator[Path]:
    """A fresh folder under /tmp whose paths are short enough for unix sockets."""
    with tempfile.TemporaryDirectory(prefix="gpk", dir="/tmp") as folder:
        yield Path(folder)


def serve_unix(socket_path: Path, service: str, methods: dict[str, grpc.RpcMethodHandler]) -> grpc.Server:
    """A started gRPC server answering `service`'s `methods` on the unix socket `socket_path`."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    return server


def _unary(fn: Callable[[Any, grpc.ServicerContext], Any], request: Any, response: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request.FromString, response_serializer=response.SerializeToString
    )


class FakeRegistration:
    """The kubelet's Registration service on `<plugin_dir>/<socket_name>` (the kubelet's
    `kubelet.sock` unless named); each RegisterRequest lands in `requests` (a queue, so a test
    waits for the next with a timeout)."""

    def __init__(self, plugin_dir: Path, socket_name: str = api.KUBELET_SOCKET_NAME) -> None:
        self.socket_path = plugin_dir / socket_name
        self.requests: queue.Queue[Any] = queue.Queue()
        m = api.DevicePlugin
        self.server = serve_unix(
            self.socket_path,
            api.REGISTRATION_SERVICE,
            {"Register": _unary(self._register, m["RegisterRequest"], m["Empty"])},
        )

    def _register(self, request: Any, _context: grpc.ServicerContext) -> Any:
        self.requests.put(request)
        return api.DevicePlugin["Empty"]()

    def next_request(self, timeout: float = 10.0) -> Any:
        """The next RegisterRequest; `queue.Empty` when none comes within `timeout` seconds."""
        return self.requests.get(timeout=timeout)

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


class FakePodResources:
    """The kubelet's PodResourcesLister on `socket_path`: `List` answers `answer`, or fails with
    `error` (a gRPC status code) when that is set."""

    def __init__(self, socket_path: Path, answer: Any = None) -> None:
        m = api.PodResources
        self.answer = answer if answer is not None else m["ListPodResourcesResponse"]()
        self.error: grpc.StatusCode | None = None
        self.calls = 0
        self.server = serve_unix(
            socket_path,
            api.POD_RESOURCES_SERVICE,
            {"List": _unary(self._list, m["ListPodResourcesRequest"], m["ListPodResourcesResponse"])},
        )

    def _list(self, _request: Any, context: grpc.ServicerContext) -> Any:
        self.calls += 1
        if self.error is not None:
            context.abort(self.error, "scripted failure")
        return self.answer

    def stop(self) -> None:
        self.server.stop(grace=None).wait()
