# Two commands: `make run` (service + worker + beat on an embedded Postgres) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev bench bench-load clean-data

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

run: install
	$(BIN)/python -m deploy.run

# ruff first (pyproject.toml [tool.ruff]), then every test tier; one tier: make test PYTEST_ARGS="-m unit".
# Two pytest-xdist workers (one per core here), each its own pytest session with its own Postgres server;
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:randomly -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python -m bench.run_all

# The load test (locust, headless): 1,000,000 persons, 25 then 100 simulated users, 2 minutes each; LOAD_ARGS to
# change it (docs/readme/bench.md).
LOAD_ARGS ?= --persons 1000000 --users 25,100 --duration 120
bench-load: install-dev
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# Stops the embedded Postgres that `make run` started (or left running) and deletes its data (PG_DATA_DIR) and the
# beat schedule beside it: the next `make run` starts from an empty database. Stop `make run` first (Ctrl-C).
PG_DATA_DIR ?= /var/tmp/pua-crema/pg
clean-data:
	@case "$(abspath $(PG_DATA_DIR))" in ""|/) echo "clean-data: PG_DATA_DIR non valido: '$(PG_DATA_DIR)'"; exit 2;; esac
	@if [ -x $(BIN)/python ] && [ -f "$(PG_DATA_DIR)/PG_VERSION" ]; then \
		PG_DATA_DIR="$(PG_DATA_DIR)" $(BIN)/python -m integrations.postgres.devpg stop --datadir "$(PG_DATA_DIR)"; fi
	rm -rf -- "$(PG_DATA_DIR)"
	rm -f -- "$(dir $(abspath $(PG_DATA_DIR)))"celerybeat-schedule*
	@echo "clean-data: Postgres fermato e dati rimossi ($(PG_DATA_DIR))"
