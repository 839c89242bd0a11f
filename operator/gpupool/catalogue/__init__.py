"""The GPU model catalogue shipped with gpupool: roofline figures per GPU model.

Who calls this: `gpupool.cluster.translate.snapshot.build_snapshot` reads it (`gpu_catalogue()`,
loaded once per process) into the core's `Hardware`, next to the GPUNodePools'
`spec.gpuModelSpec`; `gpupool.cluster.translate.convert.gpu_node_from_k8s` reads each entry's
`products` (`gpu_products()`: the `nvidia.com/gpu.product` values NVIDIA's GPU feature
discovery gives nodes of that model, see `gpupool.catalogue.products`); tests load other
files with `load_gpu_catalogue(path)` and `load_gpu_products(path)`. The data is
`gpu_models.yaml` beside this module (package data of the wheel); each entry names the
vendor document its figures come from. This module reads a file; the core only ever sees
the `GpuSpec` values it returns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gpupool.catalogue.products import product_key
from gpupool.core.roofline import GpuSpec

CATALOGUE_PATH = Path(__file__).with_name("gpu_models.yaml")
_NUMBERS = ("peak_tflops_fp16", "peak_tflops_fp32", "memory_bandwidth_gbps", "memory_gib")


class CatalogueError(ValueError):
    """The catalogue file cannot be read; the message names the file, the entry and the field."""


def _positive(entry: Mapping[str, Any], field: str, where: str) -> float:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise CatalogueError(f"{where}: {field} must be a number > 0, got {value!r}")
    return float(value)


def _entry(entry: object, where: str) -> GpuSpec:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{where}: expected a mapping with model, the figures and source")
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise CatalogueError(f"{where}: model must be a non-empty name")
    where = f"{where} ({model})"
    if not isinstance(entry.get("source"), str) or not entry["source"].strip():
        raise CatalogueError(f"{where}: source must name the vendor document the figures come from")
    unknown = set(entry) - {"model", "variant", "source", "products", *_NUMBERS}
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    fp16, fp32, bandwidth, memory = (_positive(entry, field, where) for field in _NUMBERS)
    products = entry.get("products", [])
    if not isinstance(products, list) or not all(isinstance(p, str) and product_key(p) for p in products):
        raise CatalogueError(f"{where}: products must be a list of nvidia.com/gpu.product names")
    return GpuSpec(model, fp16, fp32, bandwidth, memory)


def _read(path: Path) -> tuple[dict[str, GpuSpec], dict[str, str]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CatalogueError(f"{path}: {error}") from error
    entries = document.get("models") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise CatalogueError(f"{path}: expected a top-level `models:` list")
    specs: dict[str, GpuSpec] = {}
    products: dict[str, str] = {}
    for index, raw in enumerate(entries):
        where = f"{path}: models[{index}]"
        spec = _entry(raw, where)
        if spec.model in specs:
            raise CatalogueError(f"{where}: model {spec.model} is listed twice")
        specs[spec.model] = spec
        for product in raw.get("products", []):
            key = product_key(product)
            if products.get(key, spec.model) != spec.model:
                raise CatalogueError(f"{where} ({spec.model}): product {product} is also a product of {products[key]}")
            products[key] = spec.model
    return specs, products


def load_gpu_catalogue(path: Path = CATALOGUE_PATH) -> dict[str, GpuSpec]:
    """Every model of the catalogue at `path`, by name; raises `CatalogueError` for a file
    that is not a list of complete, sourced entries with distinct names."""
    return _read(path)[0]


def load_gpu_products(path: Path = CATALOGUE_PATH) -> dict[str, str]:
    """The catalogue's `products` as `product_key(product) -> model` (what
    `gpupool.catalogue.products.gpu_model_for_product` reads); raises `CatalogueError` as
    `load_gpu_catalogue` does, and for a product listed under two models."""
    return _read(path)[1]


@functools.cache
def gpu_catalogue() -> Mapping[str, GpuSpec]:
    """The catalogue shipped with gpupool, read once per process."""
    return load_gpu_catalogue()


@functools.cache
def gpu_products() -> Mapping[str, str]:
    """The shipped catalogue's products (`load_gpu_products`), read once per process."""
    return load_gpu_products()


__all__ = [
    "CATALOGUE_PATH",
    "CatalogueError",
    "gpu_catalogue",
    "gpu_products",
    "load_gpu_catalogue",
    "load_gpu_products",
]
