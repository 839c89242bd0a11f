"""The `gpupool.io/pod-devices` annotation: what the agent writes parses back, and anything
malformed parses to None (never an exception, never half a report)."""

from __future__ import annotations

import pytest

from gpupool.annotations.pod_devices import MAX_DEVICE_ID_LENGTH, format_pod_devices, parse_pod_devices, pod_key


def test_format_sorts_pods_and_devices_drops_empty_pods_and_parses_back() -> None:
    text = format_pod_devices({pod_key("b", "p"): ["GPU-2", "GPU-1"], pod_key("a", "q"): ["GPU-3"], "c/none": []})
    assert text == '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/q":["GPU-3"],"b/p":["GPU-1","GPU-2"]}}'
    assert parse_pod_devices(text) == {"a/q": ("GPU-3",), "b/p": ("GPU-1", "GPU-2")}


def test_an_empty_report_is_not_a_missing_one() -> None:
    assert parse_pod_devices(format_pod_devices({})) == {}
    assert parse_pod_devices(None) is None


def test_a_report_of_another_resource_is_not_read_as_gpus() -> None:
    assert parse_pod_devices(format_pod_devices({"a/p": ["x"]}, resource="example.com/fpga")) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v":2,"resource":"nvidia.com/gpu","pods":{}}',
        '{"v":1,"pods":{}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":[]}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"nopod":["GPU-1"]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b/c":["GPU-1"]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"/b":["GPU-1"]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b":"GPU-1"}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b":[""]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b":[7]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b":["GPU-1"],"c/d":[null]}}',
        '{"v":1,"resource":"nvidia.com/gpu","pods":{"a/b":["' + "x" * (MAX_DEVICE_ID_LENGTH + 1) + '"]}}',
    ],
)
def test_malformed_reports_parse_to_none(text: str) -> None:
    assert parse_pod_devices(text) is None
