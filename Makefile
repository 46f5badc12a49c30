# Two commands: `make run` (service + worker + beat on an embedded Postgres) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev bench clean-data

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

run: install
	$(BIN)/python -m deploy.run

test: install-dev
	$(BIN)/python -m pytest -q -p no:randomly $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python -m bench.run_all
