"""The real writer turns Kubernetes client exceptions into the port's typed errors."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from gpupool.cluster.kube.writer import write_error
from gpupool.cluster.writes.ports import Conflict, Forbidden, Invalid, NotFound, Transient, WriteError


def api_error(status: int, message: str = "") -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message}) if message else None
    return error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, NotFound),
        (409, Conflict),
        (401, Forbidden),
        (403, Forbidden),
        (400, Invalid),
        (422, Invalid),
        (429, Transient),
        (500, Transient),
        (503, Transient),
    ],
)
def test_each_status_becomes_its_typed_error(status: int, expected: type[WriteError]) -> None:
    assert type(write_error(api_error(status), "create pod ns/x")) is expected


def test_the_error_names_the_write_and_carries_the_servers_message() -> None:
    error = write_error(api_error(422, 'spec.gpus: Invalid value: "lots"'), "patch status of gpujobs/ns/x")
    assert str(error) == 'patch status of gpujobs/ns/x: HTTP 422 Reason: spec.gpus: Invalid value: "lots"'
