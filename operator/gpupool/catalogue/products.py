"""NVIDIA GPU feature discovery's product label -> the catalogue's GPU model name.

Who calls this: `gpupool.cluster.translate.convert.gpu_node_from_k8s` reads a node's
`nvidia.com/gpu.product` label through `gpu_model_for_product`, with the product names of
`gpu_models.yaml` (`gpupool.catalogue.gpu_products()`); the catalogue loader keys those
names with `product_key`. Pure: standard library only, no I/O.

GPU feature discovery (GFD, part of NVIDIA's k8s-device-plugin) writes the NVML device name
there, sanitised: characters other than letters, digits, `-`, `_`, `.` and spaces are dropped
and each run of spaces becomes one `-` (NVML's `NVIDIA A100-SXM4-80GB` is labelled
`NVIDIA-A100-SXM4-80GB`, `Tesla T4` is `Tesla-T4`). Two suffixes may follow: `-MIG-<profile>`
when the GPUs are MIG partitions offered as `nvidia.com/gpu` (MIG strategy `single`;
`-MIG-INVALID` for a layout GFD refuses), then `-SHARED` when the device plugin hands out
time-slicing or MPS replicas (replicas > 1, the resource not renamed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SHARED_SUFFIX = "-SHARED"
MIG_MARK = "-MIG-"
_DROPPED = re.compile(r"[^A-Za-z0-9\-_. ]")


@dataclass(frozen=True, slots=True)
class GpuProduct:
    """A product label split into the GPU's own name and GFD's suffixes."""

    name: str
    """The GPU's product, suffixes removed (`NVIDIA-A100-SXM4-40GB`)."""
    shared: bool = False
    """The label ends with `-SHARED` (time-slicing or MPS replicas)."""
    mig_profile: str | None = None
    """The MIG profile after `-MIG-` (`1g.5gb`, or `INVALID`), None for whole GPUs."""


def product_key(text: str) -> str:
    """`text` sanitised as GFD sanitises a device name, case folded: the key two spellings
    of one product share (`NVIDIA A100-SXM4-80GB` and `nvidia-a100-sxm4-80gb`)."""
    return "-".join(_DROPPED.sub("", text).split()).casefold()


def parse_product(label: str) -> GpuProduct:
    """Split a `nvidia.com/gpu.product` value: `NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED` is
    `NVIDIA-A100-SXM4-40GB`, shared, profile `1g.5gb`."""
    name = label.strip()
    shared = name.upper().endswith(SHARED_SUFFIX)
    if shared:
        name = name[: -len(SHARED_SUFFIX)]
    at = name.upper().find(MIG_MARK)
    profile = None
    if at > 0:
        name, profile = name[:at], name[at + len(MIG_MARK) :]
    return GpuProduct(name=name, shared=shared, mig_profile=profile)


def gpu_model_for_product(label: str, products: Mapping[str, str]) -> str | None:
    """The catalogue model a node's `nvidia.com/gpu.product` label names, or None when the
    catalogue lists no such product.

    `products` maps `product_key(product)` to model, as `gpupool.catalogue.gpu_products()`
    returns it. The `-SHARED` and `-MIG-<profile>` suffixes are ignored: they say how the GPU
    is offered, not which GPU it is (whether such a node is used is the caller's rule).
    """
    name = parse_product(label).name
    return products.get(product_key(name)) if name else None


__all__ = ["MIG_MARK", "SHARED_SUFFIX", "GpuProduct", "gpu_model_for_product", "parse_product", "product_key"]
