"""Where gpupool's processes get their Kubernetes API client.

Who uses this: the operator (`gpupool.controllers.runner`) and the node agent
(`gpupool.agent.kube`). Credentials come from `kubeconfig` when given, else the pod's
service account (in-cluster), else $KUBECONFIG / ~/.kube/config.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes import config as kube_config


def api_client(kubeconfig: str | None, *, pool_size: int | None = None) -> Any:
    """An ApiClient; `pool_size` connections when the caller writes concurrently."""
    configuration = client.Configuration()
    if kubeconfig:
        kube_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException:
            kube_config.load_kube_config(client_configuration=configuration)
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)
