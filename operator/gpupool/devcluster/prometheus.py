"""The dev cluster's Prometheus: installation, configuration and scrape targets.

Who calls this: `gpupool dev build|up` (install when missing), `cluster.DevCluster.up`
(config and command line), the operator launchers (`operator_process.start_operator`, the
tests' `OperatorProcess`) and any other launcher of something that serves `/metrics`
(the node agent), through `register_scrape_target` / `unregister_scrape_target`.

Prometheus is Debian's `prometheus` package, run as our own process (never the package's
service) with everything under `<state dir>/prometheus/`: `prometheus.yml`, `data/` and
`targets/<job>/*.json`. Targets are found through `file_sd_configs`: one small JSON file
per target, written atomically, so a launcher adds or removes a target while Prometheus
runs and Prometheus picks it up within a second (it watches the folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import yaml

from gpupool.devcluster import debian
from gpupool.devcluster.build import Progress

OPERATOR_JOB = "gpupool-operator"
AGENT_JOB = "gpupool-agent"
JOBS = (OPERATOR_JOB, AGENT_JOB)
SCRAPE_INTERVAL = "2s"
APT_PACKAGE = "prometheus"


class PrometheusError(RuntimeError):
    """Prometheus is missing and could not be installed; the message says what to do."""


# ---------------------------------------------------------------- paths and config


def prometheus_dir(state_dir: Path) -> Path:
    """`<state dir>/prometheus`: config, data and target files."""
    return Path(state_dir) / "prometheus"


def targets_dir(state_dir: Path, job: str) -> Path:
    """The folder whose `*.json` files list `job`'s targets (file_sd)."""
    if job not in JOBS:
        raise ValueError(f"unknown scrape job {job!r}; Prometheus here scrapes {', '.join(JOBS)}")
    return prometheus_dir(state_dir) / "targets" / job


def render_config(state_dir: Path, scrape_interval: str = SCRAPE_INTERVAL) -> dict[str, object]:
    """The Prometheus configuration: one file_sd job per entry of JOBS, short intervals.

    `honor_labels`: the operator's series carry labels named `job` (the GPUJob) and
    `instance` (OpenCost's node label), which must win over the scrape's own."""
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": job,
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(targets_dir(state_dir, job) / "*.json")], "refresh_interval": "5s"}],
            }
            for job in JOBS
        ],
    }


def write_config(state_dir: Path) -> Path:
    """Write `prometheus.yml` and create the target folders; return the config's path."""
    folder = prometheus_dir(state_dir)
    for job in JOBS:
        targets_dir(state_dir, job).mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(render_config(state_dir), sort_keys=False))
    return path


def command(binary: str, state_dir: Path, port: int) -> list[str]:
    """The command line of the dev cluster's Prometheus, listening on 127.0.0.1:`port`."""
    folder = prometheus_dir(state_dir)
    return [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


# ---------------------------------------------------------------- scrape targets


def _target_file(state_dir: Path, job: str, address: str) -> Path:
    if not re.fullmatch(r"[\w.\-\[\]:]+:\d+", address):
        raise ValueError(f"scrape target {address!r} is not host:port")
    return targets_dir(state_dir, job) / (re.sub(r"[^\w.\-]", "_", address) + ".json")


def register_scrape_target(state_dir: Path, job: str, address: str, labels: dict[str, str] | None = None) -> Path:
    """Have the cluster's Prometheus scrape `http://address/metrics` as `job`; return the target file.

    Safe while Prometheus runs: the file appears whole (written aside, then renamed). A
    second call for the same address replaces the first (new labels, say).
    """
    path = _target_file(state_dir, job, address)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps([{"targets": [address], "labels": dict(labels or {})}]))
    os.replace(staging, path)
    return path


def unregister_scrape_target(state_dir: Path, job: str, address: str) -> bool:
    """Stop scraping `address` as `job`; False when it was not registered."""
    path = _target_file(state_dir, job, address)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def scrape_targets(state_dir: Path, job: str) -> list[str]:
    """The addresses registered for `job`, sorted."""
    found: list[str] = []
    folder = targets_dir(state_dir, job)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            groups = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.extend(target for group in groups for target in group.get("targets", []))
    return sorted(found)


# ---------------------------------------------------------------- installation


def find_prometheus() -> str | None:
    """The `prometheus` binary on PATH, or None."""
    return shutil.which("prometheus")


def ensure_installed(progress: Progress = print) -> str:
    """Return the path of `prometheus`, installing Debian's package first when it is missing.

    The install is `debian.apt_install` (non-interactive, the package's own service kept
    from starting: no systemd runs here and the dev cluster starts its own Prometheus).
    """
    try:
        debian.apt_install([APT_PACKAGE], lambda: find_prometheus() is not None, progress)
    except debian.DebianPackageError as error:
        raise PrometheusError(f"prometheus is not on PATH and could not be installed: {error}") from error
    found = find_prometheus()
    assert found is not None  # apt_install checked it
    return found
