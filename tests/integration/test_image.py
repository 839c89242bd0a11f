"""The built container image, checked inside with `buildah run` as its own non-root user.

Builds nothing: `make image` builds the image (minutes), and `make test` must stay fast and
pass on a machine without buildah. So this test skips, saying why, when buildah is not on
PATH or no `localhost/gpupool:dev` is in buildah's vfs storage; where both are there, it runs
the same checks as `make image-check` (about ten seconds): `buildah run`, then, as root, the
image's rootfs mounted read-only with only /tmp writable.
"""

from __future__ import annotations

import shutil

import pytest

from gpupool.devcluster import image


def test_gpupool_runs_inside_the_image_as_the_non_root_user() -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not on PATH; `make image` installs it and builds the image")
    if not image.image_exists(image.IMAGE):
        pytest.skip(f"no {image.IMAGE} in buildah's {image.STORAGE_DRIVER} storage; build it with `make image`")
    passed = image.check(image.IMAGE)
    assert (
        passed[0]
        == f"buildah run: uid {image.IMAGE_UID}: gpupool --help, operator run --help, agent run --help all ran"
    )
    if image.can_run_read_only():
        assert passed[1].startswith(f"read-only root: uid {image.IMAGE_UID}:")
