"""The dev cluster's Prometheus without running it: config, scrape-target files, install steps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gpupool.devcluster import debian, prometheus
from gpupool.devcluster.cluster import STATE_FILE, ClusterState, DevCluster
from gpupool.devcluster.prometheus import (
    AGENT_JOB,
    JOBS,
    OPERATOR_JOB,
    PrometheusError,
    register_scrape_target,
    scrape_targets,
    unregister_scrape_target,
)


def test_config_has_one_file_sd_job_per_component_with_a_short_interval(tmp_path: Path) -> None:
    config = yaml.safe_load(prometheus.write_config(tmp_path).read_text())
    assert config["global"]["scrape_interval"] == "2s"
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert set(jobs) == {"gpupool-operator", "gpupool-agent"} == set(JOBS)
    for job, scrape in jobs.items():
        (sd,) = scrape["file_sd_configs"]
        assert sd["files"] == [str(tmp_path / "prometheus" / "targets" / job / "*.json")]
        assert (tmp_path / "prometheus" / "targets" / job).is_dir()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not on PATH (`gpupool dev build` installs it)")
def test_promtool_accepts_the_generated_config(tmp_path: Path) -> None:
    path = prometheus.write_config(tmp_path)
    register_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9400", {"node": "gpu-node-0"})
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_command_listens_on_loopback_and_keeps_data_in_the_state_dir(tmp_path: Path) -> None:
    argv = prometheus.command("/usr/bin/prometheus", tmp_path, 9095)
    assert "--web.listen-address=127.0.0.1:9095" in argv
    assert f"--storage.tsdb.path={tmp_path / 'prometheus' / 'data'}" in argv
    assert f"--config.file={tmp_path / 'prometheus' / 'prometheus.yml'}" in argv


def test_targets_are_registered_replaced_and_unregistered_one_file_each(tmp_path: Path) -> None:
    first = register_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9400", {"node": "a"})
    register_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9401")
    register_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9400", {"node": "b"})
    assert json.loads(first.read_text()) == [{"targets": ["127.0.0.1:9400"], "labels": {"node": "b"}}]
    assert scrape_targets(tmp_path, AGENT_JOB) == ["127.0.0.1:9400", "127.0.0.1:9401"]
    assert scrape_targets(tmp_path, OPERATOR_JOB) == []
    assert not list(first.parent.glob("*.tmp"))
    assert unregister_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9400") is True
    assert unregister_scrape_target(tmp_path, AGENT_JOB, "127.0.0.1:9400") is False
    assert scrape_targets(tmp_path, AGENT_JOB) == ["127.0.0.1:9401"]


@pytest.mark.parametrize(("job", "address"), [("gpupool-other", "127.0.0.1:1"), (AGENT_JOB, "no-port")])
def test_unknown_jobs_and_addresses_without_a_port_are_refused(tmp_path: Path, job: str, address: str) -> None:
    with pytest.raises(ValueError):
        register_scrape_target(tmp_path, job, address)


def _no_prometheus(monkeypatch: pytest.MonkeyPatch, apt_get: str | None) -> None:
    tools = {"apt-get": apt_get, "prometheus": None}
    monkeypatch.setattr(prometheus.shutil, "which", lambda name: tools.get(name))


def test_without_apt_get_the_error_says_to_install_prometheus_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_prometheus(monkeypatch, apt_get=None)
    with pytest.raises(PrometheusError, match="apt-get is not available"):
        prometheus.ensure_installed(progress=lambda _msg: None)


def test_install_updates_the_index_after_a_failure_and_keeps_services_from_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_prometheus(monkeypatch, apt_get="/usr/bin/apt-get")
    policy = tmp_path / "policy-rc.d"
    monkeypatch.setattr(debian, "POLICY_RC_D", policy)
    monkeypatch.setattr(debian, "cache_root", lambda: tmp_path)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    calls: list[tuple[list[str], str, bool]] = []

    def fake_run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append((argv, env["DEBIAN_FRONTEND"], policy.is_file() and "exit 101" in policy.read_text()))
        installs = sum(1 for argv, _, _ in calls if argv[1] == "install")
        ok = argv[1] == "update" or installs == 2
        if ok and argv[1] == "install":
            monkeypatch.setattr(prometheus, "find_prometheus", lambda: "/usr/bin/prometheus")
        return subprocess.CompletedProcess(argv, 0 if ok else 100, stdout="E: Unable to locate package")

    monkeypatch.setattr(prometheus, "find_prometheus", lambda: None)
    monkeypatch.setattr(debian, "_run", fake_run)
    assert prometheus.ensure_installed(progress=lambda _msg: None) == "/usr/bin/prometheus"
    assert [argv[1] for argv, _, _ in calls] == ["install", "update", "install"]
    assert calls[0][0] == ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    assert all(frontend == "noninteractive" and blocked for _, frontend, blocked in calls)
    assert not policy.exists()


def test_prometheus_url_comes_from_the_recorded_port_and_is_none_without_one(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path)
    assert cluster.prometheus_url() is None
    state = ClusterState(kubeconfig="k", apiserver_url="https://127.0.0.1:1", ports={"apiserver": 1})
    (tmp_path / STATE_FILE).write_text(state.to_json())
    assert cluster.prometheus_url() is None
    state.ports["prometheus"] = 9095
    (tmp_path / STATE_FILE).write_text(state.to_json())
    assert cluster.prometheus_url() == "http://127.0.0.1:9095"
