"""The `gpupool.io/gpu-uuids` annotation: what the agent writes parses back, and anything
malformed parses to None (never an exception, never half a map)."""

from __future__ import annotations

import pytest

from gpupool.agent.simulated import simulated_uuid
from gpupool.annotations.gpu_uuids import MAX_UUID_LENGTH, format_uuids, parse_uuids


def test_format_writes_compact_json_in_index_order_that_parses_back() -> None:
    text = format_uuids({1: "GPU-b", 0: "GPU-a", 10: "GPU-k"})
    assert text == '{"0":"GPU-a","1":"GPU-b","10":"GPU-k"}'
    assert parse_uuids(text) == {0: "GPU-a", 1: "GPU-b", 10: "GPU-k"}


def test_the_simulated_backends_uuids_are_stable_per_node_and_index() -> None:
    uuids = {i: simulated_uuid("kwok-n0", i) for i in range(2)}
    assert parse_uuids(format_uuids(uuids)) == uuids
    assert uuids[0] == simulated_uuid("kwok-n0", 0) != simulated_uuid("kwok-n1", 0)
    assert all(u.startswith("GPU-") for u in uuids.values())


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not json",
        "[]",
        '"GPU-a"',
        '{"a":"GPU-a"}',
        '{"-1":"GPU-a"}',
        '{"0":""}',
        '{"0":"  "}',
        '{"0":7}',
        '{"0":null}',
        '{"0":"GPU-a","1":["GPU-b"]}',
        '{"0":"' + "x" * (MAX_UUID_LENGTH + 1) + '"}',
        "[" * 100_000,
    ],
)
def test_malformed_values_parse_to_none(text: str | None) -> None:
    assert parse_uuids(text) is None


def test_an_empty_map_is_a_node_without_gpus() -> None:
    assert parse_uuids("{}") == {}
