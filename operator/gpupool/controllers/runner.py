"""`gpupool operator run`: watches feeding the cache, one scheduling loop, health, metrics.

Who calls this: `gpupool.cli` (and through it the demo, the end-to-end benchmark and the
integration tests). Start-up order matters: settings (a bad one stops the operator here,
naming the variable and the valid values) and logging; then kopf's start-up handler lists
every kind into the cache - the kopf-fed kinds, then GPUJobs and pods through their
reflectors, which then start watching - so the loop never decides on a half-listed
cluster, marks it synced and starts the loop thread; kopf's watches and the reflectors
keep the cache fresh. A periodic re-list repairs anything a watch missed. Stopping
(SIGTERM/SIGINT) stops the loop and the reflectors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import time
from typing import Any

import kopf
from kubernetes import client
from pydantic import ValidationError

from gpupool.api import Provider
from gpupool.cluster.apply import Applier
from gpupool.cluster.cache import ClusterCache, Kind
from gpupool.cluster.claims import ClaimReconciler
from gpupool.cluster.clusterapi_provider import ClusterAPIProvider
from gpupool.cluster.kubeclient import api_client
from gpupool.cluster.kwok_provider import KwokProvider
from gpupool.cluster.parsing import parse_object_of
from gpupool.cluster.providers import NodeProvider, StaticProvider
from gpupool.cluster.reflector import operator_reflectors
from gpupool.cluster.writer import KubeWriter
from gpupool.controllers import handlers
from gpupool.controllers.health import HealthServer, loop_is_live
from gpupool.controllers.logs import configure_logging
from gpupool.controllers.loop import SchedulingLoop
from gpupool.metrics.collect import OperatorMetrics
from gpupool.metrics.server import MetricsServer, operator_registry
from gpupool.settings import OperatorSettings, settings_problems

log = logging.getLogger("gpupool.operator")

# Events waiting to be posted; past this a burst's events are dropped (with a warning).
EVENT_QUEUE = 10_000


# Kinds whose watch events kopf's handlers feed into the cache; GPUJobs and pods have
# reflectors of their own (`gpupool.cluster.reflector`).
KOPF_KINDS = (Kind.QUEUE, Kind.POOL, Kind.CLAIM, Kind.NODE, Kind.NAMESPACE)


def list_kopf_kinds(cache: ClusterCache, writer: KubeWriter) -> None:
    """Merge fresh lists of the kopf-fed kinds into the cache (never going back in time)."""
    for kind in KOPF_KINDS:
        if kind in (Kind.QUEUE, Kind.POOL, Kind.CLAIM):
            cache.replace_all(kind, *writer.list_custom(kind.value))
        else:
            cache.replace_all(kind, *writer.list_core(kind.value))


class Operator:
    """The pieces of a running operator, wired together."""

    def __init__(self, settings: OperatorSettings, kubeconfig: str | None = None) -> None:
        self.settings = settings
        self.cache = ClusterCache(parse_object_of)
        self.api_client = self._client(kubeconfig, pool_size=settings.write_concurrency + 4)
        self.writer = KubeWriter(self.api_client)
        self.applier = Applier(self.writer, self.cache, settings.write_concurrency, event_queue=EVENT_QUEUE)
        providers: dict[Provider, NodeProvider] = {
            Provider.STATIC: StaticProvider(),
            Provider.KWOK: KwokProvider(client.CoreV1Api(self.api_client), failure_rate=settings.kwok_failure_rate),
            Provider.CLUSTER_API: ClusterAPIProvider(client.CustomObjectsApi(self.api_client)),
        }
        claims = ClaimReconciler(self.writer, self.cache, providers)
        self.metrics_registry = operator_registry()
        metrics = OperatorMetrics(self.metrics_registry, opencost=settings.metrics_opencost)
        self.loop = SchedulingLoop(self.cache, self.applier, settings, claims=claims, metrics=metrics)
        self.reflectors = operator_reflectors(self.api_client, self.cache)
        self.stop = threading.Event()
        self.started_at = time.time()
        self.registry = kopf.OperatorRegistry()
        handlers.register(self.registry, self.cache)
        self._register_lifecycle()

    @staticmethod
    def _client(kubeconfig: str | None, *, pool_size: int) -> Any:
        """An API client from `kubeconfig`, else in-cluster, else $KUBECONFIG, with enough
        connections for the applier's concurrent writes."""
        return api_client(kubeconfig, pool_size=pool_size)

    def _register_lifecycle(self) -> None:
        @kopf.on.login(registry=self.registry)
        def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
            # kopf uses exactly the credentials of our own client (kubeconfig or in-cluster).
            config = self.api_client.configuration
            header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
            scheme, _sep, token = (header or "").rpartition(" ")
            return kopf.ConnectionInfo(
                server=config.host,
                ca_path=config.ssl_ca_cert,
                insecure=not config.verify_ssl,
                scheme=scheme or ("Bearer" if token else None),
                token=token or None,
                certificate_path=config.cert_file,
                private_key_path=config.key_file,
                trust_env=settings.networking.trust_env,
            )

        @kopf.on.startup(registry=self.registry)
        async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.peering.standalone = True
            settings.posting.enabled = False
            settings.watching.server_timeout = 300
            settings.watching.client_timeout = 330
            await asyncio.to_thread(list_kopf_kinds, self.cache, self.writer)
            for reflector in self.reflectors:
                await asyncio.to_thread(reflector.list_once)
                reflector.start()
            self.cache.mark_synced()
            threading.Thread(target=self.loop.run, args=(self.stop,), name="scheduling-loop", daemon=True).start()
            threading.Thread(target=self._resync, name="resync", daemon=True).start()
            log.info("cache synced; scheduling loop started")

        @kopf.on.cleanup(registry=self.registry)
        async def stop(**_: Any) -> None:
            self.stop.set()
            for reflector in self.reflectors:
                await asyncio.to_thread(reflector.stop)

    def _resync(self) -> None:
        while not self.stop.wait(self.settings.resync_seconds):
            try:
                list_kopf_kinds(self.cache, self.writer)
                for reflector in self.reflectors:
                    reflector.list_once()
            except Exception:
                log.exception("periodic re-list failed; will retry")

    def live(self) -> bool:
        budget = max(60.0, 10 * self.settings.schedule_interval_seconds)
        return loop_is_live(lambda: self.loop.last_cycle_at, self.started_at, budget)

    def ready(self) -> bool:
        return self.cache.synced and self.loop.cycles > 0

    def run(self) -> None:
        """Block running kopf until a signal stops it."""
        health = None
        if self.settings.health_port:
            health = HealthServer(self.settings.health_host, self.settings.health_port, self.live, self.ready)
            health.start()
            log.info("health endpoints up", extra={"port": health.port})
        metrics = None
        if self.settings.metrics_port:
            metrics = MetricsServer(self.settings.metrics_host, self.settings.metrics_port, self.metrics_registry)
            log.info("metrics endpoint up", extra={"port": metrics.port})
        try:
            kopf.run(registry=self.registry, clusterwide=True, standalone=True)
        finally:
            self.stop.set()
            self.applier.close()
            if health is not None:
                health.stop()
            if metrics is not None:
                metrics.stop()


def main(argv: list[str]) -> int:
    """Parse flags (settings come from GPUPOOL_* variables), then run until stopped."""
    parser = argparse.ArgumentParser(prog="gpupool operator run", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig to use (default: in-cluster or $KUBECONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = OperatorSettings()
    except ValidationError as error:
        print(f"gpupool operator: invalid settings:\n{settings_problems(error)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    Operator(settings, args.kubeconfig).run()
    return 0
