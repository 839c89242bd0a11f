"""The ClusterAPI provider's bookkeeping and error mapping, against an in-memory API.

`FakeCustomApi` keeps one MachineDeployment the way the API server does for the calls the
provider makes: resourceVersion preconditions (409 on a stale one), a generation that only
spec changes bump, and the scale subresource. The real server is in
`tests/integration/test_clusterapi_provider.py`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from gpupool.api import GPUNodePool
from gpupool.cluster.nodes.clusterapi_provider import (
    DELETE_MACHINE_ANNOTATION,
    LEDGER_ANNOTATION,
    ClusterAPIProvider,
    LedgerEntry,
    Step,
    ledger_annotation,
    pick_machine,
    provider_error,
    read_ledger,
)
from gpupool.cluster.nodes.kwok_nodes import LABEL_CLAIM
from gpupool.cluster.nodes.providers import NodeLaunch, ProviderError, ProviderQuotaExceeded, ProviderTransient
from gpupool.cluster.writes.ports import Conflict, Forbidden, Invalid, NotFound, Transient, WriteError

POOL = GPUNodePool.model_validate(
    {
        "metadata": {"name": "capi-h100"},
        "spec": {
            "class": "Cloud",
            "gpuModel": "H100",
            "gpusPerNode": 8,
            "provider": "ClusterAPI",
            "clusterAPI": {"namespace": "fleet", "machineDeployment": "gpu-h100"},
        },
    }
)


class Response:
    """What a `_preload_content=False` call returns."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()

    def release_conn(self) -> None:
        pass


def api_error(status: int, message: str = "") -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"message": message})
    return error


class FakeCustomApi:
    """One MachineDeployment `fleet/gpu-h100` (see the module docstring); `fail` queues errors."""

    def __init__(self, replicas: int = 0) -> None:
        self.md: dict[str, Any] = {
            "metadata": {"name": "gpu-h100", "namespace": "fleet", "resourceVersion": "1", "generation": 1},
            "spec": {"replicas": replicas},
        }
        self.fail: list[ApiException] = []
        self.scale_writes = 0
        self.before_scale: Any = None  # runs just before a scale write (another writer's change)

    def _check(self, name: str) -> None:
        if self.fail:
            raise self.fail.pop(0)
        if name != "gpu-h100":
            raise api_error(404, f'machinedeployments.cluster.x-k8s.io "{name}" not found')

    def _bump(self, spec_changed: bool) -> None:
        meta = self.md["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if spec_changed:
            meta["generation"] += 1

    def _precondition(self, version: str | None) -> None:
        if version is not None and version != self.md["metadata"]["resourceVersion"]:
            raise api_error(409, "the object has been modified")

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str, **_: Any) -> Any:
        self._check(name)
        return Response(self.md)

    def patch_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str, body: dict[str, Any], **_: Any
    ) -> Any:
        self._check(name)
        self._precondition(body["metadata"].get("resourceVersion"))
        self.md["metadata"].setdefault("annotations", {}).update(body["metadata"].get("annotations", {}))
        self._bump(spec_changed=False)
        return Response(self.md)

    def get_namespaced_custom_object_scale(
        self, group: str, version: str, ns: str, plural: str, name: str, **_: Any
    ) -> Any:
        self._check(name)
        meta = {"name": name, "namespace": ns, "resourceVersion": self.md["metadata"]["resourceVersion"]}
        return Response({"metadata": meta, "spec": {"replicas": self.md["spec"]["replicas"]}})

    def replace_namespaced_custom_object_scale(
        self, group: str, version: str, ns: str, plural: str, name: str, body: dict[str, Any], **_: Any
    ) -> Any:
        if self.before_scale is not None:
            self.before_scale(self)
        self._check(name)
        self._precondition(body["metadata"].get("resourceVersion"))
        self.md["spec"]["replicas"] = body["spec"]["replicas"]
        self.scale_writes += 1
        self._bump(spec_changed=True)
        return Response(body)

    def list_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, **_: Any) -> Any:
        return Response({"items": []})  # no Machine adopted in these tests

    def ledger(self) -> dict[str, str]:
        raw = self.md["metadata"].get("annotations", {}).get(LEDGER_ANNOTATION, "{}")
        result: dict[str, str] = json.loads(raw)
        return result


def launch(name: str = "claim-a", pool: GPUNodePool = POOL) -> NodeLaunch:
    return NodeLaunch(name, pool, False, 1000.0)


def test_create_counts_each_claim_once() -> None:
    api = FakeCustomApi(replicas=2)
    provider = ClusterAPIProvider(api)
    for _ in range(3):
        assert provider.create(launch(), 0.0) == "clusterapi://fleet/gpu-h100/claim-a"
    assert api.md["spec"]["replicas"] == 3 and api.scale_writes == 1
    provider.create(launch("claim-b"), 0.0)
    assert api.md["spec"]["replicas"] == 4
    assert api.ledger() == {"claim-a": "up@1", "claim-b": "up@2"}


def test_an_ended_claim_gives_its_replica_back_once() -> None:
    api = FakeCustomApi(replicas=2)
    provider = ClusterAPIProvider(api)
    provider.create(launch(), 0.0)
    for _ in range(2):
        provider.release(launch())
    assert api.md["spec"]["replicas"] == 2 and api.scale_writes == 2


def test_a_recorded_claim_whose_scale_was_lost_is_scaled_on_retry() -> None:
    api = FakeCustomApi()
    api.md["metadata"]["annotations"] = {LEDGER_ANNOTATION: json.dumps({"claim-a": "up@1"})}
    ClusterAPIProvider(api).create(launch(), 0.0)
    assert api.md["spec"]["replicas"] == 1


def test_a_conflicting_writer_makes_the_step_retry_from_a_fresh_read() -> None:
    api = FakeCustomApi()

    def someone_scales(fake: FakeCustomApi) -> None:
        fake.before_scale = None
        fake.md["spec"]["replicas"] = 5
        fake._bump(spec_changed=True)

    api.before_scale = someone_scales
    ClusterAPIProvider(api).create(launch(), 0.0)
    # The first scale write hit a 409; the retry saw the spec changed after the ledger
    # write and took the scale as done: one replica too few rather than one too many.
    assert api.md["spec"]["replicas"] == 5 and api.scale_writes == 0


def test_conflicts_that_do_not_stop_become_transient() -> None:
    api = FakeCustomApi()
    api.fail = [api_error(409, "modified")] * 3
    with pytest.raises(ProviderTransient, match="kept changing"):
        ClusterAPIProvider(api).create(launch(), 0.0)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (500, "etcd timeout", ProviderTransient),
        (429, "too many requests", ProviderTransient),
        (403, "exceeded quota: machines", ProviderQuotaExceeded),
        (403, "cannot patch resource", ProviderError),
        (422, "spec.replicas: Invalid value", ProviderError),
    ],
)
def test_api_errors_become_typed_provider_errors(status: int, message: str, expected: type[ProviderError]) -> None:
    api = FakeCustomApi()
    api.fail = [api_error(status, message)]
    with pytest.raises(ProviderError) as error:
        ClusterAPIProvider(api).create(launch(), 0.0)
    assert type(error.value) is expected
    assert "GPUNodePool capi-h100" in str(error.value) and message in str(error.value)


def test_a_missing_machine_deployment_names_the_pool_field() -> None:
    pool = POOL.model_copy(deep=True)
    assert pool.spec.cluster_api is not None
    pool.spec.cluster_api.machine_deployment = "gone"
    with pytest.raises(ProviderError) as error:
        ClusterAPIProvider(FakeCustomApi()).create(launch(pool=pool), 0.0)
    assert type(error.value) is ProviderError
    assert "spec.clusterAPI" in str(error.value) and '"gone" not found' in str(error.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NotFound("x"), ProviderError),
        (Conflict("x"), ProviderTransient),
        (Transient("x"), ProviderTransient),
        (Forbidden("x: exceeded quota"), ProviderQuotaExceeded),
        (Forbidden("x: forbidden"), ProviderError),
        (Invalid("x"), ProviderError),
    ],
)
def test_provider_error_maps_each_write_error(error: WriteError, expected: type[ProviderError]) -> None:
    assert type(provider_error(error, "p")) is expected


def test_the_rbac_error_says_what_to_grant() -> None:
    assert "machinedeployments/scale" in str(provider_error(Forbidden("x"), "p"))


def test_the_ledger_round_trips_and_ignores_garbage() -> None:
    ledger = {"b": LedgerEntry(Step.DOWN, 7), "a": LedgerEntry(Step.UP, 3)}
    text = ledger_annotation(ledger)
    assert text == '{"a":"up@3","b":"down@7"}'
    assert read_ledger({"metadata": {"annotations": {LEDGER_ANNOTATION: text}}}) == ledger
    assert read_ledger({"metadata": {"annotations": {LEDGER_ANNOTATION: "not json"}}}) == {}
    assert read_ledger({"metadata": {}}) == {}
    assert LedgerEntry(Step.UP, 3).due(3) and not LedgerEntry(Step.UP, 3).due(4)


def machine(name: str, created: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created, **metadata}}


def test_pick_machine_prefers_the_claims_own_then_the_oldest_free_new_one() -> None:
    requested = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    before = machine("m-before", "2025-12-31T23:59:59Z")
    taken = machine("m-taken", "2026-01-01T00:00:05Z", labels={LABEL_CLAIM: "other"})
    going = machine("m-going", "2026-01-01T00:00:05Z", deletionTimestamp="2026-01-01T00:01:00Z")
    marked = machine("m-marked", "2026-01-01T00:00:05Z", annotations={DELETE_MACHINE_ANNOTATION: "x"})
    late = machine("m-late", "2026-01-01T00:00:09Z")
    early = machine("m-early", "2026-01-01T00:00:00Z")
    machines = [before, taken, going, marked, late, early]

    assert pick_machine(machines, "claim-a", requested) == early
    own = machine("m-own", "2026-01-01T00:00:30Z", labels={LABEL_CLAIM: "claim-a"})
    assert pick_machine([*machines, own], "claim-a", requested) == own
    assert pick_machine([before, taken, going, marked], "claim-a", requested) is None


def test_a_pool_without_cluster_api_settings_is_refused() -> None:
    pool = POOL.model_copy(deep=True)
    pool.spec.cluster_api = None
    with pytest.raises(ProviderError, match=r"no spec\.clusterAPI"):
        ClusterAPIProvider(FakeCustomApi()).create(launch(pool=pool), 0.0)
