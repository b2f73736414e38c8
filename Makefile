# Needs only Python 3.11+, pip and make: the virtual environment and its tools are made here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := airflow_provider_flink_vvp tests example_dags scripts e2e benchmarks cluster noxfile.py setup.py docs
BENCH_STAMP := $(VENV)/.installed-bench
CLUSTER_STAMP := $(VENV)/.installed-cluster
DIST_STAMP := $(VENV)/.installed-dist
DOCS_STAMP := $(VENV)/.installed-docs
DIST_VENV := build/dist-venv

.PHONY: demo test lint e2e versions bench cluster dist docs clean

# README.md too: the package's metadata (its long description, which tests read) is built from it.
$(STAMP): pyproject.toml README.md
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# A real Airflow and the emulator, driven in headless Chromium; installs chromium and npm packages itself.
e2e: $(STAMP)
	$(BIN)/python e2e/run.py

$(BENCH_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Ratios and counts measured side by side in one run, each with its target and PASS/FAIL (about 13 min).
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,cluster]'
	touch $(CLUSTER_STAMP)

# PostgreSQL, Redis, Celery workers, two triggerers and the emulator, with faults; installs Debian's postgresql
# and redis-server itself. PASS/FAIL checks and figures; logs in build/cluster/logs/.
cluster: $(CLUSTER_STAMP)
	$(BIN)/python cluster/run.py

# The test suite on each Airflow release from 3.0 to the newest pre-release, under that release's
# constraints, and on the lowest declared dependencies (nox with uv, one leg after the other; see noxfile.py).
versions: $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python 'nox>=2025.5'
	$(BIN)/nox

$(DIST_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,dist]'
	touch $(DIST_STAMP)

# The sdist and the wheel in dist/, checked with twine and check-wheel-contents; then the wheel alone in a fresh
# venv, whose `airflow providers list|hooks|links|triggers` must show this provider (scripts/check_dist.py).
dist: $(DIST_STAMP)
	rm -rf dist $(DIST_VENV)
	$(BIN)/uv build --quiet --out-dir dist
	rm -rf airflow_provider_flink_vvp.egg-info
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl
	$(BIN)/uv venv --quiet --python $(PYTHON) $(DIST_VENV)
	$(BIN)/uv pip install --quiet --python $(DIST_VENV)/bin/python dist/*.whl
	$(BIN)/python scripts/check_dist.py --dist dist --venv $(DIST_VENV)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,docs]'
	touch $(DOCS_STAMP)

# The documentation site in build/docs/ (Sphinx, warnings and broken cross-references are errors), after
# the tests its pages include (docs/examples) have passed.
docs: $(DOCS_STAMP)
	$(BIN)/pytest --quiet -p no:cacheprovider docs/examples
	rm -rf build/docs docs/_api
	$(BIN)/sphinx-build -W --keep-going -n -q -b html docs build/docs
	@echo "Built build/docs/index.html"

clean:
	rm -rf $(VENV) .nox e2e/node_modules .pytest_cache .mypy_cache .ruff_cache build dist
