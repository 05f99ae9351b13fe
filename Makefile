# Run `make` for the list of targets. Every target sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help

.PHONY: help run test test-fast lint fmt bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/interview-system: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/interview-system ## Serve the API on http://127.0.0.1:8000 (SQLite at data/interview.db)
	$(BIN)/interview-system serve

test: lint ## Lint, type-check and run the whole test suite
	$(BIN)/pytest

# The edit-test loop: SQLite only; no reliability, property or schema-fuzzing runs.
test-fast: $(BIN)/interview-system ## A quick run of the unit and integration tests on SQLite
	$(BIN)/pytest -q -m "not postgres" tests/unit tests/integration \
		--ignore=tests/unit/test_repository_state_machine.py \
		--ignore=tests/integration/test_openapi_conformance.py

lint: $(BIN)/interview-system ## Check formatting, lint rules and types
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(BIN)/interview-system ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/interview-system ## Measure speed against SQLite's own limit; writes docs/benchmarks.md
	$(BIN)/python -m bench

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
