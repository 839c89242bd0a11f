# gpupool developer entry points. Quick start: `make demo`, then `make test`.
# Everything installs itself: the virtualenv (.venv), the Python packages, and the
# control-plane binaries, built once per machine from Go modules into ~/.cache/gpupool,
# and Prometheus (Debian's package, by `gpupool dev build` when it is not on PATH).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=

.PHONY: help venv build crds crds-check chart metrics-docs alerts dashboards lint test test-unit test-cluster demo down clean image image-check

help:
	@echo "make demo   - build and start a local cluster, run the operator and example jobs"
	@echo "make test   - lint, type-check, layering contract and the full test suite (real cluster)"
	@echo "make down   - stop the local cluster and the operator started by the demo"
	@echo "make crds   - regenerate crds/ from the pydantic API models"
	@echo "make metrics-docs - regenerate docs/metrics.md from the metric declarations"
	@echo "make alerts - regenerate dashboards/alerts/gpupool.rules.yaml from the alert declarations"
	@echo "make chart  - regenerate the Helm chart's CRDs, alert rules and values schema (charts/gpupool)"
	@echo "make dashboards - regenerate the Grafana dashboards in dashboards/ from gpupool.dashboards"
	@echo "make image  - build the container image gpupool:dev with buildah (installs buildah and mmdebstrap)"
	@echo "make image-check - run gpupool inside the built image as its non-root user"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

build: venv
	$(BIN)/gpupool dev build

crds: venv
	$(PY) -m gpupool.api.crdgen --out crds

crds-check: venv
	$(PY) -m gpupool.api.crdgen --out crds --check

chart: venv
	$(PY) -m gpupool.chart --out charts/gpupool

metrics-docs: venv
	$(PY) -m gpupool.metrics.docgen --out docs/metrics.md

alerts: venv
	$(PY) -m gpupool.metrics.alerts --out dashboards/alerts/gpupool.rules.yaml
dashboards: venv
	$(PY) -m gpupool.dashboards --out dashboards

lint: venv
	$(BIN)/ruff check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(PY) -m gpupool.metrics.docgen --out docs/metrics.md --check
	$(PY) -m gpupool.metrics.alerts --out dashboards/alerts/gpupool.rules.yaml --check
	$(PY) -m gpupool.dashboards --out dashboards --check
	$(PY) -m gpupool.chart --out charts/gpupool --check

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The second run repeats the lifecycle and autoscaling scenarios with the operator speaking
# as the Helm chart's ServiceAccount (its token, not the admin certificate): the chart's
# ClusterRole is proven sufficient, and test_helm_chart.py proves it is not excessive.
# tests/realnode runs in a session of its own: the one real kubelet node joins that session's
# cluster only, so the kwok suite never sees it.
test: lint crds-check build
	$(BIN)/pytest tests --ignore=tests/realnode $(PYTEST_ARGS)
	$(BIN)/pytest tests/realnode $(PYTEST_ARGS)
	$(BIN)/pytest --operator-as=chart tests/integration/test_job_lifecycle.py tests/integration/test_autoscaling.py $(PYTEST_ARGS)

# The container image, built without a Docker engine (see the README's "Container image").
image: venv
	$(PY) -m gpupool.devcluster.image build

image-check: venv
	$(PY) -m gpupool.devcluster.image check

demo: build
	$(BIN)/gpupool demo $(DEMO_ARGS)

down: venv
	$(BIN)/gpupool dev down

clean: down
	rm -rf $(VENV)
