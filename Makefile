# The two commands README shows: `make demo` and `make test`. Both set up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export R_LIBS_USER := $(CURDIR)/$(VENV)/Rlib
export PYSCVIBRIDGE_PYTHON := $(CURDIR)/$(PY)

.PHONY: setup demo test test-python test-r lint

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pyscvibridge demo --out results/cellbench

test: setup lint test-python test-r

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-python:
	$(PY) -m pytest -n 2 --dist loadgroup

test-r:
	@if [ -d tests/testthat ]; then Rscript -e 'testthat::test_local(".", reporter = "summary", stop_on_failure = TRUE)'; fi
