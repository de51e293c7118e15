# Every target builds what it needs from nothing: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv

CHECKOV_VENV := .venv-checkov
PREFECT_WORKERS_VENV := .venv-prefect-workers
PREFECT_VENV := .venv-prefect

.PHONY: demo test lint check bench lock clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.core: $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $@

# The function archives' exact dependencies are pinned in infra/<platform>/requirements.txt: the tests run with
# the same versions.
LOCKS := $(foreach platform,aws gcp azure,infra/$(platform)/requirements.txt)

$(VENV)/.dev: $(UV) pyproject.toml
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev,aws,gcp,azure]' $(foreach lock,$(LOCKS),--constraint $(lock))
	touch $(VENV)/.core $@

# Pin each archive's dependencies, for the functions' Linux and Python 3.11, at the versions installed here: after
# changing pyproject.toml's dependencies, or upgrading some here (`uv pip install -U NAME`), run `make lock`.
lock: $(VENV)/.dev
	$(UV) pip freeze --quiet --python $(BIN)/python --exclude-editable > $(VENV)/installed.txt
	for platform in aws gcp azure; do \
		$(BIN)/python -c 'import sys; from push_pools.packaging import PLATFORMS, function_requirements as f; \
			print(*f(PLATFORMS[sys.argv[1]]), sep="\n")' $$platform \
		| $(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_17 --no-annotate \
			--constraint $(VENV)/installed.txt --custom-compile-command 'make lock' \
			--output-file infra/$$platform/requirements.txt - || exit 1; \
	done

demo: $(VENV)/.core
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check push_pools infra tests bench
	$(BIN)/ruff format --check push_pools infra tests bench
	$(BIN)/mypy push_pools
	@# Terraform's own formatting, when a terraform binary is installed (it needs no provider for this).
	if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; fi

# The edit–test loop: lint, types and the unit tests, in well under a minute; no side environments, no servers.
check: lint
	$(BIN)/pytest -q -n 2 tests/unit

# checkov pins an old boto3 and ships a top-level `hcl2` that clashes with python-hcl2: it gets its own venv.
$(CHECKOV_VENV)/bin/checkov: $(UV)
	$(UV) venv --quiet --python $(BIN)/python $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python 'checkov==3.3.30'

# The Prefect e2e tests start a real Prefect server (and run flows) from here: prefect is not a dependency of ours.
# fastapi is pinned because newer releases break this prefect's server at import.
$(PREFECT_VENV)/bin/prefect: $(UV)
	$(UV) venv --quiet --python $(BIN)/python $(PREFECT_VENV)
	$(UV) pip install --quiet --python $(PREFECT_VENV)/bin/python 'prefect==3.8.8' 'fastapi==0.139.2'

# Prefect and its worker integrations, only to compare our template rendering with theirs (tests/compat).
$(PREFECT_WORKERS_VENV)/bin/python: $(UV)
	$(UV) venv --quiet --python $(BIN)/python $(PREFECT_WORKERS_VENV)
	$(UV) pip install --quiet --python $(PREFECT_WORKERS_VENV)/bin/python 'prefect==3.6.29' 'prefect-aws==0.7.7' \
		'prefect-gcp==0.6.17' 'prefect-azure==0.4.9' 'importlib-metadata>=8'

test: lint $(CHECKOV_VENV)/bin/checkov $(PREFECT_WORKERS_VENV)/bin/python $(PREFECT_VENV)/bin/prefect
	$(BIN)/pytest -n 2

bench: $(VENV)/.dev $(PREFECT_WORKERS_VENV)/bin/python $(PREFECT_VENV)/bin/prefect
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(PREFECT_VENV) $(PREFECT_WORKERS_VENV) dist .pytest_cache .mypy_cache .ruff_cache
