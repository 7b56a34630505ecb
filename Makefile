# The front door: `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
# Two stamps on one venv: .runtime (the package and what it needs to run, for `make
# demo`) and .installed (that plus the dev tools); installing the dev tools renews both.
RUNTIME := $(VENV)/.runtime
STAMP   := $(VENV)/.installed
PORT    ?= 9877

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint typecheck pytest golden docs bench soak clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(RUNTIME)

venv: $(STAMP) ## Create .venv and install the package with its dev tools

demo: $(RUNTIME) ## The exporter against the built-in demo Devin API on 127.0.0.1:PORT (9877); runtime deps only
	$(BIN)/devin-exporter --demo --web.listen-address 127.0.0.1:$(PORT)

test: lint typecheck pytest ## ruff, mypy and the whole pytest suite

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict on the package and the tests' fakes (pyproject [tool.mypy] files)
	$(BIN)/mypy

pytest: $(STAMP) ## The pytest suite (unit and end-to-end), a test file per worker, a worker per core
	$(BIN)/pytest -n auto --dist loadfile

test-fast: $(STAMP) ## The inner loop: ruff, then the tests not marked slow (no processes, servers or builds)
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto --dist loadfile -m "not slow and not soak" -q

docs: $(RUNTIME) ## Write the generated tables of docs/endpoints.md and docs/metrics.md
	$(BIN)/python docs/generate.py

golden: $(STAMP) ## Write the golden expositions again (tests/metrics/golden/*.prom); review them as a diff
	UPDATE_GOLDEN=1 $(BIN)/pytest tests/metrics/test_families.py -q

soak: $(STAMP) ## Bounded soak: 22 orgs, every fault, 20 scrapers, slowloris and auth flood, SOAK_SECONDS (60)
	$(BIN)/pytest -m soak tests/soak -p no:cacheprovider -rP

bench: $(STAMP) ## Benchmarks: prints a table, writes bench/results.json
	$(BIN)/python -m bench

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
