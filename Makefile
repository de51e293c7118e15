# Every target builds what it needs from nothing: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

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

test: lint
	$(BIN)/pytest -n 2

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
