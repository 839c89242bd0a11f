"""`gpupool operator run`: watches feeding the cache, one scheduling loop, health, metrics.

Who calls this: `gpupool.cli` (and through it the demo, the end-to-end benchmark and the
integration tests). Start-up order matters: settings (a bad one stops the operator here,
naming the variable and the valid values) and logging; then kopf's start-up handler lists
every kind into the cache - the kopf-fed kinds, then GPUJobs and pods through their
reflectors, which then start watching - so the loop never decides on a half-listed
cluster, marks it synced and starts the loop thread; kopf's watches and the reflectors
keep the cache fresh. A periodic re-list repairs anything a watch missed. Stopping
(SIGTERM/SIGINT) stops the loop and the reflectors.

With `GPUPOOL_LEADER_ELECTION`, the loop thread starts only when this process wins the
leader Lease (`gpupool.cluster.kube.leader`); until then it stands by with a warm cache (the
same lists and watches) and writes nothing. Losing the Lease exits the process at once
(status 1). A graceful stop stops the loop, lets the writes in flight finish, then
releases the Lease so a standby takes over without waiting for it to expire.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import socket
import sys
import threading
import time
from typing import Any

import kopf
from kubernetes import client
from pydantic import ValidationError

from gpupool.api import Provider
from gpupool.cluster.kube.kubeclient import api_client
from gpupool.cluster.kube.leader import LeaderElector
from gpupool.cluster.kube.lease import KubeLeaseStore
from gpupool.cluster.kube.reflector import operator_reflectors
from gpupool.cluster.kube.writer import KubeWriter
from gpupool.cluster.nodes.claims import ClaimReconciler
from gpupool.cluster.nodes.clusterapi_provider import ClusterAPIProvider
from gpupool.cluster.nodes.kwok_provider import KwokProvider
from gpupool.cluster.nodes.providers import NodeProvider, StaticProvider
from gpupool.cluster.state.cache import ClusterCache, Kind
from gpupool.cluster.state.parsing import parse_object_of
from gpupool.cluster.writes.apply import Applier
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


# How long a graceful stop waits for the cycle in progress before giving up on releasing the
# leader Lease (it then expires as after a crash).
LOOP_STOP_SECONDS = 30.0


def election_identity() -> str:
    """This process's name in the leader Lease: host, pid and a random suffix (a restarted
    process with the same pid, e.g. PID 1 in a container, is a new candidate)."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(3)}"


# Kinds whose watch events kopf's handlers feed into the cache; GPUJobs and pods have
# reflectors of their own (`gpupool.cluster.kube.reflector`).
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
        self.reflectors = operator_reflectors(self.api_client, self.cache, settings.reservations.namespace)
        self.stop = threading.Event()
        self.started_at = time.time()
        self.loop_thread: threading.Thread | None = None
        # When the loop thread started (this process began to lead); None before.
        self.leading_since: float | None = None
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            # Its own client, so a renewal never queues behind the applier's writes.
            store = KubeLeaseStore(
                self._client(kubeconfig, pool_size=2),
                settings.leader_election_namespace,
                settings.leader_election_lease_name,
            )
            self.elector = LeaderElector(
                store,
                election_identity(),
                settings.lease_timing,
                on_started_leading=self._start_loop,
                on_stopped_leading=self._stopped_leading,
            )
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
            threading.Thread(target=self._resync, name="resync", daemon=True).start()
            if self.elector is None:
                self._start_loop()
            else:
                log.info("cache synced; standing by for the leader Lease", extra={"identity": self.elector.identity})
                threading.Thread(
                    target=self.elector.run, args=(self.stop,), name="leader-election", daemon=True
                ).start()

        @kopf.on.cleanup(registry=self.registry)
        async def stop(**_: Any) -> None:
            self.stop.set()
            if self.elector is not None:
                # Release the Lease only once nothing writes any more (else it expires).
                loop_thread = self.loop_thread
                if loop_thread is not None:
                    await asyncio.to_thread(loop_thread.join, LOOP_STOP_SECONDS)
                if loop_thread is None or not loop_thread.is_alive():
                    await asyncio.to_thread(self.applier.close)
                    await asyncio.to_thread(self.elector.release)
            for reflector in self.reflectors:
                await asyncio.to_thread(reflector.stop)

    def _start_loop(self) -> None:
        """Start the scheduling loop thread (at start-up, or on winning the leader Lease)."""
        self.leading_since = time.time()
        may_write = self.elector.is_leader if self.elector is not None else None
        self.loop_thread = threading.Thread(
            target=self.loop.run, args=(self.stop, may_write), name="scheduling-loop", daemon=True
        )
        self.loop_thread.start()
        log.info("cache synced; scheduling loop started")

    def _stopped_leading(self, why: str) -> None:
        """Leadership lost: stop writing at once by ending the process (like client-go's
        callers in OnStoppedLeading); the restarted process joins as a fresh candidate."""
        log.critical("leader Lease lost; exiting so nothing more is written", extra={"reason": why})
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    def _resync(self) -> None:
        while not self.stop.wait(self.settings.resync_seconds):
            try:
                list_kopf_kinds(self.cache, self.writer)
                for reflector in self.reflectors:
                    reflector.list_once()
            except Exception:
                log.exception("periodic re-list failed; will retry")

    def live(self) -> bool:
        """The loop cycles recently; a standby instead needs its election rounds to go on."""
        if self.elector is not None and self.leading_since is None:
            budget = max(60.0, 10 * self.settings.leader_election_retry_period_seconds)
            last = self.elector.last_round_at
            if last is None:
                return time.time() - self.started_at < budget
            return self.elector.clock() - last < budget
        budget = max(60.0, 10 * self.settings.schedule_interval_seconds)
        return loop_is_live(lambda: self.loop.last_cycle_at, self.leading_since or self.started_at, budget)

    def ready(self) -> tuple[bool, str]:
        """Ready once the cache is synced and (leading) a cycle ran; a synced standby is
        ready too, saying whom it stands by for."""
        if not self.cache.synced:
            return False, "not ok: cache not synced"
        if self.elector is not None and self.leading_since is None:
            return True, f"standby: leader is {self.elector.holder or 'unknown'}"
        if self.loop.cycles == 0:
            return False, "not ok: no scheduling cycle yet"
        if self.elector is not None:
            return True, f"ok: leader {self.elector.identity}"
        return True, "ok"

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
