"""GPU feature discovery's `nvidia.com/gpu.product` -> the catalogue's model
(`gpupool.catalogue.products`), over product strings as GFD writes them on real nodes, and
the catalogue's `products` lists (one model per product, refused otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.catalogue import CatalogueError, gpu_catalogue, gpu_products, load_gpu_products
from gpupool.catalogue.products import GpuProduct, gpu_model_for_product, parse_product, product_key


@pytest.mark.parametrize(
    ("label", "model"),
    [
        # The NVML device name with spaces as dashes, as GFD labels it.
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA-H100-PCIe", "H100-PCIe"),
        ("NVIDIA-H200", "H200"),
        ("NVIDIA-A100-SXM4-80GB", "A100"),
        ("NVIDIA-A100-SXM4-40GB", "A100-40GB"),
        ("A100-SXM4-40GB", "A100-40GB"),  # drivers before the NVIDIA prefix
        ("NVIDIA-L40S", "L40S"),
        ("NVIDIA-L4", "L4"),
        ("NVIDIA-A10", "A10"),
        ("Tesla-T4", "T4"),
        ("Tesla-V100-SXM2-16GB", "V100"),
        ("Tesla-V100-SXM2-32GB", "V100M32"),
        ("Tesla-P100-PCIE-16GB", "P100"),
        ("NVIDIA-GeForce-GTX-1080", "GTX1080"),
        # Sharing and MIG suffixes say how the GPU is offered, not which GPU it is.
        ("NVIDIA-A100-SXM4-80GB-SHARED", "A100"),
        ("Tesla-T4-SHARED", "T4"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100-40GB"),
        ("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb-SHARED", "A100-40GB"),
        ("NVIDIA-H100-80GB-HBM3-MIG-INVALID", "H100"),
        # Other spellings of the same name.
        ("nvidia-l40s", "L40S"),
        ("NVIDIA L40S", "L40S"),
        ("  NVIDIA-H200 ", "H200"),
        # Products whose figures the catalogue does not carry stay unmapped.
        ("NVIDIA-A100-80GB-PCIe", None),
        ("NVIDIA-A10G", None),
        ("NVIDIA-H100-NVL", None),
        ("Tesla-V100-PCIE-16GB", None),
        ("NVIDIA-GeForce-RTX-4090", None),
        ("", None),
        ("-SHARED", None),
    ],
)
def test_gfd_products_map_onto_catalogue_models(label: str, model: str | None) -> None:
    assert gpu_model_for_product(label, gpu_products()) == model


def test_every_product_names_a_model_of_the_catalogue() -> None:
    assert set(gpu_products().values()) <= set(gpu_catalogue())


@pytest.mark.parametrize(
    ("label", "parsed"),
    [
        ("NVIDIA-L4", GpuProduct("NVIDIA-L4")),
        ("NVIDIA-L4-SHARED", GpuProduct("NVIDIA-L4", shared=True)),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", GpuProduct("NVIDIA-A100-SXM4-40GB", mig_profile="1g.5gb")),
        ("NVIDIA-A30-MIG-1g.6gb-SHARED", GpuProduct("NVIDIA-A30", shared=True, mig_profile="1g.6gb")),
        ("NVIDIA-A100-SXM4-40GB-MIG-INVALID", GpuProduct("NVIDIA-A100-SXM4-40GB", mig_profile="INVALID")),
    ],
)
def test_product_suffixes_are_split_off(label: str, parsed: GpuProduct) -> None:
    assert parse_product(label) == parsed


def test_product_keys_sanitise_as_gfd_does() -> None:
    assert product_key("NVIDIA A100-SXM4-80GB") == product_key("nvidia-a100-sxm4-80gb")
    assert product_key("NVIDIA  GeForce (R) GTX 1080") == "nvidia-geforce-r-gtx-1080"


def _catalogue(tmp_path: Path, *entries: str) -> Path:
    figures = "source: s, peak_tflops_fp16: 1, peak_tflops_fp32: 1, memory_bandwidth_gbps: 1, memory_gib: 1"
    path = tmp_path / "gpu_models.yaml"
    path.write_text("models:\n" + "".join(f"  - {{{entry}, {figures}}}\n" for entry in entries), encoding="utf-8")
    return path


def test_products_are_keyed_for_the_mapping(tmp_path: Path) -> None:
    path = _catalogue(tmp_path, "model: X, products: [NVIDIA X 9, Tesla-X9]", "model: Y")
    assert load_gpu_products(path) == {"nvidia-x-9": "X", "tesla-x9": "X"}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        pytest.param(("model: X, products: NVIDIA-X",), "products must be a list", id="not-a-list"),
        pytest.param(("model: X, products: ['']",), "products must be a list", id="empty-name"),
        pytest.param(
            ("model: X, products: [NVIDIA-X]", "model: Y, products: [nvidia-x]"),
            "product nvidia-x is also a product of X",
            id="two-models",
        ),
    ],
)
def test_bad_products_are_refused(tmp_path: Path, entries: tuple[str, ...], message: str) -> None:
    with pytest.raises(CatalogueError) as err:
        load_gpu_products(_catalogue(tmp_path, *entries))
    assert message in str(err.value)
