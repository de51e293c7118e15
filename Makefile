# Every target builds what it needs from nothing: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

CHECKOV_VENV := .venv-checkov

.PHONY: demo test lint bench clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.core: $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $@

$(VENV)/.dev: $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev,aws,gcp,azure]'
	touch $(VENV)/.core $@

demo: $(VENV)/.core
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check push_pools infra tests bench
	$(BIN)/ruff format --check push_pools infra tests bench
	$(BIN)/mypy push_pools

# checkov pins an old boto3 and ships a top-level `hcl2` that clashes with python-hcl2: it gets its own venv.
$(CHECKOV_VENV)/bin/checkov: $(UV)
	$(UV) venv --quiet --python $(BIN)/python $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python 'checkov==3.3.30'

test: lint $(CHECKOV_VENV)/bin/checkov
	$(BIN)/pytest -n 2

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) dist .pytest_cache .mypy_cache .ruff_cache
