# The gpupool image: one image for both processes, `gpupool operator run` (the Deployment)
# and `gpupool agent run` (the node agent), chosen by the arguments after the entrypoint.
#
# Build it with `make image` (operator/gpupool/devcluster/image.py), which first builds the
# base below from Debian packages with mmdebstrap and imports it into local storage, since
# no public registry is reached here. Any image with Debian bookworm's python3 and
# python3-venv at /usr/bin/python3 works as BASE.
ARG BASE=localhost/gpupool-base:bookworm

# ---------------------------------------------------------------- build stage
# Builds the gpupool wheel and installs it, with its runtime dependencies only (no `[dev]`
# or `[report]` extras), into a virtualenv at the path it keeps in the runtime stage.
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN python3 -m venv /opt/gpupool
WORKDIR /src
# The dependencies first, read from pyproject.toml alone, so a change to the code reuses
# this layer. The optional secret `pip-ca` is a CA bundle for pip (where HTTPS goes through
# a proxy with its own CA); a secret is mounted for this step only and never lands in a layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
      > /tmp/requirements.txt \
 && /opt/gpupool/bin/pip install --quiet --no-cache-dir --requirement /tmp/requirements.txt
# Then the gpupool wheel itself (its build backend, setuptools, comes from the index too).
COPY README.md ./
COPY operator ./operator
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/gpupool/bin/pip wheel --quiet --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/gpupool/bin/pip install --quiet --no-cache-dir --no-deps /wheels/gpupool-*.whl \
 && /opt/gpupool/bin/pip check \
 && /opt/gpupool/bin/pip uninstall --quiet --yes pip setuptools \
 && /opt/gpupool/bin/gpupool --help > /dev/null

# ---------------------------------------------------------------- runtime stage
FROM ${BASE}
# nvidia-ml-py (the `pynvml` module the agent's NVML backend imports) is pure Python: it
# loads libnvidia-ml.so.1 at run time, and that library is not in this image. On a GPU node
# it comes from the host's driver, mounted into the container by the NVIDIA container
# toolkit (runtimeClassName: nvidia, or the GPU operator's toolkit).
RUN groupadd --gid 65532 gpupool \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin gpupool
COPY --from=build /opt/gpupool /opt/gpupool
# Read-only root filesystem: nothing is written outside /tmp (mount an emptyDir there).
# No .pyc is written at run time (pip compiled them at install); HOME is /tmp.
ENV PATH=/opt/gpupool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["gpupool"]
CMD ["operator", "run"]
