# Every target sets itself up: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sagakit-installed
DEV_STAMP := $(VENV)/.sagakit-dev-installed

.PHONY: demo test lint format bench chaos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

## demo: run the purchase-plan saga on the embedded SQLite store (sagas.db)
demo: $(STAMP)
	$(PY) examples/purchase_plan.py --db sqlite:///sagas.db

## test: install the dev extras and run the whole test suite
test: $(DEV_STAMP)
	$(PY) -m pytest

## lint: ruff (lint and format check) and mypy --strict on src/
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench
	$(VENV)/bin/mypy

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix src tests examples bench
	$(VENV)/bin/ruff format src tests examples bench

BENCH_STAMP := $(VENV)/.sagakit-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	# the Restate server the bench compares with (skipped, with the reason, without npm)
	command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix bench/restate \
		|| echo "npm not found: the bench runs without Restate"
	touch $@

## bench: install the bench extras and run the benchmarks (BENCH_ARGS=--quick for a short run)
bench: $(BENCH_STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## chaos: the fault run (2,000 sagas, 45 worker kills, a database restart) on each SQL store
chaos: $(DEV_STAMP)
	$(PY) -m tests.integration.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) sagas.db sagas.db-wal sagas.db-shm .pytest_cache .mypy_cache .ruff_cache
